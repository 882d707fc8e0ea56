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


def nasrec_mutation_count(generation: int, generations: int) -> int:
    """NASRec's decaying number of mutations per child."""
    return (generations - generation) // max(20, generations // 5) + 1


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
    """Minimise the fitness. Pass ``evaluate`` (one candidate) or ``evaluate_batch`` (a list, e.g. a predictor)."""
    if (evaluate is None) == (evaluate_batch is None):
        raise ValueError("pass exactly one of evaluate or evaluate_batch")
    if population_size < 1 or n_children < 1 or generations < 0:
        raise ValueError(f"population_size and n_children must be >= 1 and generations >= 0, got {population_size}, {n_children}, {generations}")
    if not 1 <= sample_size <= population_size:
        raise ValueError(f"sample_size must lie in 1..population_size={population_size}, got {sample_size}")
    keep = n_children if keep_children is None else keep_children
    if not 1 <= keep <= n_children:
        raise ValueError(f"keep_children must lie in 1..n_children={n_children}, got {keep_children}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    cache: dict[Hashable, float] = {}
    res: EvolutionResult[C] = EvolutionResult()

    def score(cands: list[C]) -> list[float]:
        todo = [c for c in cands if key(c) not in cache]
        if todo:
            vals = evaluate_batch(todo) if evaluate_batch is not None else [evaluate(c) for c in todo]
            for c, v in zip(todo, vals):
                cache[key(c)] = float(v)
        out = [cache[key(c)] for c in cands]
        res.history.extend(zip(cands, out))
        return out

    init, seen_init = [], set()
    for _ in range(population_size * (max_retries + 1)):
        if len(init) == population_size:
            break
        c = sample(rng)
        if key(c) not in seen_init:
            seen_init.add(key(c))
            init.append(c)
    pop = deque(zip(init, score(init)))
    res.entrants.extend(pop)
    res.best_so_far.append(min(f for _, f in pop))
    bar = tqdm(range(generations), desc=desc, disable=not progress, leave=False, unit="gen")
    for g in bar:
        idx = rng.choice(len(pop), size=min(sample_size, len(pop)), replace=False)
        parent = min((pop[i] for i in idx), key=lambda cf: cf[1])[0]
        m = nasrec_mutation_count(g, generations) if decaying_mutations else 1
        children, child_keys = [], set()
        for _ in range(n_children):
            for _attempt in range(max_retries + 1):
                child = parent
                for _ in range(m):
                    child = mutate(child, rng)
                k = key(child)
                if k not in cache and k not in child_keys:
                    break
            child_keys.add(key(child))
            children.append(child)
        scored = sorted(zip(children, score(children)), key=lambda cf: cf[1])[:keep]
        for cf in scored:
            pop.append(cf)
            pop.popleft()  # aging: the oldest dies
        res.entrants.extend(scored)
        res.best_so_far.append(min(res.best_so_far[-1], scored[0][1]))
        bar.set_postfix(best=f"{res.best_so_far[-1]:.4f}")
    res.population = list(pop)
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
