"""The embedding layer every CTR model in the companion shares, so model comparisons differ only above it.

Sparse fields live in one table with per-field offsets (one lookup per batch instead of one per field);
each dense scalar becomes a token by scaling a learned vector; sequence fields get their own rows in the
table unless ``share_with`` points them at a sparse field (item ids in history and as the target item).
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
            parts.append(self.table(batch["sparse"] + self.sparse_off))
        return torch.cat(parts, 1)

    def sequences(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequence embeddings [B, Q, L, dim] and the mask of real (non-padding) positions [B, Q, L]."""
        seq = batch["seq"]
        mask = seq > 0
        emb = self.table(seq + self.seq_off.view(1, -1, 1)) * mask.unsqueeze(-1)
        return emb, mask

    def forward(self, batch: dict) -> torch.Tensor:
        return self.tokens(batch)
