"""Issue 10's hostile cases for the loaders: every one gives the right file and 1-based line, or a clear error."""
import gzip
import logging
import os
import random
import shutil

import numpy as np
import pytest
import torch

from companion.data import bars, ctr_formats as cf, movielens, stream as st
from companion.data.errors import DataFormatError
from companion.data.s3dis import KNOWN_DEFECTS, load_room, load_s3dis, repair_line
from companion.data.scannet import load_pointcept_scene

from test_bars import AMAZON_TEST, AMAZON_TRAIN, _write
from test_data_formats import AVAZU_HEADER, avazu_lines, criteo_lines, kdd_lines, write


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))


def raises_at(path, line, match=""):
    return pytest.raises(DataFormatError, match=rf"^{path}:{line}: {match}")


# --- blank lines keep line numbers physical -------------------------------------------------------------------

def test_blank_lines_do_not_shift_line_numbers(tmp_path):
    lines = criteo_lines(12)
    lines[7] = "1\tabc" + lines[7][lines[7].index("\t", 2):]  # I1 = 'abc' on physical line 10 below
    text = "\n".join(lines[:3]) + "\n\n\n" + "\n".join(lines[3:]) + "\n"  # two blank lines after line 3
    path = tmp_path / "train.txt"
    path.write_text(text)
    with raises_at(path, 10, "field I1 is not an integer: 'abc'"):
        cf.read_criteo(path)
    a = avazu_lines(6)
    a[4] = a[4].replace(",1410", ",1499", 1)
    path = tmp_path / "train.csv"
    path.write_text("\n".join(a[:2]) + "\n\n" + "\n".join(a[2:]) + "\n")
    with raises_at(path, 6, "hour must be YYMMDDHH"):
        cf.read_avazu(path)
    k = kdd_lines(6)
    k[4] = "x" + k[4][1:]
    path = tmp_path / "training.txt"
    path.write_text("\n" + "\n".join(k) + "\n")
    with raises_at(path, 6, "field Click is not an integer"):
        cf.read_kdd2012(path)


