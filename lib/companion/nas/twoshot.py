"""Two-shot NAS (TS-NAS) with FGPS, and the baselines it is compared with on the same budget.

Pipeline (FGPS paper §3-4, addendum §3.5): first-shot supernet (NASRec sampling) -> score random paths on
it (inherited weights + head fine-tune) -> fit a path predictor -> predictor-guided regularized evolution
collects a large well-performing path set -> dedupe, cut the worst tail -> choose the second-shot path set
-> train a second-shot supernet (initialised from the first) on those paths only -> regularized evolution
on it -> train its top-k from scratch.

The path set of the second shot is what the strategies differ in:

* ``uniform``: no set; the second shot keeps NASRec's uniform sampling (one-shot NASRec with the same budget);
* ``quality``: the ``n_paths`` best paths by predicted log loss;
* ``fgps``: Algorithm 1 over the tail-cut pool.

Besides the three sets, every seed records the controls of the diversity claim (:attr:`TwoShotResult.diversity`):
``diversity_draws`` random same-size subsets of the same pool and as many uniform draws from the whole space,
each with its entropy and the mean *predicted* log loss of its paths, next to the pool's own mean.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau, spearmanr
from ..progress import tqdm

from ..data.schema import CTRSplits
from ..train import TrainConfig
from .evolution import EvolutionResult, regularized_evolution
from .fgps import cut_tail, dedupe, fgps_select, mean_pairwise_hamming, quality_topk, random_subset, set_entropy
from .predictor import PredictorConfig, fit_predictor
from .space import BINARY_DENSE_OPS, Arch, SearchSpace
from .supernet import SuperNet
from .training import SubnetEval, SupernetConfig, evaluate_subnet, train_standalone, train_supernet

STRATEGIES = ("uniform", "quality", "fgps")


@dataclass
class TwoShotConfig:
    # supernets
    first_shot_steps: int = 1000
    second_shot_steps: int = 1000
    batch_size: int = 512
    lr: float = 0.12  # second shot (FGPS: Adagrad 0.12)
    optimizer: str = "adagrad"
    first_lr: float | None = None  # first shot (FGPS: Adam 1e-3); None = as the second shot
    first_optimizer: str | None = None
    warmup_frac: float = 0.2
    # scoring a path on a supernet
    finetune_steps: int = 500
    finetune_lr: float = 0.04
    eval_rows: int | None = None
    # predictor
    predictor_paths: int = 500
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    # predictor-guided evolution -> well-performing pool (paper: 20K population, 51, 64 children, keep 10, 20K generations)
    pool_population: int = 20000
    pool_sample: int = 51
    pool_children: int = 64
    pool_keep: int = 10
    pool_generations: int = 20000
    tail_cut: float = 0.075
    # second-shot path sets
    n_paths: int = 5500
    fgps_batch: int = 200
    fgps_k: int = 20
    # second-shot search (NASRec EA settings)
    ea_population: int = 128
    ea_sample: int = 64
    ea_children: int = 8
    ea_generations: int = 240
    # from scratch
    top_k: int = 15
    scratch: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, batch_size=256, lr=1e-3, monitor="logloss", patience=1))
    strategies: tuple[str, ...] = STRATEGIES
    # controls of the diversity claim: random same-size subsets of the pool, and uniform draws from the space
    diversity_draws: int = 20
    # weight sharing of both supernets: "slice" (exact subnets) or "mask" (NASRec's masked full-width computation)
    sharing: str = "slice"
    progress: bool = True
    device: str = "cpu"  # supernets, scoring and from-scratch training

    def __post_init__(self):
        bad = [s for s in self.strategies if s not in STRATEGIES]
        if bad:
            raise ValueError(f"unknown strategies {bad}; choose from {STRATEGIES}")
        if self.sharing not in ("slice", "mask"):
            raise ValueError(f"sharing must be 'slice' or 'mask', got {self.sharing!r}")
        for name in ("first_shot_steps", "second_shot_steps", "predictor_paths", "pool_population", "n_paths",
                     "ea_population", "top_k", "diversity_draws"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def supernet_cfg(self, steps: int, seed: int, first: bool = False) -> SupernetConfig:
        lr = (self.first_lr or self.lr) if first else self.lr
        opt = (self.first_optimizer or self.optimizer) if first else self.optimizer
        return SupernetConfig(steps=steps, batch_size=self.batch_size, lr=lr, optimizer=opt,
                              warmup_frac=self.warmup_frac, seed=seed, progress=self.progress, device=self.device)

    def eval_cfg(self, seed: int) -> SubnetEval:
        return SubnetEval(finetune_steps=self.finetune_steps, finetune_lr=self.finetune_lr, batch_size=self.batch_size,
                          eval_rows=self.eval_rows, seed=seed)


@dataclass
class TwoShotResult:
    seed: int
    space: SearchSpace
    first_shot: dict
    predictor_report: dict
    pool: list[Arch]  # deduplicated, tail-cut well-performing set
    pool_predicted: np.ndarray
    path_sets: dict[str, list[Arch]]  # strategy -> second-shot paths ("uniform": a same-size uniform draw, for statistics only)
    fgps_entropy_trace: list[float]
    searches: dict[str, EvolutionResult]
    scratch: pd.DataFrame  # one row per (candidate, strategy): supernet score, from-scratch valid/test log loss
    summary: pd.DataFrame  # one row per strategy
    timings: dict[str, float]
    diversity: pd.DataFrame = None  # one row per (set, draw): entropy, mean Hamming, mean predicted log loss

    def find(self, function_key: str) -> Arch:
        """The architecture with this function key among everything the searches evaluated."""
        for res in self.searches.values():
            for a, _ in res.history:
                if a.function_key() == function_key:
                    return a
        raise KeyError(f"no evaluated architecture has function key {function_key!r}")

    def final_archs(self) -> dict[str, Arch]:
        """Each strategy's final model (top-k from scratch, best on validation)."""
        return {row.strategy: self.find(row.final_key) for row in self.summary.itertuples()}


