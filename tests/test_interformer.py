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
@pytest.mark.parametrize("kw", [{}, {"flow": "separate"}, {"sequence": "mean"}, {"norm": "post"},
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
                                {"sequence": "mean"}, {"n_pma": 0, "n_recent": 0}])
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


def test_learns_the_planted_signal():
    """On the synthetic task InterFormer must beat chance clearly after a few epochs (the signal is learnable)."""
    sp = make_synthetic_seq(n=2000, n_users=100, max_len=8, seed=0)
    cfg = {"epochs": 3, "batch_size": 128, "progress": False, "lr": 3e-3}
    df = run_grid({"IF": ("InterFormer", {"layers": 1, "head_hidden": (32,)})}, sp, 8, [0], cfg)
    assert df.auc.iloc[0] > 0.65


def test_verdict_needs_consistent_gaps():
    from companion.compare import paired_gap, verdict
    import pandas as pd

    df = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3 + ["c"] * 3, "seed": [0, 1, 2] * 3,
                       "auc": [0.80, 0.81, 0.82, 0.79, 0.80, 0.81, 0.81, 0.79, 0.815]})
    clear, noisy = paired_gap(df, "a", "b"), paired_gap(df, "a", "c")
    assert clear["mean"] > 0 and clear["wins"] == 3
    assert verdict([clear]) == "reproduced"
    assert verdict([noisy]) == "not reproduced"  # wins on average but less than its spread
    assert verdict([clear, noisy]) == "partly"


def test_entropy_verdict():
    from companion.models.interformer import entropy_verdict

    assert entropy_verdict([0.98]) == "not tested"
    assert entropy_verdict([0.98, 0.90, 0.85]) == "reproduced"
    assert entropy_verdict([0.984, 0.975]) == "partly"
    assert entropy_verdict([0.90, 0.95]) == "not reproduced"
