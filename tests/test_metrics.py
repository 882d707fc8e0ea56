import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from companion import metrics


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    p[:50] = 0.5  # ties
    return y, p


def test_auc_matches_sklearn(scores):
    y, p = scores
    assert metrics.auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_logloss_matches_sklearn(scores):
    y, p = scores
    assert metrics.logloss(y, p) == pytest.approx(log_loss(y, p), abs=1e-9)


def test_gauc_weights_groups_and_skips_single_class():
    y = np.array([1, 0, 1, 0, 1, 1, 0, 0, 1])
    p = np.array([0.9, 0.1, 0.2, 0.8, 0.5, 0.6, 0.3, 0.4, 0.7])
    g = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3])
    # group 2 has one class only and is skipped
    expected = (roc_auc_score(y[:2], p[:2]) * 2 + roc_auc_score(y[2:4], p[2:4]) * 2 + roc_auc_score(y[6:], p[6:]) * 3) / 7
    assert metrics.gauc(y, p, g) == pytest.approx(expected)


def test_normalized_entropy_of_constant_predictor_is_one():
    y = np.array([1, 0, 0, 0] * 25)
    assert metrics.normalized_entropy(y, np.full(100, 0.25), base_ctr=0.25) == pytest.approx(1.0)
    assert metrics.normalized_entropy(y, np.where(y == 1, 0.9, 0.1), base_ctr=0.25) < 0.5


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="one class"):
        metrics.auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="empty"):
        metrics.logloss([], [])
    with pytest.raises(ValueError, match="differ in length"):
        metrics.auc([1, 0], [0.5])
    with pytest.raises(ValueError, match="base CTR"):
        metrics.normalized_entropy([1, 0], [0.5, 0.5], base_ctr=0.0)
    with pytest.raises(ValueError, match="no group"):
        metrics.gauc([1, 1, 0], [0.1, 0.2, 0.3], [0, 0, 1])


def test_device_choice_and_json_records():
    import math

    import torch

    from companion import results, runtime

    assert runtime.choose_device("cpu").type == "cpu"
    assert runtime.choose_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be"):
        runtime.choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            runtime.choose_device("cuda")
    rec = results.jsonable({"a": np.float32(0.5), "b": torch.tensor([1, 2]), "c": math.nan, "d": (1, np.int64(2))})
    assert rec == {"a": 0.5, "b": [1, 2], "c": None, "d": [1, 2]}
    with pytest.raises(TypeError, match="evidence.Evidence"):
        results.claim("x", 1, 2, "maybe")
    with pytest.raises(TypeError, match="evidence.Evidence"):
        results.claim("x", 1, 2, "reproduced")  # a bare verdict word is refused too: the engine decides
