"""Wall-clock CPU latency of a model: warm-up first, then the median of timed repeats.

The median (not the mean) because a 2-core laptop is noisy; warm-up because the first calls allocate
and pick kernels. Threads are pinned for the measurement so two runs compare like with like.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Latency", "measure_latency", "time_call", "median_seconds"]


def time_call(fn, warmup: int = 1, repeats: int = 3) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls: the one timer everyone uses."""
    if warmup < 0 or repeats < 1:
        raise ValueError(f"warmup must be >= 0 and repeats >= 1, got warmup={warmup}, repeats={repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_seconds(fn, warmup: int = 1, repeats: int = 3) -> float:
    return statistics.median(time_call(fn, warmup, repeats))


@dataclass
class Latency:
    median_ms: float
    p90_ms: float
    min_ms: float
    repeats: int
    batch_size: int
    threads: int

    @property
    def per_sample_us(self) -> float:
        return 1000.0 * self.median_ms / max(self.batch_size, 1)


@contextmanager
def _threads(n: int | None):
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def measure_latency(model: nn.Module, *inputs, warmup: int = 3, repeats: int = 10, threads: int | None = None, batch_size: int | None = None) -> Latency:
    """Median forward latency in eval mode without gradients."""
    if batch_size is None:
        first = inputs[0] if inputs else None
        if isinstance(first, dict):
            batch_size = next(int(v.shape[0]) for v in first.values() if isinstance(v, torch.Tensor) and v.dim() > 0)
        elif isinstance(first, torch.Tensor):
            batch_size = int(first.shape[0])
        else:
            batch_size = 1
    was_training = model.training
    model.eval()
    try:
        with _threads(threads) as n, torch.inference_mode():
            times = [1000.0 * t for t in time_call(lambda: model(*inputs), warmup, repeats)]
    finally:
        model.train(was_training)
    times.sort()
    p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]
    return Latency(statistics.median(times), p90, times[0], repeats, batch_size, n)
