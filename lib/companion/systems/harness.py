"""Measured runs: a process group started once under ``torchrun`` (gloo on CPU) and fed one configuration at a
time, so a measurement costs well under a second instead of a fresh launch (several seconds of process start,
``import torch`` and rendezvous) per configuration.

The driver writes ``job-NNNNNN.json`` into a job directory and waits for rank 0's ``result-NNNNNN.json``
(a file queue: nothing to install, survives any rank's death, and a test can read it). Each rank of
``companion.systems._worker`` builds the model for the configuration, runs warm-up steps, then ``repeats``
timed windows of the same number of steps (chosen from the warm-up step time so a window lasts about
``target_s``) and reports the median samples/s over the windows, and the peak resident memory above the
process's size before the job (the kernel's high-water mark, reset per job through ``/proc/self/clear_refs``).

Outcomes: ``ok``; ``infeasible`` (peak memory over ``memory_budget_mb``, recorded like an out-of-memory job);
``failed`` (the job raised, a rank died, or no result came within ``timeout_s``: the whole group is killed and
the next measurement starts a fresh one). ``Harness.objective`` is the function ``run_search`` calls: it returns
the metrics with the machine they were measured on, and raises :class:`Infeasible` or :class:`MeasurementFailed`
so the trial store records the trial as failed with the reason and the search goes on.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import distributed
from .model import JobShape


WARM_CONFIG = {"batch": 64, "threads": 1, "precision": "bf16", "checkpoint": True, "emb_grad": "dense",
               "optimizer": "adam", "accum": 2, "emb_dim": 16, "world": 1, "bucket_mb": 25}


class MeasurementFailed(RuntimeError):
    """The job crashed or hung; the message says which and why."""


class Infeasible(RuntimeError):
    """The job ran but needed more memory than the budget (an out-of-memory job on a real machine)."""


@dataclass
class MeasureSettings:
    warmup: int = 1          # untimed optimizer steps before the timed windows (the last one sets the window length)
    repeats: int = 3         # timed windows; the median is reported
    target_s: float = 0.08   # length of one timed window
    max_steps: int = 50      # cap on steps per window
    slow_step_s: float = 2.0  # a warm step slower than this ends the job: throughput from that one step


@dataclass
class Harness:
    nproc: int = 2
    settings: MeasureSettings = field(default_factory=MeasureSettings)
    memory_budget_mb: float | None = None
    timeout_s: float = 30.0          # per measurement: past this the job counts as hung
    startup_timeout_s: float = 180.0
    shape: JobShape = field(default_factory=JobShape)
    poll_s: float = 0.002

    def __post_init__(self):
        self.proc = None
        self.jobdir: Path | None = None
        self.logdir: Path | None = None
        self.n = 0
        self.machine: dict = {}
        self.starts = 0
        self.startup_s: list[float] = []
        self.log: list[dict] = []

    # ------------------------------------------------------------------ process group
    def start(self) -> "Harness":
        if self.proc is not None and self.proc.poll() is None:
            return self
        t0 = time.perf_counter()
        self.jobdir = Path(tempfile.mkdtemp(prefix="companion_harness_"))
        self.logdir = self.jobdir / "logs"
        self.logdir.mkdir()
        self.n = 0
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.nproc}",
               f"--log-dir={self.logdir}", "--redirects=3", "-m", "companion._rank_entry", "--record-dir",
               str(self.logdir), "--module", "companion.systems._worker", str(self.jobdir)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "COMPANION_POLL_S": str(self.poll_s),
               "COMPANION_DRIVER_PID": str(os.getpid()),
               "COMPANION_COLLECTIVE_S": str(max(10.0, self.timeout_s)),
               # large buffers go straight to mmap and back to the kernel when freed, so one job's memory does
               # not hide in the heap of the next job's measurement
               "MALLOC_MMAP_THRESHOLD_": "131072"}
        env.pop("RANK", None)
        env.pop("WORLD_SIZE", None)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._out = open(self.jobdir / "torchrun.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if not getattr(self, "_atexit", False):
            atexit.register(self.close)
            self._atexit = True
        ready = self.jobdir / "ready.json"
        while not ready.exists():
            if self.proc.poll() is not None or time.perf_counter() - t0 > self.startup_timeout_s:
                why = self._tail()
                self._kill()
                raise RuntimeError(f"the measurement group did not start ({why})")
            time.sleep(0.01)
        self.machine = json.loads(ready.read_text())["machine"]
        # the first job of a process pays one-time costs (lazy imports, gloo connections, DDP's reducer, autocast
        # kernels): run them here, under the startup timeout, so no measurement carries them
        for w in sorted({1, self.nproc}):
            res = self._send({"kind": "measure", "config": {**WARM_CONFIG, "world": w}, "fault": None, "seed": 0,
                              "settings": asdict(MeasureSettings(1, 1, 0.0, 1, float("inf"))), "shape": asdict(JobShape(rows_per_table=100))})
            while not res.exists():
                if self.proc.poll() is not None or time.perf_counter() - t0 > self.startup_timeout_s:
                    why = self._tail()
                    self._kill()
                    raise RuntimeError(f"the measurement group's warm-up job failed ({why})")
                time.sleep(0.01)
        self.starts += 1
        self.startup_s.append(time.perf_counter() - t0)
        return self

    def _tail(self, n: int = 1500) -> str:
        parts = []
        if self.logdir is not None:
            for p in sorted(self.logdir.glob("*/attempt_*/*/stderr.log")):
                txt = p.read_text(errors="replace").strip()
                if txt:
                    parts.append(f"rank {p.parent.name}: {txt[-n:]}")
        if not parts and self.jobdir is not None and (self.jobdir / "torchrun.log").exists():
            parts.append((self.jobdir / "torchrun.log").read_text(errors="replace")[-n:])
        return "\n".join(parts) or "no output"

    def _kill(self) -> None:
        if self.proc is not None:
            distributed._kill_job(self.proc, self.logdir)
            self.proc = None
        if getattr(self, "_out", None):
            self._out.close()
            self._out = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._send({"kind": "stop"})
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._kill()
        if self.jobdir is not None:
            shutil.rmtree(self.jobdir, ignore_errors=True)
            self.jobdir = None

    def __enter__(self) -> "Harness":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, job: dict) -> Path:
        path = self.jobdir / f"job-{self.n:06d}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(job))
        os.replace(tmp, path)
        res = self.jobdir / f"result-{self.n:06d}.json"
        self.n += 1
        return res

    # ------------------------------------------------------------------ one measurement
    def measure(self, cfg: dict, seed: int = 0, fault: str | None = None) -> dict:
        """Measure one configuration: a dict with ``status`` (ok / infeasible / failed) and, when it ran,
        ``samples_per_s``, ``peak_mb``, the per-window ``rates``; always ``wall_s`` and the machine."""
        t0 = time.perf_counter()
        try:
            self.start()
        except RuntimeError as e:
            return self._record({"status": "failed", "error": str(e)}, cfg, t0)
        job = {"kind": "measure", "config": dict(cfg), "settings": asdict(self.settings), "seed": int(seed),
               "shape": asdict(self.shape), "fault": fault}
        res = self._send(job)
        t_sent = time.perf_counter()
        while not res.exists():
            if self.proc.poll() is not None:
                time.sleep(0.05)  # rank 0 may be writing its error
                if res.exists():
                    break
                why = self._tail()
                self._kill()
                return self._record({"status": "failed", "error": f"a rank died without a result: {why}"}, cfg, t0)
            if time.perf_counter() - t_sent > self.timeout_s:
                self._kill()
                return self._record({"status": "failed", "error": f"no result within {self.timeout_s:g} s (hung); "
                                     "the process group was killed and will be restarted"}, cfg, t0)
            time.sleep(self.poll_s)
        out = json.loads(res.read_text())
        if "error" in out:
            self._kill()
            return self._record({"status": "failed", "error": out["error"]}, cfg, t0)
        m = dict(out["ok"], status="ok")
        if self.memory_budget_mb is not None and m["peak_mb"] > self.memory_budget_mb:
            m["status"] = "infeasible"
            m["error"] = f"peak memory {m['peak_mb']:.0f} MB > budget {self.memory_budget_mb:g} MB per process"
        return self._record(m, cfg, t0)

    def _record(self, m: dict, cfg: dict, t0: float) -> dict:
        m["wall_s"] = time.perf_counter() - t0
        m.update({f"machine_{k}": v for k, v in self.machine.items()})
        self.log.append({"config": dict(cfg), **m})
        return m

    def objective(self, cand: dict, seed: int = 0) -> dict:
        """For ``run_search``: the metrics of an ``ok`` measurement, else raise (the trial is recorded failed)."""
        m = self.measure(cand, seed)
        if m["status"] == "infeasible":
            raise Infeasible(m["error"])
        if m["status"] == "failed":
            raise MeasurementFailed(m["error"])
        return m


class Memo:
    """Measure each distinct configuration once per run (searchers that propose the same job share its result,
    so comparisons at equal measurement budgets do not pay twice and see the same number for the same job).

    ``infeasible_reward``: ``None`` makes an out-of-memory job a failed trial (the searcher learns nothing from
    it); a number reports it as that throughput with ``feasible: False`` (the penalty the paper's loop needs to
    learn where memory runs out; the trial record keeps the reason in ``metrics["error"]``). A crashed or hung job
    is always a failed trial."""

    def __init__(self, harness: Harness, space, infeasible_reward: float | None = None):
        self.harness, self.space, self.infeasible_reward = harness, space, infeasible_reward
        self.cache: dict[str, dict] = {}
        self.fresh = 0

    def __call__(self, cand: dict, seed: int = 0) -> dict:
        k = self.space.key(cand)
        if k not in self.cache:
            self.cache[k] = self.harness.measure(cand, seed)
            self.fresh += 1
        m = dict(self.cache[k])
        if m["status"] == "infeasible":
            if self.infeasible_reward is None:
                raise Infeasible(m["error"])
            return {**m, "measured_samples_per_s": m.get("samples_per_s"), "samples_per_s": self.infeasible_reward,
                    "feasible": False}
        if m["status"] == "failed":
            raise MeasurementFailed(m["error"])
        return {**m, "feasible": True}
