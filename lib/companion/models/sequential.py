"""Sequential CTR baselines: DIN, DIEN (without its auxiliary loss), BST, DMIN, DMR and a TransAct-style model.

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
from .layers import (MLP, TargetAttention, TransformerBlock, activation, mask_positions, masked_mean,
                     recent_tokens)


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

    def forward(self, x, h, a, x_proj=None):
        """One step; ``x_proj`` = ``x2h(x)`` when the caller projected every step's input at once."""
        xr, xz, xn = (self.x2h(x) if x_proj is None else x_proj).chunk(3, -1)
        hr, hz, hn = self.h2h(h).chunk(3, -1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz) * a
        n = torch.tanh(xn + r * hn)
        return (1 - z) * h + z * n


def compact_events(ev: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move each row's real events to the front, in order: (events [B, T', e], mask [B, T'], lengths [B]) with
    T' the longest history in the batch. Pre- or post-padding then look the same to a recurrent layer."""
    lengths = mask.sum(1)
    t = int(lengths.max()) if mask.numel() else 0
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices[:, : max(t, 1)]
    ev = ev.gather(1, order.unsqueeze(-1).expand(-1, -1, ev.shape[-1]))
    cmask = torch.arange(ev.shape[1], device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
    return ev * cmask.unsqueeze(-1).to(ev.dtype), cmask, lengths


class DIEN(SequenceModel):
    """DIEN: a GRU extracts interests, an attention-gated GRU evolves them toward the target.

    The auxiliary next-event loss of the original is left out (the paper's trainer has a single BCE loss).
    Real events are moved to the front and the interest extractor is one packed ``nn.GRU`` call, so padding
    never reaches it; the AUGRU steps only over the longest real history in the batch, with every step's input
    projection done in one matmul, and a row's state moves only on its real events.
    """

    def __init__(self, schema, dim=16, hidden=(256, 128), att_hidden=(64, 32), act="swish"):
        super().__init__(schema, dim)
        e = self.event_dim
        self.gru = nn.GRU(e, e, batch_first=True)  # same parameters, shapes and init order as the GRUCell it replaced
        self.att = MLP(4 * e, list(att_hidden), 1, act=act)
        self.augru = AUGRUCell(e, e)
        self.mlp = MLP(self.n_tok * dim + 2 * e, list(hidden), 1, act=act)

    def forward(self, batch):
        x, ev, mask, tgt = self.inputs(batch)
        b, _, e = ev.shape
        ev, mask, lengths = compact_events(ev, mask)
        packed = nn.utils.rnn.pack_padded_sequence(ev, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False)
        hs, _ = self.gru(packed)
        hs, _ = nn.utils.rnn.pad_packed_sequence(hs, batch_first=True, total_length=ev.shape[1])
        hs = hs * mask.unsqueeze(-1).to(hs.dtype)  # an empty history ran one padding step: zero it
        tt = tgt.unsqueeze(1).expand_as(hs)
        score = self.att(torch.cat([hs, tt, hs - tt, hs * tt], -1)).squeeze(-1)
        a = score.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
        xp = self.augru.x2h(hs)
        final = ev.new_zeros(b, e)
        for i in range(hs.shape[1]):
            m = mask[:, i : i + 1].to(ev.dtype)
            nxt = self.augru(hs[:, i], final, a[:, i : i + 1], x_proj=xp[:, i])
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


def _positions_from_end(mask: torch.Tensor, n: int) -> torch.Tensor:
    """0 for the newest real event, 1 for the one before...; padding gets the last index (its weight is masked)."""
    return (mask.flip(-1).long().cumsum(-1).flip(-1) - 1).clamp(0, n - 1)


class DMIN(SequenceModel):
    """Deep Multi-Interest Network (Xiao et al., CIKM 2020, "Deep Multi-Interest Network for Click-through Rate
    Prediction").

    A behaviour-refiner layer (multi-head self-attention + FFN) cleans the history; a multi-interest extractor
    runs a second multi-head self-attention whose every head is one interest: each head's output sequence gets
    its own residual/FFN and a DIN activation unit with position embeddings against the target, and the H
    pooled interests are concatenated for the MLP. The paper's auxiliary next-behaviour loss on the refiner is
    left out (our trainer has one BCE loss, as for DIEN); the refiner is pre-norm, the paper's block post-norm.
    """

    def __init__(self, schema, dim=16, heads=2, att_hidden=(64, 32), pos_dim=8, hidden=(256, 128), act="swish"):
        super().__init__(schema, dim)
        e = self.event_dim
        if e % heads:
            raise ValueError(f"DMIN: event width {e} is not divisible by heads {heads}")
        self.heads, self.dh = heads, e // heads
        self.refiner = TransformerBlock(e, heads)
        self.qkv = nn.Linear(e, 3 * e, bias=False)
        self.head_out = nn.ModuleList(nn.Linear(self.dh, e, bias=False) for _ in range(heads))
        self.head_norm = nn.ModuleList(nn.LayerNorm(e) for _ in range(heads))
        self.head_ffn = nn.ModuleList(MLP(e, [2 * e], e, act=act) for _ in range(heads))
        max_len = max(f.max_len for f in schema.sequence)
        self.pos = nn.Parameter(torch.zeros(heads, max_len, pos_dim))
        self.tgt_proj = nn.ModuleList(nn.Linear(e + pos_dim, e) for _ in range(heads))
        self.att = nn.ModuleList(MLP(4 * e, list(att_hidden), 1, act=act) for _ in range(heads))
        self.mlp = MLP(self.n_tok * dim + heads * e, list(hidden), 1, act=act)

    def forward(self, batch):
        x, ev, mask, tgt = self.inputs(batch)
        b, t, e = ev.shape
        s = self.refiner(ev, mask)
        q, k, v = (z.view(b, t, self.heads, self.dh).transpose(1, 2) for z in self.qkv(s).chunk(3, -1))
        keys = (mask | ~mask.any(-1, keepdim=True))[:, None, None, :]
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keys)  # [B, H, T, dh]
        pos_idx = _positions_from_end(mask, self.pos.shape[1])
        interests = []
        for h in range(self.heads):
            z = self.head_norm[h](self.head_out[h](o[:, h]) + s)
            z = z + self.head_ffn[h](z)
            p = self.pos[h][pos_idx]  # [B, T, pos_dim]
            tq = self.tgt_proj[h](torch.cat([tgt.unsqueeze(1).expand(-1, t, -1), p], -1))
            score = self.att[h](torch.cat([tq, z, tq - z, tq * z], -1)).squeeze(-1)
            w = score.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
            interests.append((w.unsqueeze(-1) * z).sum(1))
        return self.mlp(torch.cat([x.flatten(1), *interests], 1)).squeeze(-1)


class DMR(SequenceModel):
    """Deep Match to Rank (Lyu et al., AAAI 2020, "Deep Match to Rank Model for Personalized Click-Through Rate
    Prediction").

    Two relevance features beside DIN-style pooling. Item-to-item: attention of the target over the behaviours
    with position embeddings, a = z^T tanh(W_t t + W_p p + W_e e); the softmax-weighted behaviours and the
    unnormalized sum of a (the i2i relevance) go to the MLP. User-to-item: position embeddings alone attend over
    the behaviours, the pooled vector through an FC is the user u, and u . v' with a separate *output* embedding
    v' of the target is the u2i relevance. The auxiliary matching loss that trains u against sampled items is
    left out (one BCE loss here), so u and v' learn only through the click label.
    """

    def __init__(self, schema, dim=16, att_dim=32, pos_dim=8, hidden=(256, 128), act="swish"):
        super().__init__(schema, dim)
        e = self.event_dim
        max_len = max(f.max_len for f in schema.sequence)
        self.pos_i2i = nn.Embedding(max_len, pos_dim)
        self.pos_u2i = nn.Embedding(max_len, pos_dim)
        self.i2i_t, self.i2i_p, self.i2i_e = nn.Linear(e, att_dim), nn.Linear(pos_dim, att_dim, bias=False), nn.Linear(e, att_dim, bias=False)
        self.i2i_z = nn.Linear(att_dim, 1, bias=False)
        self.u2i_p, self.u2i_e = nn.Linear(pos_dim, att_dim), nn.Linear(e, att_dim, bias=False)
        self.u2i_z = nn.Linear(att_dim, 1, bias=False)
        self.user_fc = nn.Sequential(nn.Linear(e, e), activation(act))
        self.out_emb = FeatureEmbedding(schema, dim)  # v': the target's separate output embedding
        self.mlp = MLP(self.n_tok * dim + e + 2, list(hidden), 1, act=act)

    def _target_out(self, batch):
        x = self.out_emb.tokens(batch)
        return torch.cat([x[:, i] if i >= 0 else x.new_zeros(x.shape[0], self.dim) for i in self.target_index], -1)

    def forward(self, batch):
        x, ev, mask, tgt = self.inputs(batch)
        pos_idx = _positions_from_end(mask, self.pos_i2i.num_embeddings)
        a = self.i2i_z(torch.tanh(self.i2i_t(tgt).unsqueeze(1) + self.i2i_p(self.pos_i2i(pos_idx)) + self.i2i_e(ev))).squeeze(-1)
        rel_i2i = (a * mask).sum(1, keepdim=True)
        w = a.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
        pooled = (w.unsqueeze(-1) * ev).sum(1)
        g = self.u2i_z(torch.tanh(self.u2i_p(self.pos_u2i(pos_idx)) + self.u2i_e(ev))).squeeze(-1)
        wu = g.masked_fill(~mask, float("-inf")).softmax(-1).nan_to_num(0.0)
        user = self.user_fc((wu.unsqueeze(-1) * ev).sum(1))
        rel_u2i = (user * self._target_out(batch)).sum(-1, keepdim=True)
        return self.mlp(torch.cat([x.flatten(1), pooled, rel_i2i, rel_u2i], 1)).squeeze(-1)
