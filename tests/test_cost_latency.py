import pytest
import torch
from torch import nn

from companion.cost.latency import measure_latency


def test_latency_median_and_threads_restored():
    before = torch.get_num_threads()
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    lat = measure_latency(model, torch.randn(32, 64), warmup=1, repeats=5, threads=1)
    assert lat.repeats == 5 and lat.batch_size == 32 and lat.threads == 1
    assert 0 < lat.min_ms <= lat.median_ms <= lat.p90_ms
    assert lat.per_sample_us == pytest.approx(1000 * lat.median_ms / 32)
    assert torch.get_num_threads() == before
    assert model.training  # mode restored


def test_bigger_model_is_slower():
    small = nn.Linear(16, 16)
    big = nn.Sequential(*[nn.Linear(512, 512) for _ in range(6)])
    ls = measure_latency(small, torch.randn(64, 16), repeats=7, threads=1)
    lb = measure_latency(big, torch.randn(64, 512), repeats=7, threads=1)
    assert lb.median_ms > ls.median_ms


def test_bad_arguments():
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(nn.Linear(2, 2), torch.randn(1, 2), repeats=0)
