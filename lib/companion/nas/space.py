"""The NASRec search space and its architecture encoding.

A network is a stack of ``num_blocks`` choice blocks. Every block emits a dense tensor [B, d] and a sparse
tensor [B, t, E] (t "tokens" of the embedding width E). Block ``i`` reads from the *sources* ``0..i``:
source 0 is the stem (raw dense features and the sparse embeddings), source ``j + 1`` is block ``j``'s
output. Per block one dense operator and one sparse operator are active (NASRec's single-operator setting),
each at a searched width, plus two optional mergers (dense->sparse: FC + reshape + concat onto the tokens;
sparse->dense: FM, projected and added). The head reads the last block only.

An :class:`Arch` is a tuple of :class:`BlockChoice` records kept in *canonical* form: fields an operator
does not read are empty (``dense_in`` is empty for the binary ops Sum/Gating, ``left``/``right`` are -1
for the unary ones), so two architectures that compute the same function compare, hash and encode equal.

The fixed-length integer encoding (:meth:`SearchSpace.encode`) is what FGPS, the predictor and the
Hamming distance work on. It follows NASRec's ``Tokenizer`` (the encoding the FGPS paper uses): per block four
source masks of ``num_blocks`` bits (dense, sparse, left, right), then per block one bit per operator, the two
width indices and a one-hot pair per merger: 7 x (28 + 6 + 2 + 4) = 280 positions for NASRec-Full.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np

DENSE_OPS = ("fc", "gating", "sum", "dot")  # dot = Dot-Product (dense + sparse inputs -> dense)
SPARSE_OPS = ("efc", "attn")  # efc = FC over the token axis, attn = Transformer encoder layer
BINARY_DENSE_OPS = ("gating", "sum")  # read one left and one right dense source instead of dense_in
MUTATIONS = ("dense_dim", "sparse_dim", "dense_op", "sparse_op", "connections", "merger")


@dataclass(frozen=True)
class BlockChoice:
    """What one block computes. Sources are indices into (stem, block 0, ..., block i-1)."""

    dense_op: str
    sparse_op: str
    dense_dim: int
    sparse_dim: int  # output token count of the sparse operator
    dense_in: tuple[int, ...] = ()  # sources whose dense outputs are concatenated (fc, dot)
    sparse_in: tuple[int, ...] = ()  # sources whose tokens are concatenated (sparse op, dot)
    left: int = -1  # binary dense ops only
    right: int = -1
    dense_to_sparse: bool = False  # FC(dense out) -> ds_tokens extra tokens
    sparse_to_dense: bool = False  # FM(sparse out) -> projected and added to the dense out

    @property
    def dense_sources(self) -> tuple[int, ...]:
        """Every source whose dense output this block reads."""
        if self.dense_op in BINARY_DENSE_OPS:
            return tuple(sorted({self.left, self.right}))
        return self.dense_in

    @property
    def sources(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.dense_sources) | set(self.sparse_in)))


@dataclass(frozen=True)
class Arch:
    """One architecture (a path through the supernet): a tuple of block choices."""

    blocks: tuple[BlockChoice, ...]

    def __len__(self) -> int:
        return len(self.blocks)

    def to_dict(self) -> dict:
        return {"blocks": [asdict(b) for b in self.blocks]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Arch":
        try:
            blocks = []
            for b in d["blocks"]:
                b = dict(b)
                b["dense_in"], b["sparse_in"] = tuple(b.get("dense_in", ())), tuple(b.get("sparse_in", ()))
                blocks.append(BlockChoice(**b))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not an architecture record ({e}): expected {{'blocks': [{{dense_op, sparse_op, ...}}, ...]}}") from e
        return cls(tuple(blocks))

    @classmethod
    def from_json(cls, s: str) -> "Arch":
        return cls.from_dict(json.loads(s))

    def key(self) -> str:
        """Stable short hash (same across processes, unlike ``hash()`` of strings)."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:16]

    def function_key(self) -> str:
        """Hash of the blocks the head reads only: two archs that differ in unused blocks compute the same function."""
        live = [(i, asdict(self.blocks[i])) for i in self.active_blocks()]
        return hashlib.sha1(json.dumps(live, sort_keys=True).encode()).hexdigest()[:16]

    def active_blocks(self) -> list[int]:
        """Blocks the head depends on (the last block and everything it reads, transitively)."""
        need, stack = set(), [len(self.blocks) - 1]
        while stack:
            i = stack.pop()
            if i in need:
                continue
            need.add(i)
            stack.extend(s - 1 for s in self.blocks[i].sources if s > 0)
        return sorted(need)

    def describe(self) -> str:
        """One line per block, e.g. ``b2: dot(32) + efc(8) <- d[0,2] s[1] +ds``."""
        rows = []
        for i, b in enumerate(self.blocks):
            dsrc = f"L{b.left},R{b.right}" if b.dense_op in BINARY_DENSE_OPS else "d" + str(list(b.dense_in))
            extra = (" +ds" if b.dense_to_sparse else "") + (" +fm" if b.sparse_to_dense else "")
            live = "" if i in self.active_blocks() else "  (unused)"
            rows.append(f"b{i}: {b.dense_op}({b.dense_dim}) + {b.sparse_op}({b.sparse_dim}) <- {dsrc} s{list(b.sparse_in)}{extra}{live}")
        return "\n".join(rows)


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


