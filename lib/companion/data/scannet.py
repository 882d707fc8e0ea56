"""ScanNet v2 loader: raw scans (``<scene>_vh_clean_2.ply`` + labels) or Pointcept's preprocessed npy folders.

Labels come either from ``<scene>_vh_clean_2.labels.ply`` (a NYU40 id per vertex) or from the over-segmentation
(``..._vh_clean_2.0.010000.segs.json``) plus ``<scene>.aggregation.json`` and ``scannetv2-labels.combined.tsv``.
The 20 benchmark classes are the NYU40 ids below; every other id is ignored (-1). PLY files are read with
``plyfile``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

SCANNET20_CLASSES = ("wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
                     "picture", "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink",
                     "bathtub", "otherfurniture")
SCANNET20_NYU40 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
HOW_TO_GET = ("Get ScanNet v2 through its terms of use (scannet.org) and pass the scans/ folder that holds "
              "sceneXXXX_YY/ directories, or a Pointcept-preprocessed train|val/sceneXXXX_YY/ folder.")


def nyu40_to_scannet20(nyu40: np.ndarray) -> np.ndarray:
    lut = np.full(256, -1, dtype=np.int64)
    lut[list(SCANNET20_NYU40)] = np.arange(len(SCANNET20_NYU40))
    nyu40 = np.asarray(nyu40, dtype=np.int64)
    out = np.full(nyu40.shape, -1, dtype=np.int64)
    ok = (nyu40 >= 0) & (nyu40 < 256)
    out[ok] = lut[nyu40[ok]]
    return out


def _read_ply_vertices(path: Path):
    try:
        from plyfile import PlyData
    except ImportError as err:  # pragma: no cover - plyfile is a dependency
        raise ImportError("reading ScanNet .ply files needs plyfile (pip install plyfile)") from err
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found. {HOW_TO_GET}")
    try:
        ply = PlyData.read(str(path))
    except Exception as err:
        raise ValueError(f"{path}: not a readable PLY file ({err})") from err
    if "vertex" not in ply:
        raise ValueError(f"{path}: PLY file has no 'vertex' element")
    return ply["vertex"].data


def read_label_tsv(path: str | Path) -> dict[str, int]:
    """raw_category -> nyu40id from ``scannetv2-labels.combined.tsv``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; it ships with ScanNet as scannetv2-labels.combined.tsv")
    out = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if reader.fieldnames is None or not {"raw_category", "nyu40id"} <= set(reader.fieldnames):
            raise ValueError(f"{path}:1: header must contain raw_category and nyu40id columns")
        for lineno, row in enumerate(reader, 2):
            try:
                out[row["raw_category"]] = int(row["nyu40id"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{lineno}: nyu40id {row.get('nyu40id')!r} is not an integer") from None
    return out


def load_scene(scene_dir: str | Path, label_tsv: str | Path | None = None) -> dict:
    """One raw scan as coord, color (uint8), segment (20-class id, -1 ignored) and instance (-1 if none)."""
    scene_dir = Path(scene_dir)
    name = scene_dir.name
    v = _read_ply_vertices(scene_dir / f"{name}_vh_clean_2.ply")
    missing = [k for k in ("x", "y", "z", "red", "green", "blue") if k not in v.dtype.names]
    if missing:
        raise ValueError(f"{scene_dir / (name + '_vh_clean_2.ply')}: vertex element lacks {missing}")
    coord = np.stack([v["x"], v["y"], v["z"]], 1).astype(np.float32)
    color = np.stack([v["red"], v["green"], v["blue"]], 1).astype(np.uint8)
    n = len(coord)
    segment = np.full(n, -1, dtype=np.int64)
    instance = np.full(n, -1, dtype=np.int64)
    labels_ply = scene_dir / f"{name}_vh_clean_2.labels.ply"
    segs = scene_dir / f"{name}_vh_clean_2.0.010000.segs.json"
    agg = scene_dir / f"{name}.aggregation.json"
    if segs.is_file() and agg.is_file() and label_tsv is not None:
        mapping = read_label_tsv(label_tsv)
        seg_ids = np.asarray(_read_json(segs, "segIndices"), dtype=np.int64)
        if len(seg_ids) != n:
            raise ValueError(f"{segs}: {len(seg_ids)} segIndices for {n} vertices")
        for g_i, group in enumerate(_read_json(agg, "segGroups")):
            mask = np.isin(seg_ids, np.asarray(group["segments"], dtype=np.int64))
            segment[mask] = nyu40_to_scannet20(np.array([mapping.get(group["label"], 0)]))[0]
            instance[mask] = group.get("id", g_i)
    elif labels_ply.is_file():
        lv = _read_ply_vertices(labels_ply)
        if "label" not in lv.dtype.names or len(lv) != n:
            raise ValueError(f"{labels_ply}: needs a 'label' vertex property for each of the {n} vertices")
        segment = nyu40_to_scannet20(np.asarray(lv["label"]))
    else:
        raise FileNotFoundError(f"no labels for {name}: expected {labels_ply.name}, or {segs.name} + {agg.name} "
                                "with label_tsv=scannetv2-labels.combined.tsv, in " + str(scene_dir))
    return {"coord": coord, "color": color, "segment": segment, "instance": instance, "name": name}


def _read_json(path: Path, key: str):
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if key not in data:
        raise ValueError(f"{path}: missing key {key!r}")
    return data[key]


def load_pointcept_scene(scene_dir: str | Path) -> dict:
    """A Pointcept-preprocessed scene folder: coord.npy, color.npy, normal.npy (optional), segment20.npy."""
    scene_dir = Path(scene_dir)
    need = {"coord": "coord.npy", "color": "color.npy", "segment": "segment20.npy"}
    out = {}
    for key, fname in need.items():
        f = scene_dir / fname
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found (a Pointcept ScanNet scene folder holds {sorted(need.values())})")
        out[key] = np.load(f)
    if (scene_dir / "normal.npy").is_file():
        out["normal"] = np.load(scene_dir / "normal.npy").astype(np.float32)
    if (scene_dir / "instance.npy").is_file():
        out["instance"] = np.load(scene_dir / "instance.npy").astype(np.int64)
    n = len(out["coord"])
    for key in ("color", "segment"):
        if len(out[key]) != n:
            raise ValueError(f"{scene_dir / need[key]}: {len(out[key])} rows for {n} points")
    out["coord"] = out["coord"].astype(np.float32)
    out["color"] = _colours(out["color"], scene_dir / need["color"])
    out["segment"] = _labels(out["segment"], scene_dir / need["segment"], len(SCANNET20_CLASSES))
    out["name"] = scene_dir.name
    return out


def _colours(color: np.ndarray, path: Path) -> np.ndarray:
    """uint8 colours; a value outside 0..255 (or not a whole number) is an error naming the file and row, since a
    cast would wrap it (300.0 -> 44) and a clip would hide it."""
    color = np.asarray(color)
    if color.ndim != 2 or color.shape[1] != 3:
        raise ValueError(f"{path}: colours must be [points, 3], found {list(color.shape)}")
    if color.dtype != np.uint8:
        bad = ~np.isfinite(color) | (color < 0) | (color > 255) | (color != np.round(color)) \
            if np.issubdtype(color.dtype, np.floating) else (color < 0) | (color > 255)
        if bad.any():
            row = int(bad.any(1).argmax())
            raise ValueError(f"{path}: row {row}: colour {color[row].tolist()} is outside 0..255 (integers)")
    return color.astype(np.uint8)


def _labels(seg: np.ndarray, path: Path, n_classes: int) -> np.ndarray:
    """Class ids in -1 (ignored) .. n_classes-1; anything else is an error naming the file and row."""
    seg = np.asarray(seg)
    if np.issubdtype(seg.dtype, np.floating) and (seg != np.round(seg)).any():
        row = int((seg != np.round(seg)).argmax())
        raise ValueError(f"{path}: row {row}: label {seg[row]} is not an integer")
    seg = seg.astype(np.int64)
    bad = (seg < -1) | (seg >= n_classes)
    if bad.any():
        row = int(bad.argmax())
        raise ValueError(f"{path}: row {row}: label {int(seg[row])} is outside -1..{n_classes - 1} "
                         f"(-1 is ignored, 0..{n_classes - 1} the ScanNet-{n_classes} classes)")
    return seg


def load_scannet(root: str | Path, label_tsv: str | Path | None = None, max_scenes: int | None = None) -> list[dict]:
    """Every scene folder under ``root`` (raw ``sceneXXXX_YY`` scans or Pointcept npy folders)."""
    if not str(root).strip() or str(root) == ".":
        raise FileNotFoundError(f"dataset 'scannet' needs data_root: the folder that holds sceneXXXX_YY/. {HOW_TO_GET}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"ScanNet folder {root} does not exist. {HOW_TO_GET}")
    scenes = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("scene"))
    if not scenes:
        raise FileNotFoundError(f"no sceneXXXX_YY folders in {root}. {HOW_TO_GET}")
    out = []
    for p in scenes[:max_scenes]:
        out.append(load_pointcept_scene(p) if (p / "coord.npy").is_file() else load_scene(p, label_tsv))
    return out


SPLIT_FILES = ("scannetv2_train.txt", "scannetv2_val.txt")


def _read_split_list(path: Path) -> list[str]:
    names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    bad = [(i, n) for i, n in enumerate(names, 1) if not n.startswith("scene")]
    if bad:
        raise ValueError(f"{path}:{bad[0][0]}: {bad[0][1]!r} is not a sceneXXXX_YY name")
    return names


def scannet_splits(root: str | Path, label_tsv: str | Path | None = None, max_scenes: int | None = None,
                   valid_fraction: float = 0.1) -> tuple[list[dict], list[dict], list[dict], str]:
    """(train, valid, test, which split ran) for ScanNet v2.

    With the official ``scannetv2_train.txt`` / ``scannetv2_val.txt`` lists (in ``root`` or its parent, as in
    the ScanNet repository's Tasks/Benchmark folder) the test set is the official val split, so its mIoU is
    comparable with the papers' val numbers; the last ``valid_fraction`` of the official train list is held out
    for monitoring. Without them the scenes are re-split 70/10/20 by name and the message says that no number is
    comparable with a paper's.
    """
    if not str(root).strip() or str(root) == ".":
        load_scannet(root)  # raises the one-line "needs data_root" message
    root = Path(root)
    lists = next((d for d in (root, root.parent) if all((d / f).is_file() for f in SPLIT_FILES)), None)
    if lists is None:
        scenes = load_scannet(root, label_tsv, max_scenes)
        n_test, n_valid = max(1, len(scenes) // 5), max(1, len(scenes) // 10)
        how = (f"re-split by scene name (no {SPLIT_FILES[0]} / {SPLIT_FILES[1]} found in {root} or its parent): "
               "not comparable with the official val mIoU")
        return scenes[:-(n_test + n_valid)], scenes[-(n_test + n_valid):-n_test], scenes[-n_test:], how
    train_names, val_names = (_read_split_list(lists / f) for f in SPLIT_FILES)
    overlap = set(train_names) & set(val_names)
    if overlap:
        raise ValueError(f"{lists}: scenes in both split lists, e.g. {sorted(overlap)[0]}")

    def load(names):
        present = [n for n in names if (root / n).is_dir()]
        return [load_pointcept_scene(root / n) if (root / n / "coord.npy").is_file() else load_scene(root / n, label_tsv)
                for n in present[:max_scenes]], len(present), len(names)

    train, n_tr, of_tr = load(train_names)
    test, n_te, of_te = load(val_names)
    if not train or not test:
        raise FileNotFoundError(f"official split lists found in {lists}, but {n_tr} of {of_tr} train and {n_te} of "
                                f"{of_te} val scenes are under {root}. {HOW_TO_GET}")
    n_valid = max(1, int(len(train) * valid_fraction))
    how = (f"official split: {n_tr} of {of_tr} train scenes, {n_te} of {of_te} val scenes present "
           f"(val is the test set; {n_valid} train scenes held out for monitoring)")
    return train[:-n_valid], train[-n_valid:], test, how
