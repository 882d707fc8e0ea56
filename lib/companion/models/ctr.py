"""Non-sequential CTR baselines (DNN, FM, FmFM, DOT, DCNv2, DHEN, AutoInt+, xDeepFM, Wukong).

All of them sit on the shared :class:`FeatureEmbedding`. A non-sequential model sees each behaviour sequence
the way BARS/FuxiCTR feed sequences to such models: mean-pooled over its real events into one more feature
token. That early summarization is exactly what InterFormer argues against, so it is kept explicit here.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.schema import Schema
from .embedding import FeatureEmbedding
from .layers import CIN, DHENLayer, MLP, CrossNetV2, MultiHeadAttention, masked_mean, pairwise_dots


class TokenModel(nn.Module):
    """Base: the shared embedding plus ``feature_tokens(batch)`` -> [B, F, d] (pooled sequences appended)."""

    def __init__(self, schema: Schema, dim: int = 16):
        super().__init__()
        self.schema, self.dim = schema, dim
        self.emb = FeatureEmbedding(schema, dim)
        self.n_fields = self.emb.n_tokens + self.emb.n_sequences
        if self.n_fields < 2:
            raise ValueError(f"{type(self).__name__} needs at least two feature tokens; the schema has {self.n_fields}")

    def _all_columns(self, batch: dict) -> torch.Tensor:
        x = self.emb.tokens(batch)
        if self.emb.n_sequences:
            x = torch.cat([x, self.emb.pooled_sequences(batch)], 1)
        return x

    def feature_tokens(self, batch: dict) -> torch.Tensor:
        """[B, F, d]: the non-sequence tokens, then one mean-pooled token per sequence."""
        x = self._all_columns(batch)
        return x[..., : self.dim] if self.emb.extra else x

    def fuse_first_order(self, linear: "FirstOrder") -> None:
        """Serve ``linear``'s width-1 weights from this model's table (one lookup for both): its values move into
        an extra column, so a model built in the old order starts from the same weights."""
        self.emb.fuse_first_order(linear.emb)
        linear.emb = None
        self._fused = True

    def tokens_and_first_order(self, batch: dict, linear: "FirstOrder") -> tuple[torch.Tensor, torch.Tensor]:
        """Feature tokens [B, F, d] and the first-order term [B] of ``linear`` (fused or separate)."""
        if not getattr(self, "_fused", False):
            return self.feature_tokens(batch), linear(batch)
        full, d, n = self._all_columns(batch), self.dim, self.emb.n_tokens
        w = full[:, :n, d].sum(1)  # the same sums, in the same order, as FirstOrder.forward
        if self.emb.n_sequences:
            w = w + full[:, n:, d].sum(1)
        return full[..., :d], w + linear.bias


class FirstOrder(nn.Module):
    """The linear part of FM-style models: one scalar weight per feature value (a width-1 embedding)."""

    def __init__(self, schema: Schema):
        super().__init__()
        self.emb = FeatureEmbedding(schema, 1)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict) -> torch.Tensor:
        if self.emb is None:
            raise RuntimeError("this FirstOrder is fused into its model's embedding; call tokens_and_first_order")
        w = self.emb.tokens(batch).sum((1, 2))
        if self.emb.n_sequences:
            w = w + self.emb.pooled_sequences(batch).sum((1, 2))
        return w + self.bias


class DNN(TokenModel):
    def __init__(self, schema, dim=16, hidden=(256, 128), dropout=0.0, act="swish"):
        super().__init__(schema, dim)
        self.mlp = MLP(self.n_fields * dim, list(hidden), 1, act=act, dropout=dropout)

    def forward(self, batch):
        return self.mlp(self.feature_tokens(batch).flatten(1)).squeeze(-1)


class FM(TokenModel):
    """Factorization machine: first order plus all pairwise inner products (the sum-square trick)."""

    def __init__(self, schema, dim=16):
        super().__init__(schema, dim)
        self.linear = FirstOrder(schema)
        self.fuse_first_order(self.linear)

    def forward(self, batch):
        x, first = self.tokens_and_first_order(batch, self.linear)
        pair = 0.5 * (x.sum(1).pow(2) - x.pow(2).sum(1)).sum(-1)
        return first + pair


class FmFM(TokenModel):
    """Field-matrixed FM: each field pair (i, j) has its own d x d matrix, v_i^T W_ij v_j."""

    def __init__(self, schema, dim=16):
        super().__init__(schema, dim)
        f = self.n_fields
        self.iu = torch.triu_indices(f, f, offset=1)
        self.w = nn.Parameter(torch.eye(dim).repeat(self.iu.shape[1], 1, 1) + 0.01 * torch.randn(self.iu.shape[1], dim, dim))
        self.linear = FirstOrder(schema)
        self.fuse_first_order(self.linear)

    def forward(self, batch):
        x, first = self.tokens_and_first_order(batch, self.linear)
        vi, vj = x[:, self.iu[0]], x[:, self.iu[1]]
        pair = torch.einsum("bpd,pde,bpe->b", vi, self.w, vj)
        return first + pair


class DOT(TokenModel):
    """DLRM-style dot interaction: pairwise inner products beside the flattened tokens, then an MLP."""

    def __init__(self, schema, dim=16, hidden=(256, 128), act="swish"):
        super().__init__(schema, dim)
        f = self.n_fields
        self.mlp = MLP(f * dim + f * (f - 1) // 2, list(hidden), 1, act=act)

    def forward(self, batch):
        x = self.feature_tokens(batch)
        return self.mlp(torch.cat([x.flatten(1), pairwise_dots(x)], 1)).squeeze(-1)


class DCNv2(TokenModel):
    """DCN-V2: low-rank cross network and an MLP, ``parallel`` (side by side) or ``stacked`` (cross then MLP)."""

    def __init__(self, schema, dim=16, cross_layers=3, rank=32, hidden=(256, 128), structure="parallel", act="swish"):
        super().__init__(schema, dim)
        if structure not in ("parallel", "stacked"):
            raise ValueError(f"structure must be 'parallel' or 'stacked', got {structure!r}")
        width = self.n_fields * dim
        self.structure = structure
        self.cross = CrossNetV2(width, cross_layers, rank)
        self.mlp = MLP(width, list(hidden), act=act)
        self.head = nn.Linear(width + self.mlp.d_out if structure == "parallel" else self.mlp.d_out, 1)

    def forward(self, batch):
        x = self.feature_tokens(batch).flatten(1)
        if self.structure == "parallel":
            h = torch.cat([self.cross(x), self.mlp(x)], 1)
        else:
            h = self.mlp(self.cross(x))
        return self.head(h).squeeze(-1)


class DHEN(TokenModel):
    """Deep Hierarchical Ensemble Network: stacked layers that each ensemble DOT and DCN plus a shortcut."""

    def __init__(self, schema, dim=16, layers=2, modules=("dot", "dcn"), hidden=(256, 128), rank=32, act="swish"):
        super().__init__(schema, dim)
        f = self.n_fields
        self.layers = nn.Sequential(*[DHENLayer(f, f, dim, modules, rank) for _ in range(layers)])
        self.mlp = MLP(f * dim, list(hidden), 1, act=act)

    def forward(self, batch):
        return self.mlp(self.layers(self.feature_tokens(batch)).flatten(1)).squeeze(-1)


class AutoIntPlus(TokenModel):
    """AutoInt+: residual multi-head self-attention over feature tokens, plus a parallel DNN."""

    def __init__(self, schema, dim=16, layers=2, heads=2, hidden=(256, 128), act="swish"):
        super().__init__(schema, dim)
        self.attn = nn.ModuleList(MultiHeadAttention(dim, heads) for _ in range(layers))
        self.res = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        width = self.n_fields * dim
        self.dnn = MLP(width, list(hidden), act=act)
        self.head = nn.Linear(width + self.dnn.d_out, 1)

    def forward(self, batch):
        x0 = self.feature_tokens(batch)
        x = x0
        for attn, res in zip(self.attn, self.res):
            x = torch.relu(attn(x, x) + res(x))
        return self.head(torch.cat([x.flatten(1), self.dnn(x0.flatten(1))], 1)).squeeze(-1)


class XDeepFM(TokenModel):
    """xDeepFM: linear part + CIN (explicit vector-wise interactions) + DNN."""

    def __init__(self, schema, dim=16, cin=(32, 32), hidden=(256, 128), act="swish"):
        super().__init__(schema, dim)
        self.linear = FirstOrder(schema)
        self.cin = CIN(self.n_fields, cin)
        self.cin_out = nn.Linear(self.cin.d_out, 1)
        self.dnn = MLP(self.n_fields * dim, list(hidden), 1, act=act)
        self.fuse_first_order(self.linear)

    def forward(self, batch):
        x, first = self.tokens_and_first_order(batch, self.linear)
        return first + (self.cin_out(self.cin(x)) + self.dnn(x.flatten(1))).squeeze(-1)


class WukongLayer(nn.Module):
    """Wukong layer: a factorization-machine block and a linear-compress block, concatenated, residual + norm."""

    def __init__(self, n_in: int, dim: int, n_fmb: int, n_lcb: int, rank: int = 8, hidden=(128,), act="swish"):
        super().__init__()
        self.proj = nn.Parameter(torch.randn(n_in, rank) / n_in ** 0.5)  # optimized FM: X X^T Y, Y is n_in x rank
        self.fmb = MLP(n_in * rank, list(hidden), n_fmb * dim, act=act)
        self.lcb = nn.Parameter(torch.randn(n_in, n_lcb) / n_in ** 0.5)
        self.n_out, self.dim = n_fmb + n_lcb, dim
        self.shortcut = nn.Identity() if n_in == self.n_out else nn.Linear(n_in, self.n_out, bias=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        inter = x @ (x.transpose(1, 2) @ self.proj)  # [B, n, rank]: X X^T Y without forming the n x n matrix
        fm = self.fmb(inter.flatten(1)).view(x.shape[0], -1, self.dim)
        lc = torch.einsum("bnd,nm->bmd", x, self.lcb)
        short = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(x.transpose(1, 2)).transpose(1, 2)
        return self.norm(torch.cat([fm, lc], 1) + short)


class Wukong(TokenModel):
    """Wukong (stacked FM blocks; Zhang et al. 2024), small configuration."""

    def __init__(self, schema, dim=16, layers=2, n_fmb=None, n_lcb=None, rank=8, hidden=(256, 128), act="swish"):
        super().__init__(schema, dim)
        f = self.n_fields
        n_fmb, n_lcb = n_fmb or f // 2 + 1, n_lcb or f - f // 2
        blocks, n = [], f
        for _ in range(layers):
            blocks.append(WukongLayer(n, dim, n_fmb, n_lcb, rank, act=act))
            n = n_fmb + n_lcb
        self.layers = nn.Sequential(*blocks)
        self.mlp = MLP(n * dim, list(hidden), 1, act=act)

    def forward(self, batch):
        return self.mlp(self.layers(self.feature_tokens(batch)).flatten(1)).squeeze(-1)
