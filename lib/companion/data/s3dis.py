"""S3DIS loader for the raw ``Stanford3dDataset_v1.2`` layout: ``Area_N/<room>/Annotations/<class>_<k>.txt``.

Every annotation file is one object: lines ``x y z r g b``. The object's class is its file name without the
``_<k>`` suffix; names outside the 13 classes (e.g. ``stairs``) count as clutter, as in Pointcept.
The protocol of the paper's table is train on Areas 1-4 and 6, test on Area 5.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .rooms import S3DIS_CLASSES

_CID = {c: i for i, c in enumerate(S3DIS_CLASSES)}
HOW_TO_GET = ("Download Stanford3dDataset_v1.2 (the 'aligned' release, or Stanford3dDataset_v1.2_Aligned_Version) "
              "from the S3DIS site and pass the folder that contains Area_1 ... Area_6.")


def _read_annotation(path: Path) -> np.ndarray:
    """(n, 6) float32 array of one object file; a malformed line raises naming the file and line number."""
    try:
        arr = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError:
        arr = None
    if arr is not None and arr.size and arr.shape[1] == 6:
        return arr
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise ValueError(f"{path}:{lineno}: expected 6 numbers 'x y z r g b', got {len(parts)}: {line.strip()[:80]!r}")
            try:
                [float(p) for p in parts]
            except ValueError:
                raise ValueError(f"{path}:{lineno}: not a number in {line.strip()[:80]!r}") from None
    if arr is None or not arr.size:
        raise ValueError(f"{path}: no points in this annotation file")
    return arr


def load_room(room_dir: str | Path) -> dict:
    """One room as coord (float32), color (uint8), segment (13-class id) and instance (object index)."""
    room_dir = Path(room_dir)
    ann = room_dir / "Annotations"
    if not ann.is_dir():
        raise FileNotFoundError(f"no Annotations/ folder in {room_dir}; expected {ann}/<class>_<k>.txt files")
    files = sorted(ann.glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"{ann} holds no <class>_<k>.txt files")
    coord, color, seg, ins = [], [], [], []
    for k, f in enumerate(files):
        name = f.stem.rsplit("_", 1)[0] if "_" in f.stem else f.stem
        arr = _read_annotation(f)
        coord.append(arr[:, :3])
        color.append(np.clip(arr[:, 3:6], 0, 255))
        seg.append(np.full(len(arr), _CID.get(name, _CID["clutter"]), dtype=np.int64))
        ins.append(np.full(len(arr), k, dtype=np.int64))
    return {"coord": np.concatenate(coord).astype(np.float32), "color": np.concatenate(color).astype(np.uint8),
            "segment": np.concatenate(seg), "instance": np.concatenate(ins), "name": f"{room_dir.parent.name}/{room_dir.name}"}


def _root(root) -> Path:
    """The S3DIS folder, refused in one line when it is not given (``Path("")`` would silently mean ``.``)."""
    if root is None or not str(root).strip():
        raise FileNotFoundError(f"dataset 's3dis' needs data_root: the folder that holds Area_1 ... Area_6. {HOW_TO_GET}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"S3DIS root {root} does not exist. {HOW_TO_GET}")
    return root


def list_rooms(root: str | Path, areas=(1, 2, 3, 4, 5, 6)) -> list[Path]:
    """Room folders of the given areas, in a fixed order."""
    root = _root(root)
    rooms = []
    for a in areas:
        area = root / f"Area_{a}"
        if not area.is_dir():
            raise FileNotFoundError(f"{area} not found. {HOW_TO_GET}")
        rooms += sorted(p for p in area.iterdir() if (p / "Annotations").is_dir())
    if not rooms:
        raise FileNotFoundError(f"no <room>/Annotations folders under {root} for areas {tuple(areas)}. {HOW_TO_GET}")
    return rooms


def load_s3dis(root: str | Path, test_area: int = 5, max_rooms: int | None = None) -> tuple[list[dict], list[dict]]:
    """(train rooms, test rooms) with the usual Area-5 hold-out; ``max_rooms`` caps each split for quick looks."""
    root = _root(root)
    train_areas = [a for a in range(1, 7) if a != test_area and (root / f"Area_{a}").is_dir()]
    if not train_areas:
        found = sorted(p.name for p in root.iterdir())[:8]
        raise FileNotFoundError(f"no S3DIS training areas (Area_1 ... Area_6 except Area_{test_area}) in "
                                f"{root.resolve()}; it holds {found or 'nothing'}. {HOW_TO_GET}")
    train = [load_room(p) for p in list_rooms(root, train_areas)[:max_rooms]]
    test = [load_room(p) for p in list_rooms(root, [test_area])[:max_rooms]]
    return train, test
