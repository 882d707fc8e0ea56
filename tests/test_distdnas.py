"""DistDNAS pieces: module FLOPs, the cost term's gradient, aggregation rules, determinism, dates."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from companion.data.date_shards import DateSpec, criteo_day_dates, synthetic_dates
from companion.data.errors import MissingDataError
from companion.data.synthetic import make_synthetic_ctr
from companion.nas import distdnas as dd
from companion.nas import registry


@pytest.fixture(scope="module")
def tiny():
    return synthetic_dates(n_dates=2, rows_per_date=400, seed=0)


def test_every_module_is_registered_and_its_analytic_flops_match_the_counter(tiny):
    cfg = dd.SearchConfig(dim=4, rank=3, hidden=(16,))
    ctx = cfg.ctx(tiny.schema)
    assert set(registry.names("interaction", tag="distdnas")) == {f"dd_{m}" for m in dd.MODULES}
    flops = {}
    for m in dd.MODULES:
        net = dd.discrete_from(cfg, tiny.schema, [m, m])
        flops[m] = dd.per_sample_flops(net, tiny.test)
        assert flops[m] == dd.arch_flops([m, m], ctx, cfg.hidden), m
    # identity is the cheapest, cross grows with depth, DLRM's projected dot products cost more than FM's vector
    assert flops["identity"] < flops["cross1"] < flops["cross2"] < flops["cross3"] < flops["fc"]
    assert min(flops, key=flops.get) == "identity" and flops["fm"] < flops["dot"]


def test_cost_term_on_uniform_weights_is_the_mean_normalised_cost(tiny):
    cfg = dd.SearchConfig(layers=3, dim=4)
    net = dd.SuperNet(tiny.schema, cfg)
    c = net.costs
    assert float(net.cost_term().detach()) == pytest.approx(3 * float(c.mean() / c.max()), rel=1e-6)


def _twin_supernet(schema, lam):
    """identity and an FC whose weights are zero: both output x, so the accuracy terms of the two are equal."""
    torch.manual_seed(0)
    net = dd.SuperNet(schema, dd.SearchConfig(modules=("identity", "fc"), layers=1, dim=4, lam=lam))
    fc = net.blocks[0][1]
    with torch.no_grad():
        fc.lin.weight.zero_()
        fc.lin.bias.zero_()
    return net


def test_cost_gradient_lowers_the_expensive_module_when_accuracy_is_equal(tiny):
    b = tiny.dates[0].batch(slice(0, 128))
    for lam, expect in ((0.5, "down"), (0.0, "same")):
        net = _twin_supernet(tiny.schema, lam)
        loss = F.binary_cross_entropy_with_logits(net(b), b["label"]) + lam * net.cost_term()
        loss.backward()
        g = net.arch.alpha["layer0"].grad
        opt = torch.optim.SGD(net.arch.parameters(), lr=1.0)
        opt.step()
        p = torch.softmax(net.arch.alpha["layer0"].detach(), -1)
        if expect == "down":
            assert g[1] > 0 > g[0]  # gradient descent lowers fc's logit and raises identity's
            assert p[1] < 0.5 < p[0]
        else:
            assert torch.allclose(g, torch.zeros(2), atol=1e-7)  # equal outputs: BCE alone is indifferent
            assert torch.allclose(p, torch.full((2,), 0.5), atol=1e-6)


def test_mean_and_vote_aggregation_on_hand_made_weights():
    mods = ("a", "b", "c")
    per_date = [{"layer0": [0.51, 0.49, 0.0]}, {"layer0": [0.51, 0.49, 0.0]}, {"layer0": [0.0, 1.0, 0.0]}]
    agg, arch = dd.aggregate(per_date, mods, "mean")
    assert arch == ["b"] and agg["layer0"] == pytest.approx([0.34, 0.66, 0.0])
    agg, arch = dd.aggregate(per_date, mods, "vote")
    assert arch == ["a"] and agg["layer0"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    # a tied vote goes to the higher mean probability
    tie = [{"layer0": [0.6, 0.4, 0.0]}, {"layer0": [0.0, 0.9, 0.1]}]
    assert dd.aggregate(tie, mods, "vote")[1] == ["b"]


@pytest.mark.parametrize("relax", ["softmax", "gumbel"])
def test_search_is_deterministic_under_a_seed(tiny, relax):
    cfg = dd.SearchConfig(layers=1, dim=4, batch_size=200, relax=relax, tau_start=2.0, tau_end=0.5, lam=0.1)
    a = dd.search_date(tiny.schema, tiny.dates[0], cfg, seed=3, date=0)
    b = dd.search_date(tiny.schema, tiny.dates[0], cfg, seed=3, date=0)
    c = dd.search_date(tiny.schema, tiny.dates[0], cfg, seed=4, date=0)
    assert a.probs == b.probs and a.final_bce == b.final_bce
    assert a.probs != c.probs
    assert sum(a.probs["layer0"]) == pytest.approx(1.0)


def test_alternate_updates_run_and_a_high_lambda_prunes_to_cheap_modules(tiny):
    cfg = dd.SearchConfig(layers=1, dim=4, batch_size=100, update="alternate", lam=20.0, arch_lr=0.2)
    r = dd.search_date(tiny.schema, tiny.dates[0], cfg, seed=0, date=0)
    p = dict(zip(cfg.modules, r.probs["layer0"]))
    assert r.top1(cfg.modules) == ["identity"] and p["identity"] > p["fc"]


def test_in_process_search_over_dates_aggregates_in_date_order(tiny):
    cfg = dd.SearchConfig(layers=1, dim=4, batch_size=200)
    out = dd.search_dates(tiny.dates, tiny.schema, cfg, seed=0)
    assert [r.date for r in out.per_date] == [0, 1] and out.dates_of_rank == [0, 1]
    again = [dd.search_date(tiny.schema, d, cfg, 0, k).probs for k, d in enumerate(tiny.dates)]
    assert [r.probs for r in out.per_date] == again
    assert out.arch == dd.aggregate(again, cfg.modules, "mean")[1]


def test_synthetic_defaults_unchanged_and_dates_share_the_planted_structure():
    s = make_synthetic_ctr(n_samples=300, seed=0)  # values recorded before structure_seed existed
    assert float(s.train.label.sum()) == 59.0 and float(s.test.label.sum()) == 5.0
    assert s.info["ground_truth"].pairs == [("C2", "C7"), ("C3", "C5"), ("C5", "C9")]
    assert float(s.train.dense.sum()) == pytest.approx(-57.31216812133789)
    d = synthetic_dates(n_dates=3, rows_per_date=300, seed=1)
    t = d.table()
    assert list(t.pair_scale) == pytest.approx([1.5, 1.5 - 1 / 3, 1.5 - 2 / 3, 0.5])
    assert not torch.equal(d.dates[0].sparse, d.dates[1].sparse)
    a = make_synthetic_ctr(n_samples=300, seed=5, structure_seed=1)
    b = make_synthetic_ctr(n_samples=300, seed=6, structure_seed=1)
    assert a.info["ground_truth"].pairs == b.info["ground_truth"].pairs == d.info["pairs"]
    pooled = d.pooled(0.1)
    assert len(pooled.train) + len(pooled.valid) == 900 and len(pooled.test) == 300


def _criteo_line(label, dense, cats):
    return "\t".join([str(label), *[("" if v is None else str(v)) for v in dense], *cats]) + "\n"


def test_criteo_terabyte_day_files_map_categories_consistently(tmp_path):
    cats = ["68fd1e64"] * 26
    for day in (0, 1):
        lines = [_criteo_line(1, [1, None, 3] + [0] * 10, cats),
                 _criteo_line(0, [-2, 5, None] + [7] * 10, ["", *cats[1:]])]
        (tmp_path / f"day_{day}").write_text("".join(lines))
    d = criteo_day_dates(tmp_path, days=[0], test_day=1, hash_buckets=1000)
    assert len(d.dates) == 1 and len(d.test) == 2 and d.names == ["day_0", "day_1"]
    assert torch.equal(d.dates[0].sparse[0], d.test.sparse[0])  # same category, same id on every day
    assert int(d.dates[0].sparse[1, 0]) == 0 and 0 < int(d.dates[0].sparse[0, 0]) < 1000
    assert d.dates[0].dense[0, :3].tolist() == pytest.approx([np.log(2), 0.0, np.log(4)])
    assert float(d.dates[0].dense[1, 0]) == 0.0  # negative counts clip to 0
    with pytest.raises(MissingDataError, match="day_5"):
        criteo_day_dates(tmp_path, days=[0], test_day=5)
    with pytest.raises(MissingDataError):
        DateSpec("criteo_tb", n_dates=1, path="").build()


def test_movielens_dates_are_chronological_shards(tmp_path):
    from companion.data.date_shards import movielens_dates

    folder = tmp_path / "ml-100k"
    folder.mkdir()
    # (user, item, rating, timestamp): in time order the labels (rating >= 4) read 1 0 1 1 0 0
    rows = [(1, 10, 5, 881250001), (2, 11, 2, 881250002), (2, 10, 4, 881250003), (1, 11, 4, 881250004),
            (1, 12, 1, 881250005), (2, 12, 3, 881250006)]
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows[::-1]))
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    genres = "|".join(["0"] * 18 + ["1"])
    (folder / "u.item").write_text("".join(f"{i}|Item {i} (1995)|01-Jan-1995||http://x|{genres}\n" for i in (10, 11, 12)),
                                   encoding="latin-1")
    d = movielens_dates(n_dates=2, path=folder)
    assert [len(x) for x in d.dates] == [2, 2] and len(d.test) == 2
    labels = torch.cat([*[x.label for x in d.dates], d.test.label]).tolist()
    assert labels == [1, 0, 1, 1, 0, 0]
    assert all(f.kind != "sequence" for f in d.schema.fields) and d.dates[0].seq is None
    users = torch.cat([x.sparse[:, 0] for x in [*d.dates, d.test]]).tolist()
    assert users == [1, 2, 2, 1, 1, 2]
