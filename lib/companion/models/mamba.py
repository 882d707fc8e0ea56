"""Mamba (selective state-space) block that runs anywhere: pure PyTorch scans, the CUDA kernel when present.

The selective scan is the linear recurrence ``h_t = a_t * h_{t-1} + b_t`` with ``a_t = exp(delta_t A)`` and
``b_t = delta_t B_t u_t``, read out as ``y_t = C_t . h_t + D u_t``. On CPU we solve it with a parallel scan
(chunks advance together, then the chunk carries are scanned by the same method; or a log-depth
Hillis-Steele scan), which gives the sequential loop's result to float precision in about 2*sqrt(L)
vectorised steps instead of L.

For training, the default ``scan="checkpointed"`` keeps only the state entering each group of ``group`` steps
(at most 2,048, fewer when a batch of short sequences shares one 4 MB working buffer) and recomputes one group at a time in backward, where the gradient obeys the same recurrence
run in reverse; the whole (L, d_inner, d_state) state is never kept, which is what mamba-ssm's fused kernel
achieves by recomputing in its backward. The group-sized working set also stays in cache, which makes it faster
on CPU than keeping everything (``scan="chunked"``, kept as the reference and for the benchmark).

When ``mamba-ssm`` is installed and the input is on a GPU, its fused CUDA ``selective_scan_fn`` is used
instead (``use_kernel="auto"``); parameter names match ``mamba_ssm.modules.mamba_simple.Mamba`` so the
two modules can load each other's ``state_dict``.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

SCANS = ("checkpointed", "chunked", "logstep", "sequential")
GROUP = 2048  # steps per checkpointed group: the state entering each group is all backward keeps of the scan
GROUP_ELEMENTS = 1 << 20  # largest (batch, group, d, n) buffer of the checkpointed scan, in elements
RECOMPUTE_TOKENS = 4096  # tokens per recomputed piece of a BiMamba (recompute=True): its backward working set


# --------------------------------------------------------------------------------------------- scans
def scan_sequential(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Reference: the recurrence one step at a time along dim 1 (h_0 = 0)."""
    h = torch.zeros_like(b[:, 0])
    out = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        out.append(h)
    return torch.stack(out, 1)


