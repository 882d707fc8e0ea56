"""Execute a paper's notebook with papermill after validating every parameter against its parameters cell.

Papermill alone only warns about an unknown parameter and never checks types; here an unknown name, a wrongly
typed, non-finite or out-of-range value stops the run before any cell executes (and before torch is imported).
Each run gets ``outputs/<slug>/<run_id>/`` (executed notebook, HTML, results.json, figures/, run.log), and
``results.json`` records a status for every way a run ends:

=============  ===========================================================  =====================
status         how the run ended                                            ``companion run`` exit
=============  ===========================================================  =====================
ok             every cell ran                                               0
failed         a cell raised (the cell and the error are named)             1, ``--all`` goes on
kernel-died    the kernel process died (killed from outside, out of memory) 1, ``--all`` goes on
error          papermill could not run the notebook at all                  1, ``--all`` goes on
interrupted    Ctrl-C, at any point (execution, HTML export, bookkeeping)   130, ``--all`` stops
=============  ===========================================================  =====================

The partly executed notebook is always kept. ``outputs/<slug>/latest`` moves only to a run that finished
``ok``, so a failed rerun never hides the last good one; the report names a later failed run beside it.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

from . import papers
from .params import (Param, ParameterError, check, coerce, load_param_file, parse_parameters,  # noqa: F401 (API)
                     validate)
from .runtime import REPO_ROOT, versions

OUTPUTS = Path(os.environ["COMPANION_OUTPUTS"]) if os.environ.get("COMPANION_OUTPUTS") else REPO_ROOT / "outputs"
STATUSES = ("ok", "failed", "kernel-died", "error", "interrupted")


class NotebookFailed(RuntimeError):
    """The run ended without finishing (a cell raised, the kernel died, papermill failed); it is recorded and its
    partly executed notebook kept. ``status`` and ``record`` say how."""

    def __init__(self, message: str, status: str = "failed", record: dict | None = None):
        super().__init__(message)
        self.status, self.record = status, record or {}


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C: the run is recorded as ``interrupted`` before this propagates."""


class RunSetupError(RuntimeError):
    """The run could not start: its folder under outputs/ cannot be created (read-only disk, permissions)."""


# ---------------------------------------------------------------- small helpers

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


def _plain(obj):
    """JSON-ready copy of a record (the notebook's own results.json is already plain; NaN becomes null)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return str(obj)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def _sigint_deferred():
    """Hold Ctrl-C while the record is written, so a second Ctrl-C cannot leave a run without its status."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    old = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        raise RunInterrupted("interrupted by the user (Ctrl-C) while the run was being recorded; the record is complete")


@contextlib.contextmanager
def _environment(**env: str):
    """Set the variables the kernel inherits (the runner's run folder, bars off) and restore them afterwards."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_BAR_RE = re.compile(r"\r|\d+%\|.*\||\d+/\d+ \[\d+:\d+")


def _strip_bars(text: str) -> str:
    """``text`` without progress-bar drawing: every ``\r`` redraw and every ``42%|####  | 21/50 [00:01<...]``
    line goes, warnings and log lines stay."""
    kept = [ln.rsplit("\r", 1)[-1] for ln in text.split("\n")]
    kept = [ln for ln in kept if ln.strip() and not _BAR_RE.search(ln)]
    return "\n".join(kept) + "\n" if kept else ""


class _NoProgress(logging.Filter):
    """Keep progress-bar refreshes out of run.log (565 KB per 10 minutes before): one line per real event."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args or not isinstance(record.msg, str) or not _BAR_RE.search(record.msg):
            return True
        record.msg = _strip_bars(record.msg).rstrip("\n")
        return bool(record.msg)


def _kernel_manager(log_path: Path):
    """A kernel manager whose kernel writes its own stderr (start-up warnings, the ZMQ tracebacks of a kernel shut
    down mid-cell by Ctrl-C, C-level warnings) into run.log instead of the terminal."""
    from jupyter_client import AsyncKernelManager

    class _KernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            with open(log_path, "ab") as fh:  # the kernel process keeps its own copy of the descriptor
                kw["stderr"] = fh
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return _KernelManager


class _NoOrphanTaskNoise(logging.Filter):
    """After Ctrl-C, nbclient's cell task dies with the kernel and asyncio reports "Task exception was never
    retrieved ... DeadKernelError" at garbage collection: the run is already recorded as interrupted."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None and isinstance(record.args, dict):
            exc = record.args.get("exception")
        text = str(record.msg)
        return not ("never retrieved" in text and type(exc).__name__ in ("DeadKernelError", "CancelledError",
                                                                          "KeyboardInterrupt"))


def _quiet_asyncio() -> None:
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _NoOrphanTaskNoise) for f in log.filters):
        log.addFilter(_NoOrphanTaskNoise())


def _export_html(nb_path: Path, html_path: Path) -> None:
    """HTML of the executed notebook without progress-bar output (the .ipynb keeps everything)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in (_without_bars(o) for o in cell.get("outputs", [])) if o is not None]
    body, _ = HTMLExporter().from_notebook_node(nb)
    _write_atomic(html_path, body)


