"""The cost-measurement helpers behind the linear-complexity claim: scenes that grow at fixed density, a peak
memory counter that is exact on hand-made allocations, slopes that recover a known exponent, and the mixers'
measured exponents ordered as theory says (attention's above BiMamba's)."""
import numpy as np
import pandas as pd
import pytest
import torch

from companion import evidence
from companion.data.rooms import make_building, make_room
from companion.points.experiment import benchmark_evidence, on_par_evidence
from companion.points.profile import (cpu_seconds, exponent_gap, footprint_m2, mixer_scaling, peak_memory_bytes,
                                      scene_cloud, slopes)


def test_room_density_is_fixed_as_rooms_grow():
    """points_per_m2 samples surfaces at that density exactly (up to rounding), whatever the room's size."""
    for s in range(4):
        r = make_room(s, None, points_per_m2=150.0)
        assert len(r["coord"]) == pytest.approx(150.0 * r["area_m2"], abs=1)
    with pytest.raises(ValueError, match="exactly one"):
        make_room(0, 1000, points_per_m2=100.0)


def test_building_grows_in_area_not_density():
    one, four = make_building(1, seed=3), make_building(4, seed=3)
    d1 = len(one["coord"]) / one["area_m2"]
    d4 = len(four["coord"]) / four["area_m2"]
    assert d1 == pytest.approx(200.0, rel=0.01) and d4 == pytest.approx(200.0, rel=0.01)
    assert four["footprint_m2"] > 2.5 * one["footprint_m2"]  # four rooms cover about four times the floor
    assert footprint_m2(four["coord"]) > 2.5 * footprint_m2(one["coord"])
    # the first room of the building is the building of one room, moved
    n0 = len(one["coord"])
    assert np.allclose(four["coord"][:n0] - four["coord"][:n0].min(0), one["coord"] - one["coord"].min(0), atol=1e-4)
    assert len(np.unique(four["instance"])) > len(np.unique(one["instance"]))


def test_scene_cloud_keeps_cells_per_m2_as_it_grows():
    """A bigger scene, not a denser one: cells per m2 of footprint stay within 40% from 2k to 32k cells (a
    generator that densified one room would multiply it by about 16), and the footprint grows with the size."""
    info = {}
    for n in (2000, 8000, 32000):
        feat, grid, info[n] = scene_cloud(n, grid_size=0.1, points_per_m2=200.0, seed=1)
        assert feat.shape == (n, 6) and grid.shape == (n, 3) and len(torch.unique(grid, dim=0)) == n
    dens = [info[n]["cells_per_m2"] for n in info]
    assert max(dens) / min(dens) < 1.4
    assert info[32000]["footprint_m2"] > 8 * info[2000]["footprint_m2"]
    assert info[32000]["rooms"] > info[2000]["rooms"]


def test_peak_memory_counts_live_tensors_exactly():
    x = torch.zeros(1000, 250)  # 1 MB, made before: not counted

    def two_alive():
        a = x + 1
        b = a * 2
        return a + b  # a, b and the result alive together: 3 MB

    def one_at_a_time():
        for _ in range(4):
            y = x + 1
            del y
        return None

    assert peak_memory_bytes(two_alive) == 3 * 1_000_000
    assert peak_memory_bytes(one_at_a_time) == 1_000_000


def test_cpu_seconds_counts_work_not_waiting():
    import time

    waited = cpu_seconds(lambda: time.sleep(0.05), repeats=2, warmup=0)
    assert max(waited) < 0.02  # sleeping costs no CPU
    x = torch.randn(400, 400)
    busy = cpu_seconds(lambda: [x @ x for _ in range(20)], repeats=2)
    assert min(busy) > 0


def test_slopes_recover_known_exponents():
    L = np.array([1000, 2000, 4000, 8000, 16000])
    df = pd.concat([pd.DataFrame({"component": "mixer", "mixer": "attention", "tokens": L, "cpu_s": 1e-9 * L ** 2}),
                    pd.DataFrame({"component": "mixer", "mixer": "mamba", "tokens": L, "cpu_s": 1e-6 * L})])
    s = slopes(df).set_index("mixer")
    assert s.loc["attention", "slope"] == pytest.approx(2.0) and s.loc["mamba", "slope"] == pytest.approx(1.0)
    assert exponent_gap(df, "mixer")["slope"] == pytest.approx(1.0)


def test_measured_exponents_order_attention_above_bimamba():
    """A small real scan (CPU time of the mixers alone, width 16): attention's exponent must exceed BiMamba's.
    Sizes start at 2k where attention's quadratic term already dominates at this width."""
    df = mixer_scaling([2000, 4000, 8000], channels=16, d_state=4, repeats=1, memory=False)
    g = exponent_gap(df, "mixer")
    assert g["slope"] > 0.4
    s = slopes(df).set_index(["component", "mixer"])["slope"]
    assert s[("mixer", "attention")] > 1.5 and s[("mixer", "mamba")] < 1.4


def test_benchmark_evidence_comes_from_the_number():
    th = evidence.Threshold(70.3, "at_least", 1.0, source="test")
    assert benchmark_evidence("s3dis", "rooms", [70.0] * 3, th).verdict == "not tested"
    assert benchmark_evidence("s3dis", "s3dis", [71.0, 71.2, 70.9], th).verdict == "reproduced"
    assert benchmark_evidence("s3dis", "s3dis", [60.0, 61.0, 60.5], th).verdict == "not reproduced"
    assert benchmark_evidence("s3dis", "s3dis", [69.6, 69.8, 69.7], th).verdict == "partly"
    assert benchmark_evidence("s3dis", "s3dis", [71.0], th).verdict == "inconclusive"  # one seed


def test_on_par_needs_three_seeds_and_a_tight_interval():
    th = evidence.Threshold(0.0, "near", 0.03, source="test")
    tight = evidence.paired([0.50, 0.52, 0.51], [0.50, 0.51, 0.51])
    assert on_par_evidence(tight, th).verdict == "reproduced"
    assert on_par_evidence(evidence.paired([0.5, 0.52], [0.5, 0.51]), th).verdict == "inconclusive"
    far = evidence.paired([0.30, 0.31, 0.30], [0.50, 0.51, 0.50])
    assert on_par_evidence(far, th).verdict == "not reproduced"
