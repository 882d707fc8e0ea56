import pytest
import torch

from companion.data.synthetic_seq import make_synthetic_seq
from companion.compare import run_grid
from companion.models.interformer import InterFormer
from companion.models.zoo import build_model
from companion.models.layers import Gating, apply_rope, recent_tokens


@pytest.fixture(scope="module")
def splits():
    return make_synthetic_seq(n=600, n_users=40, max_len=8, seed=1)


def _batch(splits, n=32):
    return splits.train.batch(slice(0, n))


def _pad(batch, extra, side="pre"):
    """The same batch with ``extra`` more padding positions on one side of every sequence."""
    b = dict(batch)
    z = torch.zeros(*b["seq"].shape[:2], extra, dtype=torch.long)
    b["seq"] = torch.cat([z, b["seq"]] if side == "pre" else [b["seq"], z], -1)
    return b


def test_shapes_and_summaries(splits):
    torch.manual_seed(0)
    m = InterFormer(splits.schema, dim=8, layers=2, n_cls=4, n_pma=2, n_recent=2).eval()
    logit, xs, ss = m(_batch(splits), return_summaries=True)
    assert logit.shape == (32,)
    assert xs.shape == (32, 4, 8)
    assert ss.shape == (32, 4 + 2 + 2, 8)
    assert torch.isfinite(logit).all()


@pytest.mark.parametrize("side", ["pre", "post"])
@pytest.mark.parametrize("kw", [{}, {"flow": "separate"}, {"sequence": "mean"}, {"sequence": "mlp"},
                                {"sequence": "attention"}, {"norm": "post"}, {"pffn": False}, {"seq_attention": False},
                                {"head_summaries": "last_layer", "gating": "printed", "gate_act": "tanh"}])
def test_padding_does_not_change_output(splits, kw, side):
    torch.manual_seed(0)
    m = InterFormer(splits.schema, dim=8, layers=2, **kw).eval()
    b = _batch(splits)
    with torch.no_grad():
        a, c = m(b), m(_pad(b, 5, side))
    torch.testing.assert_close(a, c, atol=1e-5, rtol=1e-5)


def test_empty_history_is_finite(splits):
    m = InterFormer(splits.schema, dim=8).eval()
    b = _batch(splits, 4)
    b["seq"] = torch.zeros_like(b["seq"])
    assert torch.isfinite(m(b)).all()


def test_rope_preserves_norm_and_is_relative():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)
    pos = lambda p: torch.tensor([[float(p)]])
    rq = apply_rope(q, pos(3))
    torch.testing.assert_close(rq.norm(), q.norm())
    d1 = (apply_rope(q, pos(3)) * apply_rope(k, pos(1))).sum()
    d2 = (apply_rope(q, pos(10)) * apply_rope(k, pos(8))).sum()
    d3 = (apply_rope(q, pos(10)) * apply_rope(k, pos(1))).sum()
    torch.testing.assert_close(d1, d2)
    assert not torch.isclose(d1, d3)
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(1, 1, 1, 7), pos(0))


def test_gating_variants():
    torch.manual_seed(0)
    z = torch.randn(3, 4, 8) * 3
    g = Gating(8, "self")
    torch.testing.assert_close(g(z), z * torch.sigmoid(g.proj(z)))
    p = Gating(8, "printed", "tanh")
    out = p(z)
    assert out.abs().max() <= 1 and torch.allclose(out, torch.tanh(z * p.proj(z)))
    assert (Gating(8, "printed", "sigmoid")(z) > 0).all()
    torch.testing.assert_close(Gating(8, "none")(z), z)
    with pytest.raises(ValueError, match="gating"):
        Gating(8, "sometimes")


def test_recent_tokens_counts_from_the_end():
    x = torch.arange(6, dtype=torch.float32).view(1, 6, 1).repeat(2, 1, 1)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    r = recent_tokens(x, mask, 2)
    assert r[0, :, 0].tolist() == [5.0, 4.0]
    assert r[1, :, 0].tolist() == [0.0, 0.0]  # one real event (value 0) then a zero for the missing one


@pytest.mark.parametrize("flow", ["bidirectional", "n2s", "s2n", "separate"])
def test_flow_switches_cut_the_right_paths(splits, flow):
    """Changing a profile field moves the sequence summary only if non-seq -> seq flows; changing the history
    moves the non-sequence summary only if seq -> non-seq flows."""
    torch.manual_seed(0)
    m = InterFormer(splits.schema, dim=8, layers=2, flow=flow).eval()
    b = _batch(splits)
    b2 = dict(b, sparse=b["sparse"].clone())
    b2["sparse"][:, 1] = (b2["sparse"][:, 1] % 5) + 1  # profile field
    b3 = dict(b, seq=b["seq"].flip(-1))
    with torch.no_grad():
        _, xs, ss = m(b, return_summaries=True)
        _, _, ss2 = m(b2, return_summaries=True)
        _, xs3, _ = m(b3, return_summaries=True)
    n2s_changes = not torch.allclose(ss, ss2, atol=1e-6)
    s2n_changes = not torch.allclose(xs, xs3, atol=1e-6)
    assert n2s_changes == (flow in ("bidirectional", "n2s"))
    assert s2n_changes == (flow in ("bidirectional", "s2n"))


