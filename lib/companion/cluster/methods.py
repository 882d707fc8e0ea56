"""Clusterers with one interface: ``fit`` on labelled validation sets, ``predict`` on one set of embeddings.

* ``GraphGCN``: kNN table -> neighbourhoods (fixed k, or dynamic by cyclic matching) -> GCN confidence (and link
  head) -> each node linked to a more confident neighbour above a tuned threshold -> union-find.
  With ``variant="fixed"`` this is the learn-to-cluster baseline; with a cyclic-matching variant, UniDG's
  dynamic graph (as reconstructed).
* scikit-learn baselines: k-means with the true number of characters (an oracle k, stated as such),
  agglomerative (average linkage, cosine) and DBSCAN with their distance threshold tuned on the validation
  sets, HDBSCAN (``sklearn.cluster.HDBSCAN``) with its minimum cluster size tuned likewise.

Tuning maximises mean BCubed F on the validation sets, never on the test videos.
"""
from __future__ import annotations

import numpy as np

from . import gcn as G
from . import graph
from .metrics import bcubed_prf


def _tune(fn, grid, sets):
    scores = [np.mean([bcubed_prf(y, fn(x, g))[2] for x, y in sets]) for g in grid]
    return grid[int(np.argmax(scores))]


class GraphGCN:
    def __init__(self, variant: str = "reciprocal", k: int = 20, gcn: G.GCNConfig = G.GCNConfig(),
                 rule: str = "peak", min_sim: float | None = None, tune: bool = True, score: str = "similarity",
                 grid=tuple(np.round(np.arange(0.05, 0.951, 0.05), 2))):
        self.variant, self.k, self.cfg, self.rule, self.min_sim = variant, k, gcn, rule, min_sim
        self.score = score
        self.tune, self.grid = tune, tuple(grid)
        self.model, self.threshold = None, gcn.threshold

    def graph(self, x):
        idx, sim = graph.knn(x, self.k)
        return graph.neighbourhoods(idx, sim, self.variant, min_sim=self.min_sim)

    def fit(self, sets):
        """Train the link model on the sets, then pick the link threshold that maximises their BCubed F
        (learn-to-cluster tunes its tau the same way; ``tune=False`` keeps ``gcn.threshold``)."""
        sets = [(x, y) for x, y in sets if len(y) > 2]
        graphs = [(x, self.graph(x), y) for x, y in sets]
        self.model = G.train_gcn(graphs, self.cfg)
        self.threshold = self.cfg.threshold
        if self.tune:
            scored = [(G.predict(self.model, x, nb, self.score), y) for x, nb, y in graphs]
            f = {th: np.mean([bcubed_prf(y, G.link_clusters(*p, th, self.rule))[2] for p, y in scored])
                 for th in self.grid}
            self.threshold = max(f, key=f.get)
        return self

    def predict(self, x, n_clusters=None):
        if len(x) < 3:
            return np.arange(len(x))
        nb = self.graph(x)
        conf, ei, prob = G.predict(self.model, x, nb, self.score)
        return G.link_clusters(conf, ei, prob, self.threshold, self.rule)


class KMeansOracle:
    """k-means told the true number of characters in the set (an advantage no other method gets)."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, sets):
        return self

    def predict(self, x, n_clusters=None):
        from sklearn.cluster import KMeans

        k = max(1, min(int(n_clusters), len(x)))
        return KMeans(k, n_init=4, random_state=self.seed).fit_predict(graph.l2_normalise(x))


class Agglomerative:
    def __init__(self, grid=tuple(np.linspace(0.2, 1.2, 11))):
        self.grid, self.th = list(grid), None

    def _run(self, x, th):
        from sklearn.cluster import AgglomerativeClustering

        if len(x) < 2:
            return np.zeros(len(x), int)
        return AgglomerativeClustering(n_clusters=None, distance_threshold=th, metric="cosine",
                                       linkage="average").fit_predict(x)

    def fit(self, sets):
        self.th = _tune(self._run, self.grid, sets)
        return self

    def predict(self, x, n_clusters=None):
        return self._run(x, self.th)


def _noise_to_singletons(lab):
    lab = lab.copy()
    noise = lab < 0
    lab[noise] = lab.max() + 1 + np.arange(noise.sum())
    return lab


class DBSCANTuned:
    def __init__(self, grid=tuple(np.linspace(0.1, 0.9, 9)), min_samples: int = 2):
        self.grid, self.min_samples, self.eps = list(grid), min_samples, None

    def _run(self, x, eps):
        from sklearn.cluster import DBSCAN

        return _noise_to_singletons(DBSCAN(eps=eps, min_samples=self.min_samples, metric="cosine").fit_predict(x))

    def fit(self, sets):
        self.eps = _tune(self._run, self.grid, sets)
        return self

    def predict(self, x, n_clusters=None):
        return self._run(x, self.eps)


class HDBSCANTuned:
    def __init__(self, grid=(2, 3, 5, 8)):
        self.grid, self.size = list(grid), None

    def _run(self, x, size):
        from sklearn.cluster import HDBSCAN

        if len(x) <= size:
            return np.arange(len(x))
        return _noise_to_singletons(HDBSCAN(min_cluster_size=size, copy=True).fit_predict(graph.l2_normalise(x)))

    def fit(self, sets):
        self.size = _tune(self._run, self.grid, sets)
        return self

    def predict(self, x, n_clusters=None):
        return self._run(x, self.size)
