"""The search-space protocol every searcher speaks.

A space is a vector of categorical *decisions* (``cardinalities()[d]`` choices for decision ``d``); a candidate is
whatever the space's models are built from (a NASRec ``Arch``, a dict of settings, a row of a benchmark table), and
``encode``/``decode`` map between the two. Searchers never look inside a candidate: random search calls
``sample``, evolution ``mutate``, REINFORCE and TPE pick decision values and call ``decode``, predictors read
``encode``. A ``policy`` (anything with ``sample(rng) -> (code, logp)``) makes ``sample`` return the
log-probability a policy-gradient method needs.

Implementations: :class:`DecisionSpace` (named choices, the generic case), :class:`NASRecDecisions` (NASRec's
blocks, read as decisions), :class:`TableSpace` (a benchmark's finite list of architectures, e.g. NAS-Bench-Graph).
"""
from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .space import BINARY_DENSE_OPS, Arch, BlockChoice, SearchSpace


def as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Space(ABC):
    """What a searcher may ask of a space. Subclasses implement ``cardinalities``, ``decode`` and ``encode``."""

    name: str = "space"

    @abstractmethod
    def cardinalities(self) -> np.ndarray:
        """Number of choices of each decision (int array, one entry per decision)."""

    @abstractmethod
    def decode(self, code: Sequence[int]) -> Any:
        """The candidate a decision vector stands for; a code outside the space raises ValueError."""

    @abstractmethod
    def encode(self, cand: Any) -> np.ndarray:
        """The decision vector of a candidate (the inverse of ``decode`` on canonical candidates)."""

    # ---------------------------------------------------------------- defaults that suit most spaces
    @property
    def n_decisions(self) -> int:
        return len(self.cardinalities())

    def size(self) -> int:
        """Number of decision vectors (an upper bound on distinct candidates where decode canonicalises)."""
        return math.prod(int(c) for c in self.cardinalities())

    def key(self, cand: Any) -> str:
        """A stable hash: equal candidates, equal keys (the trial store and dedup use it)."""
        return hashlib.sha1(np.asarray(self.encode(cand), dtype=np.int64).tobytes()).hexdigest()[:16]

    def valid(self, cand: Any) -> bool:
        """Structural validity beyond decoding (a table space: is it in the table). Constraints come separately."""
        return True

    def sample_uniform(self, rng) -> Any:
        rng = as_rng(rng)
        return self.decode([int(rng.integers(c)) for c in self.cardinalities()])

    def sample_code(self, rng, policy) -> tuple[np.ndarray, Any, float]:
        """A policy's draw: the decision vector it chose, the candidate it decodes to, and its log-probability
        (policy-gradient methods learn on the vector, which ``encode`` of a canonicalised candidate may not give)."""
        code, logp = policy.sample(as_rng(rng))
        return code, self.decode(code), float(logp)

    def sample(self, rng, policy=None) -> tuple[Any, float]:
        """A candidate and its log-probability under ``policy`` (uniform over decision vectors without one)."""
        rng = as_rng(rng)
        if policy is None:
            cand = self.sample_uniform(rng)
            return cand, -float(np.log(self.cardinalities()).sum())
        _, cand, logp = self.sample_code(rng, policy)
        return cand, logp

    def mutate(self, cand: Any, rng) -> Any:
        """Change one decision to a different value (decisions with one choice are skipped)."""
        rng = as_rng(rng)
        code, card = np.array(self.encode(cand)), self.cardinalities()
        free = np.flatnonzero(card > 1)
        if len(free) == 0:
            return cand
        d = int(rng.choice(free))
        code[d] = (code[d] + 1 + int(rng.integers(card[d] - 1))) % card[d]
        return self.decode(code)

    def to_json(self, cand: Any) -> Any:
        """A JSON-able form of a candidate, for the trial store; default: its decision vector."""
        return [int(v) for v in self.encode(cand)]

    def from_json(self, obj: Any) -> Any:
        return self.decode(obj)

    def describe(self, cand: Any) -> str:
        return json.dumps(self.to_json(cand))


# --------------------------------------------------------------------------------------------------- generic
@dataclass(frozen=True)
class Decision:
    name: str
    choices: tuple

    def __post_init__(self):
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ValueError(f"decision {self.name!r} has no choices")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"decision {self.name!r} has repeated choices: {self.choices}")


