"""Searchers on one ask/tell interface, so every NAS paper's method runs on any space at an equal budget.

``ask()`` returns the searcher's next proposals (its natural batch: one for random and TPE, the initial
population and then one generation of children for evolution, ``batch`` draws for REINFORCE); ``tell(proposal,
reward)`` reports a result, **higher reward is better** (the driver in ``trials.py`` negates a loss).
``reward=None`` means the trial failed. Proposals that break a constraint are redrawn before they are asked
(counted in ``rejected``); candidates already told are not proposed again where the method allows it.

Searchers: :class:`RandomSearch`, :class:`RegularizedEvolution` (NASRec's aging evolution), :class:`Reinforce`
(a factorised categorical policy with a moving-average baseline), :class:`PredictorSearch` (a predictor ensemble
fitted on the trials so far, proposing the best predicted candidates among draws from a policy trained against it:
the "predictor + RL" of Meta's AutoML paper), :class:`TPESearch` (Optuna's TPE, the Bayesian baseline).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .constraints import Constraint, feasible
from .protocol import Space, as_rng


@dataclass
class Proposal:
    cand: Any
    key: str
    info: dict = field(default_factory=dict)  # e.g. the sampled code and its log-probability


class Searcher:
    name = "searcher"

    def __init__(self, space: Space, seed: int = 0, constraints: Sequence[Constraint] = (), max_redraws: int = 200):
        self.space, self.seed, self.constraints, self.max_redraws = space, seed, tuple(constraints), max_redraws
        self.rng = np.random.default_rng(seed)
        self.told: dict[str, float | None] = {}  # key -> reward (None = failed)
        self.history: list[tuple[Any, float | None]] = []
        self.pending: set[str] = set()
        self.rejected = 0

    # ------------------------------------------------------------------ helpers
    def _ok(self, cand) -> bool:
        if not self.space.valid(cand):
            return False
        if self.constraints and not feasible(cand, self.constraints):
            self.rejected += 1
            return False
        return True

    def _fresh(self, key: str) -> bool:
        return key not in self.told and key not in self.pending

    def _draw(self, make: Callable[[], tuple[Any, dict]], fresh: bool = True) -> Proposal:
        """Call ``make`` until it gives a valid, feasible (and, if asked, unseen) candidate."""
        last = None
        for _ in range(self.max_redraws):
            cand, info = make()
            if not self._ok(cand):
                continue
            k = self.space.key(cand)
            last = Proposal(cand, k, info)
            if not fresh or self._fresh(k):
                break
        if last is None:
            raise RuntimeError(f"{self.name}: {self.max_redraws} draws were all invalid or infeasible "
                               f"(constraints: {[c.name for c in self.constraints]}); loosen the limits")
        self.pending.add(last.key)
        return last

    def best(self) -> tuple[Any, float]:
        done = [(c, r) for c, r in self.history if r is not None]
        if not done:
            raise RuntimeError(f"{self.name}: no successful trial yet")
        return max(done, key=lambda cr: cr[1])

    # ------------------------------------------------------------------ the interface
    def ask(self) -> list[Proposal]:
        raise NotImplementedError

    def tell(self, p: Proposal, reward: float | None) -> None:
        if reward is not None and not math.isfinite(reward):
            reward = None
        self.pending.discard(p.key)
        self.told[p.key] = reward
        self.history.append((p.cand, reward))
        self._observe(p, reward)

    def _observe(self, p: Proposal, reward: float | None) -> None:
        pass


class RandomSearch(Searcher):
    name = "random"

    def ask(self) -> list[Proposal]:
        return [self._draw(lambda: (self.space.sample_uniform(self.rng), {}))]


def nasrec_mutation_count(generation: int, generations: int) -> int:
    """NASRec's decaying number of mutations per child: ``(G - g) // max(20, G // 5) + 1``."""
    return (generations - generation) // max(20, generations // 5) + 1


