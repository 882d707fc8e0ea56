import math

import pytest
import torch

from companion.models.mamba import (BiMamba, Mamba, _chunked, _scan_into, cuda_selective_scan, linear_scan,
                                   scan_sequential, selective_scan)
from companion.points.profile import saved_activation_bytes


def rand_ab(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g) * 0.3 + 0.7
    return a, torch.randn(shape, generator=g)


@pytest.mark.parametrize("method", ["chunked", "logstep"])
@pytest.mark.parametrize("length", [1, 7, 64, 257, 2000])
def test_parallel_scan_equals_sequential(method, length):
    a, b = rand_ab((2, length, 5, 3))
    ref = scan_sequential(a, b)
    assert (linear_scan(a, b, method) - ref).abs().max() < 1e-5 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("chunk", [2, 5, 33])
def test_chunk_sizes_agree(chunk):
    a, b = rand_ab((1, 500, 4, 2), seed=chunk)
    assert torch.allclose(linear_scan(a, b, "chunked", chunk), scan_sequential(a, b), atol=1e-5)


def test_scan_gradient_matches_autograd_of_loop():
    a, b = rand_ab((2, 300, 3, 4))
    a.requires_grad_(), b.requires_grad_()
    w = torch.randn(2, 300, 3, 4)
    ga, gb = torch.autograd.grad((scan_sequential(a, b) * w).sum(), (a, b))
    ga2, gb2 = torch.autograd.grad((linear_scan(a, b) * w).sum(), (a, b))
    assert torch.allclose(ga, ga2, atol=1e-4, rtol=1e-4) and torch.allclose(gb, gb2, atol=1e-5, rtol=1e-4)


def test_selective_scan_modes_agree_and_batch_split_is_exact():
    g = torch.Generator().manual_seed(3)
    bsz, L, d, n = 3, 120, 6, 4
    u, delta = torch.randn(bsz, L, d, generator=g), torch.rand(bsz, L, d, generator=g) * 0.2
    A = -torch.rand(d, n, generator=g) * 4
    B, C = torch.randn(bsz, L, n, generator=g), torch.randn(bsz, L, n, generator=g)
    D, z = torch.randn(d, generator=g), torch.randn(bsz, L, d, generator=g)
    ref = selective_scan(u, delta, A, B, C, D, z, method="sequential")
    assert torch.allclose(selective_scan(u, delta, A, B, C, D, z), ref, atol=1e-5)
    assert torch.allclose(selective_scan(u, delta, A, B, C, D, z, max_elements=L * d * n), ref, atol=1e-5)


@pytest.mark.parametrize("pieces", [1.5, 7, 120])
def test_length_split_carries_the_state_exactly(pieces):
    """A budget below one sequence splits it along its length; the carried state must give the unsplit result
    (a piece that restarted from zero would differ by far more than the tolerance), with and without grad."""
    g = torch.Generator().manual_seed(4)
    L, d, n = 120, 6, 4
    u, delta = torch.randn(2, L, d, generator=g), torch.rand(2, L, d, generator=g) * 0.05
    A = -torch.rand(d, n, generator=g) * 0.5  # slow decay: the state carries far
    B, C = torch.randn(2, L, n, generator=g), torch.randn(2, L, n, generator=g)
    ref = selective_scan(u, delta, A, B, C, method="sequential")
    budget = int(L * d * n / pieces)
    with torch.no_grad():
        for method in ("chunked", "checkpointed"):
            assert torch.allclose(selective_scan(u, delta, A, B, C, method=method, max_elements=budget), ref, atol=1e-5)
        assert torch.allclose(selective_scan(u[:1], delta[:1], A, B[:1], C[:1], method="chunked", piece_elements=budget),
                              ref[:1], atol=1e-5)
    restart = torch.cat([selective_scan(u[:, s:s + 40], delta[:, s:s + 40], A, B[:, s:s + 40], C[:, s:s + 40])
                         for s in range(0, L, 40)], 1)
    assert (restart - ref).abs().max() > 1e-2  # the check above can fail
    for method in ("chunked", "checkpointed"):
        uu = u.clone().requires_grad_()
        selective_scan(uu, delta, A, B, C, method=method, max_elements=budget).sum().backward()
        uu2 = u.clone().requires_grad_()
        selective_scan(uu2, delta, A, B, C, method="sequential").sum().backward()
        assert torch.allclose(uu.grad, uu2.grad, atol=1e-4)


