"""Execute a paper's notebook with papermill after validating every parameter against its parameters cell.

Papermill alone only warns about an unknown parameter and never checks types; here an unknown name,
a wrongly typed value or a value outside its bound stops the run before any cell executes.
Each run gets ``outputs/<slug>/<run_id>/`` (executed notebook, HTML, results.json, figures/, run.log);
``outputs/<slug>/latest`` points at the newest finished run, so an interrupted run never hides a good one.
"""
from __future__ import annotations

import ast
import datetime as dt
import difflib
import json
import logging
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

from . import papers
from .results import jsonable
from .runtime import REPO_ROOT, versions

OUTPUTS = REPO_ROOT / "outputs"
_TYPE_RE = re.compile(r"^\s*(?P<type>int|float|bool|str|list|dict|[\w.+-]+(?:\|[\w.+-]+)+)\s*"
                      r"(?:(?P<op>>=|<=|≥|≤|>|<)\s*(?P<bound>-?[\d.eE+-]+))?\s*:\s*(?P<help>.*)$")
# "≥"/"≤" are accepted beside ">="/"<=" because papermill's own parameter inspection skips any line with two "=".
_OPS = {"≥": ">=", "≤": "<="}


class ParameterError(ValueError):
    """A parameter given to a notebook is unknown, mistyped or out of range (exit code 2)."""


class NotebookFailed(RuntimeError):
    """A cell raised; the partly executed notebook is kept beside the error."""


@dataclass
class Param:
    name: str
    default: Any
    type: str  # int | float | bool | str | list | dict | choices "a|b|c"
    help: str
    op: str | None = None
    bound: float | None = None

    @property
    def choices(self) -> list[str] | None:
        return self.type.split("|") if "|" in self.type else None

    def describe(self) -> str:
        bound = f"{self.op}{self.bound:g}" if self.op else ""
        return f"{self.name} ({self.type}{bound}, default {self.default!r}): {self.help}"


def _parameters_cell(nb_path: Path) -> str:
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    raise ParameterError(f"{nb_path.name} has no cell tagged 'parameters'")


def parse_parameters(nb_path: Path) -> list[Param]:
    """Read ``name = literal  # TYPE: help`` lines from the cell tagged ``parameters``."""
    src = _parameters_cell(nb_path)
    lines = src.splitlines()
    out = []
    for node in ast.parse(src).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        default = ast.literal_eval(node.value)
        line = lines[node.lineno - 1]
        comment = line.split("#", 1)[1].strip() if "#" in line[node.value.end_col_offset:] else ""
        m = _TYPE_RE.match(comment)
        if m:
            typ, hlp = m.group("type"), m.group("help").strip()
            op, bound = _OPS.get(m.group("op"), m.group("op")), (float(m.group("bound")) if m.group("bound") else None)
        else:
            typ = type(default).__name__ if default is not None else "str"
            hlp, op, bound = comment, None, None
        out.append(Param(name, default, typ, hlp, op, bound))
    return out


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def coerce(p: Param, value: Any) -> Any:
    """Turn a command-line string (or a YAML value) into the parameter's type, or raise ParameterError."""
    raw = value
    if isinstance(value, str) and value.strip().lower() in ("none", "null") and p.default is None:
        return None
    try:
        if p.choices:
            if str(value) not in p.choices:
                raise ParameterError(f"parameter {p.name!r} must be one of {p.choices}, got {raw!r}")
            return str(value)
        if p.type == "bool":
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise ParameterError(f"parameter {p.name!r} expects a bool (true/false), got {raw!r}")
        if p.type == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            v = int(value) if not isinstance(value, str) else int(value.strip())
        elif p.type == "float":
            if isinstance(value, bool):
                raise ValueError
            v = float(value)
        elif p.type in ("list", "dict"):
            v = yaml.safe_load(value) if isinstance(value, str) else value
            if not isinstance(v, list if p.type == "list" else dict):
                raise ValueError
        else:
            v = str(value)
    except ParameterError:
        raise
    except (TypeError, ValueError, yaml.YAMLError):
        raise ParameterError(f"parameter {p.name!r} expects {p.type}, got {raw!r}") from None
    if p.op is not None:
        ok = {">=": v >= p.bound, ">": v > p.bound, "<=": v <= p.bound, "<": v < p.bound}[p.op]
        if not ok:
            raise ParameterError(f"parameter {p.name!r} must be {p.op} {p.bound:g}, got {raw!r}")
    return v


