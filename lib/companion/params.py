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
        if given is not None:
            _check_type(key, given, default)
        resolved[key], origin[key] = (default, scale) if given is None else (given, "set")
    if show:
        width = max(map(len, resolved), default=4)
        print(f"{'knob':<{width}}  {'value':<20} from")
        for key, val in resolved.items():
            print(f"{key:<{width}}  {str(val):<20} {origin[key]}")
    return SimpleNamespace(**resolved)


def _check_type(key: str, given, preset) -> None:
    """A knob set by hand must have its preset's type: the check that still runs under plain papermill,
    which passes a mistyped ``-p epochs abc`` straight into the notebook."""
    if preset is None:
        return
    if isinstance(preset, bool):
        ok, want = isinstance(given, bool), "bool"
    elif isinstance(preset, int):
        ok, want = isinstance(given, int) and not isinstance(given, bool), "int"
    elif isinstance(preset, float):
        ok, want = isinstance(given, (int, float)) and not isinstance(given, bool), "float"
    elif isinstance(preset, (list, tuple)):
        ok, want = isinstance(given, (list, tuple)), "list"
    elif isinstance(preset, str):
        ok, want = isinstance(given, str), "str"
    else:
        return
    if not ok:
        raise TypeError(f"parameter {key!r} expects {want} (like its preset {preset!r}), got {given!r}")
