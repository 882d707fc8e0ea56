"""FLOPs of the Python-level counter against torch's dispatcher-level FlopCounterMode."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from companion.cost.flops import count_flops, count_params, profile
from companion.data.synthetic import make_synthetic_ctr
from companion.nas.space import make_space
from companion.nas.supernet import SuperNet


def reference(model, *inputs):
    """torch's own count. SDPA is pinned to the math kernel: FlopCounterMode does not register the fused
    CPU flash-attention op and would count it as 0 FLOPs."""
    model.eval()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc, torch.no_grad():
        model(*inputs)
    return fc.get_total_flops()


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(12, 24)
        self.mha = nn.MultiheadAttention(12, 3, batch_first=True)
        self.w = nn.Parameter(torch.randn(24, 5))

    def forward(self, x):
        y = self.lin(x)
        a, _ = self.mha(x, x, x)
        z = torch.bmm(x, x.transpose(1, 2))
        e = torch.einsum("btd,de->bte", y, self.w)
        q = x.view(x.shape[0], x.shape[1], 3, 4).transpose(1, 2)
        s = F.scaled_dot_product_attention(q, q, q)
        m = torch.matmul(y, self.w) + (y @ self.w)
        sliced = F.linear(x, self.lin.weight[:7], self.lin.bias[:7])
        return y.sum() + a.sum() + z.sum() + e.sum() + s.sum() + m.sum() + sliced.sum()


def test_mlp_matches_flop_counter():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 8), nn.ReLU(), nn.Linear(8, 1))
    x = torch.randn(5, 10)
    assert count_flops(mlp, x) == reference(mlp, x) == 2 * 5 * (10 * 32 + 32 * 8 + 8)


def test_mixed_ops_match_flop_counter():
    torch.manual_seed(0)
    m, x = Mixed(), torch.randn(3, 6, 12)
    assert count_flops(m, x) == reference(m, x)


def test_attribution_by_module():
    mlp = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 2))
    prof = profile(mlp, torch.randn(3, 4))
    assert prof.by_module() == {"0": 2 * 3 * 4 * 6, "1": 2 * 3 * 6 * 2}
    assert prof.flops_per_sample == pytest.approx(prof.flops / 3)


@pytest.mark.parametrize("space_name", ["nasrec-small", "nasrec-full"])
def test_supernet_paths_match_flop_counter(space_name):
    torch.manual_seed(0)
    data = make_synthetic_ctr(n_samples=200, n_dense=3, n_sparse=5, seed=0)
    space = make_space(space_name, "tiny")
    sn = SuperNet(data.schema, space)
    batch = data.valid.batch(slice(0, 8))
    rng = np.random.default_rng(0)
    for _ in range(6):
        arch = space.sample(rng)
        standalone = sn.extract(arch)
        ref = reference(standalone, batch)
        assert count_flops(standalone, batch) == ref
        assert count_flops(sn, batch, arch) == ref  # the sliced supernet path costs what the subnet costs


def test_count_params():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3))
    assert count_params(model) == 10 * 4 + 4 * 3 + 3
    assert count_params(model, exclude=(nn.Embedding,)) == 15
    model[1].bias.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 40 + 12
