"""Supernet training (single-operator any-connection sampling with full-path warm-up), subnet scoring with
NASRec's head-only fine-tune, and training sampled architectures from scratch.

NASRec's recipe (notes §1.5-1.7): one epoch, Adagrad lr 0.12, cosine schedule with 10% linear warm-up,
gradient clipping at 5; for the first part of training the whole supernet runs with probability decaying
linearly from 1 to 0; each candidate is scored by validation log loss after training only the final
linear layer for 500 steps (lr 0.04).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from ..progress import tqdm

from ..data.schema import CTRDataset, CTRSplits
from ..metrics import auc as auc_fn
from ..metrics import logloss as logloss_fn
from ..train import NonFiniteLossError, TrainConfig, fit
from .space import Arch
from .supernet import NASRecNet, SuperNet


@dataclass
class SupernetConfig:
    steps: int = 1000
    batch_size: int = 512
    lr: float = 0.12
    optimizer: str = "adagrad"  # adagrad (NASRec) | adam (FGPS first shot: lr 1e-3)
    warmup_frac: float = 0.2  # share of steps with full-path sampling, probability 1 -> 0 (ToRS: first 1/5)
    lr_warmup_frac: float = 0.1
    grad_clip: float | None = 5.0
    seed: int = 0
    progress: bool = True
    device: str = "cpu"

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"steps and batch_size must be >= 1, got {self.steps}, {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in ("adagrad", "adam"):
            raise ValueError(f"optimizer must be 'adagrad' or 'adam', got {self.optimizer!r}")
        if not 0 <= self.warmup_frac <= 1 or not 0 <= self.lr_warmup_frac < 1:
            raise ValueError(f"warmup_frac must lie in [0, 1] and lr_warmup_frac in [0, 1), got {self.warmup_frac}, {self.lr_warmup_frac}")


def _optimizer(params, name: str, lr: float):
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, eps=1e-2)
    return torch.optim.Adam(params, lr=lr)


def _cosine(total: int, warm_frac: float):
    warm = max(1, int(total * warm_frac))
    return lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm)))


def _batches(data: CTRDataset, batch_size: int, gen: torch.Generator, device=None):
    while True:
        for b in data.batches(batch_size, shuffle=True, generator=gen):
            yield b if device is None else {k: v.to(device, non_blocking=True) for k, v in b.items()}


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def train_supernet(supernet: SuperNet, splits: CTRSplits, cfg: SupernetConfig | None = None,
                   sampler: Callable[[np.random.Generator], Arch] | None = None, desc: str = "supernet") -> dict:
    """Train ``supernet`` on paths drawn by ``sampler`` (default: NASRec's single-operator any-connection
    sampling, binomial source counts). Returns the loss history and how many steps ran the full path."""
    cfg = cfg or SupernetConfig()
    space = supernet.space
    sampler = sampler or (lambda r: space.sample(r, connections="binomial"))
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = _optimizer(supernet.parameters(), cfg.optimizer, cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine(cfg.steps, cfg.lr_warmup_frac))
    warm_steps, full = int(cfg.steps * cfg.warmup_frac), space.full_path()
    losses, n_full = [], 0
    supernet.to(cfg.device).train()
    data = _batches(splits.train, cfg.batch_size, gen, torch.device(cfg.device))
    for step in tqdm(range(cfg.steps), desc=desc, disable=not cfg.progress, leave=False, unit="step"):
        batch = next(data)
        use_full = step < warm_steps and rng.random() < 1 - step / max(1, warm_steps)
        arch = full if use_full else sampler(rng)
        n_full += int(use_full)
        loss = F.binary_cross_entropy_with_logits(supernet(batch, arch), batch["label"])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"{desc}: loss {loss.item()} at step {step} (lr={cfg.lr}); lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(supernet.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return {"loss": losses, "full_path_steps": n_full}


@dataclass
class SubnetEval:
    """How a candidate is scored on the supernet: optional head-only fine-tune, then validation metrics."""

    finetune_steps: int = 500
    finetune_lr: float = 0.04
    batch_size: int = 512
    eval_rows: int | None = None  # rows of the validation split used (None: all)
    split: str = "valid"
    seed: int = 0

    def __post_init__(self):
        if self.finetune_steps < 0:
            raise ValueError(f"finetune_steps must be >= 0, got {self.finetune_steps}")
        if self.split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {self.split!r}")


@torch.no_grad()
def _features(supernet: SuperNet, arch: Arch, data: CTRDataset, batch_size: int = 4096) -> torch.Tensor:
    dev = _device_of(supernet)
    return torch.cat([supernet.features({k: v.to(dev) for k, v in b.items()}, arch) for b in data.batches(batch_size)])


def evaluate_subnet(supernet: SuperNet, arch: Arch, splits: CTRSplits, cfg: SubnetEval | None = None) -> dict:
    """Validation log loss/AUC of ``arch`` with inherited weights; the supernet itself is left unchanged.

    The fine-tune trains a copy of the head's slice for this path on frozen features (NASRec trains only
    the last FC layer), so scoring one candidate never disturbs another.
    """
    cfg = cfg or SubnetEval()
    was = supernet.training
    supernet.eval()
    try:
        data = getattr(splits, cfg.split)
        if cfg.eval_rows is not None and cfg.eval_rows < len(data):
            data = data.subset(torch.arange(cfg.eval_rows))
        dev = _device_of(supernet)
        with torch.no_grad():
            probe = supernet.body({k: v.to(dev) for k, v in data.batch(slice(0, 2)).items()}, arch)
            cols = supernet.head_cols(probe, dev)
        w = supernet.head.weight.detach()[:, cols].clone()
        b = supernet.head.bias.detach().clone()
        if cfg.finetune_steps:
            w.requires_grad_(True)
            b.requires_grad_(True)
            opt = torch.optim.Adagrad([w, b], lr=cfg.finetune_lr, eps=1e-2)
            gen = torch.Generator().manual_seed(cfg.seed)
            it = _batches(splits.train, cfg.batch_size, gen, dev)
            for _ in range(cfg.finetune_steps):
                batch = next(it)
                with torch.no_grad():
                    x = supernet.features(batch, arch)
                loss = F.binary_cross_entropy_with_logits(F.linear(x, w, b).squeeze(-1), batch["label"])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        with torch.no_grad():
            p = torch.sigmoid(F.linear(_features(supernet, arch, data), w, b).squeeze(-1)).cpu().numpy()
    finally:
        supernet.train(was)
    y = data.label.numpy()
    return {"logloss": logloss_fn(y, p), "auc": auc_fn(y, p)}


def subnet_scorer(supernet: SuperNet, splits: CTRSplits, cfg: SubnetEval | None = None) -> Callable[[Arch], float]:
    """``arch -> validation log loss`` (the EA's fitness, lower is better)."""
    return lambda arch: evaluate_subnet(supernet, arch, splits, cfg)["logloss"]


@dataclass
class StandaloneResult:
    arch: Arch
    valid: dict
    test: dict
    params: int
    train_time_s: float
    history: list = field(default_factory=list)


def train_standalone(splits: CTRSplits, space, arch: Arch, cfg: TrainConfig | None = None, seed: int = 0,
                     layernorm: bool = True, desc: str = "from scratch") -> StandaloneResult:
    """Train ``arch`` from scratch as a standalone :class:`NASRecNet` with the shared trainer."""
    torch.manual_seed(seed)
    model = NASRecNet(splits.schema, space, arch, layernorm=layernorm)
    res = fit(model, splits, cfg or TrainConfig(monitor="logloss"), desc=desc)
    n_params = sum(p.numel() for p in model.parameters())
    return StandaloneResult(arch, res.valid, res.test, n_params, res.train_time_s, res.history)
