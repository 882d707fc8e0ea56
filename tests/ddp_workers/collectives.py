"""Worker for tests/test_ddp.py: collectives across ranks, optionally one rank dying."""
import sys

import torch

from companion import distributed

with distributed.init_from_env(timeout_s=30) as d:
    t = torch.tensor([float(d.rank + 1)])
    d.all_reduce_mean(t)
    rows = d.all_gather_rows(torch.arange(d.rank + 1))
    print(f"rank={d.rank} world={d.world_size} mean={t.item()} rows={rows.tolist()} shard={d.shard(5)}")
    if "--die" in sys.argv and d.rank == 1:
        raise SystemExit(3)
    if "--hang" in sys.argv and d.rank == 1:
        import time
        time.sleep(600)
    d.barrier()
