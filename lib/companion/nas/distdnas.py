"""DistDNAS (arXiv 2311.00231), reconstructed: an interaction-module supernet searched differentiably with a
cost-aware loss, one search per data date, the per-date architecture weights aggregated into one architecture.

No public code exists; everything below the abstract's outline (interaction modules of several orders and types,
per-date distributed search with aggregation, a differentiable FLOPs-aware loss) is our reconstruction.

- **Modules** (registered in :mod:`.registry` as ``dd_<name>``, kind ``interaction``, tag ``distdnas``): every module maps feature
  tokens ``[B, F, d]`` to tokens of the same shape (a residual update), so layers stack and mix freely:
  ``identity``, ``fc`` (a dense layer over the flattened tokens, first order), ``dot`` (DLRM pairwise dot
  products, projected back to tokens, second order), ``fm`` (the factorization-machine vector, projected, second
  order), ``cross1..3`` (DCNv2 low-rank cross layers, order 2..4), ``efc`` (FC along the token axis) and ``attn``
  (single-head self-attention token mixing). Analytic multiply-adds per sample, counted like
  :func:`companion.cost.flops.count_flops` (matrix products only), so the cost term and the measured FLOPs agree.
- **Supernet**: embedding -> ``layers`` x [softmax- or Gumbel-weighted sum of all modules, LayerNorm] -> MLP head.
- **Loss**: BCE + lambda * sum_layers sum_m softmax(alpha)_m * MACs_m / max_m MACs_m (:func:`.relax.expected_cost`).
- **Dates and aggregation**: :func:`search_dates` runs the search of every date this rank owns, gathers every
  date's softmax(alpha) on every rank, and aggregates them in date order (``mean`` of the probabilities, or
  ``vote``: each date's top-1 per layer). The same function is the in-process mode (one rank owns all dates) and
  the torchrun mode (:mod:`.dist_search`), so both give the same architecture for a seed.
- **Discretisation and retraining**: top-1 per layer (:func:`.relax.discretize`), then :class:`DiscreteNet`
  trained from scratch on the pooled dates.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.schema import CTRDataset, Schema
from ..models.embedding import FeatureEmbedding
from ..models.layers import MLP, CrossNetV2
from . import registry
from .relax import ArchParams, TemperatureSchedule, discretize, expected_cost

MODULES = ("identity", "fc", "dot", "fm", "cross1", "cross2", "cross3", "efc", "attn")
# explicit interaction order of each module's update (feature degree of the polynomial it adds); attention's
# softmax is not a polynomial, it is listed at 3 (query-key-value products); identity adds nothing new
ORDER = {"identity": 1, "fc": 1, "efc": 1, "dot": 2, "fm": 2, "cross1": 2, "cross2": 3, "cross3": 4, "attn": 3}


# ----------------------------------------------------------------------------------------------- the modules
class Identity(nn.Module):
    def forward(self, x):
        return x


class FCMix(nn.Module):
    """x + silu(W vec(x)): a dense layer over all tokens (first order, the most expensive)."""

    def __init__(self, F_, d):
        super().__init__()
        self.lin = nn.Linear(F_ * d, F_ * d)

    def forward(self, x):
        return x + F.silu(self.lin(x.flatten(1))).view_as(x)


class DotMix(nn.Module):
    """x + W dots(x): DLRM pairwise inner products of the tokens, projected back to F tokens."""

    def __init__(self, F_, d):
        super().__init__()
        self.register_buffer("iu", torch.triu_indices(F_, F_, offset=1), persistent=False)
        self.proj = nn.Linear(F_ * (F_ - 1) // 2, F_ * d)

    def forward(self, x):
        dots = (x @ x.transpose(1, 2))[:, self.iu[0], self.iu[1]]
        return x + self.proj(dots).view_as(x)


class FMMix(nn.Module):
    """x + W fm(x): the factorization-machine vector 0.5((sum_f v_f)^2 - sum_f v_f^2), projected to F tokens."""

    def __init__(self, F_, d):
        super().__init__()
        self.proj = nn.Linear(d, F_ * d)

    def forward(self, x):
        fm = 0.5 * (x.sum(1).pow(2) - x.pow(2).sum(1))
        return x + self.proj(fm).view_as(x)


class CrossMix(nn.Module):
    """DCNv2 low-rank cross layers on the flattened tokens (k layers: interactions up to order k + 1)."""

    def __init__(self, F_, d, layers, rank):
        super().__init__()
        self.cross = CrossNetV2(F_ * d, layers, rank)

    def forward(self, x):
        return self.cross(x.flatten(1)).view_as(x)


class EFCMix(nn.Module):
    """x + W_tok x: an FC along the token axis (new tokens as linear mixes of the old ones)."""

    def __init__(self, F_, d):
        super().__init__()
        self.mix = nn.Linear(F_, F_)

    def forward(self, x):
        return x + self.mix(x.transpose(1, 2)).transpose(1, 2)


class AttnMix(nn.Module):
    """x + O softmax(Q K^T / sqrt(d)) V: single-head self-attention over the feature tokens."""

    def __init__(self, F_, d):
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.scale = 1.0 / math.sqrt(d)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, -1)
        a = torch.softmax((q @ k.transpose(1, 2)) * self.scale, -1)
        return x + self.out(a @ v)


def _macs(name: str, c: dict) -> int:
    """Multiply-adds per sample of one module on F tokens of width d (matrix products only, like count_flops)."""
    F_, d, r = c["F"], c["d"], c["rank"]
    W = F_ * d
    P = F_ * (F_ - 1) // 2
    cross_layer = W * W if r >= W else 2 * W * r
    return {"identity": 0, "fc": W * W, "dot": F_ * F_ * d + P * W, "fm": d * W,
            "cross1": cross_layer, "cross2": 2 * cross_layer, "cross3": 3 * cross_layer,
            "efc": F_ * F_ * d, "attn": 4 * F_ * d * d + 2 * F_ * F_ * d}[name]


_BUILD = {"identity": lambda c: Identity(), "fc": lambda c: FCMix(c["F"], c["d"]), "dot": lambda c: DotMix(c["F"], c["d"]),
          "fm": lambda c: FMMix(c["F"], c["d"]), "efc": lambda c: EFCMix(c["F"], c["d"]),
          "attn": lambda c: AttnMix(c["F"], c["d"]),
          **{f"cross{k}": (lambda c, k=k: CrossMix(c["F"], c["d"], k, c["rank"])) for k in (1, 2, 3)}}
_DOC = {"identity": "pass the tokens through (no new interaction)",
        "fc": "dense layer over the flattened tokens, residual", "dot": "DLRM pairwise dot products, projected",
        "fm": "factorization-machine vector, projected", "efc": "FC along the token axis, residual",
        "attn": "single-head self-attention over tokens, residual",
        **{f"cross{k}": f"DCNv2 low-rank cross, {k} layer{'s' if k > 1 else ''}" for k in (1, 2, 3)}}

# registered as dd_<name> (NASRec already owns "fc", "efc" and "attn" in the registry, with other signatures)
REG_NAME = {n: f"dd_{n}" for n in MODULES}
for _n in MODULES:
    registry.register(registry.OpSpec(REG_NAME[_n], "interaction", _BUILD[_n], lambda c, n=_n: _macs(n, c),
                                      pim="crossbar: every Linear weight", doc=_DOC[_n], tags=("distdnas",)),
                      replace=True)


def module_macs(name: str, ctx: dict) -> int:
    return int(registry.get(REG_NAME[name]).flops(ctx))


def head_macs(ctx: dict, hidden) -> int:
    dims = [ctx["F"] * ctx["d"], *hidden, 1]
    return int(sum(a * b for a, b in zip(dims[:-1], dims[1:])))


def arch_flops(arch: list[str], ctx: dict, hidden) -> int:
    """FLOPs per sample (2 per multiply-add) of a discrete architecture: its modules plus the head."""
    return 2 * (sum(module_macs(m, ctx) for m in arch) + head_macs(ctx, hidden))


# --------------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class SearchConfig:
    modules: tuple = MODULES
    layers: int = 2
    dim: int = 8
    rank: int = 8  # DCNv2 cross rank
    hidden: tuple = (64,)  # head MLP
    epochs: int = 1  # passes over each date (DistDNAS streams one pass)
    batch_size: int = 256
    lr: float = 3e-3  # weights (Adam)
    arch_lr: float = 0.05  # architecture logits (Adam)
    lam: float = 0.0  # cost-loss weight lambda
    relax: str = "softmax"  # softmax | gumbel
    tau_start: float = 1.0
    tau_end: float = 1.0
    arch_warmup: float = 0.0  # fraction of each date's steps that train the weights only (alpha frozen), FBNet-style
    update: str = "joint"  # joint: one step of both on each batch; alternate: alpha on a held-out 20% of the date
    aggregate: str = "mean"  # mean of softmax(alpha) over dates | vote (each date's top-1 per layer)

    def __post_init__(self):
        unknown = [m for m in self.modules if m not in MODULES]
        if unknown or not self.modules:
            raise ValueError(f"unknown modules {unknown}; choose from {MODULES}")
        if self.relax not in ("softmax", "gumbel") or self.update not in ("joint", "alternate") \
                or self.aggregate not in ("mean", "vote"):
            raise ValueError(f"relax softmax|gumbel, update joint|alternate, aggregate mean|vote; got {self.relax!r}, "
                             f"{self.update!r}, {self.aggregate!r}")
        if not 0 <= self.arch_warmup < 1:
            raise ValueError(f"arch_warmup must lie in [0, 1), got {self.arch_warmup}")
        if self.layers < 1 or self.dim < 1 or self.epochs < 1 or self.batch_size < 1 or self.lam < 0:
            raise ValueError(f"layers, dim, epochs, batch_size >= 1 and lam >= 0 required: {self}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchConfig":
        d = dict(d)
        for k in ("modules", "hidden"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)

    def ctx(self, schema: Schema) -> dict:
        return {"F": len(schema.dense) + len(schema.sparse), "d": self.dim, "rank": self.rank}


# ------------------------------------------------------------------------------------------------ the supernet
class SuperNet(nn.Module):
    def __init__(self, schema: Schema, cfg: SearchConfig):
        super().__init__()
        self.cfg, self.ctx = cfg, cfg.ctx(schema)
        if self.ctx["F"] < 2:
            raise ValueError("the interaction modules need at least two feature tokens")
        self.emb = FeatureEmbedding(schema, cfg.dim)
        self.blocks = nn.ModuleList(nn.ModuleList(registry.build(REG_NAME[m], self.ctx) for m in cfg.modules)
                                    for _ in range(cfg.layers))
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.dim) for _ in range(cfg.layers))
        self.head = MLP(self.ctx["F"] * cfg.dim, list(cfg.hidden), 1)
        self.arch = ArchParams({f"layer{l}": len(cfg.modules) for l in range(cfg.layers)})
        self.costs = torch.tensor([float(module_macs(m, self.ctx)) for m in cfg.modules])

    def weight_params(self):
        return [p for n, p in self.named_parameters() if not n.startswith("arch.")]

    def forward(self, batch, tau: float = 1.0, generator: torch.Generator | None = None):
        x = self.emb.tokens(batch)
        for l, (mods, norm) in enumerate(zip(self.blocks, self.norms)):
            w = self.arch.weights(f"layer{l}", tau, self.cfg.relax, generator)
            x = norm(sum(wi * m(x) for wi, m in zip(w, mods)))
        return self.head(x.flatten(1)).squeeze(-1)

    def cost_term(self) -> torch.Tensor:
        """sum over layers of sum_m softmax(alpha)_m * MACs_m / max MACs (differentiable in alpha)."""
        norm = float(self.costs.max()) if float(self.costs.max()) > 0 else 1.0
        return sum(expected_cost(torch.softmax(self.arch.alpha[f"layer{l}"], -1), self.costs, norm)
                   for l in range(self.cfg.layers))


@dataclass
class DateResult:
    date: int
    probs: dict  # layer -> softmax(alpha) as a list
    seconds: float
    steps: int
    final_bce: float

    def top1(self, modules) -> list[str]:
        return [modules[int(np.argmax(self.probs[k]))] for k in sorted(self.probs, key=lambda s: int(s[5:]))]


def date_seed(seed: int, date: int) -> int:
    return 1000003 * (seed + 1) + 7919 * date


def search_date(schema: Schema, data: CTRDataset, cfg: SearchConfig, seed: int = 0, date: int = 0) -> DateResult:
    """One supernet search on one date's rows; deterministic for (cfg, seed, date) with one thread."""
    s = date_seed(seed, date)
    torch.manual_seed(s)
    net = SuperNet(schema, cfg)
    gen = torch.Generator().manual_seed(s + 1)
    g_gumbel = torch.Generator().manual_seed(s + 2)
    opt_w = torch.optim.Adam(net.weight_params(), lr=cfg.lr)
    opt_a = torch.optim.Adam(net.arch.parameters(), lr=cfg.arch_lr)
    if cfg.update == "alternate":
        cut = int(0.8 * len(data))
        train, held = data.subset(torch.arange(cut)), data.subset(torch.arange(cut, len(data)))
    else:
        train, held = data, None
    n_batches = -(-len(train) // cfg.batch_size)
    sched = TemperatureSchedule(cfg.tau_start, cfg.tau_end, max(1, n_batches * cfg.epochs),
                                "constant" if cfg.tau_start == cfg.tau_end else "exp")
    held_iter = None
    warm = int(cfg.arch_warmup * n_batches * cfg.epochs)
    t0, step, last = time.perf_counter(), 0, float("nan")
    net.train()
    for _ in range(cfg.epochs):
        for batch in train.batches(cfg.batch_size, shuffle=True, generator=gen):
            tau = sched(step)
            bce = F.binary_cross_entropy_with_logits(net(batch, tau, g_gumbel), batch["label"])
            if step < warm:
                opt_w.zero_grad(set_to_none=True)
                bce.backward()
                opt_w.step()
            elif cfg.update == "joint":
                loss = bce + cfg.lam * net.cost_term()
                opt_w.zero_grad(set_to_none=True)
                opt_a.zero_grad(set_to_none=True)
                loss.backward()
                opt_w.step()
                opt_a.step()
            else:
                opt_w.zero_grad(set_to_none=True)
                bce.backward()
                opt_w.step()
                if held_iter is None:
                    held_iter = held.batches(cfg.batch_size, shuffle=True, generator=gen)
                hb = next(held_iter, None)
                if hb is None:
                    held_iter = held.batches(cfg.batch_size, shuffle=True, generator=gen)
                    hb = next(held_iter)
                a_loss = F.binary_cross_entropy_with_logits(net(hb, tau, g_gumbel), hb["label"]) \
                    + cfg.lam * net.cost_term()
                opt_a.zero_grad(set_to_none=True)
                net.zero_grad(set_to_none=True)
                a_loss.backward()
                opt_a.step()
            last = float(bce.detach())
            step += 1
    probs = {k: v.tolist() for k, v in net.arch.probs().items()}
    return DateResult(date, probs, time.perf_counter() - t0, step, last)


# ----------------------------------------------------------------------------------------- dates and ranks
@dataclass
class SearchOutcome:
    modules: tuple
    per_date: list[DateResult]  # every date, in date order, on every rank
    aggregate: dict  # layer -> aggregated score per module (mean probability or vote share)
    arch: list[str]  # top-1 per layer of the aggregate
    rule: str
    search_wall_s: float  # this rank: from the start barrier to the gathered result
    local_search_s: float  # this rank: its own dates' searches
    rank: int = 0
    world_size: int = 1
    dates_of_rank: list = field(default_factory=list)

    def per_date_top1(self) -> list[list[str]]:
        return [r.top1(self.modules) for r in self.per_date]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_date"] = [asdict(r) for r in self.per_date]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SearchOutcome":
        keys = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in d.items() if k in keys}
        d["modules"] = tuple(d["modules"])
        d["per_date"] = [DateResult(**r) for r in d["per_date"]]
        return cls(**d)


