"""The automl_ranking pieces: the ranking-loss ensemble orders a known function; the DHEN+lr trial objective
returns a finite, trend-corrected NE; its FLOPs constraint refuses a too-large candidate before any training."""
import numpy as np
import pytest

from companion.data.synthetic import make_synthetic_ctr
from companion.nas import automl
from companion.nas.lowfi import kendall, trend_correct
from companion.nas.ranking import EnsembleConfig, MLPEnsemble
from companion.nas.searchers import RandomSearch

BIG = {"layers": 3, "modules": "dot+dcn", "rank": 32, "hidden": "256-128", "dim": 16, "lr": 1e-3}
SMALL = {"layers": 1, "modules": "dot", "rank": 8, "hidden": "64", "dim": 8, "lr": 3e-3}


def _monotone(codes):
    # strictly increasing in every decision with different weights, bent by a monotone nonlinearity
    return np.tanh(0.3 * (codes @ np.array([4.0, 3.0, 2.0, 1.0, 0.5]))) + 0.01 * codes[:, 0]


def test_ranking_loss_orders_a_monotone_function_on_held_out_codes():
    rng = np.random.default_rng(0)
    card = [4, 4, 4, 4, 4]
    codes = rng.integers(0, 4, size=(400, 5))
    y = _monotone(codes)
    cfg = EnsembleConfig(members=3, hidden=(32, 32), loss="margin", epochs=60, batch_size=64)
    model = MLPEnsemble(card, cfg, seed=0).fit(codes[:200], y[:200])
    mean, spread = model.predict(codes[200:])
    assert kendall(mean, y[200:]) > 0.8
    assert spread.shape == (200,) and (spread >= 0).all()
    # the same ensemble trained on the reversed labels ranks the other way round: the loss reads the order
    flipped = MLPEnsemble(card, cfg, seed=0).fit(codes[:200], -y[:200]).predict(codes[200:])[0]
    assert kendall(flipped, y[200:]) < -0.8


@pytest.fixture(scope="module")
def splits():
    return make_synthetic_ctr(n_samples=800, seed=0)


def test_space_and_flops(splits):
    space = automl.dhen_space()
    assert space.size() == 3 * 3 * 3 * 3 * 2 * 4
    f_base = automl.candidate_flops(automl.HAND_TUNED, splits)
    assert automl.candidate_flops(SMALL, splits) < f_base < automl.candidate_flops(BIG, splits)
    assert automl.candidate_flops({**automl.HAND_TUNED, "lr": 1e-2}, splits) == f_base  # lr changes no FLOPs


def test_flops_constraint_refuses_a_too_large_candidate_before_training(splits, monkeypatch):
    limit = automl.flops_constraint(splits, automl.candidate_flops(automl.HAND_TUNED, splits))
    obj = automl.LowFiObjective(splits, fraction=0.5, checkpoints=2, batch_size=128, constraints=[limit])

    def no_training(*a, **k):
        raise AssertionError("fit() was called for a candidate over the FLOPs limit")

    monkeypatch.setattr(automl, "fit", no_training)
    with pytest.raises(automl.ConstraintViolation, match="exceeds the limit"):
        obj(BIG, 0)
    assert obj.evaluations == 0
    # searchers given the constraint never propose such a candidate
    s = RandomSearch(automl.dhen_space(), seed=0, constraints=[limit])
    props = [s.ask()[0] for _ in range(25)]
    assert all(limit.ok(p.cand) for p in props) and s.rejected > 0


def test_objective_returns_finite_trend_corrected_ne(splits):
    obj = automl.LowFiObjective(splits, fraction=0.5, checkpoints=3, window=3, batch_size=64, train_seed=1)
    out = obj(SMALL, 0)
    assert np.isfinite(out["ne"]) and np.isfinite(out["ne_raw"]) and out["flops"] > 0
    xs, ys = np.array(out["curve"]).T
    assert len(xs) == 3 and (np.diff(xs) > 0).all() and ys[-1] == out["ne_raw"]
    target = obj._steps_per_epoch * obj.batch_size
    assert out["ne"] == pytest.approx(trend_correct(xs, ys[None, :], target, x="linear")[0])
    # a fixed training seed: a second request for the candidate is the remembered result, not a new training
    assert obj(SMALL, 99) == out and obj.evaluations == 1


def test_ne_gain_and_incumbents(tmp_path):
    assert automl.ne_gain_pct(0.80, 0.7992) == pytest.approx(0.1)
    assert automl.ne_gain_pct(0.80, 0.81) == pytest.approx(-1.25)
    from companion.nas.trials import run_search
    space = automl.dhen_space()
    f = lambda c, s: {"ne": 1.0 - 0.1 * c["layers"] + c["lr"]}
    run_search(space, RandomSearch(space, 0), f, metric="ne", direction="min", max_trials=12, progress=False,
               store=tmp_path / "random-seed0.jsonl")
    inc = automl.best_candidates(tmp_path)[("random", 0)]
    assert inc["value"] == pytest.approx(f(inc["cand"], 0)["ne"])
