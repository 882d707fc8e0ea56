"""ScanNet's official train/val lists decide the split when they are present; otherwise the re-split says so."""
import numpy as np
import pytest

from companion.data.scannet import scannet_splits


def _scene(root, name, n=6):
    d = root / name
    d.mkdir(parents=True)
    np.save(d / "coord.npy", np.random.default_rng(0).random((n, 3)).astype(np.float32))
    np.save(d / "color.npy", np.zeros((n, 3), np.uint8))
    np.save(d / "segment20.npy", np.arange(n) % 20)


def test_official_lists_make_val_the_test_set(tmp_path):
    names = [f"scene{i:04d}_00" for i in range(12)]
    for n in names:
        _scene(tmp_path, n)
    (tmp_path / "scannetv2_train.txt").write_text("\n".join(names[:10]) + "\n")
    (tmp_path / "scannetv2_val.txt").write_text("\n".join(names[10:]) + "\n")
    train, valid, test, how = scannet_splits(tmp_path)
    assert [s["name"] for s in test] == names[10:]
    assert [s["name"] for s in train] == names[:9] and [s["name"] for s in valid] == [names[9]]
    assert how.startswith("official split")


def test_lists_in_the_parent_folder_and_partial_download(tmp_path):
    scans = tmp_path / "scans"
    for n in ("scene0000_00", "scene0001_00", "scene0002_00"):
        _scene(scans, n)
    (tmp_path / "scannetv2_train.txt").write_text("scene0000_00\nscene0001_00\nscene0099_00\n")
    (tmp_path / "scannetv2_val.txt").write_text("scene0002_00\n")
    train, valid, test, how = scannet_splits(scans)
    assert len(train) + len(valid) == 2 and "2 of 3 train scenes" in how


def test_without_lists_the_resplit_is_flagged(tmp_path):
    for i in range(10):
        _scene(tmp_path, f"scene{i:04d}_00")
    train, valid, test, how = scannet_splits(tmp_path)
    assert (len(train), len(valid), len(test)) == (7, 1, 2)
    assert "not comparable" in how


def test_bad_split_lists_are_named(tmp_path):
    _scene(tmp_path, "scene0000_00")
    (tmp_path / "scannetv2_train.txt").write_text("scene0000_00\nrubbish\n")
    (tmp_path / "scannetv2_val.txt").write_text("scene0000_00\n")
    with pytest.raises(ValueError, match=r"scannetv2_train.txt:2"):
        scannet_splits(tmp_path)
    (tmp_path / "scannetv2_train.txt").write_text("scene0000_00\n")
    with pytest.raises(ValueError, match="both split lists"):
        scannet_splits(tmp_path)


@pytest.mark.parametrize("root", ["", "."])
def test_empty_root_names_the_knob(root):
    with pytest.raises(FileNotFoundError, match="needs data_root"):
        scannet_splits(root)
