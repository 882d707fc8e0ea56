"""Sequential CTR baselines: DIN, DIEN (without its auxiliary loss), BST and a TransAct-style model.

The k behaviour sequences of a schema are aligned event by event (item id, category, ... of the same
event), so an event's embedding is the concatenation of its k field embeddings. The *target* of a sequence is
the sparse field it shares its embedding table with (``Field.share_with``: history items vs. the candidate
item); a sequence without one gets a learned projection of the non-sequence tokens as its target.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.schema import Schema
from .embedding import FeatureEmbedding
from .layers import MLP, TargetAttention, TransformerBlock, mask_positions, masked_mean, recent_tokens


class SequenceModel(nn.Module):
    def __init__(self, schema: Schema, dim: int = 16):
        super().__init__()
        if not schema.sequence:
            raise ValueError(f"{type(self).__name__} needs at least one sequence field in the schema")
        self.schema, self.dim = schema, dim
        self.emb = FeatureEmbedding(schema, dim)
        self.n_tok, self.k = self.emb.n_tokens, self.emb.n_sequences
        sparse_names = [f.name for f in schema.sparse]
        n_dense = len(schema.dense)
        self.target_index = [n_dense + sparse_names.index(f.share_with) if f.share_with in sparse_names else -1
                             for f in schema.sequence]
        missing = sum(i < 0 for i in self.target_index)
        self.target_proj = nn.Linear(self.n_tok * dim, missing * dim) if missing else None

    @property
    def event_dim(self) -> int:
        return self.k * self.dim

    def inputs(self, batch):
        """Non-sequence tokens [B, N, d], events [B, T, k*d], their mask [B, T] and the target [B, k*d]."""
        x = self.emb.tokens(batch)
        seq, mask = self.emb.sequences(batch)
        b, k, t, d = seq.shape
        events = seq.permute(0, 2, 1, 3).reshape(b, t, k * d)
        mask = mask.any(1)
        extra = self.target_proj(x.flatten(1)).view(b, -1, d) if self.target_proj is not None else None
        parts, j = [], 0
        for i in self.target_index:
            if i >= 0:
                parts.append(x[:, i])
            else:
                parts.append(extra[:, j])
                j += 1
        return x, events, mask, torch.cat(parts, -1)


class DIN(SequenceModel):
    """Deep Interest Network: target attention pools the history into one vector per candidate."""

    def __init__(self, schema, dim=16, att_hidden=(64, 32), hidden=(256, 128), softmax=False, act="swish"):
        super().__init__(schema, dim)
        self.att = TargetAttention(self.event_dim, att_hidden, softmax=softmax, act=act)
        self.mlp = MLP(self.n_tok * dim + self.event_dim, list(hidden), 1, act=act)

    def forward(self, batch):
        x, ev, mask, tgt = self.inputs(batch)
        return self.mlp(torch.cat([x.flatten(1), self.att(ev, mask, tgt)], 1)).squeeze(-1)


class AUGRUCell(nn.Module):
    """GRU cell whose update gate is scaled by an attention score (DIEN's interest-evolution layer)."""

    def __init__(self, d_in: int, d_h: int):
        super().__init__()
        self.x2h = nn.Linear(d_in, 3 * d_h)
        self.h2h = nn.Linear(d_h, 3 * d_h)

    def forward(self, x, h, a):
        xr, xz, xn = self.x2h(x).chunk(3, -1)
        hr, hz, hn = self.h2h(h).chunk(3, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz) * a
        n = torch.tanh(xn + r * hn)
        return (1 - z) * h + z * n


class DIEN(SequenceModel):
    """DIEN: a GRU extracts interests, an attention-gated GRU evolves them toward the target.

    The auxiliary next-event loss of the original is left out (the paper's trainer has a single BCE loss).
    Padding is skipped by carrying the hidden state through masked steps, so padding does not change the output.
    """

    def __init__(self, schema, dim=16, hidden=(256, 128), att_hidden=(64, 32), act="swish"):
        super().__init__(schema, dim)
        e = self.event_dim
        self.gru = nn.GRUCell(e, e)
        self.att = MLP(4 * e, list(att_hidden), 1, act=act)
        self.augru = AUGRUCell(e, e)
        self.mlp = MLP(self.n_tok * dim + 2 * e, list(hidden), 1, act=act)

    def forward(self, batch):
        x, ev, mask, tgt = self.inputs(batch)
        b, t, e = ev.shape
        h, state = [], ev.new_zeros(b, e)
        for i in range(t):  # step by step so padded steps leave the state untouched
            m = mask[:, i : i + 1].to(ev.dtype)
            state = m * self.gru(ev[:, i], state) + (1 - m) * state
            h.append(state)
        hs = torch.stack(h, 1)
        tt = tgt.unsqueeze(1).expand_as(hs)
        score = self.att(torch.cat([hs, tt, hs - tt, hs * tt], -1)).squeeze(-1)
        a = score.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
        final = ev.new_zeros(b, e)
        for i in range(t):
            m = mask[:, i : i + 1].to(ev.dtype)
            nxt = self.augru(hs[:, i], final, a[:, i : i + 1])
            final = m * nxt + (1 - m) * final
        return self.mlp(torch.cat([x.flatten(1), final, tgt], 1)).squeeze(-1)


class BST(SequenceModel):
    """Behavior Sequence Transformer: the target is appended to the history and a Transformer reads both."""

    def __init__(self, schema, dim=16, layers=1, heads=2, hidden=(256, 128), act="swish"):
        super().__init__(schema, dim)
        e = self.event_dim
        max_len = max(f.max_len for f in schema.sequence) + 1
        self.pos = nn.Embedding(max_len + 1, e)
        self.blocks = nn.ModuleList(TransformerBlock(e, heads) for _ in range(layers))
        self.mlp = MLP(self.n_tok * dim + 2 * e, list(hidden), 1, act=act)

    def forward(self, batch):
        x, ev, mask, tgt = self.inputs(batch)
        s = torch.cat([ev, tgt.unsqueeze(1)], 1)
        m = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
        # positions count back from the target so that extra padding cannot shift them
        from_end = m.flip(-1).long().cumsum(-1).flip(-1) - 1
        s = s + self.pos(from_end.clamp_max(self.pos.num_embeddings - 1))
        for blk in self.blocks:
            s = blk(s, m)
        return self.mlp(torch.cat([x.flatten(1), masked_mean(s[:, :-1], mask), s[:, -1]], 1)).squeeze(-1)


class TransAct(SequenceModel):
    """TransAct-style: early fusion (target concatenated to every event), a Transformer, then the K most recent
    outputs plus a max-pool over the whole sequence feed the ranking MLP."""

    def __init__(self, schema, dim=16, layers=1, heads=2, recent=2, hidden=(256, 128), act="swish"):
        super().__init__(schema, dim)
        e = self.event_dim
        self.fuse = nn.Linear(2 * e, e)
        self.blocks = nn.ModuleList(TransformerBlock(e, heads, rope=True) for _ in range(layers))
        self.recent = recent
        self.mlp = MLP(self.n_tok * dim + (recent + 1) * e, list(hidden), 1, act=act)

    def forward(self, batch):
        x, ev, mask, tgt = self.inputs(batch)
        s = self.fuse(torch.cat([ev, tgt.unsqueeze(1).expand_as(ev)], -1))
        pos = mask_positions(mask)
        for blk in self.blocks:
            s = blk(s, mask, pos)
        rec = recent_tokens(s, mask, self.recent).flatten(1)
        pooled = s.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        pooled = torch.where(mask.any(1, keepdim=True), pooled, torch.zeros_like(pooled))
        return self.mlp(torch.cat([x.flatten(1), rec, pooled], 1)).squeeze(-1)
