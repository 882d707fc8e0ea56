"""Warm-up before a proxy scores a network, in the two protocols SiGeo's code uses, stated as samples and fractions.

- **CV protocol** (NASLib-SiGeo ``warmup_net``): the *candidate itself* is trained before scoring, 10 epochs over
  the warm-up samples in order, mini-batch 128, plain SGD with lr 1; the proxy then scores the last 256 samples of
  its batch as 4 mini-batches of 64. The official configs label 6,000 / 12,000 / 24,000 images "10 / 20 / 40 %",
  which are not those fractions of any training set (:func:`official_cv_levels` shows the literal ones).
- **RecSys protocol** (NasRec-SiGeo ``--train_limit``): the *weight-sharing supernet* is trained with ordinary
  NASRec supernet training, for one pass over the first fraction of the training data (1 %, 10 %, 100 %), and every
  candidate then inherits its weights.

Every warm-up is returned as a :class:`Warmup` (fraction, sample count, of how many), so a label never hides the
amount. A fraction of 0 does nothing: no step is taken and the network is returned untouched.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

OFFICIAL_CV_WARMUP_SAMPLES = {"0%": 0, "10%": 6000, "20%": 12000, "40%": 24000}
OFFICIAL_TRAIN_SIZES = {"CIFAR-10": 50000, "CIFAR-10 (train_portion 0.7)": 35000, "ImageNet16-120": 151700}
OFFICIAL_RECSYS_WARMUP_SAMPLES = {"1%": 366_725, "10%": 3_667_250, "100%": 36_672_495}  # Criteo --train_limit


@dataclass(frozen=True)
class Warmup:
    fraction: float
    samples: int
    of: int
    steps: int = 0
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{100 * self.fraction:g}% ({self.samples:,} of {self.of:,} samples)"


def amount(fraction: float, n_total: int) -> Warmup:
    """The sample count a warm-up fraction stands for (rounded to the nearest sample)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"a warm-up fraction must lie in [0, 1], got {fraction}")
    if n_total < 1:
        raise ValueError(f"n_total must be >= 1, got {n_total}")
    return Warmup(float(fraction), int(round(fraction * n_total)), int(n_total))


def official_cv_levels() -> list[dict]:
    """What the official "10/20/40 %" warm-up batches are as literal fractions of the benchmarks' training sets."""
    rows = []
    for label, n in OFFICIAL_CV_WARMUP_SAMPLES.items():
        row = {"label": label, "samples": n}
        row.update({name: n / size for name, size in OFFICIAL_TRAIN_SIZES.items()})
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- CV protocol
def warmup_candidate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int,
                     loss_fn: Callable = F.cross_entropy, epochs: int = 10, batch_size: int = 128, lr: float = 1.0,
                     forward: Callable | None = None) -> Warmup:
    """Train ``net`` in place on the first ``samples`` rows of (x, y): ``epochs`` passes in order, SGD with ``lr``."""
    n = len(y)
    if not 0 <= samples <= n:
        raise ValueError(f"samples must lie in 0..{n}, got {samples}")
    t0, steps = time.perf_counter(), 0
    if samples:
        fwd = forward or (lambda m, inp: m(inp))
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        net.train()
        for _ in range(epochs):
            for s in range(0, samples, batch_size):
                e = min(s + batch_size, samples)
                opt.zero_grad()
                loss_fn(fwd(net, x[s:e]), y[s:e]).backward()
                opt.step()
                steps += 1
    return Warmup(samples / n, samples, n, steps, time.perf_counter() - t0)


def scoring_batches(x: torch.Tensor, y: torch.Tensor, warmup_samples: int, n_batches: int = 4,
                    batch_size: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The proxy's mini-batches: the last ``n_batches * batch_size`` rows of the proxy batch, which holds the
    warm-up rows when there are more than that many and the first ``n_batches * batch_size`` rows otherwise
    (the official code only knows the first case: warm-up batches of 6,000+ images or none)."""
    need = n_batches * batch_size
    end = max(warmup_samples, need)
    if end > len(y):
        raise ValueError(f"need {end} rows for the proxy batch, the data have {len(y)}")
    xs, ys = x[end - need:end], y[end - need:end]
    return [(xs[i:i + batch_size], ys[i:i + batch_size]) for i in range(0, need, batch_size)]


# ----------------------------------------------------------------------------- RecSys protocol
def warmup_supernet(supernet, splits, fraction: float, cfg=None, epochs: int = 1, desc: str = "supernet warm-up") -> Warmup:
    """Train the weight-sharing ``supernet`` in place for ``epochs`` passes over the first ``fraction`` of the
    training split (NASRec's supernet training: ``companion.nas.training.train_supernet``); 0 leaves it untouched."""
    from ..data.schema import CTRSplits
    from .training import SupernetConfig, train_supernet

    w = amount(fraction, len(splits.train))
    if w.samples == 0:
        return w
    cfg = cfg or SupernetConfig()
    steps = max(1, epochs * math.ceil(w.samples / cfg.batch_size))
    sub = CTRSplits(splits.schema, splits.train.subset(torch.arange(w.samples)), splits.valid, splits.test, splits.info,
                    splits.pretrained)
    t0 = time.perf_counter()
    train_supernet(supernet, sub, replace(cfg, steps=steps), desc=desc)
    return replace(w, steps=steps, seconds=time.perf_counter() - t0)
