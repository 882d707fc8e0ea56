"""Co-design glue: designs, bit mapping onto the supernet and the PIM model, and the search itself."""
import numpy as np
import pytest
import torch

from companion.data.synthetic import make_synthetic_ctr
from companion.nas import codesign as cd
from companion.nas.space import make_space
from companion.nas.supernet import SuperNet
from companion.nas.training import SubnetEval, SupernetConfig


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    data = make_synthetic_ctr(n_samples=1500, n_dense=3, n_sparse=5, seed=0)
    space = make_space("nasrec-small", "tiny")
    return data, space


def test_design_roundtrip_and_canonical(setup):
    _, space = setup
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = cd.sample_design(space, rng)
        assert cd.Design.from_dict(d.to_dict()) == d
        dead = set(range(space.num_blocks)) - set(d.arch.active_blocks())
        assert all(d.bits[i] == (8, 8) for i in dead)
        m = cd.mutate_design(space, d, rng)
        space.validate(m.arch)
    with pytest.raises(ValueError, match="design record"):
        cd.Design.from_dict({"bits": []})


def test_pim_ops_take_block_bits(setup):
    data, space = setup
    hand = cd.handcrafted_design(space, bits=8)
    bits = tuple((4, 8) if i == 1 else (8, 4) for i in range(space.num_blocks))
    d = cd.Design(hand.arch, bits)
    ops = cd.pim_ops(data.schema, space, d)
    kinds = {(o.block, o.op, o.kind) for o in ops}
    assert (1, "dot", "digital") in kinds and (1, "dot", "crossbar") in kinds  # products digital, projections on crossbars
    for o in ops:
        if o.kind != "crossbar":
            continue
        if o.block == 1:
            assert (o.w_bits, o.a_bits) == (4, 8)
        elif o.block >= 0:
            assert (o.w_bits, o.a_bits) == (8, 4)
        else:
            assert o.op == "head" and (o.w_bits, o.a_bits) == (8, 8)
    efc = [o for o in ops if o.op == "efc"][0]
    assert efc.repeats == space.emb_dim  # the token-mixing matrix runs once per embedding dimension
    lo = cd.design_cost(data.schema, space, cd.Design(hand.arch, ((4, 4),) * space.num_blocks))
    hi = cd.design_cost(data.schema, space, hand)
    assert lo.energy_pj < hi.energy_pj and lo.latency_ns < hi.latency_ns


def test_pareto_mask():
    pts = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [2, 2]])
    assert cd.pareto_mask(pts).tolist() == [True, True, False, True, True]


def test_search_runs_and_picks_by_its_objective(setup):
    data, space = setup
    sn = SuperNet(data.schema, space)
    cd.train_quant_supernet(sn, data, SupernetConfig(steps=20, batch_size=128, lr=0.01, optimizer="adam", progress=False))
    ev = SubnetEval(finetune_steps=0, eval_rows=300)
    small = dict(population=6, sample_size=3, children=2, generations=3, progress=False)
    cache = {}
    res = cd.codesign_search(sn, data, cd.CodesignConfig(**small), ev, score_cache=cache)
    t = res.table
    assert t["chosen"].sum() == 1
    assert t.loc[t["chosen"], "objective"].item() == pytest.approx(t["objective"].min())
    # the chosen design's supernet score is reproducible outside the search
    again = cd.score_design(sn, res.chosen, data, ev)["logloss"]
    assert again == pytest.approx(t.loc[t["chosen"], "logloss"].item(), abs=1e-6)
    par = cd.codesign_search(sn, data, cd.CodesignConfig(objective="pareto", **small), ev, score_cache=cache)
    pt = par.table
    assert set(cache) == set(t["key"]) | set(pt["key"])  # the second search reused the first one's scores
    for tab in (t, pt):
        assert all(cache[k]["logloss"] == ll for k, ll in zip(tab["key"], tab["logloss"]))
    front = cd.pareto_mask(pt[["logloss", "energy_nj", "latency_us"]].to_numpy())
    assert front[pt["chosen"].to_numpy()].all()
    cmp = cd.compare(data.schema, space, res.chosen, res.handcrafted)
    c, h = cd.design_cost(data.schema, space, res.chosen), cd.design_cost(data.schema, space, res.handcrafted)
    assert cmp["speedup_vs_hand"] == pytest.approx(h.latency_ns / c.latency_ns)
    assert cmp["energy_eff_vs_hand"] == pytest.approx(h.energy_pj / c.energy_pj)
    with pytest.raises(ValueError, match="objective"):
        cd.CodesignConfig(objective="weighted")


