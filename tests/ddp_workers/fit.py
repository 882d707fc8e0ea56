"""Worker for tests/test_ddp_train.py: the same seeded fit() on every rank; each rank saves what it ended with.

    torchrun --nproc_per_node N tests/ddp_workers/fit.py OUT_DIR EMBEDDING_OPTIMIZER[,EMBEDDING_OPTIMIZER...]
Run without torchrun, it is the one-process reference (``fit`` falls back to in-process).
"""
import sys
from pathlib import Path

import torch

from companion import distributed, train
from companion.data.synthetic import make_synthetic_ctr
from companion.models.zoo import build_model
from companion.runtime import seed_everything

CFG = dict(epochs=2, batch_size=251, lr=0.01, monitor="logloss", progress=False, seed=4)


def data():
    return make_synthetic_ctr(3000, n_dense=2, n_sparse=5, vocab_size=30, n_pairs=2, n_triples=0, seed=2)


def model(schema):
    seed_everything(0)
    return build_model("DCNv2", schema, 8, cross_layers=2, rank=4, hidden=(32,))


def run(out: Path, embedding_optimizer: str, dist=None) -> None:
    torch.set_num_threads(1)
    data_ = data()
    model_ = model(data_.schema)
    res = train.fit(model_, data_, train.TrainConfig(**CFG, embedding_optimizer=embedding_optimizer), dist=dist)
    rank = dist.rank if dist is not None else 0
    torch.save({"state": model_.state_dict(), "valid": res.valid, "test": res.test, "steps": res.steps,
                "history": res.history}, out / f"{embedding_optimizer}_rank{rank}.pt")


if __name__ == "__main__":
    out, opts = Path(sys.argv[1]), sys.argv[2].split(",")
    with distributed.init_from_env(timeout_s=60) as d:
        for opt in opts:
            run(out, opt, d)
