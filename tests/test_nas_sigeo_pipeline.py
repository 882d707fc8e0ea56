"""The SiGeo notebook's library pieces: the theory check, the cell space, the proxy benchmark, sub-one-shot search."""
import numpy as np
import pandas as pd
import pytest
import torch

from companion.data.digits import load_digits_splits
from companion.nas import proxy_bench as pb
from companion.nas import subone as so
from companion.nas import theory
from companion.nas.cells import EDGES, CellNet, CellSpace


@pytest.fixture(scope="module")
def digits():
    return load_digits_splits(seed=0)


def test_digits_split_sizes_and_standardisation(digits):
    assert (len(digits.y_train), len(digits.y_valid), len(digits.y_test)) == (1197, 300, 300)
    assert digits.x_train.shape[1:] == (1, 8, 8)
    assert abs(float(digits.x_train.mean())) < 1e-5 and float(digits.x_train.std()) == pytest.approx(1, abs=1e-3)


def test_window_starts_stay_inside_the_epoch():
    assert theory._window_starts(75, (0.0, 0.1, 0.99), 4) == [0, 7, 71]


def test_theory_check_accumulation_changes_gradients_not_losses(digits):
    kw = dict(levels=(0.0, 0.2), epochs=1, batch_size=32)
    a = pd.DataFrame(theory.run_one(digits, 6, seed=1, **kw))
    b = pd.DataFrame(theory.run_one(digits, 6, seed=1, accumulate=True, **kw))
    np.testing.assert_allclose(a.current_loss, b.current_loss)
    np.testing.assert_allclose(a.test_loss, b.test_loss)
    # accumulated gradients are running sums: their mean |g| grows beyond the per-batch one
    assert (b.mean_abs_grad.to_numpy() > a.mean_abs_grad.to_numpy()).all()


def test_cell_ops_and_an_all_zero_cell():
    x = torch.randn(3, 1, 8, 8)
    net = CellNet(("none",) * len(EDGES))
    out = net(x)
    assert out.shape == (3, 10)
    torch.testing.assert_close(out, net.classifier.bias.expand(3, 10))  # nothing reaches the classifier
    with pytest.raises(ValueError):
        CellNet(("conv5x5",) * 6)
    archs = CellSpace().sample(20, seed=3)
    assert len(set(archs)) == 20


def test_correlations_rank_a_perfect_and_a_failing_proxy():
    truth = pd.DataFrame({"arch_id": range(5), "valid_acc": [0.1, 0.2, 0.3, 0.4, 0.5]})
    scores = pd.DataFrame({"arch_id": list(range(5)) * 2, "seed": 0, "level": 0.0, "samples": 0,
                           "proxy": ["good"] * 5 + ["bad"] * 5,
                           "score": [1, 2, 3, 4, 5] + [5, 4, 3, 2, float("nan")]})
    c = pb.correlations(scores, truth).set_index("proxy")
    assert c.loc["good", "kendall"] == pytest.approx(1.0)
    # the non-finite score ranks last: the order 5 > 4 > 3 > 2 > nan is exactly reversed
    assert c.loc["bad", "kendall"] == pytest.approx(-1.0) and c.loc["bad", "nonfinite"] == 1


def test_parse_arm():
    assert so.parse_arm("sigeo@0.01") == ("sigeo", 0.01) and so.parse_arm("random") == ("random", 0.0)
    with pytest.raises(ValueError):
        so.parse_arm("zen@0")
    with pytest.raises(ValueError):
        so.parse_arm("sigeo@2")


def test_sub_one_shot_runs_and_accounts_compute():
    from companion.data.synthetic import make_synthetic_ctr
    from companion.nas import make_space

    splits = make_synthetic_ctr(n_samples=2000, seed=0)
    space = make_space("nasrec-small", "tiny")
    cfg = so.SubOneShotConfig(arms=("random", "sigeo@0.05"), score_batch_size=128, population=4, sample=2, children=2,
                              generations=1, top_k=1)
    out = so.run_seed(splits, space, cfg, seed=0)
    s = out["summary"].set_index("arm")
    assert s.loc["random", "warmup_samples"] == 0 and s.loc["sigeo@0.05", "warmup_samples"] == 80
    assert s.loc["sigeo@0.05", "warmup_steps"] == 1 and s.loc["sigeo@0.05", "evaluations"] == 6
    assert (s.compute_s >= s.search_s).all() and np.isfinite(s.final_test_logloss).all()
