"""The CubicML pieces around the core: predictors learn a known synthetic throughput function, the round-based
loop beats random search on it at equal measurements, and the CPU roofline on a hand-computed case."""
import numpy as np
import pytest

from companion.systems import search
from companion.systems.model import JobShape, flops_per_sample
from companion.systems.space import HAND_DEFAULT, state_bytes_per_process, training_space

SPACE = training_space(cores=2)
EFFECT = {"batch": {256: 0.0, 512: 0.4, 1024: 0.7, 2048: 0.9, 4096: 1.0, 8192: 1.05}, "threads": {1: 0.0, 2: -0.5},
          "precision": {"fp32": 0.0, "bf16": -0.3}, "checkpoint": {False: 0.0, True: -0.2},
          "emb_grad": {"dense": 0.0, "sparse": 1.2}, "optimizer": {"sgd": 0.3, "adagrad": 0.1, "adam": 0.0},
          "accum": {1: 0.0, 2: 0.1, 4: 0.15}, "emb_dim": {16: 0.3, 32: 0.1, 64: 0.0}, "world": {1: 0.0, 2: 0.5},
          "bucket_mb": {25: 0.0, 5: 0.05, 1: -0.1}}


def synthetic(c: dict) -> float:
    """Log-additive throughput with one interaction (sparse gradients help more at small batches)."""
    z = sum(EFFECT[k][v] for k, v in c.items())
    z += 0.4 * (c["emb_grad"] == "sparse") * (c["batch"] <= 1024)
    return float(np.exp(z) * 1000)


@pytest.mark.parametrize("kind", ["gbt", "mlp"])
def test_predictor_learns_a_known_function_held_out(kind):
    rng = np.random.default_rng(0)
    cands = [SPACE.sample_uniform(rng) for _ in range(260)]
    df = search.holdout(SPACE, cands, [synthetic(c) for c in cands], kinds=[kind], n_train=[120], splits=2,
                        members=3, epochs=80)
    assert len(df) == 2 and (df.n_test >= 130).all()
    assert df.tau.mean() > 0.8, df


def test_a_constant_function_is_not_learnt():
    """The control: labels that carry no signal give a held-out tau near 0."""
    rng = np.random.default_rng(1)
    cands = [SPACE.sample_uniform(rng) for _ in range(200)]
    noise = np.exp(np.random.default_rng(2).normal(size=200))
    df = search.holdout(SPACE, cands, noise, kinds=["gbt"], n_train=[100], splits=3, members=3)
    assert abs(df.tau.mean()) < 0.15


def test_round_based_loop_beats_random_at_equal_measurements():
    obj = lambda c, s: {"samples_per_s": synthetic(c)}
    frame, results = search.compare(SPACE, obj, seeds=[0, 1, 2, 3], budget=30, warmup=10, top_k=5,
                                    make_predictor=search.predictor_factory("gbt"), inner_steps=500)
    last = frame[frame.trial == 30].pivot(index="seed", columns="searcher", values="best")
    assert (last["predictor"] >= last["random"]).sum() >= 3, last
    assert last["predictor"].mean() > last["random"].mean()
    # the paired start: both searches measured the same first 10 configurations
    for s in range(4):
        a = [t["key"] for t in results[("random", s)].trials[:10]]
        b = [t["key"] for t in results[("predictor", s)].trials[:10]]
        assert a == b


def test_cpu_roofline_by_hand():
    shape = JobShape(n_dense=2, n_tables=2, rows_per_table=10, bottom=(3,), top=(4,))
    cfg = {**HAND_DEFAULT, "emb_dim": 2, "optimizer": "sgd", "batch": 10, "accum": 1, "threads": 1, "world": 1}
    # flops/sample: bottom 2*3 + 3*2 = 12, top (2+3)*4 + 4*1 = 24, interaction 3*3*2 = 18 -> 2 * 54 = 108
    assert flops_per_sample(shape, 2) == 108
    st = state_bytes_per_process(cfg, shape)  # params 4*86, grads 4*86, no optimizer state
    bytes_ = 2 * 344 + 2 * 344 + 3 * 10 * 2 * 2 * 4
    dev = {"flops": 1080.0, "mem_bw": bytes_ / 2.0}  # compute 1 s per step, memory 2 s: memory-bound
    r = search.cpu_roofline(cfg, dev, shape)
    assert st["params"] == 344 and r["bytes"] == bytes_ and r["bound"] == "memory"
    assert r["samples_per_s"] == pytest.approx(10 / 2.0)
