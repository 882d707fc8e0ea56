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
    # the first-order weights live in an extra column of the shared table (fused); check them by hand too
    first = m.emb.table.weight[:, 4][b["sparse"] + m.emb.sparse_off].sum(1) + m.linear.bias
    if m.emb.dense_weight is not None:
        first = first + (b["dense"] * m.emb.dense_weight[:, 4] + m.emb.dense_bias[:, 4]).sum(1)
    if m.emb.n_sequences:
        first = first + m.emb.pooled_sequences(b)[..., 4].sum(1)
    torch.testing.assert_close(m.tokens_and_first_order(b, m.linear)[1], first, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(m(b), first + brute, atol=1e-5, rtol=1e-4)


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


def test_grid_summary_is_the_mean_and_spread_of_its_runs(splits):
    df = run_grid({"FM": ("FM", {}), "DNN": ("DNN", {"hidden": (16,)})}, splits, 4, [0, 1],
                  {"epochs": 1, "batch_size": 128, "progress": False})
    s = summarize_grid(df)
    assert set(s.index) == {"FM", "DNN"} and (s.seeds == 2).all()
    for m in ("FM", "DNN"):
        a = df[df.model == m].auc.to_numpy()
        assert a[0] != a[1]  # two seeds, two different runs
        assert s.loc[m, "auc"] == pytest.approx(a.mean(), abs=1e-12)
        assert s.loc[m, "auc_sd"] == pytest.approx(abs(a[0] - a[1]) / 2, abs=1e-12)  # population sd of two values
        assert s.loc[m, "valid_auc"] == pytest.approx(df[df.model == m].valid_auc.mean(), abs=1e-12)
    assert list(s.index) == sorted(s.index, key=lambda m: -s.loc[m, "auc"])  # best first


def test_summary_on_a_hand_made_grid():
    import pandas as pd

    df = pd.DataFrame({"model": ["a", "a", "a", "b", "b", "b"], "seed": [0, 1, 2] * 2,
                       "auc": [0.70, 0.72, 0.74, 0.80, 0.80, 0.80], "gauc": [0.6] * 6,
                       "logloss": [0.5, 0.4, 0.3, 0.2, 0.2, 0.2], "valid_auc": [0.9, 0.8, 0.7, 0.5, 0.5, 0.5],
                       "params": [10] * 3 + [20] * 3, "samples_per_s": [1.0] * 6})
    s = summarize_grid(df)
    assert list(s.index) == ["b", "a"]
    assert s.loc["a", "auc"] == pytest.approx(0.72) and s.loc["a", "auc_sd"] == pytest.approx((0.0008 / 3) ** 0.5)
    assert s.loc["b", "auc_sd"] == 0 and s.loc["a", "valid_auc"] == pytest.approx(0.8)
    assert list(summarize_grid(df, sort_by="logloss").index) == ["b", "a"]


def test_paired_against_pairs_by_seed():
    import pandas as pd
    from companion.compare import paired_against

    df = pd.DataFrame({"model": ["full"] * 3 + ["x"] * 3 + ["y"] * 2, "seed": [0, 1, 2, 2, 1, 0, 0, 1],
                       "auc": [0.80, 0.81, 0.82, 0.80, 0.80, 0.79, 0.9, 0.9]})
    ps = paired_against(df, "full", ["x", "y", "absent"])
    assert list(ps) == ["x", "y"]
    assert ps["x"].gaps == pytest.approx((0.01, 0.01, 0.02)) and ps["x"].wins == 3
    assert ps["y"].n == 2 and ps["y"].mean == pytest.approx(-0.095)


def _membership_toy(n=1200, t=6, n_cat=8, seed=0):
    """Label = the candidate's category occurs in the history: what DIN-style target attention finds."""
    from companion.data.schema import CTRDataset, CTRSplits, Field, Schema

    g = torch.Generator().manual_seed(seed)
    hist = torch.randint(1, n_cat + 1, (n, t), generator=g)
    cand = torch.randint(1, n_cat + 1, (n,), generator=g)
    label = (hist == cand[:, None]).any(1).float()
    schema = Schema([Field("cand", "sparse", n_cat + 1), Field("ctx", "sparse", 3),
                     Field("hist", "sequence", n_cat + 1, t, share_with="cand")])
    sparse = torch.stack([cand, torch.randint(1, 3, (n,), generator=g)], 1)
    ds = CTRDataset(torch.zeros(n, 0), sparse, label, hist.unsqueeze(1))
    return CTRSplits(schema, ds, ds, ds, {})


@pytest.mark.parametrize("name", ["DMIN", "DMR"])
def test_dmin_dmr_shapes_and_a_learnable_toy(name):
    from companion.metrics import evaluate_ctr

    sp = _membership_toy()
    torch.manual_seed(0)
    m = build_model(name, sp.schema, 8)
    b = sp.train.batch(slice(0, 1200))
    assert m(sp.train.batch(slice(0, 5))).shape == (5,)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(150):
        loss = F.binary_cross_entropy_with_logits(m(b), b["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        auc = evaluate_ctr(b["label"].numpy(), torch.sigmoid(m(b)).numpy())["auc"]
    assert auc > 0.75, f"{name} did not learn history membership (AUC {auc:.3f}; a history-blind model gets 0.5)"


def test_pairwise_dots_is_every_upper_pair_in_row_major_order():
    torch.manual_seed(1)
    x = torch.randn(3, 5, 4, requires_grad=True)
    brute = torch.stack([(x[:, i] * x[:, j]).sum(-1) for i in range(5) for j in range(i + 1, 5)], 1)
    got = pairwise_dots(x)
    torch.testing.assert_close(got, brute)
    g1, = torch.autograd.grad(got.pow(2).sum(), x)
    g2, = torch.autograd.grad(brute.pow(2).sum(), x)
    torch.testing.assert_close(g1, g2)
    assert pairwise_dots(torch.randn(2, 7, 3)).shape == (2, 21)  # another width gets its own cached indices


def _dien_reference(m, batch):
    """DIEN as it was written before packing: a GRUCell stepped over every position, padding carrying the state."""
    x, ev, mask, tgt = m.inputs(batch)
    b, t, e = ev.shape
    cell = torch.nn.GRUCell(e, e)
    cell.load_state_dict({k[:-3]: v for k, v in m.gru.state_dict().items()})  # weight_ih_l0 -> weight_ih ...
    h, state = [], ev.new_zeros(b, e)
    for i in range(t):
        mm = mask[:, i : i + 1].to(ev.dtype)
        state = mm * cell(ev[:, i], state) + (1 - mm) * state
        h.append(state)
    hs = torch.stack(h, 1)
    tt = tgt.unsqueeze(1).expand_as(hs)
    a = m.att(torch.cat([hs, tt, hs - tt, hs * tt], -1)).squeeze(-1).masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
    final = ev.new_zeros(b, e)
    for i in range(t):
        mm = mask[:, i : i + 1].to(ev.dtype)
        final = mm * m.augru(hs[:, i], final, a[:, i : i + 1]) + (1 - mm) * final
    return m.mlp(torch.cat([x.flatten(1), final, tgt], 1)).squeeze(-1)


def test_packed_dien_equals_the_step_by_step_gru(splits):
    torch.manual_seed(0)
    m = build_model("DIEN", splits.schema, 8).eval()
    b = splits.test.batch(slice(0, 32))
    seq = b["seq"].clone()
    seq[0] = 0  # one empty history
    seq[1, :, 1::2] = 0  # holes inside a history
    b = dict(b, seq=seq)
    with torch.no_grad():
        torch.testing.assert_close(m(b), _dien_reference(m, b), atol=1e-5, rtol=1e-5)
        post = dict(b, seq=torch.cat([seq, torch.zeros(*seq.shape[:2], 3, dtype=torch.long)], -1))
        torch.testing.assert_close(m(b), m(post), atol=1e-5, rtol=1e-5)


def test_index_select_lookup_gives_the_embedding_gradients(splits):
    from companion.models.embedding import FeatureEmbedding
    torch.manual_seed(0)
    e = FeatureEmbedding(splits.schema, 4)
    b = splits.train.batch(slice(0, 64))
    e.pooled_sequences(b).pow(2).sum().backward()
    g_dense = e.table.weight.grad.clone()
    e.table.weight.grad = None
    e.table.sparse = True  # nn.Embedding's own path, as the sparse trainer uses it
    e.pooled_sequences(b).pow(2).sum().backward()
    assert e.table.weight.grad.is_sparse
    torch.testing.assert_close(e.table.weight.grad.to_dense(), g_dense)
    seq, mask = e.sequences(b)
    from companion.models.layers import masked_mean
    torch.testing.assert_close(e.pooled_sequences(b), masked_mean(seq, mask))
