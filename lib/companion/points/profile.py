"""Cost of point backbones and of their token mixers as the scene grows: CPU time, peak and saved memory.

Why CPU time: on a shared machine, wall-clock time counts the other processes; ``time.process_time`` counts
only the cycles this process spent (all its threads), so a busy neighbour barely moves it. Each size is timed
``repeats`` times after a warm-up and the median kept.

Why a building, not a denser room: a bigger scan covers more floor at the same point density. Scenes here
are rooms laid side by side, each sampled at a fixed surface density and voxelised at a fixed grid, then cut
to exactly ``n`` cells (a prefix in z-order, so the cut is spatially compact). A denser cloud instead would
change the neighbourhoods the CPE sees and how fast grid pooling shrinks the sequence.

Memory: ``peak_memory_bytes`` tracks every tensor storage created while a function runs (a dispatch mode,
freed storages subtracted), so it is the peak of what the call itself allocates, independent of the allocator
and of other processes; ``saved_activation_bytes`` is what autograd keeps for the backward pass.
"""
from __future__ import annotations

import statistics
import time
import weakref

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map

from ..evidence import slope_interval

COMPONENTS = ("mixer", "block")
MIXER_NAMES = {"attention": "attention (softmax, one global sequence)", "mamba": "BiMamba (one global sequence)"}


# --------------------------------------------------------------------------------------------- measuring
def cpu_seconds(fn, repeats: int = 5, warmup: int = 1) -> list[float]:
    """CPU seconds (this process, all threads) of each of ``repeats`` calls of ``fn()`` after ``warmup``."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"warmup must be >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return out


class PeakMemory(TorchDispatchMode):
    """Counts the bytes of tensor storages alive while active; ``peak`` is the high-water mark."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def _track(self, t):
        if isinstance(t, torch.Tensor):
            s = t.untyped_storage()
            key, nbytes = s.data_ptr(), s.nbytes()
            if nbytes and key not in self.live:
                self.live[key] = nbytes
                self.current += nbytes
                self.peak = max(self.peak, self.current)
                weakref.finalize(s, self._free, key)
        return t

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tree_map(self._track, out)
        return out


def peak_memory_bytes(fn) -> int:
    """Peak bytes of the tensors ``fn()`` allocates (its inputs and parameters, made before, not counted)."""
    with PeakMemory() as m:
        out = fn()
        del out
    return int(m.peak)


