"""Rankitect (arXiv 2311.08430): one ranking search space of low-level blocks, and the three NAS families on it
under one FLOPs limit and one compute budget.

Rankitect's code is not public; this module is a reconstruction (see the notebook ``07_rankitect`` for every
choice and where it differs from the paper).

* :class:`RankitectSpace`: ``layers`` stacked layers; each chooses a dense block (FC, gating, sum, dot product,
  FM projection), a sparse block (EFC, attention), a dense/sparse fusion (none, dense->sparse token,
  sparse->dense FM, both), a dense width, a token count, and which earlier outputs (the raw inputs are source 0)
  its dense and its sparse side read. The head reads the last layer. ``flops(cand)`` is analytic (registry
  formulas of :mod:`.rankitect_ops`), so a :class:`~.constraints.Constraint` refuses an over-limit candidate
  before any training.
* :class:`RankNet` (one candidate, exact sizes) and :class:`RankSuperNet` (every block at full width; a path or a
  relaxed mixture is given as per-decision weights; widths are NASRec-style 0/1 masks on full-width outputs).
* The families, all counting their search cost in **training steps** (one optimizer step of any network on one
  mini-batch): :func:`sampling_search` (REINFORCE with an off-policy replay of evaluated architectures, importance
  weights clipped), :func:`oneshot_search` (supernet + RL controller rewarded by ``NE_baseline - NE_subnet`` on the
  same mini-batch, the baseline trained in place; optional baseline swap), :func:`dnas_search` (Gumbel-softmax,
  alternating weight/architecture steps, ``BCE + lambda * E[FLOPs] / limit``, top-1 discretisation).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.schema import CTRSplits, Schema
from ..models.embedding import FeatureEmbedding
from ..models.layers import masked_mean
from .constraints import Constraint
from .protocol import DecisionSpace
from .relax import ArchParams, TemperatureSchedule, discretize, expected_cost
from .searchers import FactorizedPolicy, Reinforce
from .trials import run_search
from . import rankitect_ops as ops
from .rankitect_ops import DENSE_OPS, FUSIONS, SPARSE_OPS


# ============================================================================= the space
class RankitectSpace(DecisionSpace):
    """Decisions per layer ``i``: ``L{i}_dense_op``, ``L{i}_sparse_op``, ``L{i}_fusion``, ``L{i}_width``,
    ``L{i}_tokens``, and one bit per source ``j <= i`` for the dense (``L{i}_din{j}``) and sparse (``L{i}_sin{j}``)
    inputs. An empty source set reads the newest source ``i`` (canonicalised, so ``key`` sees one architecture).
    ``n_dense`` / ``n_tokens``: raw input width and token count (from the data's schema)."""

    def __init__(self, n_dense: int, n_tokens: int, *, layers: int = 3, dense_ops: Sequence[str] = DENSE_OPS,
                 sparse_ops: Sequence[str] = SPARSE_OPS, fusions: Sequence[str] = FUSIONS,
                 widths: Sequence[int] = (16, 32, 64, 128), tokens: Sequence[int] = (4, 8, 16), emb_dim: int = 16,
                 k: int = 4, name: str = "rankitect"):
        bad = [o for o in dense_ops if o not in DENSE_OPS] + [o for o in sparse_ops if o not in SPARSE_OPS] + \
              [o for o in fusions if o not in FUSIONS]
        if bad:
            raise ValueError(f"unknown blocks {bad}; dense {DENSE_OPS}, sparse {SPARSE_OPS}, fusion {FUSIONS}")
        if layers < 1 or n_tokens < 1 or not widths or not tokens:
            raise ValueError("need layers >= 1, n_tokens >= 1 and at least one width and token count")
        self.layers, self.E, self.k = layers, emb_dim, k
        self.d0, self.t0 = max(int(n_dense), 1), int(n_tokens)
        self.dense_ops, self.sparse_ops, self.fusions = tuple(dense_ops), tuple(sparse_ops), tuple(fusions)
        self.widths, self.tokens = tuple(int(w) for w in widths), tuple(int(t) for t in tokens)
        dec = {}
        for i in range(layers):
            dec[f"L{i}_dense_op"], dec[f"L{i}_sparse_op"] = self.dense_ops, self.sparse_ops
            dec[f"L{i}_fusion"], dec[f"L{i}_width"], dec[f"L{i}_tokens"] = self.fusions, self.widths, self.tokens
            for j in range(i + 1):
                dec[f"L{i}_din{j}"] = (0, 1)
                dec[f"L{i}_sin{j}"] = (0, 1)
        super().__init__(dec, name=name)
        self._flops_cache: dict[str, int] = {}

    @classmethod
    def for_schema(cls, schema: Schema, **kw) -> "RankitectSpace":
        return cls(len(schema.dense), len(schema.sparse) + len(schema.sequence), **kw)

    def config(self) -> dict:
        return dict(n_dense=self.d0, n_tokens=self.t0, layers=self.layers, dense_ops=self.dense_ops,
                    sparse_ops=self.sparse_ops, fusions=self.fusions, widths=self.widths, tokens=self.tokens,
                    emb_dim=self.E, k=self.k, name=self.name)

    # ------------------------------------------------------------------ structure
    def layout(self, cand: dict) -> list[dict]:
        """Per layer: its choices, canonical sources, the sizes its blocks see (``ctx``) and whether the head reads
        it (``active``: an unread layer is neither built nor counted)."""
        self.encode(cand)  # validates
        w, t, out = [self.d0], [self.t0], []
        for i in range(self.layers):
            din = tuple(j for j in range(i + 1) if cand[f"L{i}_din{j}"]) or (i,)
            sin = tuple(j for j in range(i + 1) if cand[f"L{i}_sin{j}"]) or (i,)
            D, T, fus = cand[f"L{i}_width"], cand[f"L{i}_tokens"], cand[f"L{i}_fusion"]
            ctx = dict(d_in=sum(w[j] for j in din), widths=tuple(w[j] for j in din), t_in=sum(t[j] for j in sin),
                       D=D, T=T, E=self.E, k=self.k)
            out.append(dict(dense_op=cand[f"L{i}_dense_op"], sparse_op=cand[f"L{i}_sparse_op"], fusion=fus,
                            din=din, sin=sin, D=D, T=T, ctx=ctx, active=False))
            w.append(D)
            t.append(T + (1 if fus in ("d2s", "both") else 0))
        out[-1]["active"] = True
        for i in range(self.layers - 1, -1, -1):
            if out[i]["active"]:
                for j in set(out[i]["din"]) | set(out[i]["sin"]):
                    if j > 0:
                        out[j - 1]["active"] = True
        return out

    def canonical(self, cand: dict) -> dict:
        """The candidate with empty source sets made explicit and the choices of unread layers reset."""
        c = dict(cand)
        for i, L in enumerate(self.layout(cand)):
            for j in range(i + 1):
                c[f"L{i}_din{j}"], c[f"L{i}_sin{j}"] = int(j in L["din"]), int(j in L["sin"])
            if not L["active"]:
                for key in ("dense_op", "sparse_op", "fusion", "width", "tokens"):
                    c[f"L{i}_{key}"] = self.decisions[self.names.index(f"L{i}_{key}")].choices[0]
                for j in range(i + 1):
                    c[f"L{i}_din{j}"] = c[f"L{i}_sin{j}"] = int(j == i)
        return c

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.decisions]

    def key(self, cand: dict) -> str:
        return hashlib.sha1(json.dumps(self.canonical(cand), sort_keys=True).encode()).hexdigest()[:16]

    def head_width(self, layout: list[dict]) -> int:
        last = layout[-1]
        return last["D"] + (last["T"] + (1 if last["fusion"] in ("d2s", "both") else 0)) * self.E

    def flops(self, cand: dict) -> int:
        """Analytic FLOPs per sample (2 per multiply-add) of the standalone model, before any training."""
        k = self.key(cand)
        if k not in self._flops_cache:
            lay, m = self.layout(cand), 0
            for L in lay:
                if not L["active"]:
                    continue
                m += ops.macs(L["dense_op"], L["ctx"]) + ops.macs(L["sparse_op"], L["ctx"])
                if L["fusion"] in ("d2s", "both"):
                    m += ops.macs("d2s", L["ctx"])
                if L["fusion"] in ("s2d", "both"):
                    m += ops.macs("s2d", L["ctx"])
            self._flops_cache[k] = int(2 * (m + self.head_width(lay)))
        return self._flops_cache[k]

    def mflops(self, cand: dict) -> float:
        return self.flops(cand) / 1e6

    def describe(self, cand: dict) -> str:
        parts = []
        for i, L in enumerate(self.layout(cand)):
            if L["active"]:
                fus = "" if L["fusion"] == "none" else f"+{L['fusion']}"
                parts.append(f"L{i}[{L['dense_op']}{L['D']}<{','.join(map(str, L['din']))} "
                             f"{L['sparse_op']}{L['T']}<{','.join(map(str, L['sin']))}{fus}]")
        return " ".join(parts)

    def onehot(self, cand: dict) -> dict[str, torch.Tensor]:
        """Per-decision one-hot weights of the canonical candidate: a path of :class:`RankSuperNet`."""
        code = self.encode(self.canonical(cand))
        return {n: F.one_hot(torch.tensor(int(v)), len(d.choices)).float() for n, d, v in zip(self.names, self.decisions, code)}


