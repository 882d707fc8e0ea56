"""The configuration space of the measured job: how to train one small DLRM-like model on this machine.

Ten knobs, each a thing a practitioner sets when launching a recommendation training job (CubicML's "co-design
hyper-parameters", here at laptop scale; `six_papers_addendum.md` §5.2 lists them):

=================  =======================================================================================
``batch``          per-process micro-batch size (samples)
``threads``        torch intra-op threads per process
``precision``      dense compute in fp32, or under bf16 autocast
``checkpoint``     activation checkpointing of the interaction + top MLP (recompute in backward)
``emb_grad``       embedding gradients dense (the whole table) or sparse (touched rows only)
``optimizer``      sgd | adagrad | adam, for all parameters
``accum``          gradient-accumulation micro-batches per optimizer step
``emb_dim``        embedding width (a model knob: CubicML co-designs model and system)
``world``          data-parallel processes (DDP over gloo)
``bucket_mb``      DDP gradient bucket size (MB)
=================  =======================================================================================

``check`` refuses combinations that cannot run or that duplicate another job, each with its reason, so a
searcher never spends a measurement on them. A configuration that runs but needs more memory than the budget
is *not* refused here: like an out-of-memory job it is found out by running it (the harness records it as
infeasible)."""
from __future__ import annotations

import os
from typing import Sequence

from ..nas.protocol import DecisionSpace
from .model import JobShape

KNOBS: dict[str, tuple] = {
    "batch": (256, 512, 1024, 2048, 4096, 8192),
    "threads": (1, 2),
    "precision": ("fp32", "bf16"),
    "checkpoint": (False, True),
    "emb_grad": ("dense", "sparse"),
    "optimizer": ("sgd", "adagrad", "adam"),
    "accum": (1, 2, 4),
    "emb_dim": (16, 32, 64),
    "world": (1, 2),
    "bucket_mb": (25, 5, 1),
}
DDP_DEFAULT_BUCKET_MB = 25  # torch.nn.parallel.DistributedDataParallel's default bucket_cap_mb
SPARSE_OPTIMIZERS = ("sgd", "adagrad")  # torch.optim.Adam raises on sparse gradients

# What a practitioner would launch first without a search: PyTorch's defaults where there is one (fp32, dense
# embedding gradients, DDP's 25 MB buckets, no checkpointing, no accumulation), Adam, all cores in one process,
# a common batch of 1024 and the middle width.
HAND_DEFAULT = {"batch": 1024, "threads": 2, "precision": "fp32", "checkpoint": False, "emb_grad": "dense",
                "optimizer": "adam", "accum": 1, "emb_dim": 32, "world": 1, "bucket_mb": 25}


def make_check(cores: int, max_global_batch: int):
    def check(c: dict) -> str | None:
        if c["world"] * c["threads"] > cores:
            return (f"world size {c['world']} x {c['threads']} intra-op threads = {c['world'] * c['threads']} > "
                    f"{cores} cores: the processes would oversubscribe the CPU")
        if c["emb_grad"] == "sparse" and c["optimizer"] not in SPARSE_OPTIMIZERS:
            return (f"{c['optimizer']} cannot take sparse embedding gradients (torch.optim.Adam raises); "
                    f"use {' or '.join(SPARSE_OPTIMIZERS)}, or dense gradients")
        if c["world"] == 1 and c["bucket_mb"] != DDP_DEFAULT_BUCKET_MB:
            return (f"bucket size {c['bucket_mb']} MB is a no-op with world size 1 (no gradient is communicated); "
                    f"only the default {DDP_DEFAULT_BUCKET_MB} MB is kept so each distinct job appears once")
        g = c["batch"] * c["accum"] * c["world"]
        if g > max_global_batch:
            return (f"global batch {c['batch']} x {c['accum']} accumulation x {c['world']} processes = {g} > "
                    f"{max_global_batch}: beyond the batch the model is trained with (a convergence limit, not speed)")
        return None
    return check


def training_space(cores: int | None = None, max_global_batch: int = 8192,
                   knobs: dict[str, Sequence] | None = None) -> DecisionSpace:
    """The space on a machine with ``cores`` CPU cores (default: this one's)."""
    cores = int(cores or os.cpu_count() or 1)
    ks = {**KNOBS, **(knobs or {})}
    return DecisionSpace(ks, name=f"dlrm-train-{cores}c", check=make_check(cores, max_global_batch))


def n_valid(space: DecisionSpace) -> int:
    """Number of valid configurations (the space is small enough to enumerate)."""
    import itertools
    import numpy as np
    card = space.cardinalities()
    return sum(space.valid(space.decode(np.array(c))) for c in itertools.product(*[range(k) for k in card]))


def state_bytes_per_process(cfg: dict, shape: JobShape = JobShape()) -> dict:
    """Bytes of parameters, gradients and optimizer state one process holds (fp32 everywhere; bf16 autocast
    keeps fp32 master weights). Sparse gradients hold only the touched rows (at most batch x tables)."""
    rows = shape.n_tables * shape.rows_per_table
    emb = rows * cfg["emb_dim"]
    f = shape.n_tables + 1
    dims = [shape.n_dense, *shape.bottom, cfg["emb_dim"]]
    tdims = [cfg["emb_dim"] + f * (f - 1) // 2, *shape.top, 1]
    dense = sum(a * b + b for a, b in zip(dims[:-1], dims[1:])) + sum(a * b + b for a, b in zip(tdims[:-1], tdims[1:]))
    touched = min(rows, cfg["batch"] * shape.n_tables) * cfg["emb_dim"]
    emb_grad = emb if cfg["emb_grad"] == "dense" else touched
    states = {"sgd": 0, "adagrad": 1, "adam": 2}[cfg["optimizer"]]
    out = {"params": 4 * (emb + dense), "grads": 4 * (emb_grad + dense), "optimizer": 4 * states * (emb + dense)}
    out["total"] = sum(out.values())
    return out
