"""Serialized point backbones: a PTv3-shaped U-Net whose token mixer is bidirectional Mamba or patch attention.

Points are voxelised (one point per cell), sorted along space-filling curves and cut into equal-length
patches; a mixer (BiMamba for Serialized Point Mamba, softmax attention for the point-transformer baseline)
runs on each patch; grid pooling by code shift builds the coarser stages and unpooling brings features
back. A conditional positional encoding (a sparse 3x3x3 convolution over grid neighbours) starts every
block. Everything is plain PyTorch, so it runs on CPU; with mamba-ssm on a GPU the scan uses its kernel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..points.grid import grid_neighbours, grid_pool_index, make_patches, segment_reduce
from ..points.serialize import ORDERS, Serialization, inverse_permutation, serialize
from .mamba import BiMamba

MIXERS = ("mamba", "attention")


class Level:
    """The points of one stage: grid cells, scene index, their serialization and cached neighbour/patch maps."""

    def __init__(self, grid: torch.Tensor, batch: torch.Tensor, ser: Serialization, n_scenes: int):
        self.grid, self.batch, self.ser, self.n_scenes = grid, batch, ser, n_scenes
        self.counts = torch.bincount(batch, minlength=n_scenes)
        self._nbr: dict[int, torch.Tensor] = {}
        self._patches: dict = {}

    def neighbours(self, kernel_size: int) -> torch.Tensor:
        if kernel_size not in self._nbr:
            self._nbr[kernel_size] = grid_neighbours(self.grid, self.batch, kernel_size)
        return self._nbr[kernel_size]

    def patches(self, size):
        if size not in self._patches:
            self._patches[size] = make_patches(self.counts, size)
        return self._patches[size]


class SparseConv(nn.Module):
    """Submanifold sparse convolution: each occupied cell mixes the occupied cells of its k**3 neighbourhood."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, bias: bool = True, rows_per_chunk: int = 32768):
        super().__init__()
        self.kernel_size, self.rows = kernel_size, rows_per_chunk
        k3 = kernel_size ** 3
        self.weight = nn.Parameter(torch.empty(k3 * c_in, c_out))
        nn.init.kaiming_uniform_(self.weight.view(k3, c_in, c_out).permute(2, 1, 0), a=math.sqrt(5))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def forward(self, x: torch.Tensor, level: Level) -> torch.Tensor:
        nbr = level.neighbours(self.kernel_size)
        xpad = torch.cat([x, x.new_zeros(1, x.shape[1])])
        idx = torch.where(nbr < 0, torch.full_like(nbr, len(x)), nbr)
        out = torch.cat([xpad[idx[s:s + self.rows]].flatten(1) @ self.weight for s in range(0, len(x), self.rows)])
        return out if self.bias is None else out + self.bias


