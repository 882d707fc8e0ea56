"""A small, deterministic trainer for binary CTR models, on one process or data-parallel under ``torchrun``.

Any ``nn.Module`` whose ``forward(batch) -> logits [B]`` takes the batch dicts of
:class:`companion.data.CTRDataset` trains here: Adam/AdamW/Adagrad, early stopping on a validation metric,
``tqdm`` progress bars, throughput, and a clear stop on a non-finite loss.

Scale-out, in two independent switches:

- **Data parallel.** Launched by ``torchrun`` (see :mod:`companion.distributed`), every rank draws the same
  shuffled order, takes its contiguous slice of each *global* batch of ``batch_size`` rows (so it only ever reads
  its own rows of a memory-mapped split) and DDP averages the gradients. The local loss is scaled so the averaged
  gradient is exactly the gradient of the global batch's mean loss: N ranks train the model one process would
  (up to float summation order). Validation and test are sharded too and gathered before the metrics.
- **Row-wise sparse embedding updates** (``embedding_optimizer``). The tables (every ``nn.Embedding``) switch to
  sparse gradients and get their own optimizer that touches only the rows a batch looked up: ``sparse_adam``
  (``torch.optim.SparseAdam``, lazy Adam), ``sparse_adagrad`` (``torch.optim.Adagrad`` on sparse gradients, equal
  to dense Adagrad) or ``rowwise_adagrad`` (one accumulator per row, as FBGEMM/TorchRec's row-wise Adagrad: d times
  less optimizer state). The rest of the model keeps ``optimizer``. ``dense`` (the default) is the old behaviour.

BARS/FuxiCTR recipe knobs:

- ``embedding_regularizer`` λ adds ``(λ/2)·Σ w²`` to every batch's loss, FuxiCTR's form for a float regularizer
  (``get_regularizer`` gives ``(p=2, λ)`` and ``regularization_loss`` adds ``(λ/p)·‖w‖_p^p``). Where:
  ``embedding_regularizer_rows="table"`` (the default, FuxiCTR's choice) penalizes every trainable weight of every
  embedding layer at every step: the whole tables (fused first-order columns too), the dense-field weights and the
  projections of pretrained tables; ``"batch"`` penalizes only the distinct table rows the batch reads
  (:meth:`FeatureEmbedding.used_rows`; under DDP each rank's rows, averaged with the gradients), which is what sparse
  row-wise updates can afford. Frozen pretrained tables
  are buffers, never penalized. The logged ``train_loss`` stays the BCE alone.
- ``monitor="gauc"`` selects the epoch (early stopping and the weights kept) by validation gAUC, grouped by the
  validation split's ``group`` column (BARS: the user; ``gAUC`` is accepted as spelled in the BARS configs).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import distributed
from .progress import tqdm

from .data.schema import CTRDataset, CTRSplits
from .metrics import evaluate_ctr
from .models.embedding import embeddings_of, require_attached
from .runtime import log


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf; the model keeps the best weights seen before it happened."""


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adagrad": torch.optim.Adagrad}
EMBEDDING_OPTIMIZERS = ("dense", "sparse_adam", "sparse_adagrad", "rowwise_adagrad")
MONITORS = {"auc": "max", "gauc": "max", "logloss": "min"}
REGULARIZER_ROWS = ("table", "batch")


class RowWiseAdagrad(torch.optim.Optimizer):
    """Adagrad with one accumulator per table row (the mean of the row's squared gradient), the optimizer large
    recommender systems use for embedding tables (FBGEMM's ``EXACT_ROWWISE_ADAGRAD``): state is one float per row
    instead of one per weight. Sparse gradients update only their rows; for width-1 tables it is plain Adagrad."""

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-10, initial_accumulator_value: float = 0.0):
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        super().__init__(params, dict(lr=lr, eps=eps, initial_accumulator_value=initial_accumulator_value))
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"RowWiseAdagrad takes 2-d tables, got a parameter of shape {tuple(p.shape)}")
                self.state[p]["sum"] = torch.full((p.shape[0],), float(group["initial_accumulator_value"]),
                                                  dtype=p.dtype, device=p.device)

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                acc = self.state[p]["sum"]
                if p.grad.is_sparse:
                    g = p.grad.coalesce()
                    rows, vals = g.indices()[0], g.values()
                    acc.index_add_(0, rows, vals.pow(2).mean(1))
                    std = acc[rows].sqrt().add_(group["eps"])
                    p.index_add_(0, rows, vals / std.unsqueeze(1), alpha=-group["lr"])
                else:
                    acc.add_(p.grad.pow(2).mean(1))
                    p.addcdiv_(p.grad, acc.sqrt().add_(group["eps"]).unsqueeze(1), value=-group["lr"])
        return loss


