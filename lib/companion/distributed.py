"""Process groups for ``torchrun``: one small API that the trainer, the distributed searches and the systems
harness share, and that degrades to a single in-process "group" when nothing launched us.

Inside a worker::

    from companion import distributed
    with distributed.init_from_env() as dist:      # gloo on CPU, nccl when CUDA is there
        ...
        dist.all_reduce_mean(t)                     # in place, returns t
        if dist.is_main: print(...)

From a driver (a test, a notebook, a benchmark)::

    res = distributed.launch("path/to/worker.py", nproc=2, args=["--steps", "5"], timeout_s=120)
    res.check()                                     # raises naming the rank(s) that failed, with their stderr

Why a wrapper at all: ``torchrun`` tells a worker who it is through environment variables (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT), collectives hang or die with a bare "Connection closed by peer" when a peer
exits, and a test must never hang. Here every collective carries a timeout and a failed one is re-raised as
:class:`PeerFailure` naming this rank; :func:`launch` runs torchrun with a wall-clock timeout and returns every
rank's exit code and stderr.
"""
from __future__ import annotations

import datetime as _dt
import glob
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_ENV_KEYS = ("RANK", "WORLD_SIZE")


class PeerFailure(RuntimeError):
    """A collective failed: most often another rank died or timed out. The message names this rank."""


def launched_by_torchrun() -> bool:
    """True when the torchrun environment (RANK and WORLD_SIZE) is present."""
    return all(k in os.environ for k in _ENV_KEYS)


