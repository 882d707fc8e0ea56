import numpy as np
import pytest
from scipy.stats import kendalltau

from companion.nas import make_space
from companion.nas.evolution import nasrec_mutation_count, random_search, regularized_evolution
from companion.nas.fgps import (cut_tail, dedupe, fgps_select, hamming_matrix, mean_pairwise_hamming, quality_topk,
                                random_subset, set_entropy)
from companion.nas.predictor import PredictorConfig, fit_predictor


# ----------------------------------------------------------------------------- FGPS
def test_fgps_picks_the_farthest_paths_of_a_hand_made_set():
    codes = np.array([
        [0, 0, 0, 0, 0],  # 0: the starting set
        [1, 1, 1, 1, 1],  # 1: distance 5
        [0, 0, 0, 0, 1],  # 2: distance 1
        [1, 1, 1, 1, 0],  # 3: distance 4
        [0, 0, 1, 1, 0],  # 4: distance 2
        [2, 2, 2, 0, 0],  # 5: distance 3
    ])
    sel = fgps_select(codes, n_select=3, batch=5, k=2, init_idx=[0])
    assert sel.tolist() == [0, 1, 3]
    sel = fgps_select(codes, n_select=4, batch=5, k=3, init_idx=[0])
    assert sel.tolist() == [0, 1, 3, 5]


def test_fgps_uses_the_sum_of_distances_to_the_whole_selected_set():
    # start from two paths; candidate 2 is far from one and near the other, candidate 3 is moderately far from both
    codes = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0]])
    # to {0}: c2=4, c3=2 ; to {1}: c2=2, c3=2 ; summed: c2=6, c3=4 ; max-min would tie (2, 2)
    assert fgps_select(codes, n_select=3, batch=2, k=1, init_idx=[0, 1]).tolist() == [0, 1, 2]
    codes = np.array([[0, 0, 0, 0], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 1, 1]])
    # to {0,3}: c1 = 2 + 2 = 4, c2 = 2 + 2 = 4; ties keep the draw order (stable)
    assert len(fgps_select(codes, n_select=3, batch=2, k=1, init_idx=[0, 3])) == 3


def test_fgps_set_is_more_diverse_than_random_and_quality_only():
    rng = np.random.default_rng(0)
    # a pool dominated by one cluster (what a quality filter produces) with a few diverse paths
    centre = rng.integers(0, 4, size=40)
    pool = np.repeat(centre[None], 600, 0)
    flip = rng.random(pool.shape) < 0.1
    pool[flip] = rng.integers(0, 4, size=flip.sum())
    pool[:60] = rng.integers(0, 4, size=(60, 40))
    quality = -(pool == centre).sum(1) + rng.random(600)  # lower = "better": closest to the cluster centre
    n = 60
    e_fgps = set_entropy(pool[fgps_select(pool, n, batch=30, k=5, seed=1)])
    e_rand = set_entropy(pool[random_subset(len(pool), n, seed=1)])
    e_top = set_entropy(pool[quality_topk(quality, n)])
    assert e_fgps > e_rand > e_top


def test_fgps_stops_when_the_pool_is_used_up_and_checks_inputs():
    codes = np.eye(10, dtype=int)
    sel = fgps_select(codes, n_select=None, batch=3, k=1, init=2, seed=0)
    assert len(sel) == 2 + 3 and len(set(sel.tolist())) == len(sel)  # 8 draws left -> 3 rounds (3, 3, 2)
    with pytest.raises(ValueError, match="k <= batch"):
        fgps_select(codes, 5, batch=2, k=3)
    with pytest.raises(ValueError, match="empty"):
        fgps_select(np.zeros((0, 3), int), 5)


def test_entropy_hamming_dedupe_tail():
    assert set_entropy(np.zeros((5, 7), int)) == 0
    assert set_entropy(np.array([[0, 0, 0], [1, 1, 1]])) == pytest.approx(3 * np.log(2))
    a = np.array([[0, 1, 2], [0, 1, 0], [2, 2, 2]])
    assert hamming_matrix(a).tolist() == [[0, 1, 2], [1, 0, 3], [2, 3, 0]]
    assert mean_pairwise_hamming(a) == pytest.approx(2.0)
    assert dedupe(np.array([[1, 2], [3, 4], [1, 2]]), scores=np.array([0.5, 0.1, 0.2])).tolist() == [1, 2]
    kept = cut_tail(np.arange(40, dtype=float), 0.075)
    assert len(kept) == 37 and kept.max() == 36


