"""Where trials run: in this process (the default), or as Ray tasks on this machine or a cluster.

An executor takes a batch of ``(index, fn, args)`` jobs and calls ``done(index, outcome)`` as each finishes, so
the trial store writes a result the moment it exists and an interruption loses only unfinished trials. An outcome
is ``("ok", value, wall_s)`` or ``("failed", "Type: message", wall_s)``. Results do not depend on the executor:
every trial gets its own seed from the driver, never from a shared RNG. Notebooks never import Ray; they name
the executor (``make_executor("ray")``), and ``pip install .[ray]`` provides it.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any, Callable, Sequence

Job = tuple[int, Callable, tuple]


def _call(fn: Callable, args: tuple):
    t0 = time.perf_counter()
    try:
        value = fn(*args)
        return ("ok", value, time.perf_counter() - t0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # a trial's failure is data, not a crash of the search
        tb = traceback.format_exc(limit=3)
        return ("failed", f"{type(e).__name__}: {e}\n{tb}", time.perf_counter() - t0)


class InProcess:
    name = "inprocess"

    def run(self, jobs: Sequence[Job], done: Callable[[int, tuple], None]) -> None:
        for i, fn, args in jobs:
            done(i, _call(fn, args))

    def close(self) -> None:
        pass


class RayExecutor:
    """Ray tasks, ``num_cpus`` per trial. Starts a local Ray instance unless one is running or ``address`` is
    given (``"auto"`` joins a cluster started with ``ray start``)."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_trial: float = 1.0, num_cpus: int | None = None):
        try:
            import ray
        except ImportError as e:  # pragma: no cover - exercised only without the extra
            raise ImportError("the Ray executor needs Ray: pip install '.[ray]'") from e
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")  # slow machines: wait for the raylet
            os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
            for attempt in range(3):  # Ray's raylet gives its agents a fixed 15 s to start (ray#65983): on a
                try:                  # loaded machine the first start can time out, a second usually does not
                    ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                             ignore_reinit_error=True, runtime_env=self._same_imports())
                    break
                except Exception as e:
                    ray.shutdown()
                    if attempt == 2:
                        raise RuntimeError(f"Ray did not start three times (last error: {e}); a loaded machine can "
                                           f"time out Ray's agents, use the in-process executor") from e
            self._started = True
        self._task = ray.remote(num_cpus=cpus_per_trial)(_call)

    @staticmethod
    def _same_imports() -> dict:
        """Workers import what the driver imports: an objective defined in a script or test module is pickled by
        reference, so the worker needs the driver's import path to find it."""
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        return {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}

    def run(self, jobs: Sequence[Job], done: Callable[[int, tuple], None]) -> None:
        ray = self.ray
        refs = {self._task.remote(fn, args): i for i, fn, args in jobs}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                for r in ready:
                    i = refs.pop(r)
                    try:
                        out = ray.get(r)
                    except Exception as e:  # the worker itself died
                        out = ("failed", f"ray worker failed: {type(e).__name__}: {e}", float("nan"))
                    done(i, out)
        except KeyboardInterrupt:
            for r in refs:
                ray.cancel(r, force=True)
            raise

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False


def make_executor(name: str = "inprocess", **kw) -> Any:
    if name == "inprocess":
        return InProcess()
    if name == "ray":
        return RayExecutor(**kw)
    raise ValueError(f"executor must be 'inprocess' or 'ray', got {name!r}")