class DecisionSpace(Space):
    """Named categorical decisions; a candidate is a ``dict`` name -> chosen value. ``check(cand)`` may return a
    reason string to refuse a combination (``None`` = fine): ``decode`` raises with that reason."""

    def __init__(self, decisions: dict[str, Sequence] | Sequence[Decision], name: str = "decisions",
                 check: Callable[[dict], str | None] | None = None):
        if isinstance(decisions, dict):
            decisions = [Decision(k, tuple(v)) for k, v in decisions.items()]
        self.decisions = list(decisions)
        names = [d.name for d in self.decisions]
        if len(set(names)) != len(names):
            raise ValueError(f"decision names repeat: {names}")
        self.name, self._check = name, check
        self._card = np.array([len(d.choices) for d in self.decisions], dtype=np.int64)
        self._index = [{repr(c): i for i, c in enumerate(d.choices)} for d in self.decisions]

    def cardinalities(self) -> np.ndarray:
        return self._card.copy()

    def reason(self, cand: dict) -> str | None:
        return self._check(cand) if self._check is not None else None

    def valid(self, cand: dict) -> bool:
        return self.reason(cand) is None

    def decode(self, code: Sequence[int]) -> dict:
        code = [int(v) for v in code]
        if len(code) != len(self.decisions):
            raise ValueError(f"{self.name}: a code has {len(self.decisions)} entries, got {len(code)}")
        for d, v in zip(self.decisions, code):
            if not 0 <= v < len(d.choices):
                raise ValueError(f"{self.name}: decision {d.name!r} has {len(d.choices)} choices, got index {v}")
        return {d.name: d.choices[v] for d, v in zip(self.decisions, code)}

    def encode(self, cand: dict) -> np.ndarray:
        unknown = set(cand) - {d.name for d in self.decisions}
        if unknown:
            raise ValueError(f"{self.name}: unknown decisions {sorted(unknown)}; known: {[d.name for d in self.decisions]}")
        out = []
        for d, idx in zip(self.decisions, self._index):
            if d.name not in cand:
                raise ValueError(f"{self.name}: candidate lacks decision {d.name!r}")
            r = repr(cand[d.name])
            if r not in idx:
                raise ValueError(f"{self.name}: {d.name}={cand[d.name]!r} is not one of {d.choices}")
            out.append(idx[r])
        return np.array(out, dtype=np.int64)

    def to_json(self, cand: dict) -> dict:
        return dict(cand)

    def from_json(self, obj: dict) -> dict:
        cand = dict(obj)
        self.encode(cand)  # validates
        return cand

    def sample_uniform(self, rng) -> dict:
        """Uniform over valid combinations (rejection; a space whose check refuses almost everything says so)."""
        rng = as_rng(rng)
        for _ in range(1000):
            cand = self.decode([int(rng.integers(c)) for c in self._card])
            if self.valid(cand):
                return cand
        raise RuntimeError(f"{self.name}: 1000 uniform draws were all refused by the space's check")


# --------------------------------------------------------------------------------------------------- NASRec
class NASRecDecisions(Space):
    """NASRec's space read as decisions, per block ``i``: dense op, sparse op, dense width, sparse width, the two
    mergers, left and right source (binary ops), and one keep-bit per source ``0..i`` for the dense and the sparse
    inputs. Decoding canonicalises: a binary op ignores the dense bits, a unary op ignores left/right; an empty
    source set reads the newest source ``i`` alone; more sources than the cap keep the newest (our choice; NASRec
    samples connections directly and never meets either case). ``encode`` of a canonical architecture sets the
    unread fields to 0, so distinct decision vectors can decode to one architecture (``key`` hashes the
    architecture, so the trial store and dedup see it once)."""

    def __init__(self, space: SearchSpace):
        self.space, self.name = space, space.name
        s, card, self._layout = space, [], []
        for i in range(s.num_blocks):
            start = len(card)
            card += [len(s.dense_ops), len(s.sparse_ops), len(s.dense_dims), len(s.sparse_dims), 2, 2, i + 1, i + 1]
            card += [2] * (i + 1) + [2] * (i + 1)
            self._layout.append(start)
        self._card = np.array(card, dtype=np.int64)

    def cardinalities(self) -> np.ndarray:
        return self._card.copy()

    def _sources(self, bits, i) -> tuple[int, ...]:
        src = [j for j, b in enumerate(bits) if b]
        if not src:
            src = [i]
        cap = self.space.max_sources
        if cap is not None and len(src) > cap:
            src = src[-cap:]
        return tuple(src)

    def decode(self, code: Sequence[int]) -> Arch:
        code = np.asarray(code, dtype=np.int64)
        if code.shape != self._card.shape or (code < 0).any() or (code >= self._card).any():
            raise ValueError(f"{self.name}: a code must have {len(self._card)} entries within the cardinalities")
        s, blocks = self.space, []
        for i, o in enumerate(self._layout):
            dop, sop, dd, sd, ds, fm, left, right = (int(v) for v in code[o:o + 8])
            dbits, sbits = code[o + 8:o + 9 + i], code[o + 9 + i:o + 10 + 2 * i]
            op = s.dense_ops[dop]
            binary = op in BINARY_DENSE_OPS
            blocks.append(BlockChoice(
                dense_op=op, sparse_op=s.sparse_ops[sop], dense_dim=s.dense_dims[dd], sparse_dim=s.sparse_dims[sd],
                dense_in=() if binary else self._sources(dbits, i), sparse_in=(0,) if i == 0 else self._sources(sbits, i),
                left=left if binary else -1, right=right if binary else -1,
                dense_to_sparse=bool(ds), sparse_to_dense=bool(fm)))
        return s.validate(Arch(tuple(blocks)))

    def encode(self, arch: Arch) -> np.ndarray:
        s, out = self.space, np.zeros(len(self._card), dtype=np.int64)
        s.validate(arch)
        for i, (o, b) in enumerate(zip(self._layout, arch.blocks)):
            binary = b.dense_op in BINARY_DENSE_OPS
            out[o:o + 8] = (s.dense_ops.index(b.dense_op), s.sparse_ops.index(b.sparse_op), s.dense_dims.index(b.dense_dim),
                            s.sparse_dims.index(b.sparse_dim), int(b.dense_to_sparse), int(b.sparse_to_dense),
                            b.left if binary else 0, b.right if binary else 0)
            for j in b.dense_in:
                out[o + 8 + j] = 1
            if i > 0:
                for j in b.sparse_in:
                    out[o + 9 + i + j] = 1
        return out

    def key(self, arch: Arch) -> str:
        return arch.key()

    def sample_uniform(self, rng) -> Arch:
        return self.space.sample(as_rng(rng))

    def mutate(self, arch: Arch, rng) -> Arch:
        return self.space.mutate(arch, as_rng(rng))

    def to_json(self, arch: Arch) -> dict:
        return arch.to_dict()

    def from_json(self, obj: dict) -> Arch:
        return self.space.validate(Arch.from_dict(obj))

    def describe(self, arch: Arch) -> str:
        return arch.describe()


