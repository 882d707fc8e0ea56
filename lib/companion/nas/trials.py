"""The search driver and its trial store: one record per trial, written the moment the trial ends.

``run_search(space, searcher, objective, ...)`` asks the searcher, evaluates proposals through an executor, and
tells the results back **in trial order** (so an in-process and a Ray run of the same seed make the same
trials). ``objective(candidate, seed) -> dict`` returns metrics; the reward is ``metrics[metric]``, negated when
``direction="min"``. A trial that raises or returns a NaN metric is recorded as failed and the search goes on.

The store is a JSON-lines file: a header naming the search, then one trial per line (candidate, fidelity,
metrics, cost, seed, wall time, status, error). Rerunning with the same store resumes: the searcher is replayed
through the finished trials (deterministic for a seed, so it proposes the same candidates, which are checked
against the records) and only the rest are evaluated. A half-written last line (a crash mid-write) is dropped
with a warning; any other bad line stops with its file and line number.
"""
from __future__ import annotations

import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..progress import tqdm
from .executors import InProcess
from .protocol import Space
from .searchers import RegularizedEvolution, Searcher


def trial_seed(seed: int, index: int) -> int:
    """Each trial's own seed, from the search seed and the trial index alone (not from a shared RNG)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


class TrialStore:
    """Append-only JSON lines. ``None`` path = memory only."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        self._mem: list[dict] = []

    def header(self) -> dict | None:
        recs = self._read()
        return recs[0] if recs and recs[0].get("kind") == "header" else None

    def _read(self) -> list[dict]:
        if self.path is None:
            return list(self._mem)
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").split("\n")
        out = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                last = all(not rest.strip() for rest in lines[n:])
                if last:
                    warnings.warn(f"{self.path}:{n}: dropped a half-written last record (a crash mid-write?)")
                    self._truncate(lines[:n - 1])
                    break
                raise ValueError(f"{self.path}:{n}: not a JSON record ({e.msg}); the trial store is damaged") from None
        return out

    def _truncate(self, keep: list[str]) -> None:
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text("".join(l + "\n" for l in keep if l.strip()), encoding="utf-8")
        os.replace(tmp, self.path)

    def trials(self) -> list[dict]:
        return [r for r in self._read() if r.get("kind") == "trial"]

    def append(self, rec: dict) -> None:
        rec = _jsonable(rec)
        if self.path is None:
            self._mem.append(rec)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass
class SearchResult:
    trials: list[dict]
    direction: str = "max"
    metric: str = "reward"
    rejected: int = 0
    searcher: str = ""

    def frame(self) -> pd.DataFrame:
        rows = []
        for t in self.trials:
            rows.append({"index": t["index"], "key": t["key"], "status": t["status"], "reward": t["reward"],
                         "wall_s": t["wall_s"], "cost": t.get("cost"), **{f"m_{k}": v for k, v in (t["metrics"] or {}).items()
                                                                       if isinstance(v, (int, float)) or v is None}})
        return pd.DataFrame(rows)

    def rewards(self) -> np.ndarray:
        return np.array([np.nan if t["reward"] is None else t["reward"] for t in self.trials], dtype=float)

    def best_so_far(self) -> np.ndarray:
        """Best reward after each trial (NaN until the first success)."""
        r = self.rewards()
        if not len(r):
            return r
        b = np.maximum.accumulate(np.where(np.isnan(r), -np.inf, r))
        b[np.isneginf(b)] = np.nan
        return b

    def best(self) -> dict:
        ok = [t for t in self.trials if t["reward"] is not None]
        if not ok:
            raise RuntimeError(f"no successful trial among {len(self.trials)}")
        return max(ok, key=lambda t: t["reward"])

    def metric_of(self, t: dict) -> float:
        return t["metrics"][self.metric]


def _header(space: Space, searcher: Searcher, seed: int, metric: str, direction: str, fidelity) -> dict:
    return {"kind": "header", "space": getattr(space, "name", type(space).__name__), "searcher": searcher.name,
            "seed": int(seed), "metric": metric, "direction": direction, "fidelity": _jsonable(fidelity)}