def test_blank_line_in_movielens_keeps_the_line_number(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text("1\t10\t4\t881250949\n\n2\tten\t2\t881250950\n")
    (folder / "u.user").write_text("1|24|M|technician|85711\n")
    (folder / "u.item").write_text("10|T|01-Jan-1995||u|" + "|".join(["0"] * 19) + "\n")
    with raises_at(folder / "u.data", 3, "column 'item_id' is not an integer: 'ten'"):
        movielens.load_movielens100k(folder)


# --- short lines, block boundaries, gzip, encodings, numbers -------------------------------------------------

def test_short_line_is_an_error_not_padding(tmp_path):
    lines = criteo_lines(10)
    lines[5] = "\t".join(lines[5].split("\t")[:20])
    path = write(tmp_path / "day_0", lines)
    with raises_at(path, 6, "expected 40 fields, found 20"):
        cf.load_ctr_dataset("criteo", path)
    a = avazu_lines(5)
    a[3] = ",".join(a[3].split(",")[:5])
    path = write(tmp_path / "train.csv", a)
    with raises_at(path, 4, "expected 24 fields, found 5"):
        cf.read_avazu(path)


def _boundary_file(path, block, short_at_boundary=True):
    """Criteo lines whose newline falls on the last byte of the first ``block`` bytes; then a short line."""
    rng = random.Random(0)
    good = criteo_lines(1)[0]
    out, size = [], 0
    while size + len(good) + 1 < block - 200:
        out.append(good)
        size += len(good) + 1
    pad = block - size - 1  # the last line of the block must end exactly at byte block-1
    filler = good.split("\t")
    filler[-1] = "a" * (pad - len("\t".join(filler[:-1])) - 1)
    out.append("\t".join(filler))
    assert sum(len(x) + 1 for x in out) == block
    out.append("0\t1" if short_at_boundary else good)
    out += [good] * rng.randint(1, 3)
    path.write_text("\n".join(out) + "\n")


@pytest.mark.parametrize("block", [st.BLOCK, 4096])
def test_newline_at_a_block_boundary(tmp_path, monkeypatch, block):
    monkeypatch.setattr(st, "BLOCK", block)
    path = tmp_path / "train.txt"
    _boundary_file(path, block)
    n_first = path.read_bytes()[:block].count(b"\n")  # lines wholly inside the first block
    if block != st.BLOCK:  # (the full-size file is scanned once, below, to keep the test short)
        with raises_at(path, n_first + 1, "expected 40 fields, found 2"):
            cf.read_criteo(path)
    with raises_at(path, n_first + 1, "expected 40 fields, found 2"):
        cf.read_criteo(path, max_rows=n_first + 1)  # the row cap streams through FirstLines
    assert len(cf.read_criteo(path, max_rows=n_first)) == n_first  # the bad line is beyond the cap


@pytest.mark.parametrize("block", [7, 64, 1000])
def test_first_lines_counts_rows_across_blocks(monkeypatch, block):
    """FirstLines cuts after the n-th non-empty line whatever the block size and where blank lines fall."""
    import io

    monkeypatch.setattr(st, "BLOCK", block)
    rng = random.Random(block)
    lines = [("" if rng.random() < 0.3 else "x" * rng.randint(1, 30)) for _ in range(300)]
    data = ("\n".join(lines) + "\n").encode()
    for n in (1, 17, 100, 150):
        got = io.BufferedReader(st.FirstLines(io.BytesIO(data), n), buffer_size=block).read()
        nonempty = [i for i, ln in enumerate(lines) if ln]
        cut = sum(len(ln) + 1 for ln in lines[: nonempty[n - 1] + 1])
        assert got == data[:cut], n
    got = io.BufferedReader(st.FirstLines(io.BytesIO(data), 5, skip_lines=1), buffer_size=block).read()
    nonempty = [i for i, ln in enumerate(lines) if ln]
    assert got == data[: sum(len(ln) + 1 for ln in lines[: nonempty[5] + 1])]  # header + 5 rows


def test_gzip_reads_like_the_plain_file(tmp_path):
    lines = criteo_lines(200, seed=4)
    plain = write(tmp_path / "day_1", lines)
    gz = tmp_path / "day_1.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    a = cf.load_ctr_dataset("criteo", plain, min_count=2)
    b = cf.load_ctr_dataset("criteo", gz, min_count=2)
    assert torch.equal(a.train.sparse, b.train.sparse) and torch.equal(a.test.dense, b.test.dense)
    assert len(cf.read_criteo(gz, max_rows=50)) == 50
    bad = lines[:]
    bad[120] = bad[120] + "\textra"
    gz.write_bytes(gzip.compress(("\n".join(bad) + "\n").encode()))
    with raises_at(gz, 121, "expected 40 fields, found 41"):
        cf.read_criteo(gz)


def test_latin1_byte_names_file_and_line(tmp_path):
    lines = criteo_lines(8)
    data = ("\n".join(lines) + "\n").encode()
    cut = data.index(b"\n", data.index(b"\n") + 1) + 1  # start of line 3
    tab = data.index(b"\t", cut + 40)
    path = tmp_path / "train.txt"
    path.write_bytes(data[:tab] + b"\tcaf\xe9" + data[data.index(b"\t", tab + 1):])
    with raises_at(path, 3, r"not UTF-8: byte 0xe9"):
        cf.load_ctr_dataset("criteo", path, cache=False)


def test_python_only_integer_syntax_is_refused(tmp_path):
    lines = criteo_lines(6)
    parts = lines[2].split("\t")
    parts[1] = "1_0"
    lines[2] = "\t".join(parts)
    path = write(tmp_path / "train.txt", lines)
    with raises_at(path, 3, "field I1 is not an integer: '1_0'"):
        cf.read_criteo(path)


def test_out_of_range_labels_and_counts(tmp_path):
    k = kdd_lines(6)
    k[2] = "-1" + k[2][k[2].index("\t"):]
    path = write(tmp_path / "training.txt", k)
    with raises_at(path, 3, "field Click must be >= 0, got '-1'"):
        cf.load_ctr_dataset("kdd2012", path)
    a = avazu_lines(4)
    a[2] = ",".join([a[2].split(",")[0], "2", *a[2].split(",")[2:]])
    path = write(tmp_path / "train.csv", a)
    with raises_at(path, 3, "label must be 0 or 1, got '2'"):
        cf.read_avazu(path)


def test_avazu_calendar_dates(tmp_path):
    for hour, ok in (("14103123", True), ("14113100", False), ("14022900", False), ("16022900", True)):
        a = avazu_lines(3)
        a[2] = ",".join([*a[2].split(",")[:2], hour, *a[2].split(",")[3:]])
        path = write(tmp_path / "train.csv", a)
        if ok:
            df = cf.read_avazu(path)
            assert df["hour_of_day"].iloc[1] == str(int(hour[-2:]))
        else:
            with raises_at(path, 3, "hour must be YYMMDDHH"):
                cf.read_avazu(path)
    a = avazu_lines(2)
    a[1] = ",".join([*a[1].split(",")[:2], "14102100", *a[1].split(",")[3:]])  # 2014-10-21 was a Tuesday
    assert cf.read_avazu(write(tmp_path / "train.csv", a))["weekday"].iloc[0] == "1"


def test_bad_hash_buckets_and_options(tmp_path):
    path = write(tmp_path / "train.txt", criteo_lines(20))
    with pytest.raises(ValueError, match="hash_buckets must be an integer >= 2"):
        cf.load_ctr_dataset("criteo", path, hash_buckets=1)
    with pytest.raises(ValueError, match="min_count must be >= 1"):
        cf.load_ctr_dataset("criteo", path, min_count=0)
    s = cf.load_ctr_dataset("criteo", path, hash_buckets=2, cache=False)
    assert set(s.train.sparse.unique().tolist()) <= {0, 1}


def test_second_load_parses_nothing(tmp_path, monkeypatch):
    path = write(tmp_path / "train.txt", criteo_lines(300))
    first = cf.load_ctr_dataset("criteo", path, min_count=2)

    def no_parse(*a, **k):
        raise AssertionError("the cached load parsed the file again")

    monkeypatch.setattr(st, "batches", no_parse)
    again = cf.load_ctr_dataset("criteo", path, min_count=2)
    assert "cached" in again.info and torch.equal(again.valid.sparse, first.valid.sparse)
    os.utime(path, ns=(1, 1))  # a changed mtime is a different entry: parsed again
    with pytest.raises(AssertionError, match="parsed the file again"):
        cf.load_ctr_dataset("criteo", path, min_count=2)


def test_vocabulary_counts_training_rows_only(tmp_path):
    """A category seen only in valid/test rows maps to 0, one seen min_count times in train gets an id."""
    lines = criteo_lines(400, seed=9)
    s = cf.load_ctr_dataset("criteo", write(tmp_path / "t.txt", lines), min_count=1, seed=3, cache=False)
    tr, va, te = (set(getattr(s, p).sparse[:, 0].tolist()) for p in ("train", "valid", "test"))
    assert 0 not in tr or any(l.split("\t")[14] == "" for l in lines)
    assert max(tr | va | te) < s.schema.sparse[0].vocab_size


# --- BARS -----------------------------------------------------------------------------------------------------

def test_bars_header_only_is_an_error(tmp_path):
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN.splitlines()[0] + "\n", AMAZON_TEST)
    with pytest.raises(DataFormatError, match=r"train\.csv: has a header but no data rows"):
        bars.load_bars("AmazonElectronics_x1", root=tmp_path, verify_md5=False)


