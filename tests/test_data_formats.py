"""Loaders on small fixture files written here in each dataset's real on-disk format."""
import random

import pytest
import torch

from companion.data import ctr_formats as cf
from companion.data.errors import DataFormatError, MissingDataError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))


def criteo_lines(n=120, seed=0):
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        dense = [str(rng.randint(-1, 40)) if rng.random() > 0.2 else "" for _ in range(13)]
        sparse = [f"{rng.randint(0, 6):08x}" if rng.random() > 0.1 else "" for _ in range(26)]
        lines.append("\t".join([str(rng.randint(0, 1)), *dense, *sparse]))
    return lines


def write(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_criteo_reads_preprocesses_and_caches(tmp_path):
    path = write(tmp_path / "train.txt", criteo_lines())
    s = cf.load_ctr_dataset("criteo", path, min_count=2)
    assert len(s.train) + len(s.valid) + len(s.test) == 120
    assert s.train.dense.shape[1] == 13 and s.train.sparse.shape[1] == 26
    assert all(f.vocab_size <= 8 for f in s.schema.sparse)  # 7 hex values + the rare/missing id 0
    assert int(s.train.sparse.max()) < max(f.vocab_size for f in s.schema.sparse)
    assert float(s.train.dense.min()) >= 0  # log1p of clipped counts
    again = cf.load_ctr_dataset("criteo", path, min_count=2)
    assert "cached" in again.info
    assert torch.equal(again.train.sparse, s.train.sparse) and torch.allclose(again.test.dense, s.test.dense)


def test_criteo_terabyte_day_file_and_max_rows(tmp_path):
    path = write(tmp_path / "day_0", criteo_lines(50, seed=1))
    s = cf.load_ctr_dataset("criteo", path, max_rows=30, hash_buckets=64, cache=False)
    assert len(s.train) + len(s.valid) + len(s.test) == 30
    assert all(f.vocab_size == 64 for f in s.schema.sparse)


@pytest.mark.parametrize("mutate, line, message", [
    (lambda ls: ls.__setitem__(4, ls[4].rsplit("\t", 1)[0]), 5, "expected 40 fields, found 39"),
    (lambda ls: ls.__setitem__(6, ls[6] + "\textra"), 7, "expected 40 fields, found 41"),
    (lambda ls: ls.__setitem__(2, "1\tabc" + ls[2].split("\t", 2)[2][0:0] + "\t" + ls[2].split("\t", 2)[2]), 3, "field I1 is not an integer: 'abc'"),
    (lambda ls: ls.__setitem__(9, "2" + ls[9][1:]), 10, "label must be 0 or 1"),
])
def test_criteo_malformed_lines_name_file_and_line(tmp_path, mutate, line, message):
    lines = criteo_lines(20)
    mutate(lines)
    path = write(tmp_path / "bad.txt", lines)
    with pytest.raises(DataFormatError, match=message) as err:
        cf.read_criteo(path)
    assert str(err.value).startswith(f"{path}:{line}:")


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="empty"):
        cf.load_ctr_dataset("criteo", empty)
    with pytest.raises(MissingDataError) as err:
        cf.load_ctr_dataset("avazu", tmp_path / "nowhere" / "train.csv")
    assert "nowhere/train.csv" in str(err.value) and "Put the Avazu" in str(err.value)
    with pytest.raises(ValueError, match="unknown CTR dataset"):
        cf.load_ctr_dataset("critio", empty)


AVAZU_HEADER = ("id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,app_category,device_id,"
                "device_ip,device_model,device_type,device_conn_type,C14,C15,C16,C17,C18,C19,C20,C21")


def avazu_lines(n=60):
    rng = random.Random(2)
    rows = [AVAZU_HEADER]
    for i in range(n):
        vals = [str(10**18 + i), str(rng.randint(0, 1)), f"1410{21 + rng.randint(0, 8):02d}{rng.randint(0, 23):02d}"]
        vals += [f"{rng.randint(0, 4):x}" for _ in range(21)]
        rows.append(",".join(vals))
    return rows


def test_avazu_reads_and_derives_time_fields(tmp_path):
    s = cf.load_ctr_dataset("avazu", write(tmp_path / "train.csv", avazu_lines()), min_count=1)
    names = [f.name for f in s.schema.sparse]
    assert "hour_of_day" in names and "weekday" in names and "click" not in names and "id" not in names
    assert len(s.schema.dense) == 0 and len(names) == 23


def test_avazu_bad_hour_names_line(tmp_path):
    lines = avazu_lines(10)
    parts = lines[5].split(",")
    parts[2] = "14109999"
    lines[5] = ",".join(parts)
    with pytest.raises(DataFormatError, match=r"train.csv:6: hour must be YYMMDDHH"):
        cf.read_avazu(write(tmp_path / "train.csv", lines))


def kdd_lines(n=40):
    rng = random.Random(3)
    return ["\t".join(str(v) for v in [rng.randint(0, 2), rng.randint(1, 3)] + [rng.randint(0, 9) for _ in range(10)]) for _ in range(n)]


def test_kdd2012_reads_and_labels_clicks(tmp_path):
    lines = kdd_lines()
    s = cf.load_ctr_dataset("kdd2012", write(tmp_path / "training.txt", lines), min_count=1, seed=1)
    assert len(s.schema.sparse) == 10
    n_click = sum(int(l.split("\t")[0]) > 0 for l in lines)
    total = s.train.label.sum() + s.valid.label.sum() + s.test.label.sum()
    assert int(total) == n_click


def test_kdd2012_non_integer_names_line(tmp_path):
    lines = kdd_lines(8)
    lines[3] = lines[3].replace("\t", "\tx", 1)
    with pytest.raises(DataFormatError, match=r"training.txt:4: field Impression is not an integer"):
        cf.read_kdd2012(write(tmp_path / "training.txt", lines))