def embedding_tables(model: nn.Module) -> list[nn.Embedding]:
    """The trainable ``nn.Embedding`` modules of ``model`` (each once)."""
    seen, out = set(), []
    for m in model.modules():
        if isinstance(m, nn.Embedding) and m.weight.requires_grad and id(m.weight) not in seen:
            seen.add(id(m.weight))
            out.append(m)
    return out


def make_optimizers(model: nn.Module, cfg: "TrainConfig") -> list[torch.optim.Optimizer]:
    """``[dense optimizer]`` (the default), or ``[dense, sparse tables]`` with the tables switched to sparse
    gradients. A model whose every weight is a table gets only the table optimizer."""
    dense_cls = OPTIMIZERS[cfg.optimizer]
    tables = embedding_tables(model) if cfg.embedding_optimizer != "dense" else []
    if not tables:
        return [dense_cls(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)]
    table_ids = {id(m.weight) for m in tables}
    for m in tables:
        m.sparse = True
    rest = [p for p in model.parameters() if id(p) not in table_ids]
    weights, lr = [m.weight for m in tables], cfg.embedding_lr or cfg.lr
    if cfg.embedding_optimizer == "sparse_adam":
        sparse_opt = torch.optim.SparseAdam(weights, lr=lr)
    elif cfg.embedding_optimizer == "sparse_adagrad":
        sparse_opt = torch.optim.Adagrad(weights, lr=lr)
    else:
        sparse_opt = RowWiseAdagrad(weights, lr=lr)
    return ([dense_cls(rest, lr=cfg.lr, weight_decay=cfg.weight_decay)] if rest else []) + [sparse_opt]