def test_bars_blank_line_and_latin1(tmp_path):
    text = AMAZON_TRAIN.replace("1,u2,i1,c1,i5,c3\n", "\n1,u2,i1,c1,i5,c3\n0,u2,i2,c2,\xe9,\n")
    d = _write(tmp_path, "AmazonElectronics_x1", "", AMAZON_TEST)
    (d / "train.csv").write_bytes(text.encode("latin-1"))
    with raises_at(d / "train.csv", 6, "not UTF-8: byte 0xe9"):
        bars.load_bars("AmazonElectronics_x1", root=tmp_path, verify_md5=False)


def test_bars_md5_is_checked(tmp_path, monkeypatch):
    import dataclasses
    import hashlib

    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN, AMAZON_TEST)
    with pytest.raises(DataFormatError, match=r"train\.csv: md5 [0-9a-f]{32} does not match the published "
                                              "e9bf80b92985e463db18fdc753d347b5"):
        bars.load_bars("AmazonElectronics_x1", root=tmp_path)
    sums = {"train.csv": hashlib.md5(AMAZON_TRAIN.encode()).hexdigest(),
            "test.csv": hashlib.md5(AMAZON_TEST.encode()).hexdigest()}
    spec = dataclasses.replace(bars.BARS_SPECS["AmazonElectronics_x1"], md5=sums)
    monkeypatch.setitem(bars.BARS_SPECS, "AmazonElectronics_x1", spec)
    assert len(bars.load_bars("AmazonElectronics_x1", root=tmp_path, seed=1).train) == 4  # the right sums pass
    calls = []
    monkeypatch.setattr(bars, "md5sum", lambda p: calls.append(p) or "x")
    bars.load_bars("AmazonElectronics_x1", root=tmp_path, seed=2)  # a new entry, but the files were checked
    assert calls == []


