"""Synthetic CTR data whose labels come from a known logit with planted feature interactions.

The ground truth (which fields interact, how strongly, and the Bayes-optimal metrics given the true
click probabilities) is returned with the data, so a notebook can show whether a model or a search found it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..metrics import evaluate_ctr
from .schema import CTRDataset, CTRSplits, Field, Schema, split_indices


@dataclass
class GroundTruth:
    pairs: list[tuple[str, str]]
    triples: list[tuple[str, str, str]]
    scales: dict  # standard deviation of each term of the logit: first-order, each pair, each triple
    bayes_test: dict = field(default_factory=dict)  # metrics of the true probabilities on the test split
    first_order_term_test: dict = field(default_factory=dict)  # the first-order term alone (not a ceiling: interactions leak into marginals)

    def to_dict(self) -> dict:
        return asdict(self)


def _zipf_ids(rng: np.random.Generator, n: int, vocab: int, a: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, vocab + 1) ** a
    return rng.choice(vocab, size=n, p=p / p.sum())


def _standardize(x: np.ndarray) -> np.ndarray:
    s = x.std()
    return (x - x.mean()) / (s if s > 0 else 1.0)


def _term(rng, cols: list[np.ndarray], kinds: list[str], vocab: int, rank: int) -> np.ndarray:
    """A low-rank multiplicative interaction among the given columns, standardized to unit variance."""
    prod = np.ones((cols[0].shape[0], rank))
    for col, kind in zip(cols, kinds):
        if kind == "sparse":
            prod = prod * rng.normal(size=(vocab, rank))[col]
        else:
            prod = prod * (col[:, None] * rng.normal(size=(1, rank)))
    return _standardize(prod.sum(1))


def make_synthetic_ctr(
    n_samples: int = 20000,
    n_dense: int = 4,
    n_sparse: int = 10,
    vocab_size: int = 32,
    n_pairs: int = 3,
    n_triples: int = 1,
    first_order_scale: float = 0.6,
    pair_scale: float = 1.0,
    triple_scale: float = 1.0,
    rank: int = 4,
    target_ctr: float = 0.25,
    seed: int = 0,
    fractions=(0.8, 0.1, 0.1),
    structure_seed: int | None = None,
) -> CTRSplits:
    """Build train/valid/test splits and the :class:`GroundTruth` (in ``splits.info['ground_truth']``).

    ``structure_seed``: when given, the planted structure (which fields interact and the interaction functions)
    comes from this seed and only the rows and labels from ``seed``, so several draws (DistDNAS's data dates) share
    one ground truth while ``pair_scale``/``triple_scale`` drift. None (the default) draws everything from ``seed``
    exactly as before.
    """
    if n_samples < 10:
        raise ValueError(f"n_samples must be >= 10, got {n_samples}")
    if n_sparse < 2 or vocab_size < 2:
        raise ValueError("need at least 2 sparse fields and a vocabulary of at least 2")
    if not 0 < target_ctr < 1:
        raise ValueError(f"target_ctr must lie in (0, 1), got {target_ctr}")
    # Only the first planted pair may involve a dense field; the others are distinct pairs of sparse fields.
    max_pairs = n_sparse * (n_sparse - 1) // 2 + (1 if n_dense else 0)
    if not 0 <= n_pairs <= max_pairs:
        raise ValueError(f"n_pairs={n_pairs}: {n_sparse} sparse and {n_dense} dense fields allow at most {max_pairs} "
                         f"distinct planted pairs (every sparse pair, plus one dense-sparse pair); ask for fewer pairs")
    if n_triples < 0 or (n_triples and n_sparse < 3):
        raise ValueError(f"n_triples={n_triples}: three-way interactions need at least 3 sparse fields, have {n_sparse}")
    rng = np.random.default_rng(seed)
    srng = rng if structure_seed is None else np.random.default_rng(structure_seed)  # structure draws
    dense = rng.normal(size=(n_samples, n_dense)).astype(np.float32)
    sparse = np.stack([_zipf_ids(rng, n_samples, vocab_size) for _ in range(n_sparse)], 1)
    names = [f"I{i + 1}" for i in range(n_dense)] + [f"C{i + 1}" for i in range(n_sparse)]
    cols = [dense[:, i] for i in range(n_dense)] + [sparse[:, i] for i in range(n_sparse)]
    kinds = ["dense"] * n_dense + ["sparse"] * n_sparse

    first = sum(srng.normal(size=vocab_size)[sparse[:, i]] for i in range(n_sparse))
    first = first + dense @ srng.normal(size=n_dense) if n_dense else first
    logit = first_order_scale * _standardize(first)
    scales = {"first_order": first_order_scale}

    # Planted interactions mostly among sparse fields (as in real CTR data), one pair may involve a dense field.
    pairs, triples, used = [], [], set()
    sparse_idx = list(range(n_dense, n_dense + n_sparse))
    for t in range(n_pairs):
        pool = sparse_idx if (t > 0 or n_dense == 0) else list(range(n_dense + n_sparse))
        if not any((i, j) not in used for i in pool for j in pool if i < j and kinds[j] == "sparse"):
            raise ValueError(f"n_pairs={n_pairs}: only {t} distinct pairs exist for this draw (its first pair joined "
                             f"two sparse fields, so no dense-sparse pair is left); ask for at most {t} pairs")
        while True:  # rejection sampling; the check above guarantees a free pair exists
            i, j = sorted(srng.choice(pool, 2, replace=False))
            if (i, j) not in used and kinds[j] == "sparse":
                break
        used.add((i, j))
        logit = logit + pair_scale * _term(srng, [cols[i], cols[j]], [kinds[i], kinds[j]], vocab_size, rank)
        pairs.append((names[i], names[j]))
        scales[f"{names[i]}x{names[j]}"] = pair_scale
    for _ in range(n_triples):
        i, j, k = sorted(srng.choice(sparse_idx, 3, replace=False))
        logit = logit + triple_scale * _term(srng, [cols[i], cols[j], cols[k]], ["sparse"] * 3, vocab_size, rank)
        triples.append((names[i], names[j], names[k]))
        scales[f"{names[i]}x{names[j]}x{names[k]}"] = triple_scale

    # Pick the bias so that the mean click probability matches the target CTR.
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (1 / (1 + np.exp(-(logit + mid)))).mean() < target_ctr else (lo, mid)
    prob = 1 / (1 + np.exp(-(logit + (lo + hi) / 2)))
    label = (rng.random(n_samples) < prob).astype(np.float32)
    first_prob = 1 / (1 + np.exp(-(first_order_scale * _standardize(first) + (lo + hi) / 2)))

    tr, va, te = split_indices(n_samples, fractions, seed)
    full = CTRDataset(torch.from_numpy(dense), torch.from_numpy(sparse).long(), torch.from_numpy(label))
    te_np = te.numpy()
    truth = GroundTruth(
        pairs=pairs,
        triples=triples,
        scales=scales,
        bayes_test=evaluate_ctr(label[te_np], prob[te_np]),
        first_order_term_test=evaluate_ctr(label[te_np], first_prob[te_np]),
    )
    schema = Schema([Field(n, "dense") for n in names[:n_dense]] + [Field(n, "sparse", vocab_size) for n in names[n_dense:]])
    info = {"source": "synthetic", "seed": seed, "ground_truth": truth, "true_prob": torch.from_numpy(prob).float()}
    return CTRSplits(schema, full.subset(tr), full.subset(va), full.subset(te), info)