def validate(spec: list[Param], given: dict) -> dict:
    """Check every given name and value against the notebook's parameters; return typed values."""
    by_name = {p.name: p for p in spec}
    out = {}
    for name, value in given.items():
        if name not in by_name:
            close = difflib.get_close_matches(name, by_name, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParameterError(f"unknown parameter {name!r}.{hint} Valid parameters: {', '.join(by_name)}")
        out[name] = coerce(by_name[name], value)
    return out


def load_param_file(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ParameterError(f"parameter file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParameterError(f"parameter file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"parameter file {path} must hold a mapping of name: value, got {type(data).__name__}")
    return data


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _device() -> str:
    import torch

    return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"


def _export_html(nb_path: Path, html_path: Path) -> None:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(nb_path, as_version=4))
    html_path.write_text(body)


def _failed_cell(nb_path: Path) -> tuple[int | None, str]:
    """Index and first source line of the cell that raised, plus the error, from the partly executed notebook."""
    nb = nbformat.read(nb_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
                return i, f"cell {i} of the executed notebook ({first[:60]!r}): {out.get('ename')}: {out.get('evalue')}"
    return None, "unknown cell"


def _point_latest(slug_dir: Path, run_dir: Path) -> None:
    link = slug_dir / "latest"
    tmp = slug_dir / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def run(slug: str, params: dict | None = None, scale: str | None = None, param_file=None,
        outputs: Path | None = None, progress: bool = True, html: bool = True) -> dict:
    """Validate, execute and record one notebook run; returns the run's results dict."""
    import papermill as pm

    paper = papers.get(slug)
    if not paper.built:
        raise ParameterError(f"paper {slug!r} has no notebook yet ({paper.notebook.name} is missing)")
    spec = parse_parameters(paper.notebook)
    given = load_param_file(param_file) if param_file else {}
    given.update(params or {})
    if scale is not None:
        given["scale"] = scale
    values = validate(spec, given)
    resolved_scale = values.get("scale", next((p.default for p in spec if p.name == "scale"), None))

    slug_dir = Path(outputs or OUTPUTS) / slug
    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{resolved_scale or 'run'}"
    run_dir = slug_dir / run_id
    n = 1
    while run_dir.exists():
        run_dir, n = slug_dir / f"{run_id}.{n}", n + 1
    (run_dir / "figures").mkdir(parents=True)
    out_nb, out_html, results_path = run_dir / f"{paper.notebook.stem}.ipynb", run_dir / f"{paper.notebook.stem}.html", run_dir / "results.json"

    handler = logging.FileHandler(run_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    pm_log = logging.getLogger("papermill")
    pm_log.addHandler(handler)
    pm_log.setLevel(logging.INFO)
    old_env = os.environ.get("COMPANION_RUN_DIR")
    os.environ["COMPANION_RUN_DIR"] = str(run_dir.resolve())
    status, error, t0 = "ok", None, time.perf_counter()
    try:
        pm.execute_notebook(str(paper.notebook), str(out_nb), parameters=values, kernel_name="python3",
                            progress_bar=progress, log_output=True, cwd=str(paper.notebook.parent))
    except pm.PapermillExecutionError as err:
        status = "failed"
        _, where = _failed_cell(out_nb) if out_nb.exists() else (None, f"cell {err.cell_index}")
        error = f"{where}"
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user (Ctrl-C)"
    finally:
        runtime = time.perf_counter() - t0
        pm_log.removeHandler(handler)
        handler.close()
        if old_env is None:
            os.environ.pop("COMPANION_RUN_DIR", None)
        else:
            os.environ["COMPANION_RUN_DIR"] = old_env

    record = json.loads(results_path.read_text()) if results_path.exists() else {"slug": slug}
    record.update({
        "status": status, "error": error, "run_id": run_dir.name, "scale": resolved_scale,
        "overrides": values, "runtime_s": round(runtime, 2), "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "git_commit": _git_commit(), "device": _device(), "notebook": out_nb.name,
        "title": paper.title, "arxiv": paper.arxiv,
    })
    record.setdefault("versions", versions())
    if html and out_nb.exists() and status != "interrupted":
        try:
            _export_html(out_nb, out_html)
            record["html"] = out_html.name
        except Exception as exc:  # the run itself is still recorded
            record["html_error"] = repr(exc)
    results_path.write_text(json.dumps(jsonable(record), indent=2))
    with open(run_dir / "run.log", "a") as fh:
        fh.write(f"status: {status}\nruntime_s: {runtime:.2f}\n" + (f"error: {error}\n" if error else ""))
    if status == "interrupted":
        raise KeyboardInterrupt(f"{slug}: run interrupted; partial output kept in {run_dir}, earlier runs untouched")
    _point_latest(slug_dir, run_dir)
    if status == "failed":
        raise NotebookFailed(f"{slug}: {error}\n  partly executed notebook kept at {out_nb}")
    return record
