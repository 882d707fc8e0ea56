"""LCDB reader (CSV and the sdist member, with errors naming file and line) and the low-fidelity label: exact
Kendall taus and trend corrections on hand-made curves."""
import io
import os
import tarfile

import numpy as np
import pandas as pd
import pytest

from companion.data import lcdb
from companion.data.errors import DataFormatError
from companion.nas.lowfi import kendall, lowfi_taus, trend_correct

HEADER = ",".join(lcdb.COLUMNS)


def _csv(rows):
    return HEADER + "\n" + "\n".join(rows) + "\n"


ROWS = [
    "44,sklearn.ensemble.RandomForestClassifier,16,100,0,0,0.01,0.1,0.50,0.52",
    "44,sklearn.ensemble.RandomForestClassifier,16,100,1,0,0.01,0.1,0.70,0.72",
    "44,SVC_linear,16,100,0,0,0.01,0.2,0.90,0.91",
]


def test_read_csv_and_mean_curves(tmp_path):
    p = tmp_path / "database-logloss.csv"
    p.write_text(_csv(ROWS))
    df = lcdb.read_logloss_csv(p)
    assert len(df) == 3 and df.size_train.dtype == np.int64
    c = lcdb.mean_curves(df)
    rf = c[c.learner == "RandomForestClassifier"].iloc[0]
    assert rf.n_seeds == 2 and rf.valid == pytest.approx(0.60) and rf.test == pytest.approx(0.62)
    assert set(c.learner) == {"RandomForestClassifier", "SVC_linear"}


@pytest.mark.parametrize("bad, line, what", [
    ("44,SVC_linear,16,100,0,0,0.01,0.2,0.90", 3, "malformed"),  # a field short: pandas names line 3
    ("44,SVC_linear,sixteen,100,0,0,0.01,0.2,0.90,0.91", 3, "size_train"),
    ("44,SVC_linear,16,100,0,0,0.01,0.2,abc,0.91", 3, "score_valid"),
])
def test_malformed_rows_name_file_and_line(tmp_path, bad, line, what):
    p = tmp_path / "database-logloss.csv"
    p.write_text(_csv(ROWS[:1] + [bad]))
    with pytest.raises(DataFormatError, match=what) as e:
        lcdb.read_logloss_csv(p)
    assert e.value.line == line and e.value.path == p


def test_wrong_header_is_refused(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError, match="expected the columns"):
        lcdb.read_logloss_csv(p)


def test_reads_the_member_out_of_an_sdist(tmp_path, monkeypatch):
    sdist = tmp_path / "lcdb-0.1.0.tar.gz"
    data = _csv(ROWS).encode()
    with tarfile.open(sdist, "w:gz") as tf:
        info = tarfile.TarInfo(lcdb.MEMBER)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    monkeypatch.setenv("COMPANION_LCDB", str(sdist))
    with pytest.raises(DataFormatError, match="sha256"):
        lcdb.load_lcdb_curves()
    monkeypatch.setattr(lcdb, "SDIST_SHA256", __import__("hashlib").sha256(sdist.read_bytes()).hexdigest())
    assert len(lcdb.load_lcdb_curves()) == 2


def test_trend_correction_is_the_extrapolated_line():
    # log2 sizes 4, 5, 6 (16, 32, 64); values fall 0.1 per doubling: extrapolating to 256 (log2 8) gives 0.6 - 0.2
    v = np.array([[0.8, 0.7, 0.6], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(trend_correct([16, 32, 64], v, 256, x="log"), [0.4, 0.5])
    # linear in size: slope over (16, 0.8), (32, 0.7), (64, 0.6) by least squares, then + m * (256 - 64)
    xs = np.array([16.0, 32, 64])
    m = np.polyfit(xs, v[0], 1)[0]
    assert trend_correct(xs, v, 256, x="linear")[0] == pytest.approx(0.6 + m * 192)
    assert trend_correct([64], v[:, -1:], 256)[1] == 0.5  # one point: no trend


def _curves(table):
    rows = [{"openmlid": g, "learner": l, "size_train": s, "valid": v}
            for g, per in table.items() for l, curve in per.items() for s, v in curve.items()]
    return pd.DataFrame(rows)


def test_lowfi_taus_on_a_hand_made_table():
    # dataset 1: at size 64 the order is A<B<C<D (log loss), at 512 it is B<A<C<D (one swap of 6 pairs: tau 2/3).
    # B's curve falls steeply, so the trend correction moves B ahead of A and recovers the final order (tau 1).
    d1 = {"A": {16: 0.50, 32: 0.45, 64: 0.40, 512: 0.38},
          "B": {16: 0.70, 32: 0.55, 64: 0.42, 512: 0.30},
          "C": {16: 0.60, 32: 0.58, 64: 0.56, 512: 0.55},
          "D": {16: 0.90, 32: 0.88, 64: 0.86, 512: 0.85}}
    # dataset 2: the ranking never changes; a learner that stops at 64 does not count at 512
    d2 = {"A": {16: 0.3, 32: 0.2, 64: 0.1, 512: 0.05}, "B": {16: 0.4, 32: 0.3, 64: 0.2, 512: 0.15},
          "C": {16: 0.5, 32: 0.4, 64: 0.3, 512: 0.25}, "E": {16: 0.1, 32: 0.1, 64: 0.1}}
    out = lowfi_taus(_curves({1: d1, 2: d2}), small_ratio=8, window=3, min_learners=3, x="log").set_index("openmlid")
    assert out.loc[1, "a_small"] == 64 and out.loc[1, "a_large"] == 512 and out.loc[1, "n_learners"] == 4
    assert out.loc[1, "tau_raw"] == pytest.approx(2 / 3) and out.loc[1, "tau_trend"] == pytest.approx(1.0)
    assert out.loc[2, "n_learners"] == 3 and out.loc[2, "tau_raw"] == pytest.approx(1.0)
    # a small size too close to the largest: 512/4 = 128 -> the largest anchor at most 128 is still 64
    assert lowfi_taus(_curves({1: d1}), small_ratio=4, min_learners=3).a_small.tolist() == [64]
    # too few learners at both sizes: the dataset is skipped
    assert lowfi_taus(_curves({2: d2}), min_learners=4).empty


def test_kendall_handles_constants():
    assert np.isnan(kendall([1, 1, 1], [1, 2, 3]))
    assert kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def _real_cached() -> bool:
    from companion.runtime import cache_dir
    return (cache_dir() / "lcdb" / "logloss_curves.parquet").exists()


@pytest.mark.skipif(not _real_cached() and not os.environ.get("CI"), reason="LCDB not in the cache (make setup fetches it)")
def test_real_lcdb(monkeypatch):
    monkeypatch.delenv("COMPANION_LCDB", raising=False)
    c = lcdb.load_lcdb_curves()
    assert c.openmlid.nunique() == 248 and c.learner.nunique() == 20
    assert int(c.n_seeds.sum()) == 1953371
    t = lowfi_taus(c, small_ratio=2, window=3, min_learners=10)
    assert len(t) > 200 and 0.8 < t.tau_raw.median() < 0.95
