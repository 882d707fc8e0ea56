"""Clustering metrics of the face-clustering literature: pairwise and BCubed precision/recall/F, NMI, and the
temporal coverage of each character's predicted appearances.

Pairwise and BCubed follow the contingency-matrix formulas of learn-to-cluster's evaluation code (re-derived
here, not copied); the tests check them against brute-force counting over pairs and items. NMI is scikit-learn's
(arithmetic normalisation, its default).
"""
from __future__ import annotations

import numpy as np
from scipy import sparse


def _labels(gt, pred):
    gt, pred = np.asarray(gt).ravel(), np.asarray(pred).ravel()
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth and prediction differ in length: {gt.size} vs {pred.size}")
    if gt.size == 0:
        raise ValueError("cannot score an empty clustering")
    return gt, pred


def contingency(gt, pred) -> sparse.csr_matrix:
    """Sparse counts n_ij of items with ground-truth label i and predicted label j."""
    gt, pred = _labels(gt, pred)
    _, gi = np.unique(gt, return_inverse=True)
    _, pj = np.unique(pred, return_inverse=True)
    return sparse.coo_matrix((np.ones(gt.size), (gi, pj)), shape=(gi.max() + 1, pj.max() + 1)).tocsr()


def _f(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def pairwise_prf(gt, pred) -> tuple[float, float, float]:
    """Precision, recall and F over pairs of items: a pair is positive when both items share a label.

    A clustering with no predicted (or no true) pair has precision (or recall) 1 by convention: nothing was
    claimed, so nothing was claimed wrongly.
    """
    c = contingency(gt, pred)
    n = c.sum()
    tp = (c.data ** 2).sum() - n
    pred_pairs = (np.asarray(c.sum(axis=0)).ravel() ** 2).sum() - n
    true_pairs = (np.asarray(c.sum(axis=1)).ravel() ** 2).sum() - n
    p = tp / pred_pairs if pred_pairs else 1.0
    r = tp / true_pairs if true_pairs else 1.0
    return float(p), float(r), _f(float(p), float(r))


def bcubed_prf(gt, pred) -> tuple[float, float, float]:
    """BCubed precision/recall/F: per item, the share of its predicted (true) cluster that shares its true
    (predicted) label, averaged over items (each item counts itself)."""
    c = contingency(gt, pred).tocoo()
    n = c.data.sum()
    pred_size = np.asarray(c.tocsr().sum(axis=0)).ravel()
    true_size = np.asarray(c.tocsr().sum(axis=1)).ravel()
    p = (c.data ** 2 / pred_size[c.col]).sum() / n
    r = (c.data ** 2 / true_size[c.row]).sum() / n
    return float(p), float(r), _f(float(p), float(r))


def nmi(gt, pred) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    gt, pred = _labels(gt, pred)
    return float(normalized_mutual_info_score(gt, pred))


def _union_length(intervals: np.ndarray) -> float:
    """Total length of a union of [start, end) intervals."""
    if len(intervals) == 0:
        return 0.0
    iv = intervals[np.argsort(intervals[:, 0])]
    total, cur_s, cur_e = 0.0, iv[0, 0], iv[0, 1]
    for s, e in iv[1:]:
        if s > cur_e:
            total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    return float(total + cur_e - cur_s)


def _merge(intervals: np.ndarray) -> np.ndarray:
    if len(intervals) == 0:
        return intervals.reshape(0, 2)
    iv = intervals[np.argsort(intervals[:, 0])]
    out = [list(iv[0])]
    for s, e in iv[1:]:
        if s > out[-1][1]:
            out.append([s, e])
        else:
            out[-1][1] = max(out[-1][1], e)
    return np.asarray(out, dtype=float)


def _intersection_length(a: np.ndarray, b: np.ndarray) -> float:
    """Length of the intersection of two unions of intervals (both merged first)."""
    a, b = _merge(a), _merge(b)
    i = j = 0
    total = 0.0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if hi > lo:
            total += hi - lo
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return total


def temporal_coverage(gt, pred, start, end, characters=None) -> dict:
    """How well the predicted groups cover each character's time on screen (or on the sound track).

    Each true character is matched one-to-one (Hungarian, maximising shared seconds) to a predicted cluster that
    holds at least one of its tracks (a cluster of someone else who is merely on screen at the same time is not a
    candidate); for
    the pair, ``coverage`` = shared seconds / the character's seconds and ``tiou`` = shared / union seconds, both
    over the union of the tracks' [start, end) spans. Returned: the means over ``characters`` (default: every
    true label) and the per-character values. An unmatched character scores 0.
    """
    from scipy.optimize import linear_sum_assignment

    gt, pred = _labels(gt, pred)
    start, end = np.asarray(start, float).ravel(), np.asarray(end, float).ravel()
    if start.shape != gt.shape or end.shape != gt.shape:
        raise ValueError("start and end need one value per item")
    if (end < start).any():
        raise ValueError("a track ends before it starts")
    chars = np.unique(gt) if characters is None else np.asarray(list(characters))
    clusters = np.unique(pred)
    spans = np.stack([start, end], 1)
    t_char = {c: spans[gt == c] for c in chars}
    t_clu = {k: spans[pred == k] for k in clusters}
    # a cluster is a candidate for a character only if it holds at least one of the character's tracks
    inter = np.zeros((len(chars), len(clusters)))
    clu_index = {k: j for j, k in enumerate(clusters)}
    for i, c in enumerate(chars):
        for k in np.unique(pred[gt == c]):
            inter[i, clu_index[k]] = _intersection_length(t_char[c], t_clu[k])
    rows, cols = linear_sum_assignment(-inter)
    per = {}
    for c in chars:
        per[c] = {"coverage": 0.0, "tiou": 0.0, "seconds": _union_length(t_char[c])}
    for i, j in zip(rows, cols):
        c, k = chars[i], clusters[j]
        shared = inter[i, j]
        if shared <= 0:
            continue
        own = per[c]["seconds"]
        union = own + _union_length(t_clu[k]) - shared
        per[c]["coverage"] = shared / own if own else 0.0
        per[c]["tiou"] = shared / union if union else 0.0
    return {"coverage": float(np.mean([v["coverage"] for v in per.values()])),
            "tiou": float(np.mean([v["tiou"] for v in per.values()])), "per_character": per}


def evaluate(gt, pred, start=None, end=None, characters=None) -> dict:
    """All metrics in one flat dict (fractions in [0, 1]); temporal ones only when spans are given."""
    pp, pr, pf = pairwise_prf(gt, pred)
    bp, br, bf = bcubed_prf(gt, pred)
    out = {"pairwise_p": pp, "pairwise_r": pr, "pairwise_f": pf, "bcubed_p": bp, "bcubed_r": br, "bcubed_f": bf,
           "nmi": nmi(gt, pred), "n_clusters": int(len(np.unique(pred))), "n_items": int(np.asarray(gt).size)}
    if start is not None and end is not None:
        t = temporal_coverage(gt, pred, start, end, characters)
        out["coverage"], out["tiou"] = t["coverage"], t["tiou"]
    return out
