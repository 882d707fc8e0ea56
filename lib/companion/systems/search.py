"""The CubicML loop on live or simulated measurements, and the predictor checks around it.

The paper's loop (predict, measure the top-k, refit) is the core's ``PredictorSearch`` with ``batch = k``; this
module only wires it to the harness and lines it up against random search on the same seeds and the same number
of measurements: :func:`compare` (best-so-far curves and each search's best configuration), :func:`holdout`
(held-out Kendall tau and error of a predictor trained on ``n`` measured configurations: the learning curve),
:func:`remeasure` (the default and the winners measured again, interleaved, so a comparison is not between a
search's luckiest draw and a single default run), and :func:`cpu_device` / :func:`cpu_roofline` (the measured
job as a one-device roofline: where the analytic model and the measurements overlap).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..nas.ranking import EnsembleConfig, GBTEnsemble, MLPEnsemble
from ..nas.searchers import PredictorSearch, RandomSearch
from ..nas.trials import run_search
from .model import JobShape, flops_per_sample
from .space import state_bytes_per_process


class LogTarget:
    """Fit a predictor on log throughput: system knobs act multiplicatively (twice the batch, 1.4x the speed), so
    in log space their effects add up, which trees and MLPs fit from fewer points. Ranking is unchanged."""

    def __init__(self, inner):
        self.inner = inner

    def fit(self, codes, y):
        y = np.asarray(y, dtype=float)
        if (y <= 0).any():
            raise ValueError("LogTarget needs positive rewards (throughput, maximised)")
        self.inner.fit(codes, np.log(y))
        return self

    def predict(self, codes):
        return self.inner.predict(codes)


def predictor_factory(kind: str, members: int = 3, epochs: int = 100, max_iter: int = 50, log: bool = True) -> Callable:
    """``make_predictor(cardinalities, seed)`` for ``PredictorSearch``: bagged trees, or the MLP ensemble with the
    pairwise margin ranking loss (the paper's "neural network or decision-tree regressor"), on log throughput."""
    if kind == "gbt":
        make = lambda card, seed: GBTEnsemble(card, members=members, max_iter=max_iter, seed=seed)
    elif kind in ("mlp", "mlp-mse"):
        cfg = EnsembleConfig(members=members, epochs=epochs, loss="margin" if kind == "mlp" else "mse", hidden=(64, 64))
        make = lambda card, seed: MLPEnsemble(card, cfg, seed=seed)
    else:
        raise ValueError(f"predictor must be gbt, mlp or mlp-mse, got {kind!r}")
    return (lambda card, seed: LogTarget(make(card, seed))) if log else make


def compare(space, objective, *, seeds: Sequence[int], budget: int, warmup: int, top_k: int,
            make_predictor: Callable, inner_steps: int = 500, metric: str = "samples_per_s",
            store_dir: str | Path | None = None, progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """Random search and the predictor loop, each ``budget`` measurements per seed. Both draw their first
    ``warmup`` configurations from the same seeded generator, so the loop starts from exactly the random
    search's first measurements (a paired start)."""
    rows, results = [], {}
    makers = {
        "random": lambda s: RandomSearch(space, seed=s),
        "predictor": lambda s: PredictorSearch(space, make_predictor, seed=s, warmup=warmup, batch=top_k,
                                               inner_steps=inner_steps, inner_batch=50, kappa=0.5),
    }
    for name, make in makers.items():
        for s in seeds:
            path = None if store_dir is None else Path(store_dir) / f"{name}-seed{s}.jsonl"
            if path is not None and path.exists():
                path.unlink()  # each notebook run measures afresh (the machine's state is part of the number)
            t0 = time.perf_counter()
            res = run_search(space, make(s), objective, metric=metric, direction="max", max_trials=budget,
                             store=path, seed=s, batch_size=top_k if name == "predictor" else 1, progress=progress,
                             desc=f"{name} seed {s}")
            results[(name, s)] = res
            best = res.best_so_far()
            for t, b in zip(res.trials, best):
                rows.append({"searcher": name, "seed": s, "trial": t["index"] + 1, "status": t["status"],
                             "best": b if np.isfinite(b) else np.nan,
                             "value": None if t["reward"] is None else t["metrics"][metric],
                             "round": (t.get("info") or {}).get("round", 0), "wall_s": time.perf_counter() - t0})
    return pd.DataFrame(rows), results


def best_config(res) -> dict:
    return dict(res.best()["candidate"])


def measured_table(results: dict, space, metric: str = "samples_per_s", only: str | None = None) -> pd.DataFrame:
    """Every distinct measured configuration of the given searches (one row per configuration key)."""
    seen = {}
    for (name, _), res in results.items():
        if only is not None and name != only:
            continue
        for t in res.trials:
            if t["key"] in seen:
                continue
            st = t["status"] if t["status"] != "ok" or (t["metrics"] or {}).get("feasible", True) else "infeasible"
            seen[t["key"]] = {"key": t["key"], "status": st, **t["candidate"],
                              metric: None if t["reward"] is None or st == "infeasible" else t["metrics"][metric],
                              "peak_mb": (t["metrics"] or {}).get("peak_mb"),
                              "error": t.get("error") or (t["metrics"] or {}).get("error")}
    return pd.DataFrame(list(seen.values()))


def holdout(space, cands: Sequence[dict], y: Sequence[float], *, kinds: Sequence[str], n_train: Sequence[int],
            splits: int, seed: int = 0, members: int = 3, epochs: int = 100) -> pd.DataFrame:
    """Train each predictor on ``n`` random configurations, test on all the others: Kendall tau of predicted vs
    measured, and (for the regressors) the median relative error. One row per (predictor, n, split)."""
    codes = np.stack([space.encode(c) for c in cands])
    y = np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    rows = []
    for sp in range(splits):
        perm = rng.permutation(len(y))
        for n in n_train:
            if n >= len(y) - 2:
                continue
            tr, te = perm[:n], perm[n:]
            for kind in kinds:
                model = predictor_factory(kind, members=members, epochs=epochs)(space.cardinalities(), seed * 100 + sp)
                t0 = time.perf_counter()
                pred, _ = model.fit(codes[tr], y[tr]).predict(codes[te])
                tau = stats.kendalltau(pred, y[te]).statistic
                err = float(np.median(np.abs(np.exp(pred) / y[te] - 1))) if kind != "mlp" else np.nan
                rows.append({"predictor": kind, "n_train": n, "split": sp, "n_test": len(te), "tau": float(tau),
                             "rel_error": err, "fit_s": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def remeasure(measure: Callable[[dict], dict], configs: dict[str, dict], reps: int) -> pd.DataFrame:
    """Measure every named configuration ``reps`` times, round-robin (one of each, then again), so slow drifts of
    a shared machine fall on all of them alike."""
    rows = []
    for r in range(reps):
        for name, cfg in configs.items():
            m = measure(cfg)
            rows.append({"name": name, "rep": r, "status": m["status"], "samples_per_s": m.get("samples_per_s"),
                         "peak_mb": m.get("peak_mb")})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- one-device roofline
def cpu_device(threads: int = 1, seconds: float = 0.3) -> dict:
    """This CPU's achievable FLOP/s (an fp32 matmul) and memory bandwidth (a large copy), measured on
    ``threads`` threads: the two roofline constants for the CPU check."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(512, 512), torch.randn(512, 512)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            n += 1
        flops = n * 2 * 512 ** 3 / (time.perf_counter() - t0)
        x = torch.empty(16 * 2 ** 20)  # 64 MB, past every cache
        y = torch.empty_like(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            y.copy_(x)
            n += 1
        bw = n * 2 * x.numel() * 4 / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return {"flops": flops, "mem_bw": bw, "threads": threads}


def cpu_roofline(cfg: dict, dev: dict, shape: JobShape = JobShape()) -> dict:
    """Predicted samples/s of one configuration as a roofline on one core per process: FLOPs of the dense part
    against the device's FLOP/s, bytes of the optimizer step and embedding traffic against its bandwidth.
    Data-parallel processes are taken as independent devices (communication is not modelled here), threads as
    proportional speed, bf16 and checkpointing only through their FLOPs (CPU bf16 has no faster unit here)."""
    samples = cfg["batch"] * cfg["accum"]
    fl = flops_per_sample(shape, cfg["emb_dim"]) * samples * (1.15 if cfg["checkpoint"] else 1.0)
    st = state_bytes_per_process(cfg, shape)
    # optimizer step reads params, grads and states and writes params and states; dense grads are also zeroed
    step_bytes = 2 * st["params"] + 2 * st["grads"] + 2 * st["optimizer"]
    emb_bytes = 3 * samples * shape.n_tables * cfg["emb_dim"] * 4  # lookup, gradient, scatter
    t = max(fl / (dev["flops"] * cfg["threads"]), (step_bytes + emb_bytes) / dev["mem_bw"])
    return {"samples_per_s": samples * cfg["world"] / t, "flops": fl, "bytes": step_bytes + emb_bytes,
            "bound": "compute" if fl / (dev["flops"] * cfg["threads"]) > (step_bytes + emb_bytes) / dev["mem_bw"] else "memory"}
