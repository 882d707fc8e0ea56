"""Rankitect's low-level building blocks, registered in the operator registry (kinds ``rk_dense``, ``rk_sparse``,
``rk_fusion``).

Rankitect (arXiv 2311.08430) composes a ranking model from raw inputs, a 2-D dense tensor ``[B, d]`` and a 3-D
embedding tensor ``[B, F, E]``, up to the logit. Its block list is not public; these blocks are our reconstruction
from NASRec (same authors, same dense/sparse formulation) and Drs.NAS (FC, gating, sum, dot product, EFC,
attention, dense->sparse and sparse->dense fusion). Every block has an analytic cost in multiply-adds
(``OpSpec.flops``; 2 FLOPs each), written once with ``+``, ``*`` and :func:`mx` so that the same formula takes
plain sizes (a candidate's exact FLOPs, checked before training) or expected sizes as tensors (the DNAS
expected-FLOPs penalty, mean-field).

Every dense block is called ``op(dense_sources, tokens)``: a list of dense tensors (one per source it reads) and
the concatenated tokens ``[B, t_in, E]``; it returns ``[B, D]``. Sparse blocks map ``[B, t_in, E] -> [B, T, E]``.
Context keys: ``d_in`` (summed dense width), ``widths`` (each dense source's width), ``t_in`` (input tokens),
``D`` / ``T`` (output width / tokens), ``E`` (embedding width), ``k`` (dot-product token compression).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import OpSpec, REGISTRY, register

DENSE_OPS = ("fc", "gating", "sum", "dot", "fm")
SPARSE_OPS = ("efc", "attn")
FUSIONS = ("none", "d2s", "s2d", "both")
PREFIX = "rk_"  # registry names are rk_<op>, so they never clash with NASRec's entries


def mx(values):
    """``max`` that also takes tensors (differentiable where the sizes are expectations)."""
    values = list(values)
    if any(isinstance(v, torch.Tensor) for v in values):
        return torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in values]).max()
    return max(values)


def fm_vector(xs: torch.Tensor) -> torch.Tensor:
    """FM's second-order term per embedding unit, ``(sum_f e_f)^2 - sum_f e_f^2`` over tokens -> [B, E]."""
    s = xs.sum(1)
    return s * s - (xs * xs).sum(1)


