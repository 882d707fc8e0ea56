"""Real benchmark tables as searchable spaces: every searcher of the core runs on them through the protocol, and a
trial is a lookup of a result someone else measured.

* NAS-Bench-Graph (:mod:`companion.data.nasbench_graph`): a :class:`~companion.nas.protocol.TableSpace` over one
  dataset's 26,206 architectures (decisions: link pattern, four ops); the objective returns the looked-up
  validation accuracy (what a searcher may see) with the test accuracy, latency and parameters beside it.
* LCDB (:mod:`companion.data.lcdb`): the learners' learning curves per dataset, the test bed of the low-fidelity
  question (:mod:`companion.nas.lowfi`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..data.nasbench_graph import LINKS, NASBenchGraph
from .protocol import TableSpace, as_rng
from .ranking import EnsembleConfig, MLPEnsemble
from .lowfi import kendall
from .trials import TrialStore


# Positions whose ops can be exchanged without changing the graph, per canonical link pattern (nodes with the same
# parent and no children); the benchmark keeps the member with those ops in ascending op order.
_SIBLINGS = {0: (0, 1, 2, 3), 1: (1, 2), 2: (2, 3), 5: (1, 2, 3), 7: (2, 3)}


def canonical_ops(link: int, ops: Sequence[int]) -> tuple[int, ...]:
    """Sort the ops of interchangeable sibling nodes; in pattern [0,0,1,2] (two chains from the input) put the
    chain with the smaller first op (then second op) first. Our reading of the benchmark's isomorphism merging,
    without its skip-op moves (those codes fall to the nearest member, see :class:`NASBenchGraphSpace`)."""
    ops = list(int(o) for o in ops)
    if link in _SIBLINGS:
        pos = _SIBLINGS[link]
        for p_, v in zip(pos, sorted(ops[p] for p in pos)):
            ops[p_] = v
    elif link == 3 and (ops[0], ops[2]) > (ops[1], ops[3]):
        ops = [ops[1], ops[0], ops[3], ops[2]]
    return tuple(ops)


class NASBenchGraphSpace(TableSpace):
    """NAS-Bench-Graph as a table whose every decision vector decodes: a vector in the table is that row; any other
    one (an isomorphic duplicate the benchmark merged away) goes first through :func:`canonical_ops`, and if that
    is still not a row, to the nearest row by Hamming distance (ties: the lowest row, the rule ``TPESearch`` uses for
    tables). So a policy over the 9 x 9^4 raw vectors never draws outside the space (our choice; the benchmark's
    own skip-op canonicalisation is not reimplemented)."""

    def __init__(self, bench: NASBenchGraph):
        labels = [bench.label(i) for i in range(len(bench.frame))]
        super().__init__(bench.codes, bench.cardinalities, name=f"nasbench-graph/{bench.dataset}", labels=labels)
        self._near: dict[bytes, int] = {}

    def decode(self, code: Sequence[int]) -> int:
        c = np.asarray(code, dtype=np.int64)
        if c.shape != self._card.shape or (c < 0).any() or (c >= self._card).any():
            raise ValueError(f"{self.name}: code {list(map(int, c))} is outside the cardinalities {list(self._card)}")
        kb = c.tobytes()
        r = self._row.get(kb)
        if r is not None:
            return r
        if kb not in self._near:
            canon = np.array([c[0], *canonical_ops(int(c[0]), c[1:])], dtype=np.int64)
            r = self._row.get(canon.tobytes())
            self._near[kb] = r if r is not None else int(np.argmin((self.codes != c).sum(1)))
        return self._near[kb]

    def sample_code(self, rng, policy) -> tuple[np.ndarray, int, float]:
        code, logp = policy.sample(as_rng(rng))
        return code, self.decode(code), float(logp)


def nasbench_graph_space(bench: NASBenchGraph) -> NASBenchGraphSpace:
    return NASBenchGraphSpace(bench)


def nasbench_graph_objective(bench: NASBenchGraph) -> Callable[[int, int], dict]:
    """``objective(row, seed)`` -> validation and test accuracy (fractions), latency (s), parameters (millions).
    The seed is unused: the table holds one (seed-averaged) result per architecture."""
    cols = {k: bench.frame[k].to_numpy(float) for k in ("valid", "test", "latency", "params")}

    def objective(row: int, seed: int = 0) -> dict:
        r = int(row)
        return {k: float(v[r]) for k, v in cols.items()}

    return objective


def incumbent_curves(store_dir: str | Path, bench: NASBenchGraph, metric: str = "valid", report: str = "test") -> pd.DataFrame:
    """From the trial stores ``compare_searchers(..., store_dir=)`` wrote (``<searcher>-seed<s>.jsonl``): after each
    trial, the ``report`` value (test accuracy) of the candidate with the best ``metric`` so far (validation
    accuracy), the way a search would hand over its incumbent. Rows: searcher, seed, trial, incumbent, best_metric."""
    rep = bench.frame[report].to_numpy(float)
    rows = []
    for path in sorted(Path(store_dir).glob("*-seed*.jsonl")):
        name, seed = path.stem.rsplit("-seed", 1)
        best_m, inc = -np.inf, np.nan
        for t in TrialStore(path).trials():
            if t["reward"] is not None and t["metrics"][metric] > best_m:
                best_m, inc = t["metrics"][metric], rep[int(t["candidate"])]
            rows.append({"searcher": name, "seed": int(seed), "trial": t["index"] + 1, "incumbent": inc,
                         "best_metric": best_m if np.isfinite(best_m) else np.nan})
    return pd.DataFrame(rows)


def predictor_tau(bench: NASBenchGraph, n_train: int, n_test: int, cfg: EnsembleConfig, seed: int,
                  label: str = "valid") -> float:
    """Held-out Kendall tau of a predictor trained on ``n_train`` random architectures (the paper's set-up:
    ~160 configs to train, ~30 held out; we hold out ``n_test``). Same seed = same split for every config, so
    configs compare paired over seeds."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(bench.frame), size=n_train + n_test, replace=False)
    tr, te = idx[:n_train], idx[n_train:]
    y = bench.frame[label].to_numpy(float)
    codes = bench.codes
    model = MLPEnsemble(bench.cardinalities, cfg, seed=seed).fit(codes[tr], y[tr])
    mean, _ = model.predict(codes[te])
    return kendall(mean, y[te])


def lcdb_learner_table(curves: pd.DataFrame, openmlid: int, score: str = "valid") -> pd.DataFrame:
    """One LCDB dataset as learners x training sizes (mean log loss), the fidelity grid of that test bed."""
    sub = curves[curves.openmlid == openmlid]
    if sub.empty:
        raise KeyError(f"LCDB has no dataset {openmlid}")
    return sub.pivot(index="learner", columns="size_train", values=score)


def link_names() -> list[str]:
    return ["-".join(map(str, l)) for l in LINKS]