def test_attention_maps_mask_padding(splits):
    m = InterFormer(splits.schema, dim=8, layers=2, n_cls=4).eval()
    m.record_attention(True)
    b = _batch(splits, 8)
    with torch.no_grad():
        m(b)
    maps = m.attention_maps()
    assert len(maps) == 2
    w = maps[0]
    t = 4 + b["seq"].shape[-1]
    assert w.shape == (8, 2, t, t)
    torch.testing.assert_close(w.sum(-1), torch.ones(8, 2, t))
    pad = torch.cat([torch.zeros(8, 4, dtype=torch.bool), ~(b["seq"] > 0).any(1)], 1)
    assert w.masked_select(pad[:, None, None, :].expand_as(w)).abs().max() == 0


@pytest.mark.parametrize("kw", [{}, {"interaction": "dot"}, {"interaction": "dcn"}, {"flow": "n2s"},
                                {"sequence": "mean"}, {"sequence": "mlp"}, {"sequence": "attention"},
                                {"n_pma": 0, "n_recent": 0}, {"pffn": False}, {"seq_attention": False}])
def test_variants_train_a_step(splits, kw):
    torch.manual_seed(0)
    m = InterFormer(splits.schema, dim=8, **kw)
    b = _batch(splits, 64)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in m.parameters()]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(m(b), b["label"])
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    changed = sum(not torch.equal(a, p) for a, p in zip(before, m.parameters()))
    assert changed > len(before) // 2


def test_bad_arguments_are_named(splits):
    with pytest.raises(ValueError, match="flow"):
        InterFormer(splits.schema, flow="sideways")
    with pytest.raises(ValueError, match="n_cls"):
        InterFormer(splits.schema, n_cls=0)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("Perceiver", splits.schema, 8)


def test_same_seed_same_numbers(splits):
    cfg = {"epochs": 1, "batch_size": 128, "progress": False, "max_steps": 2}
    variants = {"IF": ("InterFormer", {"layers": 1}), "DIN": ("DIN", {})}
    a = run_grid(variants, splits, 8, [3], cfg)
    b = run_grid(variants, splits, 8, [3], cfg)
    assert a[["auc", "logloss"]].equals(b[["auc", "logloss"]])
    c = run_grid({"IF": ("InterFormer", {"layers": 1})}, splits, 8, [4], cfg)
    assert c.auc.iloc[0] != a.auc.iloc[0]


def test_component_switches_change_the_model(splits):
    """Each Fig. 5 switch removes parameters or a computation, so the output moves; the full model is the default."""
    b = _batch(splits)

    def out(**kw):
        torch.manual_seed(0)
        m = InterFormer(splits.schema, dim=8, layers=2, **kw).eval()
        with torch.no_grad():
            return m(b), sum(p.numel() for p in m.parameters())

    full, n_full = out()
    for kw in ({"n_pma": 0}, {"n_recent": 0}, {"gating": "none"}, {"pffn": False}, {"seq_attention": False},
               {"sequence": "mlp"}, {"sequence": "attention"}):
        y, n = out(**kw)
        assert not torch.allclose(y, full, atol=1e-6), kw
    assert out(n_pma=0)[1] < n_full and out(gating="none")[1] < n_full


def test_early_aggregation_is_order_blind_only_for_mean(splits):
    """Mean pooling cannot tell a history from its reverse; the MLP and attention aggregations can."""
    b = _batch(splits)
    rev = dict(b, seq=b["seq"].flip(-1))  # reversal turns pre- into post-padding, which the models ignore
    for kind, blind in (("mean", True), ("mlp", False), ("attention", False)):
        torch.manual_seed(0)
        m = InterFormer(splits.schema, dim=8, layers=1, sequence=kind).eval()
        with torch.no_grad():
            m.emb.table.weight.mul_(100)  # at the 0.01 init scale attention is uniform and blind to order anyway
            same = torch.allclose(m(b), m(rev), atol=1e-5)
        assert same == blind, kind


