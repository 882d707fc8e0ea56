"""Training throughput of the companion's CTR models beside DeepCTR-Torch's, in one run, on the same data.

    .venv/bin/python benchmarks/bench_interformer.py [--steps 50] [--batch-size 1024] [--dim 16] [--threads 0]

Every model runs the same loop (Adam, binary cross-entropy, pre-built batches, a few warm-up steps not timed),
so the numbers compare model compute, not data loading. Pairs: our DCNv2 (full-rank cross, 2 layers, MLP
256-128, parallel) vs DeepCTR's ``DCN(cross_parameterization="matrix")`` of the same size, our DIN vs
DeepCTR's ``DIN``; InterFormer is timed beside them for scale. Data: MovieLens-100K as sequential CTR.
DeepCTR-Torch is optional (``pip install --no-deps deepctr-torch==0.3.0``; it needs only torch, tqdm and
scikit-learn); without it the script says so and times our models alone.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from companion.data.movielens_seq import load_movielens_seq  # noqa: E402
from companion.models.zoo import build_model, n_params  # noqa: E402


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


def time_loop(step, batches, warmup: int) -> float:
    for b in batches[:warmup]:
        step(b)
    t0 = time.perf_counter()
    for b in batches[warmup:]:
        step(b)
    dt = time.perf_counter() - t0
    return sum(b["label"].shape[0] for b in batches[warmup:]) / dt


def ours(model, lr=1e-3):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()

    def step(b):
        loss = F.binary_cross_entropy_with_logits(model(b), b["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def deepctr_models(schema, dim: int, hidden):
    """DeepCTR-Torch DCN and DIN over the same fields, and a function that turns our batch into their input."""
    from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat
    from deepctr_torch.models import DCN, DIN

    sparse = [SparseFeat(f.name, f.vocab_size, embedding_dim=dim) for f in schema.sparse]
    dense = [DenseFeat(f.name, 1) for f in schema.dense]
    hist = [VarLenSparseFeat(SparseFeat(f"hist_{f.share_with}", f.vocab_size, embedding_dim=dim,
                                        embedding_name=f.share_with), maxlen=f.max_len,
                             length_name="seq_length")
            for f in schema.sequence]
    pooled = [VarLenSparseFeat(SparseFeat(f"hist_{f.share_with}", f.vocab_size, embedding_dim=dim,
                                          embedding_name=f.share_with), maxlen=f.max_len, combiner="mean")
              for f in schema.sequence]  # DCN sees the histories mean-pooled, as our non-sequential models do
    dcn = DCN(sparse + dense, sparse + dense + pooled, cross_num=2, cross_parameterization="matrix", dnn_hidden_units=hidden,
              l2_reg_linear=0, l2_reg_embedding=0, l2_reg_cross=0, device="cpu")
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


def theirs(model, to_x, lr=1e-3):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()

    def step(b):
        x = to_x(model, b)
        p = model(x).squeeze(-1)
        loss = F.binary_cross_entropy(p, b["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=50, help="timed optimizer steps per model")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="alternate the models this many times; the median counts")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args(argv)
    if a.steps < 1 or a.batch_size < 1 or a.repeats < 1:
        ap.error("--steps, --batch-size and --repeats must be >= 1")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    data = load_movielens_seq(max_len=a.max_len)
    schema = data.schema
    batches = make_batches(data.train, a.batch_size, a.steps + a.warmup)
    hidden = (256, 128)
    runs = {
        "InterFormer (ours)": (build_model("InterFormer", schema, a.dim), None),
        "DCNv2 (ours)": (build_model("DCNv2", schema, a.dim, cross_layers=2, rank=None, hidden=hidden), None),
        "DIN (ours)": (build_model("DIN", schema, a.dim, att_hidden=(64, 16), hidden=hidden), None),
    }
    try:
        dcn, din, to_x = deepctr_models(schema, a.dim, hidden)
        runs["DCN-M (DeepCTR-Torch)"] = (dcn, to_x)
        runs["DIN (DeepCTR-Torch)"] = (din, to_x)
    except ImportError as e:
        print(f"DeepCTR-Torch is not installed ({e}); timing the companion's models only.\n"
              "Install it with: .venv/bin/pip install --no-deps deepctr-torch==0.3.0", file=sys.stderr)
    speeds = {name: [] for name in runs}
    for _ in range(a.repeats):  # alternate so that drifting machine load hits every model alike
        for name, (model, to_x) in runs.items():
            step = ours(model) if to_x is None else theirs(model, to_x)
            speeds[name].append(time_loop(step, batches, a.warmup))
    med = {k: sorted(v)[len(v) // 2] for k, v in speeds.items()}
    print(f"\n{'model':<24}{'params':>10}{'samples/s':>12}   (batch {a.batch_size}, {a.steps} steps, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()})")
    for name, (model, _) in runs.items():
        print(f"{name:<24}{n_params(model):>10}{med[name]:>12.0f}")
    ratios = {}
    if "DCN-M (DeepCTR-Torch)" in med:
        ratios = {"DCNv2 ours / DCN-M DeepCTR": med["DCNv2 (ours)"] / med["DCN-M (DeepCTR-Torch)"],
                  "DIN ours / DIN DeepCTR": med["DIN (ours)"] / med["DIN (DeepCTR-Torch)"],
                  "InterFormer ours / DIN DeepCTR": med["InterFormer (ours)"] / med["DIN (DeepCTR-Torch)"]}
        print()
        for k, v in ratios.items():
            print(f"{k:<34}{v:6.2f}x")
    if a.json:
        a.json.write_text(json.dumps({"samples_per_s": med, "all": speeds, "ratios": ratios,
                                      "params": {k: n_params(m) for k, (m, _) in runs.items()},
                                      "args": {k: str(v) for k, v in vars(a).items()}}, indent=2))
    return med, ratios


if __name__ == "__main__":
    main()
