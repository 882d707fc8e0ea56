"""Grid operations driven by the curve codes: equal-length patches, grid pooling/unpooling, grid neighbours.

All of them work on a batch of scenes flattened into one (N, ...) tensor with a ``batch`` index per point,
the layout PTv3/Pointcept use; nothing here loops over points in Python.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


# --------------------------------------------------------------------------------------------- patches
@dataclass
class Patches:
    """How to cut serialized scenes into equal-length patches and put the results back.

    ``index`` (P, K) holds, for each patch slot, the sorted position it reads; ``valid`` (P, K) is False on
    filler slots that must not influence real points (short scenes); ``unpad`` (N,) gives the flat slot whose
    output belongs to sorted position i (tail slots that re-use points of the previous patch are dropped).
    """
    index: torch.Tensor
    valid: torch.Tensor
    unpad: torch.Tensor
    size: int


def make_patches(counts: torch.Tensor, size: int | None) -> Patches:
    """Patches over scenes of ``counts`` points each, laid out back to back in serialized order.

    A scene longer than ``size`` is padded to a multiple of ``size``, its last patch filled with the points
    of the patch before it (PTv3's rule; the serialized-Mamba paper describes the same). A scene shorter
    than the patch length gets one patch whose extra slots are masked out. ``size=None`` means one patch
    per scene (a global sequence).
    """
    counts = counts.long()
    if counts.numel() == 0 or int(counts.min()) <= 0:
        raise ValueError("every scene needs at least one point")
    longest = int(counts.max())
    k = longest if size is None else min(int(size), longest)
    if k <= 0:
        raise ValueError(f"patch size must be positive, got {size}")
    starts = torch.cumsum(counts, 0) - counts
    n_patch = (counts + k - 1) // k
    padded = n_patch * k
    offsets = torch.cumsum(padded, 0) - padded
    total = int(padded.sum())
    scene = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), padded)
    j = torch.arange(total, device=counts.device) - offsets[scene]
    n = counts[scene]
    real = j < n
    reuse = (~real) & (n > k)  # tail of a long scene: borrow the same slot of the previous patch
    src = torch.where(real, j, torch.where(reuse, j - k, torch.zeros_like(j)))
    index = (starts[scene] + src).view(-1, k)
    valid = (real | reuse).view(-1, k)
    point_scene = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    pos = torch.arange(int(counts.sum()), device=counts.device) - starts[point_scene]
    unpad = offsets[point_scene] + pos
    return Patches(index, valid, unpad, k)


# --------------------------------------------------------------------------------------------- pooling
@dataclass
class GridPooling:
    """Result of merging points that share a coarser cell: ``cluster`` maps each fine point to its cell."""
    cluster: torch.Tensor  # (N,) coarse index of every fine point
    head: torch.Tensor  # (M,) one fine point per coarse cell (the first in index order)
    counts: torch.Tensor  # (M,)
    code: torch.Tensor  # (M,) coarse code (order 0)


def grid_pool_index(code: torch.Tensor, levels: int = 1) -> GridPooling:
    """Group points whose codes agree above the last ``3*levels`` bits, i.e. points in the same 2**levels cell.

    This works with any of the curves: every one of them keeps a parent cell's children contiguous.
    """
    coarse = code >> (3 * levels)
    uniq, cluster, counts = torch.unique(coarse, sorted=True, return_inverse=True, return_counts=True)
    n = len(code)
    head = torch.full((len(uniq),), n, dtype=torch.long, device=code.device)
    head = head.scatter_reduce(0, cluster, torch.arange(n, device=code.device), reduce="amin")
    return GridPooling(cluster, head, counts, uniq)


def segment_reduce(values: torch.Tensor, cluster: torch.Tensor, size: int, reduce: str) -> torch.Tensor:
    """Per-cluster max or mean of rows of ``values`` (order of the rows does not matter)."""
    if reduce not in ("amax", "mean", "sum"):
        raise ValueError(f"reduce must be amax, mean or sum, got {reduce!r}")
    out = torch.zeros((size,) + values.shape[1:], dtype=values.dtype, device=values.device)
    idx = cluster.view(-1, *([1] * (values.ndim - 1))).expand_as(values)
    return out.scatter_reduce(0, idx, values, reduce=reduce, include_self=False)


def grid_unpool(coarse_values: torch.Tensor, pooling: GridPooling) -> torch.Tensor:
    """Copy each coarse cell's row back to every fine point in it."""
    return coarse_values[pooling.cluster]


# --------------------------------------------------------------------------------------------- neighbours
def _pack(batch: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    # 17 bits per axis (grid + 1 so an offset of -1 stays non-negative), batch above them
    return (batch.long() << 51) | ((grid[:, 0] + 1) << 34) | ((grid[:, 1] + 1) << 17) | (grid[:, 2] + 1)


def kernel_offsets(kernel_size: int = 3, device=None) -> torch.Tensor:
    if kernel_size % 2 != 1 or kernel_size < 1:
        raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
    r = torch.arange(kernel_size, device=device) - kernel_size // 2
    return torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)


def grid_neighbours(grid: torch.Tensor, batch: torch.Tensor, kernel_size: int = 3) -> torch.Tensor:
    """(N, k**3) index of the point in each neighbouring cell of the same scene, -1 where the cell is empty.

    A hash of (scene, cell) sorted once and searched per offset: the CPU stand-in for a submanifold sparse
    convolution's rule book. Assumes at most one point per cell (grid-sample first).
    """
    grid = grid.long()
    if len(grid) and int(grid.max()) >= (1 << 16):
        raise ValueError("grid coordinates must be < 65536 for neighbour hashing")
    keys = _pack(batch, grid)
    sorted_keys, perm = torch.sort(keys)
    if len(keys) > 1 and bool((sorted_keys[1:] == sorted_keys[:-1]).any()):
        raise ValueError("two points share a grid cell; grid-sample the cloud before building neighbours")
    offs = kernel_offsets(kernel_size, grid.device)
    out = torch.full((len(grid), len(offs)), -1, dtype=torch.long, device=grid.device)
    for k, off in enumerate(offs):
        q = _pack(batch, grid + off)
        pos = torch.searchsorted(sorted_keys, q).clamp(max=len(keys) - 1)
        hit = sorted_keys[pos] == q
        out[:, k] = torch.where(hit, perm[pos], torch.full_like(pos, -1))
    return out
