"""Scale presets: ``scale`` picks a row of a notebook's preset table; any knob set explicitly wins.

A knob left at ``None`` in the parameters cell takes the preset value for the chosen scale, so
``-p scale laptop -p epochs 3`` means "the laptop preset, but 3 epochs".
"""
from __future__ import annotations

from types import SimpleNamespace

SCALES = ("quick", "laptop", "paper")


def resolve(presets: dict[str, dict], scale: str, namespace: dict, show: bool = True) -> SimpleNamespace:
    """Merge the preset row for ``scale`` with the knobs the caller set (non-None names in ``namespace``)."""
    if scale not in presets:
        raise ValueError(f"unknown scale {scale!r}; this notebook has presets for {sorted(presets)}")
    row = presets[scale]
    resolved, origin = {}, {}
    for key, default in row.items():
        given = namespace.get(key)
        resolved[key], origin[key] = (default, scale) if given is None else (given, "set")
    if show:
        width = max(map(len, resolved), default=4)
        print(f"{'knob':<{width}}  {'value':<20} from")
        for key, val in resolved.items():
            print(f"{key:<{width}}  {str(val):<20} {origin[key]}")
    return SimpleNamespace(**resolved)
