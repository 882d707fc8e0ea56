"""Training grids: every variant under every seed, one row per run, and the mean and spread over seeds.

Verdicts are not made here: paired comparisons and their verdicts come from :mod:`companion.evidence`, which
takes these per-seed rows (``evidence.paired_frame(df, "a", "b", "auc")``) and knows nothing about models."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import evidence
from .data.schema import CTRSplits
from .models.zoo import build_model, n_params
from .progress import tqdm
from .runtime import seed_everything


def run_grid(variants: dict, splits: CTRSplits, dim: int, seeds, train_cfg: dict, desc: str = "models",
             keep: dict | None = None) -> pd.DataFrame:
    """Train every variant under every seed; one row per run with test and validation metrics, size and speed.

    ``variants`` maps a label to ``(model_name, kwargs)``. Each run reseeds before building the model, so a
    row depends only on its (variant, seed), not on what ran before it. Pass a dict as ``keep`` to get the
    trained models back, keyed by (label, seed).
    """
    from .train import TrainConfig, fit

    rows = []
    runs = [(label, spec, seed) for label, spec in variants.items() for seed in seeds]
    for label, (name, kwargs), seed in tqdm(runs, desc=desc, unit="run"):
        seed_everything(seed)
        model = build_model(name, splits.schema, dim, pretrained=splits.pretrained, **kwargs)
        cfg = TrainConfig(**{**train_cfg, "seed": seed})
        res = fit(model, splits, cfg, desc=f"{label} s{seed}")
        if keep is not None:
            keep[(label, seed)] = model
        rows.append({"model": label, "seed": seed, "auc": res.test["auc"], "gauc": res.test.get("gauc", np.nan),
                     "logloss": res.test["logloss"], "valid_auc": res.valid["auc"],
                     "valid_logloss": res.valid["logloss"], "params": n_params(model),
                     "samples_per_s": res.samples_per_s, "epochs": res.best_epoch, "train_s": res.train_time_s})
    return pd.DataFrame(rows)


def summarize_grid(df: pd.DataFrame, sort_by: str = "auc") -> pd.DataFrame:
    """Mean and standard deviation over seeds per model, best first (``valid_auc`` is there to choose models by)."""
    g = df.groupby("model", sort=False)
    out = pd.DataFrame({
        "valid_auc": g.valid_auc.mean(),
        "auc": g.auc.mean(), "auc_sd": g.auc.std(ddof=0), "gauc": g.gauc.mean(), "gauc_sd": g.gauc.std(ddof=0),
        "logloss": g.logloss.mean(), "logloss_sd": g.logloss.std(ddof=0), "params": g.params.first(),
        "samples_per_s": g.samples_per_s.mean(), "seeds": g.seed.count(),
    })
    return out.sort_values(sort_by, ascending=sort_by == "logloss")


def cap_train(splits: CTRSplits, rows: int | None, seed: int = 0) -> CTRSplits:
    """The same splits with at most ``rows`` training rows (a seeded random sample; valid/test, the provenance and
    the pretrained tables untouched)."""
    if not rows or rows >= len(splits.train):
        return splits
    idx = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))[:rows].sort().values
    return CTRSplits(splits.schema, splits.train.subset(idx), splits.valid, splits.test,
                     {**splits.info, "train_rows": f"{rows} of {len(splits.train)} (seeded sample)"}, splits.pretrained)


def paired_against(df: pd.DataFrame, reference: str, names=None, metric: str = "auc") -> dict:
    """``reference`` against each other variant of a grid (or those of ``names`` that ran), paired by seed:
    ``label -> evidence.Paired`` with gaps > 0 where the reference is better."""
    have = [m for m in df.model.unique() if m != reference]
    wanted = have if names is None else [m for m in names if m in have]
    return {m: evidence.paired_frame(df, reference, m, metric) for m in wanted}