def aggregate(per_date: list[dict], modules, rule: str = "mean") -> tuple[dict, list[str]]:
    """Combine per-date softmax(alpha) (layer -> probabilities) in date order: ``mean`` averages them; ``vote``
    counts each date's top-1 per layer (ties broken by the mean probability, then by module order)."""
    if rule not in ("mean", "vote") or not per_date:
        raise ValueError(f"rule must be mean|vote and there must be dates; got {rule!r}, {len(per_date)} dates")
    layers = sorted(per_date[0], key=lambda s: int(s[5:]))
    agg, arch = {}, []
    for k in layers:
        P = np.array([np.asarray(p[k], dtype=np.float64) for p in per_date])
        mean = P.mean(0)
        if rule == "mean":
            score = mean
        else:
            score = np.bincount(P.argmax(1), minlength=P.shape[1]) / len(P)
        agg[k] = score.tolist()
        key = score + 1e-9 * mean  # ties in votes: the higher mean probability wins; exact ties: the first module
        arch.append(modules[discretize({k: torch.as_tensor(key)}, "top1")[k][0]])
    return agg, arch


def search_dates(dates: list[CTRDataset], schema: Schema, cfg: SearchConfig, seed: int = 0, dist=None,
                 fail_rank: int | None = None, progress: bool = False) -> SearchOutcome:
    """Search every date this rank owns (dates r, r + W, ...), gather every date's architecture weights on every
    rank and aggregate them in date order. ``dist=None``: in-process, this process owns all dates.
    ``fail_rank``: that rank exits (code 3) before its search (tests of a dying rank)."""
    from .. import distributed
    from ..progress import tqdm

    dist = dist or distributed.Dist()
    mine = list(range(dist.rank, len(dates), dist.world_size))
    M, L = len(cfg.modules), cfg.layers
    dist.barrier()
    t0 = time.perf_counter()
    if fail_rank is not None and dist.rank == fail_rank:
        import sys
        print(f"rank {dist.rank}: injected failure before its search (fail_rank={fail_rank}); exiting with 3",
              file=sys.stderr, flush=True)
        raise SystemExit(3)
    rows = []
    for k in tqdm(mine, desc=f"dates (rank {dist.rank})", disable=not progress, leave=False):
        r = search_date(schema, dates[k], cfg, seed, k)
        rows.append([float(k), float(r.steps), r.final_bce, r.seconds,
                     *[p for l in range(L) for p in r.probs[f"layer{l}"]]])
    local = time.perf_counter() - t0
    table = torch.tensor(rows, dtype=torch.float64).reshape(len(rows), 4 + L * M)
    table = dist.all_gather_rows(table)
    wall = time.perf_counter() - t0
    table = table[torch.argsort(table[:, 0])]
    if table.shape[0] != len(dates) or not torch.equal(table[:, 0], torch.arange(len(dates), dtype=torch.float64)):
        raise RuntimeError(f"rank {dist.rank}: gathered dates {table[:, 0].tolist()}, expected 0..{len(dates) - 1}")
    per_date = []
    for row in table.tolist():
        probs = {f"layer{l}": row[4 + l * M: 4 + (l + 1) * M] for l in range(L)}
        per_date.append(DateResult(int(row[0]), probs, row[3], int(row[1]), row[2]))
    agg, arch = aggregate([r.probs for r in per_date], cfg.modules, cfg.aggregate)
    return SearchOutcome(tuple(cfg.modules), per_date, agg, arch, cfg.aggregate, wall, local, dist.rank,
                         dist.world_size, mine)


