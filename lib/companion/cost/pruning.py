"""Structured pruning with a learned mask per weight matrix (ToRS section 6.2, lottery-ticket style).

Each pruned ``nn.Linear`` gets a small mask generator that looks at its own weight matrix,
``M = sigmoid(W2 relu(W1 W))``, and the layer computes with ``M * W`` (times a hard 0/1 mask over output
units). One round: rewind the backbone to its initial weights, train it (and the generators) from scratch,
then score every surviving output unit by its mean mask value and switch off the lowest ``rate`` of them.
Whole output units (rows) go, so the saving is real FLOPs, not sparse zeros.
``criterion='magnitude'`` scores rows by the L1 norm of the trained weight instead (the paper's baseline).

Under the mask criterion the generators train along with the weights and are not rewound, so the model
of every round carries a learned multiplicative gate the magnitude model lacks: its log loss mixes "which
units were removed" with "a gate was trained". ``iterative_prune(..., refit_plain=True)`` separates the two:
after the last round it rewinds the backbone once more and trains it under the final hard 0/1 mask with
the gates switched off, so both criteria end with the same kind of model, the same FLOPs and the same
fine-tuning, and differ only in the units they chose.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from .flops import profile

__all__ = ["RowMask", "attach_masks", "detach_masks", "prune_step", "alive_fraction", "pruned_flops", "iterative_prune", "PruneRound", "expected_alive"]


class RowMask(nn.Module):
    """Parametrization ``W -> hard * sigmoid(W2 relu(W1 W^T))^T * W`` for a weight of shape [out, in]."""

    def __init__(self, out_features: int, learned: bool = True):
        super().__init__()
        self.learned = learned
        self.register_buffer("hard", torch.ones(out_features, 1))
        if learned:
            self.w1 = nn.Linear(out_features, 2 * out_features)
            self.w2 = nn.Linear(2 * out_features, out_features)
            nn.init.zeros_(self.w2.weight)
            nn.init.constant_(self.w2.bias, 3.0)  # start near M = 1, so round 0 trains the plain backbone

    def soft(self, w: torch.Tensor) -> torch.Tensor:
        if not self.learned:
            return torch.ones_like(w)
        return torch.sigmoid(self.w2(torch.relu(self.w1(w.t())))).t()

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.hard * self.soft(w) * w


def _linears(model: nn.Module, select: Callable[[str, nn.Linear], bool] | None) -> list[tuple[str, nn.Linear]]:
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and mod.out_features > 1 and (select is None or select(name, mod)):
            out.append((name, mod))
    return out


def attach_masks(model: nn.Module, select=None, learned: bool = True) -> dict[str, RowMask]:
    """Put a :class:`RowMask` on every selected ``nn.Linear`` (default: all with more than one output)."""
    masks = {}
    for name, mod in _linears(model, select):
        if parametrize.is_parametrized(mod, "weight"):
            raise ValueError(f"{name}.weight already carries a parametrization")
        rm = RowMask(mod.out_features, learned)
        parametrize.register_parametrization(mod, "weight", rm)
        masks[name] = rm
    if not masks:
        raise ValueError("no nn.Linear layer matched the pruning selection")
    return masks


def detach_masks(model: nn.Module) -> None:
    """Bake the masks into plain weights."""
    for _name, mod in list(model.named_modules()):
        if isinstance(mod, nn.Linear) and parametrize.is_parametrized(mod, "weight"):
            parametrize.remove_parametrizations(mod, "weight", leave_parametrized=True)


def _original(mod: nn.Linear) -> torch.Tensor:
    return mod.parametrizations.weight.original


@torch.no_grad()
def prune_step(model: nn.Module, masks: dict[str, RowMask], rate: float = 0.2, criterion: str = "mask") -> dict[str, int]:
    """Switch off ``round(rate * alive)`` more output rows in every masked layer; returns rows alive per layer."""
    if not 0 < rate < 1:
        raise ValueError(f"pruning rate must lie in (0, 1), got {rate}")
    if criterion not in ("mask", "magnitude"):
        raise ValueError(f"criterion must be 'mask' or 'magnitude', got {criterion!r}")
    alive = {}
    for name, rm in masks.items():
        mod = model.get_submodule(name)
        w = _original(mod)
        score = rm.soft(w).mean(1) if criterion == "mask" and rm.learned else (rm.soft(w) * w).abs().sum(1)
        live = rm.hard[:, 0] > 0
        n_live = int(live.sum())
        n_cut = min(int(round(rate * n_live)), n_live - 1)  # never remove a layer entirely
        if n_cut > 0:
            score = score.masked_fill(~live, float("inf"))
            cut = torch.argsort(score, stable=True)[:n_cut]
            rm.hard[cut] = 0.0
        alive[name] = int((rm.hard > 0).sum())
    return alive


def alive_fraction(masks: dict[str, RowMask]) -> dict[str, float]:
    return {n: float((m.hard > 0).float().mean()) for n, m in masks.items()}


def pruned_flops(model: nn.Module, batch, masks: dict[str, RowMask], *args) -> tuple[int, int]:
    """(FLOPs with pruned rows removed, FLOPs of the unpruned model) for one forward pass on ``batch``.

    A dead output row of layer L saves its share of L's FLOPs; inputs of the next layer that are fed by
    dead rows are not removed (their value is a constant, which a deployment could fold: we do not count that).
    """
    prof = profile(model, batch, *args)
    frac = alive_fraction(masks)
    full = kept = 0.0
    for op in prof.ops:
        if ".parametrizations." in op.module:
            continue  # the mask generators are folded into the weights at deployment
        f = frac.get(op.module) if op.kind == "linear" else None
        full += op.flops
        kept += op.flops * (1.0 if f is None else f)
    return int(round(kept)), int(full)


@dataclass
class PruneRound:
    round: int
    alive_rows: int
    total_rows: int
    flops: int
    flops_full: int
    metrics: dict = field(default_factory=dict)
    plain: bool = False  # trained without learned gates (hard mask only)

    @property
    def flops_kept(self) -> float:
        return self.flops / max(self.flops_full, 1)


def iterative_prune(model: nn.Module, train_fn: Callable[[nn.Module, int], dict], batch, rounds: int = 3, rate: float = 0.2,
                    select=None, criterion: str = "mask", progress: bool = True,
                    refit_plain: bool = False) -> tuple[nn.Module, list[PruneRound]]:
    """Lottery-ticket loop: round 0 trains the dense model; each later round rewinds the backbone to its
    initial weights, trains under the current mask, and prunes ``rate`` of the surviving rows first.

    ``train_fn(model, round) -> metrics`` trains in place (e.g. ``companion.train.fit``) and returns test metrics.
    Returns the model after the last round and one :class:`PruneRound` per round (round 0 = unpruned).
    ``refit_plain``: append one more round (``plain=True``, same round number as the last) that rewinds and
    trains under the final hard mask with the learned gates off. For the magnitude criterion the last round
    already is such a model (no gates, same rewind, same ``train_fn``), so its metrics are reused.
    """
    from ..progress import tqdm

    if rounds < 0:
        raise ValueError(f"rounds must be >= 0, got {rounds}")
    model = copy.deepcopy(model)
    masks = attach_masks(model, select, learned=(criterion == "mask"))
    init = {n: _original(model.get_submodule(n)).detach().clone() for n in masks}
    init_other = {k: v.detach().clone() for k, v in model.state_dict().items() if "parametrizations" not in k and ".hard" not in k}
    total = sum(m.hard.numel() for m in masks.values())
    out = []
    for r in tqdm(range(rounds + 1), desc=f"prune ({criterion})", disable=not progress, leave=False):
        if r > 0:
            prune_step(model, masks, rate, criterion)
            with torch.no_grad():  # rewind the backbone, keep the masks
                model.load_state_dict(init_other, strict=False)
                for n in masks:
                    _original(model.get_submodule(n)).copy_(init[n])
        metrics = train_fn(model, r)
        fl, full = pruned_flops(model, batch, masks)
        out.append(PruneRound(r, sum(int((m.hard > 0).sum()) for m in masks.values()), total, fl, full, metrics or {},
                              plain=criterion != "mask"))
    if refit_plain:
        last = out[-1]
        if criterion == "mask":
            for rm in masks.values():
                rm.learned = False  # soft() is now all ones: only the hard 0/1 mask remains
            with torch.no_grad():
                model.load_state_dict(init_other, strict=False)
                for n in masks:
                    _original(model.get_submodule(n)).copy_(init[n])
            metrics = train_fn(model, rounds)
        else:
            metrics = last.metrics
        fl, full = pruned_flops(model, batch, masks)
        out.append(PruneRound(rounds, last.alive_rows, total, fl, full, metrics or {}, plain=True))
    return model, out


def expected_alive(n: int, rounds: int, rate: float = 0.2) -> int:
    """Rows left after ``rounds`` prune steps on an ``n``-row layer, with the same rounding as :func:`prune_step`."""
    for _ in range(rounds):
        n -= min(int(round(rate * n)), n - 1)
    return n