def test_amazon_user_id_is_meta(tmp_path):
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN, AMAZON_TEST)
    sp = bars.load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0, verify_md5=False)
    assert "user_id" not in [f.name for f in sp.schema.fields] and sp.train.sparse.shape[1] == 2
    assert sp.train.group.tolist() == [0, 0, 1, 1, 2] and sp.test.group.tolist() == [0, 3]  # u1 u1 u2 u2 u3 | u1 u4


KUAI = ("index,user_id,item_id,is_click,is_like,is_follow,pos_items,neg_items\n"
        + "\n".join(f"{i},u{i % 3},{i % 5},{i % 2},0,0,1^2,3" for i in range(40)) + "\n")


def test_kuaivideo_visual_embeddings_from_h5(tmp_path, caplog):
    import h5py

    d = _write(tmp_path, "KuaiVideo_x1", KUAI, KUAI)
    with caplog.at_level(logging.WARNING, logger="companion"):
        plain = bars.load_bars("KuaiVideo_x1", root=tmp_path, valid_fraction=0, cache=False, verify_md5=False)
    assert "item_visual_emb_dim64.h5 not found" in caplog.text and not plain.pretrained
    vectors = np.arange(6 * 64, dtype=np.float32).reshape(6, 64)  # items 0..5, as the BARS script writes them
    with h5py.File(d / "item_visual_emb_dim64.h5", "w") as hf:
        hf.create_dataset("key", data=list(range(6)))
        hf.create_dataset("value", data=vectors)
    sp = bars.load_bars("KuaiVideo_x1", root=tmp_path, valid_fraction=0, verify_md5=False)
    names = [f.name for f in sp.schema.fields]
    assert names == ["user_id", "item_id", "item_emb", "pos_items", "neg_items", "pos_items_emb", "neg_items_emb"]
    assert sp.schema["item_emb"].pretrained == "item_emb" and sp.schema["pos_items_emb"].share_with == "item_emb"
    table = sp.pretrained["item_emb"]
    assert table.shape == (8, 64) and float(table[:2].abs().sum()) == 0
    for row in (0, 7, 13):  # item i % 5 -> its own vector
        assert torch.equal(table[sp.train.sparse[row, 2]], torch.from_numpy(vectors[row % 5]))
    assert torch.equal(table[sp.train.seq[0, 2, -1]], torch.from_numpy(vectors[2]))  # pos_items 1^2: last is 2
    assert sp.train.seq.shape == (40, 4, 100)
    with h5py.File(d / "item_visual_emb_dim64.h5", "w") as hf:
        hf.create_dataset("key", data=list(range(6)))
        hf.create_dataset("value", data=vectors[:, :32])
    with pytest.raises(DataFormatError, match=r"item_visual_emb_dim64.h5: expected 'value' of shape \[len\(key\)=6, 64\]"):
        bars.load_bars("KuaiVideo_x1", root=tmp_path, valid_fraction=0, verify_md5=False)