class RegularizedEvolution(Searcher):
    """Aging evolution. The first ask is the initial population (distinct random candidates); every later ask is
    one generation: a tournament of ``sample_size`` picks the parent, ``n_children`` children of ``m`` mutations
    each (``m`` decays as in NASRec when ``generations`` is given, else 1), children already seen are re-mutated up
    to ``max_retries`` times; after the generation is told, the best ``keep_children`` join and as many of the
    oldest die. A failed child never joins. The RNG is consumed in the same order as the batch function it
    replaces (``evolution.regularized_evolution``), so its numbers are unchanged."""

    name = "evolution"

    def __init__(self, space: Space, seed: int = 0, constraints: Sequence[Constraint] = (), *, population_size: int = 128,
                 sample_size: int = 64, n_children: int = 8, keep_children: int | None = None,
                 generations: int | None = None, max_retries: int = 20, rng: np.random.Generator | None = None):
        super().__init__(space, seed, constraints)
        if population_size < 1 or n_children < 1:
            raise ValueError(f"population_size and n_children must be >= 1, got {population_size}, {n_children}")
        if not 1 <= sample_size <= population_size:
            raise ValueError(f"sample_size must lie in 1..population_size={population_size}, got {sample_size}")
        keep = n_children if keep_children is None else keep_children
        if not 1 <= keep <= n_children:
            raise ValueError(f"keep_children must lie in 1..n_children={n_children}, got {keep_children}")
        if rng is not None:
            self.rng = rng
        self.P, self.S, self.C, self.keep = population_size, sample_size, n_children, keep
        self.G, self.max_retries = generations, max_retries
        self.population: deque = deque()
        self.entrants: list = []  # (proposal, reward) of every candidate that joined the population, in order
        self.cap = population_size  # the population's size once the initial one is told
        self.generation = -1  # -1 = the initial population is next
        self._batch: list[tuple[Proposal, float | None]] = []
        self._expect = 0

    def _initial(self) -> list[Proposal]:
        init, seen = [], set()
        for _ in range(self.P * (self.max_retries + 1)):
            if len(init) == self.P:
                break
            c = self.space.sample_uniform(self.rng)
            if not self._ok(c):
                continue
            k = self.space.key(c)
            if k not in seen:
                seen.add(k)
                init.append(Proposal(c, k, {"generation": -1}))
        return init

    def _children(self) -> list[Proposal]:
        pop = self.population
        idx = self.rng.choice(len(pop), size=min(self.S, len(pop)), replace=False)
        best = max((pop[i] for i in idx), key=lambda pr: pr[1])  # first best, as min() over fitness picked
        parent = best[0].cand
        g = self.generation
        m = nasrec_mutation_count(g, self.G) if self.G else 1
        out, keys = [], set()
        for _ in range(self.C):
            for _attempt in range(self.max_retries + 1):
                child = parent
                for _ in range(m):
                    child = self.space.mutate(child, self.rng)
                k = self.space.key(child)
                if k not in self.told and k not in keys and self._ok(child):
                    break
            keys.add(k)
            out.append(Proposal(child, k, {"generation": g}))
        return out

    def ask(self) -> list[Proposal]:
        if self._expect:
            raise RuntimeError("evolution: tell the previous batch before asking again")
        if self.generation == -1:
            batch = self._initial()
        else:
            if not self.population:
                raise RuntimeError("evolution: the initial population had no successful trial")
            batch = self._children()
        self._batch, self._expect = [], len(batch)
        return batch

    def _observe(self, p: Proposal, reward: float | None) -> None:
        if not self._expect:
            return  # a result from outside the evolution's own batches (e.g. replayed): history only
        self._batch.append((p, reward))
        if len(self._batch) < self._expect:
            return
        done = [(q, r) for q, r in self._batch if r is not None]
        if self.generation == -1:
            self.population.extend(done)
            self.cap = len(self.population)  # fewer than P when the space ran out of distinct draws; size stays
        else:
            done = sorted(done, key=lambda qr: -qr[1])[:self.keep]
            for qr in done:
                self.population.append(qr)
                if len(self.population) > self.cap:
                    self.population.popleft()  # aging: the oldest dies
        self.entrants.extend(done)
        self.generation += 1
        self._expect = 0


class FactorizedPolicy:
    """Independent softmax over each decision's choices (numpy; the gradient of log p is ``onehot - p``)."""

    def __init__(self, cardinalities: Sequence[int]):
        self.card = np.asarray(cardinalities, dtype=np.int64)
        self.logits = [np.zeros(int(c)) for c in self.card]

    def probs(self) -> list[np.ndarray]:
        out = []
        for z in self.logits:
            e = np.exp(z - z.max())
            out.append(e / e.sum())
        return out

    def sample(self, rng) -> tuple[np.ndarray, float]:
        code, logp = [], 0.0
        for p in self.probs():
            v = int(rng.choice(len(p), p=p))
            code.append(v)
            logp += math.log(p[v])
        return np.array(code, dtype=np.int64), logp

    def log_prob(self, code: Sequence[int]) -> float:
        return float(sum(math.log(p[int(v)]) for p, v in zip(self.probs(), code)))

    def update(self, code: Sequence[int], advantage: float, lr: float) -> None:
        for z, p, v in zip(self.logits, self.probs(), code):
            g = -p
            g[int(v)] += 1.0
            z += lr * advantage * g

    def entropy(self) -> float:
        return float(sum(-(p * np.log(p + 1e-12)).sum() for p in self.probs()))

    def mode(self) -> np.ndarray:
        return np.array([int(np.argmax(z)) for z in self.logits], dtype=np.int64)


