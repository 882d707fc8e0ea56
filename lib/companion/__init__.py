"""Executable companion to ten papers: shared library behind the per-paper notebooks.

Submodules load on first use (``companion.params``, ``companion.train``...), so the CLI starts fast.
"""
import importlib

__version__ = "0.1.0"
_SUBMODULES = {"cli", "cluster", "compare", "cost", "data", "metrics", "models", "nas", "papers", "params", "plots", "points", "progress",
               "report", "results", "runner", "runtime", "systems", "train"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'companion' has no attribute {name!r}")