class PatchAttention(nn.Module):
    """Multi-head softmax attention inside each patch (the PTv3 mixer), padding keys masked out."""

    def __init__(self, channels: int, head_dim: int = 16):
        super().__init__()
        self.heads = max(1, channels // head_dim)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        p, k, c = x.shape
        q, kk, v = self.qkv(x).view(p, k, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        # an all-valid mask is dropped: same result, and PyTorch's fused kernel (no points-by-points matrix
        # in memory) only runs without a mask
        attn_mask = None if mask is None or bool(mask.all()) else mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, kk, v, attn_mask=attn_mask)
        return self.proj(y.transpose(1, 2).reshape(p, k, c))


class SerializedMixer(nn.Module):
    """Sort points along one curve, cut into patches, mix each patch, and put outputs back in point order."""

    def __init__(self, channels: int, mixer: str, patch_size, mamba_kwargs: dict, head_dim: int = 16):
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")
        self.patch_size = patch_size
        self.inner = BiMamba(channels, **mamba_kwargs) if mixer == "mamba" else PatchAttention(channels, head_dim)

    def forward(self, x: torch.Tensor, level: Level, order_index: int) -> torch.Tensor:
        k = order_index % len(level.ser.names)
        patches = level.patches(self.patch_size)
        seq = x[level.ser.order[k]][patches.index]  # (P, K, C)
        y = self.inner(seq, patches.valid).reshape(-1, x.shape[1])[patches.unpad]
        return y[level.ser.inverse[k]]


class DropPath(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape[0], 1, device=x.device) >= self.p
        return x * keep / (1 - self.p)


class PointBlock(nn.Module):
    """CPE, then pre-norm serialized mixer and MLP, each with a residual (PTv3's block layout)."""

    def __init__(self, channels: int, mixer: str, patch_size, mamba_kwargs: dict, mlp_ratio: float = 4.0,
                 drop_path: float = 0.0, cpe_kernel: int = 3):
        super().__init__()
        self.cpe_conv = SparseConv(channels, channels, cpe_kernel)
        self.cpe_post = nn.Sequential(nn.Linear(channels, channels), nn.LayerNorm(channels))
        self.norm1 = nn.LayerNorm(channels)
        self.mixer = SerializedMixer(channels, mixer, patch_size, mamba_kwargs)
        self.norm2 = nn.LayerNorm(channels)
        hidden = int(channels * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))
        self.drop = DropPath(drop_path)

    def forward(self, x: torch.Tensor, level: Level, order_index: int) -> torch.Tensor:
        x = x + self.cpe_post(self.cpe_conv(x, level))
        x = x + self.drop(self.mixer(self.norm1(x), level, order_index))
        return x + self.drop(self.mlp(self.norm2(x)))


def _bn(c):
    return nn.BatchNorm1d(c, eps=1e-3, momentum=0.1)


class GridPool(nn.Module):
    """Stride-2 grid pooling: project, then max over the points of each parent cell (found by ``code >> 3``)."""

    def __init__(self, c_in: int, c_out: int, shuffle_orders: bool):
        super().__init__()
        self.proj = nn.Linear(c_in, c_out)
        self.norm, self.act = _bn(c_out), nn.GELU()
        self.shuffle_orders = shuffle_orders

    def forward(self, x: torch.Tensor, level: Level):
        pool = grid_pool_index(level.ser.code[0])
        m = len(pool.head)
        y = self.act(self.norm(segment_reduce(self.proj(x), pool.cluster, m, "amax")))
        code = level.ser.code[:, pool.head] >> 3  # every curve keeps a parent's children contiguous
        order = torch.sort(code, dim=1, stable=True).indices
        ser = Serialization(level.ser.names, code, order, inverse_permutation(order), level.ser.depth - 1)
        if self.shuffle_orders and self.training:
            ser = ser.shuffled()
        return y, Level(level.grid[pool.head] >> 1, level.batch[pool.head], ser, level.n_scenes), pool


class GridUnpool(nn.Module):
    """Bring coarse features back to the fine points of each cell and add the projected skip features."""

    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(c_in, c_out), _bn(c_out), nn.GELU())
        self.proj_skip = nn.Sequential(nn.Linear(c_skip, c_out), _bn(c_out), nn.GELU())

    def forward(self, x, skip, pool):
        return self.proj_skip(skip) + self.proj(x)[pool.cluster]