def _score_paths(supernet, archs, splits, cfg, progress, desc):
    return np.array([evaluate_subnet(supernet, a, splits, cfg)["logloss"]
                     for a in tqdm(archs, desc=desc, disable=not progress, leave=False)])


def run_two_shot(splits: CTRSplits, space: SearchSpace, cfg: TwoShotConfig, seed: int = 0) -> TwoShotResult:
    """The whole comparison for one seed; every strategy gets the same first shot, budget and evaluation."""
    t, times = time.perf_counter(), {}
    rng = np.random.default_rng(seed)

    def tick(name):
        nonlocal t
        now = time.perf_counter()
        times[name] = times.get(name, 0.0) + now - t
        t = now

    torch.manual_seed(seed)
    first = SuperNet(splits.schema, space, sharing=cfg.sharing)
    first_hist = train_supernet(first, splits, cfg.supernet_cfg(cfg.first_shot_steps, seed, first=True), desc=f"first shot (seed {seed})")
    tick("first_shot")

    # predictor data: random distinct paths scored on the first shot
    rand, seen = [], set()
    for _ in range(100 * cfg.predictor_paths):
        if len(rand) == cfg.predictor_paths:
            break
        a = space.sample(rng)
        if a.function_key() not in seen:
            seen.add(a.function_key())
            rand.append(a)
    ecfg = cfg.eval_cfg(seed)
    rand_loss = _score_paths(first, rand, splits, ecfg, cfg.progress, "predictor data")
    tick("predictor_data")
    predictor, report = fit_predictor(space.encode_many(rand), rand_loss, space.cardinalities(), replace(cfg.predictor, seed=seed))
    tick("predictor")

    # well-performing pool from predictor-guided evolution
    pool_ea = regularized_evolution(
        lambda r: space.sample(r), lambda a, r: space.mutate(a, r),
        evaluate_batch=lambda archs: predictor.predict(space.encode_many(archs)), key=Arch.function_key,
        population_size=cfg.pool_population, sample_size=min(cfg.pool_sample, cfg.pool_population),
        n_children=cfg.pool_children, generations=cfg.pool_generations, keep_children=cfg.pool_keep,
        seed=rng, progress=cfg.progress, desc="predictor-guided pool")
    pool = [a for a, _ in pool_ea.entrants]
    pred = np.array([f for _, f in pool_ea.entrants])
    codes = space.encode_many(pool)
    keep = dedupe(codes, pred)
    keep = keep[cut_tail(pred[keep], cfg.tail_cut)]
    pool, pred, codes = [pool[i] for i in keep], pred[keep], codes[keep]
    n_paths = min(cfg.n_paths, len(pool))
    sel_fgps, trace = fgps_select(codes, n_paths, cfg.fgps_batch, cfg.fgps_k, seed=seed, trace=True)
    uniform_draws = [[space.sample(rng) for _ in range(n_paths)] for _ in range(cfg.diversity_draws)]
    pool_draws = [random_subset(len(pool), n_paths, seed=[seed, d]) for d in range(cfg.diversity_draws)]
    sel_quality = quality_topk(pred, n_paths)
    path_sets = {"uniform": uniform_draws[0], "quality": [pool[i] for i in sel_quality],
                 "fgps": [pool[i] for i in sel_fgps], "pool_random": [pool[i] for i in pool_draws[0]]}
    div = [_set_row("fgps", 0, codes[sel_fgps], pred[sel_fgps]), _set_row("quality", 0, codes[sel_quality], pred[sel_quality]),
           _set_row("pool", 0, codes, pred)]
    div += [_set_row("pool_random", d, codes[ix], pred[ix]) for d, ix in enumerate(pool_draws)]
    for d, archs in enumerate(uniform_draws):
        uc = space.encode_many(archs)
        div.append(_set_row("uniform", d, uc, predictor.predict(uc)))
    diversity = pd.DataFrame(div).assign(seed=seed)
    diversity["pred_gap_vs_pool"] = diversity.pred_logloss - float(np.mean(pred))  # > 0: worse than the pool
    tick("path_sets")

    searches, scores = {}, {}
    for strat in cfg.strategies:
        sn = copy.deepcopy(first)
        paths = path_sets[strat]
        sampler = None if strat == "uniform" else (lambda r, p=paths: p[int(r.integers(len(p)))])
        scfg = replace(cfg.supernet_cfg(cfg.second_shot_steps, seed + 1), warmup_frac=cfg.warmup_frac)
        train_supernet(sn, splits, scfg, sampler=sampler, desc=f"second shot: {strat}")
        tick(f"second_shot_{strat}")
        scores[strat] = sn
        searches[strat] = regularized_evolution(
            lambda r: space.sample(r), lambda a, r: space.mutate(a, r),
            lambda a, sn=sn: evaluate_subnet(sn, a, splits, ecfg)["logloss"], key=Arch.function_key,
            population_size=cfg.ea_population, sample_size=min(cfg.ea_sample, cfg.ea_population),
            n_children=cfg.ea_children, generations=cfg.ea_generations, seed=seed + 2,
            progress=cfg.progress, desc=f"search: {strat}")
        tick(f"search_{strat}")

    # from scratch: the union of every strategy's top-k, scored by every second-shot supernet
    cands: dict[str, Arch] = {}
    origin: dict[str, list[str]] = {}
    for strat, res in searches.items():
        for a, _ in res.top(cfg.top_k, key=Arch.function_key):
            cands.setdefault(a.function_key(), a)
            origin.setdefault(a.function_key(), []).append(strat)
    rows = []
    for key, a in tqdm(cands.items(), desc="from scratch", disable=not cfg.progress, leave=False):
        sr = train_standalone(splits, space, a, replace(cfg.scratch, seed=seed, progress=False, device=cfg.device), seed=seed)
        row = {"key": key, "found_by": ",".join(origin[key]), "scratch_valid_logloss": sr.valid["logloss"],
               "scratch_test_logloss": sr.test["logloss"], "scratch_test_auc": sr.test["auc"], "params": sr.params}
        for strat, sn in scores.items():
            row[f"supernet_{strat}"] = evaluate_subnet(sn, a, splits, ecfg)["logloss"]
        rows.append(row)
    scratch = pd.DataFrame(rows)
    tick("scratch")

    summary = []
    for strat in cfg.strategies:
        mine = scratch[scratch.found_by.str.split(",").apply(lambda s, st=strat: st in s)]
        by_super = mine.sort_values(f"supernet_{strat}").iloc[0]
        by_valid = mine.sort_values("scratch_valid_logloss").iloc[0]
        tau = kendalltau(scratch[f"supernet_{strat}"], scratch.scratch_test_logloss).statistic
        rho = spearmanr(scratch[f"supernet_{strat}"], scratch.scratch_test_logloss).statistic
        ps = path_sets[strat]
        summary.append({
            "strategy": strat, "seed": seed,
            "path_set_entropy": set_entropy(space.encode_many(ps)),
            "path_set_mean_hamming": mean_pairwise_hamming(space.encode_many(ps[:500])),
            "path_set_pred_logloss": float(diversity[(diversity.set == strat) & (diversity.draw == 0)].pred_logloss.iloc[0]),
            "search_best_supernet_logloss": searches[strat].best[1],
            "kendall_tau": float(tau), "spearman_rho": float(rho),
            "best_by_supernet_test_logloss": float(by_super.scratch_test_logloss),
            "final_test_logloss": float(by_valid.scratch_test_logloss),  # top-k from scratch, picked on valid (NASRec protocol)
            "final_test_auc": float(by_valid.scratch_test_auc),
            "final_key": by_valid.key,
        })
    summary = pd.DataFrame(summary)
    return TwoShotResult(seed, space, first_hist, report, pool, pred, path_sets, trace, searches, scratch, summary, times,
                         diversity)