def test_set_statistics_on_real_encodings():
    space = make_space("nasrec-full", "tiny")
    rng = np.random.default_rng(0)
    codes = space.encode_many([space.sample(rng) for _ in range(300)])
    sel = fgps_select(codes, 60, batch=20, k=4, seed=0)
    assert len(set(sel.tolist())) == 60
    assert mean_pairwise_hamming(codes[sel]) > mean_pairwise_hamming(codes[random_subset(300, 60, seed=0)])


# ----------------------------------------------------------------------------- evolution
def _toy(target):
    calls = []

    def sample(rng):
        return tuple(int(v) for v in rng.integers(0, 10, size=len(target)))

    def mutate(c, rng):
        c = list(c)
        c[int(rng.integers(len(c)))] = int(rng.integers(0, 10))
        return tuple(c)

    def evaluate(c):
        calls.append(c)
        return float(sum(abs(a - b) for a, b in zip(c, target)))

    return sample, mutate, evaluate, calls


def test_regularized_evolution_beats_random_search_on_the_same_budget():
    target = (3, 1, 4, 1, 5, 9, 2, 6)
    wins = 0
    for seed in range(5):
        s, m, e, calls = _toy(target)
        evo = regularized_evolution(s, m, e, population_size=20, sample_size=5, n_children=4, generations=45, seed=seed, progress=False)
        budget = len(calls)
        assert budget == len(set(calls))  # no candidate is evaluated twice
        rs = random_search(s, e, budget, seed=seed, progress=False)
        wins += evo.best[1] < rs.best[1]
    assert wins >= 4


def test_evolution_bookkeeping():
    s, m, e, calls = _toy((1, 2, 3, 4))
    res = regularized_evolution(s, m, e, population_size=10, sample_size=3, n_children=6, keep_children=2,
                                generations=7, seed=0, progress=False)
    assert len(res.population) == 10
    assert len(res.entrants) == 10 + 7 * 2
    assert len(res.history) == 10 + 7 * 6
    assert res.best_so_far == sorted(res.best_so_far, reverse=True)  # never gets worse
    assert res.top(3)[0][1] == res.best[1]
    again = regularized_evolution(s, m, e, population_size=10, sample_size=3, n_children=6, keep_children=2,
                                  generations=7, seed=0, progress=False)
    assert [c for c, _ in again.history] == [c for c, _ in res.history]  # same seed, same run
    batch = regularized_evolution(s, m, evaluate_batch=lambda cs: [e(c) for c in cs], population_size=10,
                                  sample_size=3, n_children=6, generations=3, seed=0, progress=False)
    assert len(batch.history) == 28
    assert [nasrec_mutation_count(g, 240) for g in (0, 239)] == [6, 1]
    with pytest.raises(ValueError, match="exactly one"):
        regularized_evolution(s, m, progress=False)


# ----------------------------------------------------------------------------- predictor
def test_predictor_learns_a_planted_quality_function():
    space = make_space("nasrec-full", "tiny")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(800)]
    codes = space.encode_many(archs)
    w = rng.normal(size=codes.shape[1])
    mu, sd = (codes @ w).mean(), (codes @ w).std()  # planted signal of sd 0.01, noise a tenth of it
    loss = 0.45 + 0.01 * (codes @ w - mu) / sd + rng.normal(scale=0.001, size=len(codes))
    model, report = fit_predictor(codes, loss, space.cardinalities(), PredictorConfig(epochs=30, hidden=64, layers=1))
    assert report["holdout_kendall_tau"] > 0.5
    test = space.encode_many([space.sample(rng) for _ in range(100)])
    truth = 0.45 + 0.01 * (test @ w - mu) / sd
    assert kendalltau(model.predict(test), truth).statistic > 0.5
    with pytest.raises(ValueError, match="at least 4"):
        fit_predictor(codes[:2], loss[:2], space.cardinalities())
