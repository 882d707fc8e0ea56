import math

import pytest
import torch

from companion import train
from companion.data.synthetic import make_synthetic_ctr
from companion.models.basic import CrossedLR, LogisticRegression
from companion.runtime import seed_everything


@pytest.fixture(scope="module")
def data():
    return make_synthetic_ctr(12000, n_dense=2, n_sparse=6, vocab_size=12, n_pairs=2, n_triples=0, seed=3)


def _fit(model_fn, data, **kw):
    seed_everything(0)
    cfg = train.TrainConfig(**{"epochs": 3, "batch_size": 256, "lr": 0.02, "progress": False, **kw})
    return train.fit(model_fn(), data, cfg)


def test_generator_is_deterministic_and_hits_target_ctr():
    a = make_synthetic_ctr(3000, seed=5, target_ctr=0.3)
    b = make_synthetic_ctr(3000, seed=5, target_ctr=0.3)
    assert torch.equal(a.train.sparse, b.train.sparse) and torch.equal(a.test.label, b.test.label)
    assert a.info["ground_truth"].pairs == b.info["ground_truth"].pairs
    assert abs(float(a.info["true_prob"].mean()) - 0.3) < 0.01
    assert make_synthetic_ctr(3000, seed=6).info["ground_truth"].pairs != a.info["ground_truth"].pairs or \
        not torch.equal(make_synthetic_ctr(3000, seed=6).train.sparse, a.train.sparse)


def test_planted_interaction_is_learnable(data):
    truth = data.info["ground_truth"]
    planted = [p for p in truth.pairs if p[0].startswith("C")]
    names = [f.name for f in data.schema.sparse]
    wrong = [(a, b) for a in names for b in names if a < b and (a, b) not in truth.pairs][: len(planted)]
    lr = _fit(lambda: LogisticRegression(data.schema), data).test["auc"]
    good = _fit(lambda: CrossedLR(data.schema, planted), data).test["auc"]
    bad = _fit(lambda: CrossedLR(data.schema, wrong), data).test["auc"]
    assert good > lr + 0.02, (good, lr)
    assert good > bad + 0.02, (good, bad)
    assert good <= truth.bayes_test["auc"] + 0.02


def test_training_is_deterministic_with_a_seed(data):
    a = _fit(lambda: LogisticRegression(data.schema), data)
    b = _fit(lambda: LogisticRegression(data.schema), data)
    assert a.test == b.test and a.history == b.history
    assert a.samples_per_s > 0 and a.steps > 0


def test_nan_loss_stops_with_a_clear_error(data):
    bad = make_synthetic_ctr(500, n_dense=2, n_sparse=3, vocab_size=5, n_pairs=1, n_triples=0, seed=1)
    bad.train.dense[7, 0] = float("nan")
    with pytest.raises(train.NonFiniteLossError, match="loss became nan"):
        _fit(lambda: LogisticRegression(bad.schema), bad)


@pytest.mark.parametrize("epochs", [0, -1])
def test_non_positive_epochs_are_rejected(epochs):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train.TrainConfig(epochs=epochs)


def test_early_stopping_keeps_best_epoch(data):
    res = _fit(lambda: LogisticRegression(data.schema), data, epochs=6, patience=1, lr=0.5)
    best = max(h["valid_auc"] for h in res.history)
    assert math.isclose(res.valid["auc"], best, rel_tol=1e-9)