def _set_row(name: str, draw: int, codes: np.ndarray, predicted: np.ndarray) -> dict:
    return {"set": name, "draw": draw, "paths": len(codes), "entropy": set_entropy(codes),
            "mean_hamming": mean_pairwise_hamming(codes[:500]), "pred_logloss": float(np.mean(predicted))}


def diversity_table(results: list[TwoShotResult]) -> pd.DataFrame:
    """Per seed and set: mean entropy and mean predicted log loss over the draws, with the draws' spread.

    Sets: ``fgps``, ``quality`` (one set each), ``pool`` (the whole tail-cut pool), ``pool_random`` and
    ``uniform`` (``diversity_draws`` draws each). ``pred_gap_vs_pool``: how much worse (> 0) the set's mean
    predicted log loss is than the pool's: the quality the set gives up.
    """
    rows = []
    for r in results:
        d = r.diversity
        pool_ll = float(d[d.set == "pool"].pred_logloss.iloc[0])
        for name, g in d.groupby("set", sort=False):
            rows.append({"seed": r.seed, "set": name, "draws": len(g), "paths": int(g.paths.iloc[0]),
                         "entropy": g.entropy.mean(), "entropy_sd": g.entropy.std(ddof=1) if len(g) > 1 else 0.0,
                         "mean_hamming": g.mean_hamming.mean(), "pred_logloss": g.pred_logloss.mean(),
                         "pred_gap_vs_pool": g.pred_logloss.mean() - pool_ll})
    return pd.DataFrame(rows)


