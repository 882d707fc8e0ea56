"""A small, deterministic trainer for binary CTR models.

Any ``nn.Module`` whose ``forward(batch) -> logits [B]`` takes the batch dicts of
:class:`companion.data.CTRDataset` trains here: Adam/AdamW, early stopping on a validation metric,
``tqdm`` progress bars, throughput, and a clear stop on a non-finite loss.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from .progress import tqdm

from .data.schema import CTRDataset, CTRSplits
from .metrics import evaluate_ctr
from .runtime import log


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf; the model keeps the best weights seen before it happened."""


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 512
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw
    weight_decay: float = 0.0
    monitor: str = "auc"  # validation metric for early stopping: auc (higher) or logloss (lower)
    patience: int = 2  # epochs without improvement before stopping
    max_steps: int | None = None  # cap on optimizer steps (benchmarks, smoke runs)
    eval_batch_size: int = 4096
    seed: int = 0  # shuffling order
    device: str = "cpu"
    progress: bool = True
    grad_clip: float | None = None

    def __post_init__(self):
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")
        if self.monitor not in ("auc", "logloss"):
            raise ValueError(f"monitor must be 'auc' or 'logloss', got {self.monitor!r}")


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per epoch
    best_epoch: int = 0
    valid: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    samples_per_s: float = 0.0
    train_time_s: float = 0.0
    steps: int = 0
    stopped_early: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def _to(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def predict(model: torch.nn.Module, data: CTRDataset, batch_size: int = 4096, device="cpu") -> np.ndarray:
    """Click probabilities for every row of ``data``, in order."""
    model.eval()
    out = [torch.sigmoid(model(_to(b, torch.device(device)))).float().cpu() for b in data.batches(batch_size)]
    return torch.cat(out).numpy()


def evaluate(model, data: CTRDataset, base_ctr: float | None = None, batch_size: int = 4096, device="cpu") -> dict:
    """AUC, log loss, and gAUC/NE where groups or a base CTR are known."""
    p = predict(model, data, batch_size, device)
    groups = data.group.numpy() if data.group is not None else None
    return evaluate_ctr(data.label.numpy(), p, groups=groups, base_ctr=base_ctr)


def _better(metric: str, new: float, old: float | None) -> bool:
    if old is None:
        return True
    return new > old if metric == "auc" else new < old


def fit(model: torch.nn.Module, splits: CTRSplits, cfg: TrainConfig | None = None, desc: str = "train") -> TrainResult:
    """Train with early stopping; the model ends with its best validation weights, scored on test."""
    cfg = cfg or TrainConfig()
    device = torch.device(cfg.device)
    model.to(device)
    opt_cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    res = TrainResult()
    best_score, best_state, bad_epochs = None, copy.deepcopy(model.state_dict()), 0
    n_batches = -(-len(splits.train) // cfg.batch_size)
    total = n_batches * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, n_batches * cfg.epochs)
    bar = tqdm(total=total, desc=desc, disable=not cfg.progress, leave=False, unit="step")
    seen, t_train = 0, 0.0
    try:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            t0, losses = time.perf_counter(), []
            for batch in splits.train.batches(cfg.batch_size, shuffle=True, generator=gen):
                batch = _to(batch, device)
                logits = model(batch)
                loss = F.binary_cross_entropy_with_logits(logits, batch["label"])
                if not torch.isfinite(loss):
                    model.load_state_dict(best_state)
                    raise NonFiniteLossError(
                        f"{desc}: loss became {loss.item()} at epoch {epoch}, step {res.steps + 1} (lr={cfg.lr}); "
                        "the model was reset to its best weights so far. Lower the learning rate or check the inputs for NaN."
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                losses.append(loss.item())
                seen += batch["label"].shape[0]
                res.steps += 1
                bar.update(1)
                if cfg.max_steps is not None and res.steps >= cfg.max_steps:
                    break
            t_train += time.perf_counter() - t0
            val = evaluate(model, splits.valid, splits.base_ctr, cfg.eval_batch_size, device)
            row = {"epoch": epoch, "train_loss": float(np.mean(losses)), **{f"valid_{k}": v for k, v in val.items()}}
            res.history.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", auc=f"{val['auc']:.4f}")
            if _better(cfg.monitor, val[cfg.monitor], best_score):
                best_score, best_state, bad_epochs, res.best_epoch = val[cfg.monitor], copy.deepcopy(model.state_dict()), 0, epoch
            else:
                bad_epochs += 1
                if bad_epochs >= cfg.patience:
                    res.stopped_early = True
                    break
            if cfg.max_steps is not None and res.steps >= cfg.max_steps:
                break
    except KeyboardInterrupt:
        log.warning("%s interrupted after %d steps; keeping the best weights so far", desc, res.steps)
        model.load_state_dict(best_state)
        raise
    finally:
        bar.close()
    model.load_state_dict(best_state)
    res.train_time_s = t_train
    res.samples_per_s = seen / t_train if t_train > 0 else 0.0
    res.valid = evaluate(model, splits.valid, splits.base_ctr, cfg.eval_batch_size, device)
    res.test = evaluate(model, splits.test, splits.base_ctr, cfg.eval_batch_size, device)
    return res
