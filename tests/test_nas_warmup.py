"""Warm-up: stated as samples and fractions; a fraction of 0 changes nothing; the CV and RecSys protocols."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.nas import proxies as px
from companion.nas import warmup as wu


def _data(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g)
    return x, (x[:, 0] > 0).long()


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))


def test_amount_states_samples_and_fraction():
    w = wu.amount(0.1, 1197)
    assert (w.samples, w.of) == (120, 1197) and "120 of 1,197" in w.label
    with pytest.raises(ValueError):
        wu.amount(1.5, 10)


def test_official_labels_are_not_the_fractions_they_name():
    rows = {r["label"]: r for r in wu.official_cv_levels()}
    assert rows["10%"]["CIFAR-10"] == pytest.approx(0.12)
    assert rows["40%"]["CIFAR-10"] == pytest.approx(0.48)
    assert rows["20%"]["ImageNet16-120"] == pytest.approx(12000 / 151700)


def test_zero_warmup_changes_nothing():
    x, y = _data()
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    w = wu.warmup_candidate(net, x, y, 0)
    assert w.steps == 0 and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    b = wu.scoring_batches(x, y, 0)
    assert px.score("sigeo", net, b, F.cross_entropy) == px.score("sigeo", _net(), b, F.cross_entropy)


def test_candidate_warmup_runs_the_official_schedule():
    x, y = _data()
    net = _net()
    before = net[0].weight.clone()
    w = wu.warmup_candidate(net, x, y, 300)
    assert w.steps == 10 * math.ceil(300 / 128) and w.fraction == pytest.approx(0.5)
    assert not torch.equal(before, net[0].weight)
    # the warmed-up network fits better than the fresh one on the scoring batches
    b = wu.scoring_batches(x, y, 300)
    loss = lambda m: sum(float(F.cross_entropy(m(xb), yb)) for xb, yb in b)  # noqa: E731
    assert loss(net) < loss(_net())


def test_scoring_batches_are_the_last_256_of_the_proxy_batch():
    x, y = _data()
    b = wu.scoring_batches(x, y, 500)
    assert len(b) == 4 and all(len(yb) == 64 for _, yb in b)
    assert torch.equal(b[0][0], x[500 - 256:500 - 192]) and torch.equal(b[-1][0], x[436:500])
    b0 = wu.scoring_batches(x, y, 0)
    assert torch.equal(b0[0][0], x[:64])
    with pytest.raises(ValueError):
        wu.scoring_batches(x, y, 700)


def test_supernet_warmup_zero_is_a_no_op_and_a_fraction_trains_on_that_many_rows():
    from companion.data.synthetic import make_synthetic_ctr
    from companion.nas import SuperNet, make_space
    from companion.nas.training import SupernetConfig

    splits = make_synthetic_ctr(n_samples=2000, seed=0)
    space = make_space("nasrec-small", "tiny")
    torch.manual_seed(0)
    sn = SuperNet(splits.schema, space)
    before = {k: v.clone() for k, v in sn.state_dict().items()}
    w0 = wu.warmup_supernet(sn, splits, 0.0, SupernetConfig(batch_size=64, progress=False))
    assert w0.samples == 0 and w0.steps == 0
    assert all(torch.equal(before[k], v) for k, v in sn.state_dict().items())
    w = wu.warmup_supernet(sn, splits, 0.1, SupernetConfig(batch_size=64, progress=False))
    assert (w.samples, w.steps) == (160, 3)
    assert any(not torch.equal(before[k], v) for k, v in sn.state_dict().items())
