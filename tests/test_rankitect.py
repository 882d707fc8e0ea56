"""Rankitect's space, cost model and three search families (companion.nas.rankitect)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from companion.cost.flops import count_flops
from companion.data.synthetic import make_synthetic_ctr
from companion.models.zoo import build_model
from companion.nas import rankitect as rk
from companion.nas import rankitect_ops as ops
from companion.nas.registry import REGISTRY, names
from companion.nas.relax import ArchParams, discretize, gumbel_softmax
from companion.nas.searchers import FactorizedPolicy


@pytest.fixture(scope="module")
def splits():
    torch.set_num_threads(1)
    return make_synthetic_ctr(n_samples=1200, n_sparse=5, vocab_size=16, n_pairs=2, n_triples=0, seed=0)


@pytest.fixture(scope="module")
def space(splits):
    return rk.RankitectSpace.for_schema(splits.schema, layers=2, widths=(8, 16), tokens=(2, 4), emb_dim=8, k=3)


def tiny_cfg(**kw):
    base = dict(budget_steps=12, batch_size=64, eval_rows=200, trial_steps=4, final_draws=64)
    base.update(kw)
    return rk.SearchConfig(**base)


# ----------------------------------------------------------------------------- operators and FLOPs
CTX = dict(d_in=11, widths=(4, 7), t_in=6, D=9, T=5, E=8, k=3)


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if n.startswith("rk_")))
def test_every_operator_runs_with_the_flops_its_spec_declares(name):
    spec = REGISTRY[name]
    mod = spec.build(CTX)
    B = 3
    xd = [torch.randn(B, w) for w in CTX["widths"]]
    xs = torch.randn(B, CTX["t_in"], CTX["E"])
    if spec.kind == "rk_dense":
        args, shape = (xd, xs), (B, CTX["D"])
    elif spec.kind == "rk_sparse":
        args, shape = (xs,), (B, CTX["T"], CTX["E"])
    elif name == "rk_d2s":
        args, shape = (torch.randn(B, CTX["D"]),), (B, 1, CTX["E"])
    else:
        args, shape = (torch.randn(B, CTX["T"], CTX["E"]),), (B, CTX["D"])
    out = mod(*args)
    assert tuple(out.shape) == shape and torch.isfinite(out).all()
    assert count_flops(mod, *args) == 2 * B * spec.flops(CTX), name


def test_all_blocks_are_registered_with_rankitect_kinds():
    assert set(names("rk_dense")) == {f"rk_{o}" for o in ops.DENSE_OPS}
    assert set(names("rk_sparse")) == {f"rk_{o}" for o in ops.SPARSE_OPS}
    assert set(names("rk_fusion")) == {"rk_d2s", "rk_s2d"}


def test_candidate_flops_equal_the_counted_model_and_the_onehot_expectation(splits, space):
    rng = np.random.default_rng(1)
    b = rk.dummy_batch(splits, 4)
    seen = set()
    for _ in range(25):
        c = space.sample_uniform(rng)
        model = rk.RankNet(splits.schema, space, c)
        assert model(b).shape == (4,)
        measured = count_flops(model, b) / 4
        assert measured == space.flops(c), space.describe(c)
        assert float(rk.expected_flops(space, space.onehot(c))) == pytest.approx(space.flops(c), rel=1e-6)
        seen.add(space.flops(c))
    assert len(seen) > 10  # the space really varies in cost


def test_unread_layer_is_not_built_nor_counted(splits, space):
    c = space.sample_uniform(0)
    c.update({"L1_din0": 1, "L1_din1": 0, "L1_sin0": 1, "L1_sin1": 0})  # the last layer reads only the raw inputs
    lay = space.layout(c)
    assert not lay[0]["active"] and lay[1]["active"]
    model = rk.RankNet(splits.schema, space, c)
    assert list(model.dense) == ["1"]
    c2 = dict(c, L0_dense_op="gating" if c["L0_dense_op"] != "gating" else "fc", L0_width=16 if c["L0_width"] == 8 else 8)
    assert space.flops(c2) == space.flops(c) and space.key(c2) == space.key(c)


def test_supernet_runs_a_path_and_a_relaxed_mixture(splits, space):
    sn = rk.RankSuperNet(splits.schema, space)
    b = rk.dummy_batch(splits, 5)
    assert sn(b, space.onehot(space.sample_uniform(3))).shape == (5,)
    ap = ArchParams({n: len(d.choices) for n, d in zip(space.names, space.decisions)})
    out = sn(b, {n: ap.weights(n, 1.0, "gumbel", torch.Generator().manual_seed(0)) for n in space.names})
    out.sum().backward()
    assert all(ap.alpha[n].grad is not None for n in space.names)


# ----------------------------------------------------------------------------- the FLOPs constraint
def test_constraint_refuses_an_over_limit_candidate_before_any_training(splits, space, monkeypatch):
    widest = {n: d.choices[-1] for n, d in zip(space.names, space.decisions)}
    limit = 0.5 * space.flops(widest)
    con = rk.flops_constraint(space, limit)
    assert not con.ok(widest)
    built = []
    real = rk.RankNet

    class Spy(real):
        def __init__(self, schema, sp, cand):
            built.append(sp.flops(cand))
            super().__init__(schema, sp, cand)

    monkeypatch.setattr(rk, "RankNet", Spy)
    res = rk.sampling_search(space, splits, con, tiny_cfg(budget_steps=40), seed=0)
    assert len(built) == 10 and max(built) <= limit
    assert space.flops(res.cand) <= limit


# ----------------------------------------------------------------------------- DNAS pieces
def test_cost_gradient_lowers_the_expensive_operator_when_accuracy_terms_are_equal(splits, space):
    torch.manual_seed(0)
    sn = rk.RankSuperNet(splits.schema, space)
    torch.nn.init.zeros_(sn.head.weight)
    torch.nn.init.zeros_(sn.head.bias)  # logits are 0 whatever the architecture: the BCE term is flat in alpha
    ap = ArchParams({n: len(d.choices) for n, d in zip(space.names, space.decisions)})
    b = rk.dummy_batch(splits, 16)
    w = {n: ap.weights(n, 1.0, "gumbel", torch.Generator().manual_seed(0)) for n in space.names}
    ce = F.binary_cross_entropy_with_logits(sn(b, w), b["label"])
    ce.backward()
    assert all(float(ap.alpha[n].grad.abs().max()) == 0.0 for n in space.names)
    ap.zero_grad()
    p0 = {n: ap.weights(n, 1.0, "softmax") for n in space.names}
    (rk.expected_flops(space, p0) / 1e5).backward()
    g = ap.alpha["L1_dense_op"].grad
    # by hand, uniform choices: L1 reads half of the raw width 4 and half of L0's mean width 12; tokens: half of
    # the 5 raw tokens and half of L0's mean 3 tokens plus its fusion token with probability 1/2
    ctx = dict(d_in=2 + 6, widths=(2, 6), t_in=2.5 + 0.5 * 3.5, D=12, T=3, E=8, k=3)
    c = torch.tensor([float(ops.macs(o, ctx)) for o in space.dense_ops])
    p = 1.0 / len(c)
    assert torch.allclose(g, 2 * p * (c - c.mean()) / 1e5, rtol=1e-5)  # d E[cost] / d alpha_m = p_m (c_m - mean)
    assert space.dense_ops[int(g.argmax())] == "dot" and space.dense_ops[int(g.argmin())] == "sum"
    opt = torch.optim.SGD(ap.parameters(), lr=1.0)
    before = ap.probs()["L1_dense_op"]
    opt.step()
    after = ap.probs()["L1_dense_op"]
    i = space.dense_ops.index("dot")
    assert after[i] < before[i] and after[space.dense_ops.index("sum")] > before[space.dense_ops.index("sum")]
    # wider widths cost more: the width logits move toward the narrow one
    assert ap.probs()["L1_width"][0] > 0.5


def test_gumbel_sampling_on_hand_made_alphas():
    p = torch.tensor([0.7, 0.2, 0.1])
    logits = p.log()
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a, b = gumbel_softmax(logits.expand(4000, 3), 1.0, hard=True, generator=g1), gumbel_softmax(logits.expand(4000, 3), 1.0, hard=True, generator=g2)
    assert torch.equal(a, b)
    freq = a.mean(0)
    assert torch.allclose(freq, p, atol=0.03)  # the Gumbel-max trick samples the softmax
    cold = gumbel_softmax(torch.tensor([3.0, 0.0, 0.0]).expand(500, 3), 0.05, generator=torch.Generator().manual_seed(1))
    assert (cold.max(1).values > 0.99).float().mean() > 0.95  # a low temperature gives nearly one-hot samples


def test_discretisation_on_hand_made_probs(space):
    probs = {"a": torch.tensor([0.5, 0.3, 0.2]), "b": torch.tensor([0.1, 0.1, 0.8])}
    assert discretize(probs, "top1") == {"a": [0], "b": [2]}
    assert discretize(probs, "mass", mass=0.75) == {"a": [0, 1], "b": [2]}
    # the space's own rule: top-1 per decision decodes to the candidate whose choices were made most likely
    target = space.sample_uniform(7)
    code = space.encode(target)
    hand = {n: torch.full((len(d.choices),), 0.1).index_fill_(0, torch.tensor(int(v)), 0.9)
            for n, d, v in zip(space.names, space.decisions, code)}
    top = discretize(hand, "top1")
    assert space.decode([top[n][0] for n in space.names]) == target
    pol = rk.policy_from_probs(space, hand)
    assert np.array_equal(pol.mode(), code)


def test_most_likely_feasible_falls_back_below_the_limit(space):
    widest = {n: d.choices[-1] for n, d in zip(space.names, space.decisions)}
    hand = {n: torch.full((len(d.choices),), 0.2 / max(len(d.choices) - 1, 1)).index_fill_(0, torch.tensor(len(d.choices) - 1), 0.8)
            for n, d in zip(space.names, space.decisions)}
    con = rk.flops_constraint(space, 0.6 * space.flops(widest))
    cand, mode_ok = rk.most_likely_feasible(space, rk.policy_from_probs(space, hand), con, np.random.default_rng(0), 256)
    assert not mode_ok and con.ok(cand)


# ----------------------------------------------------------------------------- sampling-based replay
def test_replay_importance_weights_are_clipped(space):
    s = rk.ReplayReinforce(space, seed=0, replay=3, clip=2.0)
    for _ in range(6):
        p = s.ask()[0]
        p.info["logp"] = -50.0  # the behaviour policy "was" far less likely than the current one: ratio >> clip
        s.tell(p, float(np.random.default_rng(len(s.history)).normal()))
    assert s.weights and max(s.weights) == 2.0 and all(w == 2.0 for w in s.weights)


def test_replay_changes_the_policy_relative_to_plain_reinforce(space):
    def run(replay):
        s = rk.ReplayReinforce(space, seed=0, replay=replay)
        for t in range(8):
            p = s.ask()[0]
            s.tell(p, -space.mflops(p.cand))
        return np.concatenate(s.policy.logits)
    assert not np.allclose(run(0), run(4))


# ----------------------------------------------------------------------------- one-shot
def test_oneshot_reward_is_baseline_minus_subnet_ne_and_swap_happens(splits, space):
    con = rk.flops_constraint(space, 1e9)
    mk = lambda: build_model("DOT", splits.schema, 8, hidden=(8,))  # noqa: E731
    res = rk.oneshot_search(space, splits, con, tiny_cfg(budget_steps=16), mk, seed=0, swap_at=0.5, make_stronger=mk)
    assert res.steps == 16 and len(res.history) == 8 and res.info["swap_at"] == 4
    for h in res.history:
        assert h["reward"] == pytest.approx(h["ne_baseline"] - h["ne_subnet"], abs=1e-6)


# ----------------------------------------------------------------------------- determinism
def test_tiny_searches_are_deterministic_under_a_seed(splits, space):
    widest = {n: d.choices[-1] for n, d in zip(space.names, space.decisions)}
    con = rk.flops_constraint(space, 0.7 * space.flops(widest))
    mk = lambda: build_model("DOT", splits.schema, 8, hidden=(8,))  # noqa: E731
    for run in (lambda s: rk.sampling_search(space, splits, con, tiny_cfg(), s),
                lambda s: rk.oneshot_search(space, splits, con, tiny_cfg(), mk, s),
                lambda s: rk.dnas_search(space, splits, con, tiny_cfg(), s)):
        a, b, c = run(0), run(0), run(1)
        assert a.cand == b.cand and a.history == b.history and a.info == b.info
        assert a.history != c.history  # the seed matters


# ----------------------------------------------------------------------------- the DNAS lambda pick
def test_pick_lambda_takes_the_largest_lambda_within_the_margin_of_the_best_validation_ne():
    import pandas as pd

    # mean validation NE per lambda: 0 -> 0.900, 0.01 -> 0.903, 0.1 -> 0.920 (two seeds each)
    frame = pd.DataFrame({"lam": [0.0, 0.0, 0.01, 0.01, 0.1, 0.1],
                          "seed": [0, 1, 0, 1, 0, 1],
                          "valid_ne": [0.899, 0.901, 0.902, 0.904, 0.930, 0.910],
                          "ne": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]})  # test NE must not matter
    assert rk.pick_lambda(frame, margin=0.005) == 0.01
    assert rk.pick_lambda(frame, margin=0.001) == 0.0  # only the best lies within 0.001
    assert rk.pick_lambda(frame, margin=0.05) == 0.1
    # the rule reads validation NE only: changing test NE leaves the pick alone
    assert rk.pick_lambda(frame.assign(ne=[9, 9, 0, 0, 0, 0]), margin=0.005) == 0.01
    # the best need not be lambda=0: a cheaper lambda that validates better is the reference
    flipped = frame.assign(valid_ne=[0.930, 0.910, 0.902, 0.904, 0.899, 0.901])
    assert rk.pick_lambda(flipped, margin=0.001) == 0.1
    # an external reference (DistDNAS's form): the largest lambda within 0.005 of 0.90 is 0.01; none within
    # 0.001 of 0.80, so the best lambda is returned
    assert rk.pick_lambda(frame, margin=0.005, reference=0.90) == 0.01
    assert rk.pick_lambda(frame, margin=0.001, reference=0.80) == 0.0
    # higher-is-better metrics (AUC) within the margin below the best
    auc = pd.DataFrame({"lam": [0.0, 0.03, 0.1], "valid_auc": [0.80, 0.798, 0.79]})
    assert rk.pick_lambda(auc, margin=0.003, metric="valid_auc", higher_is_better=True) == 0.03
    with pytest.raises(ValueError):
        rk.pick_lambda(frame.assign(valid_ne=float("nan")), margin=0.005)