# --- S3DIS and ScanNet ----------------------------------------------------------------------------------------

def _ceiling(root, rel, n_lines, bad_line, bad_text):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(0, 10, (n_lines, 3)).round(3), rng.integers(0, 256, (n_lines, 3))]
    rows = [f"{x:.3f} {y:.3f} {z:.3f} {int(r)} {int(g)} {int(b)}" for x, y, z, r, g, b in pts]
    rows[bad_line - 1] = bad_text
    path.write_text("\n".join(rows) + "\n", encoding="latin-1")
    return path, pts


# Reconstructions: the issue and the public reports give the (file, line) pairs, not the bytes; the release notes
# seen describe "a wrong character" on each line. One stray control byte between two numbers (5 fields left) and
# one inside a number are both covered.
DEFECTS = [("Area_5/hallway_6/Annotations/ceiling_1.txt", 180389, "22.350 6.692 3.048 187\x10186 181",
            [22.35, 6.692, 3.048, 187, 186, 181]),
           ("Area_5/office_19/Annotations/ceiling_1.txt", 323474, "19.237 -17.208 3.054 103.0\x1000 118 120",
            [19.237, -17.208, 3.054, 103.0, 118, 120])]


@pytest.mark.parametrize("rel, line, text, values", DEFECTS)
def test_known_s3dis_defects_are_repaired_with_a_warning(tmp_path, caplog, rel, line, text, values):
    assert (rel, line) in KNOWN_DEFECTS
    path, pts = _ceiling(tmp_path, rel, line + 5, line, text)
    with caplog.at_level(logging.WARNING, logger="companion"):
        room = load_room(path.parent.parent)
    assert f"{path}:{line}: known defect" in caplog.text
    assert room["coord"].shape == (line + 5, 3)
    assert np.allclose(room["coord"][line - 1], values[:3], atol=1e-3)
    assert room["color"][line - 1].tolist() == values[3:]
    assert room["color"][line].tolist() == pts[line, 3:].astype(int).tolist()


@pytest.mark.parametrize("rel, line, text, values", DEFECTS)
def test_the_same_bytes_elsewhere_still_raise(tmp_path, rel, line, text, values):
    path, _ = _ceiling(tmp_path, rel, line + 5, line + 1, text)  # one line off
    with pytest.raises(ValueError, match=rf"ceiling_1.txt:{line + 1}: "):
        load_room(path.parent.parent)
    path.unlink()
    other, _ = _ceiling(tmp_path, rel.replace("ceiling_1", "ceiling_2"), line + 5, line, text)  # same line, other file
    with pytest.raises(ValueError, match=rf"ceiling_2.txt:{line}: "):
        load_room(other.parent.parent)


def test_repair_line_refuses_what_it_cannot_explain():
    assert repair_line(b"1 2 3 4\x105 6") == b"1 2 3 4 5 6"
    assert repair_line(b"1 2 3 4 5.\x105 6") == b"1 2 3 4 5.5 6"  # inside a number: removed
    assert repair_line(b"1 2 3 4 5") is None and repair_line(b"1 2 x 4 5 6") is None


