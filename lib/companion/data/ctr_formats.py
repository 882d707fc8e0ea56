"""Loaders for the public on-disk formats of the large CTR benchmarks the NAS papers use.

- Criteo (Kaggle Display Advertising Challenge ``train.txt`` and the Terabyte ``day_N`` files): tab-separated,
  no header, ``label, I1..I13 (integers, may be empty), C1..C26 (hex strings, may be empty)``.
- Avazu (``train.csv``): comma-separated with a header; ``click`` is the label, ``hour`` is YYMMDDHH.
- KDD Cup 2012 track 2 (``training.txt``): 12 tab-separated integers
  ``Click, Impression, DisplayURL, AdID, AdvertiserID, Depth, Position, QueryID, KeywordID, TitleID, DescriptionID, UserID``.

Any of them may be gzip-compressed (recognised by its first bytes, whatever the name). Files are parsed in
blocks by pyarrow's streaming CSV reader (:mod:`.stream`), so memory stays bounded whatever the file size; a
malformed line (wrong field count, a value that is not an integer, a label outside 0/1, a negative click count,
bytes that are not UTF-8) raises :class:`DataFormatError` naming the file and its 1-based line, blank lines
counted, never a silent skip.

:func:`load_ctr_dataset` converts a file once into column files in the companion cache: pass 1 parses, checks and
spools each categorical column to an Arrow file; vocabularies are then counted on the training split only (or
categories hashed), ids written, and the splits assembled as ``.npy`` files that later loads memory-map (keyed by
file size, mtime and the options, so a second load parses nothing).
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..runtime import cache_dir, log
from . import stream as st
from .errors import DataFormatError, MissingDataError
from .schema import CTRDataset, CTRSplits, Field, Schema

CRITEO_DENSE = [f"I{i}" for i in range(1, 14)]
CRITEO_SPARSE = [f"C{i}" for i in range(1, 27)]
KDD_COLUMNS = ["Click", "Impression", "DisplayURL", "AdID", "AdvertiserID", "Depth", "Position", "QueryID",
               "KeywordID", "TitleID", "DescriptionID", "UserID"]
AVAZU_REQUIRED = ["click", "hour"]
CACHE_FORMAT = 3  # 1: HF datasets Arrow tables loaded whole; 2: memory-mapped .npy columns; 3: blockwise split above 4M rows
ASSEMBLE_ROWS = 1 << 18  # rows per step when the splits are assembled (bounds memory: ~250 MB of ids)

WHERE = {
    "criteo": "the Kaggle Display Advertising Challenge train.txt (or a Criteo Terabyte day_N file)",
    "avazu": "the Avazu CTR train.csv (comma-separated, with header)",
    "kdd2012": "the KDD Cup 2012 track 2 training.txt",
}


@dataclass(frozen=True)
class Preprocess:
    max_rows: int | None = None  # read at most this many rows (None: all)
    min_count: int = 10  # categories seen fewer times in the training split map to id 0 (rare/missing)
    hash_buckets: int | None = None  # if set, hash categories into this many ids instead of building a vocabulary
    seed: int = 0  # split seed
    fractions: tuple = (0.8, 0.1, 0.1)

    def __post_init__(self):
        if self.hash_buckets is not None and (not isinstance(self.hash_buckets, int) or self.hash_buckets < 2):
            raise ValueError(f"hash_buckets must be an integer >= 2 (id 0 is kept for empty values), "
                             f"got {self.hash_buckets!r}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f"max_rows must be >= 1 or None, got {self.max_rows}")
        if self.min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {self.min_count}")


class NoDataPath(MissingDataError):
    """A real dataset asked for without a file: one line naming the knob (``Path("")`` would silently be ``.``)."""

    def __init__(self, name: str):
        self.looked = []
        example = {"criteo": "train.txt", "avazu": "train.csv", "kdd2012": "training.txt"}[name]
        FileNotFoundError.__init__(self, f"dataset {name!r} needs data_path: the path of {WHERE[name]}, "
                                         f"e.g. -p data_path /data/{name}/{example}")


def _check_exists(path: Path, name: str) -> None:
    if not str(path).strip() or str(path) == ".":
        raise NoDataPath(name)
    if path.is_dir():
        raise DataFormatError(path, None, f"is a folder; data_path must name the file itself ({WHERE[name]})")
    if not path.exists():
        raise MissingDataError(f"{name} data file", [path],
                               f"Put {WHERE[name]} at that path (or pass data_path=... pointing to it).")
    if path.stat().st_size == 0:
        raise DataFormatError(path, None, "file is empty")


# --- per-format streaming readers -----------------------------------------------------------------------------
# Each yields (label float32 [b], dense float64 [b, D] with NaN for empty, {categorical column: pa string array}).

Raw = tuple[np.ndarray, np.ndarray, dict]


def _label(arr) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False).astype(np.float32)


def _in01(arr) -> bool:
    return arr.null_count == 0 and pc.all(pc.is_in(arr, value_set=pa.array([0, 1], arr.type))).as_py()


def _criteo(path: Path, max_rows: int | None) -> Iterator[Raw]:
    names = ["label", *CRITEO_DENSE, *CRITEO_SPARSE]
    spec = st.CsvSpec("\t", names, header=False,
                      types={"label": pa.int64(), **{c: pa.int64() for c in CRITEO_DENSE},
                             **{c: pa.string() for c in CRITEO_SPARSE}},
                      validators={"label": st.v_label(), **{c: st.v_int(allow_empty=True) for c in CRITEO_DENSE}},
                      label_of={"label": "label"})
    for b in st.batches(path, spec, max_rows, batch_check=lambda b: _in01(b.column("label"))):
        dense = np.stack([b.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in CRITEO_DENSE], 1)
        yield _label(b.column("label")), dense, {c: b.column(c) for c in CRITEO_SPARSE}


def _valid_hours(hour: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ok, hour of day, weekday Monday=0) of YYMMDDHH integers, vectorised over a batch."""
    yy, mm, dd, hh = hour // 1000000, hour // 10000 % 100, hour // 100 % 100, hour % 100
    ok = (hour >= 0) & (hour <= 99123123) & (mm >= 1) & (mm <= 12) & (dd >= 1) & (dd <= 31) & (hh <= 23)
    month = ((2000 + yy - 1970) * 12 + np.clip(mm, 1, 12) - 1).astype("datetime64[M]")
    day = month.astype("datetime64[D]") + (np.clip(dd, 1, 31) - 1)
    ok &= day.astype("datetime64[M]") == month  # 31 February is not a day
    weekday = (day.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    return ok, hh, weekday


def _hour_ok(s: str):
    if not st.INT_RE.match(s) or not _valid_hours(np.array([int(s)]))[0][0]:
        return f"must be YYMMDDHH, got {s!r}"
    return None


def _avazu(path: Path, max_rows: int | None) -> Iterator[Raw]:
    header = st.read_header(path, ",")
    missing = [c for c in AVAZU_REQUIRED if c not in header]
    if missing:
        raise DataFormatError(path, 1, f"header lacks column(s) {missing}; found {header[:6]}...")
    sparse = [c for c in header if c not in ("id", "click", "hour")]
    spec = st.CsvSpec(",", header, header=True,
                      types={"click": pa.int64(), "hour": pa.int64(), **{c: pa.string() for c in sparse}},
                      validators={"click": st.v_label(), "hour": _hour_ok}, label_of={"click": "label", "hour": "hour"})

    def check(b):
        return _in01(b.column("click")) and b.column("hour").null_count == 0 and \
            bool(_valid_hours(b.column("hour").to_numpy())[0].all())

    for b in st.batches(path, spec, max_rows, batch_check=check):
        _, hh, wd = _valid_hours(b.column("hour").to_numpy())
        cats = {c: b.column(c) for c in sparse}
        cats["hour_of_day"] = pa.array(hh).cast(pa.string())
        cats["weekday"] = pa.array(wd).cast(pa.string())
        yield _label(b.column("click")), np.zeros((len(b), 0)), cats


def _kdd(path: Path, max_rows: int | None, impressions: list | None = None) -> Iterator[Raw]:
    spec = st.CsvSpec("\t", KDD_COLUMNS, header=False, types={c: pa.int64() for c in KDD_COLUMNS},
                      validators={c: st.v_int(lo=0 if c in ("Click", "Impression") else None) for c in KDD_COLUMNS})

    def check(b):
        cl, im = b.column("Click"), b.column("Impression")
        return all(b.column(c).null_count == 0 for c in KDD_COLUMNS) and \
            pc.min(cl).as_py() >= 0 and pc.min(im).as_py() >= 0

    for b in st.batches(path, spec, max_rows, batch_check=check):
        if impressions is not None:
            impressions.append(b.column("Impression").to_numpy())
        label = (b.column("Click").to_numpy() > 0).astype(np.float32)
        yield label, np.zeros((len(b), 0)), {c: b.column(c).cast(pa.string()) for c in KDD_COLUMNS[2:]}


_STREAMS = {"criteo": (_criteo, CRITEO_DENSE), "avazu": (_avazu, []), "kdd2012": (_kdd, [])}


def _frame(parts: list[Raw], dense_cols: list[str], path: Path) -> pd.DataFrame:
    if not parts:
        raise DataFormatError(path, None, "file has no data rows")
    label = np.concatenate([p[0] for p in parts])
    cols = {"label": label}
    if dense_cols:
        dense = np.concatenate([p[1] for p in parts])
        cols.update({c: dense[:, i] for i, c in enumerate(dense_cols)})
    for c in parts[0][2]:
        cols[c] = pa.chunked_array([p[2][c] for p in parts]).to_numpy(zero_copy_only=False).astype(object)
    return pd.DataFrame(cols)


def read_criteo(path, max_rows: int | None = None) -> pd.DataFrame:
    """Raw Criteo rows: ``label`` (0/1), I1..I13 as floats (NaN where empty), C1..C26 as strings."""
    path = Path(path)
    _check_exists(path, "criteo")
    return _frame(list(_criteo(path, max_rows)), CRITEO_DENSE, path)


def read_avazu(path, max_rows: int | None = None) -> pd.DataFrame:
    """Raw Avazu rows with ``label``; ``hour`` (YYMMDDHH) becomes hour-of-day and weekday categories."""
    path = Path(path)
    _check_exists(path, "avazu")
    return _frame(list(_avazu(path, max_rows)), [], path)


def read_kdd2012(path, max_rows: int | None = None) -> pd.DataFrame:
    """Raw KDD Cup 2012 track 2 rows; the label is ``Click > 0`` (the row's impressions are kept as a column)."""
    path = Path(path)
    _check_exists(path, "kdd2012")
    imp: list = []
    df = _frame(list(_kdd(path, max_rows, imp)), [], path)
    df.insert(1, "impressions", np.concatenate(imp))
    return df


# --- conversion into the cache --------------------------------------------------------------------------------

def _hash_ids(col, buckets: int) -> np.ndarray:
    """Hash every category into ids 1..buckets-1 (0 for empty); only the distinct values are hashed in Python."""
    enc = (col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col).dictionary_encode()
    uniq = enc.dictionary.to_numpy(zero_copy_only=False).astype(object)
    ids = (pd.util.hash_array(uniq, categorize=False) % np.uint64(buckets - 1)).astype(np.int64) + 1
    ids[uniq == ""] = 0
    return ids[enc.indices.to_numpy(zero_copy_only=False)]


def _convert(name: str, path: Path, cfg: Preprocess, folder: Path) -> None:
    reader, dense_cols = _STREAMS[name]
    entry = st.Entry(folder)
    try:
        w = entry.work
        label_f = st.RawColumn(w / "label.bin", np.float32)
        dense_f = st.RawColumn(w / "dense.bin", np.float32, (len(dense_cols),))
        spools: dict[str, st.StringSpool] = {}
        n = 0
        for label, dense, cats in reader(path, cfg.max_rows):
            label_f.append(label)
            dense_f.append(np.log1p(np.nan_to_num(np.clip(dense, 0, None), nan=0.0)))
            for c, arr in cats.items():
                if c not in spools:
                    spools[c] = st.StringSpool(w / f"c{len(spools)}.arrow")
                spools[c].append(arr)
            n += len(label)
        for f in (label_f, dense_f, *spools.values()):
            f.close()
        if n == 0:
            raise DataFormatError(path, None, "file has no data rows")
        assign = st.split_assignment(n, cfg.fractions, cfg.seed)
        train = assign == 0
        ids_f = st.RawColumn(w / "ids.bin", np.int64)  # column after column: ids of column k at rows [k n, (k+1) n)
        fields = [Field(c, "dense") for c in dense_cols]
        for c, spool in spools.items():  # a slice of a column at a time: memory does not grow with the file
            if cfg.hash_buckets:
                for _, part in spool.slices():
                    ids_f.append(_hash_ids(part, cfg.hash_buckets))
                vocab = cfg.hash_buckets
            else:
                cnt = st.Counter()
                for at, part in spool.slices():
                    cnt.add(part.filter(pa.array(train[at:at + len(part)])))
                keep = st.vocabulary(cnt.table(), cfg.min_count)
                for _, part in spool.slices():
                    ids_f.append(st.encode(part, keep, offset=1, missing=0))  # unseen, rare, empty -> 0
                vocab = len(keep) + 1
            fields.append(Field(c, "sparse", int(vocab)))
            spool.path.unlink()
        ids_f.close()
        sizes = [int((assign == s).sum()) for s in range(3)]
        d, k = len(dense_cols), len(spools)
        writers = {s: {"dense": st.NpyWriter(entry.tmp / f"{part}.dense.npy", np.float32, (sizes[s], d)),
                       "sparse": st.NpyWriter(entry.tmp / f"{part}.sparse.npy", np.int64, (sizes[s], k)),
                       "label": st.NpyWriter(entry.tmp / f"{part}.label.npy", np.float32, (sizes[s],))}
                   for s, part in enumerate(("train", "valid", "test"))}
        for a in range(0, n, ASSEMBLE_ROWS):
            b = min(n, a + ASSEMBLE_ROWS)
            cols = {"label": label_f.read(a, b), "dense": dense_f.read(a, b),
                    "sparse": np.stack([ids_f.read(j * n + a, j * n + b) for j in range(k)], 1)}
            part = assign[a:b]
            for s in range(3):
                m = part == s
                for key, wr in writers[s].items():
                    wr.append(cols[key][m])
        for ws in writers.values():
            for wr in ws.values():
                wr.close()
        entry.commit({"format": CACHE_FORMAT, "fields": [asdict(f) for f in fields],
                      "info": {"source": name, "rows": n, "preprocess": asdict(cfg)}, "sizes": sizes})
    except BaseException:
        entry.abort()
        raise


def _open(arr_path: Path) -> torch.Tensor:
    return torch.from_numpy(st.load_npy(arr_path))


def _load_cache(folder: Path) -> CTRSplits:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("format") != CACHE_FORMAT:
        raise ValueError(f"cache format {meta.get('format')}, expected {CACHE_FORMAT}")
    schema = Schema([Field(**f) for f in meta["fields"]])
    sets = {}
    for part, size in zip(("train", "valid", "test"), meta["sizes"]):
        t = {c: _open(folder / f"{part}.{c}.npy") for c in ("dense", "sparse", "label")}
        if len(t["label"]) != size:
            raise ValueError(f"{part}: {len(t['label'])} rows, meta.json says {size}")
        sets[part] = CTRDataset(t["dense"], t["sparse"], t["label"])
    return CTRSplits(schema, sets["train"], sets["valid"], sets["test"], {**meta["info"], "cached": str(folder)})


def _cache_key(name: str, path: Path, cfg: Preprocess) -> str:
    stamp = path.stat()
    blob = json.dumps({"name": name, "path": str(path.resolve()), "size": stamp.st_size, "mtime": stamp.st_mtime_ns,
                       "cfg": asdict(cfg), "version": CACHE_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_ctr_dataset(name: str, path, max_rows: int | None = None, seed: int = 0, min_count: int = 10,
                     hash_buckets: int | None = None, cache: bool = True) -> CTRSplits:
    """Read, check, preprocess and split one of ``criteo``, ``avazu``, ``kdd2012``; cached after the first call.

    Dense counts are log1p-transformed (negative and missing -> 0); vocabularies come from the training split only.
    The returned tensors are memory-mapped from the cache (``cache=False`` converts into a temporary entry and
    discards it after loading the splits into memory).
    """
    if name not in _STREAMS:
        raise ValueError(f"unknown CTR dataset {name!r}; known: {sorted(_STREAMS)}")
    if path is None or not str(path).strip():
        _check_exists(Path(""), name)
    path = Path(path)
    _check_exists(path, name)
    cfg = Preprocess(max_rows=max_rows, min_count=min_count, hash_buckets=hash_buckets, seed=seed)
    folder = cache_dir() / "ctr" / f"{name}-{_cache_key(name, path, cfg)}"
    if cache and (folder / "meta.json").exists():
        try:
            splits = _load_cache(folder)
            log.info("%s: preprocessed splits from cache %s", name, folder)
            return splits
        except Exception as err:  # noqa: BLE001 (truncated file, edited meta, older layout: rebuild it)
            log.warning("cache entry %s cannot be read (%s: %s); discarding it and rebuilding from %s",
                        folder, type(err).__name__, " ".join(str(err).split())[:200], path)
            shutil.rmtree(folder, ignore_errors=True)
    if not cache:
        folder = folder.with_name(folder.name + f".nocache{id(cfg)}")
    _convert(name, path, cfg, folder)
    splits = _load_cache(folder)
    splits.info.pop("cached", None)
    if not cache:
        for part in ("train", "valid", "test"):
            d = getattr(splits, part)
            setattr(splits, part, CTRDataset(d.dense.clone(), d.sparse.clone(), d.label.clone()))
        shutil.rmtree(folder, ignore_errors=True)
    return splits
