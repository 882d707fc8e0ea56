"""The bounded-memory split of large converted files (``stream.split_assignment`` / ``holdout_assignment``)."""
import tracemalloc

import numpy as np
import pytest

from companion.data import stream as st
from companion.data.schema import split_indices


def _old_split(n, fractions, seed):
    tr, va, te = split_indices(n, fractions, seed)
    out = np.empty(n, np.uint8)
    out[tr.numpy()], out[va.numpy()], out[te.numpy()] = 0, 1, 2
    return out


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_small_files_keep_the_single_permutation(n):
    assert np.array_equal(st.split_assignment(n, (0.8, 0.1, 0.1), 3), _old_split(n, (0.8, 0.1, 0.1), 3))


def test_small_holdout_keeps_the_old_draw():
    n, frac, seed = 501, 0.1, 4
    old = np.zeros(n, np.uint8)
    old[np.random.default_rng(seed).permutation(n)[:max(1, int(round(n * frac)))]] = 1
    assert np.array_equal(st.holdout_assignment(n, frac, seed), old)


@pytest.mark.parametrize("n,block", [(1000, 64), (1000, 999), (1001, 100), (12345, 1000)])
def test_blockwise_split_has_the_single_draw_totals_and_even_blocks(n, block):
    fr = (0.8, 0.1, 0.1)
    got = st.split_assignment(n, fr, 0, block=block)
    ref = _old_split(n, fr, 0)
    assert np.bincount(got, minlength=3).tolist() == np.bincount(ref, minlength=3).tolist()
    for lo in range(0, n, block):  # each block within one row of its share
        part = got[lo:lo + block]
        counts = np.bincount(part, minlength=3)
        assert np.all(np.abs(counts - np.array(fr) * len(part)) <= 1.0 + 1e-9), (lo, counts)
    assert not np.array_equal(got, ref)  # really blockwise, not the single permutation
    assert np.array_equal(got, st.split_assignment(n, fr, 0, block=block))  # same seed, same split
    assert not np.array_equal(got, st.split_assignment(n, fr, 1, block=block))


def test_blockwise_holdout_total_is_exact():
    n, block = 10_007, 1000
    got = st.holdout_assignment(n, 0.1, 2, block=block)
    assert int(got.sum()) == round(n * 0.1)
    assert set(np.unique(got).tolist()) == {0, 1}


def test_split_memory_is_one_block_not_all_rows():
    n = 20_000_000  # a single permutation of these rows would be 160 MB of int64
    tracemalloc.start()
    try:
        got = st.split_assignment(n, (0.8, 0.1, 0.1), 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(got) == n
    assert peak < n + 3 * 8 * st.SPLIT_BLOCK, f"peak {peak / 2**20:.0f} MiB"


# --- columns converted a slice at a time give the same data as whole-column conversion --------------------------

def _tensors(splits):
    return {f"{part}.{k}": getattr(getattr(splits, part), k) for part in ("train", "valid", "test")
            for k in ("dense", "sparse", "label", "seq", "group") if getattr(getattr(splits, part), k, None) is not None}


@pytest.mark.parametrize("hash_buckets", [None, 97])
def test_criteo_sliced_columns_equal_whole_columns(tmp_path, monkeypatch, hash_buckets):
    from companion.data import ctr_formats as cf
    from test_data_formats import criteo_lines, write

    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))
    path = write(tmp_path / "train.txt", criteo_lines(500, seed=5))
    whole = cf.load_ctr_dataset("criteo", path, min_count=2, hash_buckets=hash_buckets, cache=False)
    monkeypatch.setattr(st, "SLICE_ROWS", 37)  # many slices, boundaries inside parse batches
    sliced = cf.load_ctr_dataset("criteo", path, min_count=2, hash_buckets=hash_buckets, cache=False)
    a, b = _tensors(whole), _tensors(sliced)
    assert a.keys() == b.keys() and all(torch_equal(a[k], b[k]) for k in a)
    assert [f.vocab_size for f in whole.schema.fields] == [f.vocab_size for f in sliced.schema.fields]


def test_bars_sliced_columns_equal_whole_columns(tmp_path, monkeypatch):
    from companion.data import bars
    from test_bars import AMAZON_TEST, AMAZON_TRAIN, _write

    _write(tmp_path, "AmazonElectronics_x1", AMAZON_TRAIN, AMAZON_TEST)
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path / "cache"))
    whole = bars.load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0.2, cache=False, verify_md5=False)
    monkeypatch.setattr(st, "SLICE_ROWS", 2)
    sliced = bars.load_bars("AmazonElectronics_x1", root=tmp_path, valid_fraction=0.2, cache=False, verify_md5=False)
    a, b = _tensors(whole), _tensors(sliced)
    assert a.keys() == b.keys() and all(torch_equal(a[k], b[k]) for k in a)
    assert sliced.train.group.tolist() == whole.train.group.tolist()


def torch_equal(x, y):
    import torch

    return x.shape == y.shape and bool(torch.equal(x, y))


def test_spool_slices_cut_exactly(tmp_path):
    import pyarrow as pa

    sp = st.StringSpool(tmp_path / "c.arrow")
    for lo, hi in ((0, 5), (5, 6), (6, 20)):
        sp.append(pa.array([str(i) for i in range(lo, hi)]))
    sp.close()
    got = [(at, arr.to_pylist()) for at, arr in sp.slices(4)]
    assert [at for at, _ in got] == [0, 4, 8, 12, 16]
    assert [len(v) for _, v in got] == [4, 4, 4, 4, 4]
    assert sum((v for _, v in got), []) == [str(i) for i in range(20)]
