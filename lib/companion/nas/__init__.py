"""Neural architecture search for recommender models: NASRec's search space and weight-sharing supernet,
regularized evolution, a path-quality predictor, and FGPS two-shot search.

Modules: ``space`` (search space, architecture encoding), ``supernet`` (weight-sharing supernet, standalone
model), ``training`` (supernet training, subnet scoring, from-scratch training), ``evolution`` (regularized
evolution over any candidate type), ``predictor`` (path-quality predictor), ``fgps`` (FGPS and set diversity),
``twoshot`` (the two-shot pipeline and its baselines).
"""
from .evolution import EvolutionResult, random_search, regularized_evolution
from .fgps import fgps_select, hamming_matrix, set_entropy
from .predictor import PathPredictor, PredictorConfig, fit_predictor
from .space import (BINARY_DENSE_OPS, DENSE_OPS, SPARSE_OPS, Arch, BlockChoice, SearchSpace, distance, make_space,
                    nasrec_full, nasrec_small)
from .supernet import ChoiceBlock, NASRecNet, SuperNet, build, linear_roles
from .training import SubnetEval, SupernetConfig, evaluate_subnet, train_standalone, train_supernet

__all__ = ["Arch", "BlockChoice", "SearchSpace", "DENSE_OPS", "SPARSE_OPS", "BINARY_DENSE_OPS", "distance",
           "make_space", "nasrec_full", "nasrec_small", "SuperNet", "NASRecNet", "ChoiceBlock", "build", "linear_roles",
           "SupernetConfig", "SubnetEval", "train_supernet", "evaluate_subnet", "train_standalone",
           "regularized_evolution", "random_search", "EvolutionResult", "fgps_select", "set_entropy", "hamming_matrix",
           "PathPredictor", "PredictorConfig", "fit_predictor"]
