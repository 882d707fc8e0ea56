"""Latency and training-memory measurements for point backbones as the number of points grows.

Memory is the bytes autograd keeps for the backward pass (every distinct tensor saved by a forward with
gradients on): a deterministic, device-independent measure of what training a layer costs, which is the
quantity behind linear-versus-quadratic memory claims. Latency is the median wall time of inference.
"""
from __future__ import annotations

import statistics
import time

import torch


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
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def loglog_slope(n, y) -> float:
    """Slope of log y against log n: about 1 for linear cost, 2 for quadratic."""
    import numpy as np

    n, y = np.log(np.asarray(n, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(n, y, 1)[0])