def run_search(space: Space, searcher: Searcher, objective: Callable[[Any, int], dict], *, metric: str,
               direction: str = "max", max_trials: int, max_cost: float | None = None, cost_key: str | None = None,
               store: TrialStore | str | Path | None = None, executor=None, seed: int = 0, batch_size: int = 1,
               fidelity: Any = None, progress: bool = True, desc: str | None = None) -> SearchResult:
    """Run until ``max_trials`` trials (or ``max_cost`` summed ``metrics[cost_key]``) are done."""
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}")
    if max_trials < 1 or batch_size < 1:
        raise ValueError(f"max_trials and batch_size must be >= 1, got {max_trials}, {batch_size}")
    if max_cost is not None and cost_key is None:
        raise ValueError("max_cost needs cost_key, the metric that measures a trial's cost")
    store = store if isinstance(store, TrialStore) else TrialStore(store)
    executor = executor or InProcess()
    head = _header(space, searcher, seed, metric, direction, fidelity)
    old = store.header()
    if old is None:
        store.append(head)
    elif {k: old.get(k) for k in head} != head:
        diff = {k: (old.get(k), v) for k, v in head.items() if old.get(k) != v}
        raise ValueError(f"trial store {store.path} belongs to another search (stored, now): {diff}; use a new path")
    done = {t["index"]: t for t in store.trials()}
    sign = 1.0 if direction == "max" else -1.0
    trials: list[dict] = []
    spent = 0.0
    bar = tqdm(total=max_trials, desc=desc or f"{searcher.name} search", disable=not progress, leave=False, unit="trial")

    def finish(index, prop, outcome) -> dict:
        status, value, wall = outcome
        rec = {"kind": "trial", "index": index, "key": prop.key, "candidate": space.to_json(prop.cand),
               "searcher": searcher.name, "seed": trial_seed(seed, index), "fidelity": fidelity, "wall_s": wall,
               "info": {k: v for k, v in prop.info.items()}, "metrics": None, "reward": None, "status": status,
               "error": None, "cost": None}
        if status == "ok":
            metrics = dict(value) if isinstance(value, dict) else {metric: value}
            v = metrics.get(metric)
            if v is None or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(float(v)):
                rec.update(status="failed", error=f"metric {metric!r} is {v!r} (NaN, missing or not a number)", metrics=metrics)
            else:
                rec.update(metrics=metrics, reward=sign * float(v))
            if cost_key is not None and metrics.get(cost_key) is not None:
                rec["cost"] = float(metrics[cost_key])
        else:
            rec["error"] = value
        return rec

    index = 0
    try:
        while index < max_trials and (max_cost is None or spent < max_cost):
            props = []
            while len(props) < batch_size:
                props += searcher.ask()
                if isinstance(searcher, RegularizedEvolution):
                    break  # a generation is one batch
            props = props[:max_trials - index]
            recs: dict[int, dict] = {}
            jobs = []
            for k, p in enumerate(props):
                j = index + k
                if j in done:
                    if done[j]["key"] != p.key:
                        raise ValueError(f"trial store {store.path}: trial {j} was {done[j]['key']}, the searcher now "
                                         f"proposes {p.key}; the store was made by a different search or code version")
                    recs[j] = done[j]
                else:
                    jobs.append((j, objective, (p.cand, trial_seed(seed, j))))

            def on_done(j, outcome, props=props, base=index):
                rec = finish(j, props[j - base], outcome)
                store.append(rec)
                recs[j] = rec
                bar.update(1)

            bar.update(len(recs))
            executor.run(jobs, on_done)
            for k, p in enumerate(props):
                rec = recs[index + k]
                searcher.tell(p, rec["reward"])
                trials.append(rec)
                if rec.get("cost") is not None:
                    spent += rec["cost"]
            index += len(props)
    except KeyboardInterrupt:
        n = len(store.trials())
        print(f"\ninterrupted: {n} finished trials are in {store.path or 'memory'}; run again with the same store "
              f"to resume", file=sys.stderr)
        raise
    finally:
        bar.close()
    return SearchResult(trials, direction, metric, searcher.rejected, searcher.name)


def compare_searchers(space: Space, makers: dict[str, Callable[[int], Searcher]], objective, *, metric: str,
                      direction: str, max_trials: int, seeds: Sequence[int], store_dir: str | Path | None = None,
                      executor=None, progress: bool = True, batch_size: int = 1) -> pd.DataFrame:
    """Every searcher on the same space, budget and seeds: one row per (searcher, seed, trial) with the best
    metric so far, the frame that sample-efficiency curves and paired verdicts are drawn from."""
    rows = []
    for name, make in makers.items():
        for s in seeds:
            path = None if store_dir is None else Path(store_dir) / f"{name}-seed{s}.jsonl"
            res = run_search(space, make(s), objective, metric=metric, direction=direction, max_trials=max_trials,
                             store=path, executor=executor, seed=s, progress=progress, batch_size=batch_size,
                             desc=f"{name} seed {s}")
            best = res.best_so_far()
            for t, b in zip(res.trials, best):
                rows.append({"searcher": name, "seed": s, "trial": t["index"] + 1,
                             "best": np.nan if not np.isfinite(b) else (b if direction == "max" else -b),
                             "value": None if t["reward"] is None else t["metrics"][metric]})
    return pd.DataFrame(rows)
