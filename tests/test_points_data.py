import json

import numpy as np
import pytest

from companion.data.rooms import S3DIS_CLASSES, class_frequencies, make_room, make_rooms
from companion.data.s3dis import load_room, load_s3dis
from companion.data.scannet import load_pointcept_scene, load_scannet, load_scene, nyu40_to_scannet20


def test_rooms_are_reproducible_and_cover_classes():
    a, b = make_room(7, 3000), make_room(7, 3000)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    rooms = make_rooms(6, seed=1, n_points=4000)
    freq = class_frequencies(rooms)
    assert (freq > 0).sum() >= 11 and freq.argmax() == S3DIS_CLASSES.index("wall")
    r = rooms[0]
    assert r["coord"].shape == (4000, 3) and r["color"].dtype == np.uint8
    assert np.allclose(np.linalg.norm(r["normal"], axis=1), 1, atol=1e-5)
    floor = r["segment"] == S3DIS_CLASSES.index("floor")
    assert abs(np.median(r["coord"][floor, 2])) < 0.05


def write_s3dis(root):
    objs = {"Area_1/office_1": {"chair_1": 5, "wall_1": 7, "stairs_1": 2}, "Area_5/hallway_1": {"floor_1": 4}}
    for room, items in objs.items():
        ann = root / room / "Annotations"
        ann.mkdir(parents=True)
        for name, n in items.items():
            rows = [f"{i * 0.1:.3f} {i * 0.2:.3f} 1.000 {10 + i} 20 30" for i in range(n)]
            (ann / f"{name}.txt").write_text("\n".join(rows) + "\n")


def test_s3dis_loader_on_fixture(tmp_path):
    write_s3dis(tmp_path)
    room = load_room(tmp_path / "Area_1" / "office_1")
    assert room["coord"].shape == (14, 3)
    counts = np.bincount(room["segment"], minlength=13)
    assert counts[S3DIS_CLASSES.index("chair")] == 5 and counts[S3DIS_CLASSES.index("wall")] == 7
    assert counts[S3DIS_CLASSES.index("clutter")] == 2  # stairs -> clutter
    assert len(np.unique(room["instance"])) == 3
    assert room["color"][room["segment"] == S3DIS_CLASSES.index("chair")][1].tolist() == [11, 20, 30]
    train, test = load_s3dis(tmp_path, test_area=5)
    assert len(train) == 1 and len(test) == 1 and test[0]["name"] == "Area_5/hallway_1"


def test_s3dis_errors_name_file_and_line(tmp_path):
    write_s3dis(tmp_path)
    bad = tmp_path / "Area_1" / "office_1" / "Annotations" / "chair_1.txt"
    bad.write_text("0 0 0 1 2 3\n0 0 0 1 2\n")
    with pytest.raises(ValueError, match=r"chair_1.txt:2"):
        load_room(tmp_path / "Area_1" / "office_1")
    bad.write_text("0 0 0 1 2 3\n0 0 x 1 2 3\n")
    with pytest.raises(ValueError, match=r"chair_1.txt:2: not a number"):
        load_room(tmp_path / "Area_1" / "office_1")
    with pytest.raises(FileNotFoundError, match="Area_1 ... Area_6"):
        load_s3dis(tmp_path / "nowhere")


def write_ply(path, props, rows, binary=True):
    from plyfile import PlyData, PlyElement

    arr = np.array([tuple(r) for r in rows], dtype=props)
    PlyData([PlyElement.describe(arr, "vertex")], text=not binary).write(str(path))


VERT = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")]


@pytest.mark.parametrize("binary", [True, False])
def test_scannet_raw_scene_with_labels_ply(tmp_path, binary):
    scene = tmp_path / "scene0000_00"
    scene.mkdir()
    rows = [(i, 2 * i, 0.5, 10 * i, 0, 255, 255) for i in range(4)]
    write_ply(scene / "scene0000_00_vh_clean_2.ply", VERT, rows, binary)
    write_ply(scene / "scene0000_00_vh_clean_2.labels.ply", VERT + [("label", "u2")],
              [r + (lab,) for r, lab in zip(rows, [1, 5, 13, 39])], binary)
    s = load_scene(scene)
    assert s["coord"][2].tolist() == [2, 4, 0.5] and s["color"][1].tolist() == [10, 0, 255]
    assert s["segment"].tolist() == [0, 4, -1, 19]  # 13 (pillow) is not a benchmark class
    assert len(load_scannet(tmp_path)) == 1


def test_scannet_aggregation_route_and_errors(tmp_path):
    scene = tmp_path / "scene0001_00"
    scene.mkdir()
    write_ply(scene / "scene0001_00_vh_clean_2.ply", VERT, [(i, 0, 0, 1, 2, 3, 255) for i in range(5)])
    (scene / "scene0001_00_vh_clean_2.0.010000.segs.json").write_text(json.dumps({"segIndices": [7, 7, 8, 9, 9]}))
    (scene / "scene0001_00.aggregation.json").write_text(json.dumps(
        {"segGroups": [{"id": 0, "label": "office chair", "segments": [7]}, {"id": 1, "label": "wall", "segments": [9]}]}))
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("id\traw_category\tnyu40id\n1\toffice chair\t5\n2\twall\t1\n")
    s = load_scene(scene, label_tsv=tsv)
    assert s["segment"].tolist() == [4, 4, -1, 0, 0] and s["instance"].tolist() == [0, 0, -1, 1, 1]
    with pytest.raises(FileNotFoundError, match="no labels"):
        load_scene(scene)  # no tsv and no labels.ply
    tsv.write_text("id\traw_category\tnyu40id\n1\toffice chair\tfive\n")
    with pytest.raises(ValueError, match=r"labels.tsv:2"):
        load_scene(scene, label_tsv=tsv)
    (scene / "scene0001_00_vh_clean_2.ply").write_text("ply\nformat nonsense\n")
    with pytest.raises(ValueError, match="scene0001_00_vh_clean_2.ply"):
        load_scene(scene, label_tsv=tsv)


def test_pointcept_npy_scene(tmp_path):
    scene = tmp_path / "scene0002_00"
    scene.mkdir()
    np.save(scene / "coord.npy", np.zeros((3, 3), np.float32))
    np.save(scene / "color.npy", np.ones((3, 3), np.uint8))
    np.save(scene / "segment20.npy", np.array([0, -1, 5]))
    s = load_pointcept_scene(scene)
    assert s["segment"].tolist() == [0, -1, 5]
    np.save(scene / "segment20.npy", np.array([0, 1]))
    with pytest.raises(ValueError, match="segment20.npy"):
        load_pointcept_scene(scene)
    assert nyu40_to_scannet20(np.array([39, 40, 0])).tolist() == [19, -1, -1]
