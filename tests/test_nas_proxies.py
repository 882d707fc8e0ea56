"""Each zero-cost proxy on a tiny network against a hand-computed value or a property it must have."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from companion.nas import proxies as px


def _mlp(seed=0, bias=True):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4, bias=bias), nn.ReLU(), nn.Linear(4, 2, bias=bias))


def _batches(seed=0, n=4, b=8, d=3, classes=2):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, d, generator=g), torch.randint(0, classes, (b,), generator=g)) for _ in range(n)]


CE = F.cross_entropy
MSE = lambda out, y: F.mse_loss(out.squeeze(-1), y)  # noqa: E731


def test_synflow_ignores_the_data_and_its_scale():
    net = _mlp()
    a = px.score("synflow", net, _batches(0))
    b = px.score("synflow", net, [(10 * x, y) for x, y in _batches(0)])
    c = px.score("synflow", net, _batches(7))
    assert a == b == c


def test_synflow_on_a_bias_free_linear_chain_is_twice_the_path_sum():
    # R = 1^T |W2| |W1| 1 is homogeneous of degree 1 in each layer, so sum(theta dR/dtheta) = R per layer
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Linear(4, 2, bias=False))
    w1, w2 = net[0].weight.detach().abs().double(), net[1].weight.detach().abs().double()
    r = float((w2 @ w1).sum())
    assert px.score("synflow", net, _batches()) == pytest.approx(2 * r, rel=1e-12)


def test_snip_on_one_layer_by_hand():
    net = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.5, -2.0]]))
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    y = torch.tensor([1.0, 0.0])
    # residuals r = w.x - y = (0.5 - 4 - 1, 1.5 + 2 - 0) = (-4.5, 3.5); dL/dw = 2 mean(r x) = (-4.5 + 10.5, -9 - 3.5) = (6, -12.5)
    expected = abs(0.5 * 6.0) + abs(-2.0 * -12.5)
    assert px.score("snip", net, [(x, y)], MSE) == pytest.approx(expected)
    # GradNorm on the same case: || (6, -12.5) ||
    assert px.score("grad_norm", net, [(x, y)], MSE) == pytest.approx(math.hypot(6.0, 12.5))


def test_grasp_on_one_layer_by_hand():
    net = nn.Linear(2, 1, bias=False)
    w = torch.tensor([[0.5, -2.0]])
    with torch.no_grad():
        net.weight.copy_(w)
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    y = torch.tensor([1.0, 0.0])
    g = np.array([6.0, -12.5])
    h = 2 / 2 * x.numpy().T @ x.numpy()  # Hessian of mean squared error
    expected = float(-(w.numpy()[0] * (h @ g)).sum())
    assert px.score("grasp", net, [(x, y)], MSE) == pytest.approx(expected)


def test_naswot_on_a_known_activation_pattern():
    net = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])  # codes 101 and 110: K = [[3, 1], [1, 3]]
    np.testing.assert_allclose(px.naswot_kernel([x > 0]), [[3, 1], [1, 3]])
    assert px.score("naswot", net, [(x, torch.zeros(2))]) == pytest.approx(math.log(8))
    with pytest.raises(ValueError, match="ReLU"):
        px.score("naswot", nn.Linear(3, 2), [(x, torch.zeros(2))])


def test_jacob_cov_of_a_linear_map_has_rank_one_correlation():
    torch.manual_seed(0)
    net = nn.Linear(5, 1)
    x = torch.randn(6, 5)
    k = 1e-5
    # every sample's input gradient equals w: the 6 x 6 correlation matrix is all ones, eigenvalues 6, 0, ..., 0
    expected = -((math.log(6 + k) + 1 / (6 + k)) + 5 * (math.log(k) + 1 / k))
    assert px.score("jacob_cov", net, [(x, torch.zeros(6))]) == pytest.approx(expected, rel=1e-6)


def test_fisher_on_one_layer_by_hand():
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        net.bias.zero_()
    x = torch.tensor([[1.0, 1.0], [2.0, -1.0]])
    y = torch.zeros(2, 2)
    loss = lambda out, t: (out ** 2).sum()  # noqa: E731  dL/da = 2a
    a = x @ torch.tensor([[1.0, 0.0], [0.0, 2.0]]).T  # [[1, 2], [2, -2]]
    per_ch = 0.5 * (a * 2 * a).pow(2).mean(0)  # (0.5*(4+64)/2, 0.5*(64+64)/2)
    expected = float(per_ch.sum()) * 2  # broadcast to the 2 weights of each output channel
    assert px.score("fisher", net, [(x, y)], loss) == pytest.approx(expected)


def test_params_and_flops():
    net = _mlp()
    assert px.score("params", net, _batches()) == 3 * 4 + 4 + 4 * 2 + 2
    f = px.score("flops", nn.Linear(3, 4, bias=False), _batches())
    assert f == 2 * 3 * 4
    conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(128, 3, bias=False))
    img = [(torch.randn(4, 1, 8, 8), torch.zeros(4))]
    assert px.score("flops", conv, img) == 2 * (2 * 8 * 8) * 9 + 2 * 128 * 3


# ------------------------------------------------------------------ SiGeo and ZiCo
def _hand_grads():
    grads = {"a": np.array([[1.0, 0.0], [3.0, 0.0]]), "b": np.array([[-1.0], [-3.0]])}
    theta = {"a": np.array([1.0, 5.0]), "b": np.array([2.0])}
    return grads, theta


def test_cv_statistics_by_hand():
    s = px.cv_statistics(*_hand_grads())
    # layer a: coordinate 0 has mean|g| 2, population std 1 (coordinate 1 has std 0: dropped); layer b the same
    assert s["zico"] == pytest.approx(2 * math.log(2))
    # FR: |1*4 + 5*0| + |2*(-4)| = 12, doubled log
    assert s["fr"] == pytest.approx(2 * math.log(12 + 1e-5))


def test_recsys_statistics_by_hand_and_the_two_forms_differ():
    r = px.recsys_statistics(*_hand_grads())
    # unbiased std sqrt(2): log(2 / sqrt 2) per tensor; FR = log|4 - 8| (absolute value after the sum, no factor 2)
    assert r["zico"] == pytest.approx(2 * math.log(math.sqrt(2)))
    assert r["fr"] == pytest.approx(math.log(4 + 1e-10))
    c = px.cv_statistics(*_hand_grads())
    assert r["zico"] != pytest.approx(c["zico"]) and r["fr"] != pytest.approx(c["fr"])


def test_recsys_zico_reads_only_the_first_nonzero_std_coordinate():
    g = {"w": np.array([[0.0, 1.0, 10.0], [0.0, 3.0, 10.5]])}
    th = {"w": np.zeros(3)}
    sd = np.std([1.0, 3.0], ddof=1)
    assert px.recsys_statistics(g, th)["zico"] == pytest.approx(math.log(2.0 / sd))
    both = math.log(2.0 / 1.0 + 10.25 / 0.25)  # the CV form sums both non-zero-std coordinates
    assert px.cv_statistics(g, th)["zico"] == pytest.approx(both)


def test_sigeo_without_steps_or_extra_terms_is_zico():
    net, b = _mlp(), _batches()
    z = px.score("zico", net, b, CE)
    assert px.score("sigeo", net, b, CE, lr=0.0, lambda2=0.0, lambda3=0.0) == pytest.approx(z)
    # with the official lr-1 SGD steps between snapshots the gradients, and so the ZiCo term, change
    t = px.sigeo_cv_terms(_mlp(), b, CE)
    assert t["zico"] != pytest.approx(z)


def test_sigeo_official_lambdas_follow_warm_up():
    net, b = _mlp(), _batches()
    t = px.sigeo_cv_terms(_mlp(), b, CE)
    assert px.score("sigeo", net, b, CE) == pytest.approx(t["zico"] + t["fr"])
    assert px.score("sigeo", net, b, CE, warmed=True) == pytest.approx(t["zico"] + 50 * t["fr"] - t["loss"])


def test_the_two_sigeo_forms_differ_on_the_same_run():
    # the same optimizer (SGD, lr 1, no ramp, no clipping) over all parameters: only the statistics differ
    net, b = _mlp(bias=False), _batches()
    cv = px.sigeo_cv_terms(_mlp(bias=False), b, CE)
    rs = px.sigeo_recsys_terms(_mlp(bias=False), b, CE, only=None, optimizer="sgd", lr=1.0, lr_ramp_steps=1, grad_clip=None)
    assert cv["loss"] == pytest.approx(rs["loss"])
    assert cv["zico"] != pytest.approx(rs["zico"]) and cv["fr"] != pytest.approx(rs["fr"])


def test_recsys_last_layer_form_only_reads_the_head():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.body, self.head = nn.Linear(3, 4), nn.Linear(4, 1)

        def forward(self, x):
            return self.head(torch.relu(self.body(x))).squeeze(-1)

    bce = lambda o, y: F.binary_cross_entropy_with_logits(o, y.float())  # noqa: E731
    b = [(x, (y > 0).float()) for x, y in _batches(classes=2)]
    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    s1 = px.score("sigeo_recsys", net, b, bce)
    # the caller's network is untouched (so scoring twice gives the same value); the whole-network form differs
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert s1 == pytest.approx(px.score("sigeo_recsys", net, b, bce))
    whole = px.score("sigeo_recsys", net, b, bce, only=None)
    assert whole != pytest.approx(s1)
    with pytest.raises(ValueError, match="no parameter"):
        px.score("sigeo_recsys", net, b, bce, only=("final",))


def test_score_leaves_the_network_unchanged_and_rejects_unknown_names():
    net = _mlp()
    before = [p.clone() for p in net.parameters()]
    px.score("sigeo", net, _batches(), CE, warmed=True)
    px.score("synflow", net, _batches())
    assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    assert next(net.parameters()).dtype == torch.float32
    with pytest.raises(ValueError, match="unknown proxy"):
        px.score("zen", net, _batches(), CE)
    with pytest.raises(ValueError, match="at least one"):
        px.score("zico", net, [], CE)
