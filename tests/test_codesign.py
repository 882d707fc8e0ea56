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
    assert cmp["speedup_vs_hand"] > 0 and cmp["energy_eff_vs_hand"] > 0
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
