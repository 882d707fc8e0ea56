"""The CTR setting of Meta's AutoML paper (arXiv 2311.07870) on data we have: a DHEN-like stacked-interaction
space plus the learning rate, searched with low-fidelity trials under a FLOPs limit.

* :func:`dhen_space` - the decisions (layers, interaction modules per layer, cross rank, MLP widths, embedding
  width, learning rate) as a :class:`~companion.nas.protocol.DecisionSpace`. The candidate is built with the
  zoo's :class:`~companion.models.ctr.DHEN` (DOT and DCN modules; the paper's space also lists attention,
  linear and convolution modules, which the zoo's DHEN layer does not have).
* :class:`LowFiObjective` - one trial: train for a fraction of an epoch with the shared trainer
  (:func:`companion.train.fit`, called once per curve segment so the validation NE is read along the way),
  fit a line to the tail of that curve and extrapolate to the target horizon (the paper's "Eq. 2" idea,
  reconstructed; see :mod:`companion.nas.lowfi`). FLOPs are counted analytically first and a candidate over the
  limit is refused before any training.
* :func:`flops_constraint` - FLOPs per example (``companion.cost.flops``) as a search
  :class:`~companion.nas.constraints.Constraint`, so every searcher redraws infeasible proposals.

Where we differ from the trainer's one-run semantics: each curve segment is a separate ``fit`` call, so the
optimizer state (Adam moments) restarts at every segment boundary.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..cost.flops import profile
from ..data.schema import CTRSplits
from ..models.zoo import build_model
from ..train import TrainConfig, fit
from .constraints import Constraint
from .lowfi import trend_correct
from .protocol import DecisionSpace

MODULES = {"dot": ("dot",), "dcn": ("dcn",), "dot+dcn": ("dot", "dcn")}
HIDDEN = {"64": (64,), "128-64": (128, 64), "256-128": (256, 128)}

# The zoo's DHEN defaults with the project's usual learning rate: the hand-tuned baseline every gain is measured
# against (the paper's baselines are Meta's production models; this one is ours).
HAND_TUNED = {"layers": 2, "modules": "dot+dcn", "rank": 32, "hidden": "256-128", "dim": 16, "lr": 1e-3}


def dhen_space(layers=(1, 2, 3), modules=tuple(MODULES), ranks=(8, 16, 32), hidden=tuple(HIDDEN), dims=(8, 16),
               lrs=(3e-4, 1e-3, 3e-3, 1e-2), name: str = "dhen+lr") -> DecisionSpace:
    for m in modules:
        if m not in MODULES:
            raise ValueError(f"unknown module set {m!r}; choose from {list(MODULES)}")
    for h in hidden:
        if h not in HIDDEN:
            raise ValueError(f"unknown MLP shape {h!r}; choose from {list(HIDDEN)}")
    return DecisionSpace({"layers": tuple(layers), "modules": tuple(modules), "rank": tuple(ranks),
                          "hidden": tuple(hidden), "dim": tuple(dims), "lr": tuple(lrs)}, name=name)


def build_candidate(cand: dict, schema, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(int(seed))
    return build_model("DHEN", schema, int(cand["dim"]), layers=int(cand["layers"]), modules=MODULES[cand["modules"]],
                       hidden=HIDDEN[cand["hidden"]], rank=int(cand["rank"]))


def _probe_batch(splits: CTRSplits, n: int = 8) -> dict:
    return splits.train.batch(torch.arange(min(n, len(splits.train))))


def candidate_flops(cand: dict, splits: CTRSplits) -> float:
    """FLOPs per example of one forward pass (the matrix products ``cost.flops`` sees; embedding look-ups are free)."""
    model = build_candidate(cand, splits.schema)
    return float(profile(model, _probe_batch(splits)).flops_per_sample)


def _arch_key(cand: dict) -> tuple:
    return tuple((k, cand[k]) for k in sorted(cand) if k != "lr")  # the learning rate does not change FLOPs


def flops_constraint(splits: CTRSplits, limit: float, name: str = "FLOPs/example") -> Constraint:
    """A FLOPs limit checked analytically (cached per architecture, so redraws cost nothing after the first)."""
    cache: dict[tuple, float] = {}

    def measure(cand: dict) -> float:
        k = _arch_key(cand)
        if k not in cache:
            cache[k] = candidate_flops(cand, splits)
        return cache[k]

    return Constraint(name, measure, float(limit), unit="FLOPs")


class ConstraintViolation(ValueError):
    """A candidate over a limit reached the objective; it was refused before training."""


@dataclass
class LowFiObjective:
    """``objective(cand, seed)``: train ``fraction`` of an epoch in ``checkpoints`` segments, read the validation NE
    after each, and return the trend-corrected NE at ``horizon`` epochs (``ne``, what the search minimises) beside
    the raw last NE (``ne_raw``), FLOPs per example, the test NE and the curve. ``window`` = points of the tail the
    line is fitted to; ``x`` = ``"linear"`` in examples seen (the paper's form) or ``"log"``.

    ``train_seed``: when set, every trial of a candidate trains with that seed whatever seed the search passes,
    and the result is remembered, so a candidate that several searches (or seeds) propose is trained once and
    all of them see the same number, as on a benchmark table (``evaluations`` counts real trainings)."""

    splits: CTRSplits
    fraction: float = 0.5
    checkpoints: int = 4
    horizon: float = 1.0
    window: int = 3
    batch_size: int = 256
    x: str = "linear"
    constraints: Sequence[Constraint] = ()
    eval_batch_size: int = 8192
    probe_test_rows: int = 256
    train_seed: int | None = None
    _steps_per_epoch: int = field(init=False, default=0)

    def __post_init__(self):
        if not 0 < self.fraction or self.checkpoints < 1 or self.window < 1 or self.horizon < self.fraction:
            raise ValueError(f"need fraction > 0, checkpoints >= 1, window >= 1, horizon >= fraction; got "
                             f"{self.fraction}, {self.checkpoints}, {self.window}, {self.horizon}")
        self._steps_per_epoch = math.ceil(len(self.splits.train) / self.batch_size)
        self._memo: dict[str, dict] = {}
        self.evaluations = 0
        # fit() scores its test split after every segment; a trial never reads that number, so give it a few rows
        s = self.splits
        self._fit_splits = CTRSplits(s.schema, s.train, s.valid, s.test.subset(torch.arange(min(self.probe_test_rows, len(s.test)))),
                                     s.info, s.pretrained)

    def check(self, cand: dict) -> dict:
        """FLOPs of the candidate; raises :class:`ConstraintViolation` (before any training) when over a limit."""
        out = {}
        for c in self.constraints:
            v = c.value(cand)
            out[c.name] = v
            if v > c.limit:
                raise ConstraintViolation(f"{c.name} = {v:.4g} {c.unit} exceeds the limit {c.limit:.4g}; not trained")
        return out

    def curve(self, cand: dict, seed: int, fraction: float | None = None, checkpoints: int | None = None):
        """(examples seen, validation NE) after each segment, and the last ``fit`` result."""
        fraction, checkpoints = fraction or self.fraction, checkpoints or self.checkpoints
        total = max(checkpoints, round(fraction * self._steps_per_epoch))
        bounds = np.linspace(0, total, checkpoints + 1).round().astype(int)
        model = build_candidate(cand, self.splits.schema, seed)
        xs, ys, res = [], [], None
        for k in range(checkpoints):
            steps = int(bounds[k + 1] - bounds[k])
            cfg = TrainConfig(epochs=1, batch_size=self.batch_size, lr=float(cand["lr"]), max_steps=steps,
                              seed=int(seed) * 1009 + k, progress=False, patience=1, monitor="logloss",
                              eval_batch_size=self.eval_batch_size)
            res = fit(model, self._fit_splits, cfg, desc="low-fidelity trial")
            xs.append(int(bounds[k + 1]) * self.batch_size)
            ys.append(float(res.valid["ne"]))
        return np.array(xs, float), np.array(ys, float), res, model

    def __call__(self, cand: dict, seed: int = 0) -> dict:
        limits = self.check(cand)
        if self.train_seed is not None:
            key = repr(sorted(cand.items()))
            if key not in self._memo:
                self._memo[key] = self._run(cand, self.train_seed, limits)
            return dict(self._memo[key])
        return self._run(cand, seed, limits)

    def _run(self, cand: dict, seed: int, limits: dict) -> dict:
        self.evaluations += 1
        t0 = time.perf_counter()
        xs, ys, res, model = self.curve(cand, seed)
        w = min(self.window, len(xs))
        target = self.horizon * self._steps_per_epoch * self.batch_size
        ne = float(trend_correct(xs[-w:], ys[-w:][None, :], target, x=self.x)[0])
        flops = limits.get("FLOPs/example")
        if flops is None:
            flops = float(profile(model, _probe_batch(self.splits)).flops_per_sample)
        return {"ne": ne, "ne_raw": float(ys[-1]), "flops": float(flops),
                "valid_auc": float(res.valid["auc"]), "train_s": time.perf_counter() - t0,
                "curve": [[float(a), float(b)] for a, b in zip(xs, ys)]}


def full_fidelity(cand: dict, splits: CTRSplits, seed: int = 0, epochs: int = 1, batch_size: int = 256) -> dict:
    """Train a candidate for whole epochs (the long horizon) and return its validation and test NE."""
    model = build_candidate(cand, splits.schema, seed)
    res = fit(model, splits, TrainConfig(epochs=epochs, batch_size=batch_size, lr=float(cand["lr"]), seed=int(seed),
                                         progress=False, monitor="logloss"), desc="full-fidelity check")
    return {"valid_ne": float(res.valid["ne"]), "test_ne": float(res.test["ne"]), "test_auc": float(res.test["auc"])}


def subsample(splits: CTRSplits, n_train: int | None, n_valid: int | None = None, n_test: int | None = None,
              seed: int = 0) -> CTRSplits:
    """Random rows of each split (None = all): the laptop-sized version of a dataset, same schema and base CTR
    definition (the training-set CTR of the rows kept)."""
    g = torch.Generator().manual_seed(int(seed))

    def pick(ds, n):
        if n is None or n >= len(ds):
            return ds
        return ds.subset(torch.randperm(len(ds), generator=g)[:int(n)].sort().values)

    return CTRSplits(splits.schema, pick(splits.train, n_train), pick(splits.valid, n_valid), pick(splits.test, n_test),
                     {**splits.info, "subsample": f"train {n_train}, valid {n_valid}, test {n_test} rows (seed {seed})"},
                     splits.pretrained)


def pilot_taus(objective: LowFiObjective, cands: Sequence[dict], seed: int = 0, long_fraction: float = 1.0,
               checkpoints: int = 8) -> dict:
    """The paper's pilot study on one set of candidates: train each to ``long_fraction`` epochs reading the
    validation NE at ``checkpoints`` points; the curve up to ``objective.fraction`` is the low-fidelity trial
    (raw = NE there, corrected = its tail extrapolated to the end), the last point the long-horizon truth.
    Returns Kendall tau of raw and corrected against the truth, and the per-candidate numbers."""
    from .lowfi import kendall

    rows = []
    for c in cands:
        xs, ys, _, _ = objective.curve(c, seed, fraction=long_fraction, checkpoints=checkpoints)
        short = xs <= objective.fraction * objective._steps_per_epoch * objective.batch_size + 1e-9
        if short.sum() < 1:
            raise ValueError("no checkpoint falls inside the low-fidelity fraction; raise checkpoints")
        xs_s, ys_s = xs[short], ys[short]
        w = min(objective.window, len(xs_s))
        corr = float(trend_correct(xs_s[-w:], ys_s[-w:][None, :], xs[-1], x=objective.x)[0])
        rows.append({"ne_raw": float(ys_s[-1]), "ne_trend": corr, "ne_long": float(ys[-1])})
    raw = [r["ne_raw"] for r in rows]
    trend = [r["ne_trend"] for r in rows]
    long = [r["ne_long"] for r in rows]
    return {"tau_raw": kendall(raw, long), "tau_trend": kendall(trend, long), "rows": rows}


def ne_gain_pct(baseline_ne, ne) -> np.ndarray:
    """Relative NE reduction over the baseline, in % (positive = better than the baseline)."""
    b, v = np.asarray(baseline_ne, float), np.asarray(ne, float)
    return (b - v) / b * 100.0


def best_candidates(store_dir, metric: str = "ne", direction: str = "min") -> dict[tuple[str, int], dict]:
    """The incumbent of each search in ``store_dir`` (``<searcher>-seed<s>.jsonl`` from ``compare_searchers``):
    (searcher, seed) -> {"cand", "value", "trial"}."""
    from pathlib import Path

    from .trials import TrialStore

    out = {}
    sign = 1.0 if direction == "max" else -1.0
    for path in sorted(Path(store_dir).glob("*-seed*.jsonl")):
        name, s = path.stem.rsplit("-seed", 1)
        ok = [t for t in TrialStore(path).trials() if t["reward"] is not None]
        if ok:
            t = max(ok, key=lambda t: sign * t["metrics"][metric])
            out[(name, int(s))] = {"cand": t["candidate"], "value": t["metrics"][metric], "trial": t["index"] + 1}
    return out