def test_spaces_and_handcrafted_design():
    for size in ("tiny", "medium", "paper"):
        space = cd.codesign_space(size)
        assert space.dense_ops == ("fc", "dot") and space.sparse_ops == ("efc",)  # NASRec-Small
        hand = cd.handcrafted_design(space)
        assert all(b == (8, 8) for b in hand.bits)
        assert hand.arch.active_blocks() == list(range(space.num_blocks))  # a chain: every block is live
    assert cd.codesign_space("paper").num_blocks == 7
    with pytest.raises(ValueError, match="space size"):
        cd.codesign_space("huge")
    with pytest.raises(ValueError, match="bit pair per block"):
        cd.Design(hand.arch, ((8, 8),))
    with pytest.raises(ValueError, match="integers in 2..16"):
        cd.Design(hand.arch, ((8, 1),) * 7)
    full = make_space("nasrec-full", "tiny", dense_ops=("fc", "sum"))
    with pytest.raises(ValueError, match="NASRec-Small"):
        cd.handcrafted_design(full)


def test_weight_bits_alone_move_the_hand_design_only_when_columns_are_not_all_converted(setup):
    """The issue's finding on the old model: with every column converted, 4-bit weights on layers that still
    need the same crossbars save nothing; converting used columns only, they halve the ADC work."""
    from companion.cost.pim import PIMConfig

    data, _ = setup
    space = cd.codesign_space("tiny")
    hand = cd.handcrafted_design(space)
    w4 = cd.Design(hand.arch, ((4, 8),) * space.num_blocks)
    used = PIMConfig()
    allc = PIMConfig(convert_unused_columns=True)
    e = lambda d, cfg: cd.design_cost(data.schema, space, d, cfg).energy_pj  # noqa: E731
    assert e(hand, used) / e(w4, used) == pytest.approx(2.0, rel=0.03)  # ADC ~98%: half the conversions
    # all columns: only the layers whose 4-bit weights free a whole column tile save
    saved_tiles = sum(o.crossbars for o in cd.design_cost(data.schema, space, hand, allc).ops) - \
        sum(o.crossbars for o in cd.design_cost(data.schema, space, w4, allc).ops)
    assert saved_tiles > 0  # widths 16-64: some layers span two tiles at 8 bits
    assert 1.0 < e(hand, allc) / e(w4, allc) < 2.0
    assert cd.design_cost(data.schema, space, hand, used).adc_share() > 0.9


def test_budget_and_feasible():
    hand_cost = {"energy_nj": 180.0, "latency_us": 30.0}
    b = cd.Budget(1.8, 1.5)
    assert b.limits(hand_cost) == pytest.approx((100.0, 20.0))
    assert cd.feasible({"energy_nj": 100.0, "latency_us": 20.0}, hand_cost, b)
    assert not cd.feasible({"energy_nj": 100.1, "latency_us": 10.0}, hand_cost, b)
    assert not cd.feasible({"energy_nj": 50.0, "latency_us": 20.1}, hand_cost, b)
    with pytest.raises(ValueError, match="ratios"):
        cd.Budget(0, 1.5)


@pytest.fixture(scope="module")
def trained(setup):
    data, space = setup
    sn = SuperNet(data.schema, space)
    cd.train_quant_supernet(sn, data, SupernetConfig(steps=20, batch_size=128, lr=0.01, optimizer="adam", progress=False))
    return sn


