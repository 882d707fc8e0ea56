"""Semantic-segmentation training on rooms: voxelise, augment, batch scenes, fit, and score by mIoU.

A room is a dict of numpy arrays (coord, color, normal, segment; the loaders and the procedural generator
all return this). Every step voxelises the (augmented) rooms at ``grid_size`` so the backbone sees one point
per cell, as in Pointcept's GridSample; evaluation scores those voxel points against their labels.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from ..progress import tqdm

from .sample import grid_sample

FEATURES = ("color", "normal", "height")


@contextmanager
def torch_threads(n: int | None):
    """Run a block with ``n`` intra-op threads (None: leave as is), restoring the setting afterwards.

    Room-sized point clouds make many small tensor ops; on a busy 2-core machine two OpenMP threads per op
    were measured 10-100x slower than one, so training defaults to a single thread.
    """
    old = torch.get_num_threads()
    if n is not None:
        if n < 1:
            raise ValueError(f"threads must be >= 1 or None, got {n}")
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def room_features(room: dict, keys=("color", "normal")) -> np.ndarray:
    """Per-point input channels: colour scaled to [-1, 1], unit normal, height above the room's floor."""
    cols = []
    for k in keys:
        if k == "color":
            cols.append(room["color"].astype(np.float32) / 127.5 - 1.0)
        elif k == "normal":
            if "normal" not in room:
                raise KeyError("feature 'normal' asked for, but the room has no normals")
            cols.append(room["normal"].astype(np.float32))
        elif k == "height":
            z = room["coord"][:, 2:3].astype(np.float32)
            cols.append(z - z.min())
        else:
            raise ValueError(f"unknown feature {k!r}; choose from {FEATURES}")
    return np.concatenate(cols, 1)


def feature_channels(keys) -> int:
    return sum(1 if k == "height" else 3 for k in keys)


# --------------------------------------------------------------------------------------------- metrics
def confusion(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore: int = -1) -> np.ndarray:
    keep = target != ignore
    idx = target[keep].astype(np.int64) * num_classes + pred[keep].astype(np.int64)
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def iou_from_confusion(cm: np.ndarray) -> dict:
    """Per-class IoU, mIoU over classes present in the ground truth, overall and mean class accuracy."""
    tp = np.diag(cm).astype(np.float64)
    gt, pr = cm.sum(1), cm.sum(0)
    union = gt + pr - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    present = gt > 0
    return {
        "miou": float(np.nanmean(iou[present])) if present.any() else float("nan"),
        "oa": float(tp.sum() / max(cm.sum(), 1)),
        "macc": float(np.mean(tp[present] / gt[present])) if present.any() else float("nan"),
        "iou": iou.tolist(),
    }


def majority_baseline(train_rooms: list[dict], test_rooms: list[dict], num_classes: int, grid_size: float) -> dict:
    """Scores of predicting the most frequent training class everywhere (what a model must clearly beat)."""
    counts = sum(np.bincount(r["segment"][r["segment"] >= 0], minlength=num_classes) for r in train_rooms)
    major = int(np.argmax(counts))
    cm = sum(confusion(np.full(len(v["label"]), major), v["label"], num_classes)
             for v in (voxelize(r, grid_size, keys=("color",)) for r in test_rooms))
    return {"class": major, **iou_from_confusion(cm)}


# --------------------------------------------------------------------------------------------- batches
def augment(room: dict, rng: np.random.Generator) -> dict:
    """Pointcept-style: rotate about z, small tilt, scale 0.9-1.1, flip x, jitter, colour shift."""
    c = room["coord"].astype(np.float64)
    c = c - c.mean(0)
    a, tx, ty = rng.uniform(-np.pi, np.pi), rng.uniform(-np.pi / 64, np.pi / 64), rng.uniform(-np.pi / 64, np.pi / 64)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(tx), -np.sin(tx)], [0, np.sin(tx), np.cos(tx)]])
    ry = np.array([[np.cos(ty), 0, np.sin(ty)], [0, 1, 0], [-np.sin(ty), 0, np.cos(ty)]])
    rot = rz @ rx @ ry
    s = rng.uniform(0.9, 1.1)
    flip = np.diag([-1.0 if rng.random() < 0.5 else 1.0, 1.0, 1.0])
    out = dict(room)
    out["coord"] = ((c @ rot.T) * s @ flip + np.clip(rng.normal(0, 0.005, c.shape), -0.02, 0.02)).astype(np.float32)
    if "normal" in room:
        out["normal"] = (room["normal"] @ rot.T @ flip).astype(np.float32)
    col = room["color"].astype(np.float64) + rng.uniform(-0.05, 0.05, 3) * 255 + rng.normal(0, 0.02 * 255, room["color"].shape)
    out["color"] = np.clip(col, 0, 255).astype(np.uint8)
    return out


def voxelize(room: dict, grid_size: float, keys=("color", "normal"), generator: torch.Generator | None = None) -> dict:
    """One point per ``grid_size`` cell: grid coordinates, input features and labels as tensors."""
    coord = torch.from_numpy(np.ascontiguousarray(room["coord"], dtype=np.float32))
    gs = grid_sample(coord, grid_size, generator)
    feat = torch.from_numpy(room_features(room, keys))[gs.keep]
    return {"grid": gs.grid, "feat": feat, "label": room["segment"][gs.keep.numpy()], "keep": gs.keep,
            "coord": coord[gs.keep]}


