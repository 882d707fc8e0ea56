"""The search core: protocol, ask/tell searchers, predictors, constraints, the trial store and the executors."""
import json
import warnings

import numpy as np
import pytest
from scipy.stats import kendalltau

from companion.nas import evolution
from companion.nas.constraints import Constraint, best_feasible
from companion.nas.executors import InProcess, RayExecutor
from companion.nas.protocol import DecisionSpace, NASRecDecisions, TableSpace
from companion.nas.ranking import EnsembleConfig, GBTEnsemble, MLPEnsemble, margin_ranking_loss
from companion.nas.searchers import PredictorSearch, RandomSearch, RegularizedEvolution, Reinforce, TPESearch
from companion.nas.space import make_space
from companion.nas.trials import TrialStore, run_search

TARGET = np.array([3, 1, 2, 0, 3, 1])
SPACE = DecisionSpace({f"x{i}": list(range(4)) for i in range(len(TARGET))}, name="toy")


def matches(cand, seed=0):
    """Reward with a known optimum (TARGET, reward 6); no noise so every run is exact."""
    return {"score": float((SPACE.encode(cand) == TARGET).sum())}


def test_decision_space_round_trip_and_refusals():
    space = DecisionSpace({"a": [1, 2], "b": ["x", "y", "z"]}, check=lambda c: "a=2 with z" if (c["a"], c["b"]) == (2, "z") else None)
    assert space.size() == 6 and list(space.cardinalities()) == [2, 3]
    c = space.decode([1, 2])
    assert c == {"a": 2, "b": "z"} and not space.valid(c) and space.reason(c) == "a=2 with z"
    with pytest.raises(ValueError, match="'b'=?.*not one of|b='w' is not one of"):
        space.encode({"a": 1, "b": "w"})
    with pytest.raises(ValueError, match="unknown decisions"):
        space.encode({"a": 1, "b": "x", "c": 0})
    rng = np.random.default_rng(0)
    assert all(space.valid(space.sample_uniform(rng)) for _ in range(50))


def test_nasrec_decisions_decode_any_code_to_a_valid_arch():
    ns = NASRecDecisions(make_space("nasrec-full"))
    rng = np.random.default_rng(1)
    for _ in range(100):
        a = ns.sample_uniform(rng)
        assert ns.decode(ns.encode(a)) == a
        code = np.array([rng.integers(c) for c in ns.cardinalities()])
        ns.space.validate(ns.decode(code))
    with pytest.raises(ValueError):
        ns.decode(np.zeros(3, dtype=int))


def test_table_space_stays_in_the_table():
    codes = np.array([[0, 0], [0, 1], [1, 1], [2, 0]])
    t = TableSpace(codes, [3, 2], name="t")
    rng = np.random.default_rng(0)
    assert {t.mutate(0, rng) for _ in range(20)} == {1, 3}  # the one-decision neighbours of [0, 0]
    assert {t.mutate(2, rng) for _ in range(20)} == {1}
    with pytest.raises(ValueError, match="not in the table"):
        t.decode([2, 1])


BIG_TARGET = np.arange(12) % 5
BIG = DecisionSpace({f"x{i}": list(range(5)) for i in range(12)}, name="toy12")


def big_matches(cand, seed=0):
    return {"score": float((BIG.encode(cand) == BIG_TARGET).sum())}


def test_reinforce_raises_the_reward_on_a_toy_space_with_a_known_optimum():
    s = Reinforce(BIG, seed=0, lr=0.3)
    r = run_search(BIG, s, big_matches, metric="score", max_trials=250, progress=False).rewards()
    assert r[:25].mean() < 4.0 and r[200:].mean() > r[:25].mean() + 4.0, (r[:25].mean(), r[200:].mean())
    assert (s.policy.mode() == BIG_TARGET).sum() >= 10
    assert s.policy.entropy() < 0.5 * 12 * np.log(5)


def test_random_search_does_not_learn():
    r = run_search(BIG, RandomSearch(BIG, 0), big_matches, metric="score", max_trials=250, progress=False).rewards()
    assert abs(r[200:].mean() - r[:25].mean()) < 1.0  # the control for the test above


