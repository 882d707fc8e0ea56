"""CTR models, sequence models and point backbones built on one shared embedding layer."""
from .embedding import FeatureEmbedding

__all__ = ["FeatureEmbedding"]
