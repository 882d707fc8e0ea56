"""Regularized (aging) evolution, generic over the candidate type.

Candidates are anything: NASRec architectures, (architecture, bit-width) pairs, ... The caller passes
``sample(rng)``, ``mutate(candidate, rng)``, a fitness (lower is better) and a ``key`` that identifies
duplicates. NASRec's settings: population 128, tournament 64, 8 children per generation, 240 generations,
``m = (G - g) // max(20, G // 5) + 1`` mutations per child (6 decaying to 1), children already seen are
re-mutated, the oldest members die. FGPS's predictor-guided variant keeps only the best ``keep_children``
of each generation's children (10 of 64).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Hashable, Sequence, TypeVar

import numpy as np

from ..progress import tqdm
from .protocol import Space
from .searchers import RegularizedEvolution, nasrec_mutation_count  # noqa: F401  (re-exported)

C = TypeVar("C")


@dataclass
class EvolutionResult(Generic[C]):
    history: list[tuple[C, float]] = field(default_factory=list)  # every evaluated candidate, in order
    entrants: list[tuple[C, float]] = field(default_factory=list)  # candidates that joined the population
    population: list[tuple[C, float]] = field(default_factory=list)  # the survivors at the end
    best_so_far: list[float] = field(default_factory=list)  # best fitness after the initial population and each generation

    @property
    def best(self) -> tuple[C, float]:
        return min(self.history, key=lambda cf: cf[1])

    def top(self, k: int, key: Callable[[C], Hashable] = repr) -> list[tuple[C, float]]:
        """The ``k`` best distinct candidates ever evaluated."""
        seen, out = set(), []
        for c, f in sorted(self.history, key=lambda cf: cf[1]):
            h = key(c)
            if h not in seen:
                seen.add(h)
                out.append((c, f))
            if len(out) == k:
                break
        return out


class _FnSpace(Space):
    """The three callables the batch API takes, seen as a space (evolution needs no encoding)."""

    def __init__(self, sample, mutate, key):
        self._sample, self._mutate, self._key = sample, mutate, key

    def cardinalities(self):
        raise NotImplementedError("a callable-defined space has no decisions")

    def encode(self, cand):
        raise NotImplementedError("a callable-defined space has no encoding")

    def decode(self, code):
        raise NotImplementedError("a callable-defined space has no encoding")

    def key(self, cand) -> str:
        return self._key(cand)

    def sample_uniform(self, rng):
        return self._sample(rng)

    def mutate(self, cand, rng):
        return self._mutate(cand, rng)


def regularized_evolution(
    sample: Callable[[np.random.Generator], C],
    mutate: Callable[[C, np.random.Generator], C],
    evaluate: Callable[[C], float] | None = None,
    *,
    evaluate_batch: Callable[[Sequence[C]], Sequence[float]] | None = None,
    key: Callable[[C], Hashable] = repr,
    population_size: int = 128,
    sample_size: int = 64,
    n_children: int = 8,
    generations: int = 240,
    keep_children: int | None = None,
    decaying_mutations: bool = True,
    max_retries: int = 20,
    seed: int | np.random.Generator = 0,
    progress: bool = True,
    desc: str = "evolution",
) -> EvolutionResult[C]:
    """Minimise the fitness. Pass ``evaluate`` (one candidate) or ``evaluate_batch`` (a list, e.g. a predictor).

    A batch driver over :class:`searchers.RegularizedEvolution` (the ask/tell searcher every space can use), kept for
    callers that score whole generations at once; it consumes the RNG exactly as the searcher does."""
    if (evaluate is None) == (evaluate_batch is None):
        raise ValueError("pass exactly one of evaluate or evaluate_batch")
    if generations < 0:
        raise ValueError(f"generations must be >= 0, got {generations}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ea = RegularizedEvolution(_FnSpace(sample, mutate, key), population_size=population_size, sample_size=sample_size,
                              n_children=n_children, keep_children=keep_children,
                              generations=generations if decaying_mutations else None, max_retries=max_retries, rng=rng)
    cache: dict[Hashable, float] = {}
    res: EvolutionResult[C] = EvolutionResult()

    def run_batch() -> list[tuple[C, float]]:
        props = ea.ask()
        todo, seen = [], set()
        for p in props:
            if p.key not in cache and p.key not in seen:
                seen.add(p.key)
                todo.append(p.cand)
        if todo:
            vals = evaluate_batch(todo) if evaluate_batch is not None else [evaluate(c) for c in todo]
            for c, v in zip(todo, vals):
                cache[key(c)] = float(v)
        out = [(p.cand, cache[p.key]) for p in props]
        for p, (_, f) in zip(props, out):
            ea.tell(p, -f)
        res.history.extend(out)
        return out

    run_batch()
    res.entrants.extend((q.cand, -r) for q, r in ea.entrants)
    res.best_so_far.append(min(f for _, f in res.entrants))
    bar = tqdm(range(generations), desc=desc, disable=not progress, leave=False, unit="gen")
    for _ in bar:
        n_before = len(ea.entrants)
        run_batch()
        kept = [(q.cand, -r) for q, r in ea.entrants[n_before:]]
        res.entrants.extend(kept)
        res.best_so_far.append(min(res.best_so_far[-1], kept[0][1]))
        bar.set_postfix(best=f"{res.best_so_far[-1]:.4f}")
    res.population = [(q.cand, -r) for q, r in ea.population]
    return res


def random_search(sample: Callable[[np.random.Generator], Any], evaluate: Callable[[Any], float], n: int,
                  seed: int = 0, key: Callable[[Any], Hashable] = repr, progress: bool = True, desc: str = "random search") -> EvolutionResult:
    """The baseline at the same budget: ``n`` distinct random candidates."""
    rng = np.random.default_rng(seed)
    res, seen = EvolutionResult(), set()
    for _ in tqdm(range(n), desc=desc, disable=not progress, leave=False):
        for _attempt in range(50):
            c = sample(rng)
            if key(c) not in seen:
                break
        seen.add(key(c))
        res.history.append((c, float(evaluate(c))))
        res.best_so_far.append(min(f for _, f in res.history))
    res.population = res.entrants = list(res.history)
    return res
