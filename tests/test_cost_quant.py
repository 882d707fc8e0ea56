"""Fake quantization: the grid, straight-through gradients, per-module bits, and what bits cost in accuracy."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.cost.quant import FakeQuantModel, QuantPolicy, fake_quant, quantized
from companion.data.synthetic import make_synthetic_ctr
from companion.nas.space import make_space
from companion.nas.supernet import SuperNet


def test_grid_and_error_bound():
    torch.manual_seed(0)
    x = torch.randn(1000)
    for bits in (2, 4, 8):
        q = fake_quant(x, bits)
        levels = torch.unique(q)
        assert len(levels) <= 2 ** bits - 1  # symmetric signed grid
        step = x.abs().max() / (2 ** (bits - 1) - 1)
        assert (q - x).abs().max() <= step / 2 + 1e-6
    relu = torch.rand(1000)
    assert len(torch.unique(fake_quant(relu, 2))) <= 4  # non-negative input: unsigned grid, all 4 levels used
    assert fake_quant(x, None) is x


def test_straight_through_gradient():
    x = torch.randn(50, requires_grad=True)
    fake_quant(x, 4).sum().backward()
    assert torch.equal(x.grad, torch.ones(50))


def test_bad_bits():
    with pytest.raises(ValueError, match="bits"):
        fake_quant(torch.randn(3), 0)
    with pytest.raises(ValueError, match="weight_bits"):
        QuantPolicy({"a": 4})


def test_policy_longest_prefix():
    p = QuantPolicy({"": (8, 8), "blocks.1": (4, 8), "blocks.1.fc": (4, 4)})
    assert p("head") == (8, 8)
    assert p("blocks.1.efc.linear") == (4, 8)
    assert p("blocks.1.fc.linear") == (4, 4)
    assert p("blocks.10.fc") == (8, 8)  # prefix match is by dotted component, not by string


def _blobs(n, d=16, k=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(k, d, generator=g)
    y = torch.randint(0, k, (n,), generator=g)
    return centers[y] + 0.6 * torch.randn(n, d, generator=g), y


def test_four_bits_cost_less_accuracy_than_two_bits():
    torch.manual_seed(0)
    x, y = _blobs(5000)
    x, y, xt, yt = x[:3000], y[:3000], x[3000:], y[3000:]
    layer = nn.Linear(16, 6)
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(layer(x), y).backward()
        opt.step()

    def acc(bits):
        model = FakeQuantModel(layer, {"": bits})
        with torch.no_grad():
            return (model(xt).argmax(1) == yt).float().mean().item()

    full, four, two = acc((None, None)), acc((4, 4)), acc((2, 2))
    assert full > 0.8
    assert full - four < full - two
    assert two < full - 0.02


def test_supernet_and_standalone_quantize_alike():
    """Bits chosen by module name reach the sliced supernet path and the standalone model the same way."""
    torch.manual_seed(0)
    data = make_synthetic_ctr(n_samples=200, n_dense=3, n_sparse=5, seed=0)
    space = make_space("nasrec-small", "tiny")
    sn = SuperNet(data.schema, space).eval()
    batch = data.valid.batch(slice(0, 16))
    arch = space.sample(np.random.default_rng(3))
    rules = {"": (8, 8), **{f"blocks.{i}": (4, 4) for i in range(space.num_blocks)}}
    standalone = FakeQuantModel(sn.extract(arch), rules).eval()
    with torch.no_grad():
        with quantized(sn, QuantPolicy(rules)):
            y_super = sn(batch, arch)
        y_alone = standalone(batch)
        y_float = sn(batch, arch)
    assert torch.allclose(y_super, y_alone, atol=1e-5)
    assert not torch.allclose(y_super, y_float, atol=1e-4)  # 4 bits do change the output
