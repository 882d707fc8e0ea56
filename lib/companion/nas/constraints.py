"""Constraints checked before any training, and selection under them.

A :class:`Constraint` measures a candidate analytically (FLOPs from the registry, a PIM latency, a parameter count)
and compares it with a limit. Searchers draw again when a proposal breaks one, so a budget of trials is never spent
on a model that could not ship; :func:`best_feasible` is constrained selection, :func:`penalized` today's penalty
form (``codesign.py``) for comparison.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Constraint:
    name: str
    measure: Callable[[Any], float]
    limit: float
    unit: str = ""

    def value(self, cand: Any) -> float:
        v = float(self.measure(cand))
        if not np.isfinite(v):
            raise ValueError(f"constraint {self.name!r} measured a non-finite value {v} for {cand!r}")
        return v

    def ok(self, cand: Any) -> bool:
        return self.value(cand) <= self.limit


def feasible(cand: Any, constraints: Sequence[Constraint]) -> bool:
    return all(c.ok(cand) for c in constraints)


def violations(cand: Any, constraints: Sequence[Constraint]) -> dict[str, float]:
    """Relative excess over each limit (0 where it holds)."""
    return {c.name: max(0.0, c.value(cand) / c.limit - 1.0) for c in constraints}


def penalized(reward: float, cand: Any, constraints: Sequence[Constraint], weight: float) -> float:
    """Soft form: the reward minus ``weight`` times the summed relative excess."""
    return reward - weight * sum(violations(cand, constraints).values())


def best_feasible(cands: Sequence[Any], rewards: Sequence[float], constraints: Sequence[Constraint]):
    """Highest reward among candidates within every limit; ``(None, nan)`` when none is."""
    best, best_r = None, float("nan")
    for c, r in zip(cands, rewards):
        if r is None or not np.isfinite(r) or not feasible(c, constraints):
            continue
        if best is None or r > best_r:
            best, best_r = c, float(r)
    return best, best_r