@dataclass(frozen=True)
class SearchSpace:
    """A NASRec-style space. ``max_sources`` caps the sources per input (the released code uses 4; None = any)."""

    name: str = "nasrec-full"
    num_blocks: int = 7
    dense_ops: tuple[str, ...] = DENSE_OPS
    sparse_ops: tuple[str, ...] = SPARSE_OPS
    dense_dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 768, 1024)
    sparse_dims: tuple[int, ...] = (16, 32, 48, 64)
    emb_dim: int = 16
    max_sources: int | None = 4
    ds_tokens: int = 8  # tokens the dense->sparse merger adds (NASRec: 8)
    attn_heads: int = 8  # NASRec: nn.MultiheadAttention(16, 8 heads), 2 units per head

    def __post_init__(self):
        from . import registry  # the operators a space may name are the registry's of the block kinds
        dense_ok = registry.names("dense_unary", "dense_binary", "dense_sparse")
        sparse_ok = registry.names("sparse")
        bad = [o for o in self.dense_ops if o not in dense_ok] + [o for o in self.sparse_ops if o not in sparse_ok]
        if bad:
            raise ValueError(f"unknown operators {bad}; dense ops are {dense_ok}, sparse ops are {sparse_ok}")
        binary = set(registry.names("dense_binary"))
        if binary - set(BINARY_DENSE_OPS):
            raise ValueError(f"binary dense operators {sorted(binary - set(BINARY_DENSE_OPS))} are registered but the "
                             f"canonical form knows only {BINARY_DENSE_OPS}; add them to BINARY_DENSE_OPS")
        if not self.dense_ops or not self.sparse_ops:
            raise ValueError("a space needs at least one dense and one sparse operator")
        if self.num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {self.num_blocks}")
        if not self.dense_dims or min(self.dense_dims) < 1 or not self.sparse_dims or min(self.sparse_dims) < 1:
            raise ValueError(f"dense_dims and sparse_dims must be non-empty positive sizes, got {self.dense_dims}, {self.sparse_dims}")
        if self.max_sources is not None and self.max_sources < 1:
            raise ValueError(f"max_sources must be >= 1 or None, got {self.max_sources}")
        if self.emb_dim % self.attn_heads:
            raise ValueError(f"emb_dim={self.emb_dim} must be divisible by attn_heads={self.attn_heads}")
        object.__setattr__(self, "dense_ops", tuple(self.dense_ops))
        object.__setattr__(self, "sparse_ops", tuple(self.sparse_ops))
        object.__setattr__(self, "dense_dims", tuple(sorted(self.dense_dims)))
        object.__setattr__(self, "sparse_dims", tuple(sorted(self.sparse_dims)))

    # ----------------------------------------------------------------- sizes
    @property
    def max_dense(self) -> int:
        return max(self.dense_dims)

    @property
    def max_tokens(self) -> int:
        return max(self.sparse_dims)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchSpace":
        return cls(**d)

    # ----------------------------------------------------------- sampling
    def _cap(self, n_avail: int) -> int:
        return n_avail if self.max_sources is None else min(n_avail, self.max_sources)

    def _sample_sources(self, rng, i: int, connections: str) -> tuple[int, ...]:
        n = i + 1  # sources 0..i
        cap = self._cap(n)
        if connections == "uniform":
            k = int(rng.integers(1, cap + 1))
        elif connections == "binomial":  # NASRec supernet training: 1 + Binomial(cap - 1, 0.5)
            k = 1 + int(rng.binomial(cap - 1, 0.5))
        else:
            raise ValueError(f"connections must be 'uniform' or 'binomial', got {connections!r}")
        return tuple(sorted(int(s) for s in rng.choice(n, size=k, replace=False)))

    def _fill_connections(self, rng, i: int, b: BlockChoice, connections: str) -> BlockChoice:
        """(Re)sample the connection fields the block's dense operator needs, plus sparse_in."""
        if b.dense_op in BINARY_DENSE_OPS:
            return replace(b, dense_in=(), left=int(rng.integers(0, i + 1)), right=int(rng.integers(0, i + 1)),
                           sparse_in=self._sample_sources(rng, i, connections))
        return replace(b, dense_in=self._sample_sources(rng, i, connections), left=-1, right=-1,
                       sparse_in=self._sample_sources(rng, i, connections))

    def sample_block(self, rng, i: int, connections: str = "uniform") -> BlockChoice:
        rng = _rng(rng)
        b = BlockChoice(
            dense_op=str(rng.choice(self.dense_ops)), sparse_op=str(rng.choice(self.sparse_ops)),
            dense_dim=int(rng.choice(self.dense_dims)), sparse_dim=int(rng.choice(self.sparse_dims)),
            dense_to_sparse=bool(rng.integers(2)), sparse_to_dense=bool(rng.integers(2)),
        )
        return self._fill_connections(rng, i, b, connections)

    def sample(self, rng=None, connections: str = "uniform") -> Arch:
        """A uniformly random single-operator any-connection path (``connections='binomial'`` for supernet training)."""
        rng = _rng(rng)
        return Arch(tuple(self.sample_block(rng, i, connections) for i in range(self.num_blocks)))

    def full_path(self) -> Arch:
        """Pseudo-architecture for supernet warm-up: every op (``'all'``), every source, widest dims, both mergers."""
        blocks = tuple(
            BlockChoice("all", "all", self.max_dense, self.max_tokens, dense_in=tuple(range(i + 1)),
                        sparse_in=tuple(range(i + 1)), left=i, right=0, dense_to_sparse=True, sparse_to_dense=True)
            for i in range(self.num_blocks)
        )
        return Arch(blocks)

    # ----------------------------------------------------------- mutation
    def mutate(self, arch: Arch, rng=None, n: int = 1) -> Arch:
        """Apply ``n`` mutations; each re-samples one field group of one random block (the six ToRS mutations)."""
        rng = _rng(rng)
        blocks = list(arch.blocks)
        for _ in range(n):
            i = int(rng.integers(len(blocks)))
            kinds = [k for k in MUTATIONS if not (
                (k == "dense_op" and len(self.dense_ops) < 2) or (k == "sparse_op" and len(self.sparse_ops) < 2)
                or (k == "dense_dim" and len(self.dense_dims) < 2) or (k == "sparse_dim" and len(self.sparse_dims) < 2)
                or (k == "connections" and i == 0))]  # block 0 can only read the stem
            kind = str(rng.choice(kinds))
            b = blocks[i]
            for _attempt in range(20):
                if kind == "dense_dim":
                    nb = replace(b, dense_dim=int(rng.choice(self.dense_dims)))
                elif kind == "sparse_dim":
                    nb = replace(b, sparse_dim=int(rng.choice(self.sparse_dims)))
                elif kind == "sparse_op":
                    nb = replace(b, sparse_op=str(rng.choice(self.sparse_ops)))
                elif kind == "dense_op":
                    op = str(rng.choice(self.dense_ops))
                    nb = replace(b, dense_op=op)
                    if (op in BINARY_DENSE_OPS) != (b.dense_op in BINARY_DENSE_OPS):
                        nb = self._fill_connections(rng, i, nb, "uniform")
                        nb = replace(nb, sparse_in=b.sparse_in)  # keep the sparse wiring
                elif kind == "connections":
                    nb = self._fill_connections(rng, i, b, "uniform")
                else:
                    nb = replace(b, dense_to_sparse=bool(rng.integers(2)), sparse_to_dense=bool(rng.integers(2)))
                if nb != b:
                    break
            blocks[i] = nb
        return Arch(tuple(blocks))

    # ----------------------------------------------------------- checking
    def validate(self, arch: Arch) -> Arch:
        """Raise a ValueError naming the block and field when ``arch`` is not a canonical member of this space."""
        if len(arch.blocks) != self.num_blocks:
            raise ValueError(f"architecture has {len(arch.blocks)} blocks, space {self.name!r} has {self.num_blocks}")
        for i, b in enumerate(arch.blocks):
            where = f"block {i}"
            if b.dense_op not in self.dense_ops:
                raise ValueError(f"{where}: dense_op {b.dense_op!r} not in {self.dense_ops}")
            if b.sparse_op not in self.sparse_ops:
                raise ValueError(f"{where}: sparse_op {b.sparse_op!r} not in {self.sparse_ops}")
            if b.dense_dim not in self.dense_dims:
                raise ValueError(f"{where}: dense_dim {b.dense_dim} not in {self.dense_dims}")
            if b.sparse_dim not in self.sparse_dims:
                raise ValueError(f"{where}: sparse_dim {b.sparse_dim} not in {self.sparse_dims}")
            srcs = [("sparse_in", b.sparse_in)]
            if b.dense_op in BINARY_DENSE_OPS:
                if b.dense_in:
                    raise ValueError(f"{where}: {b.dense_op} reads left/right, dense_in must be empty (got {b.dense_in})")
                for nm, s in (("left", b.left), ("right", b.right)):
                    if not 0 <= s <= i:
                        raise ValueError(f"{where}: {nm}={s} must be a source in 0..{i}")
            else:
                if b.left != -1 or b.right != -1:
                    raise ValueError(f"{where}: {b.dense_op} does not read left/right; they must be -1")
                srcs.append(("dense_in", b.dense_in))
            for nm, s in srcs:
                if not s:
                    raise ValueError(f"{where}: {nm} is empty")
                if list(s) != sorted(set(s)) or min(s) < 0 or max(s) > i:
                    raise ValueError(f"{where}: {nm}={s} must be sorted distinct sources in 0..{i}")
                if self.max_sources is not None and len(s) > self.max_sources:
                    raise ValueError(f"{where}: {nm} has {len(s)} sources, the cap is {self.max_sources}")
        return arch

    # ----------------------------------------------------------- encoding
    # NASRec's Tokenizer layout (nasrec/searcher/tokenizer.py): first the macro part, per block four n-bit source
    # masks (dense, sparse, left, right; n = num_blocks), then the micro part, per block one bit per operator
    # (dense ops, then sparse ops), the dense- and sparse-width indices and a one-hot pair for each merger.
    # 7 blocks x (28 + 6 + 2 + 4) = 280 positions for NASRec-Full, as the FGPS paper states.
    @property
    def n_ops(self) -> int:
        return len(self.dense_ops) + len(self.sparse_ops)

    @property
    def macro_len(self) -> int:
        return 4 * self.num_blocks * self.num_blocks

    @property
    def micro_block_len(self) -> int:
        return self.n_ops + 2 + 4

    @property
    def block_encoding_len(self) -> int:
        """Positions per block: 4 source masks, the operator bits, two width indices, two one-hot merger pairs."""
        return 4 * self.num_blocks + self.micro_block_len

    @property
    def encoding_len(self) -> int:
        return self.num_blocks * self.block_encoding_len

    def encoding_fields(self) -> list[tuple[int, str, int]]:
        """(block, field, index) of every encoding position, in order: what each of the positions means."""
        n, out = self.num_blocks, []
        for i in range(n):
            for f in ("dense_in", "sparse_in", "left", "right"):
                out += [(i, f, s) for s in range(n)]
        for i in range(n):
            out += [(i, "op:" + o, 0) for o in self.dense_ops + self.sparse_ops]
            out += [(i, "dense_dim", 0), (i, "sparse_dim", 0)]
            out += [(i, "dense_to_sparse", v) for v in (0, 1)] + [(i, "sparse_to_dense", v) for v in (0, 1)]
        return out

    def cardinalities(self) -> np.ndarray:
        """Number of symbols each encoding position can take (for embedding tables)."""
        n, per = self.num_blocks, [2] * self.n_ops + [len(self.dense_dims), len(self.sparse_dims), 2, 2, 2, 2]
        return np.array([2] * self.macro_len + per * n, dtype=np.int64)

    def reachable_symbols(self) -> np.ndarray:
        """Symbols a position can actually take over the space (1 = constant): sources a block cannot read yet,
        block 0's sparse input (always the stem) and the bit of an operator kind with a single choice are fixed."""
        n, out = self.num_blocks, []
        for i in range(n):
            for f in ("dense_in", "sparse_in", "left", "right"):
                for s in range(n):
                    fixed = s > i or (f == "sparse_in" and i == 0)
                    out.append(1 if fixed else 2)
        for i in range(n):
            out += [2 if len(self.dense_ops) > 1 else 1] * len(self.dense_ops)
            out += [2 if len(self.sparse_ops) > 1 else 1] * len(self.sparse_ops)
            out += [len(self.dense_dims), len(self.sparse_dims), 2, 2, 2, 2]
        return np.array(out, dtype=np.int64)

    def encode(self, arch: Arch) -> np.ndarray:
        """NASRec's tokenizer vector (0/1 masks and bits, width indices). Canonical: an operator's unread inputs
        stay empty (a unary op has no left/right bits, a binary op no dense_in bits), so equal functions encode equal."""
        n = self.num_blocks
        out = np.zeros(self.encoding_len, dtype=np.int64)
        for i, b in enumerate(arch.blocks):
            o = 4 * n * i
            for s in b.dense_in:
                out[o + s] = 1
            for s in b.sparse_in:
                out[o + n + s] = 1
            if b.left >= 0:
                out[o + 2 * n + b.left] = 1
            if b.right >= 0:
                out[o + 3 * n + b.right] = 1
            m = self.macro_len + i * self.micro_block_len
            out[m + self.dense_ops.index(b.dense_op)] = 1
            out[m + len(self.dense_ops) + self.sparse_ops.index(b.sparse_op)] = 1
            m += self.n_ops
            out[m:m + 6] = (self.dense_dims.index(b.dense_dim), self.sparse_dims.index(b.sparse_dim),
                            int(not b.dense_to_sparse), int(b.dense_to_sparse),
                            int(not b.sparse_to_dense), int(b.sparse_to_dense))
        return out

    def decode(self, code: Sequence[int]) -> Arch:
        code = np.asarray(code, dtype=np.int64)
        if code.shape != (self.encoding_len,):
            raise ValueError(f"encoding must have length {self.encoding_len} for space {self.name!r}, got shape {code.shape}")
        n, nd, blocks = self.num_blocks, len(self.dense_ops), []
        for i in range(n):
            mac = code[4 * n * i: 4 * n * (i + 1)].reshape(4, n)
            mic = code[self.macro_len + i * self.micro_block_len: self.macro_len + (i + 1) * self.micro_block_len]
            dops, sops = np.flatnonzero(mic[:nd]), np.flatnonzero(mic[nd:self.n_ops])
            if len(dops) != 1 or len(sops) != 1:
                raise ValueError(f"block {i}: exactly one dense and one sparse operator bit must be set, got {mic[:self.n_ops]}")
            dd, sd, ds0, ds1, fm0, fm1 = (int(v) for v in mic[self.n_ops:])
            if ds0 + ds1 != 1 or fm0 + fm1 != 1:
                raise ValueError(f"block {i}: merger fields must be one-hot pairs, got {[ds0, ds1]} and {[fm0, fm1]}")
            lr = []
            for row in (2, 3):
                hot = np.flatnonzero(mac[row])
                if len(hot) > 1:
                    raise ValueError(f"block {i}: the {'left' if row == 2 else 'right'} mask has {len(hot)} bits set")
                lr.append(int(hot[0]) if len(hot) else -1)
            blocks.append(BlockChoice(
                dense_op=self.dense_ops[int(dops[0])], sparse_op=self.sparse_ops[int(sops[0])],
                dense_dim=self.dense_dims[dd], sparse_dim=self.sparse_dims[sd],
                dense_in=tuple(int(s) for s in np.flatnonzero(mac[0])), sparse_in=tuple(int(s) for s in np.flatnonzero(mac[1])),
                left=lr[0], right=lr[1], dense_to_sparse=bool(ds1), sparse_to_dense=bool(fm1)))
        return self.validate(Arch(tuple(blocks)))

    def encode_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.stack([self.encode(a) for a in archs]) if len(archs) else np.zeros((0, self.encoding_len), np.int64)

    def max_entropy(self) -> float:
        """Entropy (nats) of a set spread uniformly over every position's reachable symbols."""
        return float(np.log(self.reachable_symbols()).sum())

    def block_count(self, i: int) -> int:
        """Exact number of canonical choices for block ``i`` (connection cap included)."""
        n = i + 1
        subsets = sum(math.comb(n, k) for k in range(1, self._cap(n) + 1))
        per_op = sum(n * n if op in BINARY_DENSE_OPS else subsets for op in self.dense_ops)
        return per_op * subsets * len(self.sparse_ops) * len(self.dense_dims) * len(self.sparse_dims) * 4

    def size(self) -> int:
        """Exact number of canonical architectures (distinct encodings), blocks the head does not read included."""
        return math.prod(self.block_count(i) for i in range(self.num_blocks))

    def size_log10(self) -> float:
        """log10 of :meth:`size`."""
        return sum(math.log10(self.block_count(i)) for i in range(self.num_blocks))


