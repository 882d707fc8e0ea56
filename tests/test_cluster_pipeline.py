"""The GCN link model on torch-geometric, the association rules, the unified representation, and the whole
pipeline recovering planted identities on easy data."""
import numpy as np
import pandas as pd
import pytest
import torch

from companion.cluster import associate as A
from companion.cluster import experiment as X
from companion.cluster import gcn as G
from companion.cluster import graph, methods
from companion.cluster import represent as R
from companion.cluster.metrics import bcubed_prf
from companion.data import video_tracks as vt


def _blobs(seed, n_per=(30, 30, 5, 3), d=8, spread=0.35):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(n_per), d))
    x = np.concatenate([c + spread * rng.standard_normal((n, d)) for c, n in zip(centres, n_per)])
    y = np.repeat(np.arange(len(n_per)), n_per)
    return x.astype(np.float32), y


def test_gcn_step_runs_on_torch_geometric_and_learns_links():
    from torch_geometric.nn import SAGEConv

    x, y = _blobs(0)
    nb = graph.neighbourhoods(*graph.knn(x, 10), "fixed")
    model = G.train_gcn([(graph.l2_normalise(x), nb, y)], G.GCNConfig(steps=80, seed=0))
    assert any(isinstance(m, SAGEConv) for m in model.modules())
    xt, yt = _blobs(1)
    nbt = graph.neighbourhoods(*graph.knn(xt, 10), "fixed")
    conf, ei, prob = G.predict(model, graph.l2_normalise(xt), nbt, score="link")
    same = yt[ei[0]] == yt[ei[1]]
    assert prob[same].mean() > prob[~same].mean() + 0.3
    assert prob.shape == (ei.shape[1],)
    clus = methods.GraphGCN("fixed", 10, G.GCNConfig(steps=80)).fit([(x, y)])
    assert bcubed_prf(yt, clus.predict(xt))[2] > 0.85


def test_confidence_target_by_hand():
    ei = np.array([[0, 0, 1], [1, 2, 0]])
    w = np.array([0.9, 0.5, 0.9], np.float32)
    t = G.confidence_target(ei, w, np.array([0, 0, 1]), 3)
    assert t.tolist() == pytest.approx([(0.9 - 0.5) / 2, 0.9, 0.0])


def test_peak_rule_links_each_node_to_a_more_confident_neighbour_once():
    conf = np.array([0.9, 0.5, 0.4, 0.1])
    ei = np.array([[1, 1, 2, 2, 3, 0], [0, 2, 1, 0, 2, 1]])
    prob = np.array([0.8, 0.9, 0.3, 0.7, 0.9, 0.95])
    # 1 -> 0 (2 is less confident); 2 -> 0 (best above threshold among 1 (0.3) and 0 (0.7)); 3 -> 2; 0 is a peak
    assert G.link_clusters(conf, ei, prob, 0.5).tolist() == [0, 0, 0, 0]
    assert G.link_clusters(conf, ei, prob, 0.75).tolist() == [0, 0, 1, 1]


def _tracks(rows):
    cols = ["modality", "start", "end", "x0", "y0", "x1", "y1", "lip"]
    return pd.DataFrame(rows, columns=cols)


def test_spatial_links_need_an_unambiguous_box():
    t = _tracks([
        ("face", 0, 4, 0.20, 0.30, 0.25, 0.40, 0.8),   # inside body 2 only
        ("face", 0, 4, 0.48, 0.30, 0.52, 0.40, 0.1),   # inside bodies 3 and 4 (they overlap): ambiguous
        ("body", 0, 5, 0.10, 0.25, 0.35, 1.00, np.nan),
        ("body", 0, 5, 0.40, 0.25, 0.60, 1.00, np.nan),
        ("body", 0, 5, 0.45, 0.25, 0.65, 1.00, np.nan),
        ("face", 9, 12, 0.20, 0.30, 0.25, 0.40, 0.8),  # inside body 2's box but at another time
    ])
    assert A.spatial_links(t).tolist() == [[0, 2]]


def test_temporal_links_need_exactly_one_moving_mouth():
    t = _tracks([
        ("face", 0, 4, .2, .3, .25, .4, 0.8),
        ("face", 0, 4, .5, .3, .55, .4, 0.1),
        ("voice", 1, 3, np.nan, np.nan, np.nan, np.nan, np.nan),  # only face 0 speaks -> linked
        ("face", 5, 9, .2, .3, .25, .4, 0.9),
        ("face", 5, 9, .5, .3, .55, .4, 0.9),
        ("voice", 6, 8, np.nan, np.nan, np.nan, np.nan, np.nan),  # two speaking faces -> no link
    ])
    assert A.temporal_links(t).tolist() == [[2, 0]]


def _easy_world():
    return vt.make_world(3, noise={"face": 0.05, "body": 0.05, "voice": 0.1},
                         nuisance={"face": 0.1, "body": 0.1, "voice": 0.1})


def test_unified_network_shares_one_space_and_separate_networks_do_not():
    w = _easy_world()
    train = [vt.make_episode(w, i, n_shots=40) for i in range(2)]
    test = vt.make_episode(w, 50, n_shots=40)
    cfg = R.RepConfig(steps=150, seed=0)

    def cross_modal_gap(net):
        e, lab = R.embed(net, test), test.labels
        f, b = test.rows("face"), test.rows("body")
        s = e[f] @ e[b].T
        same = lab[f][:, None] == lab[b][None, :]
        return s[same].mean() - s[~same].mean()

    torch.manual_seed(0)
    assert cross_modal_gap(R.train_representation(train, cfg)) > 0.4
    assert abs(cross_modal_gap(R.train_representation(train, R.RepConfig(steps=150, seed=0, shared=False)))) < 0.2


def test_pipeline_recovers_planted_identities_on_easy_data():
    cfg = X.ExperimentConfig(n_train=2, n_val=1, n_test=1, episode={"n_major": 5, "n_minor": 3, "n_shots": 40},
                             rep=R.RepConfig(steps=150), gcn=G.GCNConfig(steps=60))
    world = _easy_world()
    train = [vt.make_episode(world, i, n_major=5, n_minor=3, n_shots=40) for i in range(2)]
    val = [vt.make_episode(world, 10, n_major=5, n_minor=3, n_shots=40)]
    test = vt.make_episode(world, 20, n_major=5, n_minor=3, n_shots=40)
    net = R.train_representation(train, cfg.rep)
    clus = methods.GraphGCN("reciprocal", 20, cfg.gcn).fit(X._sets(val, [R.embed(net, v) for v in val]))
    e = R.embed(net, test)
    per = X.per_modality(test, e, clus)
    fused = A.progressive(test, e, per)["labels"]
    s_fused, s_per = X.score(test, fused), X.score(test, per)
    assert s_fused["bcubed_f"] > 0.85 and s_fused["coverage"] > 0.9
    assert s_fused["pairwise_r"] > s_per["pairwise_r"] + 0.3  # association joins each character's modalities