def clip_grad_norm(params, max_norm: float) -> float:
    """``clip_grad_norm_`` that also counts sparse gradients (their coalesced values) in the total norm."""
    grads = [p.grad for p in params if p.grad is not None]
    sq = torch.zeros(())
    for g in grads:
        v = g.coalesce().values() if g.is_sparse else g
        sq = sq + v.detach().float().pow(2).sum().cpu()
    total = float(sq.sqrt())
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g.mul_(scale)
    return total


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 512
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | adagrad
    weight_decay: float = 0.0
    monitor: str = "auc"  # validation metric for early stopping and the weights kept: auc, gauc (higher) or logloss (lower)
    patience: int = 2  # epochs without improvement before stopping
    max_steps: int | None = None  # cap on optimizer steps (benchmarks, smoke runs)
    eval_batch_size: int = 4096
    seed: int = 0  # shuffling order
    device: str = "cpu"
    progress: bool = True
    grad_clip: float | None = None
    embedding_optimizer: str = "dense"  # dense | sparse_adam | sparse_adagrad | rowwise_adagrad (see the module doc)
    embedding_lr: float | None = None  # learning rate of the sparse table optimizer (None: lr)
    find_unused_parameters: bool = True  # DDP only: tolerate parameters a forward pass does not use
    embedding_regularizer: float = 0.0  # λ of the L2 penalty (λ/2)·Σ w² on embedding weights (FuxiCTR's form; 0: off)
    embedding_regularizer_rows: str = "table"  # table (all embedding weights, FuxiCTR) | batch (rows the batch reads)

    def __post_init__(self):
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {tuple(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.embedding_optimizer not in EMBEDDING_OPTIMIZERS:
            raise ValueError(f"embedding_optimizer must be one of {EMBEDDING_OPTIMIZERS}, got {self.embedding_optimizer!r}")
        if self.embedding_lr is not None and not self.embedding_lr > 0:
            raise ValueError(f"embedding_lr must be > 0, got {self.embedding_lr}")
        if self.embedding_optimizer != "dense" and self.weight_decay:
            raise ValueError("weight_decay does not apply to sparse embedding updates (sparse optimizers decay only "
                             "touched rows, which is not weight decay); use embedding_optimizer='dense' or weight_decay=0")
        if isinstance(self.monitor, str):
            self.monitor = self.monitor.lower()  # "gAUC", as the BARS configs spell it
        if self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {tuple(MONITORS)}, got {self.monitor!r}")
        if not (isinstance(self.embedding_regularizer, (int, float)) and self.embedding_regularizer >= 0):
            raise ValueError(f"embedding_regularizer must be a number >= 0, got {self.embedding_regularizer!r}")
        if self.embedding_regularizer_rows not in REGULARIZER_ROWS:
            raise ValueError(f"embedding_regularizer_rows must be one of {REGULARIZER_ROWS}, "
                             f"got {self.embedding_regularizer_rows!r}")
        if self.embedding_regularizer and self.embedding_optimizer != "dense" and self.embedding_regularizer_rows == "table":
            raise ValueError("a whole-table embedding_regularizer gives every row a gradient, which sparse embedding "
                             "updates cannot take; use embedding_regularizer_rows='batch' or embedding_optimizer='dense'")


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
def predict(model: torch.nn.Module, data: CTRDataset, batch_size: int = 4096, device="cpu",
            dist: "distributed.Dist | None" = None) -> np.ndarray:
    """Click probabilities for every row of ``data``, in order. With an active ``dist`` each rank scores its
    contiguous shard and the shards are gathered, so every rank returns all rows."""
    model.eval()
    dev = torch.device(device)
    if dist is None or not dist.active:
        out = [torch.sigmoid(model(_to(b, dev))).float().cpu() for b in data.batches(batch_size)]
        return torch.cat(out).numpy()
    part = dist.shard(len(data))
    out = [torch.sigmoid(model(_to(data.batch(slice(i, min(i + batch_size, part.stop))), dev))).float()
           for i in range(part.start, part.stop, batch_size)]
    mine = torch.cat(out) if out else torch.zeros(0, device=dev)
    return dist.all_gather_rows(mine).cpu().numpy()


def evaluate(model, data: CTRDataset, base_ctr: float | None = None, batch_size: int = 4096, device="cpu",
             dist: "distributed.Dist | None" = None) -> dict:
    """AUC, log loss, and gAUC/NE where groups or a base CTR are known."""
    p = predict(model, data, batch_size, device, dist)
    groups = data.group.numpy() if data.group is not None else None
    return evaluate_ctr(data.label.numpy(), p, groups=groups, base_ctr=base_ctr)


def _better(metric: str, new: float, old: float | None) -> bool:
    if old is None:
        return True
    return new > old if MONITORS[metric] == "max" else new < old


def embedding_penalty(model: nn.Module, batch: dict, lam: float, rows: str = "table") -> torch.Tensor:
    """``(lam/2)·Σ w²`` over the embedding weights of ``model`` (see the module doc): every trainable weight of its
    :class:`FeatureEmbedding` layers (``rows="table"``), or only the distinct table rows ``batch`` reads
    (``rows="batch"``). Frozen pretrained tables are buffers and never enter."""
    total = None
    for emb in embeddings_of(model):
        if rows == "table":
            terms = [p.pow(2).sum() for p in emb.parameters() if p.requires_grad]
        else:
            used = emb.used_rows(batch)
            terms = [emb.lookup(used).pow(2).sum()] if len(used) else []  # sparse gradients when the table has them
        for t in terms:
            total = t if total is None else total + t
    if total is None:
        return torch.zeros(())
    return (lam / 2) * total


def _global_batches(n: int, batch_size: int, gen: torch.Generator, dist: "distributed.Dist"):
    """The shuffled order of one epoch cut into global batches; each yields (this rank's row indices, global size).
    One process gets exactly :meth:`CTRDataset.batches`' order, so seeded runs keep their numbers."""
    order = torch.randperm(n, generator=gen)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield (idx if not dist.active else idx[dist.shard(len(idx))]), len(idx)


def fit(model: torch.nn.Module, splits: CTRSplits, cfg: TrainConfig | None = None, desc: str = "train",
        dist: "distributed.Dist | None" = None) -> TrainResult:
    """Train with early stopping; the model ends with its best validation weights, scored on test.

    ``dist``: the process group to train in; None joins torchrun's group when this process was launched by it
    and trains in-process otherwise. Under torchrun every rank calls ``fit`` with the same arguments and ends
    with the same model; only rank 0 shows progress.
    """
    cfg = cfg or TrainConfig()
    if dist is None:
        if distributed.launched_by_torchrun():
            import atexit
            dist = distributed.init_from_env()
            atexit.register(dist.close)  # a group fit() created is torn down when the worker exits
        else:
            dist = distributed.Dist()
    require_attached(model, have=splits.pretrained, where=f"{desc}: ")
    if cfg.monitor == "gauc" and splits.valid.group is None:
        raise ValueError(f"{desc}: monitor='gauc' needs group ids on the validation split (CTRDataset.group, the "
                         "user for BARS); these splits have none")
    device = torch.device(cfg.device)
    if dist.active and dist.backend == "nccl":
        device = dist.device
    model.to(device)
    tables = embedding_tables(model)
    was_sparse = [m.sparse for m in tables]
    opts = make_optimizers(model, cfg)
    net = model
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=cfg.find_unused_parameters)
    gen = torch.Generator().manual_seed(cfg.seed)
    res = TrainResult()
    best_score, best_state, bad_epochs = None, copy.deepcopy(model.state_dict()), 0
    n_batches = -(-len(splits.train) // cfg.batch_size)
    total = n_batches * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, n_batches * cfg.epochs)
    bar = tqdm(total=total, desc=desc, disable=not cfg.progress or not dist.is_main, leave=False, unit="step")
    ev = dict(base_ctr=splits.base_ctr, batch_size=cfg.eval_batch_size, device=device, dist=dist)
    seen, t_train = 0, 0.0
    try:
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            t0, losses = time.perf_counter(), []
            for idx, n_global in _global_batches(len(splits.train), cfg.batch_size, gen, dist):
                batch = _to(splits.train.batch(idx), device)
                logits = net(batch)
                if dist.active:  # sum over my rows / global rows, times world: DDP's mean is the global mean
                    loss_sum = F.binary_cross_entropy_with_logits(logits, batch["label"], reduction="sum")
                    loss = loss_sum * (dist.world_size / n_global)
                    step_loss = float(dist.all_reduce_sum(loss_sum.detach().clone().reshape(1))) / n_global
                else:
                    loss = F.binary_cross_entropy_with_logits(logits, batch["label"])
                    step_loss = loss.item()
                if cfg.embedding_regularizer:
                    loss = loss + embedding_penalty(model, batch, cfg.embedding_regularizer,
                                                    cfg.embedding_regularizer_rows).to(loss.device)
                if not math.isfinite(step_loss):
                    model.load_state_dict(best_state)
                    raise NonFiniteLossError(
                        f"{desc}: loss became {step_loss} at epoch {epoch}, step {res.steps + 1} (lr={cfg.lr}); "
                        "the model was reset to its best weights so far. Lower the learning rate or check the inputs for NaN."
                    )
                for o in opts:
                    o.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    if len(opts) == 1 and cfg.embedding_optimizer == "dense":
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    else:
                        clip_grad_norm(list(model.parameters()), cfg.grad_clip)
                for o in opts:
                    o.step()
                losses.append(step_loss)
                seen += n_global
                res.steps += 1
                bar.update(1)
                if cfg.max_steps is not None and res.steps >= cfg.max_steps:
                    break
            t_train += time.perf_counter() - t0
            val = evaluate(model, splits.valid, **ev)
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
        for m, sp in zip(tables, was_sparse):
            m.sparse = sp
    model.load_state_dict(best_state)
    res.train_time_s = t_train
    res.samples_per_s = seen / t_train if t_train > 0 else 0.0
    res.valid = evaluate(model, splits.valid, **ev)
    res.test = evaluate(model, splits.test, **ev)
    return res