def _without_bars(out):
    """Drop stderr text that is progress-bar drawing; keep the rest of stderr (warnings, log lines)."""
    if out.get("output_type") != "stream" or out.get("name") != "stderr":
        return out
    text = out.get("text", "")
    text = _strip_bars("".join(text) if isinstance(text, list) else text)
    if not text:
        return None
    out["text"] = text
    return out


def _cells(nb_path: Path):
    import nbformat

    try:
        return nbformat.read(nb_path, as_version=4).cells
    except Exception:  # a notebook cut off mid-write: say so instead of failing the record
        return None


def _cell_name(i: int, cell) -> str:
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return f"cell {i} of the executed notebook ({first[:60]!r})"


def _failed_cell(nb_path: Path) -> tuple[int | None, str, str | None]:
    """Index, description and exception name of the cell that raised, from the partly executed notebook."""
    for i, cell in enumerate(_cells(nb_path) or []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return i, f"{_cell_name(i, cell)}: {out.get('ename')}: {out.get('evalue')}", out.get("ename")
    return None, "unknown cell", None


def _last_started_cell(nb_path: Path) -> str:
    """The cell running when execution stopped: the last one papermill gave a start time."""
    started = [(i, c) for i, c in enumerate(_cells(nb_path) or [])
               if c.cell_type == "code" and c.get("metadata", {}).get("papermill", {}).get("start_time")]
    return _cell_name(*started[-1]) if started else "before the first cell"


def _point_latest(slug_dir: Path, run_dir: Path) -> None:
    """Atomically repoint ``latest`` (a unique temporary link renamed over it, so concurrent runs never collide)."""
    tmp = slug_dir / f".latest.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex}.tmp"
    tmp.symlink_to(run_dir.name)
    try:
        os.replace(tmp, slug_dir / "latest")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _new_run_dir(slug_dir: Path, run_id: str) -> Path:
    """Claim a fresh ``<run_id>[.n]`` folder: ``mkdir`` is the atomic test, so two runs started in the same second
    get different folders."""
    try:
        slug_dir.mkdir(parents=True, exist_ok=True)
        for n in range(10_000):
            run_dir = slug_dir / (run_id if n == 0 else f"{run_id}.{n}")
            try:
                run_dir.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"10000 runs named {run_id}.* already exist")
        (run_dir / "figures").mkdir(exist_ok=True)
    except OSError as err:
        where = err.filename or slug_dir
        raise RunSetupError(f"cannot create the run folder under {slug_dir}: {err.strerror or err} ({where}); "
                            "make outputs/ writable or point COMPANION_OUTPUTS at a writable folder") from None
    return run_dir


def runs(slug_dir: Path) -> list[tuple[Path, dict]]:
    """Every recorded run of a paper, oldest first (by the time the runner recorded it)."""
    out = []
    for d in Path(slug_dir).iterdir() if Path(slug_dir).is_dir() else []:
        if d.is_symlink() or not d.is_dir() or d.name.startswith("."):
            continue
        res = d / "results.json"
        try:
            rec = json.loads(res.read_text())
        except (OSError, json.JSONDecodeError):
            if not res.exists():
                continue
            rec = {"status": "error", "error": "results.json is not valid JSON"}
        out.append((d, rec))
    out.sort(key=lambda r: (str(r[1].get("finished") or ""), r[0].name))
    return out


# ---------------------------------------------------------------- the run

def prepare(slug: str, params: dict | None = None, scale: str | None = None, param_file=None):
    """Everything checked before a run starts (no torch, no papermill): the paper, the file, the values."""
    paper = papers.get(slug)
    if not paper.built:
        raise ParameterError(f"paper {slug!r} has no notebook yet ({paper.notebook.name} is missing)")
    spec = parse_parameters(paper.notebook)
    given = load_param_file(param_file) if param_file else {}
    cli = dict(params or {})
    if scale is not None and "scale" in cli and str(cli["scale"]).strip() != scale:
        raise ParameterError(f"--scale {scale} and -p scale {cli['scale']} disagree; give the scale once")
    given.update(cli)
    if scale is not None:
        given["scale"] = scale
    values = validate(spec, given)
    resolved_scale = values.get("scale", next((p.default for p in spec if p.name == "scale"), None))
    return paper, values, resolved_scale


