"""What a notebook records: metrics, the paper-vs-run claims, and its resolved parameters.

The notebook writes ``results.json`` in its run directory; the runner then adds runtime, versions,
git commit and device, so a number is never separated from how it was produced.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, is_dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from .runtime import run_dir, versions

VERDICTS = ("reproduced", "not reproduced", "partly", "not tested")


def claim(text: str, paper, ours, verdict: str, note: str = "") -> dict:
    """One row of the paper-vs-run table: the paper's statement, its number, ours, and the verdict."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    return {"claim": text, "paper": paper, "ours": ours, "verdict": verdict, "note": note}


def jsonable(obj):
    """Convert numpy/torch/dataclass values into plain JSON types (NaN becomes null)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(asdict(obj))
    if isinstance(obj, SimpleNamespace):
        return jsonable(vars(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def save(slug: str, params, metrics: dict, claims: list[dict], headline: dict | None = None, **extra) -> Path:
    """Write ``results.json``; ``headline`` holds the few numbers the HTML report shows for this paper."""
    data = {
        "slug": slug,
        "params": params,
        "headline": headline or {},
        "metrics": metrics,
        "claims": claims,
        "versions": versions(),
        **extra,
    }
    path = run_dir(slug) / "results.json"
    path.write_text(json.dumps(jsonable(data), indent=2))
    print(f"recorded {path}")
    return path


def print_claims(claims: list[dict]) -> None:
    """The paper-vs-run table as plain text (the report renders the same rows as HTML)."""
    import pandas as pd

    with pd.option_context("display.max_colwidth", 80, "display.width", 200):
        print(pd.DataFrame(claims).to_string(index=False))
