"""Differentiable search primitives: architecture parameters, softmax / Gumbel-softmax relaxations with a
temperature schedule, the expected-cost penalty, and the rules that turn relaxed weights into one architecture.

Used by the DNAS searchers (Rankitect's DNAS family, DistDNAS). A search owns an :class:`ArchParams` (one logit
vector per decision), mixes its candidate operators with ``weights(...)``, adds
``expected_cost(...)`` to the loss, and at the end calls :func:`discretize`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn


@dataclass(frozen=True)
class TemperatureSchedule:
    """``tau`` from ``start`` to ``end`` over ``steps`` (exponential by default, as in FBNet-style DNAS)."""

    start: float = 5.0
    end: float = 0.5
    steps: int = 1000
    kind: str = "exp"

    def __post_init__(self):
        if self.start <= 0 or self.end <= 0 or self.steps < 1 or self.kind not in ("exp", "linear", "constant"):
            raise ValueError(f"need start, end > 0, steps >= 1 and kind exp|linear|constant; got {self}")

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.start
        f = min(max(step, 0), self.steps) / self.steps
        if self.kind == "linear":
            return self.start + f * (self.end - self.start)
        return self.start * (self.end / self.start) ** f


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel-softmax over the last axis with an explicit generator (``F.gumbel_softmax`` takes none, so it is not
    reproducible under a seed without touching the global RNG). ``hard`` = straight-through one-hot."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device).clamp_(1e-10, 1 - 1e-10)
    g = -torch.log(-torch.log(u))
    y = torch.softmax((logits + g) / tau, dim=-1)
    if not hard:
        return y
    idx = y.argmax(-1, keepdim=True)
    onehot = torch.zeros_like(y).scatter_(-1, idx, 1.0)
    return onehot - y.detach() + y


class ArchParams(nn.Module):
    """One logit vector per named decision, initialised to zero (uniform)."""

    def __init__(self, decisions: dict[str, int]):
        super().__init__()
        bad = {k: n for k, n in decisions.items() if n < 1}
        if bad:
            raise ValueError(f"every decision needs >= 1 choice, got {bad}")
        self.names = list(decisions)
        self.alpha = nn.ParameterDict({k: nn.Parameter(torch.zeros(n)) for k, n in decisions.items()})

    def weights(self, name: str, tau: float = 1.0, mode: str = "softmax", generator: torch.Generator | None = None) -> torch.Tensor:
        """Mixing weights of one decision: ``softmax`` (DARTS-style), ``gumbel`` or ``hard`` (straight-through)."""
        a = self.alpha[name]
        if mode == "softmax":
            return torch.softmax(a / tau, -1)
        if mode in ("gumbel", "hard"):
            return gumbel_softmax(a, tau, hard=mode == "hard", generator=generator)
        raise ValueError(f"mode must be softmax|gumbel|hard, got {mode!r}")

    def probs(self) -> dict[str, torch.Tensor]:
        return {k: torch.softmax(self.alpha[k].detach(), -1) for k in self.names}


def expected_cost(weights: torch.Tensor, costs: Sequence[float] | torch.Tensor, normaliser: float | None = None) -> torch.Tensor:
    """``sum_m w_m * cost_m / normaliser`` (default: the largest cost), the DistDNAS / FBNet penalty term."""
    c = torch.as_tensor(costs, dtype=weights.dtype, device=weights.device)
    if c.shape != weights.shape[-1:]:
        raise ValueError(f"{c.numel()} costs for {weights.shape[-1]} choices")
    norm = float(c.max()) if normaliser is None else float(normaliser)
    if norm <= 0:
        raise ValueError("the cost normaliser must be > 0")
    return (weights * c).sum(-1) / norm


def discretize(probs: dict[str, torch.Tensor], rule: str = "top1", mass: float = 0.9) -> dict[str, list[int]]:
    """Per decision: ``top1`` keeps the most likely choice; ``mass`` keeps the fewest choices whose probability
    adds up to ``mass`` (at least one), for decisions that may keep several modules."""
    if rule not in ("top1", "mass"):
        raise ValueError(f"rule must be top1|mass, got {rule!r}")
    if not 0 < mass <= 1:
        raise ValueError(f"mass must lie in (0, 1], got {mass}")
    out = {}
    for k, p in probs.items():
        p = torch.as_tensor(p, dtype=torch.float64)
        order = torch.argsort(p, descending=True, stable=True)
        if rule == "top1":
            out[k] = [int(order[0])]
            continue
        keep, acc = [], 0.0
        for i in order.tolist():
            keep.append(i)
            acc += float(p[i])
            if acc >= mass - 1e-12:
                break
        out[k] = sorted(keep)
    return out


def entropy(p: torch.Tensor) -> float:
    p = torch.as_tensor(p, dtype=torch.float64)
    return float(-(p * torch.log(p.clamp_min(1e-12))).sum()) / (math.log(len(p)) if len(p) > 1 else 1.0)
