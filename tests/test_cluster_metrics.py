"""Clustering metrics against brute-force counting and scikit-learn."""
import itertools

import numpy as np
import pytest

from companion.cluster import metrics as M


def _brute_pairwise(gt, pred):
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(gt)), 2):
        same_t, same_p = gt[i] == gt[j], pred[i] == pred[j]
        tp += same_t and same_p
        fp += same_p and not same_t
        fn += same_t and not same_p
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _brute_bcubed(gt, pred):
    n = len(gt)
    ps, rs = [], []
    for i in range(n):
        same_p = [j for j in range(n) if pred[j] == pred[i]]
        same_t = [j for j in range(n) if gt[j] == gt[i]]
        ps.append(np.mean([gt[j] == gt[i] for j in same_p]))
        rs.append(np.mean([pred[j] == pred[i] for j in same_t]))
    p, r = np.mean(ps), np.mean(rs)
    return p, r, 2 * p * r / (p + r)


@pytest.mark.parametrize("seed", range(6))
def test_pairwise_and_bcubed_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    gt = rng.integers(0, 5, n)
    pred = np.where(rng.random(n) < 0.6, gt * 7 + 3, rng.integers(0, 8, n))  # labels need not be aligned or dense
    np.testing.assert_allclose(M.pairwise_prf(gt, pred), _brute_pairwise(gt, pred), rtol=1e-12)
    np.testing.assert_allclose(M.bcubed_prf(gt, pred), _brute_bcubed(gt, pred), rtol=1e-12)


def test_hand_case_exact_values():
    gt = [0, 0, 0, 1, 1]
    pred = [0, 0, 1, 1, 1]
    # predicted pairs: (0,1), (2,3), (2,4), (3,4) -> true ones: (0,1), (3,4)
    p, r, f = M.pairwise_prf(gt, pred)
    assert (p, r) == (0.5, 0.5) and f == 0.5
    bp, br, _ = M.bcubed_prf(gt, pred)
    assert bp == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5)
    assert br == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)


def test_perfect_and_all_singletons():
    gt = [3, 3, 1, 1, 1, 2]
    assert M.pairwise_prf(gt, [9, 9, 4, 4, 4, 0]) == (1.0, 1.0, 1.0)
    p, r, _ = M.pairwise_prf(gt, list(range(6)))
    assert p == 1.0 and r == 0.0
    bp, br, _ = M.bcubed_prf(gt, list(range(6)))
    assert bp == 1.0 and br == pytest.approx((1 / 2 + 1 / 2 + 1 / 3 * 3 + 1) / 6)


def test_nmi_is_sklearn():
    from sklearn.metrics import normalized_mutual_info_score

    rng = np.random.default_rng(0)
    gt, pred = rng.integers(0, 4, 50), rng.integers(0, 6, 50)
    assert M.nmi(gt, pred) == pytest.approx(normalized_mutual_info_score(gt, pred))
    assert M.nmi(gt, np.asarray(gt) + 10) == pytest.approx(1.0)


def _brute_coverage(gt, pred, start, end, step=0.01):
    """Discretise time and count, trying every one-to-one matching of characters to candidate clusters."""
    grid = np.arange(0, max(end) + step, step) + step / 2
    gt, pred = np.asarray(gt), np.asarray(pred)

    def mask(sel):
        m = np.zeros(grid.size, bool)
        for s, e in zip(np.asarray(start)[sel], np.asarray(end)[sel]):
            m |= (grid >= s) & (grid < e)
        return m

    chars, clus = list(np.unique(gt)), list(np.unique(pred))
    best = None
    for perm in itertools.permutations(clus + [None] * len(chars), len(chars)):
        cov, iou, shared_total = [], [], 0.0
        for c, k in zip(chars, perm):
            mc = mask(gt == c)
            if k is None or not (pred[gt == c] == k).any():
                cov.append(0.0); iou.append(0.0)
                continue
            mk = mask(pred == k)
            shared_total += (mc & mk).sum()
            cov.append((mc & mk).sum() / mc.sum()); iou.append((mc & mk).sum() / (mc | mk).sum())
        if best is None or shared_total > best[0]:
            best = (shared_total, np.mean(cov), np.mean(iou))
    return best[1], best[2]


@pytest.mark.parametrize("seed", range(4))
def test_temporal_coverage_matches_discretised_counting(seed):
    rng = np.random.default_rng(seed)
    n = 9
    gt = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.7, gt, rng.integers(0, 3, n))
    start = np.round(rng.uniform(0, 8, n), 1)
    end = start + np.round(rng.uniform(0.2, 2.0, n), 1)
    t = M.temporal_coverage(gt, pred, start, end)
    cov, iou = _brute_coverage(gt, pred, start, end)
    assert t["coverage"] == pytest.approx(cov, abs=0.02)
    assert t["tiou"] == pytest.approx(iou, abs=0.02)


def test_temporal_coverage_hand_case():
    # character 0 on screen [0,2) and [4,6); the cluster holding its first track also holds an extra [6,8) of char 1
    gt, pred = [0, 0, 1], [5, 6, 5]
    t = M.temporal_coverage(gt, pred, [0, 4, 6], [2, 6, 8])
    # Hungarian: char 0 -> cluster 5 (2 s shared) and char 1 -> nothing left that holds its track but 5 ... so
    # matching maximises total shared time: (0->5: 2 s, 1->none) vs (0->6: 2 s, 1->5: 2 s) -> the second wins
    assert t["per_character"][0]["coverage"] == pytest.approx(0.5)
    assert t["per_character"][1]["coverage"] == pytest.approx(1.0)
    assert t["per_character"][1]["tiou"] == pytest.approx(2 / 4)


def test_length_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in length"):
        M.pairwise_prf([0, 1], [0])