def distance(space: SearchSpace, a: Arch, b: Arch) -> int:
    """Hamming distance between the two encodings (FGPS's path distance)."""
    return int((space.encode(a) != space.encode(b)).sum())


def nasrec_full(**overrides) -> SearchSpace:
    """NASRec-Full: dense FC, Gating, Sum, Dot-Product; sparse EFC, Attention."""
    return SearchSpace(**{"name": "nasrec-full", **overrides})


def nasrec_small(**overrides) -> SearchSpace:
    """NASRec-Small (AutoCTR's operators; the space of the PIM co-design): dense FC, Dot-Product; sparse EFC."""
    return SearchSpace(**{"name": "nasrec-small", "dense_ops": ("fc", "dot"), "sparse_ops": ("efc",), **overrides})


# Widths small enough for a 2-core CPU; the op sets are the paper's.
# Attention keeps NASRec's 2 units per head (emb_dim 8 / 4 heads).
TINY = dict(num_blocks=4, dense_dims=(8, 16, 32), sparse_dims=(4, 8), emb_dim=8, ds_tokens=2, attn_heads=4)


def make_space(name: str, scale: str = "paper", **overrides) -> SearchSpace:
    """``name`` in nasrec-small | nasrec-full; ``scale='tiny'`` shrinks blocks and widths (not the operators)."""
    makers = {"nasrec-small": nasrec_small, "nasrec-full": nasrec_full}
    if name not in makers:
        raise ValueError(f"unknown search space {name!r}; choose one of {sorted(makers)}")
    if scale not in ("paper", "tiny"):
        raise ValueError(f"space scale must be 'paper' or 'tiny', got {scale!r}")
    base = dict(TINY) if scale == "tiny" else {}
    return makers[name](**{**base, **overrides})