def test_mamba_block_scans_agree_and_mask_equals_unpadded():
    torch.manual_seed(0)
    m = Mamba(16, d_state=8)
    x = torch.randn(2, 40, 16)
    y = m(x)
    m.scan = "sequential"
    assert torch.allclose(m(x), y, atol=1e-5)
    m.scan = "chunked"
    assert torch.allclose(m(x), y, atol=1e-5)
    m.scan = "checkpointed"
    xp = torch.cat([x, torch.randn(2, 9, 16)], 1)
    mask = torch.ones(2, 49, dtype=torch.bool)
    mask[:, 40:] = False
    assert torch.allclose(m(xp, mask)[:, :40], y, atol=1e-6)
    bi = BiMamba(16, d_state=8)  # backward branch sees the filler first: the mask must still make it exact
    assert torch.allclose(bi(xp, mask)[:, :40], bi(x), atol=1e-5)


def test_mamba_is_causal_and_bimamba_is_not():
    torch.manual_seed(1)
    x = torch.randn(1, 30, 8)
    x2 = x.clone()
    x2[:, 20:] += 1.0
    m, bi = Mamba(8), BiMamba(8)
    assert torch.allclose(m(x)[:, :20], m(x2)[:, :20], atol=1e-6)
    assert not torch.allclose(bi(x)[:, :20], bi(x2)[:, :20], atol=1e-4)


def test_parameter_names_match_mamba_ssm():
    names = {n for n, _ in Mamba(32).named_parameters()}
    assert names == {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight",
                     "dt_proj.bias", "A_log", "D", "out_proj.weight"}
    m = Mamba(32)
    assert m.d_inner == 64 and m.dt_rank == 2 and m.A_log.shape == (64, 16)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="scan must be"):
        Mamba(8, scan="fft")
    with pytest.raises(ValueError, match="same shape"):
        linear_scan(torch.ones(1, 3, 2), torch.ones(1, 4, 2))
    with pytest.raises(RuntimeError, match="CUDA"):
        Mamba(8, use_kernel=True)(torch.randn(1, 4, 8))