def _logstep(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hillis-Steele scan along dim 1: returns (h, running product of a); ceil(log2 L) vectorised steps."""
    length, s = a.shape[1], 1
    while s < length:
        b_new = b.clone()
        b_new[:, s:] += a[:, s:] * b[:, :-s]
        a_new = a.clone()
        a_new[:, s:] *= a[:, :-s]
        a, b, s = a_new, b_new, s * 2
    return b, a


def _chunked(a: torch.Tensor, b: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Two-level scan: all chunks advance together through their T steps (vectorised across chunks), the
    chunk-to-chunk carries are scanned (recursively, same method), then each chunk is rerun from its carry.

    About 3*sqrt(L) vectorised steps instead of L and O(L) work, which is what a CPU wants: the log-step
    scan makes log(L) full passes over the (B, L, d, n) state and is memory-bound.
    """
    bsz, length = a.shape[:2]
    t_len = chunk or max(8, math.isqrt(length - 1) + 1)
    if length <= t_len:
        return scan_sequential(a, b)
    n_chunk = -(-length // t_len)
    pad = n_chunk * t_len - length
    if pad:
        a = torch.cat([a, a.new_ones((bsz, pad) + a.shape[2:])], 1)
        b = torch.cat([b, b.new_zeros((bsz, pad) + b.shape[2:])], 1)
    rest = a.shape[2:]
    a = a.view(bsz, n_chunk, t_len, *rest)
    b = b.view(bsz, n_chunk, t_len, *rest)
    # pass 1: every chunk from a zero state, keeping only its end state and the product of its a's
    h = torch.zeros_like(b[:, :, 0])
    p = torch.ones_like(h)
    for t in range(t_len):
        h = torch.addcmul(b[:, :, t], a[:, :, t], h)
        p = p * a[:, :, t]
        if t % 16 == 15:
            p.masked_fill_(p < 1e-30, 0.0)  # keep denormals (very slow on CPU) out; error < 1e-30 * |h|
    carry = _chunked(p, h, chunk)  # state after each chunk, by the same scan one level up
    # pass 2: rerun every chunk from its true entering state, now storing all states
    h = torch.cat([carry.new_zeros((bsz, 1) + rest), carry[:, :-1]], 1)
    out = torch.empty_like(b)
    for t in range(t_len):
        h = torch.addcmul(b[:, :, t], a[:, :, t], h)
        out[:, :, t] = h
    return out.view(bsz, n_chunk * t_len, *rest)[:, :length]


def _scan_into(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, h0: torch.Tensor | None = None,
               reverse: bool = False, chunk: int | None = None) -> torch.Tensor:
    """Solve h_t = a_t h_{t-1} + b_t from h_{-1} = h0 (``reverse``: g_t = b_t + a_t g_{t+1} from g_L = h0) along
    dim 1, writing every state into ``out`` (which may be ``b`` itself: each step reads b_t before writing out_t).

    The chunked two-level scan of :func:`_chunked` without its copies: no padding (the steps left over after
    whole chunks run one at a time from the last carry), states written in place, inputs may be strided views.
    """
    bsz, length = b.shape[:2]
    rest = b.shape[2:]
    t_len = chunk or max(8, math.isqrt(max(length - 1, 0)) + 1)
    n_chunk = length // t_len
    steps = range(length - 1, -1, -1) if reverse else range(length)
    if n_chunk < 2:  # too short to be worth two levels
        h = h0 if h0 is not None else b.new_zeros((bsz,) + rest)
        for t in steps:
            h = torch.addcmul(b[:, t], a[:, t], h, out=out[:, t])
        return out
    main = n_chunk * t_len
    span = slice(length - main, length) if reverse else slice(0, main)  # the leftover steps sit at the far end
    av, bv, ov = (x[:, span].unflatten(1, (n_chunk, t_len)) for x in (a, b, out))
    inner = range(t_len - 1, -1, -1) if reverse else range(t_len)
    # pass 1: each chunk from a zero state; its end state and the product of its coefficients
    h = b.new_zeros((bsz, n_chunk) + rest)
    p = torch.ones_like(h)
    for i, t in enumerate(inner):
        h = torch.addcmul(bv[:, :, t], av[:, :, t], h)
        p.mul_(av[:, :, t])
        if i % 16 == 15:
            p.masked_fill_(p < 1e-30, 0.0)  # keep denormals (very slow on CPU) out; error < 1e-30 * |h|
    # the true state at each chunk's end (its start, in reverse), one level up by the same scan
    ends = _scan_into(p, h, h, h0, reverse, chunk)
    first = h0 if h0 is not None else b.new_zeros((bsz,) + rest)
    if reverse:
        enter = torch.cat([ends[:, 1:], first[:, None]], 1)
    else:
        enter = torch.cat([first[:, None], ends[:, :-1]], 1)
    # pass 2: rerun every chunk from its true entering state, writing the states
    h = enter
    for t in inner:
        h = torch.addcmul(bv[:, :, t], av[:, :, t], h, out=ov[:, :, t])
    h = ends[:, 0] if reverse else ends[:, -1]
    for t in (range(length - main - 1, -1, -1) if reverse else range(main, length)):
        h = torch.addcmul(b[:, t], a[:, t], h, out=out[:, t])
    return out


def _discretize(u, delta, A, B):
    """(exp(delta A), delta B u) of one stretch of the sequence, (batch, T, d, n) each. log a is clamped at -80 so
    no denormal (very slow on CPU) appears; exp(-80) = 1.8e-35 is below anything a float32 state resolves."""
    dA = (delta[..., None] * A).clamp_(min=-80.0).exp_()
    bu = (delta * u)[..., None] * B[:, :, None, :]
    return dA, bu


def _contract_n(h, c):
    """sum_n h[b, l, d, n] c[b, l, n] as one batched matrix-vector product (einsum's plan is slower on CPU)."""
    return torch.matmul(h, c.unsqueeze(-1)).squeeze(-1)


def _contract_d(h, v):
    """sum_d h[b, l, d, n] v[b, l, d], batched like :func:`_contract_n` (about 5x faster than einsum on CPU)."""
    return torch.matmul(v.unsqueeze(-2), h).squeeze(-2)


def _group_states(u, delta, A, B, h0, chunk):
    """(dA, h) of one group entered from state ``h0``; h is written over bu's buffer."""
    dA, bu = _discretize(u, delta, A, B)
    return dA, _scan_into(dA, bu, bu, h0, chunk=chunk)


class _CheckpointedScan(torch.autograd.Function):
    """y_t = C_t . h_t of the selective scan, keeping for backward only the inputs and the state entering each group
    of ``group`` steps; backward recomputes one group at a time (last first) and runs the reversed recurrence
    from the gradient carried in from the group after it. Saved memory: O(L (d + n) + (L / group) d n) instead of
    O(L d n); three (batch, group, d, n) buffers live at a time, one group at a time, forward and backward."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, group, chunk):
        with torch.no_grad():
            y, states = _grouped_forward(u, delta, A, B, C, group, chunk, keep=True)
        ctx.save_for_backward(u, delta, A, B, C, states)
        ctx.group, ctx.chunk = group, chunk
        return y

    @staticmethod
    def backward(ctx, dy):
        u, delta, A, B, C, states = ctx.saved_tensors
        group, chunk = ctx.group, ctx.chunk
        length = u.shape[1]
        need = ctx.needs_input_grad
        g_u = torch.zeros_like(u) if need[0] else None
        g_delta = torch.zeros_like(delta) if need[1] else None
        g_A = torch.zeros_like(A) if need[2] else None
        g_B = torch.zeros_like(B) if need[3] else None
        g_C = torch.zeros_like(C) if need[4] else None
        carry = None  # a_s g_s at the first step s of the group after this one
        with torch.no_grad():
            starts = list(range(0, length, group))
            for k in reversed(range(len(starts))):
                sl = slice(starts[k], starts[k] + group)
                uk, dk, Bk, Ck, dyk = u[:, sl], delta[:, sl], B[:, sl], C[:, sl], dy[:, sl]
                h0 = states[k]
                dA, h = _group_states(uk, dk, A, Bk, h0, chunk)
                if g_C is not None:
                    g_C[:, sl] = _contract_d(h, dyk)
                # dL/dh_t: the direct part C_t dy_t, then g_t = direct_t + a_{t+1} g_{t+1}, in place
                g = dyk[..., None] * Ck[:, :, None, :]
                if carry is not None:
                    g[:, -1] += carry
                if g.shape[1] > 1:
                    _scan_into(dA[:, 1:], g[:, :-1], g[:, :-1], g[:, -1], reverse=True, chunk=chunk)
                carry = dA[:, 0] * g[:, 0]
                # dL/d(log a_t) = g_t h_{t-1} a_t (h_{-1} = h0), built in dA's buffer
                dA[:, 1:] *= h[:, :-1]
                dA[:, 0] *= h0
                g_log_a = dA.mul_(g)
                del h
                g_du = _contract_n(g, Bk)  # dL/d(delta u)
                if g_B is not None:
                    g_B[:, sl] = _contract_d(g, dk * uk)
                del g
                if g_A is not None:
                    g_A += (g_log_a * dk[..., None]).sum((0, 1))  # einsum picks a slow bmm here
                if g_delta is not None:
                    g_delta[:, sl] = g_log_a.mul_(A).sum(-1) + g_du * uk
                if g_u is not None:
                    g_u[:, sl] = g_du * dk
                del g_log_a
        return g_u, g_delta, g_A, g_B, g_C, None, None


def _grouped_forward(u, delta, A, B, C, group, chunk, keep=False):
    """The selective scan's readout C_t . h_t group by group, each entered from the state the previous one left."""
    bsz, length, d = u.shape
    h_last = u.new_zeros(bsz, d, A.shape[1])
    y = u.new_empty(bsz, length, d)
    states = []
    for t0 in range(0, length, group):
        sl = slice(t0, t0 + group)
        if keep:
            states.append(h_last)
        _, h = _group_states(u[:, sl], delta[:, sl], A, B[:, sl], h_last, chunk)
        h_last = h[:, -1].clone()
        y[:, sl] = _contract_n(h, C[:, sl])
        del h
    return y, (torch.stack(states) if keep else None)


def _scan_nograd(a, b, method, chunk):
    if method == "sequential":
        return scan_sequential(a, b)
    if method == "logstep":
        return _logstep(a, b)[0]
    if method == "chunked":
        return _chunked(a, b, chunk)
    raise ValueError(f"scan must be one of {SCANS}, got {method!r}")


class _LinearScan(torch.autograd.Function):
    """h = scan(a, b) with a hand-written backward: the gradient obeys the same recurrence, reversed."""

    @staticmethod
    def forward(ctx, a, b, method, chunk):
        with torch.no_grad():
            h = _scan_nograd(a, b, method, chunk)
        ctx.save_for_backward(a, h)
        ctx.method, ctx.chunk = method, chunk
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h = ctx.saved_tensors
        # g_t = grad_h_t + a_{t+1} g_{t+1}: a forward scan over the time-reversed sequence
        a_next = torch.cat([a[:, 1:], a.new_ones(a[:, :1].shape)], 1)
        g = _scan_nograd(a_next.flip(1), grad_h.flip(1), ctx.method, ctx.chunk).flip(1)
        h_prev = torch.cat([h.new_zeros(h[:, :1].shape), h[:, :-1]], 1)
        return g * h_prev, g, None, None


def linear_scan(a: torch.Tensor, b: torch.Tensor, method: str = "chunked", chunk: int | None = None) -> torch.Tensor:
    """Solve h_t = a_t h_{t-1} + b_t (h_0 = 0) along dim 1 for tensors of shape (B, L, ...)."""
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if method not in SCANS:
        raise ValueError(f"scan must be one of {SCANS}, got {method!r}")
    if chunk is not None and chunk < 2:
        raise ValueError(f"chunk must be >= 2 (or None: about sqrt(L)), got {chunk}")
    if method == "sequential" and torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return scan_sequential(a, b)  # plain autograd through the loop: the reference for gradients
    return _LinearScan.apply(a, b, method, chunk)


def selective_scan(u, delta, A, B, C, D=None, z=None, method: str = "checkpointed", chunk: int | None = None,
                   max_elements: int = 1 << 24, piece_elements: int = 1 << 20, group: int = GROUP,
                   group_elements: int | None = None, min_group: int = 64):
    """Mamba's selective scan on (batch, L, d) inputs; B, C are (batch, L, n); A is (d, n).

    ``method="checkpointed"`` (the default) runs the sequence in groups of ``group`` steps, each entered from the
    state the previous one left; for training it keeps only the inputs and those group-entering states and
    recomputes one group at a time in backward (:class:`_CheckpointedScan`), so saved memory no longer grows with
    L d n. No (batch, group, d, n) intermediate exceeds ``min(max_elements, group_elements)`` elements
    (``GROUP_ELEMENTS``, 4 MB of floats: backward holds three of them at once, and at the former 16 MB each they
    were the largest transient of a point backbone's training step): the group is shortened, down to
    ``min_group`` steps, until the whole batch fits, and beyond that the batch is split. ``group`` is the
    longest group.

    The other methods build the whole (batch, L, d, n) state for :func:`linear_scan`: the batch is split so no
    intermediate exceeds ``max_elements``, and a slice that is one sequence longer than that is split along its
    length (the state carried from one piece to the next). Without gradients the length pieces are
    ``piece_elements`` (4 MB of floats: cache-sized, measured about 2x faster per token on CPU than 64 MB
    pieces); with gradients autograd keeps every state anyway.
    """
    if method not in SCANS:
        raise ValueError(f"scan must be one of {SCANS}, got {method!r}")
    if group < 1:
        raise ValueError(f"group must be >= 1, got {group}")
    bsz, length, d = u.shape
    n = A.shape[1]
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (u, delta, A, B, C))
    outs = []
    if method == "checkpointed":
        budget, dn = min(max_elements, group_elements or GROUP_ELEMENTS), max(1, d * n)
        # shorten the group so the whole batch fits one budget-sized buffer (down to min_group steps): a group
        # costs about 3 sqrt(group) vectorised steps, so many short sequences side by side beat a few long ones
        group = max(1, min(group, length, budget // dn, max(min_group, budget // (bsz * dn))))
        step = max(1, budget // (group * dn))
        for s in range(0, bsz, step):
            sl = slice(s, s + step)
            args = (u[sl], delta[sl], A, B[sl], C[sl])
            outs.append(_CheckpointedScan.apply(*args, group, chunk) if grad
                        else _grouped_forward(*args, group, chunk)[0])
    else:
        step = max(1, max_elements // max(1, length * d * n))
        budget = max_elements if grad else min(max_elements, piece_elements)
        single = min(step, bsz) == 1
        piece = max(1, budget // (d * n)) if single and length * d * n > budget else length
        for s in range(0, bsz, step):
            sl = slice(s, s + step)
            h_last, ys = None, []
            for t0 in range(0, length, piece):
                tl = slice(t0, t0 + piece)
                log_a = delta[sl, tl, :, None] * A
                dA = torch.exp(log_a).masked_fill(log_a < -80, 0.0)  # keep denormals (slow on CPU) out
                bu = (delta[sl, tl] * u[sl, tl])[:, :, :, None] * B[sl, tl, None, :]
                if h_last is not None:  # enter this piece from the state the previous one left
                    bu = torch.cat([bu[:, :1] + dA[:, :1] * h_last[:, None], bu[:, 1:]], 1)
                h = linear_scan(dA, bu, method, chunk)
                h_last = h[:, -1]
                ys.append(torch.einsum("bldn,bln->bld", h, C[sl, tl]))
                del h, dA, bu
            outs.append(torch.cat(ys, 1))
    y = torch.cat(outs, 0)
    if D is not None:
        y = y + u * D
    if z is not None:
        y = y * F.silu(z)
    return y


@lru_cache(maxsize=1)
def cuda_selective_scan():
    """``mamba_ssm``'s CUDA selective_scan_fn, or None when the package is not installed."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or a build without its compiled extension
        return None
    return selective_scan_fn


# --------------------------------------------------------------------------------------------- block
class Mamba(nn.Module):
    """The Mamba mixer (in_proj, depthwise causal conv, selective SSM, gate, out_proj); mamba-ssm defaults.

    ``mask`` (B, L) marks real positions: masked ones are zeroed before the conv and get delta = 0, so they
    pass the state through unchanged and a padded sequence gives exactly the unpadded result.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2, dt_rank="auto",
                 dt_min: float = 0.001, dt_max: float = 0.1, dt_init_floor: float = 1e-4, dt_scale: float = 1.0,
                 conv_bias: bool = True, bias: bool = False, scan: str = "checkpointed", chunk: int | None = None,
                 use_kernel="auto", group: int = GROUP):
        super().__init__()
        if scan not in SCANS:
            raise ValueError(f"scan must be one of {SCANS}, got {scan!r}")
        if use_kernel not in ("auto", True, False):
            raise ValueError(f"use_kernel must be 'auto', True or False, got {use_kernel!r}")
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        if group < 1:
            raise ValueError(f"group must be >= 1, got {group}")
        self.scan, self.chunk, self.use_kernel, self.group = scan, chunk, use_kernel, group
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner, padding=d_conv - 1,
                                bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        std = self.dt_rank ** -0.5 * dt_scale
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(self.d_inner, 1))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def _kernel(self, x):
        if self.use_kernel is False or not x.is_cuda:
            if self.use_kernel is True and not x.is_cuda:
                raise RuntimeError("use_kernel=True needs a CUDA tensor: mamba-ssm's scan is CUDA-only")
            return None
        fn = cuda_selective_scan()
        if fn is None and self.use_kernel is True:
            raise RuntimeError("use_kernel=True but mamba-ssm is not installed (pip install mamba-ssm)")
        return fn

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        length = x.shape[1]
        xi, z = self.in_proj(x).chunk(2, dim=-1)
        if mask is not None:
            xi = xi * mask[..., None].to(xi.dtype)
        xi = F.silu(self.conv1d(xi.transpose(1, 2))[..., :length].transpose(1, 2))
        dt, B, C = torch.split(self.x_proj(xi), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        if mask is not None:
            delta = delta * mask[..., None].to(delta.dtype)
        A = -torch.exp(self.A_log.float())
        kernel = self._kernel(x)
        if kernel is not None:
            y = kernel(xi.transpose(1, 2).contiguous(), delta.transpose(1, 2).contiguous(), A,
                       B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), self.D.float(),
                       z=z.transpose(1, 2).contiguous(), delta_bias=None, delta_softplus=False).transpose(1, 2)
        else:
            y = selective_scan(xi, delta, A, B, C, self.D, z, method=self.scan, chunk=self.chunk, group=self.group)
        return self.out_proj(y)


class BiMamba(nn.Module):
    """Two Mamba mixers, one reading the sequence forward and one backward, outputs summed (BiLSTM-style).

    ``recompute=True`` keeps nothing of the two mixers for backward but their input and recomputes their forward
    there (``torch.utils.checkpoint``, non-reentrant): the (L, d_inner) projections, convolution and gates are
    what a Mamba mixer keeps besides its scan, several times what an attention mixer of the same width keeps.
    Each direction is recomputed on its own and the batch in pieces of about ``recompute_tokens`` tokens (whole
    sequences), so backward holds one direction of one piece at a time, not both directions of everything.
    """

    def __init__(self, d_model: int, recompute: bool = False, recompute_tokens: int | None = None, **kwargs):
        super().__init__()
        recompute_tokens = recompute_tokens or RECOMPUTE_TOKENS
        if recompute_tokens < 1:
            raise ValueError(f"recompute_tokens must be >= 1, got {recompute_tokens}")
        self.fwd = Mamba(d_model, **kwargs)
        self.bwd = Mamba(d_model, **kwargs)
        self.recompute, self.recompute_tokens = recompute, recompute_tokens

    def _back(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.bwd(x.flip(1), None if mask is None else mask.flip(1)).flip(1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if not (self.recompute and torch.is_grad_enabled()):
            return self.fwd(x, mask) + self._back(x, mask)
        from torch.utils.checkpoint import checkpoint

        step = max(1, self.recompute_tokens // max(1, x.shape[1]))
        outs = []
        for s in range(0, x.shape[0], step):
            xs, ms = x[s:s + step], None if mask is None else mask[s:s + step]
            outs.append(checkpoint(self.fwd, xs, ms, use_reentrant=False)
                        + checkpoint(self._back, xs, ms, use_reentrant=False))
        return outs[0] if len(outs) == 1 else torch.cat(outs)