# ----------------------------------------------------------------------------------- the discretised model
class DiscreteNet(nn.Module):
    """The searched architecture on its own: embedding -> chosen module per layer (+ LayerNorm) -> MLP head."""

    def __init__(self, schema: Schema, arch: list[str], dim: int = 8, rank: int = 8, hidden=(64,)):
        super().__init__()
        self.arch = list(arch)
        self.ctx = {"F": len(schema.dense) + len(schema.sparse), "d": dim, "rank": rank}
        self.emb = FeatureEmbedding(schema, dim)
        self.blocks = nn.ModuleList(registry.build(REG_NAME[m], self.ctx) for m in arch)
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in arch)
        self.head = MLP(self.ctx["F"] * dim, list(hidden), 1)

    def forward(self, batch):
        x = self.emb.tokens(batch)
        for m, norm in zip(self.blocks, self.norms):
            x = norm(m(x))
        return self.head(x.flatten(1)).squeeze(-1)


def discrete_from(cfg: SearchConfig, schema: Schema, arch: list[str]) -> DiscreteNet:
    return DiscreteNet(schema, arch, cfg.dim, cfg.rank, cfg.hidden)


def per_sample_flops(model: nn.Module, data: CTRDataset, rows: int = 8) -> float:
    """Measured FLOPs per sample (2 per multiply-add) with :func:`companion.cost.flops.count_flops`."""
    from ..cost.flops import count_flops
    b = data.batch(slice(0, rows))
    return count_flops(model, b) / len(b["label"])


