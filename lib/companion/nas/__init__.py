"""Neural architecture search for recommender models: NASRec's search space and weight-sharing supernet,
regularized evolution, a path-quality predictor, and FGPS two-shot search."""
from .space import (BINARY_DENSE_OPS, DENSE_OPS, SPARSE_OPS, Arch, BlockChoice, SearchSpace, distance, make_space,
                    nasrec_full, nasrec_small)
from .supernet import ChoiceBlock, NASRecNet, SuperNet, build, linear_roles

__all__ = ["Arch", "BlockChoice", "SearchSpace", "DENSE_OPS", "SPARSE_OPS", "BINARY_DENSE_OPS", "distance",
           "make_space", "nasrec_full", "nasrec_small", "SuperNet", "NASRecNet", "ChoiceBlock", "build", "linear_roles"]
