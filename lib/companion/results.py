"""What a notebook records: metrics, the paper-vs-run claims, and its resolved parameters.

The notebook writes ``results.json`` in its run directory; the runner then adds runtime, versions,
git commit and device, so a number is never separated from how it was produced.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .runtime import run_dir, versions

from .evidence import VERDICTS, Evidence


def claim(text: str, paper, ours, evidence: Evidence, note: str = "") -> dict:
    """One row of the paper-vs-run table: the paper's statement, its number, ours, and the verdict.

    The verdict comes only from ``companion.evidence`` (an ``Evidence`` with the rule that produced it), so
    the table always shows why; ``evidence.not_tested(reason)`` records a claim this run does not measure.
    """
    if not isinstance(evidence, Evidence):
        raise TypeError(f"claim {text!r}: pass an evidence.Evidence (from companion.evidence), not {evidence!r}")
    return {"claim": text, "paper": paper, "ours": ours, "verdict": evidence.verdict, "rule": evidence.rule,
            "note": note, "evidence": evidence.detail}


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
    torch = sys.modules.get("torch")  # a tensor exists only if torch was imported: no import (seconds) for plain data
    if torch is not None and isinstance(obj, torch.Tensor):
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
    """The paper-vs-run table: an HTML table in a notebook (long cells wrap instead of running off the page),
    plain text in a terminal. The report renders the same rows."""
    import pandas as pd

    cols = ["claim", "paper", "ours", "verdict", "rule", "note"]
    df = pd.DataFrame(claims).reindex(columns=cols).fillna("")
    shell = sys.modules.get("IPython")
    if shell is not None and shell.get_ipython() is not None:
        from IPython.display import HTML, display

        style = ("<style>table.companion-claims td,table.companion-claims th{text-align:left!important;"
                 "vertical-align:top;white-space:normal}</style>")
        display(HTML(style + df.to_html(index=False, escape=True).replace(
            '<table border="1" class="dataframe">', '<table class="dataframe companion-claims">')))
        return
    with pd.option_context("display.max_colwidth", 90, "display.width", 220):
        print(df.to_string(index=False))