def flops_constraint(space: RankitectSpace, limit_flops: float) -> Constraint:
    """The one FLOPs limit every family searches under (MFLOPs per sample)."""
    return Constraint("MFLOPs", space.mflops, limit_flops / 1e6, "MFLOPs/sample")


# ============================================================================= models
class Stem(nn.Module):
    """Raw inputs: the dense features [B, d] (one zero column when there are none) and one E-wide token per sparse
    field and per (mean-pooled) behaviour sequence [B, F, E]."""

    def __init__(self, schema: Schema, E: int):
        super().__init__()
        self.n_dense = len(schema.dense)
        self.emb = FeatureEmbedding(Schema(list(schema.sparse) + list(schema.sequence)), E)
        self.n_seq = len(schema.sequence)

    def forward(self, batch):
        tok = self.emb.tokens(batch) if len(self.emb.schema.sparse) else None
        if self.n_seq:
            seq, mask = self.emb.sequences(batch)
            pooled = masked_mean(seq, mask)
            tok = pooled if tok is None else torch.cat([tok, pooled], 1)
        dense = batch["dense"].float() if self.n_dense else tok.new_zeros(tok.shape[0], 1)
        return dense, tok


class RankNet(nn.Module):
    """One candidate at its exact sizes; layers the head does not read are left out."""

    def __init__(self, schema: Schema, space: RankitectSpace, cand: dict):
        super().__init__()
        self.space, self.cand, self.lay = space, dict(cand), space.layout(cand)
        self.stem = Stem(schema, space.E)
        self.dense, self.sparse, self.d2s, self.s2d = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        for i, L in enumerate(self.lay):
            if not L["active"]:
                continue
            self.dense[str(i)] = ops.build(L["dense_op"], L["ctx"])
            self.sparse[str(i)] = ops.build(L["sparse_op"], L["ctx"])
            if L["fusion"] in ("d2s", "both"):
                self.d2s[str(i)] = ops.build("d2s", L["ctx"])
            if L["fusion"] in ("s2d", "both"):
                self.s2d[str(i)] = ops.build("s2d", L["ctx"])
        self.head = nn.Linear(space.head_width(self.lay), 1)

    def forward(self, batch):
        xd, xs = self.stem(batch)
        dense, sparse = {0: xd}, {0: xs}
        for i, L in enumerate(self.lay):
            if not L["active"]:
                continue
            s = str(i)
            tok = torch.cat([sparse[j] for j in L["sin"]], 1)
            yd = self.dense[s]([dense[j] for j in L["din"]], tok)
            ys = self.sparse[s](tok)
            extra = self.d2s[s](yd) if s in self.d2s else None
            if s in self.s2d:
                yd = yd + self.s2d[s](ys)
            dense[i + 1], sparse[i + 1] = yd, (ys if extra is None else torch.cat([ys, extra], 1))
        n = self.space.layers
        return self.head(torch.cat([dense[n], sparse[n].flatten(1)], 1)).squeeze(-1)


