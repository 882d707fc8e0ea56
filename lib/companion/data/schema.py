"""Feature schema and the in-memory tensor dataset every CTR model in the companion consumes.

A batch is a dict of tensors: ``dense`` float [B, D], ``sparse`` long [B, S], ``seq`` long [B, Q, L]
(id 0 is padding), ``label`` float [B] and optionally ``group`` long [B] (the user, for gAUC).
Keeping everything as a few dense tensors makes batching a slice, which is most of why training is fast on CPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal

import torch

Kind = Literal["dense", "sparse", "sequence"]


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    vocab_size: int = 0  # sparse/sequence ids lie in [0, vocab_size); for sequences 0 is padding
    max_len: int = 0  # sequences only
    share_with: str | None = None  # a sequence may reuse a sparse field's embedding table (e.g. item id)
    pretrained: str | None = None  # a frozen table in ``CTRSplits.pretrained`` ([vocab_size, dim]) instead of a learned one

    def __post_init__(self):
        if self.kind not in ("dense", "sparse", "sequence"):
            raise ValueError(f"field {self.name!r}: kind must be dense, sparse or sequence, got {self.kind!r}")
        if self.kind != "dense" and self.vocab_size < 1:
            raise ValueError(f"field {self.name!r}: a {self.kind} field needs vocab_size >= 1")
        if self.kind == "sequence" and self.max_len < 1:
            raise ValueError(f"field {self.name!r}: a sequence field needs max_len >= 1")


@dataclass
class Schema:
    fields: list[Field]

    def __post_init__(self):
        names = [f.name for f in self.fields]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate field names in schema: {sorted(dup)}")

    def of(self, kind: Kind) -> list[Field]:
        return [f for f in self.fields if f.kind == kind]

    @property
    def dense(self) -> list[Field]:
        return self.of("dense")

    @property
    def sparse(self) -> list[Field]:
        return self.of("sparse")

    @property
    def sequence(self) -> list[Field]:
        return self.of("sequence")

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"no field named {name!r}; fields are {[f.name for f in self.fields]}")

    def describe(self) -> str:
        rows = [f"{f.name:<24}{f.kind:<10}{f.vocab_size or '':>10}{f.max_len or '':>6}" for f in self.fields]
        return "\n".join([f"{'field':<24}{'kind':<10}{'vocab':>10}{'len':>6}", *rows])


@dataclass
class CTRDataset:
    """Column tensors of one split; indexing by a LongTensor returns a batch dict."""

    dense: torch.Tensor
    sparse: torch.Tensor
    label: torch.Tensor
    seq: torch.Tensor | None = None
    group: torch.Tensor | None = None

    def __post_init__(self):
        n = self.label.shape[0]
        for name in ("dense", "sparse", "seq", "group"):
            t = getattr(self, name)
            if t is not None and t.shape[0] != n:
                raise ValueError(f"column {name!r} has {t.shape[0]} rows but label has {n}")
        self.label = self.label.float()

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def batch(self, idx: torch.Tensor | slice) -> dict:
        out = {"dense": self.dense[idx], "sparse": self.sparse[idx], "label": self.label[idx]}
        if self.seq is not None:
            out["seq"] = self.seq[idx]
        if self.group is not None:
            out["group"] = self.group[idx]
        return out

    def subset(self, idx: torch.Tensor) -> "CTRDataset":
        b = self.batch(idx)
        return CTRDataset(b["dense"], b["sparse"], b["label"], b.get("seq"), b.get("group"))

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None) -> Iterator[dict]:
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else None
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size] if order is not None else slice(start, start + batch_size)
            yield self.batch(idx)

    @property
    def ctr(self) -> float:
        return float(self.label.mean())


@dataclass
class CTRSplits:
    schema: Schema
    train: CTRDataset
    valid: CTRDataset
    test: CTRDataset
    info: dict = field(default_factory=dict)  # provenance: source, preprocessing, ground truth, ...
    pretrained: dict = field(default_factory=dict)  # name -> frozen embedding table (float [vocab, dim]), e.g. KuaiVideo's visual vectors

    @property
    def base_ctr(self) -> float:
        """Training-set CTR: the reference for Normalized Entropy."""
        return self.train.ctr

    def summary(self) -> dict:
        return {
            "train": len(self.train), "valid": len(self.valid), "test": len(self.test),
            "train_ctr": round(self.base_ctr, 4), "fields": len(self.schema.fields),
            **{k: v for k, v in self.info.items() if isinstance(v, (str, int, float))},
        }


def split_indices(n: int, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random train/valid/test index split with a fixed seed."""
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    a = int(round(n * fractions[0]))
    b = a + int(round(n * fractions[1]))
    return perm[:a], perm[a:b], perm[b:]