class Reinforce(Searcher):
    """REINFORCE with a moving-average baseline: ``logits += lr * (r - b) / s * grad log p(code)``, with ``b`` and
    ``s`` exponential moving averages of the reward's mean and spread (so ``lr`` does not depend on the reward's
    scale). A draw already evaluated is redrawn, so no trial is spent twice on one candidate."""

    name = "reinforce"

    def __init__(self, space: Space, seed: int = 0, constraints: Sequence[Constraint] = (), *, lr: float = 0.2,
                 baseline_decay: float = 0.9, batch: int = 1):
        super().__init__(space, seed, constraints)
        if not 0 <= baseline_decay < 1 or lr <= 0 or batch < 1:
            raise ValueError(f"need lr > 0, 0 <= baseline_decay < 1, batch >= 1; got {lr}, {baseline_decay}, {batch}")
        self.policy = FactorizedPolicy(space.cardinalities())
        self.lr, self.decay, self.batch, self.redraws = lr, baseline_decay, batch, 50
        self.baseline: float | None = None
        self.spread = 1.0
        self.updates = 0

    def _learn(self, code, reward: float) -> None:
        if self.baseline is None:
            self.baseline = reward
            return
        adv = (reward - self.baseline) / max(self.spread, 1e-8)
        self.policy.update(code, adv, self.lr)
        self.updates += 1
        self.spread = self.decay * self.spread + (1 - self.decay) * abs(reward - self.baseline)
        self.baseline = self.decay * self.baseline + (1 - self.decay) * reward

    def _sample(self) -> tuple[Any, dict]:
        """A policy draw not yet evaluated; after ``redraws`` draws that were all known (a converged policy), an
        unseen mutation of the last draw (a neighbour of where the policy points), else a uniform draw, marked
        ``fallback`` and not learned from (its log-probability is not the policy's)."""
        for _ in range(self.redraws):
            code, cand, logp = self.space.sample_code(self.rng, self.policy)
            if self._fresh(self.space.key(cand)) and self._ok(cand):
                return cand, {"code": code, "logp": logp}
        near = cand
        for _ in range(self.redraws):
            near = self.space.mutate(near, self.rng)
            if self._fresh(self.space.key(near)) and self._ok(near):
                return near, {"fallback": "mutation"}
        return self.space.sample_uniform(self.rng), {"fallback": "uniform"}

    def ask(self) -> list[Proposal]:
        return [self._draw(self._sample) for _ in range(self.batch)]

    def _observe(self, p: Proposal, reward: float | None) -> None:
        if p.info.get("fallback"):
            return
        if reward is None:  # a failure teaches "worse than usual"
            if self.baseline is None:
                return
            reward = self.baseline - 2 * self.spread
        self._learn(p.info.get("code", self.space.encode(p.cand)), reward)


