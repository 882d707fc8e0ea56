"""Data-parallel training under torchrun gives the model one process trains on the same global batches."""
import sys
from pathlib import Path

import torch

from companion import distributed

WORKERS = Path(__file__).parent / "ddp_workers"
sys.path.insert(0, str(WORKERS))
import fit as worker  # noqa: E402

OPTIMIZERS = ("dense", "sparse_adam")  # dense DDP buckets, and DDP's gloo all-reduce of sparse table gradients


def test_two_gloo_ranks_train_the_one_process_model(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    distributed.launch(str(WORKERS / "fit.py"), nproc=2, args=[two, ",".join(OPTIMIZERS)], timeout_s=300).check()
    init = worker.model(worker.data().schema).state_dict()
    for opt in OPTIMIZERS:
        worker.run(one, opt)  # the in-process reference (fit() outside torchrun)
        ref = torch.load(one / f"{opt}_rank0.pt")
        r0, r1 = torch.load(two / f"{opt}_rank0.pt"), torch.load(two / f"{opt}_rank1.pt")
        assert r0["steps"] == ref["steps"] == 20  # 2 epochs x ceil(2400 / 251): the same global batches
        for k, v in ref["state"].items():
            assert torch.equal(r0["state"][k], r1["state"][k]), f"{opt}: ranks disagree on {k}"
            assert torch.allclose(r0["state"][k], v, rtol=1e-4, atol=1e-5), (opt, k, (r0["state"][k] - v).abs().max())
        assert abs(r0["valid"]["logloss"] - ref["valid"]["logloss"]) < 1e-5
        assert abs(r0["test"]["auc"] - ref["test"]["auc"]) < 1e-4
        assert [round(h["train_loss"], 5) for h in r0["history"]] == [round(h["train_loss"], 5) for h in ref["history"]]
        # training moved the weights far beyond the tolerance, so the agreement is not vacuous
        assert max(float((ref["state"][k] - init[k]).abs().max()) for k in init) > 1e-2
