"""Latency and training-memory measurements for point backbones as the number of points grows.

Memory is the bytes autograd keeps for the backward pass (every distinct tensor saved by a forward with
gradients on): a deterministic, device-independent measure of what training a layer costs, which is the
quantity behind linear-versus-quadratic memory claims. Latency is the median wall time of inference.
"""
from __future__ import annotations


import torch

from ..cost.latency import median_seconds


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


def median_latency(fn, repeats: int = 3, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` under ``torch.no_grad`` after ``warmup`` untimed calls."""
    with torch.no_grad():
        return median_seconds(fn, warmup, repeats)


def loglog_slope(n, y) -> float:
    """Slope of log y against log n: about 1 for linear cost, 2 for quadratic."""
    import numpy as np

    n, y = np.log(np.asarray(n, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(n, y, 1)[0])


def room_cloud(n_points: int, grid_size: float = 0.02, seed: int = 0, in_channels: int = 6):
    """Exactly ``n_points`` voxelised points of one procedural room (features random), for scaling runs."""
    import numpy as np

    from ..data.rooms import make_room
    from .sample import grid_sample

    room = make_room(np.random.default_rng(seed), n_points=int(n_points * 1.6) + 200)
    gs = grid_sample(torch.from_numpy(room["coord"]), grid_size)
    if len(gs.keep) < n_points:
        raise ValueError(f"only {len(gs.keep)} cells at grid_size={grid_size}; use a finer grid for {n_points} points")
    pick = torch.randperm(len(gs.keep), generator=torch.Generator().manual_seed(seed))[:n_points].sort().values
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randn(n_points, in_channels, generator=gen), gs.grid[pick]


def scaling_table(models: dict, sizes, repeats: int = 2, threads: int | None = 1, seed: int = 0,
                  max_seconds: float | None = None):
    """Latency and saved-activation memory of each model as the cloud grows; a pandas DataFrame.

    A model is skipped at larger sizes once one of its forwards takes more than ``max_seconds``.
    """
    import pandas as pd
    from ..progress import tqdm

    from .train import torch_threads

    rows, slow = [], set()
    with torch_threads(threads):
        for n in tqdm(list(sizes), desc="scaling", leave=False):
            feat, grid = room_cloud(int(n), seed=seed)
            for name, model in models.items():
                if name in slow:
                    continue
                model.eval()
                lat = median_latency(lambda: model(feat, grid), repeats=repeats)
                model.train()
                mem = saved_activation_bytes(lambda: model(feat, grid))
                model.eval()
                rows.append({"model": name, "points": int(n), "latency_s": lat, "train_memory_mb": mem / 2**20})
                if max_seconds is not None and lat > max_seconds:
                    slow.add(name)
    return pd.DataFrame(rows)