def _nonzero(w: torch.Tensor) -> bool:
    return w.requires_grad or float(w) != 0.0


class RankSuperNet(nn.Module):
    """Every block of every layer at full width (widest dense width ``W``, most tokens ``T`` plus one fusion token
    slot, every source). ``forward(batch, weights)`` takes one weight vector per decision: one-hot for a path
    (blocks with weight 0 are skipped), softmax or Gumbel-softmax for DNAS. Widths and token counts are 0/1 masks
    on full-width outputs mixed by their weights (NASRec's masked sharing, as ``SuperNet(sharing="mask")``):
    LayerNorm sees the full width, so a path is *not* its standalone model, which is retrained from scratch."""

    def __init__(self, schema: Schema, space: RankitectSpace):
        super().__init__()
        self.space, s = space, space
        W, T = max(s.widths), max(s.tokens)
        self.W, self.T = W, T
        self.stem = Stem(schema, s.E)
        self.layers = nn.ModuleList()
        for i in range(s.layers):
            widths = (s.d0,) + (W,) * i
            ctx = dict(d_in=sum(widths), widths=widths, t_in=s.t0 + i * (T + 1), D=W, T=T, E=s.E, k=s.k)
            m = nn.Module()
            m.dense = nn.ModuleDict({o: ops.build(o, ctx) for o in s.dense_ops})
            m.sparse = nn.ModuleDict({o: ops.build(o, ctx) for o in s.sparse_ops})
            m.d2s, m.s2d = ops.build("d2s", ctx), ops.build("s2d", ctx)
            self.layers.append(m)
        self.register_buffer("wmask", (torch.arange(W)[None] < torch.tensor(s.widths)[:, None]).float(), persistent=False)
        self.register_buffer("tmask", (torch.arange(T)[None] < torch.tensor(s.tokens)[:, None]).float(), persistent=False)
        self.head = nn.Linear(W + (T + 1) * s.E, 1)

    def forward(self, batch, w: dict[str, torch.Tensor]):
        s = self.space
        xd, xs = self.stem(batch)
        dense, sparse = [xd], [xs]
        for i, m in enumerate(self.layers):
            xdl = [dense[j] * w[f"L{i}_din{j}"][1] for j in range(i + 1)]
            tok = torch.cat([sparse[j] * w[f"L{i}_sin{j}"][1] for j in range(i + 1)], 1)
            wm = w[f"L{i}_width"] @ self.wmask
            tm = (w[f"L{i}_tokens"] @ self.tmask)[None, :, None]
            yd = sum(wk * m.dense[o](xdl, tok) for o, wk in zip(s.dense_ops, w[f"L{i}_dense_op"]) if _nonzero(wk)) * wm
            ys = sum(wk * m.sparse[o](tok) for o, wk in zip(s.sparse_ops, w[f"L{i}_sparse_op"]) if _nonzero(wk)) * tm
            fw = dict(zip(s.fusions, w[f"L{i}_fusion"]))
            zero = yd.new_zeros(())
            p_d2s = fw.get("d2s", zero) + fw.get("both", zero)
            p_s2d = fw.get("s2d", zero) + fw.get("both", zero)
            extra = p_d2s * m.d2s(yd) if _nonzero(p_d2s) else ys.new_zeros(ys.shape[0], 1, s.E)
            if _nonzero(p_s2d):
                yd = yd + p_s2d * m.s2d(ys) * wm
            dense.append(yd)
            sparse.append(torch.cat([ys, extra], 1))
        return self.head(torch.cat([dense[-1], sparse[-1].flatten(1)], 1)).squeeze(-1)


