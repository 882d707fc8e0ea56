"""The point notebook's experiment in a few calls: room splits per seed, both backbones trained on each seed,
and the benchmark-mIoU evidence that is "not tested" unless the run used that benchmark's data.

Each seed draws its own procedural rooms and its own initialisation (on real data only the initialisation and
the training order change), so a paired comparison over seeds covers both sources of variation.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import numpy as np
import pandas as pd

from .. import evidence
from ..progress import tqdm
from .train import SegConfig, evaluate, fit_segmentation, majority_baseline

DATASETS = ("rooms", "s3dis", "scannet")


@lru_cache(maxsize=2)
def _real(dataset: str, data_root: str):
    """(train, valid, test, which split ran) of a real dataset, read once per process."""
    if dataset == "s3dis":
        from ..data.s3dis import load_s3dis

        train, test = load_s3dis(data_root, test_area=5)
        n_valid = max(1, len(train) // 10)  # monitoring only, held out of the training areas
        how = (f"S3DIS: Area 5 is the test set (the paper's protocol), {len(test)} rooms; {len(train) - n_valid} "
               f"training rooms, {n_valid} held out of them for monitoring")
        return train[:-n_valid], train[-n_valid:], test, how
    from ..data.scannet import scannet_splits

    train, valid, test, how = scannet_splits(data_root)
    return train, valid, test, f"ScanNet v2 {how}"


def split_description(dataset: str, data_root: str = "", n_rooms: int | None = None) -> str:
    """Which split a run used, in words for the notebook and results.json: for ScanNet the official
    scannetv2_train/val lists when they are present, else the re-split, named as not comparable."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if dataset == "rooms":
        n_test = max(2, (n_rooms or 0) // 5)
        return (f"procedural rooms, split by index per seed: {(n_rooms or 0) - 2 * n_test} train / {n_test} valid / "
                f"{n_test} test (no benchmark split: not comparable with any paper number)")
    return _real(dataset, str(data_root))[3]


def load_split(dataset: str, seed: int, n_rooms: int, room_points: int, data_root: str = ""):
    """(train, valid, test, class names) for one seed; procedural rooms are split by index, S3DIS holds out
    Area 5 (the paper's protocol), ScanNet its official val split when scannetv2_train/val.txt are present."""
    from ..data import rooms as roomgen

    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if dataset == "rooms":
        rooms = roomgen.make_rooms(n_rooms, seed=seed, n_points=room_points)
        n_test = max(2, n_rooms // 5)
        return rooms[:-2 * n_test], rooms[-2 * n_test:-n_test], rooms[-n_test:], roomgen.S3DIS_CLASSES
    train, valid, test, _ = _real(dataset, str(data_root))  # split_description() says which split this is
    if dataset == "s3dis":
        return train, valid, test, roomgen.S3DIS_CLASSES
    from ..data.scannet import SCANNET20_CLASSES

    return train, valid, test, SCANNET20_CLASSES


def seed_runs(splits: dict, builders: dict, cfg: SegConfig, num_classes: int):
    """Train every model of ``builders`` (name -> callable(seed) -> model) on every seed's split.

    Returns (scores, fits, models): a long table with one row per (seed, model) including the majority-class
    baseline, the training results, and the trained models, both keyed by (seed, name).
    """
    rows, fits, models = [], {}, {}
    for seed, (train, valid, test, _) in tqdm(list(splits.items()), desc="seeds", leave=False):
        c = replace(cfg, seed=seed)
        for name, build in builders.items():
            m = build(seed)
            fits[seed, name] = fit_segmentation(m, train, valid, num_classes, c, desc=f"{name}, seed {seed}")
            models[seed, name] = m
            r = evaluate(m, test, num_classes, c)
            rows.append({"seed": seed, "model": name, "miou": r["miou"], "oa": r["oa"], "macc": r["macc"],
                         "iou": r["iou"], "epochs_run": fits[seed, name].epochs_run,
                         "train_s": fits[seed, name].train_seconds, "stopped_early": fits[seed, name].stopped_early})
        r = majority_baseline(train, test, num_classes, cfg.grid_size)
        rows.append({"seed": seed, "model": "majority class", "miou": r["miou"], "oa": r["oa"], "macc": r["macc"],
                     "iou": r["iou"], "epochs_run": 0, "train_s": 0.0, "stopped_early": False})
    return pd.DataFrame(rows), fits, models


def benchmark_evidence(benchmark: str, dataset: str, miou_by_seed, th: evidence.Threshold) -> evidence.Evidence:
    """A paper mIoU checked against this run's, from the number: "not tested" unless the run used ``benchmark``.

    ``miou_by_seed`` in percent; the interval is the t interval of the mean over seeds, and fewer than
    ``evidence.MIN_SEEDS`` seeds are "inconclusive" whatever the number (one training run is not evidence).
    """
    if dataset != benchmark:
        return evidence.not_tested(f"needs {benchmark} data (dataset='{benchmark}', data_root=...); this run used "
                                   f"{dataset}")
    vals = np.asarray(list(miou_by_seed), float)
    lo, hi = evidence.interval(vals)
    ev = evidence.threshold_verdict(float(vals.mean()), th, ci=(lo, hi) if np.isfinite(lo) else None)
    if len(vals) < evidence.MIN_SEEDS:
        return evidence.Evidence("inconclusive", ev.rule + f" (only {len(vals)} seed(s), fewer than "
                                 f"{evidence.MIN_SEEDS})", ev.detail)
    return ev


def on_par_evidence(p: evidence.Paired, th: evidence.Threshold) -> evidence.Evidence:
    """"a is on par with b": the paired mean gap and its interval against a "near" threshold; fewer than
    ``evidence.MIN_SEEDS`` seeds are "inconclusive" (an interval from two seeds is not evidence)."""
    ev = evidence.threshold_verdict(p.mean, th, ci=(p.lo, p.hi))
    detail = {**ev.detail, "paired": p.to_dict()}
    if p.n < evidence.MIN_SEEDS:
        return evidence.Evidence("inconclusive", ev.rule + f" (only {p.n} seed(s), fewer than {evidence.MIN_SEEDS})",
                                 detail)
    return evidence.Evidence(ev.verdict, ev.rule + f"; paired over {p.n} seeds", detail)
