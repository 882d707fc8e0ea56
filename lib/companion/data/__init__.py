"""Datasets: schemas, real-format loaders and synthetic generators with known ground truth."""
from .schema import CTRDataset, CTRSplits, Field, Schema, split_indices

__all__ = ["CTRDataset", "CTRSplits", "Field", "Schema", "split_indices"]
