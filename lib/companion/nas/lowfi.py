"""The low-fidelity label of Meta's AutoML paper, and how good it is.

The paper trains each trial on a fraction of the data and, instead of the raw short-horizon NE, uses a label
corrected by the trend of the training curve ("Eq. 2"): fit a line to the tail of the curve and extrapolate to
the long horizon, ``NE_long ~ NE_short + m * dx``. Its reported effect (secondary source only, see
``meta_ranking.md`` §2.2) is that Kendall's tau between the low-fidelity and the long-horizon ranking rises from
about 0.77 to about 0.87. The formula's exact form is not in anything we could read: the line fit on the last
points of the curve and the extrapolation to the target are our reconstruction.

Here the same question is asked of real learning curves (LCDB): per dataset, rank the learners by their log loss
at a small training size, raw or trend-corrected, and compare with their ranking at the largest size.
:func:`trend_correct` is the correction, :func:`lowfi_taus` the per-dataset taus. ``x="log"`` fits the line
against log2(training size) (the anchors are geometric, and learning curves are closer to linear there);
``x="linear"`` against the size itself, the literal "examples seen" of Eq. 2.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy.stats import kendalltau


def kendall(a, b) -> float:
    """Kendall's tau-b (ties allowed); NaN when either side is constant."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def _x(sizes, x: str) -> np.ndarray:
    s = np.asarray(sizes, dtype=float)
    if x == "log":
        return np.log2(s)
    if x == "linear":
        return s
    raise ValueError(f"x must be 'log' or 'linear', got {x!r}")


def trend_correct(sizes: Sequence[float], values: np.ndarray, target: float, x: str = "log") -> np.ndarray:
    """Extrapolate each curve from its last point to ``target``: ``v_last + m * (x(target) - x(last))``, with ``m``
    the least-squares slope over the given points (the curve's tail). ``values`` is [n_curves, n_points] (or one
    curve); returns one value per curve. With one point the slope is 0 and the raw value comes back."""
    v = np.atleast_2d(np.asarray(values, dtype=float))
    xs = _x(sizes, x)
    if v.shape[1] != len(xs):
        raise ValueError(f"{v.shape[1]} values per curve but {len(xs)} sizes")
    if len(xs) < 2:
        return v[:, -1].copy()
    xc = xs - xs.mean()
    m = ((v - v.mean(1, keepdims=True)) * xc).sum(1) / (xc ** 2).sum()
    return v[:, -1] + m * (_x([target], x)[0] - xs[-1])


def lowfi_taus(curves: pd.DataFrame, small_ratio: float = 8.0, window: int = 3, min_learners: int = 10,
               score: str = "valid", x: str = "log", group: str = "openmlid", item: str = "learner",
               size: str = "size_train") -> pd.DataFrame:
    """Per dataset: Kendall tau between the learners' scores at the largest training size that at least
    ``min_learners`` reached (``a_L``) and (raw) their scores at ``a_s``, the largest size at most ``a_L /
    small_ratio``, or (corrected) those scores extrapolated to ``a_L`` from the ``window`` sizes ending at ``a_s``.
    A learner needs a value at ``a_L`` and at all ``window`` sizes; datasets with fewer such learners are
    skipped. Returns one row per dataset: group, a_small, a_large, n_learners, tau_raw, tau_trend."""
    if small_ratio <= 1 or window < 1 or min_learners < 3:
        raise ValueError(f"need small_ratio > 1, window >= 1, min_learners >= 3; got {small_ratio}, {window}, {min_learners}")
    rows = []
    c = curves[[group, item, size, score]]
    if c.duplicated([group, item, size]).any():
        c = c.groupby([group, item, size], sort=False, as_index=False)[score].mean()
    wide = c.pivot(index=[group, item], columns=size, values=score)  # one pivot, then numpy per dataset
    sizes = np.asarray(wide.columns, dtype=float)
    values = wide.to_numpy(dtype=float)
    groups = wide.index.get_level_values(0).to_numpy()
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    for lo, hi in zip(starts, np.r_[starts[1:], len(groups)]):
        v = values[lo:hi]
        counts = np.isfinite(v).sum(0)
        big = np.flatnonzero(counts >= min_learners)
        if not len(big):
            continue
        j_l = big[-1]
        a_l = sizes[j_l]
        present = np.flatnonzero(counts > 0)
        small = present[sizes[present] <= a_l / small_ratio]
        if len(small) < window:
            continue
        pts = small[-window:]
        keep = np.isfinite(v[:, pts]).all(1) & np.isfinite(v[:, j_l])
        if keep.sum() < min_learners:
            continue
        tail, truth = v[keep][:, pts], v[keep, j_l]
        corrected = trend_correct(sizes[pts], tail, a_l, x=x)
        rows.append({group: groups[lo], "a_small": int(sizes[pts[-1]]), "a_large": int(a_l), "n_learners": int(keep.sum()),
                     "tau_raw": kendall(tail[:, -1], truth), "tau_trend": kendall(corrected, truth)})
    return pd.DataFrame(rows, columns=[group, "a_small", "a_large", "n_learners", "tau_raw", "tau_trend"])