@dataclass
class Dist:
    """This process's place in the group. ``world_size == 1`` and ``launched == False`` means in-process:
    every collective is then the identity, so code written for N ranks runs unchanged on one."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: "object" = "cpu"  # torch.device
    launched: bool = False
    _owns_group: bool = field(default=False, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """A real process group with more than one rank (collectives communicate)."""
        return self.launched and self.world_size > 1

    def _call(self, what: str, fn, *a, **kw):
        if not self.active:
            return None
        try:
            return fn(*a, **kw)
        except Exception as e:  # gloo: "Connection closed by peer", nccl: watchdog/timeout, both: DistBackendError
            raise PeerFailure(f"rank {self.rank} of {self.world_size}: {what} failed ({type(e).__name__}: {e}); "
                              "another rank probably died or is stuck; see that rank's stderr") from e

    def barrier(self) -> None:
        import torch.distributed as td
        self._call("barrier", td.barrier)

    def all_reduce_sum(self, tensor):
        """Sum ``tensor`` over ranks, in place; returns it."""
        import torch.distributed as td
        self._call("all_reduce", td.all_reduce, tensor, op=td.ReduceOp.SUM)
        return tensor

    def all_reduce_mean(self, tensor):
        """Average ``tensor`` over ranks, in place; returns it (unchanged in-process)."""
        if self.active:
            self.all_reduce_sum(tensor)
            tensor.div_(self.world_size)
        return tensor

    def broadcast(self, tensor, src: int = 0):
        """Copy ``src``'s tensor to every rank, in place; returns it."""
        import torch.distributed as td
        self._call("broadcast", td.broadcast, tensor, src=src)
        return tensor

    def all_gather_rows(self, tensor):
        """Concatenate every rank's ``tensor`` along dim 0, in rank order; the row counts may differ."""
        import torch
        import torch.distributed as td
        if not self.active:
            return tensor
        n = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
        sizes = [torch.zeros_like(n) for _ in range(self.world_size)]
        self._call("all_gather (sizes)", td.all_gather, sizes, n)
        sizes = [int(s) for s in sizes]
        pad = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
        pad[: tensor.shape[0]] = tensor
        out = [torch.empty_like(pad) for _ in range(self.world_size)]
        self._call("all_gather", td.all_gather, out, pad.contiguous())
        return torch.cat([o[:s] for o, s in zip(out, sizes)])

    def shard(self, n: int) -> slice:
        """This rank's contiguous slice of ``range(n)`` (sizes differ by at most one; rank order)."""
        q, r = divmod(n, self.world_size)
        start = self.rank * q + min(self.rank, r)
        return slice(start, start + q + (1 if self.rank < r else 0))

    def close(self) -> None:
        """Destroy the process group if this object created it (idempotent)."""
        if self._owns_group:
            import torch.distributed as td
            if td.is_initialized():
                td.destroy_process_group()
            self._owns_group = False

    def __enter__(self) -> "Dist":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def init_from_env(backend: str | None = None, timeout_s: float = 300.0) -> Dist:
    """Join the group torchrun set up, or return an in-process ``Dist`` (rank 0 of 1) when not launched.

    ``backend``: None picks nccl when CUDA is available and gloo otherwise. ``timeout_s`` bounds every collective
    (gloo honours it), so a dead peer turns into :class:`PeerFailure` instead of a hang. On nccl each rank is
    pinned to ``cuda:LOCAL_RANK``.
    """
    import torch
    import torch.distributed as td

    if not launched_by_torchrun():
        return Dist(device=torch.device("cpu"))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError(f"rank {rank}: backend 'nccl' needs CUDA, and torch sees no CUDA device")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    owns = False
    if not td.is_initialized():
        try:
            td.init_process_group(backend, rank=rank, world_size=world, timeout=_dt.timedelta(seconds=timeout_s))
        except Exception as e:
            raise PeerFailure(f"rank {rank} of {world}: could not join the {backend} group at "
                              f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')} ({e})") from e
        owns = True
    return Dist(rank=rank, world_size=world, local_rank=local, backend=backend, device=device, launched=True,
                _owns_group=owns)


@dataclass
class LaunchResult:
    """What a torchrun job left behind: exit code and captured output per rank (None: the rank left no record,
    e.g. torchrun killed it after a peer failed), torchrun's own return code, and whether the timeout hit."""

    returncode: int
    timed_out: bool
    exit_codes: dict[int, int | None]
    stderr: dict[int, str]
    stdout: dict[int, str]
    launcher_output: str

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.returncode == 0 and all(c == 0 for c in self.exit_codes.values())

    def failed_ranks(self) -> list[int]:
        return [r for r, c in sorted(self.exit_codes.items()) if c != 0]

    def summary(self, tail: int = 2000) -> str:
        if self.ok:
            return f"all {len(self.exit_codes)} ranks exited 0"
        head = "timed out; " if self.timed_out else ""
        parts = [f"{head}torchrun returned {self.returncode}; rank exit codes {self.exit_codes}"]
        for r in self.failed_ranks():
            parts.append(f"--- rank {r} stderr (tail) ---\n{self.stderr.get(r, '')[-tail:]}")
        if not self.failed_ranks():
            parts.append(f"--- torchrun output (tail) ---\n{self.launcher_output[-tail:]}")
        return "\n".join(parts)

    def check(self) -> "LaunchResult":
        """Raise ``RuntimeError`` naming the failed ranks with their stderr; return self when all ranks exited 0."""
        if not self.ok:
            raise RuntimeError(f"torchrun job failed: {self.summary()}")
        return self


def _kill_job(proc: subprocess.Popen, log_dir: Path) -> None:
    """Stop torchrun and its workers (torchrun starts each worker in its own session, so killing torchrun's
    process group alone would orphan them): SIGTERM, a short grace period, then SIGKILL to every recorded pid."""
    pids = [int(p.read_text()) for p in log_dir.glob("pid_*") if p.read_text().strip().isdigit()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for target in (lambda: os.killpg(proc.pid, sig), *[lambda p=p: os.kill(p, sig) for p in pids]):
            try:
                target()
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def launch(script_or_module: str, nproc: int = 2, args=(), timeout_s: float = 300.0, module: bool | None = None,
           env: dict | None = None, threads: int = 1) -> LaunchResult:
    """Run ``torchrun --standalone --nproc_per_node nproc`` on a script (a path) or a module (``module=True``, or a
    dotted name that is not a file), with a wall-clock timeout; collect every rank's exit code, stdout and stderr.

    The job never outlives ``timeout_s``: on timeout the whole process group is killed. ``threads`` sets
    OMP_NUM_THREADS per rank (torchrun's own default is 1). Each rank's exit code is recorded by a tiny wrapper,
    so a rank that raised is told apart from one torchrun stopped because a peer failed.
    """
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    if module is None:
        module = not Path(script_or_module).exists() and not script_or_module.endswith(".py")
    log_dir = Path(tempfile.mkdtemp(prefix="companion_torchrun_"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           f"--log-dir={log_dir}", "--redirects=3", "-m", "companion._rank_entry",
           "--record-dir", str(log_dir), "--module" if module else "--script", str(script_or_module), *map(str, args)]
    run_env = {**os.environ, "OMP_NUM_THREADS": str(threads), **(env or {})}
    run_env.pop("RANK", None)
    run_env.pop("WORLD_SIZE", None)
    src = str(Path(__file__).resolve().parents[1])  # lib/, so the wrapper imports even without an install
    run_env["PYTHONPATH"] = src + (os.pathsep + run_env["PYTHONPATH"] if run_env.get("PYTHONPATH") else "")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=run_env, text=True,
                            start_new_session=True)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_job(proc, log_dir)
        out, _ = proc.communicate()
    codes, errs, outs = {}, {}, {}
    for r in range(nproc):
        f = log_dir / f"exit_{r}"
        codes[r] = int(f.read_text()) if f.exists() else None
        # torchrun's layout: <log_dir>/<run id>/attempt_<n>/<local rank>/{stdout,stderr}.log
        for name, store in (("stderr", errs), ("stdout", outs)):
            files = sorted(glob.glob(str(log_dir / "*" / "attempt_*" / str(r) / f"{name}.log")))
            store[r] = "".join(Path(p).read_text(errors="replace") for p in files)
    return LaunchResult(proc.returncode if proc.returncode is not None else -9, timed_out, codes, errs, outs, out or "")
