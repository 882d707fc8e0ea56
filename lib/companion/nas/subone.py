"""Sub-one-shot search (SiGeo's RecSys protocol) beside zero-shot, one-shot and random search, on a NASRec space.

Per seed, one supernet initialisation is copied into every arm, so the arms differ only in warm-up and scorer:

- ``sigeo@f``: the supernet warmed up on the first fraction ``f`` of the training split (``warmup.warmup_supernet``),
  every candidate's subnet extracted with its inherited weights and scored by the released RecSys SiGeo
  (``proxies.sigeo_recsys``: 4 Adagrad steps on the final logit layer only, ``form="last"``; ``form="whole"`` lets
  every parameter train and enter the statistics);
- ``zico@0``: the untrained supernet scored by the ZiCo term of the same run alone (zero-shot);
- ``oneshot@1``: the supernet trained on all of the training split, candidates scored by validation log loss after
  a head-only fine-tune (NASRec's one-shot scoring, ``training.evaluate_subnet``);
- ``random``: the official ``--zeroshot random`` control, the same evolution driven by random scores.

Every arm runs the same regularized evolution; its top-k distinct candidates are trained from scratch and the one
with the best validation log loss is the arm's result (NASRec's protocol). Search compute is the measured wall time
of the warm-up plus the evolution's scoring; training from scratch is not search compute (the paper's x-axis).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..train import TrainConfig
from . import proxies as px
from .evolution import regularized_evolution
from .supernet import SuperNet
from .training import SubnetEval, SupernetConfig, evaluate_subnet, train_standalone
from .warmup import warmup_supernet


@dataclass
class SubOneShotConfig:
    arms: tuple[str, ...] = ("random", "zico@0", "sigeo@0", "sigeo@0.01", "sigeo@0.1", "oneshot@1")
    supernet: SupernetConfig = field(default_factory=lambda: SupernetConfig(batch_size=256, lr=0.05, progress=False))
    score_batches: int = 4
    score_batch_size: int = 512
    form: str = "last"  # last (released) | whole
    zico_coef: float = 1.0
    fr_coef: float = 1.0
    loss_coef: float = 1.0
    oneshot_eval: SubnetEval = field(default_factory=lambda: SubnetEval(finetune_steps=20, eval_rows=2000))
    population: int = 16
    sample: int = 8
    children: int = 4
    generations: int = 10
    top_k: int = 3
    scratch: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, batch_size=256, lr=3e-3, monitor="logloss",
                                                                     patience=1, progress=False))

    def __post_init__(self):
        if self.form not in ("last", "whole"):
            raise ValueError(f"form must be 'last' or 'whole', got {self.form!r}")
        for a in self.arms:
            parse_arm(a)


def parse_arm(arm: str) -> tuple[str, float]:
    """``'sigeo@0.01'`` -> ('sigeo', 0.01); ``'random'`` -> ('random', 0.0)."""
    kind, _, frac = arm.partition("@")
    if kind not in ("random", "zico", "sigeo", "sigeo_whole", "oneshot"):
        raise ValueError(f"unknown arm {arm!r}: use random, zico@F, sigeo@F, sigeo_whole@F or oneshot@F")
    f = float(frac) if frac else 0.0
    if not 0 <= f <= 1:
        raise ValueError(f"arm {arm!r}: the warm-up fraction must lie in [0, 1]")
    return kind, f


def _bce(out, y):
    return F.binary_cross_entropy_with_logits(out, y)


def _fitness(kind: str, supernet: SuperNet, splits, batches, cfg: SubOneShotConfig, rng: np.random.Generator):
    """The EA's fitness (lower is better) for one arm."""
    if kind == "random":
        return lambda arch: float(rng.random())
    if kind == "oneshot":
        return lambda arch: evaluate_subnet(supernet, arch, splits, cfg.oneshot_eval)["logloss"]
    only = None if (kind == "sigeo_whole" or cfg.form == "whole") else ("head",)
    coefs = ({"zico_coef": 1.0, "fr_coef": 0.0, "loss_coef": 0.0} if kind == "zico" else
             {"zico_coef": cfg.zico_coef, "fr_coef": cfg.fr_coef, "loss_coef": cfg.loss_coef})

    def fit(arch):
        sub = supernet.extract(arch)
        return -px.score("sigeo_recsys", sub, batches, _bce, only=only, **coefs)
    return fit


def run_seed(splits, space, cfg: SubOneShotConfig, seed: int = 0, progress: bool = False) -> dict:
    """All arms for one seed: search rows (arm, compute) and the from-scratch results of every top-k candidate."""
    torch.manual_seed(seed)
    base = SuperNet(splits.schema, space)
    g = torch.Generator().manual_seed(seed)
    score_batches = []
    for b in splits.train.batches(cfg.score_batch_size, shuffle=True, generator=g):
        if len(b["label"]) == cfg.score_batch_size:
            score_batches.append((b, b["label"]))
        if len(score_batches) == cfg.score_batches:
            break
    warmed: dict[float, tuple[SuperNet, object]] = {}
    search, found = [], {}
    for arm in cfg.arms:
        kind, frac = parse_arm(arm)
        if frac not in warmed:
            sn = copy.deepcopy(base)
            w = warmup_supernet(sn, splits, frac, replace(cfg.supernet, seed=seed))
            warmed[frac] = (sn, w)
        sn, w = warmed[frac]
        rng = np.random.default_rng(seed + 7)
        t0 = time.perf_counter()
        res = regularized_evolution(lambda r: space.sample(r), lambda a, r: space.mutate(a, r),
                                    _fitness(kind, sn, splits, score_batches, cfg, rng), key=lambda a: a.key(),
                                    population_size=cfg.population, sample_size=cfg.sample, n_children=cfg.children,
                                    generations=cfg.generations, seed=seed, progress=progress, desc=arm)
        ea_s = time.perf_counter() - t0
        top = res.top(cfg.top_k, key=lambda a: a.key())
        search.append({"seed": seed, "arm": arm, "kind": kind, "warmup_fraction": frac, "warmup_samples": w.samples,
                       "warmup_steps": w.steps, "warmup_s": w.seconds, "search_s": ea_s,
                       "compute_s": w.seconds + ea_s, "evaluations": len({a.key() for a, _ in res.history}),
                       "top_keys": [a.key() for a, _ in top]})
        for a, _ in top:
            found[a.key()] = a
    scratch = {}
    for k, a in found.items():
        r = train_standalone(splits, space, a, replace(cfg.scratch, seed=seed), seed=seed, desc=k)
        scratch[k] = {"key": k, "valid_logloss": r.valid["logloss"], "test_logloss": r.test["logloss"],
                      "test_auc": r.test.get("auc", float("nan")), "params": r.params}
    rows = []
    for s in search:
        cands = [scratch[k] for k in s["top_keys"]]
        best = min(cands, key=lambda c: c["valid_logloss"])
        rows.append({**{k: v for k, v in s.items() if k != "top_keys"}, "final_key": best["key"],
                     "final_valid_logloss": best["valid_logloss"], "final_test_logloss": best["test_logloss"],
                     "final_test_auc": best["test_auc"], "final_params": best["params"]})
    return {"summary": pd.DataFrame(rows), "scratch": pd.DataFrame(scratch.values()).assign(seed=seed),
            "archs": found}
