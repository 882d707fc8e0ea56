"""Fake quantization (quantization-aware training) of the matrix products of chosen modules.

Weights and the activations entering each ``F.linear`` are rounded to a per-tensor symmetric grid in the
forward pass; the backward pass lets gradients straight through (``torch.fake_quantize_per_tensor_affine``
does exactly this), so a network trained under a bit-width learns to live with it. Which bit-width applies
is decided per call from the name of the module that issued it, so a weight-sharing supernet that slices
its weights inside one big module still gets the bits of the operator being run.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from .flops import FlopMode, ModuleScope

__all__ = ["fake_quant", "QuantPolicy", "FakeQuantModel", "quantized"]

Bits = tuple[int | None, int | None]  # (weight bits, activation bits); None = leave in float


def fake_quant(x: torch.Tensor, bits: int | None, signed: bool | None = None) -> torch.Tensor:
    """Round ``x`` to ``bits`` bits, per tensor, symmetric around 0 (unsigned when ``x`` has no negatives)."""
    if bits is None or bits >= 32:
        return x
    if not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits must be a positive integer or None, got {bits!r}")
    with torch.no_grad():
        if signed is None:
            signed = bool((x < 0).any())
        if signed and bits < 2:
            raise ValueError("signed fake-quant needs at least 2 bits")
        qmax = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
        qmin = -qmax if signed else 0
        amax = x.abs().max().float().clamp_min(1e-8)
        scale = (amax / qmax).reshape(1)
    zero = torch.zeros(1, dtype=torch.int32, device=x.device)
    return torch.fake_quantize_per_tensor_affine(x, scale.to(x.device), zero, qmin, qmax)


class QuantPolicy:
    """Maps a module name to (weight bits, activation bits): longest matching dotted prefix wins.

    ``rules`` may be a dict ``{prefix: (w_bits, a_bits)}`` (the prefix '' matches everything) or a callable
    ``name -> (w_bits, a_bits) | None``. It can be changed between forward passes with :meth:`set`, which
    is how a supernet trains under a different sampled bit assignment at every step.
    """

    def __init__(self, rules: Mapping[str, Bits] | Callable[[str], Bits | None] | None = None):
        self.set(rules)

    def set(self, rules) -> "QuantPolicy":
        if rules is not None and not callable(rules):
            for k, v in dict(rules).items():
                if not (isinstance(v, (tuple, list)) and len(v) == 2):
                    raise ValueError(f"quant rule for {k!r} must be (weight_bits, activation_bits), got {v!r}")
            rules = dict(rules)
        self.rules = rules
        return self

    def __call__(self, name: str) -> Bits | None:
        if self.rules is None:
            return None
        if callable(self.rules):
            return self.rules(name)
        best, best_len = None, -1
        for prefix, bits in self.rules.items():
            if (prefix == "" or name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = bits, len(prefix)
        return best


def _transform(policy: QuantPolicy):
    def apply(where, args, kwargs):
        bits = policy(where)
        if bits is None:
            return args, kwargs
        wb, ab = bits
        x, w = args[0], args[1]
        return (fake_quant(x, ab), fake_quant(w, wb, signed=True), *args[2:]), kwargs

    return apply


class quantized:
    """Context manager: every ``F.linear`` inside ``model`` runs fake-quantized under ``policy``."""

    def __init__(self, model: nn.Module, policy: QuantPolicy, scope: ModuleScope | None = None):
        self.model, self.policy = model, policy
        self._own_scope = scope is None
        self.scope = scope
        self.mode = None

    def __enter__(self):
        if self.scope is None:
            self.scope = ModuleScope(self.model)
        self.mode = FlopMode(self.scope, transform=_transform(self.policy))
        self.mode.__enter__()
        return self.mode

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)
        if self._own_scope:
            self.scope.close()
            self.scope = None
        return False


class FakeQuantModel(nn.Module):
    """Wraps a CTR model so that training and evaluation (e.g. ``companion.train.fit``) run fake-quantized."""

    def __init__(self, model: nn.Module, policy: QuantPolicy | Mapping | None = None):
        super().__init__()
        self.inner = model
        self.policy = policy if isinstance(policy, QuantPolicy) else QuantPolicy(policy)
        self._scope = ModuleScope(model)

    def forward(self, *args, **kwargs):
        with quantized(self.inner, self.policy, scope=self._scope):
            return self.inner(*args, **kwargs)