def with_lam(cfg: SearchConfig, lam: float) -> SearchConfig:
    return replace(cfg, lam=float(lam))


# ------------------------------------------------------------------------------------------- the experiment
# Helpers the notebook calls, so each of its cells is a few lines: retraining from scratch, the lambda sweep
# against zoo baselines, the per-date table, the lambda pick, and the torchrun timing.
def stack_order(arch: list[str]) -> int:
    """Highest explicit interaction order a stack of residual modules reaches (orders multiply along the stack)."""
    return int(np.prod([ORDER[m] for m in arch]))


def train_scratch(make_model, splits, seed: int, epochs: int = 2, batch_size: int = 256, lr: float = 3e-3) -> dict:
    """Build a model under ``seed`` and train it from scratch on ``splits`` (early stopping on validation AUC)."""
    from ..train import TrainConfig, fit

    torch.manual_seed(seed)
    model = make_model()
    res = fit(model, splits, TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, monitor="auc",
                                         patience=1, progress=False))
    return {"valid_auc": res.valid["auc"], "valid_logloss": res.valid["logloss"], "test_auc": res.test["auc"],
            "test_logloss": res.test["logloss"], "flops": per_sample_flops(model, splits.test),
            "train_s": res.train_time_s}


def baselines(schema, cfg: SearchConfig) -> dict:
    """The hand-designed models the search is compared with, from the zoo, with the searched models' embedding
    width and head MLP, so they differ only in the interaction part: DCNv2 (3 low-rank cross layers beside the
    MLP) and a DLRM-style dot-product model (DOT)."""
    from ..models.zoo import build_model

    return {"DCNv2": lambda: build_model("DCNv2", schema, cfg.dim, cross_layers=3, rank=cfg.rank, hidden=cfg.hidden),
            "DLRM (dot)": lambda: build_model("DOT", schema, cfg.dim, hidden=cfg.hidden)}


