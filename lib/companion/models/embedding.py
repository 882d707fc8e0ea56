"""The embedding layer every CTR model in the companion shares, so model comparisons differ only above it.

Sparse fields live in one table with per-field offsets (one lookup per batch instead of one per field);
each dense scalar becomes a token by scaling a learned vector; sequence fields get their own rows in the
table unless ``share_with`` points them at a sparse field (item ids in history and as the target item).

Lookups are ``index_select`` on the table while its gradients are dense (its backward, an ``index_add``, gives
bit-identical gradients at about half the cost of ``nn.Embedding``'s dense backward on CPU), and the module's
``nn.Embedding`` itself once the trainer switches the table to sparse gradients (``TrainConfig.embedding_optimizer``).
A model with a first-order (width-1) term can fuse that table into this one as an extra column
(:meth:`fuse_first_order`), so one lookup serves both.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.schema import Schema


class FeatureEmbedding(nn.Module):
    def __init__(self, schema: Schema, dim: int):
        super().__init__()
        self.schema, self.dim = schema, dim
        offsets, start = {}, 0
        for f in schema.sparse:
            offsets[f.name], start = start, start + f.vocab_size
        for f in schema.sequence:
            if f.share_with is not None:
                if f.share_with not in offsets:
                    raise ValueError(f"sequence {f.name!r} shares with {f.share_with!r}, which is not a sparse field")
                offsets[f.name] = offsets[f.share_with]
            else:
                offsets[f.name], start = start, start + f.vocab_size
        self.table = nn.Embedding(max(start, 1), dim)
        nn.init.normal_(self.table.weight, std=0.01)
        self.register_buffer("sparse_off", torch.tensor([offsets[f.name] for f in schema.sparse], dtype=torch.long), persistent=False)
        self.register_buffer("seq_off", torch.tensor([offsets[f.name] for f in schema.sequence], dtype=torch.long), persistent=False)
        n_dense = len(schema.dense)
        self.dense_weight = nn.Parameter(torch.randn(n_dense, dim) * 0.01) if n_dense else None
        self.dense_bias = nn.Parameter(torch.zeros(n_dense, dim)) if n_dense else None
        self.extra = 0  # columns fused in from a first-order embedding (see fuse_first_order)

    @property
    def width(self) -> int:
        """Columns of every lookup: ``dim`` plus any fused first-order columns."""
        return self.dim + self.extra

    def fuse_first_order(self, other: "FeatureEmbedding") -> None:
        """Append ``other``'s weights (same schema, usually width 1) as extra columns of this table, dense weights
        and biases. The values are copied, so a model built in the old order keeps its initial weights exactly."""
        if other.schema is not self.schema and [f.name for f in other.schema.fields] != [f.name for f in self.schema.fields]:
            raise ValueError("fuse_first_order needs an embedding of the same schema")
        with torch.no_grad():
            self.table.weight = nn.Parameter(torch.cat([self.table.weight, other.table.weight], 1))
            self.table.embedding_dim = self.table.weight.shape[1]
            if self.dense_weight is not None:
                self.dense_weight = nn.Parameter(torch.cat([self.dense_weight, other.dense_weight], 1))
                self.dense_bias = nn.Parameter(torch.cat([self.dense_bias, other.dense_bias], 1))
        self.extra += other.width

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Table rows for ``idx`` [...] -> [..., width]."""
        if self.table.sparse:
            return self.table(idx)
        return self.table.weight.index_select(0, idx.reshape(-1)).view(*idx.shape, self.width)

    @property
    def n_tokens(self) -> int:
        """Non-sequence tokens: one per dense field plus one per sparse field."""
        return len(self.schema.dense) + len(self.schema.sparse)

    @property
    def n_sequences(self) -> int:
        return len(self.schema.sequence)

    def tokens(self, batch: dict) -> torch.Tensor:
        """Non-sequence field embeddings [B, D+S, dim] (dense first, then sparse)."""
        parts = []
        if self.dense_weight is not None:
            parts.append(batch["dense"].unsqueeze(-1) * self.dense_weight + self.dense_bias)
        if len(self.sparse_off):
            parts.append(self.lookup(batch["sparse"] + self.sparse_off))
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]

    def sequences(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequence embeddings [B, Q, L, dim] and the mask of real (non-padding) positions [B, Q, L]."""
        seq = batch["seq"]
        mask = seq > 0
        emb = self.lookup(seq + self.seq_off.view(1, -1, 1)) * mask.unsqueeze(-1)
        return emb, mask

    def pooled_sequences(self, batch: dict) -> torch.Tensor:
        """Each sequence's masked mean over its real events, [B, Q, width] (zeros for an empty history): the same
        numbers as ``masked_mean(*sequences(batch))`` with one mask multiplication instead of two."""
        seq = batch["seq"]
        m = (seq > 0).unsqueeze(-1).to(self.table.weight.dtype)
        emb = self.lookup(seq + self.seq_off.view(1, -1, 1))
        return (emb * m).sum(-2) / m.sum(-2).clamp_min(1.0)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.tokens(batch)