def test_ablation_grid_labels_and_switches():
    from companion.models import interformer as itf

    v = itf.ablation_variants({"layers": 2}, ["n2s", "sole"], ["dhen", "dot"], ["mlp"], ["no_pma", "no_pffn"])
    assert list(v) == ["n2s/dhen", "sole/dhen", "int/dot", "n2s/dot", "sole/dot", "agg:mlp", "no_pma", "no_pffn"]
    assert itf.FULL not in v
    assert v["n2s/dot"] == ("InterFormer", {"layers": 2, "flow": "n2s", "interaction": "dot"})
    assert v["sole/dhen"][1]["sequence"] == "mean" and v["no_pffn"][1] == {"layers": 2, "pffn": False}
    assert itf.ablation_variants({}, [], ["dot"]) == {}  # no modes asked: no backbone grid
    with pytest.raises(ValueError, match="unknown ablations"):
        itf.ablation_variants({}, ["both"])


def test_paper_columns_follow_the_dataset():
    from companion.models import interformer as itf

    assert itf.paper_columns("taobao").loc["InterFormer", "paper_auc"] == 0.6528
    assert itf.paper_columns("kuaivideo").loc["DIEN", "paper_gauc"] == 0.6651
    assert itf.paper_columns("amazon").loc["DMIN", "paper_auc"] == 0.8852
    ml = itf.paper_columns("movielens")
    assert list(ml.columns) == ["paper_auc_AmazonElectronics", "paper_auc_TaobaoAd", "paper_auc_KuaiVideo"]
    assert "TaobaoAd: AUC 0.6528 vs DIEN 0.6519 (+0.0009)" == itf.paper_lead("taobao")
    assert itf.paper_lead("movielens").startswith("not on MovieLens")


def test_entropy_by_layer_splits_first_and_most_focused():
    from companion.models.interformer import entropy_by_layer

    first, later = entropy_by_layer({0: [0.98, 0.90, 0.95], 1: [0.97, 0.99], 2: [0.9]})
    assert first == {0: 0.98, 1: 0.97} and later == {0: 0.90, 1: 0.99}


def test_synthetic_plants_one_event_of_each_kind():
    sp = make_synthetic_seq(n=3000, seed=3)
    target = torch.tensor(sp.info["planted"]["profile_target"])
    for ds in (sp.train, sp.test):
        cats, valid = ds.seq[:, 1] - 1, ds.seq[:, 1] > 0
        c_p, cand = target[ds.sparse[:, 1] - 1], ds.sparse[:, 4] - 1
        assert ((cats == c_p[:, None]) & valid).sum(1).eq(1).all()
        assert ((cats == cand[:, None]) & valid).sum(1).eq(1).all()
        assert (c_p != cand).all()
    # the pooled ceiling is below the Bayes-optimal AUC by most of the planted signal
    assert sp.info["bayes_test"]["auc"] - sp.info["pooled_bayes_test"]["auc"] > 0.3


def test_synthetic_order_signal_is_out_of_reach_of_pooling():
    """The flow signals live in event positions only: on data with nothing else (no first-order part, bias 0) a
    mean-pooled DCNv2 stays within 3 standard errors of chance, a sequence model with positions learns them."""
    from companion.data.synthetic_seq import make_synthetic_seq as make

    sp = make(n=10000, weights=(3.0, 3.0, 0.0), bias=0.0, seed=0)
    assert sp.info["pooled_bayes_test"]["auc"] == 0.5  # every row gets the same pooled-optimal probability
    y = sp.test.label
    n1, n0 = float(y.sum()), float(len(y) - y.sum())
    margin = 3 * ((n1 + n0 + 1) / (12 * n1 * n0)) ** 0.5  # 3 standard errors of a random scorer's AUC
    cfg = {"epochs": 5, "batch_size": 256, "progress": False, "lr": 8e-3, "patience": 5}
    df = run_grid({"pooled": ("DCNv2", {}), "seq": ("TransAct", {})}, sp, 16, [0], cfg)
    pooled, seq = df.set_index("model").auc["pooled"], df.set_index("model").auc["seq"]
    assert abs(pooled - 0.5) < margin, (pooled, margin)
    assert seq > 0.5 + 2 * margin, (seq, margin)


def _rope_pairwise(x, positions, base=10000.0):
    """RoPE written pair by pair, the textbook way."""
    dh = x.shape[-1]
    inv = base ** (-torch.arange(0, dh, 2, dtype=torch.float32) / dh)
    ang = positions.float().unsqueeze(-1) * inv
    cos, sin = ang.cos().unsqueeze(1), ang.sin().unsqueeze(1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1).flatten(-2)


def test_cached_rope_is_bit_identical_to_the_pairwise_formula():
    from companion.models.layers import rope_cache
    torch.manual_seed(0)
    x, pos = torch.randn(6, 2, 9, 8), torch.randint(0, 40, (6, 9))
    assert torch.equal(apply_rope(x, pos), _rope_pairwise(x, pos))
    assert torch.equal(apply_rope(x, cache=rope_cache(pos, 8)), _rope_pairwise(x, pos))