class PredictorSearch(Searcher):
    """After ``warmup`` random trials, each ask fits a fresh predictor (``make_predictor(cardinalities, seed)`` with
    ``fit``/``predict -> (mean, spread)``) on every successful trial, trains a REINFORCE policy for
    ``inner_steps`` draws against the predicted ``mean + kappa * spread``, and proposes the ``batch`` best distinct
    unseen candidates among those draws. ``inner_steps=0`` scores uniform draws instead (predictor alone)."""

    name = "predictor"

    def __init__(self, space: Space, make_predictor: Callable[[np.ndarray, int], Any], seed: int = 0,
                 constraints: Sequence[Constraint] = (), *, warmup: int = 10, batch: int = 5, inner_steps: int = 2000,
                 inner_batch: int = 50, kappa: float = 0.5, lr: float = 0.2):
        super().__init__(space, seed, constraints)
        if warmup < 2 or batch < 1 or inner_steps < 0 or inner_batch < 1:
            raise ValueError(f"need warmup >= 2, batch >= 1, inner_steps >= 0, inner_batch >= 1")
        self.make_predictor, self.warmup, self.batch = make_predictor, warmup, batch
        self.inner_steps, self.inner_batch, self.kappa, self.lr = inner_steps, inner_batch, kappa, lr
        self.rounds = 0

    def ask(self) -> list[Proposal]:
        ok = [(c, r) for c, r in self.history if r is not None]
        if len(ok) + len(self.pending) < self.warmup or len(ok) < 2:
            return [self._draw(lambda: (self.space.sample_uniform(self.rng), {}))]
        codes = np.stack([self.space.encode(c) for c, _ in ok])
        y = np.array([r for _, r in ok])
        pred = self.make_predictor(self.space.cardinalities(), self.seed * 7919 + self.rounds)
        pred.fit(codes, y)
        self.rounds += 1
        pool: dict[str, tuple[Any, float]] = {}

        def score(cands):
            m, s = pred.predict(np.stack([self.space.encode(c) for c in cands]))
            return m + self.kappa * s

        def consider(cands):
            for c, a in zip(cands, score(cands)):
                if self._ok(c):
                    k = self.space.key(c)
                    if self._fresh(k):
                        pool[k] = (c, float(a))

        if self.inner_steps:
            inner = Reinforce(self.space, seed=int(self.rng.integers(2**31)), lr=self.lr)
            for _ in range(max(1, self.inner_steps // self.inner_batch)):
                drawn = [self.space.sample_code(inner.rng, inner.policy) for _ in range(self.inner_batch)]
                draws = [c for _, c, _ in drawn]
                for (code, _, _), a in zip(drawn, score(draws)):
                    inner._learn(code, float(a))
                consider(draws)
        else:
            consider([self.space.sample_uniform(self.rng) for _ in range(self.inner_batch * 20)])
        best = sorted(pool.items(), key=lambda kv: -kv[1][1])[:self.batch]
        if not best:
            return [self._draw(lambda: (self.space.sample_uniform(self.rng), {}))]
        out = []
        for k, (c, a) in best:
            self.pending.add(k)
            out.append(Proposal(c, k, {"acquisition": a, "round": self.rounds}))
        return out


class TPESearch(Searcher):
    """Optuna's Tree-structured Parzen Estimator over the decision vector, through Optuna's ask/tell API. A code
    that decodes to a candidate outside the space (a table) is moved to the nearest member by Hamming distance
    (ties: lowest row), and TPE is told the member's result (our choice; TPE has no notion of a finite table)."""

    name = "tpe"

    def __init__(self, space: Space, seed: int = 0, constraints: Sequence[Constraint] = (), *, n_startup: int = 10,
                 multivariate: bool = True):
        super().__init__(space, seed, constraints)
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup, multivariate=multivariate)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._dist = {f"d{i}": optuna.distributions.CategoricalDistribution(list(range(int(c))))
                      for i, c in enumerate(space.cardinalities())}
        self._trials: dict[str, list] = {}

    def _decode(self, code):
        try:
            return self.space.decode(code)
        except ValueError:
            codes = getattr(self.space, "codes", None)
            if codes is None:
                raise
            return int(np.argmin((codes != np.asarray(code)).sum(1)))

    def ask(self) -> list[Proposal]:
        for _ in range(self.max_redraws):
            t = self.study.ask(self._dist)
            code = [t.params[f"d{i}"] for i in range(len(self._dist))]
            cand = self._decode(code)
            if not self._ok(cand):
                self.study.tell(t, state=__import__("optuna").trial.TrialState.FAIL)
                continue
            k = self.space.key(cand)
            if k in self.told and self.told[k] is not None:
                self.study.tell(t, self.told[k])  # a known result costs no trial
                continue
            if k in self.pending:
                self._trials[k].append(t)
                continue
            self.pending.add(k)
            self._trials[k] = [t]
            return [Proposal(cand, k, {})]
        raise RuntimeError(f"tpe: {self.max_redraws} asks gave no new feasible candidate")

    def _observe(self, p: Proposal, reward: float | None) -> None:
        import optuna
        for t in self._trials.pop(p.key, []):
            if reward is None:
                self.study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(t, reward)


SEARCHERS = {"random": RandomSearch, "evolution": RegularizedEvolution, "reinforce": Reinforce, "tpe": TPESearch,
             "predictor": PredictorSearch}
