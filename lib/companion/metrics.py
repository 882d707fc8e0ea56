"""CTR metrics: AUC, gAUC (BARS convention), log loss and Normalized Entropy."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

EPS = 1e-7


def _arrays(y, p):
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions differ in length: {y.shape[0]} vs {p.shape[0]}")
    if y.size == 0:
        raise ValueError("cannot score an empty set of predictions")
    return y, p


def auc(y, p) -> float:
    """Area under the ROC curve via the rank-sum (Mann-Whitney) identity; ties get average ranks."""
    y, p = _arrays(y, p)
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC is undefined when only one class is present")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def gauc(y, p, groups) -> float:
    """Per-group AUC weighted by group size; groups with a single class are skipped (as BARS does)."""
    y, p = _arrays(y, p)
    groups = np.asarray(groups).ravel()
    order = np.argsort(groups, kind="stable")
    g, y, p = groups[order], y[order], p[order]
    bounds = np.flatnonzero(np.r_[True, g[1:] != g[:-1], True])
    total, weight = 0.0, 0
    for a, b in zip(bounds[:-1], bounds[1:]):
        yy = y[a:b]
        s = yy.sum()
        if s == 0 or s == len(yy):
            continue
        total += auc(yy, p[a:b]) * len(yy)
        weight += len(yy)
    if weight == 0:
        raise ValueError("gAUC is undefined: no group has both classes")
    return float(total / weight)


def logloss(y, p) -> float:
    """Binary cross-entropy with predictions clipped away from 0 and 1."""
    y, p = _arrays(y, p)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def normalized_entropy(y, p, base_ctr: float) -> float:
    """Log loss divided by the entropy of a constant predictor at the training-set CTR (He et al., 2014)."""
    if not 0.0 < base_ctr < 1.0:
        raise ValueError(f"base CTR must be strictly between 0 and 1, got {base_ctr}")
    h = -(base_ctr * np.log(base_ctr) + (1 - base_ctr) * np.log(1 - base_ctr))
    return float(logloss(y, p) / h)


def evaluate_ctr(y, p, groups=None, base_ctr: float | None = None) -> dict:
    """All CTR metrics that apply to the given inputs, as a flat dict."""
    out = {"auc": auc(y, p), "logloss": logloss(y, p)}
    if groups is not None:
        out["gauc"] = gauc(y, p, groups)
    if base_ctr is not None:
        out["ne"] = normalized_entropy(y, p, base_ctr)
    return out
