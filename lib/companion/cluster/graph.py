"""Affinity graphs over track embeddings: exact kNN and per-node ("dynamic") neighbourhoods by cyclic matching.

A fixed-k kNN graph gives every node k neighbours, however many of its own identity exist: a minor character
with three tracks gets k - 2 wrong edges. UniDG's abstract says it builds neighbours "of different quantities"
per node by a *cyclic matching* strategy. Its rule is not public; the variants below are the reconstructions
listed in the project's notes (points_video.md B5.3, addendum B.3), all starting from the top-K list N_K(i):

* ``prefix`` (Variant A): walk i's list in rank order and accept j while i is also in N_K(j) (the walk
  i -> j -> i closes a cycle); stop at the first failure;
* ``reciprocal`` (Variant B): keep every j in N_K(i) with i in N_K(j);
* ``expanded`` (Variant B with the k-reciprocal 2/3 rule of re-ranking code): add the half-size reciprocal set
  of a member j when more than 2/3 of it already lies in i's set;
* ``tolerant`` (Variant C): accept j when rank_j(i) <= alpha * rank_i(j) + c (a cycle "short enough" in rank);
* ``fixed``: the first k of the list (the learn-to-cluster graph), the control.

A node the rule leaves without neighbours keeps its nearest one, so no node is cut off by the rule itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VARIANTS = ("fixed", "prefix", "reciprocal", "expanded", "tolerant")


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn(x: np.ndarray, k: int, chunk: int = 2048, normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN, self excluded: ``(idx, sim)`` of shape (n, k), most similar first.

    Computed in row chunks so memory stays at chunk x n floats (faiss IndexFlatIP does the same sum exactly;
    at the sizes of a notebook numpy is as fast). Ties are broken by the smaller index, so results are stable.
    """
    x = l2_normalise(x) if normalise else np.asarray(x, np.float32)
    n = len(x)
    if n < 2:
        raise ValueError("a kNN graph needs at least 2 points")
    k = min(k, n - 1)
    idx = np.empty((n, k), np.int64)
    sim = np.empty((n, k), np.float32)
    for a in range(0, n, chunk):
        s = x[a:a + chunk] @ x.T
        rows = np.arange(s.shape[0])
        s[rows, a + rows] = -np.inf
        # stable order: sort by (-sim, index)
        part = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < n - 1 else np.argsort(-s, axis=1, kind="stable")[:, :k]
        ps = np.take_along_axis(s, part, 1)
        order = np.lexsort((part, -ps), axis=1)
        idx[a:a + chunk] = np.take_along_axis(part, order, 1)
        sim[a:a + chunk] = np.take_along_axis(ps, order, 1)
    return idx, sim


def knn_from_similarity(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The kNN table of a given (n, n) similarity matrix, self excluded, ties broken by the smaller index."""
    s = np.array(s, dtype=np.float64)
    np.fill_diagonal(s, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(s)), s.shape), -s), axis=1)[:, :k]
    return order.astype(np.int64), np.take_along_axis(s, order, 1).astype(np.float32)


@dataclass
class Neighbourhoods:
    """Each node's accepted neighbours (indices and similarities), in rank order."""
    lists: list
    sims: list
    variant: str

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(l) for l in self.lists])

    def __len__(self) -> int:
        return len(self.lists)

    def edges(self, symmetric: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(edge_index (2, E), weight (E,))``: i -> j for each accepted j, plus j -> i when ``symmetric``."""
        src = np.concatenate([np.full(len(l), i) for i, l in enumerate(self.lists)]).astype(np.int64)
        dst = np.concatenate(self.lists).astype(np.int64)
        w = np.concatenate(self.sims).astype(np.float32)
        if symmetric:
            src, dst, w = np.r_[src, dst], np.r_[dst, src], np.r_[w, w]
            key = src * len(self) + dst
            _, first = np.unique(key, return_index=True)
            src, dst, w = src[first], dst[first], w[first]
        return np.stack([src, dst]), w


def _reciprocal_table(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``recip[i, r]``: is i in the list of its rank-r neighbour; ``back[i, r]``: i's 1-based rank there (or K+1)."""
    n, K = idx.shape
    hit = idx[idx] == np.arange(n)[:, None, None]  # (n, K, K): list of idx[i, r] contains i at position q
    recip = hit.any(axis=2)
    back = np.where(recip, hit.argmax(axis=2) + 1, K + 1)
    return recip, back


def neighbourhoods(idx: np.ndarray, sim: np.ndarray, variant: str = "reciprocal", k: int | None = None,
                   alpha: float = 1.5, c: float = 2.0, min_sim: float | None = None) -> Neighbourhoods:
    """Per-node neighbourhoods from a kNN table (``idx``, ``sim`` from :func:`knn`).

    ``k``: the list length used by the rule (defaults to all K columns; ``fixed`` keeps exactly k). ``min_sim``
    drops accepted neighbours below a similarity (the nearest one is always kept).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    K = idx.shape[1] if k is None else min(k, idx.shape[1])
    idx, sim = idx[:, :K], sim[:, :K]
    n = len(idx)
    if variant == "fixed":
        mask = np.ones_like(idx, dtype=bool)
    else:
        recip, back = _reciprocal_table(idx)
        if variant == "prefix":
            mask = np.cumprod(recip, axis=1).astype(bool)
        elif variant in ("reciprocal", "expanded"):
            mask = recip.copy()
        else:  # tolerant
            rank = np.arange(1, K + 1)[None, :]
            mask = back <= alpha * rank + c
    if min_sim is not None:
        mask &= sim >= min_sim
    mask[~mask.any(axis=1), 0] = True  # a node the rule leaves empty keeps its nearest neighbour
    lists = [idx[i][mask[i]] for i in range(n)]
    sims = [sim[i][mask[i]] for i in range(n)]
    if variant == "expanded":
        # k-reciprocal expansion: add a member j's half-size reciprocal set when more than 2/3 of it is already
        # in i's set; additions are limited to i's own top-K list so their similarities are known
        small = neighbourhoods(idx, sim, "reciprocal", k=max(1, K // 2))
        for i in range(n):
            members = set(lists[i].tolist()) | {i}
            row = dict(zip(idx[i].tolist(), sim[i].tolist()))
            grown = set(members)
            for j in lists[i].tolist():
                rj = set(small.lists[j].tolist()) | {j}
                if len(rj & members) > 2 / 3 * len(rj):
                    grown |= {q for q in rj if q in row}
            add = [q for q in idx[i].tolist() if q in grown and q not in members]
            if add:
                lists[i] = np.r_[lists[i], np.array(add, np.int64)]
                sims[i] = np.r_[sims[i], np.array([row[q] for q in add], np.float32)]
    return Neighbourhoods(lists, sims, variant)


def edge_quality(nb: Neighbourhoods, labels: np.ndarray) -> dict:
    """Precision of the graph's edges (share linking the same identity) and recall (share of each node's
    same-identity partners that are its neighbours), directed, averaged over nodes and over edges."""
    labels = np.asarray(labels)
    same = [labels[l] == labels[i] for i, l in enumerate(nb.lists)]
    counts = np.bincount(np.unique(labels, return_inverse=True)[1])
    _, inv = np.unique(labels, return_inverse=True)
    partners = counts[inv] - 1
    tp = np.array([s.sum() for s in same])
    return {"edge_precision": float(tp.sum() / max(1, nb.sizes.sum())),
            "node_recall": float(np.mean(np.where(partners > 0, tp / np.maximum(partners, 1), 1.0))),
            "mean_degree": float(nb.sizes.mean())}