def run(slug: str, params: dict | None = None, scale: str | None = None, param_file=None,
        outputs: Path | None = None, progress: bool = True, html: bool = True) -> dict:
    """Validate, execute and record one notebook run; returns the run's results dict.

    Raises ``ParameterError`` before anything runs, ``RunSetupError`` when the run folder cannot be made,
    ``NotebookFailed`` after recording a run that did not finish, ``RunInterrupted`` after recording Ctrl-C."""
    paper, values, resolved_scale = prepare(slug, params, scale, param_file)
    slug_dir = Path(outputs or OUTPUTS) / slug
    run_dir = _new_run_dir(slug_dir, dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{resolved_scale or 'run'}")
    stem = paper.notebook.stem
    out_nb, out_html, results_path = run_dir / f"{stem}.ipynb", run_dir / f"{stem}.html", run_dir / "results.json"

    status, error, stage, t0, runtime = "ok", None, "start", time.perf_counter(), None
    extra: dict = {}
    pm_log, handler = logging.getLogger("papermill"), None
    try:
        try:
            handler = logging.FileHandler(run_dir / "run.log")
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
            handler.addFilter(_NoProgress())
            pm_log.addHandler(handler)
            pm_log.setLevel(logging.INFO)
            stage = "execution"
            _quiet_asyncio()
            import papermill as pm
            from nbclient.exceptions import DeadKernelError

            with _environment(COMPANION_RUN_DIR=str(run_dir.resolve()), COMPANION_PROGRESS="0",
                              HF_DATASETS_DISABLE_PROGRESS_BARS="1"):
                try:
                    pm.execute_notebook(str(paper.notebook), str(out_nb), parameters=values, kernel_name="python3",
                                        progress_bar=progress, log_output=True, cwd=str(paper.notebook.parent),
                                        kernel_manager_class=_kernel_manager(run_dir / "run.log"))
                except pm.PapermillExecutionError as err:
                    _, where, ename = _failed_cell(out_nb) if out_nb.exists() else (None, f"cell {err.cell_index}", None)
                    if (ename or err.ename) == "KeyboardInterrupt":
                        status, error = "interrupted", f"interrupted inside the kernel, in {where.split(':')[0]}"
                    else:
                        status, error = "failed", where
                except DeadKernelError as err:
                    where = _last_started_cell(out_nb) if out_nb.exists() else "an unknown cell"
                    status = "kernel-died"
                    error = (f"the kernel died while running {where} ({err}); it was killed from outside, "
                             "most often by the out-of-memory killer: try a smaller scale or fewer rows")
                except Exception as err:  # papermill could not start or drive the notebook at all
                    status = "error"
                    detail = " ".join(str(err).split())[:300]
                    error = f"papermill could not run the notebook: {type(err).__name__}: {detail}"
            runtime = time.perf_counter() - t0
            if html and out_nb.exists() and status != "interrupted":
                stage = "HTML export"
                try:
                    _export_html(out_nb, out_html)
                    extra["html"] = out_html.name
                except Exception as exc:  # the run itself is still recorded
                    extra["html_error"] = f"{type(exc).__name__}: {exc}"
        except KeyboardInterrupt:
            status, error = "interrupted", f"interrupted by the user (Ctrl-C) during the {stage}"
        except Exception as err:  # a fault of the runner itself: still recorded, never as ok
            status, error = "error", f"the runner failed during the {stage}: {type(err).__name__}: {err}"
    finally:
        runtime = time.perf_counter() - t0 if runtime is None else runtime
        if handler is not None:
            pm_log.removeHandler(handler)
            handler.close()
        with _sigint_deferred():
            record = _record(slug, paper, run_dir, results_path, out_nb, status, error, values, resolved_scale,
                             runtime, extra)
            if status == "ok":
                _point_latest(slug_dir, run_dir)
    if status == "interrupted":
        raise RunInterrupted(f"{slug}: {error}; partial output kept in {run_dir}, earlier runs untouched")
    if status != "ok":
        what = {"failed": "failed", "kernel-died": "kernel died", "error": "could not run"}[status]
        kept = f"partly executed notebook kept at {out_nb}" if out_nb.exists() else f"run folder kept at {run_dir}"
        raise NotebookFailed(f"{slug} {what}: {error}\n  {kept}", status, record)
    return record


def _record(slug, paper, run_dir, results_path, out_nb, status, error, values, resolved_scale, runtime, extra):
    """Merge the notebook's results.json (if it got that far) with how the run ended, and write it atomically."""
    try:
        record = json.loads(results_path.read_text()) if results_path.exists() else {"slug": slug}
    except (OSError, json.JSONDecodeError):
        record = {"slug": slug, "results_error": "the notebook's results.json was unreadable"}
    if status == "ok" and not results_path.exists():
        record["warning"] = "the notebook finished without calling companion.results.save"
    record.update({
        "status": status, "error": error, "run_id": run_dir.name, "scale": resolved_scale,
        "overrides": values, "runtime_s": round(runtime, 2), "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "git_commit": _git_commit(), "notebook": out_nb.name, "title": paper.title, "arxiv": paper.arxiv, **extra,
    })
    try:  # importing torch takes seconds: not while the user is waiting for Ctrl-C to end the run
        record["device"] = _device() if status != "interrupted" else "not recorded (interrupted)"
    except Exception as exc:  # torch missing or broken: the record still says how the run ended
        record["device"] = f"unknown ({type(exc).__name__})"
    record.setdefault("versions", versions())
    _write_atomic(results_path, json.dumps(_plain(record), indent=2))
    with open(run_dir / "run.log", "a") as fh:
        fh.write(f"status: {status}\nruntime_s: {runtime:.2f}\n" + (f"error: {error}\n" if error else ""))
    return record