def op_usage(archs: list[Arch]) -> pd.DataFrame:
    """How often each operator and merger appears in the blocks the head actually reads."""
    rows = []
    for a in archs:
        for i in a.active_blocks():
            b = a.blocks[i]
            rows += [{"kind": "dense op", "choice": b.dense_op}, {"kind": "sparse op", "choice": b.sparse_op}]
            if b.dense_to_sparse:
                rows.append({"kind": "merger", "choice": "dense->sparse"})
            if b.sparse_to_dense:
                rows.append({"kind": "merger", "choice": "sparse->dense (FM)"})
            if b.dense_op in BINARY_DENSE_OPS and b.left == b.right:
                rows.append({"kind": "motif", "choice": "self-" + b.dense_op})
    df = pd.DataFrame(rows, columns=["kind", "choice"])
    return df.value_counts().rename("count").reset_index().sort_values(["kind", "count"], ascending=[True, False])


def strategy_entropies(space: SearchSpace, res: TwoShotResult) -> dict[str, float]:
    """Entropy of each path set next to the pool it was drawn from and the space's maximum."""
    out = {k: set_entropy(space.encode_many(v)) for k, v in res.path_sets.items()}
    out["whole pool"] = set_entropy(space.encode_many(res.pool))
    out["space maximum"] = space.max_entropy()
    return out


def summarize(results: list[TwoShotResult]) -> pd.DataFrame:
    """All seeds' per-strategy rows in one table."""
    return pd.concat([r.summary for r in results], ignore_index=True)


def head_to_head(summary: pd.DataFrame, a: str = "fgps", b: str = "uniform", metric: str = "final_test_logloss",
                 lower_is_better: bool = True) -> dict:
    """Per-seed comparison of strategy ``a`` against ``b``: wins, mean difference and its spread."""
    pa = summary[summary.strategy == a].set_index("seed")[metric]
    pb = summary[summary.strategy == b].set_index("seed")[metric]
    diff = (pa - pb).dropna()
    better = (diff < 0) if lower_is_better else (diff > 0)
    return {"a": a, "b": b, "metric": metric, "seeds": len(diff), "wins": int(better.sum()),
            "mean_diff": float(diff.mean()), "std_diff": float(diff.std(ddof=1)) if len(diff) > 1 else float("nan")}


def entropy_curves(res: TwoShotResult, step: int | None = None) -> pd.DataFrame:
    """Entropy of each path set as it grows: FGPS in its selection order, quality-only by rank, random pool
    paths and uniform paths in draw order (all sets have the same final size)."""
    space, n = res.space, len(res.path_sets["fgps"])
    step = step or max(1, n // 20)
    sizes = sorted(set(list(range(step, n + 1, step)) + [n]))
    rows = []
    for name, label in (("fgps", "FGPS"), ("quality", "quality-only top-k"), ("pool_random", "random draw from the pool"),
                        ("uniform", "uniform from the space")):
        codes = space.encode_many(res.path_sets[name])
        rows += [{"paths": k, "set": label, "entropy": set_entropy(codes[:k])} for k in sizes]
    return pd.DataFrame(rows)


def ranking_table(results: list[TwoShotResult]) -> pd.DataFrame:
    """Long table of (seed, strategy, supernet score, from-scratch test log loss) for rank-correlation plots."""
    rows = []
    for r in results:
        for strat in r.summary.strategy:
            for _, row in r.scratch.iterrows():
                rows.append({"seed": r.seed, "strategy": strat, "supernet_logloss": row[f"supernet_{strat}"],
                             "scratch_test_logloss": row.scratch_test_logloss, "found_by": row.found_by})
    return pd.DataFrame(rows)
