"""The small DLRM-like job the harness measures: a bottom MLP on dense features, embedding tables (one lookup per
table, pooling factor 1), pairwise dot-product interactions, a top MLP. Our own module rather than the zoo's
models because the systems knobs (sparse embedding gradients, activation checkpointing of the top MLP) must reach
inside it; the zoo's ``FeatureEmbedding`` has one dense-gradient table and no checkpointing switch."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclass(frozen=True)
class JobShape:
    """The fixed part of the job (what the search does not change). Sizes are chosen so a dense-gradient Adam
    job at width 64 holds a few hundred MB per process: large enough that the memory budget bites."""
    n_dense: int = 13
    n_tables: int = 8
    rows_per_table: int = 10_000
    bottom: tuple = (64,)
    top: tuple = (128, 64)


def _mlp(d_in: int, hidden, d_out: int | None) -> nn.Sequential:
    layers, d = [], d_in
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    if d_out is not None:
        layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


class TinyDLRM(nn.Module):
    def __init__(self, shape: JobShape, dim: int, sparse: bool, checkpoint_top: bool):
        super().__init__()
        self.shape, self.dim, self.checkpoint_top = shape, dim, checkpoint_top
        self.bottom = _mlp(shape.n_dense, shape.bottom, dim)
        self.table = nn.Embedding(shape.n_tables * shape.rows_per_table, dim, sparse=sparse)
        with torch.no_grad():
            self.table.weight.uniform_(-0.01, 0.01)
        self.register_buffer("offsets", torch.arange(shape.n_tables) * shape.rows_per_table, persistent=False)
        f = shape.n_tables + 1
        self.iu = torch.triu_indices(f, f, offset=1)
        self.top = _mlp(dim + self.iu.shape[1], shape.top, 1)

    def _interact_top(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z.unsqueeze(1), e], 1)                      # [B, F, d]
        dots = torch.bmm(x, x.transpose(1, 2))[:, self.iu[0], self.iu[1]]
        return self.top(torch.cat([z, dots], 1)).squeeze(-1)

    def forward(self, dense: torch.Tensor, sparse_idx: torch.Tensor) -> torch.Tensor:
        z = self.bottom(dense)
        e = self.table(sparse_idx + self.offsets)
        if self.checkpoint_top and self.training:
            return checkpoint(self._interact_top, z, e, use_reentrant=False)
        return self._interact_top(z, e)


def flops_per_sample(shape: JobShape, dim: int) -> float:
    """Multiply-adds x 2 of one training sample (forward + backward = 3x forward; recomputation adds one forward
    of the top part). Embedding lookups count as memory traffic, not flops; see :func:`bytes_per_step`."""
    f = shape.n_tables + 1
    dims = [shape.n_dense, *shape.bottom, dim]
    bottom = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    tdims = [dim + f * (f - 1) // 2, *shape.top, 1]
    top = sum(a * b for a, b in zip(tdims[:-1], tdims[1:]))
    inter = f * f * dim
    return 2.0 * (bottom + top + inter)
