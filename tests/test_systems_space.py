"""The CubicML configuration space: invalid combinations are refused with their reason, valid ones pass."""
import numpy as np
import pytest

from companion.systems.space import HAND_DEFAULT, KNOBS, n_valid, state_bytes_per_process, training_space
from companion.systems.model import JobShape


def test_default_is_valid_and_round_trips():
    s = training_space(cores=2)
    assert s.reason(HAND_DEFAULT) is None
    assert s.decode(s.encode(HAND_DEFAULT)) == HAND_DEFAULT


@pytest.mark.parametrize("change, words", [
    ({"world": 2, "threads": 2}, ["4 > 2 cores"]),
    ({"emb_grad": "sparse", "optimizer": "adam"}, ["adam cannot take sparse"]),
    ({"world": 1, "bucket_mb": 5}, ["no-op with world size 1"]),
    ({"batch": 8192, "accum": 2}, ["global batch 8192 x 2", "16384 > 8192"]),
])
def test_invalid_combinations_are_refused_with_their_reason(change, words):
    s = training_space(cores=2)
    why = s.reason({**HAND_DEFAULT, **change})
    assert why is not None
    for w in words:
        assert w in why


def test_core_count_changes_what_is_valid():
    cfg = {**HAND_DEFAULT, "world": 2, "threads": 2}
    assert training_space(cores=2).reason(cfg) is not None
    assert training_space(cores=4).reason(cfg) is None


def test_uniform_draws_are_all_valid_and_count_matches_enumeration():
    s = training_space(cores=2)
    rng = np.random.default_rng(0)
    assert all(s.valid(s.sample_uniform(rng)) for _ in range(200))
    # exact count on a small sub-space, by hand: batch {256, 8192} x world {1, 2} x bucket {25, 5}, rest fixed
    small = training_space(cores=2, knobs={"batch": (256, 8192), "threads": (1,), "precision": ("fp32",),
                                           "checkpoint": (False,), "emb_grad": ("dense",), "optimizer": ("sgd",),
                                           "accum": (1,), "emb_dim": (16,), "world": (1, 2), "bucket_mb": (25, 5)})
    # world 1: bucket 5 refused (2 batches); world 2: batch 8192 x 2 > 8192 refused (2 buckets) -> 8 - 2 - 2 = 4
    assert n_valid(small) == 4


def test_state_bytes_by_hand():
    shape = JobShape(n_dense=2, n_tables=2, rows_per_table=10, bottom=(3,), top=(4,))
    cfg = {**HAND_DEFAULT, "emb_dim": 2, "optimizer": "adam", "emb_grad": "dense", "batch": 1}
    # embedding 20 x 2 = 40; bottom 2->3->2: 6+3 + 6+2 = 17; top (2 + 3 dots)=5 -> 4 -> 1: 20+4 + 4+1 = 29
    b = state_bytes_per_process(cfg, shape)
    assert b["params"] == 4 * (40 + 46)
    assert b["optimizer"] == 2 * 4 * (40 + 46)
    sparse = state_bytes_per_process({**cfg, "emb_grad": "sparse", "optimizer": "sgd"}, shape)
    assert sparse["grads"] == 4 * (1 * 2 * 2 + 46) and sparse["optimizer"] == 0