def test_margin_ranking_loss_orders_a_known_function():
    rng = np.random.default_rng(0)
    card = [5] * 6
    codes = rng.integers(0, 5, size=(300, 6))
    y = codes @ np.array([3.0, -2.0, 1.0, 0.5, 0.0, 2.0])
    model = MLPEnsemble(card, EnsembleConfig(members=3, epochs=60, loss="margin"), seed=0).fit(codes[:200], y[:200])
    pred, spread = model.predict(codes[200:])
    assert kendalltau(pred, y[200:])[0] > 0.8
    assert spread.shape == (100,) and (spread > 0).all()
    import torch
    good = margin_ranking_loss(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 2.0]), margin=0.5)
    bad = margin_ranking_loss(torch.tensor([2.0, 1.0, 0.0]), torch.tensor([0.0, 1.0, 2.0]), margin=0.5)
    assert float(good) == 0.0 and float(bad) == pytest.approx((2.5 + 1.5 + 1.5) / 3)


def test_gbt_ensemble_learns_and_multi_task_heads_predict_costs():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, size=(200, 5))
    y = codes @ np.array([1.0, 2.0, -1.0, 0.0, 0.5])
    g = GBTEnsemble([4] * 5, members=3, max_iter=100, seed=0).fit(codes[:150], y[:150])
    assert kendalltau(g.predict(codes[150:])[0], y[150:])[0] > 0.8
    cost = codes.sum(1).astype(float)
    m = MLPEnsemble([4] * 5, EnsembleConfig(members=2, epochs=80, loss="mse"), seed=0).fit(codes[:150], np.c_[y[:150], cost[:150]])
    mean, _ = m.predict_tasks(codes[150:])
    assert np.abs(mean[:, 1] - cost[150:]).mean() < 1.0  # costs come back on their own scale


def test_constraints_are_checked_before_evaluation():
    evaluated = []

    def obj(c, seed):
        evaluated.append(SPACE.encode(c).sum())
        return matches(c)

    limit = Constraint("sum", lambda c: float(SPACE.encode(c).sum()), limit=6.0)
    s = RandomSearch(SPACE, 0, constraints=[limit])
    res = run_search(SPACE, s, obj, metric="score", max_trials=40, progress=False)
    assert max(evaluated) <= 6 and s.rejected > 0 and len(res.trials) == 40
    cands = [SPACE.from_json(t["candidate"]) for t in res.trials]
    best, r = best_feasible(cands, res.rewards(), [Constraint("sum", limit.measure, 3.0)])
    assert SPACE.encode(best).sum() <= 3 and r == max(rw for c, rw in zip(cands, res.rewards()) if SPACE.encode(c).sum() <= 3)


def test_failed_and_nan_trials_are_recorded_and_the_search_goes_on():
    def obj(c, seed):
        code = SPACE.encode(c)
        if code[0] == 0:
            raise RuntimeError("diverged")
        return {"score": float("nan")} if code[0] == 1 else matches(c)

    res = run_search(SPACE, RandomSearch(SPACE, 0), obj, metric="score", max_trials=30, progress=False)
    st = [t["status"] for t in res.trials]
    assert len(st) == 30 and "failed" in st and "ok" in st
    errs = [t["error"] for t in res.trials if t["status"] == "failed"]
    assert any("diverged" in e for e in errs) and any("NaN" in e for e in errs)


def _run(store, seed=0, trials=20, searcher=None, objective=matches):
    s = searcher or RegularizedEvolution(SPACE, seed, population_size=6, sample_size=3, n_children=2)
    return run_search(SPACE, s, objective, metric="score", max_trials=trials, store=store, seed=seed, progress=False)


