"""DistDNAS's distributed search as a torchrun job: one process per rank, each searching its own data dates, the
architecture weights gathered and aggregated identically on every rank.

Run it directly (one host or several; gloo on CPU, nccl on GPU)::

    torchrun --nproc_per_node 2 -m companion.nas.dist_search --config job.json --out results/
    torchrun --nnodes 2 --node_rank R --rdzv_endpoint HOST:PORT --nproc_per_node 8 -m companion.nas.dist_search ...

``job.json`` holds ``{"spec": DateSpec fields, "search": SearchConfig fields, "seed": int}``; every rank rebuilds
the same dates from the spec and writes ``out/rank_<r>.json`` (its aggregate, every date's weights and its timings).
From Python, :func:`launch_search` writes the job file, runs torchrun through :func:`companion.distributed.launch`
(a subprocess with a wall-clock timeout, so nothing hangs), names the rank(s) that failed, and checks that every rank
ended with the same architecture. The collectives carry a gloo timeout, so a rank that dies turns into an error
naming the surviving rank and the dead one's exit code, not a hang.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

MODULE = "companion.nas.dist_search"


def job_dict(spec, cfg, seed: int) -> dict:
    return {"spec": spec.to_dict(), "search": cfg.to_dict(), "seed": int(seed)}


def _load_job(path):
    from ..data.date_shards import DateSpec
    from .distdnas import SearchConfig

    job = json.loads(Path(path).read_text())
    s = dict(job["spec"])
    for k in ("pair_scale", "triple_scale"):
        if k in s:
            s[k] = tuple(s[k])
    return DateSpec(**s), SearchConfig.from_dict(job["search"]), int(job.get("seed", 0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m companion.nas.dist_search", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="job JSON: spec (DateSpec), search (SearchConfig), seed")
    ap.add_argument("--out", required=True, help="folder for rank_<r>.json")
    ap.add_argument("--backend", default=None, choices=["gloo", "nccl"], help="default: nccl with CUDA, else gloo")
    ap.add_argument("--timeout-s", type=float, default=120.0, help="timeout of every collective (gloo honours it)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads per rank")
    ap.add_argument("--fail-rank", type=int, default=None, help="test hook: this rank dies before its search")
    a = ap.parse_args(argv)

    import torch

    from .. import distributed
    from .distdnas import search_dates

    torch.set_num_threads(a.threads)
    t_start = time.perf_counter()
    spec, cfg, seed = _load_job(a.config)
    with distributed.init_from_env(backend=a.backend, timeout_s=a.timeout_s) as dist:
        t0 = time.perf_counter()
        shards = spec.build()
        data_s = time.perf_counter() - t0
        out = search_dates(shards.dates, shards.schema, cfg, seed, dist=dist, fail_rank=a.fail_rank)
        rec = {**out.to_dict(), "data_s": data_s, "process_s": time.perf_counter() - t_start,
               "backend": dist.backend, "host": os.uname().nodename}
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / f"rank_{dist.rank}.json").write_text(json.dumps(rec))
        dist.barrier()  # nobody leaves before every rank has written its file
    if out.rank == 0:
        print(f"aggregate ({out.rule}) over {len(out.per_date)} dates on {out.world_size} rank(s): {out.arch}; "
              f"search wall {out.search_wall_s:.2f}s")
    return 0


def launch_search(spec, cfg, seed: int = 0, nproc: int = 2, timeout_s: float = 300.0, fail_rank: int | None = None,
                  backend: str | None = None, collective_timeout_s: float = 60.0, threads: int = 1) -> dict:
    """Run the search under ``torchrun --nproc_per_node nproc`` in a subprocess; return rank 0's record plus
    ``ranks`` (every rank's record), ``launch_wall_s`` and ``identical`` (every rank the same architecture and
    aggregate). Raises ``RuntimeError`` naming the failed rank(s), with their stderr, when the job fails or times out."""
    from .. import distributed

    work = Path(tempfile.mkdtemp(prefix="distdnas_"))
    (work / "job.json").write_text(json.dumps(job_dict(spec, cfg, seed)))
    args = ["--config", str(work / "job.json"), "--out", str(work / "out"), "--timeout-s", str(collective_timeout_s),
            "--threads", str(threads)]
    if backend:
        args += ["--backend", backend]
    if fail_rank is not None:
        args += ["--fail-rank", str(fail_rank)]
    t0 = time.perf_counter()
    res = distributed.launch(MODULE, nproc=nproc, args=args, timeout_s=timeout_s, module=True, threads=threads)
    wall = time.perf_counter() - t0
    if not res.ok:
        raise RuntimeError(f"distributed DistDNAS search with {nproc} rank(s) failed: {res.summary()}")
    ranks = [json.loads((work / "out" / f"rank_{r}.json").read_text()) for r in range(nproc)]
    same = all(r["arch"] == ranks[0]["arch"] and r["aggregate"] == ranks[0]["aggregate"] for r in ranks)
    return {**ranks[0], "ranks": ranks, "launch_wall_s": wall, "identical": same, "nproc": nproc}


if __name__ == "__main__":
    sys.exit(main())
