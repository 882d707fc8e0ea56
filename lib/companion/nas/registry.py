"""The operator registry: one entry per operator any search space may use, so a new operator is one entry.

An :class:`OpSpec` says what an operator reads (``kind``: how a block calls it), how to build it from a context
of sizes (``build(ctx) -> nn.Module``), what it costs (``flops(ctx)``: multiply-adds per sample, analytic, so a
FLOPs limit is checked before any training; when omitted, :func:`measured_flops` counts a built copy on a dummy
input) and how a processing-in-memory accelerator runs it (``pim``: which of its weights sit in crossbars, what
runs in digital logic). Spaces list operator names; the NASRec supernet builds its choice blocks from here.

Kinds used so far: ``dense_unary`` (reads concatenated dense inputs), ``dense_binary`` (a left and a right dense
input), ``dense_sparse`` (dense and token inputs, dense output), ``sparse`` (tokens in, tokens out). Other
spaces (Rankitect, DistDNAS) register their own kinds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

REGISTRY: dict[str, "OpSpec"] = {}


@dataclass(frozen=True)
class OpSpec:
    name: str
    kind: str
    build: Callable[[dict], Any]
    flops: Callable[[dict], int] | None = None
    pim: str = "crossbar: every Linear weight"
    doc: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)


def register(spec: OpSpec, *, replace: bool = False) -> OpSpec:
    if spec.name in REGISTRY and not replace:
        raise ValueError(f"operator {spec.name!r} is already registered (kind {REGISTRY[spec.name].kind}); "
                         f"pass replace=True to redefine it")
    REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> OpSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown operator {name!r}; registered: {sorted(REGISTRY)}") from None


def names(*kinds: str, tag: str | None = None) -> tuple[str, ...]:
    """Registered operators of the given kinds (all without kinds), in registration order."""
    return tuple(n for n, s in REGISTRY.items() if (not kinds or s.kind in kinds) and (tag is None or tag in s.tags))


def build(name: str, ctx: dict):
    return get(name).build(ctx)


def measured_flops(name: str, ctx: dict, *inputs) -> int:
    """FLOPs (2 per multiply-add) of one call of a freshly built operator on ``inputs``, per sample of the batch."""
    from ..cost.flops import count_flops
    spec = get(name)
    if spec.flops is not None:
        return 2 * int(spec.flops(ctx))
    mod = spec.build(ctx)
    b = inputs[0].shape[0] if inputs and hasattr(inputs[0], "shape") else 1
    return int(count_flops(mod, *inputs) // max(b, 1))


# --------------------------------------------------------------------------------------------------- NASRec
# Contexts: d_in (dense input width), t_in (input tokens), D / T (output width / tokens), E (embedding width),
# k (dot-product compression), heads, w_left / w_mid (binary ops' operand widths), ln (LayerNorm on/off).
def _nasrec(name, kind, make, flops, doc, pim="crossbar: every Linear weight"):
    register(OpSpec(name, kind, make, flops, pim, doc, ("nasrec",)))


def _fc(c):
    from .supernet import FCOp
    return FCOp(c["d_in"], c["D"], c["ln"])


def _gating(c):
    from .supernet import GatingOp
    return GatingOp(c["w_left"], c["w_mid"], c["D"], c["ln"])


def _sum(c):
    from .supernet import SumOp
    return SumOp(c["w_mid"], c["D"], c["ln"])


def _dot(c):
    from .supernet import DotOp
    return DotOp(c["d_in"], c["t_in"], c["k"], c["E"], c["D"], c["ln"])


def _efc(c):
    from .supernet import EFCOp
    return EFCOp(c["t_in"], c["T"], c["ln"])


def _attn(c):
    from .supernet import AttnOp
    return AttnOp(c["t_in"], c["T"], c["E"], c["heads"], c["ln"])


_nasrec("fc", "dense_unary", _fc, lambda c: c["d_in"] * c["D"], "FC over the concatenated dense inputs")
_nasrec("gating", "dense_binary", _gating, lambda c: c["w_left"] * c["w_mid"] + c["w_mid"] * c["D"],
        "sigmoid gate of one dense input applied to the other, then FC",
        pim="crossbar: gate and output FC; sigmoid and product digital")
_nasrec("sum", "dense_binary", _sum, lambda c: c["w_mid"] * c["D"], "sum of two dense inputs, then FC",
        pim="crossbar: output FC; the sum digital")
_nasrec("dot", "dense_sparse", _dot, None, "pairwise dot products of the tokens and a projected dense token, then FC",
        pim="crossbar: projections and output FC; the pairwise products digital (they have no stored weights)")
_nasrec("efc", "sparse", _efc, lambda c: c["t_in"] * c["T"] * c["E"], "FC over the token axis")
_nasrec("attn", "sparse", _attn, None, "token projection, then a Transformer encoder layer",
        pim="crossbar: Q/K/V/O, FFN and token projection; attention scores digital")