def expected_flops(space: RankitectSpace, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """FLOPs per sample expected under independent per-decision probabilities ``p`` (differentiable), by the same
    registry formulas as :meth:`RankitectSpace.flops` with expected sizes plugged in (mean-field: exact where a
    cost is linear in each decision, as FC's ``d_in * D``; an approximation for the attention's ``T^2`` and the sum's
    max). A layer's cost is weighted by the probability that the head reads it. One-hot ``p`` gives exactly
    ``space.flops`` of that candidate (the tests check it)."""
    s, L = space, space.layers
    on = lambda n: p[n][1]  # noqa: E731
    Ew, Et, costs, pd2s = [torch.tensor(float(s.d0))], [torch.tensor(float(s.t0))], [], []
    for i in range(L):
        D = (p[f"L{i}_width"] * torch.tensor(s.widths, dtype=torch.float32)).sum()
        T = (p[f"L{i}_tokens"] * torch.tensor(s.tokens, dtype=torch.float32)).sum()
        fw = dict(zip(s.fusions, p[f"L{i}_fusion"]))
        z = D.new_zeros(())
        d2s, s2d = fw.get("d2s", z) + fw.get("both", z), fw.get("s2d", z) + fw.get("both", z)
        widths = tuple(on(f"L{i}_din{j}") * Ew[j] for j in range(i + 1))
        ctx = dict(d_in=sum(widths), widths=widths, t_in=sum(on(f"L{i}_sin{j}") * Et[j] for j in range(i + 1)),
                   D=D, T=T, E=s.E, k=s.k)
        dense = expected_cost(p[f"L{i}_dense_op"], torch.stack([torch.as_tensor(ops.macs(o, ctx), dtype=torch.float32)
                                                                 for o in s.dense_ops]), normaliser=1.0)
        sparse = expected_cost(p[f"L{i}_sparse_op"], torch.stack([torch.as_tensor(ops.macs(o, ctx), dtype=torch.float32)
                                                                   for o in s.sparse_ops]), normaliser=1.0)
        costs.append(dense + sparse + d2s * ops.macs("d2s", ctx) + s2d * ops.macs("s2d", ctx))
        Ew.append(D)
        Et.append(T + d2s)
        pd2s.append(d2s)
    # probability that layer i is read by the head (mean-field over the source bits; the empty-set rule ignored)
    reach = [None] * L
    reach[L - 1] = torch.ones(())
    for i in range(L - 2, -1, -1):
        miss = torch.ones(())
        for r in range(i + 1, L):
            reads = 1 - (1 - on(f"L{r}_din{i + 1}")) * (1 - on(f"L{r}_sin{i + 1}"))
            miss = miss * (1 - reach[r] * reads)
        reach[i] = 1 - miss
    head = Ew[L] + Et[L] * s.E
    return 2 * (sum(r * c for r, c in zip(reach, costs)) + head)


# ============================================================================= training helpers
def entropy_of(base_ctr: float) -> float:
    return float(-(base_ctr * math.log(base_ctr) + (1 - base_ctr) * math.log(1 - base_ctr)))


def stream(ds, batch_size: int, seed: int):
    """Endless shuffled mini-batches of a :class:`CTRDataset` (a fresh permutation each pass, seeded)."""
    if len(ds) == 0:
        raise ValueError("cannot stream batches from an empty split")
    batch_size = min(batch_size, len(ds))  # a split smaller than one batch is one batch
    g = torch.Generator().manual_seed(int(seed))
    while True:
        order = torch.randperm(len(ds), generator=g)
        for a in range(0, len(ds) - batch_size + 1, batch_size):
            yield ds.batch(order[a:a + batch_size])


@torch.no_grad()
def ne_on(model: nn.Module, ds, h: float, call=None, batch_size: int = 4096) -> float:
    """Normalised entropy (log loss / entropy of the training base rate) of ``model`` on ``ds``."""
    was = model.training
    model.eval()
    tot, n = 0.0, 0
    for b in ds.batches(batch_size):
        logit = call(b) if call is not None else model(b)
        tot += float(F.binary_cross_entropy_with_logits(logit, b["label"], reduction="sum"))
        n += len(b["label"])
    model.train(was)
    return tot / max(n, 1) / h


@dataclass
class SearchConfig:
    """One budget for every family: ``budget_steps`` training steps (an optimizer step of any network on one
    mini-batch of ``batch_size``: a trial's steps, a supernet step, an in-place baseline step, an architecture
    step)."""

    budget_steps: int = 600
    batch_size: int = 256
    lr: float = 3e-3
    eval_rows: int = 2000
    # sampling-based
    trial_steps: int = 60
    controller_lr: float = 0.2
    replay: int = 4
    clip: float = 5.0
    # one-shot
    oneshot_lr: float = 0.05
    warmup_frac: float = 0.25
    # DNAS
    arch_lr: float = 0.05
    lam: float = 0.1
    tau_start: float = 5.0
    tau_end: float = 0.5
    weight_mode: str = "hard"  # the weight step's path: hard (one Gumbel-sampled path) or gumbel (soft mixture)
    final_draws: int = 512


@dataclass
class FamilyResult:
    family: str
    cand: dict
    steps: int
    wall_s: float
    history: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


def _first_rows(ds, n: int):
    return ds.subset(torch.arange(min(n, len(ds))))


def most_likely_feasible(space: RankitectSpace, policy: FactorizedPolicy, constraint: Constraint, rng,
                         draws: int = 512) -> tuple[dict, bool]:
    """The policy's mode if it is within the limit, else the most probable feasible candidate among ``draws``
    draws from the policy; returns the candidate and whether the mode itself was feasible."""
    mode = space.decode(policy.mode())
    if constraint.ok(mode):
        return mode, True
    best, best_lp = None, -math.inf
    for _ in range(draws):
        code, lp = policy.sample(rng)
        c = space.decode(code)
        if lp > best_lp and constraint.ok(c):
            best, best_lp = c, lp
    if best is None:
        raise RuntimeError(f"no candidate within {constraint.limit} {constraint.unit} among {draws} draws")
    return best, False


def policy_from_probs(space: RankitectSpace, probs: dict[str, torch.Tensor]) -> FactorizedPolicy:
    pol = FactorizedPolicy(space.cardinalities())
    pol.logits = [np.log(np.clip(probs[n].double().numpy(), 1e-12, None)) for n in space.names]
    return pol


# ============================================================================= 1. sampling-based
class ReplayReinforce(Reinforce):
    """The core's REINFORCE plus an off-policy replay (our reading of Rankitect's "joint on-/off-policy" RL): after
    every on-policy update, ``replay`` architectures already evaluated are drawn from the buffer and learned from
    again with importance weight ``min(pi(a) / mu(a), clip)`` (``mu``: the policy that drew them), at no trial cost."""

    name = "reinforce+replay"

    def __init__(self, space, seed=0, constraints=(), *, lr=0.2, baseline_decay=0.9, replay=4, clip=5.0):
        super().__init__(space, seed, constraints, lr=lr, baseline_decay=baseline_decay)
        self.replay, self.clip, self.buffer, self.weights = replay, clip, [], []

    def _observe(self, p, reward):
        super()._observe(p, reward)
        if reward is None or "code" not in p.info:
            return
        self.buffer.append((np.asarray(p.info["code"]), float(p.info["logp"]), float(reward)))
        if self.baseline is None or len(self.buffer) < 2:
            return
        for _ in range(self.replay):
            code, logp_b, r = self.buffer[int(self.rng.integers(len(self.buffer)))]
            iw = min(math.exp(self.policy.log_prob(code) - logp_b), self.clip)
            self.weights.append(iw)
            self.policy.update(code, iw * (r - self.baseline) / max(self.spread, 1e-8), self.lr)


def train_steps(model: nn.Module, batches, steps: int, lr: float, call=None) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    loss = torch.zeros(())
    for _ in range(steps):
        b = next(batches)
        loss = F.binary_cross_entropy_with_logits(call(b) if call else model(b), b["label"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


def sampling_search(space: RankitectSpace, splits: CTRSplits, constraint: Constraint, cfg: SearchConfig,
                    seed: int = 0, replay: bool = True) -> FamilyResult:
    """REINFORCE over stand-alone trials of ``trial_steps`` steps each (low fidelity), reward ``-NE`` on the first
    ``eval_rows`` validation rows; ``budget_steps // trial_steps`` trials."""
    t0 = time.perf_counter()
    h, val = entropy_of(splits.base_ctr), _first_rows(splits.valid, cfg.eval_rows)
    n_trials = max(1, cfg.budget_steps // cfg.trial_steps)
    searcher = (ReplayReinforce(space, seed, (constraint,), lr=cfg.controller_lr, replay=cfg.replay, clip=cfg.clip)
                if replay else Reinforce(space, seed, (constraint,), lr=cfg.controller_lr))

    def objective(cand, tseed):
        torch.manual_seed(tseed)
        model = RankNet(splits.schema, space, cand)
        train_steps(model, stream(splits.train, cfg.batch_size, tseed), cfg.trial_steps, cfg.lr)
        return {"ne": ne_on(model, val, h), "mflops": space.mflops(cand)}

    res = run_search(space, searcher, objective, metric="ne", direction="min", max_trials=n_trials, seed=seed,
                     progress=False)
    best = res.best()
    hist = [{"trial": t["index"], "ne": (t["metrics"] or {}).get("ne"), "mflops": (t["metrics"] or {}).get("mflops")}
            for t in res.trials]
    iw = getattr(searcher, "weights", [])
    return FamilyResult("sampling", space.from_json(best["candidate"]), n_trials * cfg.trial_steps,
                        time.perf_counter() - t0, hist,
                        {"trials": n_trials, "rejected": res.rejected, "search_ne": best["metrics"]["ne"],
                         "replay_updates": len(iw), "mean_importance_weight": float(np.mean(iw)) if iw else None,
                         "clipped_frac": float(np.mean(np.asarray(iw) >= cfg.clip)) if iw else None})


# ============================================================================= 2. one-shot
def _draw_feasible(space, policy, constraint, rng, uniform: bool, tries: int = 200):
    for _ in range(tries):
        code = np.array([int(rng.integers(c)) for c in space.cardinalities()]) if uniform else policy.sample(rng)[0]
        cand = space.decode(code)
        if constraint.ok(cand):
            return code, cand
    raise RuntimeError(f"{tries} draws were all over {constraint.limit} {constraint.unit}")


def oneshot_search(space: RankitectSpace, splits: CTRSplits, constraint: Constraint, cfg: SearchConfig,
                   make_baseline: Callable[[], nn.Module], seed: int = 0,
                   swap_at: float | None = None, make_stronger: Callable[[], nn.Module] | None = None) -> FamilyResult:
    """A weight-sharing supernet trained on single paths drawn by a factorised RL controller (uniform during the
    first ``warmup_frac``), beside an in-place baseline trained on the same mini-batches. Per step the reward is
    ``NE_baseline - NE_subnet`` on that mini-batch, measured before the update; the controller learns from its
    advantage over a moving average. Each iteration is two training steps (subnet, baseline).
    ``swap_at`` (a fraction of the iterations) replaces the baseline with ``make_stronger()`` there (the
    "dynamic baseline")."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sn, base = RankSuperNet(splits.schema, space), make_baseline()
    opt_s, opt_b = torch.optim.Adam(sn.parameters(), lr=cfg.lr), torch.optim.Adam(base.parameters(), lr=cfg.lr)
    policy = FactorizedPolicy(space.cardinalities())
    h = entropy_of(splits.base_ctr)
    iters = max(1, cfg.budget_steps // 2)
    warm, swap = int(cfg.warmup_frac * iters), (int(swap_at * iters) if swap_at is not None else None)
    batches = stream(splits.train, cfg.batch_size, seed)
    b_avg, spread, hist = None, 1.0, []
    for t in range(iters):
        if swap is not None and t == swap:
            base = make_stronger()
            opt_b = torch.optim.Adam(base.parameters(), lr=cfg.lr)
        b = next(batches)
        code, cand = _draw_feasible(space, policy, constraint, rng, uniform=t < warm)
        ls = F.binary_cross_entropy_with_logits(sn(b, space.onehot(cand)), b["label"])
        lb = F.binary_cross_entropy_with_logits(base(b), b["label"])
        reward = (lb.item() - ls.item()) / h
        opt_s.zero_grad(set_to_none=True)
        opt_b.zero_grad(set_to_none=True)
        (ls + lb).backward()
        opt_s.step()
        opt_b.step()
        if t >= warm:
            if b_avg is None:
                b_avg = reward
            else:
                policy.update(code, (reward - b_avg) / max(spread, 1e-8), cfg.oneshot_lr)
                spread = 0.9 * spread + 0.1 * abs(reward - b_avg)
                b_avg = 0.9 * b_avg + 0.1 * reward
        hist.append({"iter": t, "reward": reward, "ne_subnet": ls.item() / h, "ne_baseline": lb.item() / h,
                     "moving_baseline": b_avg, "entropy": policy.entropy()})
    cand, mode_ok = most_likely_feasible(space, policy, constraint, rng, cfg.final_draws)
    return FamilyResult("one-shot", cand, 2 * iters, time.perf_counter() - t0, hist,
                        {"iterations": iters, "warmup": warm, "swap_at": swap, "mode_feasible": mode_ok,
                         "final_entropy": policy.entropy()})


# ============================================================================= 3. DNAS
def dnas_search(space: RankitectSpace, splits: CTRSplits, constraint: Constraint, cfg: SearchConfig,
                seed: int = 0) -> FamilyResult:
    """FBNet/DistDNAS-style DNAS on :class:`RankSuperNet`: per iteration one weight step on a training batch (the
    supernet under a Gumbel-softmax sample, architecture detached; ``weight_mode="hard"`` makes it a one-hot
    straight-through sample, so one path is computed, GDAS-style) and one architecture step on a validation
    batch (``BCE + lam * E[FLOPs] / limit``, the expectation under softmax(alpha)). Temperature annealed from
    ``tau_start`` to ``tau_end``; then top-1 per decision (:func:`relax.discretize`); if that breaks the limit,
    the most probable feasible candidate among ``final_draws`` draws from softmax(alpha)."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    sn = RankSuperNet(splits.schema, space)
    ap = ArchParams({n: len(d.choices) for n, d in zip(space.names, space.decisions)})
    opt_w, opt_a = torch.optim.Adam(sn.parameters(), lr=cfg.lr), torch.optim.Adam(ap.parameters(), lr=cfg.arch_lr)
    iters = max(1, cfg.budget_steps // 2)
    sched = TemperatureSchedule(cfg.tau_start, cfg.tau_end, iters)
    tr, va = stream(splits.train, cfg.batch_size, seed), stream(splits.valid, cfg.batch_size, seed + 1)
    limit = constraint.limit * 1e6
    hist = []
    for t in range(iters):
        tau = sched(t)
        b = next(tr)
        w = {n: ap.weights(n, tau, cfg.weight_mode, gen).detach() for n in space.names}
        loss = F.binary_cross_entropy_with_logits(sn(b, w), b["label"])
        opt_w.zero_grad(set_to_none=True)
        loss.backward()
        opt_w.step()
        vb = next(va)
        w = {n: ap.weights(n, tau, "gumbel", gen) for n in space.names}
        ce = F.binary_cross_entropy_with_logits(sn(vb, w), vb["label"])
        ef = expected_flops(space, {n: ap.weights(n, 1.0, "softmax") for n in space.names})
        la = ce + cfg.lam * ef / limit
        opt_a.zero_grad(set_to_none=True)
        sn.zero_grad(set_to_none=True)
        la.backward()
        opt_a.step()
        hist.append({"iter": t, "tau": tau, "train_bce": loss.item(), "valid_bce": ce.item(),
                     "expected_mflops": ef.item() / 1e6})
    probs = ap.probs()
    top = discretize(probs, "top1")
    cand = space.decode([top[n][0] for n in space.names])
    feasible = constraint.ok(cand)
    if not feasible:
        cand, _ = most_likely_feasible(space, policy_from_probs(space, probs), constraint,
                                       np.random.default_rng(seed), cfg.final_draws)
    return FamilyResult("DNAS", cand, 2 * iters, time.perf_counter() - t0, hist,
                        {"iterations": iters, "top1_feasible": feasible,
                         "probs": {n: [round(float(x), 4) for x in v] for n, v in probs.items()}})


# ============================================================================= retraining and baselines
def dummy_batch(splits: CTRSplits, n: int = 8) -> dict:
    return splits.train.batch(torch.arange(min(n, len(splits.train))))


def model_mflops(model: nn.Module, splits: CTRSplits) -> float:
    """Measured FLOPs per sample (``cost.flops.count_flops`` on a dummy batch), in MFLOPs."""
    from ..cost.flops import count_flops
    b = dummy_batch(splits)
    return count_flops(model, b) / len(b["label"]) / 1e6


def retrain(make: Callable[[], nn.Module], splits: CTRSplits, seed: int, train_cfg) -> dict:
    """Train a fresh model (``make()`` under ``torch.manual_seed(seed)``) with ``companion.train.fit``; test metrics."""
    from dataclasses import replace
    from ..train import fit
    torch.manual_seed(seed)
    model = make()
    res = fit(model, splits, replace(train_cfg, seed=seed), desc="retrain")
    return {"ne": res.test["ne"], "auc": res.test["auc"], "logloss": res.test["logloss"],
            "valid_ne": res.valid["ne"], "mflops": model_mflops(model, splits), "steps": res.steps,
            "train_s": res.train_time_s, "model": model}


# ============================================================================= the notebook's experiment
ENGINEER = {  # hand-designed baselines from the zoo, sized near the space's models (our sizes, not Meta's)
    "DLRM-style": ("DOT", dict(hidden=(128, 64))),
    "DCNv2": ("DCNv2", dict(cross_layers=2, rank=16, hidden=(128, 64))),
    "DHEN": ("DHEN", dict(layers=1, rank=16, hidden=(128, 64))),
}
ENGINEER_BLOCKS = dict(dense_ops=("fc", "dot"), sparse_ops=("efc",), fusions=("none", "s2d"))  # DLRM/DHEN's blocks


def engineer(name: str, schema: Schema, dim: int) -> nn.Module:
    """A fresh engineer baseline (``ENGINEER[name]``) on ``dim``-wide embeddings."""
    from ..models.zoo import build_model
    zoo, kw = ENGINEER[name]
    return build_model(zoo, schema, dim, **kw)


def pretrained(name: str, splits: CTRSplits, dim: int, steps: int, seed: int, lr: float = 3e-3,
               batch_size: int = 256) -> nn.Module:
    """An engineer baseline already trained for ``steps`` steps: the stronger model engineers ship mid-search."""
    torch.manual_seed(seed)
    m = engineer(name, splits.schema, dim)
    train_steps(m, stream(splits.train, batch_size, seed + 17), steps, lr)
    return m


def random_control(space: RankitectSpace, constraint: Constraint, seed: int) -> FamilyResult:
    """The control: one architecture drawn uniformly from the feasible part of the space, no search."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        c = space.sample_uniform(rng)
        if constraint.ok(c):
            return FamilyResult("random", c, 0, 0.0)
    raise RuntimeError("no feasible uniform draw in 1000")


def run_family(family: str, space: RankitectSpace, splits: CTRSplits, constraint: Constraint, cfg: SearchConfig,
               seed: int, baseline: Callable[[], nn.Module] | None = None, **kw) -> FamilyResult:
    """One search of ``family`` (sampling | one-shot | DNAS | random) under the shared limit and budget."""
    if family == "sampling":
        return sampling_search(space, splits, constraint, cfg, seed, **kw)
    if family == "one-shot":
        return oneshot_search(space, splits, constraint, cfg, baseline, seed, **kw)
    if family == "DNAS":
        return dnas_search(space, splits, constraint, cfg, seed)
    if family == "random":
        return random_control(space, constraint, seed)
    raise ValueError(f"family must be sampling, one-shot, DNAS or random, got {family!r}")


def result_row(name: str, seed: int, res: FamilyResult | None, space: RankitectSpace | None, metrics: dict) -> dict:
    row = {"model": name, "seed": seed, "ne": metrics["ne"], "auc": metrics["auc"], "logloss": metrics["logloss"],
           "valid_ne": metrics.get("valid_ne", float("nan")), "mflops": metrics["mflops"],
           "retrain_steps": metrics["steps"]}
    if res is not None:
        row.update(search_steps=res.steps, search_s=res.wall_s, arch=space.describe(res.cand),
                   analytic_mflops=space.mflops(res.cand))
    return row


def pick_lambda(frame, margin: float, metric: str = "valid_ne", higher_is_better: bool = False,
                reference: float | None = None) -> float:
    """The rule that picks the DNAS cost weight the claims are checked on, from validation numbers only
    (DistDNAS's ``pick_lambda`` generalised to either direction and to a reference of the sweep's own): the
    **largest** lambda whose mean ``metric`` over seeds is within ``margin`` of ``reference`` (by default the best
    lambda's mean, so the cost term may cost at most ``margin``); the best lambda when none is. ``frame`` has one
    row per lambda and seed, with columns ``lam`` and ``metric``."""
    s = frame.groupby("lam")[metric].mean()
    if s.isna().any():
        raise ValueError(f"{metric} is missing for lambda {list(s.index[s.isna()])}")
    best = s.idxmax() if higher_is_better else s.idxmin()
    ref = s[best] if reference is None else reference
    ok = s[s >= ref - margin] if higher_is_better else s[s <= ref + margin]
    return float(ok.index.max() if len(ok) else best)
