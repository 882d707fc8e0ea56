"""CTR models, sequence models and point backbones built on one shared embedding layer.

Import from the submodules: ``basic`` (LR, crossed LR), ``ctr`` (FM ... Wukong), ``sequential`` (DIN, DIEN, BST, DMIN, DMR,
TransAct), ``interformer``, ``mamba`` (selective-scan SSM, CPU and CUDA), ``point_backbone`` (serialized point U-Net).
Only the shared embedding layer is re-exported here, so importing the package stays cheap.
"""
from .embedding import FeatureEmbedding

__all__ = ["FeatureEmbedding"]
