"""Farthest Greedy Path Sampling (FGPS, Algorithm 1 of arXiv 2310.20705) and the set statistics it rests on.

Paths are fixed-length integer encodings (:meth:`SearchSpace.encode`). Diversity of a set is the Shannon
entropy summed over encoding positions; the paper approximates the maximum-entropy subset by the one with
the largest sum of pairwise Hamming distances, and grows it greedily in batches: draw B unvisited random
candidates, move the K with the largest summed Hamming distance to the selected set into it, repeat.
Quality enters only through the pool FGPS draws from (a predictor-selected, tail-cut set of good paths).
"""
from __future__ import annotations

import numpy as np


def hamming_matrix(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Pairwise Hamming distances between the rows of ``a`` and of ``b`` (default ``a``)."""
    a = np.asarray(a)
    b = a if b is None else np.asarray(b)
    return (a[:, None, :] != b[None, :, :]).sum(-1)


def set_entropy(codes: np.ndarray) -> float:
    """Sum over positions of the entropy (nats) of that position's symbol frequencies in the set."""
    codes = np.asarray(codes)
    if len(codes) == 0:
        return 0.0
    total = 0.0
    for col in codes.T:
        _, counts = np.unique(col, return_counts=True)
        f = counts / counts.sum()
        total += float(-(f * np.log(f)).sum())
    return total


def mean_pairwise_hamming(codes: np.ndarray) -> float:
    codes = np.asarray(codes)
    n = len(codes)
    if n < 2:
        return 0.0
    return float(hamming_matrix(codes).sum() / (n * (n - 1)))


class _Counts:
    """Per-position symbol counts of the selected set: the summed Hamming distance of a candidate to all
    selected paths is sum_pos (|S| - count[pos, c[pos]]), so one candidate costs O(length), not O(|S|)."""

    def __init__(self, length: int, n_symbols: int):
        self.c = np.zeros((length, n_symbols), dtype=np.int64)
        self.n = 0
        self.pos = np.arange(length)

    def add(self, codes: np.ndarray) -> None:
        for row in np.atleast_2d(codes):
            self.c[self.pos, row] += 1
            self.n += 1

    def sum_distance(self, codes: np.ndarray) -> np.ndarray:
        return (self.n - self.c[self.pos[None, :], codes]).sum(1)


def fgps_select(codes: np.ndarray, n_select: int | None = None, batch: int = 200, k: int = 20,
                init: int | None = None, seed: int = 0, trace: bool = False, init_idx=None):
    """Algorithm 1. Returns the indices (into ``codes``) of the selected paths, in the order they joined.

    ``init`` paths (default ``batch``) are drawn at random to start; every round draws ``batch`` unvisited
    paths and keeps the ``k`` with the largest summed Hamming distance to the selected set. Stops when
    ``n_select`` paths are selected or the pool is used up. Duplicate encodings should be removed first.
    With ``trace=True`` also returns the set entropy after every round. ``init_idx`` fixes the starting set.
    """
    codes = np.asarray(codes, dtype=np.int64)
    n = len(codes)
    if n == 0:
        raise ValueError("fgps_select: the path pool is empty")
    if batch < 1 or not 1 <= k <= batch:
        raise ValueError(f"fgps_select: need batch >= 1 and 1 <= k <= batch, got batch={batch}, k={k}")
    target = n if n_select is None else min(n_select, n)
    init = batch if init is None else init
    if init < 1:
        raise ValueError(f"fgps_select: init must be >= 1, got {init}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)  # draws without replacement = walking a random permutation
    if init_idx is not None:
        first = np.asarray(init_idx, dtype=np.int64)
        order = np.concatenate([first, order[~np.isin(order, first)]])
    else:
        first = order[:min(init, target)]
    selected = list(first)
    counts = _Counts(codes.shape[1], int(codes.max()) + 1)
    counts.add(codes[first])
    cursor, entropies = len(first), [set_entropy(codes[selected])]
    while len(selected) < target and cursor < n:
        cand = order[cursor:cursor + batch]
        cursor += len(cand)
        take = min(k, target - len(selected))
        score = counts.sum_distance(codes[cand])
        best = cand[np.argsort(-score, kind="stable")[:take]]
        selected.extend(best.tolist())
        counts.add(codes[best])
        if trace:
            entropies.append(set_entropy(codes[selected]))
    sel = np.array(selected, dtype=np.int64)
    return (sel, entropies) if trace else sel


def dedupe(codes: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """Indices of the first occurrence of every distinct encoding (the best-scored one if ``scores`` given)."""
    codes = np.asarray(codes)
    order = np.arange(len(codes)) if scores is None else np.argsort(np.asarray(scores), kind="stable")
    seen, keep = set(), []
    for i in order:
        h = codes[i].tobytes()
        if h not in seen:
            seen.add(h)
            keep.append(i)
    return np.array(sorted(keep), dtype=np.int64)


def cut_tail(scores: np.ndarray, frac: float = 0.075) -> np.ndarray:
    """Indices without the worst ``frac`` by score (log loss: higher is worse); the paper cuts ~7.5%."""
    if not 0 <= frac < 1:
        raise ValueError(f"tail cut fraction must lie in [0, 1), got {frac}")
    scores = np.asarray(scores)
    n_keep = len(scores) - int(np.floor(len(scores) * frac))
    return np.sort(np.argsort(scores, kind="stable")[:n_keep])


def quality_topk(scores: np.ndarray, n: int) -> np.ndarray:
    """The quality-only baseline: the ``n`` best paths by predicted log loss."""
    return np.argsort(np.asarray(scores), kind="stable")[:n]


def random_subset(n_pool: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n_pool)[:n]
