"""Proxy rank correlations with trained ground truth, over warm-up levels and seeds (the layout of SiGeo's CV table).

For every cell and seed the candidate is initialised once; at each warm-up level a copy is warmed up with the CV
protocol (``warmup.warmup_candidate``: 10 epochs over the first ``samples`` rows of that seed's shuffle of the
training set, SGD lr 1, batch 128) and every proxy scores it on the level's 4 x 64 scoring batches. One warm-up
per (cell, seed, level) serves every proxy; the official code warms up again for each proxy, from the same
initialisation. SiGeo's lambdas switch to the warmed-up values (50, 1) whenever the level is above 0.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..progress import tqdm
from . import proxies as px
from .cells import CellSpace, describe, train_cell
from .warmup import amount, scoring_batches, warmup_candidate


def ground_truth(space: CellSpace, archs, data, epochs: int = 8, seeds=(0,), progress: bool = True) -> pd.DataFrame:
    """Each cell trained from scratch once per seed; validation and test accuracy averaged over seeds."""
    rows = []
    for a_id, arch in enumerate(tqdm(archs, desc="ground truth", disable=not progress, leave=False)):
        for s in seeds:
            t0 = time.perf_counter()
            r = train_cell(space, arch, data, epochs=epochs, seed=s)
            rows.append({"arch_id": a_id, "arch": describe(arch), "gt_seed": s, **r, "seconds": time.perf_counter() - t0})
    df = pd.DataFrame(rows)
    return df.groupby(["arch_id", "arch"], as_index=False)[["valid_acc", "test_acc", "train_loss", "seconds"]].mean()


def score_cells(space: CellSpace, archs, data, levels, proxies, seeds, warm_proxies=None, warm_epochs: int = 10,
                progress: bool = True) -> pd.DataFrame:
    """Long table (arch_id, seed, level, samples, proxy, score, seconds); ``warm_proxies`` (default: all) are
    the ones scored at levels above 0. #params and FLOPs do not depend on warm-up and are scored at level 0 only."""
    warm_proxies = list(proxies) if warm_proxies is None else list(warm_proxies)
    n = len(data.y_train)
    rows = []
    jobs = [(a, s) for a in range(len(archs)) for s in seeds]
    for a_id, seed in tqdm(jobs, desc="proxies", disable=not progress, leave=False):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(1000 + seed))
        x, y = data.x_train[perm], data.y_train[perm]
        init = space.build(archs[a_id], seed=seed)
        for lv in levels:
            w = amount(lv, n)
            net = copy.deepcopy(init)
            w = warmup_candidate(net, x, y, w.samples, epochs=warm_epochs)
            batches = scoring_batches(x, y, w.samples)
            names = proxies if lv == 0 else [p for p in warm_proxies if p not in ("params", "flops")]
            for p in names:
                t0 = time.perf_counter()
                kw = {"warmed": w.samples > 0} if p == "sigeo" else {}
                try:
                    v = px.score(p, net, batches, F.cross_entropy, **kw)
                except (RuntimeError, np.linalg.LinAlgError, ValueError):
                    v = float("nan")
                rows.append({"arch_id": a_id, "seed": seed, "level": lv, "samples": w.samples, "proxy": p, "score": v,
                             "seconds": time.perf_counter() - t0, "warmup_seconds": w.seconds})
    return pd.DataFrame(rows)


def correlations(scores: pd.DataFrame, truth: pd.DataFrame, metric: str = "valid_acc") -> pd.DataFrame:
    """Spearman and Kendall of each proxy with ``metric`` per (proxy, level, seed). A non-finite score ranks as
    the worst (a proxy that cannot score a network does not favour it)."""
    from scipy import stats

    df = scores.merge(truth[["arch_id", metric]], on="arch_id")
    rows = []
    for (p, lv, s), g in df.groupby(["proxy", "level", "seed"]):
        v = g["score"].to_numpy(float)
        v = np.where(np.isfinite(v), v, -np.inf)
        rows.append({"proxy": p, "level": lv, "seed": s, "samples": int(g["samples"].iloc[0]),
                     "spearman": stats.spearmanr(v, g[metric]).statistic,
                     "kendall": stats.kendalltau(v, g[metric]).statistic,
                     "nonfinite": int((~np.isfinite(g["score"].to_numpy(float))).sum())})
    return pd.DataFrame(rows)


def table(corr: pd.DataFrame, proxies, levels, stat: str = "spearman") -> pd.DataFrame:
    """Mean over seeds, as 'spearman / kendall' strings in the paper's layout (rows: proxy @ level)."""
    m = corr.groupby(["proxy", "level"])[["spearman", "kendall"]].mean()
    rows = {}
    for p in proxies:
        for lv in levels:
            if (p, lv) in m.index:
                r = m.loc[(p, lv)]
                rows[f"{px.LABELS.get(p, p)} {100 * lv:g}%"] = f"{r.spearman:.2f} / {r.kendall:.2f}"
    return pd.Series(rows, name="ours (Spearman / Kendall)").to_frame()
