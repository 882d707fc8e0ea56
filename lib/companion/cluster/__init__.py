"""Clustering for temporal character grouping (UniDG): affinity graphs (exact kNN, dynamic neighbourhoods by
cyclic matching), a GCN link model on torch-geometric, union-find clustering, a unified representation network,
progressive cross-modal association, scikit-learn baselines and metrics.

``experiment.run_seed`` runs the whole study for one seed; the ``unidg`` notebook calls it over several seeds.
"""
from . import associate, gcn, graph, methods, metrics, represent

__all__ = ["associate", "gcn", "graph", "methods", "metrics", "represent"]