def test_an_interrupted_search_resumes_without_losing_a_trial(tmp_path, capsys):
    full = _run(None)
    calls = []

    def flaky(c, seed):
        if len(calls) == 9:
            raise KeyboardInterrupt
        calls.append(1)
        return matches(c)

    path = tmp_path / "trials.jsonl"
    with pytest.raises(KeyboardInterrupt):
        _run(path, objective=flaky)
    assert len(TrialStore(path).trials()) == 9 and "9 finished trials" in capsys.readouterr().err
    again = []
    res = _run(path, objective=lambda c, s: (again.append(1), matches(c))[1])
    assert len(again) == 11  # only the unfinished ones ran
    assert [(t["key"], t["reward"]) for t in res.trials] == [(t["key"], t["reward"]) for t in full.trials]
    assert len(TrialStore(path).trials()) == 20


def test_the_store_refuses_another_search_and_names_a_damaged_line(tmp_path):
    path = tmp_path / "t.jsonl"
    _run(path, trials=5)
    with pytest.raises(ValueError, match="another search"):
        _run(path, seed=1, trials=5)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + ["{not json"] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match=r"t\.jsonl:4"):
        TrialStore(path).trials()
    path.write_text("\n".join(lines) + "\n" + '{"kind": "trial", "ind')  # a crash mid-write
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert len(TrialStore(path).trials()) == 5
    assert any("half-written" in str(x.message) for x in w)


def test_evolution_searcher_equals_the_batch_function():
    fit = lambda c: -matches(c)["score"]  # noqa: E731
    batch = evolution.regularized_evolution(SPACE.sample_uniform, SPACE.mutate, fit, key=SPACE.key, population_size=6,
                                            sample_size=3, n_children=2, generations=7, decaying_mutations=False,
                                            seed=3, progress=False)
    res = run_search(SPACE, RegularizedEvolution(SPACE, 3, population_size=6, sample_size=3, n_children=2), matches,
                     metric="score", max_trials=6 + 7 * 2, seed=3, progress=False)
    assert [SPACE.key(c) for c, _ in batch.history] == [t["key"] for t in res.trials]
    assert [-f for _, f in batch.history] == list(res.rewards())


def test_tpe_is_deterministic_and_finds_better_than_its_start():
    a = run_search(SPACE, TPESearch(SPACE, 5), matches, metric="score", max_trials=40, progress=False)
    b = run_search(SPACE, TPESearch(SPACE, 5), matches, metric="score", max_trials=40, progress=False)
    assert [t["key"] for t in a.trials] == [t["key"] for t in b.trials]
    assert len({t["key"] for t in a.trials}) == 40  # no trial spent twice on one candidate


def test_predictor_search_proposes_unseen_candidates_and_beats_its_warmup():
    mk = lambda card, s: MLPEnsemble(card, EnsembleConfig(members=2, epochs=30), seed=s)  # noqa: E731
    res = run_search(SPACE, PredictorSearch(SPACE, mk, 0, warmup=10, batch=5, inner_steps=300), matches,
                     metric="score", max_trials=30, progress=False)
    keys = [t["key"] for t in res.trials]
    assert len(set(keys)) == 30
    assert res.rewards()[10:].mean() > res.rewards()[:10].mean() + 0.5


def test_ray_and_in_process_give_the_same_trials(tmp_path):
    # Ray is in the dev extra: an ImportError here is a failure, not a skip
    ray_exec = RayExecutor(num_cpus=2)
    try:
        for make in (lambda: RandomSearch(SPACE, 4),
                     lambda: RegularizedEvolution(SPACE, 4, population_size=6, sample_size=3, n_children=3)):
            a = run_search(SPACE, make(), matches, metric="score", max_trials=18, seed=4, batch_size=3,
                           executor=InProcess(), progress=False)
            b = run_search(SPACE, make(), matches, metric="score", max_trials=18, seed=4, batch_size=3,
                           executor=ray_exec, store=tmp_path / f"{make().name}.jsonl", progress=False)
            assert [t["status"] for t in b.trials] == ["ok"] * 18, [t["error"] for t in b.trials if t["error"]][:1]
            assert [(t["key"], t["reward"], t["seed"]) for t in a.trials] == [(t["key"], t["reward"], t["seed"]) for t in b.trials]
    finally:
        ray_exec.close()
    recs = [json.loads(l) for l in (tmp_path / "random.jsonl").read_text().splitlines()]
    assert recs[0]["kind"] == "header" and len(recs) == 19
