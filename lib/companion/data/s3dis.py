"""S3DIS loader for the raw ``Stanford3dDataset_v1.2`` layout: ``Area_N/<room>/Annotations/<class>_<k>.txt``.

Every annotation file is one object: lines ``x y z r g b``. The object's class is its file name without the
``_<k>`` suffix; names outside the 13 classes (e.g. ``stairs``) count as clutter, as in Pointcept.
The protocol of the paper's table is train on Areas 1-4 and 6, test on Area 5.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from ..runtime import log
from .rooms import S3DIS_CLASSES

_CID = {c: i for i, c in enumerate(S3DIS_CLASSES)}
HOW_TO_GET = ("Download Stanford3dDataset_v1.2 (the 'aligned' release, or Stanford3dDataset_v1.2_Aligned_Version) "
              "from the S3DIS site and pass the folder that contains Area_1 ... Area_6.")
_NUMBER = re.compile(rb"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")  # what numpy's parser accepts
# Lines of the published releases known to hold a stray byte (the widely reported defects: the aligned release's
# hallway_6 ceiling and v1.2's office_19 ceiling). Only these (file, line) pairs are repaired, with a warning;
# every other malformed line still raises.
KNOWN_DEFECTS = {("Area_5/hallway_6/Annotations/ceiling_1.txt", 180389),
                 ("Area_5/office_19/Annotations/ceiling_1.txt", 323474)}


_NUM = rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_GOOD_LINE = re.compile(rb"[ \t\r]*(?:" + _NUM + rb"[ \t]+){5}" + _NUM + rb"[ \t\r]*")  # or blank: checked apart


def _numbers(tokens) -> bool:
    return len(tokens) == 6 and all(_NUMBER.match(t) for t in tokens)


def repair_line(line: bytes) -> bytes | None:
    """The known S3DIS defect: a byte that is not part of a number (a control character) inside a line. Replaced by
    a space if that leaves six numbers (it stood between two of them), else removed (it sat inside one)."""
    stray = re.compile(rb"[^0-9eE+\-. \t\r\n]")
    for fill in (b" ", b""):
        tokens = stray.sub(fill, line).split()
        if _numbers(tokens):
            return b" ".join(tokens)
    return None


def _defect_key(path: Path) -> str:
    return "/".join(path.parts[-4:])


def _read_annotation(path: Path) -> np.ndarray:
    """(n, 6) float32 array of one object file; a malformed line raises naming the file and line number, except
    the release defects in ``KNOWN_DEFECTS``, which are repaired with a logged warning."""
    data = path.read_bytes()
    try:
        arr = np.loadtxt(io.BytesIO(data), dtype=np.float32, ndmin=2)
    except ValueError:
        arr = None
    if arr is not None and arr.size and arr.shape[1] == 6:
        return _check_colours(path, arr, data)
    lines = data.split(b"\n")
    repaired = False
    good = _GOOD_LINE.fullmatch
    for lineno, line in enumerate(lines, 1):
        if good(line):
            continue
        tokens = line.split()
        if not tokens or _numbers(tokens):
            continue
        text = line.strip()[:80].decode("utf-8", "backslashreplace")
        if (_defect_key(path), lineno) in KNOWN_DEFECTS:
            fixed = repair_line(line)
            if fixed is not None:
                log.warning("%s:%d: known defect of the S3DIS release (a stray byte): %r read as %r",
                            path, lineno, text, fixed.decode())
                lines[lineno - 1] = fixed
                repaired = True
                continue
        if len(tokens) != 6:
            raise ValueError(f"{path}:{lineno}: expected 6 numbers 'x y z r g b', got {len(tokens)}: {text!r}")
        raise ValueError(f"{path}:{lineno}: not a number in {text!r}")
    if repaired:
        data = b"\n".join(lines)
        arr = np.loadtxt(io.BytesIO(data), dtype=np.float32, ndmin=2)
        return _check_colours(path, arr, data)
    if arr is None or not arr.size:
        raise ValueError(f"{path}: no points in this annotation file")
    raise ValueError(f"{path}: cannot be read as 'x y z r g b' rows")


def _check_colours(path: Path, arr: np.ndarray, data: bytes) -> np.ndarray:
    """Colours are bytes: a value outside 0..255 is an error naming its line (never clipped or wrapped)."""
    bad = ((arr[:, 3:6] < 0) | (arr[:, 3:6] > 255)).any(1)
    if bad.any():
        row = int(bad.argmax())
        line_numbers = [i for i, ln in enumerate(data.split(b"\n"), 1) if ln.split()]
        lineno = line_numbers[row] if row < len(line_numbers) else row + 1
        raise ValueError(f"{path}:{lineno}: colour {arr[row, 3:6].tolist()} is outside 0..255")
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
        color.append(arr[:, 3:6])
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
    wanted = [a for a in range(1, 7) if a != test_area]
    train_areas = [a for a in wanted if (root / f"Area_{a}").is_dir()]
    missing = [f"Area_{a}" for a in wanted if a not in train_areas]
    if missing and train_areas:
        log.warning("S3DIS in %s lacks %s: training on %s only, so numbers are not comparable with the paper's "
                    "Area-5 protocol (train on the five other areas)", root, ", ".join(missing),
                    ", ".join(f"Area_{a}" for a in train_areas))
    if not train_areas:
        found = sorted(p.name for p in root.iterdir())[:8]
        raise FileNotFoundError(f"no S3DIS training areas (Area_1 ... Area_6 except Area_{test_area}) in "
                                f"{root.resolve()}; it holds {found or 'nothing'}. {HOW_TO_GET}")
    train = [load_room(p) for p in list_rooms(root, train_areas)[:max_rooms]]
    test = [load_room(p) for p in list_rooms(root, [test_area])[:max_rooms]]
    return train, test