def lambda_sweep(shards, cfg: SearchConfig, lams, train_seeds, search_seeds: int = 1, dist=None,
                 epochs: int = 2, batch_size: int = 256, lr: float = 3e-3, progress: bool = True,
                 spec=None, workers: int = 0, timeout_s: float = 86400.0):
    """For every lambda: ``search_seeds`` distributed searches over the dates, each aggregate discretised and
    retrained from scratch under every train seed (train seed i uses search i mod ``search_seeds``); the zoo
    baselines trained under the same seeds. Returns (searches, models) tables.

    The searches run in-process (``workers=0``; in ``dist``'s group if given) or as torchrun jobs of ``workers``
    processes that rebuild the dates from ``spec`` (the paper-scale path: one process per date)."""
    from ..progress import tqdm

    splits = shards.pooled()
    train_seeds = list(train_seeds)
    searches, models = [], []
    for lam in tqdm(list(lams), desc="lambda", disable=not progress, leave=False):
        c = with_lam(cfg, lam)
        outs = []
        for s in range(search_seeds):
            if workers:
                from .dist_search import launch_search
                o = SearchOutcome.from_dict(launch_search(spec, c, train_seeds[0] + s, nproc=workers,
                                                          timeout_s=timeout_s))
            else:
                o = search_dates(shards.dates, shards.schema, c, seed=train_seeds[0] + s, dist=dist)
            outs.append(o)
            searches.append({"lam": float(lam), "search_seed": train_seeds[0] + s, "arch": o.arch,
                             "per_date": o.per_date_top1(), "aggregate": o.aggregate,
                             "expected_flops": arch_flops(o.arch, c.ctx(shards.schema), c.hidden),
                             "search_wall_s": o.search_wall_s, "outcome": o})
        for i, t in enumerate(train_seeds):
            arch = outs[i % search_seeds].arch
            m = train_scratch(lambda: discrete_from(c, shards.schema, arch), splits, t, epochs, batch_size, lr)
            models.append({"model": f"searched, lambda={lam:g}", "lam": float(lam), "seed": t,
                           "arch": " > ".join(arch), "order": stack_order(arch), **m})
    for name, make in baselines(shards.schema, cfg).items():
        for t in train_seeds:
            models.append({"model": name, "lam": float("nan"), "seed": t, "arch": name, "order": 0,
                           **train_scratch(make, splits, t, epochs, batch_size, lr)})
    import pandas as pd
    return pd.DataFrame(searches), pd.DataFrame(models)


