import itertools

import numpy as np
import pytest
import torch
from torch import nn

from companion.data.synthetic import make_synthetic_ctr
from companion.nas import Arch, BlockChoice, NASRecNet, SuperNet, linear_roles, make_space
from companion.nas.training import SubnetEval, SupernetConfig, evaluate_subnet, train_supernet


@pytest.fixture(scope="module")
def splits():
    return make_synthetic_ctr(n_samples=600, n_dense=3, n_sparse=5, vocab_size=16, seed=0)


def _shake(model: nn.Module, seed: int = 0):
    """Random weights everywhere (LayerNorm affine included), so equal outputs are not an artefact of the init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _hand_made_archs(space):
    """Every dense x sparse operator pair, both mergers, single and multi-source inputs, self-gating."""
    n = space.num_blocks
    archs = []
    for k, (op, sop) in enumerate(itertools.product(space.dense_ops, space.sparse_ops)):
        blocks = []
        for i in range(n):
            d = space.dense_dims[(i + k) % len(space.dense_dims)]
            t = space.sparse_dims[(i + k) % len(space.sparse_dims)]
            srcs = tuple(range(max(0, i + 1 - 3), i + 1))  # up to three sources, ending with the previous block
            if op in ("gating", "sum"):
                left, right = (i, i) if i % 2 else (0, i)  # self-gating on odd blocks, stem x previous on even ones
                b = BlockChoice(op, sop, d, t, (), srcs, left, right, bool((i + k) % 2), bool(i % 2))
            else:
                b = BlockChoice(op, sop, d, t, srcs, srcs[-1:] if i % 2 else srcs, -1, -1, bool((i + k) % 2), bool(i % 2))
            blocks.append(b)
        archs.append(space.validate(Arch(tuple(blocks))))
    return archs


@pytest.mark.parametrize("name", ["nasrec-full", "nasrec-small"])
@pytest.mark.parametrize("layernorm", [True, False])
def test_supernet_and_standalone_agree_on_every_operator_and_connection(splits, name, layernorm):
    space = make_space(name, "tiny")
    sn = SuperNet(splits.schema, space, layernorm=layernorm)
    _shake(sn)
    batch = splits.train.batch(slice(0, 32))
    rng = np.random.default_rng(0)
    archs = _hand_made_archs(space) + [space.sample(rng) for _ in range(30)]
    seen_ops = set()
    for a in archs:
        y_super = sn(batch, a)
        model = sn.extract(a)
        assert isinstance(model, NASRecNet)
        y_alone = model(batch)
        assert y_super.shape == (32,) and torch.isfinite(y_super).all()
        assert y_super.std() > 1e-4  # outputs depend on the input
        torch.testing.assert_close(y_alone, y_super, rtol=1e-5, atol=1e-5)
        seen_ops |= {(a.blocks[i].dense_op, a.blocks[i].sparse_op) for i in a.active_blocks()}
    assert seen_ops == set(itertools.product(space.dense_ops, space.sparse_ops))


def test_extracted_weights_are_the_supernet_slice(splits):
    space = make_space("nasrec-small", "tiny")
    sn = SuperNet(splits.schema, space)
    _shake(sn, 1)
    a = space.sample(np.random.default_rng(3))
    d = space.dense_dims[0]
    last = BlockChoice("fc", "efc", d, space.sparse_dims[0], dense_in=(0,), sparse_in=(0,))  # FC on the raw dense features
    a = Arch(a.blocks[:-1] + (last,))
    model = sn.extract(a)
    i = space.num_blocks - 1
    w_alone = model.get_submodule(f"blocks.{i}.fc.linear").weight
    w_super = sn.get_submodule(f"blocks.{i}.fc.linear").weight
    n_dense = len(splits.schema.dense)
    assert w_alone.shape == (d, n_dense)
    assert torch.equal(w_alone, w_super[:d, :n_dense])  # first d outputs, the stem's columns
    # a supernet weight outside the path (an output row beyond d) does not change the path's output
    batch = splits.train.batch(slice(0, 16))
    before = sn(batch, a)
    with torch.no_grad():
        w_super[d:].add_(10.0)
    torch.testing.assert_close(sn(batch, a), before)
    with torch.no_grad():
        w_super[:d].add_(torch.randn(w_super[:d].shape))  # ...and one on the path does
    assert not torch.allclose(sn(batch, a), before)


def test_full_path_runs_and_schema_without_dense_fields():
    space = make_space("nasrec-full", "tiny")
    splits = make_synthetic_ctr(n_samples=200, n_dense=0, n_sparse=4, vocab_size=8, seed=1)
    sn = SuperNet(splits.schema, space)
    batch = splits.train.batch(slice(0, 8))
    assert sn(batch, space.full_path()).shape == (8,)
    a = space.sample(0)
    torch.testing.assert_close(sn.extract(a)(batch), sn(batch, a), rtol=1e-5, atol=1e-5)


def test_path_training_touches_only_the_path(splits):
    space = make_space("nasrec-full", "tiny")
    sn = SuperNet(splits.schema, space)
    a = space.sample(np.random.default_rng(5))
    sn(splits.train.batch(slice(0, 16)), a).sum().backward()
    live = {f"blocks.{i}." for i in a.active_blocks()}
    for name, p in sn.named_parameters():
        if name.startswith("blocks."):
            on_path = any(name.startswith(s) for s in live)
            b = a.blocks[int(name.split(".")[1])]
            op = name.split(".")[2]
            used = op in (b.dense_op, b.sparse_op) or (op == "ds_merge" and b.dense_to_sparse) or (op == "fm_merge" and b.sparse_to_dense)
            assert (p.grad is not None) == (on_path and used), name


def test_module_names_and_swapping_a_linear_takes_effect(splits):
    space = make_space("nasrec-small", "tiny")
    a = space.sample(np.random.default_rng(7))
    model = NASRecNet(splits.schema, space, a)
    roles = linear_roles(model)
    assert {r["op"] for r in roles} <= {"fc", "dot", "efc", "dense_to_sparse", "sparse_to_dense", "head"}
    assert all(isinstance(r["module"], nn.Linear) for r in roles)
    assert {r["block"] for r in roles if r["block"] is not None} == set(a.active_blocks())
    batch = splits.train.batch(slice(0, 16))
    before = model(batch)
    name = next(r["name"] for r in roles if r["op"] == "efc")
    parent, child = name.rsplit(".", 1)
    old = model.get_submodule(name)
    new = nn.Linear(old.in_features, old.out_features)
    with torch.no_grad():
        new.weight.zero_()
        new.bias.zero_()
    setattr(model.get_submodule(parent), child, new)
    assert not torch.allclose(model(batch), before)


def test_supernet_training_lowers_loss_and_scoring_leaves_weights_alone(splits):
    space = make_space("nasrec-small", "tiny")
    torch.manual_seed(0)
    sn = SuperNet(splits.schema, space)
    hist = train_supernet(sn, splits, SupernetConfig(steps=60, batch_size=64, lr=0.05, warmup_frac=0.2, progress=False))
    assert 0 < hist["full_path_steps"] < 12
    assert np.mean(hist["loss"][-15:]) < np.mean(hist["loss"][:15])
    state = {k: v.clone() for k, v in sn.state_dict().items()}
    a = space.sample(0)
    r0 = evaluate_subnet(sn, a, splits, SubnetEval(finetune_steps=0))
    r1 = evaluate_subnet(sn, a, splits, SubnetEval(finetune_steps=30, batch_size=64))
    assert r1["logloss"] != r0["logloss"] and 0 < r1["logloss"] < 2
    assert all(torch.equal(state[k], v) for k, v in sn.state_dict().items())
    # same seed, same numbers
    assert evaluate_subnet(sn, a, splits, SubnetEval(finetune_steps=30, batch_size=64))["logloss"] == r1["logloss"]


# ----------------------------------------------------------------------------- weight sharing: slice vs mask
def _widest(space, arch):
    """The same wiring and operators with every width at its maximum (nothing to slice or mask)."""
    from dataclasses import replace

    return Arch(tuple(replace(b, dense_dim=space.max_dense, sparse_dim=space.max_tokens) for b in arch.blocks))


def _pair(schema, space, layernorm=True, seed=0):
    sl = SuperNet(schema, space, layernorm=layernorm, sharing="slice")
    _shake(sl, seed)
    mk = SuperNet(schema, space, layernorm=layernorm, sharing="mask")
    mk.load_state_dict(sl.state_dict())  # same parameter names and shapes: one set of weights, two ways to share it
    return sl, mk


def test_mask_mode_fc_is_the_full_width_computation_with_the_masked_units_zeroed(splits):
    space = make_space("nasrec-small", "tiny", num_blocks=1)
    sl, mk = _pair(splits.schema, space)
    d = space.dense_dims[0]
    arch = Arch((BlockChoice("fc", "efc", d, space.sparse_dims[0], dense_in=(0,), sparse_in=(0,)),))
    batch = splits.train.batch(slice(0, 16))
    out = mk.body(batch, arch).dense
    lin, ln = mk.blocks[0].fc.linear, mk.blocks[0].fc.norm
    full = torch.relu(torch.nn.functional.layer_norm(batch["dense"] @ lin.weight.T + lin.bias, (space.max_dense,),
                                                     ln.weight, ln.bias, ln.eps))
    assert out.shape == (16, space.max_dense)
    torch.testing.assert_close(out[:, :d], full[:, :d])
    assert torch.count_nonzero(out[:, d:]) == 0
    # slicing normalises over the d units alone, so the two modes really differ below the full width
    sliced = sl.body(batch, arch).dense
    assert sliced.shape == (16, d) and not torch.allclose(sliced, out[:, :d], atol=1e-3)


@pytest.mark.parametrize("name", ["nasrec-full", "nasrec-small"])
def test_slice_and_mask_agree_at_full_width_and_differ_below_it(splits, name):
    space = make_space(name, "tiny")
    sl, mk = _pair(splits.schema, space)
    batch = splits.train.batch(slice(0, 32))
    rng = np.random.default_rng(1)
    archs = _hand_made_archs(space) + [space.sample(rng) for _ in range(20)]
    differ = 0
    for a in archs:
        torch.testing.assert_close(mk(batch, _widest(space, a)), sl(batch, _widest(space, a)), rtol=1e-5, atol=1e-5)
        differ += not torch.allclose(mk(batch, a), sl(batch, a), atol=1e-4)
    assert differ >= len(archs) - 2  # nearly every narrower path sees other units in its LayerNorms


def test_without_layernorm_masking_is_slicing_except_attention(splits):
    """Zeroed units feed later layers nothing, so without normalisation masking and slicing are one function;
    attention is the exception: NASRec attends over the masked (zero) tokens too."""
    small = make_space("nasrec-small", "tiny")
    sl, mk = _pair(splits.schema, small, layernorm=False)
    batch = splits.train.batch(slice(0, 32))
    rng = np.random.default_rng(2)
    for a in _hand_made_archs(small) + [small.sample(rng) for _ in range(20)]:
        torch.testing.assert_close(mk(batch, a), sl(batch, a), rtol=1e-3, atol=1e-4)  # activations reach ~40 here
    full = make_space("nasrec-full", "tiny", dense_ops=("fc",), sparse_ops=("attn",))
    sl, mk = _pair(splits.schema, full, layernorm=False)
    t = full.sparse_dims[0]
    a = Arch(tuple(BlockChoice("fc", "attn", full.max_dense, t, dense_in=(i,), sparse_in=(i,))
                   for i in range(full.num_blocks)))
    assert not torch.allclose(mk(batch, a), sl(batch, a), atol=1e-4)
    torch.testing.assert_close(mk(batch, _widest(full, a)), sl(batch, _widest(full, a)), rtol=1e-4, atol=1e-4)


def test_mask_mode_has_no_standalone_twin_and_rejects_unknown_modes(splits):
    space = make_space("nasrec-small", "tiny")
    mk = SuperNet(splits.schema, space, sharing="mask")
    with pytest.raises(ValueError, match="sharing='slice'"):
        mk.extract(space.sample(0))
    with pytest.raises(ValueError, match="sharing must be one of"):
        SuperNet(splits.schema, space, sharing="prune")


@pytest.mark.parametrize("sharing", ["slice", "mask"])
def test_dense_to_sparse_merger_reads_the_dense_output_before_the_fm_term(splits, sharing):
    """NASRec projects the operators' dense output into tokens, then adds the FM term to the dense output."""
    space = make_space("nasrec-small", "tiny", num_blocks=1)
    sn = SuperNet(splits.schema, space, sharing=sharing)
    _shake(sn, 3)
    t = space.sparse_dims[0]
    arch = Arch((BlockChoice("fc", "efc", space.dense_dims[1], t, dense_in=(0,), sparse_in=(0,),
                             dense_to_sparse=True, sparse_to_dense=True),))
    batch = splits.train.batch(slice(0, 8))
    before = sn.body(batch, arch)
    with torch.no_grad():
        sn.blocks[0].fm_merge.linear.weight.mul_(3.0)
    after = sn.body(batch, arch)
    n_tok = space.max_tokens if sharing == "mask" else t
    torch.testing.assert_close(after.sparse[:, n_tok:], before.sparse[:, n_tok:])  # merger tokens: untouched
    assert not torch.allclose(after.dense, before.dense)


def test_attention_keeps_nasrecs_two_units_per_head():
    assert make_space("nasrec-full").attn_heads == 8 and make_space("nasrec-full").emb_dim == 16
    tiny = make_space("nasrec-full", "tiny")
    assert tiny.emb_dim // tiny.attn_heads == 2
