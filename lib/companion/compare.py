"""Comparing models honestly: every variant under every seed, mean and spread, per-seed paired gaps, and a
verdict that only says "reproduced" when a gap beats the seed-to-seed noise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .data.schema import CTRSplits
from .models.zoo import build_model, n_params
from .progress import tqdm
from .runtime import seed_everything


def run_grid(variants: dict, splits: CTRSplits, dim: int, seeds, train_cfg: dict, desc: str = "models",
             keep: dict | None = None) -> pd.DataFrame:
    """Train every variant under every seed; one row per run with test metrics, size and training speed.

    ``variants`` maps a label to ``(model_name, kwargs)``. Each run reseeds before building the model, so a
    row depends only on its (variant, seed), not on what ran before it. Pass a dict as ``keep`` to get the
    trained models back, keyed by (label, seed).
    """
    from .train import TrainConfig, fit

    rows = []
    runs = [(label, spec, seed) for label, spec in variants.items() for seed in seeds]
    for label, (name, kwargs), seed in tqdm(runs, desc=desc, unit="run"):
        seed_everything(seed)
        model = build_model(name, splits.schema, dim, **kwargs)
        cfg = TrainConfig(**{**train_cfg, "seed": seed})
        res = fit(model, splits, cfg, desc=f"{label} s{seed}")
        if keep is not None:
            keep[(label, seed)] = model
        rows.append({"model": label, "seed": seed, "auc": res.test["auc"], "gauc": res.test.get("gauc", np.nan),
                     "logloss": res.test["logloss"], "params": n_params(model), "samples_per_s": res.samples_per_s,
                     "epochs": res.best_epoch, "train_s": res.train_time_s})
    return pd.DataFrame(rows)


def summarize_grid(df: pd.DataFrame, sort_by: str = "auc") -> pd.DataFrame:
    """Mean and standard deviation over seeds per model, best first."""
    g = df.groupby("model", sort=False)
    out = pd.DataFrame({
        "auc": g.auc.mean(), "auc_sd": g.auc.std(ddof=0), "gauc": g.gauc.mean(), "gauc_sd": g.gauc.std(ddof=0),
        "logloss": g.logloss.mean(), "logloss_sd": g.logloss.std(ddof=0), "params": g.params.first(),
        "samples_per_s": g.samples_per_s.mean(), "seeds": g.seed.count(),
    })
    return out.sort_values(sort_by, ascending=sort_by == "logloss")


def cap_train(splits: CTRSplits, rows: int | None, seed: int = 0) -> CTRSplits:
    """The same splits with at most ``rows`` training rows (a seeded random sample; valid/test untouched)."""
    if not rows or rows >= len(splits.train):
        return splits
    idx = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))[:rows].sort().values
    return CTRSplits(splits.schema, splits.train.subset(idx), splits.valid, splits.test,
                     {**splits.info, "train_rows": f"{rows} of {len(splits.train)} (seeded sample)"})


def paired_gap(df: pd.DataFrame, a: str, b: str, metric: str = "auc") -> dict:
    """Per-seed difference ``a - b`` of a metric (lower-is-better metrics are flipped so > 0 means a is better)."""
    pa = df[df.model == a].set_index("seed")[metric]
    pb = df[df.model == b].set_index("seed")[metric]
    d = (pa - pb).dropna() * (-1 if metric == "logloss" else 1)
    if d.empty:
        raise ValueError(f"no common seeds for {a!r} and {b!r}")
    return {"a": a, "b": b, "metric": metric, "mean": float(d.mean()), "sd": float(d.std(ddof=0)),
            "wins": int((d > 0).sum()), "n": int(len(d))}


def format_gaps(gaps: list[dict]) -> str:
    return "; ".join(f"vs {g['b']} {g['metric']} {g['mean']:+.4f} ({g['wins']}/{g['n']} seeds)" for g in gaps)


def verdict(gaps: list[dict]) -> str:
    """A comparison counts when a wins on average, in most seeds, and (with several seeds) by more than the
    seed-to-seed spread of the gap. reproduced: all count; partly: at least half; otherwise not reproduced."""
    ok = [g["mean"] > 0 and g["wins"] * 2 > g["n"] and (g["n"] == 1 or g["mean"] > g["sd"]) for g in gaps]
    return "reproduced" if all(ok) else "partly" if 2 * sum(ok) >= len(ok) else "not reproduced"
