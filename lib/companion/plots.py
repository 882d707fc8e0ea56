"""Seaborn helpers: one house style, and every figure both shown and saved under the run's figures/."""
from __future__ import annotations

from pathlib import Path

import matplotlib

import matplotlib.pyplot as plt
import seaborn as sns

from .runtime import run_dir

_STYLE_SET = False


def style() -> None:
    global _STYLE_SET
    if not _STYLE_SET:
        sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
        _STYLE_SET = True


def figure(*args, **kwargs):
    """``plt.subplots`` in the house style."""
    style()
    kwargs.setdefault("constrained_layout", True)
    return plt.subplots(*args, **kwargs)


def save(fig, name: str, slug: str, show: bool = True) -> Path:
    """Save ``fig`` as ``<run>/figures/<name>.png`` and display it inline (in a notebook)."""
    path = run_dir(slug) / "figures" / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    if show and "inline" in matplotlib.get_backend().lower():
        plt.show()
    else:
        plt.close(fig)
    return path