def test_constrained_search_picks_the_best_feasible_design(setup, trained):
    data, space = setup
    ev = SubnetEval(finetune_steps=0, eval_rows=300)
    cfg = cd.CodesignConfig(population=6, sample_size=3, children=2, generations=3, progress=False)
    b = cd.Budget(1.8, 1.5)
    cache = {}
    res = cd.constrained_search(trained, data, b, cfg, ev, score_cache=cache)
    t = res.table
    assert t["feasible"].any() and res.chosen is not None
    assert t.loc[t.chosen, "logloss"].item() == pytest.approx(t.loc[t.feasible, "logloss"].min())
    for r in t.itertuples():  # the flag agrees with the cost model, and infeasible designs rank behind all feasible ones
        assert r.feasible == cd.feasible({"energy_nj": r.energy_nj, "latency_us": r.latency_us}, res.hand_cost, b)
        assert (r.objective >= cd.INFEASIBLE) == (not r.feasible)
    hand = cd.handcrafted_design(space)
    bits = cd.constrained_search(trained, data, b, cfg, ev, score_cache=cache, arch=hand.arch)
    assert all(d.arch == hand.arch for d in bits.designs.values())  # bits only
    rnd = cd.constrained_search(trained, data, b, cfg, ev, score_cache=cache, method="random")
    assert len(rnd.table) == cfg.population + cfg.generations * cfg.children  # the evolution's nominal budget
    impossible = cd.constrained_search(trained, data, cd.Budget(1e6, 1e6), cfg, ev, score_cache=cache, method="random")
    assert impossible.chosen is None and not impossible.table["chosen"].any()
    with pytest.raises(ValueError, match="method"):
        cd.constrained_search(trained, data, b, cfg, ev, method="grid")


def test_float_then_quantize_takes_the_best_float_arch_that_can_fit(setup, trained):
    data, space = setup
    ev = SubnetEval(finetune_steps=0, eval_rows=300)
    cfg = cd.CodesignConfig(population=6, sample_size=3, children=2, generations=2, progress=False)
    ftab = cd.float_search(trained, data, cfg, ev, {})
    assert ftab["logloss"].is_monotonic_increasing and ftab["key"].str.startswith("float:").all()
    b = cd.Budget(1.8, 1.5)
    res = cd.float_then_quantize(trained, data, b, ftab, cfg, ev)
    hand_cost = res.hand_cost
    fits = [a for a in ftab["arch"] if cd.feasible(cd.design_cost(data.schema, space, cd.Design(a, ((4, 4),) * len(a.blocks))).summary(), hand_cost, b)]
    assert all(d.arch == fits[0] for d in res.designs.values())
    none = cd.float_then_quantize(trained, data, cd.Budget(1e6, 1e6), ftab, cfg, ev)
    assert none.chosen is None


def test_front_pairs_average_over_shared_budgets():
    import pandas as pd

    t = pd.DataFrame([
        ("a", 0, 1.8, 0.50), ("a", 0, 2.5, 0.52), ("b", 0, 1.8, 0.51), ("b", 0, 2.5, float("nan")),
        ("a", 1, 1.8, 0.40), ("a", 1, 2.5, 0.44), ("b", 1, 1.8, 0.42), ("b", 1, 2.5, 0.47),
        ("a", 2, 1.8, 0.30), ("b", 2, 2.5, 0.33),
    ], columns=["method", "seed", "energy_eff", "test_logloss"])
    a, b, used = cd.front_pairs(t, "a", "b")
    assert a == {0: 0.50, 1: pytest.approx(0.42)} and b == {0: 0.51, 1: pytest.approx(0.445)}
    assert used == {0: [1.8], 1: [1.8, 2.5]}  # seed 2 shares no budget and drops out


def test_train_designs_trains_each_design_and_seed_once(setup):
    import pandas as pd
    from companion.train import TrainConfig

    data, space = setup
    hand = cd.handcrafted_design(space)
    designs = {hand.key(): hand}
    jobs = pd.DataFrame({"method": ["x", "y", "x", "z"], "seed": [0, 0, 1, 0], "key": [hand.key(), hand.key(), hand.key(), None]})
    cache = {}
    out = cd.train_designs(data, space, jobs, designs, TrainConfig(epochs=1, batch_size=256, max_steps=3, progress=False), cache)
    assert set(cache) == {(hand.key(), 0), (hand.key(), 1)}
    assert out.loc[0, "test_logloss"] == out.loc[1, "test_logloss"] and np.isnan(out.loc[3, "test_logloss"])


def test_bits_only_controls_always_hold_their_all_4_bit_point(setup, trained):
    data, space = setup
    ev = SubnetEval(finetune_steps=0, eval_rows=300)
    cfg = cd.CodesignConfig(population=2, sample_size=1, children=1, generations=0, progress=False)
    hand = cd.handcrafted_design(space)
    low = cd.Design(hand.arch, ((4, 4),) * space.num_blocks)
    res = cd.constrained_search(trained, data, cd.Budget(1.8, 1.5), cfg, ev, arch=hand.arch, include=(low,))
    assert low.key() in res.designs and len(res.table) <= cfg.population + 1
    assert res.chosen is not None  # the hand architecture at 4/4 meets 1.8x / 1.5x on this model
