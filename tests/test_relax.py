"""Differentiable-search primitives on hand-made architecture weights."""
import math

import pytest
import torch

from companion.nas.relax import ArchParams, TemperatureSchedule, discretize, entropy, expected_cost, gumbel_softmax


def test_temperature_schedule_end_points_and_shape():
    exp, lin = TemperatureSchedule(4.0, 1.0, 100), TemperatureSchedule(4.0, 1.0, 100, "linear")
    assert exp(0) == 4.0 and exp(100) == pytest.approx(1.0) and exp(500) == pytest.approx(1.0)
    assert exp(50) == pytest.approx(2.0)  # geometric midpoint
    assert lin(50) == pytest.approx(2.5)  # arithmetic midpoint
    with pytest.raises(ValueError):
        TemperatureSchedule(0.0, 1.0, 10)


def test_gumbel_softmax_is_seeded_and_follows_the_logits():
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1]))
    a = gumbel_softmax(logits, 1.0, generator=torch.Generator().manual_seed(3))
    b = gumbel_softmax(logits, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.sum().item() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    picks = torch.stack([gumbel_softmax(logits, 1.0, hard=True, generator=g) for _ in range(4000)])
    assert set(picks.sum(1).tolist()) == {1.0}  # straight-through one-hot
    freq = picks.mean(0)
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.03)  # Gumbel-max samples the softmax


def test_hard_gumbel_passes_gradients_straight_through():
    logits = torch.zeros(3, requires_grad=True)
    y = gumbel_softmax(logits, 0.5, hard=True, generator=torch.Generator().manual_seed(1))
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_expected_cost_and_its_gradient_lower_the_expensive_choice():
    ap = ArchParams({"layer": 2})
    costs = [10.0, 1000.0]
    opt = torch.optim.SGD(ap.parameters(), lr=1.0)
    for _ in range(20):  # equal accuracy terms: only the cost term acts
        loss = expected_cost(ap.weights("layer"), costs)
        opt.zero_grad()
        loss.backward()
        opt.step()
    p = ap.probs()["layer"]
    assert p[1] < 0.1 < 0.9 < p[0]
    assert float(expected_cost(torch.tensor([0.5, 0.5]), costs)) == pytest.approx((5 + 500) / 1000)


def test_discretize_top1_and_mass_on_hand_made_weights():
    probs = {"a": torch.tensor([0.1, 0.6, 0.3]), "b": torch.tensor([0.45, 0.1, 0.45])}
    assert discretize(probs, "top1") == {"a": [1], "b": [0]}  # ties go to the first choice
    assert discretize(probs, "mass", 0.8) == {"a": [1, 2], "b": [0, 2]}
    assert discretize(probs, "mass", 0.5) == {"a": [1], "b": [0, 2]}
    with pytest.raises(ValueError):
        discretize(probs, "mass", 0.0)


def test_entropy_is_normalised():
    assert entropy(torch.tensor([0.25] * 4)) == pytest.approx(1.0)
    assert entropy(torch.tensor([1.0, 0.0])) == pytest.approx(0.0, abs=1e-9)
    assert entropy(torch.tensor([0.5, 0.5])) == pytest.approx(math.log(2) / math.log(2))
