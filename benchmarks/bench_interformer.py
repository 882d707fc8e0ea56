"""Training throughput of the companion's CTR models beside DeepCTR-Torch's and beside an older checkout, in one run.

    /tmp/cpuslot .venv/bin/python benchmarks/bench_interformer.py --threads 1 [--baseline-tree /tmp/wt891] [--compile]

Every model runs the same loop (Adam, binary cross-entropy, a few warm-up steps not timed) over the same
pre-built batches. The models are interleaved step by step (batch i for every model, then batch i + 1...), each
step timed on its own, so a drifting machine load hits every model alike; ``--repeats`` passes, each giving one
samples/s per model and one ratio per pair, and the medians count. What is compared, and why it is fair:

- **DCN pair**: our ``DCNv2`` (full-rank cross, 2 layers, MLP 256-128, parallel, ReLU) against DeepCTR-Torch's
  ``DCN(cross_parameterization="matrix")`` (DCN-M) with the same cross and MLP, on the sparse fields and the
  mean-pooled histories (the two dense scalars are left out: DeepCTR feeds them raw, we embed them, which would
  make our cross 192 wide against their 162) and without DeepCTR's separate linear part. Both then have the same
  parameter count (printed). DeepCTR's input conversion (our batch dict -> its column tensor) runs before timing.
- **DIN pair**: our ``DIN`` against DeepCTR's ``DIN`` (attention MLP 64-16, MLP 256-128).
- **InterFormer**: ours, and with ``--baseline-tree DIR`` the InterFormer of another checkout of this repository
  (e.g. ``git worktree add /tmp/wt891 891c84f``), loaded as a separate package, same seed and weights (checked).
- ``--compile`` adds ``torch.compile`` versions of our DCNv2 and InterFormer (compile time is not timed).

Data: MovieLens-100K as sequential CTR. DeepCTR-Torch is the ``.[bench]`` extra (``pip install --no-deps
deepctr-torch==0.3.0``); without it the script says so and times our models alone.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from companion.data.movielens_seq import load_movielens_seq  # noqa: E402
from companion.data.schema import Schema  # noqa: E402
from companion.models.zoo import build_model, n_params  # noqa: E402

HIDDEN = (256, 128)


def make_batches(data, batch_size: int, n: int, seed: int = 0) -> list[dict]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < n:
        for b in data.batches(batch_size, shuffle=True, generator=gen):
            if b["label"].shape[0] == batch_size:
                out.append(b)
            if len(out) == n:
                break
    return out


def time_loop(step, inputs, warmup: int) -> float:  # kept for scripts that time one model alone
    """Samples per second over ``inputs[warmup:]``; each input is ``(model input, label)``."""
    for x, y in inputs[:warmup]:
        step(x, y)
    t0 = time.perf_counter()
    for x, y in inputs[warmup:]:
        step(x, y)
    dt = time.perf_counter() - t0
    return sum(y.shape[0] for _, y in inputs[warmup:]) / dt


def make_step(model, fn=None, probabilities: bool = False, lr: float = 1e-3):
    """One Adam step of ``fn`` (default: the model) on a prepared input. DeepCTR models return probabilities."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    fn = model if fn is None else fn
    model.train()

    def step(x, y):
        out = fn(x).reshape(-1)
        loss = F.binary_cross_entropy(out, y) if probabilities else F.binary_cross_entropy_with_logits(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def sparse_only(schema: Schema) -> Schema:
    return Schema([f for f in schema.fields if f.kind != "dense"])


def drop_dense(b: dict) -> dict:
    return {**b, "dense": b["dense"][:, :0]}


def deepctr_models(schema, dim: int, hidden):
    """DeepCTR-Torch DCN-M (sparse fields and pooled histories, no linear part) and DIN (all fields), and a function
    that turns our batch into their column tensor."""
    from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat
    from deepctr_torch.models import DCN, DIN

    sparse = [SparseFeat(f.name, f.vocab_size, embedding_dim=dim) for f in schema.sparse]
    dense = [DenseFeat(f.name, 1) for f in schema.dense]
    hist = [VarLenSparseFeat(SparseFeat(f"hist_{f.share_with}", f.vocab_size, embedding_dim=dim,
                                        embedding_name=f.share_with), maxlen=f.max_len, length_name="seq_length")
            for f in schema.sequence]
    pooled = [VarLenSparseFeat(SparseFeat(f"hist_{f.share_with}", f.vocab_size, embedding_dim=dim,
                                          embedding_name=f.share_with), maxlen=f.max_len, combiner="mean")
              for f in schema.sequence]  # DCN sees the histories mean-pooled, as our non-sequential models do
    dcn = DCN([], sparse + pooled, cross_num=2, cross_parameterization="matrix", dnn_hidden_units=hidden,
              l2_reg_linear=0, l2_reg_embedding=0, l2_reg_cross=0, dnn_activation="relu", device="cpu")
    din = DIN(sparse + dense + hist, [f.share_with for f in schema.sequence], dnn_hidden_units=hidden,
              l2_reg_embedding=0, device="cpu")

    def to_x(model, b):
        cols = {f.name: b["sparse"][:, i : i + 1].float() for i, f in enumerate(schema.sparse)}
        cols.update({f.name: b["dense"][:, i : i + 1] for i, f in enumerate(schema.dense)})
        cols.update({f"hist_{f.share_with}": b["seq"][:, i].float() for i, f in enumerate(schema.sequence)})
        cols["seq_length"] = (b["seq"] > 0).any(1).sum(-1, keepdim=True).float()
        parts = sorted(((s, cols[name]) for name, (s, _) in model.feature_index.items()), key=lambda t: t[0])
        return torch.cat([p for _, p in parts], 1)

    return dcn, din, to_x


def load_tree(root: Path):
    """Import ``root/lib/companion`` as a separate package (``companion_baseline``) beside ours."""
    init = Path(root) / "lib" / "companion" / "__init__.py"
    if not init.exists():
        raise SystemExit(f"--baseline-tree {root}: no lib/companion there (make it with git worktree add)")
    spec = importlib.util.spec_from_file_location("companion_baseline", init, submodule_search_locations=[str(init.parent)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["companion_baseline"] = mod
    spec.loader.exec_module(mod)
    return importlib.import_module("companion_baseline.models.zoo")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30, help="timed optimizer steps per model and repeat")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="alternate the models this many times; the median counts")
    ap.add_argument("--baseline-tree", type=Path, default=None, help="a checkout whose InterFormer is timed beside ours")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile'd DCNv2 and InterFormer")
    ap.add_argument("--only", default="", help="comma-separated substrings: time only models whose name matches")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args(argv)
    if a.steps < 1 or a.batch_size < 1 or a.repeats < 1:
        ap.error("--steps, --batch-size and --repeats must be >= 1")
    if a.threads:
        torch.set_num_threads(a.threads)
    data = load_movielens_seq(max_len=a.max_len)
    schema, sp_schema = data.schema, sparse_only(data.schema)
    batches = make_batches(data.train, a.batch_size, a.steps + a.warmup)
    plain = [(b, b["label"]) for b in batches]
    no_dense = [(drop_dense(b), b["label"]) for b in batches]

    def seeded(fn):
        torch.manual_seed(0)
        return fn()

    runs = {}  # name -> (model, step factory, inputs)
    ifm = seeded(lambda: build_model("InterFormer", schema, a.dim))
    runs["InterFormer (ours)"] = (ifm, lambda m: make_step(m), plain)
    if a.baseline_tree is not None:
        old_zoo = load_tree(a.baseline_tree)
        old = seeded(lambda: old_zoo.build_model("InterFormer", schema, a.dim))
        with torch.no_grad():  # same seed, same init order: the two must compute the same function
            diff = float((old.eval()(batches[0]) - ifm.eval()(batches[0])).abs().max())
        print(f"InterFormer ours vs {a.baseline_tree}: max |logit difference| at init {diff:.1e}")
        runs[f"InterFormer ({a.baseline_tree.name})"] = (old, lambda m: make_step(m), plain)
    dcn_ours = seeded(lambda: build_model("DCNv2", sp_schema, a.dim, cross_layers=2, rank=None, hidden=HIDDEN, act="relu"))
    runs["DCNv2 (ours)"] = (dcn_ours, lambda m: make_step(m), no_dense)
    runs["DIN (ours)"] = (seeded(lambda: build_model("DIN", schema, a.dim, att_hidden=(64, 16), hidden=HIDDEN)),
                          lambda m: make_step(m), plain)
    if a.compile:
        dcn_c = seeded(lambda: build_model("DCNv2", sp_schema, a.dim, cross_layers=2, rank=None, hidden=HIDDEN, act="relu"))
        runs["DCNv2 (ours, compiled)"] = (dcn_c, lambda m: make_step(m, torch.compile(m, dynamic=False)), no_dense)
        if_c = seeded(lambda: build_model("InterFormer", schema, a.dim))
        runs["InterFormer (ours, compiled)"] = (if_c, lambda m: make_step(m, torch.compile(m, dynamic=False)), plain)
    try:
        dcn, din, to_x = deepctr_models(schema, a.dim, HIDDEN)
        # conversion to DeepCTR's column tensor happens here, outside the timed loop
        runs["DCN-M (DeepCTR-Torch)"] = (dcn, lambda m: make_step(m, probabilities=True),
                                         [(to_x(dcn, b), b["label"]) for b in batches])
        runs["DIN (DeepCTR-Torch)"] = (din, lambda m: make_step(m, probabilities=True),
                                       [(to_x(din, b), b["label"]) for b in batches])
    except ImportError as e:
        print(f"DeepCTR-Torch is not installed ({e}); timing the companion's models only.\n"
              "Install it with: .venv/bin/pip install --no-deps deepctr-torch==0.3.0", file=sys.stderr)
    if a.only:
        keys = [k.strip() for k in a.only.split(",") if k.strip()]
        runs = {n: r for n, r in runs.items() if any(k in n for k in keys)}
    steps = {name: factory(model) for name, (model, factory, _) in runs.items()}  # one optimizer per model
    for name, (_, _, inputs) in runs.items():  # warm-up (and compilation) outside the timing
        for x, y in inputs[: a.warmup]:
            steps[name](x, y)
    speeds = {name: [] for name in runs}
    t_start = time.perf_counter()
    for _ in range(a.repeats):
        spent = dict.fromkeys(runs, 0.0)
        for i in range(a.warmup, a.warmup + a.steps):  # step i of every model, then step i + 1
            for name, (_, _, inputs) in runs.items():
                x, y = inputs[i]
                t0 = time.perf_counter()
                steps[name](x, y)
                spent[name] += time.perf_counter() - t0
        for name in runs:
            speeds[name].append(a.steps * a.batch_size / spent[name])
    wall = time.perf_counter() - t_start
    med = {k: sorted(v)[len(v) // 2] for k, v in speeds.items()}
    print(f"\n{'model':<30}{'params':>10}{'samples/s':>12}   (batch {a.batch_size}, {a.steps} steps x {a.repeats} "
          f"repeats, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, {wall:.0f} s)")
    for name, (model, _, _) in runs.items():
        print(f"{name:<30}{n_params(model):>10}{med[name]:>12.0f}   all: {[round(v) for v in speeds[name]]}")
    pairs = [("DCNv2 ours / DCN-M DeepCTR", "DCNv2 (ours)", "DCN-M (DeepCTR-Torch)"),
             ("DCNv2 ours compiled / DCN-M DeepCTR", "DCNv2 (ours, compiled)", "DCN-M (DeepCTR-Torch)"),
             ("DIN ours / DIN DeepCTR", "DIN (ours)", "DIN (DeepCTR-Torch)"),
             ("InterFormer ours / DIN DeepCTR", "InterFormer (ours)", "DIN (DeepCTR-Torch)")]
    if a.baseline_tree is not None:
        old = f"InterFormer ({a.baseline_tree.name})"
        pairs += [(f"InterFormer ours / {a.baseline_tree.name}", "InterFormer (ours)", old),
                  (f"InterFormer ours compiled / {a.baseline_tree.name}", "InterFormer (ours, compiled)", old)]
    # ratios per repeat (the models ran side by side within each repeat), then the median over repeats
    per_repeat = {label: sorted(x / y for x, y in zip(speeds[n], speeds[d]))
                  for label, n, d in pairs if n in speeds and d in speeds}
    ratios = {label: r[a.repeats // 2] for label, r in per_repeat.items()}
    if ratios:
        print()
        for k, v in ratios.items():
            lo, hi = per_repeat[k][0], per_repeat[k][-1]
            print(f"{k:<44}{v:6.2f}x   (median of per-repeat ratios; repeats {lo:.2f}-{hi:.2f}x)")
    if a.json:
        a.json.write_text(json.dumps({"samples_per_s": med, "all": speeds, "ratios": ratios, "ratios_per_repeat": per_repeat,
                                      "params": {k: n_params(m) for k, (m, _, _) in runs.items()},
                                      "args": {k: str(v) for k, v in vars(a).items()}}, indent=2))
    return med, ratios


if __name__ == "__main__":
    main()
