"""Building blocks shared by the CTR model zoo and InterFormer.

Token tensors are ``[B, F, d]`` (F feature tokens of width d); sequences are ``[B, T, d]`` with a boolean mask
``[B, T]`` that is True on real events. Every block here respects that mask, so the amount of padding never
changes a model's output.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "swish": nn.SiLU, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Module):
    """Linear layers with an activation (Swish by default, as the paper's benchmarks use) and optional dropout."""

    def __init__(self, d_in: int, hidden: list[int] | tuple[int, ...], d_out: int | None = None,
                 act: str = "swish", dropout: float = 0.0, last_act: bool = False):
        super().__init__()
        layers, prev = [], d_in
        for h in hidden:
            layers += [nn.Linear(prev, h), activation(act)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = h
        if d_out is not None:
            layers.append(nn.Linear(prev, d_out))
            if last_act:
                layers.append(activation(act))
            prev = d_out
        self.net = nn.Sequential(*layers)
        self.d_out = prev

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over axis -2 of ``x`` [..., T, d] counting only mask-True rows (zero where a row has none)."""
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(-2) / m.sum(-2).clamp_min(1.0)


def recent_selector(mask: torch.Tensor, k: int, dtype=torch.float32) -> torch.Tensor:
    """[B, k, T] one-hot rows picking the k most recent real events of each row (most recent first; a zero row
    where the history is shorter), so ``recent_selector(mask, k) @ x`` is :func:`recent_tokens`."""
    from_end = mask.flip(-1).long().cumsum(-1).flip(-1)  # number of real events at or after each position
    ranks = torch.arange(1, k + 1, device=mask.device).view(1, k, 1)
    return (mask.unsqueeze(1) & (from_end.unsqueeze(1) == ranks)).to(dtype)


def recent_tokens(x: torch.Tensor, mask: torch.Tensor, k: int, selector: torch.Tensor | None = None) -> torch.Tensor:
    """The k most recent real events of ``x`` [B, T, d], most recent first; zeros where a history is shorter.

    Works for pre- or post-padding because it counts real events from the end instead of trusting positions.
    ``selector``: a :func:`recent_selector` of the same mask, when the caller reuses it across layers.
    """
    return (recent_selector(mask, k, x.dtype) if selector is None else selector) @ x


def mask_positions(mask: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """Position of each real event counted over real events only (pads get the position of the last real one)."""
    return (mask.long().cumsum(-1) - 1).clamp_min(0) + offset


# --------------------------------------------------------------------------- rotary position embeddings
def rope_frequencies(dim: int, base: float = 10000.0) -> torch.Tensor:
    if dim % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {dim}")
    return base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)


def rope_cache(positions: torch.Tensor, dh: int, base: float = 10000.0, dtype=torch.float32, heads: int | None = None):
    """cos and signed sin of RoPE's angles for ``positions`` [B, T], with every pair's value repeated on both of its
    channels (sin with the sign of the rotation folded in). Layout [B, 1, T, dh] for tensors split into heads, or
    with ``heads`` the token layout [B, T, heads * dh] (the same table tiled per head), which rotates the output of
    a projection before it is split. Computed once per forward and shared by every layer reading those positions."""
    inv = rope_frequencies(dh, base).to(positions.device)
    ang = positions.to(torch.float32).unsqueeze(-1) * inv  # [B, T, dh/2]
    cos, sin = ang.cos(), ang.sin()
    cos2 = torch.stack((cos, cos), -1).flatten(-2).to(dtype)
    sin2 = torch.stack((-sin, sin), -1).flatten(-2).to(dtype)
    if heads is None:
        return cos2.unsqueeze(1), sin2.unsqueeze(1)
    return cos2.repeat(1, 1, heads), sin2.repeat(1, 1, heads)


def apply_rope(x: torch.Tensor, positions: torch.Tensor | None = None, base: float = 10000.0,
               cache: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Rotate pairs of channels (2i, 2i+1) of ``x`` [B, H, T, dh] by angles proportional to ``positions`` [B, T]
    (or by a :func:`rope_cache`, in either layout: [B, T, H * dh] tokens rotate every head's pairs at once).

    After rotation the dot product of a query at position m with a key at n depends on m - n only. Written as
    x * cos + swap(x) * sin; each output is the same two products and one sum as the pairwise formula, so the
    result is bit-identical to it.
    """
    dh = x.shape[-1]
    if cache is None:
        if positions is None:
            raise ValueError("apply_rope needs positions or a rope_cache")
        cache = rope_cache(positions, dh, base, x.dtype)
    cos, sin = cache
    swapped = torch.stack((x[..., 1::2], x[..., 0::2]), -1).flatten(-2)  # (x1, x0, x3, x2, ...); faster than flip
    return x * cos + swapped * sin


def key_attention_mask(key_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] real-key mask -> the [B, 1, 1, T] boolean mask attention takes; a row with no real key attends to
    everything instead of producing NaN (its output is masked downstream)."""
    return (key_mask | ~key_mask.any(-1, keepdim=True))[:, None, None, :]


class MultiHeadAttention(nn.Module):
    """Multi-head attention with a key-padding mask and optional RoPE on queries and keys.

    Set ``keep_weights=True`` to store the last attention map (for plots); otherwise the fused kernel runs.
    """

    def __init__(self, dim: int, heads: int = 2, rope: bool = False, dropout: float = 0.0, kv_dim: int | None = None):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads, self.rope, self.dropout = dim, heads, rope, dropout
        kv_dim = kv_dim or dim
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.keep_weights = False
        self.last_weights: torch.Tensor | None = None

    def _split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.dim // self.heads).transpose(1, 2)

    def forward(self, q_in, kv_in, key_mask=None, q_pos=None, k_pos=None, rope=None, attn_mask=None, q=None):
        """``rope``: a token-layout :func:`rope_cache` (``heads=self.heads``) for the shared positions of a
        self-attention, computed once per forward by the caller; ``attn_mask``: a ready :func:`key_attention_mask`;
        ``q``: queries already projected and split into heads, in which case ``q_in`` is ignored.
        RoPE rotates the projections before they are split into heads, while they are contiguous."""
        dh = self.dim // self.heads
        k, v = self.kv(kv_in).chunk(2, -1)
        if q is None:
            q = self.q(q_in)
            if self.rope:
                q = apply_rope(q, cache=rope if rope is not None else rope_cache(q_pos, dh, dtype=q.dtype, heads=self.heads))
            q = self._split(q)
        if self.rope:
            k = apply_rope(k, cache=rope if rope is not None else rope_cache(k_pos, dh, dtype=k.dtype, heads=self.heads))
        k, v = self._split(k), self._split(v)
        if attn_mask is None and key_mask is not None:
            attn_mask = key_attention_mask(key_mask)
        if self.keep_weights:
            q = q.expand(k.shape[0], -1, -1, -1)
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            w = scores.softmax(-1)
            self.last_weights = w.detach()
            o = w @ v
        else:
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                               dropout_p=self.dropout if self.training else 0.0)
        b, h, t, dh = o.shape
        return self.out(o.transpose(1, 2).reshape(b, t, h * dh))


class PMA(nn.Module):
    """Pooling by Multi-head Attention (Set Transformer): learned seed queries attend over a masked set.

    The seeds do not depend on the example, so the attention is folded into the key projection: a seed's score
    against token x is q . (W_k x + b_k) = (W_k^T q) . x + const, and the constant drops out of the softmax; the
    values pass through the pooling linearly, sum_t w_t (W_v x_t + b_v) = W_v (sum_t w_t x_t) + b_v because the
    weights sum to one. So no key or value is projected per token: the set is scored against H * seeds vectors
    and pooled once, then projected. The same function as keys-and-values attention, to float rounding.
    """

    def __init__(self, dim: int, seeds: int, heads: int = 2):
        super().__init__()
        self.seeds = nn.Parameter(torch.randn(seeds, dim) * dim ** -0.5)
        self.attn = MultiHeadAttention(dim, heads)

    def pool_weights(self, x: torch.Tensor, mask: torch.Tensor | None, attn_mask: torch.Tensor | None = None):
        """[B, H * seeds, T] attention weights of every head's seeds over the set (rows head-major)."""
        a, (b, t, d) = self.attn, x.shape
        h, n, dh = a.heads, self.seeds.shape[0], a.dim // a.heads
        q = a.q(self.seeds).view(n, h, dh).transpose(0, 1)  # [H, n, dh]
        w_k = a.kv.weight[: a.dim].view(h, dh, -1)  # [H, dh, d_in]
        u = (q @ w_k) * dh ** -0.5  # [H, n, d_in]: each head's seeds pulled back through the key projection
        scores = (x @ u.reshape(h * n, -1).t()).transpose(1, 2).reshape(b, h, n, t)
        if attn_mask is None and mask is not None:
            attn_mask = key_attention_mask(mask)
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        return scores.softmax(-1).view(b, h * n, t)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """[B, H * seeds, d_in] pooled inputs (``pool_weights @ x``) -> [B, seeds, dim]: values, then output."""
        a, b = self.attn, pooled.shape[0]
        h, n, dh = a.heads, self.seeds.shape[0], a.dim // a.heads
        w_v = a.kv.weight[a.dim :].view(h, dh, -1)
        o = torch.einsum("bhnd,hed->bnhe", pooled.view(b, h, n, -1), w_v) + a.kv.bias[a.dim :].view(h, dh)
        return a.out(o.reshape(b, n, h * dh))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.project(self.pool_weights(x, mask, attn_mask) @ x)


# --------------------------------------------------------------------------- token-level helpers
class LCE(nn.Module):
    """Linear Compressed Embedding: a learned linear mix along the token axis, [B, N, d] -> [B, M, d]."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_in, n_out) / math.sqrt(n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # one [M, N] @ [N, B * d] matmul: the long axis B * d is the output's columns (about 3x faster forward and
        # backward than einsum's [B * d, N] @ [N, M] on CPU, whose output is only M wide)
        b, n, d = x.shape
        y = self.w.t() @ x.transpose(0, 1).reshape(n, b * d)
        return y.view(-1, b, d).transpose(0, 1)


GATES = ("self", "printed", "none")


class Gating(nn.Module):
    """Self-gating of summary tokens.

    ``self``: Z * sigmoid(MLP(Z)) (the Highway-Transformer gate the paper cites; keeps the sign of Z).
    ``printed``: act(Z * MLP(Z)) exactly as the paper's equation is typeset, with act in sigmoid|tanh|identity.
    ``none``: Z unchanged (the paper's "without gating" ablation).
    """

    def __init__(self, dim: int, kind: str = "self", act: str = "sigmoid"):
        super().__init__()
        if kind not in GATES:
            raise ValueError(f"gating must be one of {GATES}, got {kind!r}")
        if act not in ("sigmoid", "tanh", "identity"):
            raise ValueError(f"gating activation must be sigmoid, tanh or identity, got {act!r}")
        self.kind, self.act = kind, act
        self.proj = nn.Linear(dim, dim) if kind != "none" else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return z
        if self.kind == "self":
            return z * torch.sigmoid(self.proj(z))
        y = z * self.proj(z)
        return torch.sigmoid(y) if self.act == "sigmoid" else torch.tanh(y) if self.act == "tanh" else y


class MaskNetMerge(nn.Module):
    """MaskNet over k aligned sequences: S' = LCE(S * MLP_mask(S)), [B, k, T, d] -> [B, T, d]."""

    def __init__(self, k: int, dim: int, reduction: int = 1, act: str = "swish"):
        super().__init__()
        width = k * dim
        self.mask_mlp = nn.Sequential(nn.Linear(width, max(width // reduction, 1)), activation(act),
                                      nn.Linear(max(width // reduction, 1), width))
        self.lce = nn.Linear(width, dim)

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        b, k, t, d = seqs.shape
        s = seqs.permute(0, 2, 1, 3).reshape(b, t, k * d)
        return self.lce(s * self.mask_mlp(s))


# --------------------------------------------------------------------------- interaction modules
class CrossNetV2(nn.Module):
    """DCNv2 cross layers x_{l+1} = x0 * (U (V x_l) + b) + x_l, low-rank when ``rank`` is set."""

    def __init__(self, width: int, layers: int = 2, rank: int | None = 32):
        super().__init__()
        if rank is None or rank >= width:
            self.maps = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        else:
            self.maps = nn.ModuleList(nn.Sequential(nn.Linear(width, rank, bias=False), nn.Linear(rank, width))
                                      for _ in range(layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for m in self.maps:
            x = x0 * m(x) + x
        return x


_TRIU_CACHE: dict = {}


def _triu_flat(f: int, device) -> torch.Tensor:
    """Flat indices i * f + j of the strict upper triangle of an f x f matrix, cached per (f, device)."""
    key = (f, str(device))
    if key not in _TRIU_CACHE:
        iu = torch.triu_indices(f, f, offset=1)
        _TRIU_CACHE[key] = (iu[0] * f + iu[1]).to(device)
    return _TRIU_CACHE[key]


def pairwise_dots(x: torch.Tensor) -> torch.Tensor:
    """Upper-triangle inner products of the tokens of ``x`` [B, F, d] -> [B, F(F-1)/2] (row-major pair order).

    The pair indices are cached, and the gather is an ``index_select`` on the flattened Gram matrix, whose
    backward is a plain scatter-add instead of advanced indexing's ``index_put``."""
    f = x.shape[1]
    return (x @ x.transpose(1, 2)).flatten(1).index_select(1, _triu_flat(f, x.device))


class DHENLayer(nn.Module):
    """One DHEN layer: Norm(sum of interaction modules + shortcut), tokens [B, n_in, d] -> [B, n_out, d].

    ``modules`` picks the ensemble from ``dot`` (pairwise inner products, projected) and ``dcn`` (low-rank cross
    network on the flattened tokens, projected); the shortcut is a linear map (identity when shapes match).
    """

    def __init__(self, n_in: int, n_out: int, dim: int, modules=("dot", "dcn"), cross_rank: int = 32,
                 cross_layers: int = 1):
        super().__init__()
        unknown = set(modules) - {"dot", "dcn"}
        if unknown or not modules:
            raise ValueError(f"DHEN modules must be a non-empty subset of ('dot', 'dcn'), got {modules}")
        self.n_out, self.dim = n_out, dim
        width = n_in * dim
        self.dot = nn.Linear(n_in * (n_in - 1) // 2, n_out * dim) if "dot" in modules else None
        if "dcn" in modules:
            self.cross = CrossNetV2(width, cross_layers, cross_rank)
            self.cross_out = nn.Linear(width, n_out * dim)
        else:
            self.cross = None
        self.shortcut = nn.Identity() if n_in == n_out else nn.Linear(width, n_out * dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        y = self.shortcut(flat)
        if self.dot is not None:
            y = y + self.dot(pairwise_dots(x))
        if self.cross is not None:
            y = y + self.cross_out(self.cross(flat))
        return self.norm(y.view(-1, self.n_out, self.dim))


class CIN(nn.Module):
    """Compressed Interaction Network (xDeepFM): explicit vector-wise interactions, sum-pooled per map."""

    def __init__(self, n_fields: int, layer_sizes=(32, 32)):
        super().__init__()
        self.convs, prev = nn.ModuleList(), n_fields
        for h in layer_sizes:
            self.convs.append(nn.Conv1d(prev * n_fields, h, 1))
            prev = h
        self.d_out = sum(layer_sizes)

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        b, m, d = x0.shape
        xs, outs = x0, []
        for conv in self.convs:
            z = torch.einsum("bhd,bmd->bhmd", xs, x0).reshape(b, -1, d)
            xs = torch.relu(conv(z))
            outs.append(xs.sum(-1))
        return torch.cat(outs, 1)


class TransformerBlock(nn.Module):
    """Pre-norm Transformer encoder block (masked self-attention + FFN), optionally with RoPE."""

    def __init__(self, dim: int, heads: int = 2, ffn_mult: int = 2, rope: bool = False, dropout: float = 0.0):
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, rope=rope, dropout=dropout)
        self.ffn = MLP(dim, [dim * ffn_mult], dim)

    def forward(self, x, mask, pos=None, rope=None, attn_mask=None):
        h = self.n1(x)
        x = x + self.attn(h, h, key_mask=mask, q_pos=pos, k_pos=pos, rope=rope, attn_mask=attn_mask)
        return x + self.ffn(self.n2(x))


class TargetAttention(nn.Module):
    """DIN's activation unit: score(event, target) from an MLP over [e, t, e-t, e*t], masked weighted sum."""

    def __init__(self, dim: int, hidden=(64, 32), softmax: bool = False, act: str = "swish"):
        super().__init__()
        self.mlp = MLP(4 * dim, list(hidden), 1, act=act)
        self.softmax = softmax
        self.last_weights: torch.Tensor | None = None

    def forward(self, seq: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        t = target.unsqueeze(1).expand_as(seq)
        s = self.mlp(torch.cat([seq, t, seq - t, seq * t], -1)).squeeze(-1)
        if self.softmax:
            w = s.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
        else:
            w = s * mask
        self.last_weights = w.detach()
        return (w.unsqueeze(-1) * seq).sum(1)
