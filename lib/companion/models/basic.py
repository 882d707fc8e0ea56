"""The two reference points every CTR comparison needs: no interactions at all, and exactly the right ones.

``LogisticRegression`` sees each feature alone. ``CrossedLR`` adds one learned weight per value combination of
chosen field pairs; given the planted pairs of :func:`companion.data.synthetic.make_synthetic_ctr` it shows
how much of the signal is interaction, and given wrong pairs, how little a wrong guess buys.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.schema import Schema


class LogisticRegression(nn.Module):
    def __init__(self, schema: Schema):
        super().__init__()
        self.vocab = [f.vocab_size for f in schema.sparse]
        self.register_buffer("off", torch.tensor([0, *torch.tensor(self.vocab).cumsum(0)[:-1].tolist()]), persistent=False)
        self.weight = nn.Embedding(sum(self.vocab), 1)
        nn.init.zeros_(self.weight.weight)
        self.dense = nn.Linear(len(schema.dense), 1) if schema.dense else None
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, batch: dict) -> torch.Tensor:
        out = self.weight(batch["sparse"] + self.off).sum((1, 2)) + self.bias
        if self.dense is not None:
            out = out + self.dense(batch["dense"]).squeeze(-1)
        return out


class CrossedLR(LogisticRegression):
    """Logistic regression plus a weight table for each listed sparse-field pair (value x value)."""

    def __init__(self, schema: Schema, pairs: list[tuple[str, str]]):
        super().__init__(schema)
        names = [f.name for f in schema.sparse]
        self.pairs = [(a, b) for a, b in pairs if a in names and b in names]
        if not self.pairs:
            raise ValueError(f"none of the pairs {pairs} are pairs of sparse fields {names}")
        self.idx = [(names.index(a), names.index(b)) for a, b in self.pairs]
        self.cross = nn.ModuleList(nn.Embedding(self.vocab[i] * self.vocab[j], 1) for i, j in self.idx)
        for emb in self.cross:
            nn.init.zeros_(emb.weight)

    def forward(self, batch: dict) -> torch.Tensor:
        out = super().forward(batch)
        x = batch["sparse"]
        for (i, j), emb in zip(self.idx, self.cross):
            out = out + emb(x[:, i] * self.vocab[j] + x[:, j]).squeeze(-1)
        return out
