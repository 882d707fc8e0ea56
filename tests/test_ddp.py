"""companion.distributed: the in-process fallback, sharding, and torchrun jobs that succeed or lose a rank."""
from pathlib import Path

import torch

from companion import distributed

WORKERS = Path(__file__).parent / "ddp_workers"


def test_in_process_fallback_is_identity(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    d = distributed.init_from_env()
    assert (d.rank, d.world_size, d.is_main, d.launched, d.active) == (0, 1, True, False, False)
    t = torch.tensor([3.0, 5.0])
    assert d.all_reduce_mean(t) is t and t.tolist() == [3.0, 5.0]
    d.barrier()
    d.close()


def test_shards_partition_the_rows_in_order():
    for n in (0, 1, 7, 10):
        for w in (1, 2, 3):
            parts = [distributed.Dist(rank=r, world_size=w).shard(n) for r in range(w)]
            idx = [i for p in parts for i in range(n)[p]]
            assert idx == list(range(n))
            sizes = [len(range(n)[p]) for p in parts]
            assert max(sizes) - min(sizes) <= 1


def test_two_rank_gloo_job_and_a_dying_rank():
    ok = distributed.launch(str(WORKERS / "collectives.py"), nproc=2, timeout_s=120).check()
    assert ok.exit_codes == {0: 0, 1: 0}
    assert "mean=1.5 rows=[0, 0, 1] shard=slice(0, 3, None)" in ok.stdout[0]
    assert "rank=1 world=2 mean=1.5 rows=[0, 0, 1] shard=slice(3, 5, None)" in ok.stdout[1]
    bad = distributed.launch(str(WORKERS / "collectives.py"), nproc=2, args=["--die"], timeout_s=120)
    assert not bad.ok and bad.exit_codes[1] == 3 and bad.exit_codes[0] != 0
    assert "PeerFailure: rank 0 of 2: barrier failed" in bad.stderr[0]
    assert "rank 1" in bad.summary() and "rank 0 stderr" in bad.summary()


def test_a_hanging_job_is_killed_at_the_timeout():
    import time
    t0 = time.perf_counter()
    res = distributed.launch(str(WORKERS / "collectives.py"), nproc=2, args=["--hang"], timeout_s=12)
    assert res.timed_out and not res.ok and time.perf_counter() - t0 < 40
    assert "timed out" in res.summary()