def test_attention_with_shared_rope_and_mask_equals_computing_them_inside():
    from companion.models.layers import PMA, MultiHeadAttention, key_attention_mask, rope_cache
    torch.manual_seed(0)
    att = MultiHeadAttention(8, 2, rope=True)
    x, pos = torch.randn(5, 7, 8), torch.randint(0, 9, (5, 7))
    mask = torch.rand(5, 7) > 0.4
    mask[0] = False  # a row with no real key
    a = att(x, x, key_mask=mask, q_pos=pos, k_pos=pos)
    b = att(x, x, key_mask=mask, rope=rope_cache(pos, 4, heads=2), attn_mask=key_attention_mask(mask))
    assert torch.equal(a, b)
    # the token-layout cache rotates a [B, T, H * dh] projection exactly as the head layout rotates its split
    q = torch.randn(5, 7, 8)
    split = q.view(5, 7, 2, 4).transpose(1, 2)
    assert torch.equal(apply_rope(q, cache=rope_cache(pos, 4, heads=2)).view(5, 7, 2, 4).transpose(1, 2),
                       _rope_pairwise(split, pos))
    pma = PMA(8, 3, 2)
    with torch.no_grad():
        pma.attn.kv.bias.normal_()  # a key bias must cancel in the softmax, a value bias pass through
    # the folded PMA against plain keys-and-values attention of the seeds over the set
    per_example = pma.attn(pma.seeds.unsqueeze(0).expand(5, -1, -1), x, key_mask=mask)
    torch.testing.assert_close(pma(x, mask), per_example, atol=1e-6, rtol=1e-5)
    g1 = torch.autograd.grad(pma(x, mask).pow(2).sum(), list(pma.parameters()))
    g2 = torch.autograd.grad(pma.attn(pma.seeds.unsqueeze(0).expand(5, -1, -1), x, key_mask=mask).pow(2).sum(),
                             list(pma.parameters()))
    for a_, b_ in zip(g1, g2):
        torch.testing.assert_close(a_, b_, atol=1e-5, rtol=1e-4)


def _reference_self_attention(att, x, pos, mask):
    """Multi-head self-attention written out: project, rotate pair by pair, softmax(q k^T / sqrt(dh)) v, project."""
    b, t, d = x.shape
    h, dh = att.heads, d // att.heads
    split = lambda y: y.reshape(b, t, h, dh).transpose(1, 2)
    q = _rope_pairwise(split(x @ att.q.weight.t() + att.q.bias), pos)
    kv = x @ att.kv.weight.t() + att.kv.bias
    k, v = _rope_pairwise(split(kv[..., :d]), pos), split(kv[..., d:])
    scores = q @ k.transpose(-1, -2) / dh ** 0.5
    keys = mask | ~mask.any(-1, keepdim=True)  # a row without real keys attends to everything
    scores = scores.masked_fill(~keys[:, None, None, :], float("-inf"))
    o = scores.softmax(-1) @ v
    return o.transpose(1, 2).reshape(b, t, d) @ att.out.weight.t() + att.out.bias


def test_fast_attention_and_lce_equal_the_written_out_reference():
    """The SDPA path with a shared RoPE table and mask (what InterFormer runs) against explicit softmax attention,
    outputs and gradients to 1e-5; the LCE matmul against its einsum definition."""
    from companion.models.layers import LCE, MultiHeadAttention, key_attention_mask, rope_cache
    torch.manual_seed(3)
    att = MultiHeadAttention(16, 2, rope=True)
    x, pos = torch.randn(6, 11, 16, requires_grad=True), torch.randint(0, 30, (6, 11))
    mask = torch.rand(6, 11) > 0.3
    mask[2] = False
    fast = att(x, x, key_mask=mask, rope=rope_cache(pos, 8, heads=2), attn_mask=key_attention_mask(mask))
    ref = _reference_self_attention(att, x, pos, mask)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    gx_fast, *gw_fast = torch.autograd.grad(fast.pow(2).sum(), [x, *att.parameters()])
    gx_ref, *gw_ref = torch.autograd.grad(ref.pow(2).sum(), [x, *att.parameters()])
    torch.testing.assert_close(gx_fast, gx_ref, atol=1e-5, rtol=1e-5)
    for a, b in zip(gw_fast, gw_ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    lce = LCE(7, 3)
    z = torch.randn(5, 7, 4, requires_grad=True)
    out = lce(z)
    ref = torch.einsum("bnd,nm->bmd", z, lce.w)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    g = torch.randn_like(ref)
    torch.testing.assert_close(torch.autograd.grad(out, [z, lce.w], g), torch.autograd.grad(ref, [z, lce.w], g),
                               atol=1e-6, rtol=1e-6)
