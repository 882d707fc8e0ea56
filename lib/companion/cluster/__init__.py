"""Clustering for temporal character grouping (UniDG): affinity graphs (exact kNN, dynamic neighbourhoods by
cyclic matching), GCN link models on torch-geometric, union-find clustering, a unified representation network,
progressive cross-modal association, baselines and metrics."""
from . import metrics

__all__ = ["metrics"]
