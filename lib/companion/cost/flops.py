"""FLOPs and parameter counts of any model, attributed to the module that spent them.

The counter works at the Python level (a ``TorchFunctionMode``): it sees ``F.linear``, ``@``/``matmul``,
``bmm``, ``mm``, ``einsum`` and attention calls with the shapes they were given, so a weight-sharing
supernet that slices a big weight down to a subnet's width is charged for the slice it actually used.
That is the number a subnet costs, which the dispatcher-level ``torch.utils.flop_counter`` (used in the
tests as the reference) also reports. Convention: one multiply-add = 2 FLOPs, bias and element-wise ops free.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["OpRecord", "Profile", "profile", "count_flops", "count_params", "ModuleScope"]


@dataclass
class OpRecord:
    """One matrix product seen during a forward pass."""

    module: str  # dotted name of the innermost module that issued it ('' = the root)
    kind: str  # linear | matmul | attention | einsum
    flops: int
    rows: int = 0  # linear only: how many input vectors went through the weight (batch x tokens)
    in_features: int = 0  # linear only
    out_features: int = 0  # linear only
    shapes: tuple = ()


@dataclass
class Profile:
    ops: list[OpRecord] = field(default_factory=list)
    batch_size: int = 1

    @property
    def flops(self) -> int:
        return sum(o.flops for o in self.ops)

    @property
    def flops_per_sample(self) -> float:
        return self.flops / max(self.batch_size, 1)

    def by_module(self, depth: int | None = None) -> dict[str, int]:
        """FLOPs summed per module name, optionally cut to the first ``depth`` name components."""
        out: dict[str, int] = defaultdict(int)
        for o in self.ops:
            name = o.module if depth is None else ".".join(o.module.split(".")[:depth])
            out[name] += o.flops
        return dict(out)

    def table(self):
        import pandas as pd

        return pd.DataFrame([vars(o) for o in self.ops])


class ModuleScope:
    """Keeps the dotted name of the module currently running, via forward pre/post hooks on every submodule."""

    def __init__(self, model: nn.Module):
        self.stack: list[str] = [""]
        self.handles = []
        for name, mod in model.named_modules():
            if not name:
                continue
            self.handles.append(mod.register_forward_pre_hook(self._enter(name)))
            self.handles.append(mod.register_forward_hook(self._leave(name), always_call=True))

    def _enter(self, name):
        def hook(_mod, _args):
            self.stack.append(name)

        return hook

    def _leave(self, name):
        def hook(_mod, _args, _out):
            if self.stack and self.stack[-1] == name:
                self.stack.pop()

        return hook

    @property
    def current(self) -> str:
        return self.stack[-1]

    def close(self):
        for h in self.handles:
            h.remove()
        self.handles.clear()


def _numel(shape) -> int:
    return int(math.prod(shape))


def _matmul_flops(a: torch.Size, b: torch.Size) -> int:
    """2*M*N*K with broadcasting of leading dims, for the 1-D/2-D/N-D cases of ``torch.matmul``."""
    a, b = list(a), list(b)
    if len(a) == 1:
        a = [1] + a
    if len(b) == 1:
        b = b + [1]
    m, k, n = a[-2], a[-1], b[-1]
    batch = torch.broadcast_shapes(torch.Size(a[:-2]), torch.Size(b[:-2]))
    return 2 * _numel(batch) * m * n * k


def _einsum_flops(eq: str, operands) -> int:
    """Pairwise left-to-right: each two-operand contraction costs 2 x the product of all its index sizes."""
    eq = eq.replace(" ", "")
    lhs, _, out = eq.partition("->")
    terms = lhs.split(",")
    if "..." in eq:
        raise NotImplementedError(f"FLOP counting of einsum with '...' is not supported: {eq!r}")
    sizes = {}
    for term, op in zip(terms, operands):
        for ch, s in zip(term, op.shape):
            sizes[ch] = s
    if len(terms) == 1:
        return 0
    flops, acc = 0, terms[0]
    for t in terms[1:]:
        idx = set(acc) | set(t)
        flops += 2 * _numel([sizes[c] for c in idx])
        keep = set(out) | set("".join(terms[terms.index(t) + 1 :]))
        acc = "".join(c for c in dict.fromkeys(acc + t) if c in keep)
    return flops


def _mha_flops(args, kwargs) -> int:
    """nn.MultiheadAttention: q/k/v in-projections, scores, weighted sum, out-projection."""
    q, k = args[0], args[1]
    e = q.shape[-1]
    lq = q.shape[0]
    s = k.shape[0]
    b = q.shape[1] if q.dim() == 3 else 1  # (L, B, E) or unbatched (L, E)
    proj = 2 * b * e * e * (lq + 2 * s)
    attn = 2 * 2 * b * lq * s * e
    out = 2 * b * lq * e * e
    return proj + attn + out


_LINEAR = {F.linear}
_MATMUL_NAMES = {"matmul", "__matmul__", "__rmatmul__", "bmm", "mm"}
_ADD_MATMUL_NAMES = {"addmm", "baddbmm", "addbmm"}


class FlopMode(TorchFunctionMode):
    """Records every matrix product with the module it came from; optional ``transform`` may rewrite linear args."""

    def __init__(self, scope: ModuleScope | None = None, transform=None):
        super().__init__()
        self.scope = scope
        self.ops: list[OpRecord] = []
        self.transform = transform

    def _where(self) -> str:
        return self.scope.current if self.scope is not None else ""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        where = self._where()
        if func in _LINEAR:
            x, w = args[0], args[1]
            rows = _numel(x.shape[:-1])
            self.ops.append(OpRecord(where, "linear", 2 * rows * w.shape[0] * w.shape[1], rows, w.shape[1], w.shape[0], (tuple(x.shape), tuple(w.shape))))
            if self.transform is not None:
                args, kwargs = self.transform(where, args, kwargs)
        elif name in _MATMUL_NAMES and len(args) >= 2 and isinstance(args[1], torch.Tensor):
            self.ops.append(OpRecord(where, "matmul", _matmul_flops(args[0].shape, args[1].shape), shapes=(tuple(args[0].shape), tuple(args[1].shape))))
        elif name in _ADD_MATMUL_NAMES and len(args) >= 3:
            self.ops.append(OpRecord(where, "matmul", _matmul_flops(args[1].shape, args[2].shape), shapes=(tuple(args[1].shape), tuple(args[2].shape))))
        elif name == "einsum":
            eq = args[0]
            ops = args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
            self.ops.append(OpRecord(where, "einsum", _einsum_flops(eq, ops), shapes=tuple(tuple(o.shape) for o in ops)))
        elif func is F.multi_head_attention_forward:
            self.ops.append(OpRecord(where, "attention", _mha_flops(args, kwargs), shapes=(tuple(args[0].shape), tuple(args[1].shape))))
        elif func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            flops = 2 * _numel(q.shape[:-1]) * k.shape[-2] * q.shape[-1] + 2 * _numel(q.shape[:-1]) * k.shape[-2] * v.shape[-1]
            self.ops.append(OpRecord(where, "attention", flops, shapes=(tuple(q.shape), tuple(k.shape))))
        return func(*args, **kwargs)


def _batch_size(inputs) -> int:
    first = inputs[0] if inputs else None
    if isinstance(first, dict):
        for v in first.values():
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                return int(v.shape[0])
    if isinstance(first, torch.Tensor) and first.dim() > 0:
        return int(first.shape[0])
    return 1


def profile(model: nn.Module, *inputs, **kwargs) -> Profile:
    """Run ``model(*inputs)`` once without gradients and return every matrix product it issued."""
    scope = ModuleScope(model)
    mode = FlopMode(scope)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), mode:
            model(*inputs, **kwargs)
    finally:
        scope.close()
        model.train(was_training)
    return Profile(mode.ops, _batch_size(inputs))


def count_flops(model: nn.Module, *inputs, **kwargs) -> int:
    """Total FLOPs of one forward pass on ``inputs`` (2 per multiply-add)."""
    return profile(model, *inputs, **kwargs).flops


def count_params(model: nn.Module, trainable_only: bool = False, exclude: tuple[type, ...] = ()) -> int:
    """Parameter count; ``exclude=(nn.Embedding,)`` leaves out tables, whose size depends on the data, not the design."""
    seen, total = set(), 0
    for mod in model.modules():
        if exclude and isinstance(mod, exclude):
            for p in mod.parameters(recurse=False):
                seen.add(id(p))
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total
