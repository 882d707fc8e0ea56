"""kNN graphs and the cyclic-matching neighbourhoods, on a hand-made similarity matrix and against brute force."""
import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from companion.cluster import graph as G
from companion.cluster.gcn import union_find

# symmetric similarities of six nodes; the kNN lists (K = 3) they give, by hand:
#   0: 1 2 4 | 1: 4 0 2 | 2: 1 0 3 | 3: 4 5 2 | 4: 1 0 3 | 5: 4 3 0
PAIRS = {(0, 1): .9, (0, 2): .8, (0, 3): .1, (0, 4): .7, (0, 5): .2, (1, 2): .85, (1, 3): .2, (1, 4): .95,
         (1, 5): .1, (2, 3): .3, (2, 4): .2, (2, 5): .15, (3, 4): .6, (3, 5): .5, (4, 5): .55}
S = np.eye(6)
for (i, j), v in PAIRS.items():
    S[i, j] = S[j, i] = v


def _lists(nb):
    return [l.tolist() for l in nb.lists]


def test_knn_lists_of_the_hand_matrix():
    idx, sim = G.knn_from_similarity(S, 3)
    assert idx.tolist() == [[1, 2, 4], [4, 0, 2], [1, 0, 3], [4, 5, 2], [1, 0, 3], [4, 3, 0]]
    assert sim[5].tolist() == pytest.approx([.55, .5, .2])


def test_cyclic_matching_variants_on_the_hand_matrix():
    idx, sim = G.knn_from_similarity(S, 3)
    # node 5: its nearest (4) does not list 5 back, but 3 does -> reciprocal keeps [3]; the prefix walk stops at once
    # and falls back to the nearest; tolerant (rank_j(i) <= 1.5 rank_i(j) + 2, absent = K + 1) accepts 3 and 0
    assert _lists(G.neighbourhoods(idx, sim, "reciprocal")) == [[1, 2, 4], [4, 0, 2], [1, 0, 3], [4, 5, 2], [1, 0, 3], [3]]
    assert _lists(G.neighbourhoods(idx, sim, "prefix"))[5] == [4]
    assert _lists(G.neighbourhoods(idx, sim, "tolerant"))[5] == [3, 0]
    assert _lists(G.neighbourhoods(idx, sim, "fixed", k=2))[5] == [4, 3]
    # with K = 2 the lists are 0: 1 2 | 1: 4 0 | 2: 1 0 | 3: 4 5 | 4: 1 0 | 5: 4 3; node 2's nearest (1) lists
    # [4, 0], so reciprocal keeps only 0 and prefix falls back to 1; 3 and 4 each lose their non-reciprocal one
    rec2 = _lists(G.neighbourhoods(idx, sim, "reciprocal", k=2))
    assert rec2 == [[1, 2], [4, 0], [0], [5], [1], [3]]
    assert _lists(G.neighbourhoods(idx, sim, "prefix", k=2)) == [[1, 2], [4, 0], [1], [4], [1], [4]]
    assert G.neighbourhoods(idx, sim, "reciprocal", k=2).sizes.tolist() == [2, 2, 1, 1, 1, 1]


def test_min_similarity_floor_keeps_the_nearest():
    idx, sim = G.knn_from_similarity(S, 3)
    nb = G.neighbourhoods(idx, sim, "fixed", min_sim=0.8)
    assert _lists(nb) == [[1, 2], [4, 0, 2], [1, 0], [4], [1], [4]]


def test_expanded_adds_a_members_reciprocal_set():
    # two tight triangles {0,1,2} and {3,4,5} bridged weakly; with K = 2 node 0 keeps 1 and 2, and expansion
    # cannot add anything outside its own list, so it equals the reciprocal set here
    x = np.array([[1, 0], [0.99, 0.1], [0.98, -0.1], [0, 1], [0.1, 0.99], [-0.1, 0.98]])
    idx, sim = G.knn(x, 4)
    rec, exp = G.neighbourhoods(idx, sim, "reciprocal", k=4), G.neighbourhoods(idx, sim, "expanded", k=4)
    assert all(set(r) <= set(e) for r, e in zip(_lists(rec), _lists(exp)))


def test_exact_knn_matches_brute_force_in_chunks():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 6))
    idx, sim = G.knn(x, 7, chunk=64)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    ref = np.argsort(-s, axis=1, kind="stable")[:, :7]
    assert (idx == ref).all()
    np.testing.assert_allclose(sim, np.take_along_axis(s, ref, 1), rtol=1e-5)


def test_edges_are_symmetric_without_duplicates():
    idx, sim = G.knn_from_similarity(S, 3)
    ei, w = G.neighbourhoods(idx, sim, "reciprocal").edges()
    pairs = set(map(tuple, ei.T.tolist()))
    assert len(pairs) == ei.shape[1] and all((b, a) in pairs for a, b in pairs)
    assert (5, 3) in pairs and (3, 5) in pairs and (5, 4) not in pairs


def test_edge_quality_counts():
    idx, sim = G.knn_from_similarity(S, 3)
    nb = G.neighbourhoods(idx, sim, "fixed", k=1)  # 0->1, 1->4, 2->1, 3->4, 4->1, 5->4
    q = G.edge_quality(nb, np.array([0, 0, 0, 1, 1, 1]))
    assert q["edge_precision"] == pytest.approx(4 / 6) and q["mean_degree"] == 1.0


@pytest.mark.parametrize("seed", range(3))
def test_union_find_equals_connected_components(seed):
    rng = np.random.default_rng(seed)
    n = 60
    e = rng.integers(0, n, (2, 45))
    ours = union_find(n, e)
    _, ref = connected_components(coo_matrix((np.ones(e.shape[1]), (e[0], e[1])), shape=(n, n)), directed=False)
    # same partition: a one-to-one map between the label sets
    assert len(set(zip(ours, ref))) == len(set(ours)) == len(set(ref))
