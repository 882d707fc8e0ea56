"""A restricted unpickler for data files that ship as pickles (NAS-Bench-Graph's ``.bench`` tables).

``pickle.load`` runs whatever callable a file names, so an untrusted pickle is code. These benchmark files only
need builtins containers and NumPy's scalar/array reconstruction, so :class:`SafeUnpickler` resolves exactly those
globals and refuses every other one with an error that names it (``os.system``, ``builtins.eval``, a class of some
package...). Containers built from opcodes (dict, list, tuple, set) need no global at all; the few builtins that a
pickle may reach by name are the plain value types below.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allowed set; nothing it names was imported or called."""


def _allowed() -> dict[tuple[str, str], object]:
    from numpy._core import multiarray  # numpy >= 2; numpy 1.x pickles say numpy.core.multiarray

    table = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(mod, "scalar")] = multiarray.scalar
        table[(mod, "_reconstruct")] = multiarray._reconstruct
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(mod, "_frombuffer")] = np._core.numeric._frombuffer
    for name in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool", "str", "bytes",
                 "bytearray", "slice", "range"):
        table[("builtins", name)] = getattr(__import__("builtins"), name)
    return table


ALLOWED = _allowed()


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only :data:`ALLOWED` (NumPy array/dtype/scalar
    reconstruction and builtins value types)."""

    def find_class(self, module: str, name: str):
        obj = ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"refusing to load: the pickle names the global {module}.{name}, which is not a NumPy array/dtype "
                f"constructor or a builtins container (allowed: {sorted(f'{m}.{n}' for m, n in ALLOWED)})")
        return obj

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing to load: the pickle asks for a persistent object {pid!r}")


def loads(data: bytes):
    """Unpickle bytes, admitting only NumPy and builtins containers."""
    return SafeUnpickler(io.BytesIO(data)).load()


def load(path) -> object:
    """Unpickle a file, admitting only NumPy and builtins containers."""
    with open(Path(path), "rb") as fh:
        return SafeUnpickler(fh).load()