def mamba_inputs(bsz, length, d, n, seed=0, dtype=torch.float32):
    """Inputs as a Mamba block makes them: delta log-uniform in [1e-3, 0.1], A = -(1..n) (mamba-ssm's init)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(bsz, length, d, generator=g, dtype=dtype)
    delta = torch.exp(torch.rand(bsz, length, d, generator=g, dtype=dtype) * math.log(100.0) + math.log(1e-3))
    A = -torch.arange(1, n + 1, dtype=dtype).repeat(d, 1) * (0.5 + torch.rand(d, n, generator=g, dtype=dtype))
    B, C = torch.randn(bsz, length, n, generator=g, dtype=dtype), torch.randn(bsz, length, n, generator=g, dtype=dtype)
    return u, delta, A, B, C


@pytest.mark.parametrize("length", [1, 2, 9, 64, 301, 2048])
def test_in_place_scan_both_directions_equal_the_loop(length):
    """The checkpointed path's scan: from a given state, forward and reversed, written into b's own buffer, on a
    strided view (a[:, 1:], as backward uses it), at lengths with and without leftover steps after whole chunks."""
    a_full, b = rand_ab((2, length + 1, 3, 2), seed=length)
    a, b = a_full[:, 1:], b[:, 1:].clone()
    h0 = torch.randn(2, 3, 2, generator=torch.Generator().manual_seed(1))
    fwd, rev = torch.empty_like(b), torch.empty_like(b)
    h = h0
    for t in range(length):
        h = a[:, t] * h + b[:, t]
        fwd[:, t] = h
    h = h0
    for t in range(length - 1, -1, -1):
        h = a[:, t] * h + b[:, t]
        rev[:, t] = h
    for chunk in (None, 2, 5):
        assert torch.allclose(_scan_into(a, b, torch.empty_like(b), h0, chunk=chunk), fwd, atol=1e-5)
        assert torch.allclose(_scan_into(a, b, torch.empty_like(b), h0, reverse=True, chunk=chunk), rev, atol=1e-5)
        inplace = b.clone()
        _scan_into(a, inplace, inplace, h0, reverse=True, chunk=chunk)
        assert torch.allclose(inplace, rev, atol=1e-5)
    assert torch.allclose(_scan_into(a, b, torch.empty_like(b)), _chunked(a.contiguous(), b), atol=1e-5)


@pytest.mark.parametrize("bsz,length,group", [(3, 1000, 256), (2, 100, 256), (1, 512, 128), (2, 77, 1), (2, 300, 7)])
def test_checkpointed_scan_forward_equals_chunked(bsz, length, group):
    """L not a multiple of the group, L below one group, batch > 1, groups of one step: the same values."""
    u, delta, A, B, C = mamba_inputs(bsz, length, 8, 4, seed=length)
    D, z = torch.randn(8), torch.randn(bsz, length, 8)
    with torch.no_grad():
        ref = selective_scan(u, delta, A, B, C, D, z, method="chunked")
        out = selective_scan(u, delta, A, B, C, D, z, method="checkpointed", group=group)
    assert ref.abs().max() > 0.5  # a real signal, not a tensor of zeros
    assert (out - ref).abs().max() < 1e-5
    with torch.enable_grad():  # the training path (autograd Function) gives the same forward
        xs = [t.clone().requires_grad_() for t in (u, delta, A, B, C)]
        assert (selective_scan(*xs, D, z, method="checkpointed", group=group).detach() - ref).abs().max() < 1e-5


@pytest.mark.parametrize("bsz,length,group", [(2, 300, 64), (3, 50, 64), (1, 128, 32), (2, 97, 1)])
def test_checkpointed_scan_gradients_match_autograd_of_the_loop(bsz, length, group):
    """Float64, every input: the hand-written backward (group by group, last first) against plain autograd through
    the sequential recurrence; a wrong carry between groups would be off by far more than the tolerance."""
    xs = [t.requires_grad_() for t in mamba_inputs(bsz, length, 6, 4, seed=group, dtype=torch.float64)]
    w = torch.randn(bsz, length, 6, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    ref = torch.autograd.grad((selective_scan(*xs, method="sequential") * w).sum(), xs)
    got = torch.autograd.grad((selective_scan(*xs, method="checkpointed", group=group) * w).sum(), xs)
    for name, r, o in zip("u delta A B C".split(), ref, got):
        assert r.abs().max() > 1e-3, name
        assert torch.allclose(o, r, rtol=1e-9, atol=1e-11), name


def test_checkpointed_scan_gradients_float32_and_partial_inputs():
    u, delta, A, B, C = mamba_inputs(2, 700, 8, 4, seed=1)
    uu, dd = u.clone().requires_grad_(), delta.clone().requires_grad_()
    ref = torch.autograd.grad(selective_scan(uu, dd, A, B, C, method="sequential").square().sum(), (uu, dd))
    uu2, dd2 = u.clone().requires_grad_(), delta.clone().requires_grad_()
    got = torch.autograd.grad(selective_scan(uu2, dd2, A, B, C, group=128).square().sum(), (uu2, dd2))
    for r, o in zip(ref, got):
        assert torch.allclose(o, r, rtol=1e-3, atol=1e-3 * r.abs().max().item())


def test_checkpointed_scan_saves_only_inputs_and_group_states():
    """What autograd keeps: the five inputs and one (batch, d, n) state per group, nothing of size L d n; today's
    chunked scan keeps at least exp(delta A) and all states."""
    bsz, length, d, n, group = 2, 2048, 16, 8, 256
    xs = [t.requires_grad_() for t in mamba_inputs(bsz, length, d, n)]
    inputs = sum(t.numel() * 4 for t in xs)
    states = (length // group) * bsz * d * n * 4
    ckpt = saved_activation_bytes(lambda: selective_scan(*xs, method="checkpointed", group=group))
    full = saved_activation_bytes(lambda: selective_scan(*xs, method="chunked"))
    assert ckpt <= inputs + states
    assert full >= 2 * bsz * length * d * n * 4
    assert full > 5 * ckpt


@pytest.mark.gpu
def test_cuda_kernel_matches_pure_pytorch():  # pragma: no cover - GPU only
    """Deselected on CPU (``make test``); ``make test-gpu`` runs it and fails, not skips, without CUDA + mamba-ssm."""
    assert torch.cuda.is_available(), "this check needs a CUDA GPU"
    assert cuda_selective_scan() is not None, "this check needs mamba-ssm (pip install -e '.[cuda]')"
    torch.manual_seed(0)
    m = Mamba(64).cuda()
    x = torch.randn(4, 1024, 64, device="cuda")
    with torch.no_grad():
        y_kernel = m(x)
        m.use_kernel = False
        y_torch = m(x)
    assert torch.allclose(y_kernel, y_torch, atol=1e-4, rtol=1e-3)


def test_bimamba_recompute_in_pieces_equals_keeping_everything():
    """Recomputing each direction in pieces of whole sequences (here 3 pieces of 2, 2 and 1 sequences) gives the
    outputs and gradients of the plain path, and autograd keeps nothing of the mixers but their input."""
    torch.manual_seed(0)
    plain = BiMamba(8, d_state=4)
    pieces = BiMamba(8, d_state=4, recompute=True, recompute_tokens=64)
    pieces.load_state_dict(plain.state_dict())
    x = torch.randn(5, 32, 8)
    mask = torch.ones(5, 32, dtype=torch.bool)
    mask[4, 20:] = False
    w = torch.randn(5, 32, 8)
    out = {}
    for name, m in (("plain", plain), ("pieces", pieces)):
        xx = x.clone().requires_grad_()
        y = m(xx, mask)
        (y * w).sum().backward()
        out[name] = (y.detach(), xx.grad, [p.grad for p in m.parameters()])
    (y0, gx0, gp0), (y1, gx1, gp1) = out["plain"], out["pieces"]
    assert torch.allclose(y1, y0, atol=1e-6) and torch.allclose(gx1, gx0, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-5) for a, b in zip(gp1, gp0))
    xx = x.clone().requires_grad_()
    assert saved_activation_bytes(lambda: pieces(xx, mask)) == x.numel() * 4 + mask.numel()
    assert saved_activation_bytes(lambda: plain(xx, mask)) > 20 * x.numel() * 4


def test_checkpointed_scan_shortens_the_group_to_fit_the_batch():
    """Many short sequences: the group shrinks (not below min_group) so the whole batch runs side by side in one
    budget-sized buffer, which shows in the states kept (one per group); the numbers stay the recurrence's."""
    u, delta, A, B, C = mamba_inputs(6, 300, 8, 4, seed=3)
    inputs = sum(t.numel() * 4 for t in (u, delta, A, B, C))
    state = 6 * 8 * 4 * 4  # one (batch, d, n) float state
    xs = [t.clone().requires_grad_() for t in (u, delta, A, B, C)]
    budget = 6 * 100 * 8 * 4  # room for the 6 sequences x 100 steps
    saved = saved_activation_bytes(lambda: selective_scan(*xs, group_elements=budget, min_group=64))
    assert saved == inputs + 3 * state  # groups of 100 steps: 3 states
    saved = saved_activation_bytes(lambda: selective_scan(*xs, group_elements=budget, min_group=150))
    assert saved == inputs + 2 * state  # not below min_group: groups of 150, the batch split in two
    y = selective_scan(*xs, group_elements=budget, min_group=64)
    ys = [t.clone().requires_grad_() for t in (u, delta, A, B, C)]
    ref = selective_scan(*ys, method="sequential")
    assert torch.allclose(y, ref, atol=1e-5)
    g = torch.autograd.grad(y.square().sum(), xs)
    g_ref = torch.autograd.grad(ref.square().sum(), ys)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item()) for a, b in zip(g, g_ref))