class PointSegmenter(nn.Module):
    """Encoder-decoder over serialized points with per-point class logits.

    ``mixer="mamba"`` is the Serialized Point Mamba reconstruction (BiMamba on patches of ``patch_size``
    points, a global sequence per scene in the deepest stage when ``global_last``); ``mixer="attention"``
    is the point-transformer (PTv3-style) baseline with the same skeleton. ``scan="checkpointed"`` keeps one
    state per group of the selective scan for backward; ``recompute_mixer=True`` (the default) also recomputes
    each BiMamba in backward, one direction and a few thousand tokens at a time: one more mixer forward, and both
    the saved and the peak memory of a training step fall below the attention baseline's (without it a BiMamba
    keeps about eight times what patch attention of the same width keeps).
    """

    def __init__(self, in_channels: int, num_classes: int, enc_depths=(1, 1, 1, 1), enc_channels=(32, 64, 96, 128),
                 dec_depths=(1, 1, 1), dec_channels=(48, 64, 96), mixer: str = "mamba", patch_size: int | None = 1024,
                 global_last: bool = True, orders=ORDERS, shuffle_orders: bool = True, d_state: int = 16,
                 d_conv: int = 4, expand: int = 2, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 stem_kernel: int = 3, scan: str = "checkpointed", recompute_mixer: bool = True):
        super().__init__()
        if len(enc_depths) != len(enc_channels):
            raise ValueError("enc_depths and enc_channels must have the same length")
        if len(dec_depths) != len(enc_depths) - 1 or len(dec_channels) != len(enc_depths) - 1:
            raise ValueError(f"a {len(enc_depths)}-stage encoder needs {len(enc_depths) - 1} decoder depths/channels")
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")
        self.mixer, self.orders, self.shuffle_orders = mixer, tuple(orders), shuffle_orders
        mk = dict(d_state=d_state, d_conv=d_conv, expand=expand, scan=scan, recompute=recompute_mixer)
        n_blocks = sum(enc_depths) + sum(dec_depths)
        rates = iter(torch.linspace(0, drop_path, n_blocks).tolist())
        self.stem = SparseConv(in_channels, enc_channels[0], stem_kernel, bias=False)
        self.stem_post = nn.Sequential(_bn(enc_channels[0]), nn.GELU())
        self.down = nn.ModuleList()
        self.enc = nn.ModuleList()
        last = len(enc_depths) - 1
        for s, (depth, c) in enumerate(zip(enc_depths, enc_channels)):
            if s:
                self.down.append(GridPool(enc_channels[s - 1], c, shuffle_orders))
            ps = None if (global_last and s == last and s > 0) else patch_size
            self.enc.append(nn.ModuleList([PointBlock(c, mixer, ps, mk, mlp_ratio, next(rates)) for _ in range(depth)]))
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        c_prev = enc_channels[-1]
        for s in reversed(range(last)):
            c = dec_channels[s]
            self.up.append(GridUnpool(c_prev, enc_channels[s], c))
            self.dec.append(nn.ModuleList([PointBlock(c, mixer, patch_size, mk, mlp_ratio, next(rates))
                                           for _ in range(dec_depths[s])]))
            c_prev = c
        self.head = nn.Linear(c_prev, num_classes)

    def forward(self, feat: torch.Tensor, grid: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        if batch is None:
            batch = torch.zeros(len(feat), dtype=torch.long, device=feat.device)
        n_scenes = int(batch.max()) + 1 if len(batch) else 0
        if len(feat) == 0 or torch.bincount(batch, minlength=n_scenes).min() == 0:
            raise ValueError("batch indices must run 0..B-1 with at least one point per scene")
        ser = serialize(grid, batch, self.orders)
        if self.shuffle_orders and self.training:
            ser = ser.shuffled()
        level = Level(grid.long(), batch.long(), ser, n_scenes)
        x = self.stem_post(self.stem(feat, level))
        skips = []
        for s, blocks in enumerate(self.enc):
            if s:
                skips.append((x, level))
                x, level, pool = self.down[s - 1](x, level)
                skips[-1] = skips[-1] + (pool,)
            for i, blk in enumerate(blocks):
                x = blk(x, level, i)
        for up, blocks in zip(self.up, self.dec):
            skip, level, pool = skips.pop()
            x = up(x, skip, pool)
            for i, blk in enumerate(blocks):
                x = blk(x, level, i)
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build_segmenter(in_channels: int, num_classes: int, channels, depths, mixer: str = "mamba",
                    patch_size: int | None = 1024, d_state: int = 16, seed: int | None = None,
                    **kwargs) -> PointSegmenter:
    """A U-Net from its encoder widths and depths alone (one decoder block per stage, widths mirrored), seeded
    so that the Mamba model and its attention baseline start from comparable initialisations; ``kwargs`` go to
    :class:`PointSegmenter` (``scan``, ``recompute_mixer``...)."""
    if seed is not None:
        torch.manual_seed(seed)
    channels = list(channels)
    return PointSegmenter(in_channels, num_classes, enc_depths=list(depths), enc_channels=channels,
                          dec_depths=[1] * (len(channels) - 1), dec_channels=channels[:-1], mixer=mixer,
                          patch_size=patch_size, d_state=d_state, **kwargs)
