import pytest
import torch
import torch.nn.functional as F

from companion.data.synthetic_seq import make_synthetic_seq
from companion.models.ctr import DCNv2, FM
from companion.compare import run_grid, summarize_grid
from companion.models.zoo import MODEL_ZOO, SEQUENTIAL, build_model
from companion.models.layers import CIN, CrossNetV2, DHENLayer, pairwise_dots


@pytest.fixture(scope="module")
def splits():
    return make_synthetic_seq(n=500, n_users=30, max_len=6, seed=2)


@pytest.mark.parametrize("name", list(MODEL_ZOO))
def test_each_model_trains_a_step(splits, name):
    torch.manual_seed(0)
    m = build_model(name, splits.schema, 8)
    b = splits.train.batch(slice(0, 64))
    out = m(b)
    assert out.shape == (64,)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = F.binary_cross_entropy_with_logits(m(b), b["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(map(lambda v: v == v, losses))  # no NaN
    assert losses[-1] < losses[0]  # it fits one batch


@pytest.mark.parametrize("name", [n for n in MODEL_ZOO if n in SEQUENTIAL or n == "DNN"])
def test_sequence_padding_invariance(splits, name):
    torch.manual_seed(0)
    m = build_model(name, splits.schema, 8).eval()
    b = splits.test.batch(slice(0, 16))
    b2 = dict(b, seq=torch.cat([torch.zeros(*b["seq"].shape[:2], 4, dtype=torch.long), b["seq"]], -1))
    with torch.no_grad():
        torch.testing.assert_close(m(b), m(b2), atol=1e-5, rtol=1e-5)


def test_fm_matches_brute_force(splits):
    torch.manual_seed(0)
    m = FM(splits.schema, 4)
    b = splits.train.batch(slice(0, 8))
    x = m.feature_tokens(b)
    brute = sum((x[:, i] * x[:, j]).sum(-1) for i in range(x.shape[1]) for j in range(i + 1, x.shape[1]))
    torch.testing.assert_close(m(b), m.linear(b) + brute, atol=1e-5, rtol=1e-4)


def test_layers_shapes():
    x = torch.randn(5, 6, 4)
    assert pairwise_dots(x).shape == (5, 15)
    torch.testing.assert_close(pairwise_dots(x)[:, 0], (x[:, 0] * x[:, 1]).sum(-1))
    assert DHENLayer(6, 3, 4)(x).shape == (5, 3, 4)
    assert CIN(6, (7, 5))(x).shape == (5, 12)
    cross = CrossNetV2(24, 2, rank=4)
    assert cross(x.flatten(1)).shape == (5, 24)
    with pytest.raises(ValueError, match="DHEN modules"):
        DHENLayer(6, 6, 4, modules=("fm",))


def test_dcnv2_structure_is_checked(splits):
    with pytest.raises(ValueError, match="structure"):
        DCNv2(splits.schema, 8, structure="sideways")
    assert DCNv2(splits.schema, 8, structure="stacked")(splits.train.batch(slice(0, 4))).shape == (4,)


def test_grid_summary_has_mean_and_spread(splits):
    df = run_grid({"FM": ("FM", {}), "DNN": ("DNN", {"hidden": (16,)})}, splits, 4, [0, 1],
                  {"epochs": 1, "batch_size": 128, "progress": False})
    s = summarize_grid(df)
    assert set(s.index) == {"FM", "DNN"} and (s.seeds == 2).all()
    assert (s.auc_sd >= 0).all() and (s.params > 0).all() and (s.samples_per_s > 0).all()
