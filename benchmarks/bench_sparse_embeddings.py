"""Dense vs row-wise sparse embedding updates on a large table (Criteo-like: 26 fields x 100k ids x 16 dims).

    /tmp/cpuslot .venv/bin/python benchmarks/bench_sparse_embeddings.py [--vocab 100000] [--steps 20]

The same DNN and batches under ``TrainConfig.embedding_optimizer`` = dense (Adam over the whole 41.6M-weight
table every step), sparse_adam (lazy Adam on the looked-up rows) and rowwise_adagrad (one accumulator per row).
Prints samples/s and the optimizer state each keeps. Random ids and labels: this times updates, not learning.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from companion import train  # noqa: E402
from companion.data.schema import Field, Schema  # noqa: E402
from companion.models.ctr import DNN  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=100_000, help="ids per field")
    ap.add_argument("--fields", type=int, default=26)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=17, help="timed steps (3 more warm up)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    schema = Schema([Field(f"C{i}", "sparse", vocab_size=a.vocab) for i in range(a.fields)])
    g = torch.Generator().manual_seed(0)
    n, b = a.steps + 3, a.batch_size
    x = torch.randint(0, a.vocab, (n * b, a.fields), generator=g)
    y = torch.randint(0, 2, (n * b,), generator=g).float()
    batches = [{"dense": torch.zeros(b, 0), "sparse": x[i * b : (i + 1) * b], "label": y[i * b : (i + 1) * b]}
               for i in range(n)]
    print(f"table {a.fields * a.vocab:,} rows x 16 = {a.fields * a.vocab * 16:,} weights; batch {b}, "
          f"{torch.get_num_threads()} thread(s)")
    for opt in train.EMBEDDING_OPTIMIZERS:
        if opt == "sparse_adagrad":
            continue  # element-wise Adagrad: same update cost as sparse_adam, shown by the tests to equal dense Adagrad
        torch.manual_seed(0)
        m = DNN(schema, 16, hidden=(64,))
        opts = train.make_optimizers(m, train.TrainConfig(embedding_optimizer=opt))

        def step(batch):
            loss = F.binary_cross_entropy_with_logits(m(batch), batch["label"])
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
        for batch in batches[:3]:
            step(batch)
        t0 = time.perf_counter()
        for batch in batches[3:]:
            step(batch)
        dt = time.perf_counter() - t0
        state = sum(v.numel() for o in opts for st in o.state.values() for v in st.values()
                    if torch.is_tensor(v) and v.dim() > 0)
        print(f"{opt:<18}{a.steps * b / dt:>10.0f} samples/s   optimizer state {state:>14,} floats")


if __name__ == "__main__":
    main()
