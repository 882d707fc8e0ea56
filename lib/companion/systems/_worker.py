"""One rank of the measurement process group (started once by :class:`companion.systems.harness.Harness` under
torchrun). It waits for ``job-NNNNNN.json`` files in the job directory, measures each configuration and, on
rank 0, writes ``result-NNNNNN.json``. A job with ``"kind": "stop"`` ends the group. Any exception ends this
rank after rank 0 wrote the error: the driver then kills the group and starts a fresh one, so a crashed job
never leaves a half-broken group behind."""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.distributed as td

from companion import distributed
from companion.systems.model import JobShape, TinyDLRM


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset this process's peak resident set (VmHWM) to its current size; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def machine() -> dict:
    import platform
    import socket
    cpu = ""
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    except OSError:
        pass
    return {"host": socket.gethostname(), "cores": os.cpu_count(), "cpu": cpu, "torch": torch.__version__,
            "python": platform.python_version()}


def _optimizer(name: str, params, sparse: bool):
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=0.01)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3)
    raise ValueError(f"unknown optimizer {name!r}")


def measure(dist, job: dict) -> dict | None:
    cfg, st = job["config"], job["settings"]
    world = int(cfg["world"])
    if world not in (1, dist.world_size):
        raise ValueError(f"world size {world}: this group has {dist.world_size} processes (1 or all of them)")
    if dist.rank >= world:
        return None  # idle this job
    fault = job.get("fault")
    if fault == "crash" and dist.rank == world - 1:
        raise RuntimeError("injected crash (fault='crash')")
    if fault == "hang" and dist.rank == world - 1:
        time.sleep(10 ** 6)
    shape = JobShape(**job.get("shape", {}))
    torch.set_num_threads(int(cfg["threads"]))
    _trim()
    exact_peak = _reset_peak()
    base_kb = _status_kb("VmRSS")
    torch.manual_seed(int(job.get("seed", 0)) * 100 + dist.rank)
    sparse = cfg["emb_grad"] == "sparse"
    model = TinyDLRM(shape, int(cfg["emb_dim"]), sparse, bool(cfg["checkpoint"]))
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=float(cfg["bucket_mb"]))
    opt = _optimizer(cfg["optimizer"], model.parameters(), sparse)
    b, accum = int(cfg["batch"]), int(cfg["accum"])
    g = torch.Generator().manual_seed(dist.rank)
    data = [(torch.randn(b, shape.n_dense, generator=g),
             torch.randint(shape.rows_per_table, (b, shape.n_tables), generator=g),
             torch.randint(2, (b,), generator=g).float()) for _ in range(2)]
    bf16 = cfg["precision"] == "bf16"
    loss_fn = torch.nn.BCEWithLogitsLoss()
    k = [0]

    def step():
        for a in range(accum):
            x, idx, y = data[k[0] % len(data)]
            k[0] += 1
            sync = contextlib.nullcontext() if (world == 1 or a == accum - 1) else net.no_sync()
            with sync:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    logit = net(x, idx)
                loss = loss_fn(logit.float(), y) / accum
                loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(max(1, int(st["warmup"])) - 1):
        step()
    t0 = time.perf_counter()
    step()
    t_step = torch.tensor([time.perf_counter() - t0])
    if world > 1:
        dist.all_reduce_sum(t_step)  # every rank must agree on the number of timed steps
        t_step /= world
    n_steps = int(min(st["max_steps"], max(1, math.ceil(st["target_s"] / max(float(t_step), 1e-6)))))
    slow = float(t_step) > float(st.get("slow_step_s", float("inf")))
    # a very slow job is reported from its one warm step (pessimistic: that step still pays first-use costs) so
    # it costs seconds, not the timeout: a search needs to know it is slow, not how slow to three digits
    rates = [b * accum * world / float(t_step)] if slow else []
    for _ in range(0 if slow else int(st["repeats"])):
        dist.barrier() if world > 1 else None
        t0 = time.perf_counter()
        for _ in range(n_steps):
            step()
        dist.barrier() if world > 1 else None
        rates.append(b * accum * world * n_steps / (time.perf_counter() - t0))
    peak = torch.tensor([(_status_kb("VmHWM") - base_kb) / 1024.0, _status_kb("VmHWM") / 1024.0])
    if world > 1:
        td.all_reduce(peak, op=td.ReduceOp.MAX)
    del net, model, opt, data
    rates_sorted = sorted(rates)
    return {"samples_per_s": rates_sorted[len(rates) // 2], "rates": rates, "peak_mb": float(peak[0]),
            "peak_rss_mb": float(peak[1]), "peak_exact": exact_peak, "step_s": float(t_step),
            "n_steps": 0 if slow else n_steps, "slow": slow}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def main() -> None:
    jobdir = Path(sys.argv[1])
    poll = float(os.environ.get("COMPANION_POLL_S", "0.002"))
    dist = distributed.init_from_env(backend="gloo", timeout_s=float(os.environ.get("COMPANION_COLLECTIVE_S", "60")))
    if dist.is_main:
        _write_json(jobdir / "ready.json", {"world_size": dist.world_size, "machine": machine(), "pid": os.getpid()})
    driver = int(os.environ.get("COMPANION_DRIVER_PID", "0"))
    n = 0
    while True:
        path = jobdir / f"job-{n:06d}.json"
        waited = 0
        while not path.exists():
            time.sleep(poll)
            waited += 1
            if driver and waited % 500 == 0 and not _alive(driver):
                os._exit(0)  # the driver is gone (a killed notebook kernel): do not linger
        job = json.loads(path.read_text())
        if job.get("kind") == "stop":
            break
        try:
            out = measure(dist, job)
        except BaseException as e:  # report, then leave: the driver restarts the group
            if dist.is_main:
                _write_json(jobdir / f"result-{n:06d}.json",
                            {"error": f"rank {dist.rank}: {type(e).__name__}: {e}", "trace": traceback.format_exc(limit=4)})
            sys.stderr.write(traceback.format_exc())
            sys.stderr.flush()
            os._exit(1)
        if dist.is_main:
            _write_json(jobdir / f"result-{n:06d}.json", {"ok": out})
        n += 1
    dist.close()


if __name__ == "__main__":
    main()
