"""DistDNAS under torchrun: two gloo ranks end with the same architecture as the in-process search, and a rank
that dies gives an error naming it, within the timeout (every launch is a subprocess with a wall-clock limit)."""
import time

import pytest

from companion.data.date_shards import DateSpec
from companion.nas import distdnas as dd
from companion.nas.dist_search import launch_search

SPEC = DateSpec("synthetic", n_dates=3, rows_per_date=400, seed=0)
CFG = dd.SearchConfig(layers=1, dim=4, batch_size=200, lam=0.05)


def test_two_ranks_agree_with_each_other_and_with_the_in_process_search():
    shards = SPEC.build()
    local = dd.search_dates(shards.dates, shards.schema, CFG, seed=1)
    job = launch_search(SPEC, CFG, seed=1, nproc=2, timeout_s=150)
    r0, r1 = job["ranks"]
    assert job["identical"] and r0["arch"] == r1["arch"] and r0["aggregate"] == r1["aggregate"]
    assert (r0["dates_of_rank"], r1["dates_of_rank"]) == ([0, 2], [1])  # the dates really were split
    assert r0["world_size"] == 2 and r0["backend"] == "gloo"
    assert r0["arch"] == local.arch and r0["aggregate"] == local.aggregate
    assert [d["probs"] for d in r1["per_date"]] == [d.probs for d in local.per_date]


def test_a_dying_rank_is_named_and_nothing_hangs():
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError) as err:
        launch_search(SPEC, CFG, seed=1, nproc=2, timeout_s=150, fail_rank=1, collective_timeout_s=20)
    msg = str(err.value)
    assert time.perf_counter() - t0 < 150
    assert "timed out" not in msg
    assert "1: 3" in msg  # rank 1's exit code, as recorded per rank
    assert "rank 1: injected failure" in msg  # and its stderr
