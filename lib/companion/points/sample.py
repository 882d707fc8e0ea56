"""Point samplers: voxel-grid sampling, farthest point sampling and uniform random sampling."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class GridSample:
    """One kept point per occupied voxel: ``keep`` indexes the input, ``voxel`` maps every input point to its kept row."""
    keep: torch.Tensor
    voxel: torch.Tensor
    grid: torch.Tensor  # (len(keep), 3) non-negative integer cell of each kept point


def grid_sample(coord: torch.Tensor, grid_size: float, generator: torch.Generator | None = None) -> GridSample:
    """Voxelise at ``grid_size``; keep a random point per voxel when a generator is given, else the first."""
    if grid_size <= 0:
        raise ValueError(f"grid_size must be positive, got {grid_size}")
    if coord.ndim != 2 or coord.shape[1] != 3:
        raise ValueError(f"coord must have shape (N, 3), got {tuple(coord.shape)}")
    cell = torch.floor((coord - coord.min(0).values) / grid_size).long()
    if int(cell.max()) >= (1 << 16):
        raise ValueError(f"grid_size={grid_size} gives {int(cell.max()) + 1} cells along an axis (max 65536)")
    key = (cell[:, 0] << 32) | (cell[:, 1] << 16) | cell[:, 2]
    _, voxel = torch.unique(key, sorted=True, return_inverse=True)
    n_vox = int(voxel.max()) + 1
    if generator is None:
        score = torch.arange(len(coord), dtype=torch.float64)
    else:
        score = torch.rand(len(coord), generator=generator, dtype=torch.float64)
    best = torch.full((n_vox,), float("inf"), dtype=torch.float64).scatter_reduce(0, voxel, score, "amin")
    chosen = score == best[voxel]
    keep = torch.full((n_vox,), len(coord), dtype=torch.long)
    keep = keep.scatter_reduce(0, voxel[chosen], torch.nonzero(chosen).squeeze(1), "amin")
    return GridSample(keep, voxel, cell[keep])


def farthest_point_sample(coord: torch.Tensor, m: int, start: int = 0) -> torch.Tensor:
    """Indices of ``m`` points, each the farthest from those already chosen (O(N m), vectorised over N)."""
    n = len(coord)
    if not 0 < m <= n:
        raise ValueError(f"m must be in 1..{n}, got {m}")
    chosen = torch.empty(m, dtype=torch.long)
    dist = torch.full((n,), float("inf"), dtype=coord.dtype)
    idx = int(start)
    for i in range(m):
        chosen[i] = idx
        dist = torch.minimum(dist, (coord - coord[idx]).pow(2).sum(1))
        idx = int(torch.argmax(dist))
    return chosen


def random_sample(n: int, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    if not 0 < m <= n:
        raise ValueError(f"m must be in 1..{n}, got {m}")
    return torch.randperm(n, generator=generator)[:m].sort().values
