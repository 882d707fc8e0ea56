"""The verdict engine on hand-made gaps: every rule, including one seed and an interval that covers zero."""
import math

import numpy as np
import pandas as pd
import pytest

from companion import evidence as ev


def test_interval_matches_student_t_by_hand():
    lo, hi = ev.interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, n 3: t_{0.975,2} = 4.302653 -> half width 4.302653 / sqrt(3)
    assert lo == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert hi == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
    assert all(math.isnan(v) for v in ev.interval([1.0]))


def test_one_seed_is_inconclusive_however_large_the_gap():
    p = ev.paired([0.9], [0.5], metric="auc")
    assert p.n == 1 and p.wins == 1
    assert ev.gap_verdict(p).verdict == "inconclusive"


def test_two_seeds_are_inconclusive():
    p = ev.paired({0: 0.9, 1: 0.91}, {0: 0.5, 1: 0.5})
    assert ev.gap_verdict(p).verdict == "inconclusive"


def test_clear_gap_over_three_seeds_is_reproduced():
    p = ev.paired([0.80, 0.81, 0.82], [0.70, 0.70, 0.71])
    e = ev.gap_verdict(p)
    assert p.lo > 0 and e.verdict == "reproduced"
    assert "exclude 0" in e.rule and e.detail["n"] == 3


def test_interval_covering_zero_is_inconclusive_even_when_every_seed_wins_on_average():
    # wins on average (mean +0.01) but the spread is large: interval covers zero
    p = ev.paired([0.71, 0.75, 0.70], [0.70, 0.70, 0.73])
    assert p.lo < 0 < p.hi
    assert ev.gap_verdict(p).verdict == "inconclusive"


def test_reversed_gap_is_not_reproduced():
    p = ev.paired([0.60, 0.61, 0.60], [0.70, 0.70, 0.71])
    assert ev.gap_verdict(p).verdict == "not reproduced"


def test_equivalence_margin_turns_a_null_into_not_reproduced():
    p = ev.paired([0.7001, 0.6999, 0.7000, 0.7002], [0.7000, 0.7000, 0.7001, 0.7000])
    assert ev.gap_verdict(p).verdict == "inconclusive"
    assert ev.gap_verdict(p, equivalence=0.001).verdict == "not reproduced"


def test_min_effect_gives_partly_for_a_real_but_small_gap():
    p = ev.paired([0.701, 0.7012, 0.7011], [0.700, 0.700, 0.700])
    assert ev.gap_verdict(p).verdict == "reproduced"
    assert ev.gap_verdict(p, min_effect=0.01).verdict == "partly"


def test_lower_is_better_flips_the_sign():
    p = ev.paired([0.40, 0.41, 0.40], [0.45, 0.46, 0.45], metric="logloss", higher_is_better=False)
    assert p.mean == pytest.approx(0.05, abs=1e-9)
    assert ev.gap_verdict(p).verdict == "reproduced"


def test_paired_frame_pairs_on_seed_and_guesses_direction():
    df = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "seed": [2, 0, 1, 0, 1, 2],
                       "logloss": [0.40, 0.41, 0.42, 0.50, 0.51, 0.52]})
    p = ev.paired_frame(df, "a", "b", "logloss")
    # seed 0: a 0.41 vs b 0.50 -> +0.09; seed 1: 0.42 vs 0.51; seed 2: 0.40 vs 0.52
    assert sorted(p.gaps) == pytest.approx([0.09, 0.09, 0.12])
    with pytest.raises(ValueError, match="no rows"):
        ev.paired_frame(df, "a", "c", "logloss")


def test_non_finite_values_are_refused_with_the_seed():
    with pytest.raises(ValueError, match="seed"):
        ev.paired({0: 1.0, 1: float("nan")}, {0: 1.0, 1: 1.0})


def test_threshold_point_values():
    th = ev.Threshold(1.5, "at_least", tolerance=0.2, source="paper Fig. 7")
    assert ev.threshold_verdict(1.6, th).verdict == "reproduced"
    assert ev.threshold_verdict(1.35, th).verdict == "partly"
    assert ev.threshold_verdict(1.1, th).verdict == "not reproduced"
    assert "paper Fig. 7" in ev.threshold_verdict(1.6, th).rule
    low = ev.Threshold(1.2, "at_most", tolerance=0.1)
    assert ev.threshold_verdict(1.0, low).verdict == "reproduced"
    assert ev.threshold_verdict(1.25, low).verdict == "partly"
    assert ev.threshold_verdict(1.5, low).verdict == "not reproduced"


def test_threshold_with_interval_needs_the_whole_interval():
    th = ev.Threshold(1.2, "at_most", tolerance=0.0)
    assert ev.threshold_verdict(1.0, th, ci=(0.9, 1.1)).verdict == "reproduced"
    assert ev.threshold_verdict(1.15, th, ci=(1.0, 1.3)).verdict == "inconclusive"
    assert ev.threshold_verdict(1.5, th, ci=(1.4, 1.6)).verdict == "not reproduced"
    near = ev.Threshold(70.0, "near", tolerance=2.0)
    assert ev.threshold_verdict(69.0, near).verdict == "reproduced"
    assert ev.threshold_verdict(66.5, near).verdict == "partly"
    assert ev.threshold_verdict(60.0, near).verdict == "not reproduced"
    assert ev.threshold_verdict(float("nan"), near).verdict == "inconclusive"


def test_slope_interval_recovers_a_known_exponent():
    x = np.array([1e3, 2e3, 4e3, 8e3, 16e3])
    rng = np.random.default_rng(0)
    y = 3e-6 * x ** 2 * np.exp(rng.normal(0, 0.01, len(x)))
    s = ev.slope_interval(x, y)
    assert s["lo"] < 2.0 < s["hi"] and abs(s["slope"] - 2) < 0.05
    with pytest.raises(ValueError):
        ev.slope_interval([1, 2], [1, 2])


def test_all_of_combines_parts():
    r, n, i = ev.Evidence("reproduced", "x"), ev.Evidence("not reproduced", "y"), ev.Evidence("inconclusive", "z")
    assert ev.all_of([r, r]).verdict == "reproduced"
    assert ev.all_of([r, n]).verdict == "partly"
    assert ev.all_of([r, i]).verdict == "inconclusive"
    assert ev.all_of([n, n]).verdict == "not reproduced"
    assert ev.all_of([ev.not_tested("no data")]).verdict == "not tested"
    assert ev.all_of([r, ev.not_tested("later")]).verdict == "reproduced"


def test_unknown_verdict_is_refused():
    with pytest.raises(ValueError):
        ev.Evidence("maybe", "rule")


def test_tally_counts_only_tested_claims():
    t = ev.tally(["reproduced", "not tested", "inconclusive", "not tested"])
    assert t["tested"] == 2 and t["reproduced"] == 1