def pick_lambda(models, baseline: str = "DCNv2", margin: float = 0.001) -> float:
    """The rule that picks the model a claim is checked on, from validation numbers only: the largest lambda
    whose searched models' mean validation AUC is within ``margin`` of ``baseline``'s (the smallest lambda when
    none is)."""
    base = models[models.model == baseline].valid_auc.mean()
    s = models[models.model.str.startswith("searched")].groupby("lam").valid_auc.mean()
    ok = s[s >= base - margin]
    return float(ok.index.max() if len(ok) else s.index.min())


def per_date_frame(outcome: SearchOutcome, names=None) -> "pd.DataFrame":
    """One row per date and one for the aggregate: the top-1 module of every layer and its weight."""
    import pandas as pd

    rows = []
    for r in outcome.per_date:
        row = {"date": names[r.date] if names else r.date}
        for k in sorted(r.probs, key=lambda s: int(s[5:])):
            i = int(np.argmax(r.probs[k]))
            row[k] = f"{outcome.modules[i]} ({r.probs[k][i]:.2f})"
        row["order"] = stack_order(r.top1(outcome.modules))
        rows.append(row)
    agg = {"date": f"aggregate ({outcome.rule})"}
    for k, m in zip(sorted(outcome.aggregate, key=lambda s: int(s[5:])), outcome.arch):
        agg[k] = f"{m} ({max(outcome.aggregate[k]):.2f})"
    agg["order"] = stack_order(outcome.arch)
    return pd.DataFrame([*rows, agg]).set_index("date")


def time_workers(spec, cfg: SearchConfig, seed: int, workers=(1, 2), repeats: int = 1, timeout_s: float = 600.0,
                 progress: bool = True) -> "pd.DataFrame":
    """Search wall time of the same dates with each number of torchrun worker processes (real launches).
    ``search_wall_s``: rank 0's time from the start barrier to the gathered result (process start and data
    loading excluded); ``launch_wall_s``: the whole torchrun job seen from here."""
    import pandas as pd

    from ..progress import tqdm
    from .dist_search import launch_search

    rows = []
    for rep in tqdm(range(repeats), desc="timing", disable=not progress, leave=False):
        for w in workers:
            job = launch_search(spec, cfg, seed, nproc=w, timeout_s=timeout_s)
            rows.append({"repeat": rep, "workers": w, "search_wall_s": job["search_wall_s"],
                         "launch_wall_s": job["launch_wall_s"], "identical": job["identical"],
                         "arch": " > ".join(job["arch"]), "aggregate": job["aggregate"]})
    return pd.DataFrame(rows)