# ----------------------------------------------------------------------------- dense blocks
class FC(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.linear, self.norm = nn.Linear(c["d_in"], c["D"]), nn.LayerNorm(c["D"])

    def forward(self, xd, xs):
        return F.relu(self.norm(self.linear(torch.cat(xd, 1))))


class Gating(nn.Module):
    """``sigmoid(W_g x) * (W_v x)``: a multiplicative (second-order) dense interaction."""

    def __init__(self, c):
        super().__init__()
        self.gate, self.value = nn.Linear(c["d_in"], c["D"]), nn.Linear(c["d_in"], c["D"])
        self.norm = nn.LayerNorm(c["D"])

    def forward(self, xd, xs):
        x = torch.cat(xd, 1)
        return self.norm(torch.sigmoid(self.gate(x)) * self.value(x))


class Sum(nn.Module):
    """The dense sources zero-padded to the widest and added, then one FC (NASRec's Sum, over any number of
    sources): cheaper than FC of the concatenation, at the price of mixing units of different sources."""

    def __init__(self, c):
        super().__init__()
        self.w = max(c["widths"])
        self.proj, self.norm = nn.Linear(self.w, c["D"]), nn.LayerNorm(c["D"])

    def forward(self, xd, xs):
        s = sum(F.pad(x, (0, self.w - x.shape[1])) for x in xd)
        return self.norm(self.proj(s))


class Dot(nn.Module):
    """DLRM-style dot product: the dense inputs become one token, the tokens are compressed to ``k`` along the token
    axis, every pairwise inner product of the ``k + 1`` tokens is taken (one ``bmm``) and projected to ``D``."""

    def __init__(self, c):
        super().__init__()
        k, E = c["k"], c["E"]
        self.dense_proj = nn.Linear(c["d_in"], E)
        self.token_proj = nn.Linear(c["t_in"], k)
        self.proj, self.norm = nn.Linear((k + 1) * k // 2, c["D"]), nn.LayerNorm(c["D"])
        i, j = torch.tril_indices(k + 1, k + 1, offset=-1)
        self.register_buffer("i", i, persistent=False)
        self.register_buffer("j", j, persistent=False)

    def forward(self, xd, xs):
        tok = self.dense_proj(torch.cat(xd, 1)).unsqueeze(1)
        xt = self.token_proj(xs.transpose(1, 2)).transpose(1, 2)
        z = torch.cat([tok, xt], 1)
        g = torch.bmm(z, z.transpose(1, 2))
        return self.norm(self.proj(g[:, self.i, self.j]))


class FMProj(nn.Module):
    """Sparse -> dense through an FM: the FM vector of the tokens beside the dense inputs, then one FC."""

    def __init__(self, c):
        super().__init__()
        self.linear, self.norm = nn.Linear(c["d_in"] + c["E"], c["D"]), nn.LayerNorm(c["D"])

    def forward(self, xd, xs):
        return F.relu(self.norm(self.linear(torch.cat(list(xd) + [fm_vector(xs)], 1))))


# ----------------------------------------------------------------------------- sparse blocks
class EFC(nn.Module):
    """FC along the token axis (embedded FC / linear-3d): ``t_in`` tokens -> ``T`` mixed tokens."""

    def __init__(self, c):
        super().__init__()
        self.linear, self.norm = nn.Linear(c["t_in"], c["T"]), nn.LayerNorm(c["E"])

    def forward(self, xs):
        return F.relu(self.norm(self.linear(xs.transpose(1, 2)).transpose(1, 2)))


class Attn(nn.Module):
    """Attention-style token mixing: project to ``T`` tokens, one single-head self-attention with a residual, LN."""

    def __init__(self, c):
        super().__init__()
        E = c["E"]
        self.token_proj = nn.Linear(c["t_in"], c["T"])
        self.q, self.k, self.v = nn.Linear(E, E), nn.Linear(E, E), nn.Linear(E, E)
        self.norm, self.scale = nn.LayerNorm(E), 1.0 / math.sqrt(E)

    def forward(self, xs):
        x = self.token_proj(xs.transpose(1, 2)).transpose(1, 2)
        a = torch.softmax(torch.matmul(self.q(x), self.k(x).transpose(1, 2)) * self.scale, -1)
        return self.norm(x + torch.matmul(a, self.v(x)))


# ----------------------------------------------------------------------------- fusion blocks
class D2S(nn.Module):
    """Dense -> sparse: the layer's dense output projected to one extra token."""

    def __init__(self, c):
        super().__init__()
        self.linear = nn.Linear(c["D"], c["E"])

    def forward(self, yd):
        return self.linear(yd).unsqueeze(1)


class S2D(nn.Module):
    """Sparse -> dense: the FM vector of the layer's tokens projected to the dense width (added to it)."""

    def __init__(self, c):
        super().__init__()
        self.linear = nn.Linear(c["E"], c["D"])

    def forward(self, ys):
        return self.linear(fm_vector(ys))


# ----------------------------------------------------------------------------- registration
def _dot_macs(c):
    k, E = c["k"], c["E"]
    return c["d_in"] * E + c["t_in"] * k * E + (k + 1) ** 2 * E + (k + 1) * k // 2 * c["D"]


# Multiply-adds per sample. Elementwise work, LayerNorm, softmax and biases are free (cost.flops' convention).
_SPECS = [
    ("fc", "rk_dense", FC, lambda c: c["d_in"] * c["D"], "FC over the concatenated dense sources",
     "crossbar: the FC"),
    ("gating", "rk_dense", Gating, lambda c: 2 * c["d_in"] * c["D"], "sigmoid gate times a value projection",
     "crossbar: gate and value FCs; sigmoid and product digital"),
    ("sum", "rk_dense", Sum, lambda c: mx(c["widths"]) * c["D"], "padded sum of the dense sources, then FC",
     "crossbar: the FC; the sum digital"),
    ("dot", "rk_dense", Dot, lambda c: _dot_macs(c),
     "DLRM-style pairwise dot products of a dense token and k compressed tokens, then FC",
     "crossbar: projections and output FC; the Gram matrix digital"),
    ("fm", "rk_dense", FMProj, lambda c: (c["d_in"] + c["E"]) * c["D"], "FM vector of the tokens beside the dense sources, FC",
     "crossbar: the FC; the FM digital"),
    ("efc", "rk_sparse", EFC, lambda c: c["t_in"] * c["T"] * c["E"], "FC along the token axis",
     "crossbar: the token FC"),
    ("attn", "rk_sparse", Attn, lambda c: c["t_in"] * c["T"] * c["E"] + 3 * c["T"] * c["E"] ** 2 + 2 * c["T"] ** 2 * c["E"],
     "token projection, then single-head self-attention with a residual",
     "crossbar: token projection, Q/K/V; attention scores digital"),
    ("d2s", "rk_fusion", D2S, lambda c: c["D"] * c["E"], "dense output -> one extra token", "crossbar: the FC"),
    ("s2d", "rk_fusion", S2D, lambda c: c["E"] * c["D"], "FM of the output tokens -> added to the dense output",
     "crossbar: the FC; the FM digital"),
]


for _name, _kind, _cls, _flops, _doc, _pim in _SPECS:
    if PREFIX + _name not in REGISTRY:
        register(OpSpec(PREFIX + _name, _kind, (lambda cls: lambda c: cls(c))(_cls), _flops, _pim, _doc, ("rankitect",)))


def macs(op: str, ctx: dict):
    """Multiply-adds of one Rankitect block (``op`` without the ``rk_`` prefix) for the sizes in ``ctx``."""
    return REGISTRY[PREFIX + op].flops(ctx)


def build(op: str, ctx: dict) -> nn.Module:
    return REGISTRY[PREFIX + op].build(ctx)