def saved_activation_bytes(fn) -> int:
    """Bytes of the distinct tensors autograd saves while running ``fn()`` (with gradients enabled)."""
    seen: dict[tuple, int] = {}

    def pack(t):
        try:
            key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
            seen[key] = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):
            seen[(id(t), 0)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return int(sum(seen.values()))


# --------------------------------------------------------------------------------------------- scenes
def footprint_m2(coord: np.ndarray, cell: float = 0.5) -> float:
    """Floor area covered by a cloud: occupied ``cell`` x ``cell`` columns seen from above."""
    xy = np.floor(np.asarray(coord)[:, :2] / cell).astype(np.int64)
    return float(len(np.unique(xy, axis=0)) * cell * cell)


def scene_cloud(n_points: int, grid_size: float = 0.1, points_per_m2: float = 200.0, seed: int = 0,
                in_channels: int = 6):
    """Exactly ``n_points`` voxel cells of a building grown room by room at fixed density.

    Returns (features, grid, info): features are seeded random (cost does not depend on their values), grid
    the integer cells, info the rooms used, the footprint in m2 and the cells per m2 of footprint.
    """
    from ..data.rooms import make_building
    from .sample import grid_sample
    from .serialize import z_order_encode

    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    k = 1
    while True:
        b = make_building(k, seed=seed, points_per_m2=points_per_m2)
        gs = grid_sample(torch.from_numpy(b["coord"]), grid_size, torch.Generator().manual_seed(seed))
        if len(gs.keep) >= n_points:
            break
        k += max(1, int(np.ceil(k * (n_points / max(len(gs.keep), 1) - 1))))  # grow towards the need
    code = z_order_encode(gs.grid - gs.grid.min(0).values, 16)
    pick = torch.argsort(code)[:n_points]
    grid = gs.grid[pick]
    area = footprint_m2(b["coord"][gs.keep[pick].numpy()])
    gen = torch.Generator().manual_seed(seed + 1)
    info = {"rooms": k, "footprint_m2": area, "cells_per_m2": n_points / area}
    return torch.randn(n_points, in_channels, generator=gen), grid, info


# --------------------------------------------------------------------------------------------- scans
def _level(grid: torch.Tensor):
    from ..models.point_backbone import Level
    from .serialize import ORDERS, serialize

    batch = torch.zeros(len(grid), dtype=torch.long)
    return Level(grid.long(), batch, serialize(grid, batch, ORDERS), 1)


def mixer_scaling(sizes, channels: int = 32, d_state: int = 16, repeats: int = 5, grid_size: float = 0.1,
                  points_per_m2: float = 200.0, seed: int = 0, threads: int | None = 1,
                  max_seconds: float | None = None, memory: bool = True):
    """CPU time and peak memory of the token mixer alone and of one block (CPE -> mixer -> MLP), for softmax
    attention and BiMamba of the same width, each over one global sequence of L tokens; a DataFrame.

    The mixer sees the block's input in Hilbert order as one (1, L, C) sequence. A mixer (and its block) stops
    at larger sizes once its median exceeds ``max_seconds``: recorded as ``capped`` in ``df.attrs``.
    """
    import pandas as pd

    from ..models.mamba import BiMamba
    from ..models.point_backbone import PatchAttention, PointBlock
    from ..progress import tqdm
    from .train import torch_threads

    torch.manual_seed(seed)
    mk = dict(d_state=d_state, d_conv=4, expand=2)
    mods = {("mixer", "attention"): PatchAttention(channels), ("mixer", "mamba"): BiMamba(channels, **mk),
            ("block", "attention"): PointBlock(channels, "attention", None, mk),
            ("block", "mamba"): PointBlock(channels, "mamba", None, mk)}
    for m in mods.values():
        m.eval()
    rows, capped = [], {}
    with torch_threads(threads), torch.no_grad():
        for n in tqdm(sorted(int(s) for s in sizes), desc="mixer scaling", leave=False):
            _, grid, info = scene_cloud(n, grid_size, points_per_m2, seed, in_channels=3)
            level = _level(grid)
            x = torch.randn(n, channels, generator=torch.Generator().manual_seed(seed + 2))
            seq = x[level.ser.order[2]][None]  # Hilbert order
            for (comp, mixer), mod in mods.items():
                if (comp, mixer) in capped:
                    continue
                fn = (lambda: mod(seq)) if comp == "mixer" else (lambda: mod(x, level, 2))
                peak = peak_memory_bytes(fn) if memory else float("nan")  # doubles as the untimed warm-up
                times = cpu_seconds(fn, repeats, warmup=0 if memory else 1)
                rows.append({"component": comp, "mixer": mixer, "tokens": n, "cpu_s": statistics.median(times),
                             "cpu_s_min": min(times), "cpu_s_max": max(times), "repeats": repeats,
                             "peak_mib": peak / 2**20, "rooms": info["rooms"], "cells_per_m2": info["cells_per_m2"]})
                if max_seconds is not None and rows[-1]["cpu_s"] > max_seconds:
                    capped[(comp, mixer)] = n
    df = pd.DataFrame(rows)
    df.attrs["capped"] = {f"{c} {m}": n for (c, m), n in capped.items()}
    return df


def backbone_scaling(models: dict, sizes, repeats: int = 3, grid_size: float = 0.1, points_per_m2: float = 200.0,
                     seed: int = 0, threads: int | None = 1, in_channels: int = 6):
    """Whole-segmenter inference CPU time, peak memory and training (saved-activation) memory per size."""
    import pandas as pd

    from ..progress import tqdm
    from .train import torch_threads

    rows = []
    with torch_threads(threads):
        for n in tqdm(sorted(int(s) for s in sizes), desc="backbone scaling", leave=False):
            feat, grid, info = scene_cloud(n, grid_size, points_per_m2, seed, in_channels)
            for name, model in models.items():
                model.eval()
                with torch.no_grad():
                    peak = peak_memory_bytes(lambda: model(feat, grid))  # doubles as the untimed warm-up
                    times = cpu_seconds(lambda: model(feat, grid), repeats, warmup=0)
                model.train()
                saved = saved_activation_bytes(lambda: model(feat, grid))
                model.eval()
                rows.append({"model": name, "points": n, "cpu_s": statistics.median(times), "cpu_times": times,
                             "peak_mib": peak / 2**20, "train_memory_mib": saved / 2**20, "rooms": info["rooms"]})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- slopes
def slopes(df, value: str = "cpu_s", x: str = "tokens", by=("component", "mixer")):
    """Log-log slope of ``value`` against ``x`` with its 95% t interval, one row per group."""
    import pandas as pd

    rows = []
    for key, d in df.groupby(list(by)):
        s = slope_interval(d[x], d[value])
        rows.append(dict(zip(by, key if isinstance(key, tuple) else (key,)), **s,
                         x_range=f"{int(d[x].min())}-{int(d[x].max())}"))
    return pd.DataFrame(rows)


def exponent_gap(df, component: str, value: str = "cpu_s", a: str = "attention", b: str = "mamba") -> dict:
    """Slope of log(value_a / value_b) against log L at the sizes both reached: a's exponent minus b's, with a
    t interval from the paired ratios (tighter and more honest than comparing two separate intervals)."""
    d = df[df.component == component].pivot(index="tokens", columns="mixer", values=value).dropna()
    return slope_interval(d.index.to_numpy(), (d[a] / d[b]).to_numpy())