def collate(voxels: list[dict]) -> dict:
    return {
        "feat": torch.cat([v["feat"] for v in voxels]),
        "grid": torch.cat([v["grid"] for v in voxels]),
        "batch": torch.cat([torch.full((len(v["feat"]),), i, dtype=torch.long) for i, v in enumerate(voxels)]),
        "label": torch.from_numpy(np.concatenate([v["label"] for v in voxels])).long(),
    }


# --------------------------------------------------------------------------------------------- training
@dataclass
class SegConfig:
    epochs: int = 10
    batch_rooms: int = 2
    lr: float = 0.003
    weight_decay: float = 0.05
    grid_size: float = 0.05
    features: tuple = ("color", "normal")
    augment: bool = True
    eval_every: int = 1
    seed: int = 0
    max_seconds: float | None = None  # stop early (and say so) when this many CPU seconds are spent (CPU, not
    # wall-clock, so a busy shared machine does not cut training short and the run stays reproducible)
    threads: int | None = 1  # intra-op threads while training/evaluating (see torch_threads)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_rooms < 1:
            raise ValueError("epochs and batch_rooms must be >= 1")
        if not self.lr > 0 or not self.grid_size > 0:
            raise ValueError("lr and grid_size must be positive")
        for k in self.features:
            if k not in FEATURES:
                raise ValueError(f"unknown feature {k!r}; choose from {FEATURES}")


@dataclass
class SegResult:
    history: list = field(default_factory=list)
    valid: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    points_per_s: float = 0.0
    epochs_run: int = 0
    stopped_early: bool = False


@torch.no_grad()
def evaluate(model, rooms: list[dict], num_classes: int, cfg: SegConfig) -> dict:
    model.eval()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    with torch_threads(cfg.threads):
        for r in rooms:
            v = voxelize(r, cfg.grid_size, cfg.features)
            pred = model(v["feat"], v["grid"]).argmax(1).numpy()
            cm += confusion(pred, v["label"], num_classes)
    return iou_from_confusion(cm)


@torch.no_grad()
def predict_room(model, room: dict, cfg: SegConfig) -> dict:
    """Voxel points of one room with their predicted and true labels (for figures)."""
    model.eval()
    v = voxelize(room, cfg.grid_size, cfg.features)
    with torch_threads(cfg.threads):
        pred = model(v["feat"], v["grid"]).argmax(1).numpy()
    return {"coord": v["coord"].numpy(), "pred": pred, "label": v["label"]}


def fit_segmentation(model, train_rooms: list[dict], valid_rooms: list[dict], num_classes: int, cfg: SegConfig,
                     desc: str = "train") -> SegResult:
    """AdamW + one-cycle cosine schedule with cross-entropy; reports valid mIoU every ``eval_every`` epochs."""
    with torch_threads(cfg.threads):
        return _fit(model, train_rooms, valid_rooms, num_classes, cfg, desc)


def _fit(model, train_rooms, valid_rooms, num_classes, cfg, desc):
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and not getattr(p, "_no_weight_decay", False)]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and not getattr(p, "_no_weight_decay", False))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train_rooms) / cfg.batch_rooms)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.1, anneal_strategy="cos", div_factor=10,
                                                final_div_factor=100)
    res = SegResult()
    start, cpu_start, n_points = time.perf_counter(), time.process_time(), 0
    bar = tqdm(range(cfg.epochs), desc=desc, leave=False)
    for epoch in bar:
        model.train()
        order = rng.permutation(len(train_rooms))
        losses = []
        for s in range(0, len(order), cfg.batch_rooms):
            rooms = [train_rooms[i] for i in order[s:s + cfg.batch_rooms]]
            if cfg.augment:
                rooms = [augment(r, rng) for r in rooms]
            b = collate([voxelize(r, cfg.grid_size, cfg.features, gen) for r in rooms])
            logits = model(b["feat"], b["grid"], b["batch"])
            loss = F.cross_entropy(logits, b["label"], ignore_index=-1)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}; lower lr (now {cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            n_points += len(b["label"])
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        last = epoch + 1 == cfg.epochs
        over = cfg.max_seconds is not None and time.process_time() - cpu_start > cfg.max_seconds
        if valid_rooms and ((epoch + 1) % cfg.eval_every == 0 or last or over):
            row["valid_miou"] = evaluate(model, valid_rooms, num_classes, cfg)["miou"]
        res.history.append(row)
        bar.set_postfix({k: round(v, 3) for k, v in row.items() if k != "epoch"})
        res.epochs_run = epoch + 1
        if over and not last:
            res.stopped_early = True
            break
    res.train_seconds = time.perf_counter() - start
    res.points_per_s = n_points / max(res.train_seconds, 1e-9)
    if valid_rooms:
        res.valid = evaluate(model, valid_rooms, num_classes, cfg)
    return res