def test_s3dis_colour_out_of_range_and_python_only_numbers(tmp_path):
    ann = tmp_path / "Area_1" / "office_1" / "Annotations"
    ann.mkdir(parents=True)
    f = ann / "chair_1.txt"
    f.write_text("0 0 0 1 2 3\n\n0 0 0 300 2 3\n")
    with pytest.raises(ValueError, match=r"chair_1.txt:3: colour \[300.0, 2.0, 3.0\] is outside 0..255"):
        load_room(ann.parent)
    f.write_text("0 0 0 1 2 3\n0 1_0 0 1 2 3\n")
    with pytest.raises(ValueError, match=r"chair_1.txt:2: not a number"):
        load_room(ann.parent)


def test_s3dis_missing_training_areas_are_named(tmp_path, caplog):
    for room in ("Area_1/office_1", "Area_3/office_1", "Area_5/hallway_1"):
        ann = tmp_path / room / "Annotations"
        ann.mkdir(parents=True)
        (ann / "wall_1.txt").write_text("0 0 0 1 2 3\n1 1 1 4 5 6\n")
    with caplog.at_level(logging.WARNING, logger="companion"):
        train, test = load_s3dis(tmp_path, test_area=5)
    assert "lacks Area_2, Area_4, Area_6: training on Area_1, Area_3 only" in caplog.text
    assert len(train) == 2 and len(test) == 1


def test_pointcept_colour_and_label_ranges(tmp_path):
    scene = tmp_path / "scene0003_00"
    scene.mkdir()
    np.save(scene / "coord.npy", np.zeros((3, 3), np.float32))
    np.save(scene / "color.npy", np.array([[1, 2, 3], [300.0, 0, 0], [4, 5, 6]], np.float32))
    np.save(scene / "segment20.npy", np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"color.npy: row 1: colour \[300.0, 0.0, 0.0\] is outside 0..255"):
        load_pointcept_scene(scene)
    np.save(scene / "color.npy", np.ones((3, 3), np.float32) * 255)
    np.save(scene / "segment20.npy", np.array([0, 99, -1]))
    with pytest.raises(ValueError, match=r"segment20.npy: row 1: label 99 is outside -1..19"):
        load_pointcept_scene(scene)
    np.save(scene / "segment20.npy", np.array([0, 19, -1]))
    s = load_pointcept_scene(scene)
    assert s["color"].dtype == np.uint8 and s["color"].max() == 255 and s["segment"].tolist() == [0, 19, -1]


# --- MovieLens checksums --------------------------------------------------------------------------------------

def test_movielens_cache_checksum_is_checked(tmp_path, monkeypatch):
    src = None
    for base in (os.environ.get("COMPANION_CACHE_REAL"), os.path.expanduser("~/.cache/paper-companion")):
        if base and (os.path.isdir(os.path.join(base, "movielens100k"))):
            src = os.path.join(base, "movielens100k")
    if src is None:
        pytest.skip("no cached MovieLens copy to tamper with")
    dest = tmp_path / "cache" / "movielens100k"
    shutil.copytree(src, dest)
    assert len(movielens.load_movielens100k().ratings) == 100000
    (dest / "SOURCE.txt").write_text("sha256 of the parquet tables: " + "0" * 64 + "\n")
    with pytest.raises(DataFormatError, match="does not match the one recorded at extraction"):
        movielens.load_movielens100k()
    import pandas as pd

    ratings = pd.read_parquet(dest / "ratings.parquet")
    ratings.loc[0, "rating"] = ratings.loc[0, "rating"] % 5 + 1  # one rating changed
    with pytest.raises(DataFormatError, match="is not MovieLens-100K's"):
        movielens.check_ratings(ratings, dest)