# --------------------------------------------------------------------------------------------------- tables
class TableSpace(Space):
    """A finite set of candidates given as decision vectors (a benchmark's architectures). ``decode`` of a vector
    outside the table raises; sampling and mutation stay inside it (a mutation moves to a table neighbour that
    differs in one decision; if none exists, to a random member)."""

    def __init__(self, codes: np.ndarray, cardinalities: Sequence[int] | None = None, name: str = "table",
                 labels: Sequence[str] | None = None):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or len(codes) == 0:
            raise ValueError(f"{name}: codes must be a non-empty 2-D array, got shape {codes.shape}")
        self.codes, self.name = codes, name
        self._card = np.asarray(cardinalities if cardinalities is not None else codes.max(0) + 1, dtype=np.int64)
        self.labels = list(labels) if labels is not None else None
        self._row = {c.tobytes(): i for i, c in enumerate(codes)}
        if len(self._row) != len(codes):
            raise ValueError(f"{name}: {len(codes) - len(self._row)} repeated codes")

    def cardinalities(self) -> np.ndarray:
        return self._card.copy()

    def size(self) -> int:
        return len(self.codes)

    def row(self, cand: int) -> int:
        return int(cand)

    def decode(self, code: Sequence[int]) -> int:
        r = self._row.get(np.asarray(code, dtype=np.int64).tobytes())
        if r is None:
            raise ValueError(f"{self.name}: code {list(map(int, code))} is not in the table")
        return r

    def encode(self, cand: int) -> np.ndarray:
        return self.codes[int(cand)]

    def valid(self, cand: int) -> bool:
        return 0 <= int(cand) < len(self.codes)

    def key(self, cand: int) -> str:
        return str(int(cand))

    def sample_uniform(self, rng) -> int:
        return int(as_rng(rng).integers(len(self.codes)))

    def sample(self, rng, policy=None) -> tuple[int, float]:
        rng = as_rng(rng)
        if policy is None:
            return self.sample_uniform(rng), -math.log(len(self.codes))
        _, cand, logp = self.sample_code(rng, policy)
        return cand, logp

    def sample_code(self, rng, policy) -> tuple[np.ndarray, int, float]:
        """A factorised policy over the decisions, redrawn until it lands in the table (the log-probability is the
        unconstrained policy's; learning on it ignores the renormalisation over the table, the usual approximation
        of REINFORCE under rejection)."""
        rng = as_rng(rng)
        for _ in range(1000):
            code, logp = policy.sample(rng)
            r = self._row.get(np.asarray(code, dtype=np.int64).tobytes())
            if r is not None:
                return code, r, float(logp)
        raise RuntimeError(f"{self.name}: 1000 policy draws all fell outside the table")

    def mutate(self, cand: int, rng) -> int:
        rng = as_rng(rng)
        diff = (self.codes != self.codes[int(cand)]).sum(1)
        near = np.flatnonzero(diff == 1)
        return int(rng.choice(near)) if len(near) else self.sample_uniform(rng)

    def to_json(self, cand: int) -> int:
        return int(cand)

    def from_json(self, obj) -> int:
        if not self.valid(obj):
            raise ValueError(f"{self.name}: row {obj} is outside the table of {len(self.codes)}")
        return int(obj)

    def describe(self, cand: int) -> str:
        return self.labels[int(cand)] if self.labels else str(int(cand))
