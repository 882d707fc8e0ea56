"""Structured pruning: each round removes the stated fraction of rows, and the FLOPs follow."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.cost.pruning import attach_masks, expected_alive, iterative_prune, prune_step


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 50), nn.ReLU(), nn.Linear(50, 30), nn.ReLU(), nn.Linear(30, 1))


def test_each_round_removes_twenty_percent_of_rows():
    model = mlp()
    masks = attach_masks(model)
    assert set(masks) == {"0", "2"}  # the 1-output head is never pruned
    alive50, alive30 = [50], [30]
    for r in range(1, 5):
        alive = prune_step(model, masks, rate=0.2)
        assert alive["0"] == expected_alive(50, r) and alive["2"] == expected_alive(30, r)
        assert alive["0"] == alive50[-1] - round(0.2 * alive50[-1])
        alive50.append(alive["0"])
        alive30.append(alive["2"])
    assert alive50 == [50, 40, 32, 26, 21]
    w = model[0].weight  # the parametrized (effective) weight: dead rows are exactly zero
    assert int((w.abs().sum(1) == 0).sum()) == 50 - 21


def test_magnitude_criterion_cuts_the_smallest_rows():
    lin = nn.Linear(4, 10)
    with torch.no_grad():
        lin.weight.copy_(torch.arange(1, 11, dtype=torch.float).unsqueeze(1).repeat(1, 4))
    model = nn.Sequential(lin)
    masks = attach_masks(model, learned=False)
    prune_step(model, masks, 0.2, criterion="magnitude")
    assert masks["0"].hard[:, 0].tolist() == [0, 0] + [1] * 8


def test_iterative_prune_flops_follow_alive_rows():
    x = torch.randn(256, 20)
    y = (x[:, :3].sum(1) > 0).float()

    def train(model, r):
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(30):
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)
            loss.backward()
            opt.step()
        return {"loss": loss.item()}

    model, rounds = iterative_prune(mlp(), train, x[:8], rounds=3, rate=0.2, progress=False)
    assert [r.round for r in rounds] == [0, 1, 2, 3]
    assert rounds[0].flops == rounds[0].flops_full
    a0, a3 = expected_alive(50, 3), expected_alive(30, 3)
    expect = 2 * 8 * (20 * a0 + 50 * a3 + 30 * 1)  # dead rows save their share; inputs are not folded
    assert rounds[-1].flops == expect
    assert rounds[-1].alive_rows == a0 + a3
    assert all(b.flops < a.flops for a, b in zip(rounds, rounds[1:]))
    assert all("loss" in r.metrics for r in rounds)


def test_bad_rate():
    model = mlp()
    masks = attach_masks(model)
    with pytest.raises(ValueError, match="rate"):
        prune_step(model, masks, rate=1.5)


def test_refit_plain_switches_the_gates_off_and_keeps_the_flops():
    x = torch.randn(128, 20)
    y = (x[:, :3].sum(1) > 0).float()
    calls = []

    def train(model, r):
        calls.append(r)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(10):
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)
            loss.backward()
            opt.step()
        return {"loss": loss.item()}

    model, rounds = iterative_prune(mlp(), train, x[:8], rounds=2, rate=0.2, progress=False, refit_plain=True)
    assert calls == [0, 1, 2, 2]  # one extra training: the plain refit under the final hard mask
    assert [r.plain for r in rounds] == [False, False, False, True]
    assert rounds[-1].flops == rounds[-2].flops and rounds[-1].alive_rows == rounds[-2].alive_rows
    # with the gates off the effective weight is exactly the hard mask times the trained weight
    lin = model[0]
    w = lin.parametrizations.weight.original
    hard = lin.parametrizations.weight[0].hard
    assert torch.equal(lin.weight, hard * w)
    calls.clear()
    _, mag = iterative_prune(mlp(), train, x[:8], rounds=2, rate=0.2, criterion="magnitude", progress=False, refit_plain=True)
    assert calls == [0, 1, 2]  # the magnitude model already is plain: its last round is reused
    assert mag[-1].metrics == mag[-2].metrics and all(r.plain for r in mag)
    assert mag[-1].flops == rounds[-1].flops  # same units removed per layer: matched FLOPs
