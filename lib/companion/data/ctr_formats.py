"""Loaders for the public on-disk formats of the large CTR benchmarks the NAS papers use.

- Criteo (Kaggle Display Advertising Challenge ``train.txt`` and the Terabyte ``day_N`` files): tab-separated,
  no header, ``label, I1..I13 (integers, may be empty), C1..C26 (hex strings, may be empty)``.
- Avazu (``train.csv``): comma-separated with a header; ``click`` is the label, ``hour`` is YYMMDDHH.
- KDD Cup 2012 track 2 (``training.txt``): 12 tab-separated integers
  ``Click, Impression, DisplayURL, AdID, AdvertiserID, Depth, Position, QueryID, KeywordID, TitleID, DescriptionID, UserID``.

Raw files are parsed with pandas' C parser (fast), then every row is checked so that a malformed line
raises :class:`DataFormatError` naming the file and line instead of being skipped. Preprocessed splits are
cached as Arrow through HF ``datasets``, keyed by a hash of the file and the preprocessing settings.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..runtime import cache_dir, log
from .errors import DataFormatError, MissingDataError
from .schema import CTRDataset, CTRSplits, Field, Schema, split_indices

CRITEO_DENSE = [f"I{i}" for i in range(1, 14)]
CRITEO_SPARSE = [f"C{i}" for i in range(1, 27)]
KDD_COLUMNS = ["Click", "Impression", "DisplayURL", "AdID", "AdvertiserID", "Depth", "Position", "QueryID",
               "KeywordID", "TitleID", "DescriptionID", "UserID"]
AVAZU_REQUIRED = ["click", "hour"]

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


def _check_field_counts(path: Path, sep: str, n_fields: int, max_rows: int | None, skip: int) -> None:
    """Count separators per line in blocks (numpy, no Python loop): pandas silently pads a short line."""
    sep_b, nl = ord(sep), ord("\n")
    line_no, carry, seen, tail = 0, 0, 0, 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 24):
            tail = len(block) - 1 - int(block.rfind(b"\n")) if b"\n" in block else tail + len(block)
            buf = np.frombuffer(block, np.uint8)
            ends = np.flatnonzero(buf == nl)
            counts = np.diff(np.r_[0, np.cumsum(buf == sep_b)[ends]]) if len(ends) else np.zeros(0, int)
            if len(ends):
                counts[0] += carry
                carry = int((buf[ends[-1] + 1:] == sep_b).sum())
            else:
                carry += int((buf == sep_b).sum())
            lengths = np.diff(np.r_[-1, ends])  # bytes per line incl. newline; 1 means an empty line
            idx = np.arange(len(counts)) + line_no + 1
            data_lines = (idx > skip) & (lengths > 1)
            bad = np.flatnonzero(data_lines & (counts != n_fields - 1))
            if len(bad):
                i = bad[0]
                raise DataFormatError(path, int(idx[i]), f"expected {n_fields} fields, found {int(counts[i]) + 1}")
            seen += int(data_lines.sum())
            line_no += len(counts)
            if max_rows is not None and seen >= max_rows:
                return
    if tail and carry != n_fields - 1:  # a last line without a newline
        raise DataFormatError(path, line_no + 1, f"expected {n_fields} fields, found {carry + 1}")


def _read_table(path: Path, sep: str, names: list[str] | None, max_rows: int | None, header) -> pd.DataFrame:
    """Read every column as a string, turning pandas' parser errors into file:line errors."""
    try:
        df = pd.read_csv(path, sep=sep, header=header, names=names, dtype=str, keep_default_na=False,
                         na_values=[], nrows=max_rows, engine="c", on_bad_lines="error", quoting=3)
    except pd.errors.ParserError as err:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(err))
        if m:
            raise DataFormatError(path, int(m.group(2)), f"expected {m.group(1)} fields, found {m.group(3)}") from None
        raise DataFormatError(path, None, f"cannot parse: {err}") from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, None, "file is empty") from None
    if len(df) == 0:
        raise DataFormatError(path, None, "file has no data rows")
    first_line = 2 if header == 0 else 1
    _check_field_counts(path, sep, df.shape[1], max_rows, skip=first_line - 1)
    short = df.isna().any(axis=1).to_numpy()
    if short.any():
        i = int(short.argmax())
        n = int(df.iloc[i].notna().sum())
        raise DataFormatError(path, i + first_line, f"expected {df.shape[1]} fields, found {n}")
    df.attrs["first_line"] = first_line
    return df


def _integers(df: pd.DataFrame, cols: list[str], path: Path, allow_empty: bool) -> pd.DataFrame:
    out = {}
    for col in cols:
        s = df[col]
        num = pd.to_numeric(s.where(s != "", None) if allow_empty else s, errors="coerce")
        bad = num.isna() & ((s != "") if allow_empty else True)
        bad |= (num % 1 != 0) & num.notna()
        if bad.any():
            i = int(np.asarray(bad).argmax())
            raise DataFormatError(path, i + df.attrs["first_line"], f"field {col} is not an integer: {s.iloc[i]!r}")
        out[col] = num
    return pd.DataFrame(out)


def _labels(values: pd.Series, path: Path, first_line: int) -> np.ndarray:
    lab = pd.to_numeric(values, errors="coerce")
    bad = ~lab.isin([0, 1])
    if bad.any():
        i = int(np.asarray(bad).argmax())
        raise DataFormatError(path, i + first_line, f"label must be 0 or 1, got {values.iloc[i]!r}")
    return lab.to_numpy(dtype=np.float32)


def read_criteo(path, max_rows: int | None = None) -> pd.DataFrame:
    """Raw Criteo rows: ``label`` (0/1), I1..I13 as floats (NaN where empty), C1..C26 as strings."""
    path = Path(path)
    _check_exists(path, "criteo")
    df = _read_table(path, "\t", ["label", *CRITEO_DENSE, *CRITEO_SPARSE], max_rows, header=None)
    dense = _integers(df, CRITEO_DENSE, path, allow_empty=True)
    out = pd.concat([pd.Series(_labels(df["label"], path, 1), name="label"), dense, df[CRITEO_SPARSE]], axis=1)
    return out


def read_avazu(path, max_rows: int | None = None) -> pd.DataFrame:
    """Raw Avazu rows with ``label``; ``hour`` (YYMMDDHH) becomes hour-of-day and weekday categories."""
    path = Path(path)
    _check_exists(path, "avazu")
    df = _read_table(path, ",", None, max_rows, header=0)
    missing = [c for c in AVAZU_REQUIRED if c not in df.columns]
    if missing:
        raise DataFormatError(path, 1, f"header lacks column(s) {missing}; found {list(df.columns)[:6]}...")
    hour = _integers(df, ["hour"], path, allow_empty=False)["hour"].astype("int64")
    stamp = pd.to_datetime(hour.astype(str), format="%y%m%d%H", errors="coerce")
    if stamp.isna().any():
        i = int(stamp.isna().to_numpy().argmax())
        raise DataFormatError(path, i + 2, f"hour must be YYMMDDHH, got {df['hour'].iloc[i]!r}")
    sparse = df.drop(columns=[c for c in ("id", "click", "hour") if c in df.columns])
    sparse = sparse.assign(hour_of_day=stamp.dt.hour.astype(str), weekday=stamp.dt.weekday.astype(str))
    return pd.concat([pd.Series(_labels(df["click"], path, 2), name="label"), sparse], axis=1)


def read_kdd2012(path, max_rows: int | None = None) -> pd.DataFrame:
    """Raw KDD Cup 2012 track 2 rows; the label is ``Click > 0`` (the row's impressions are kept as a column)."""
    path = Path(path)
    _check_exists(path, "kdd2012")
    df = _read_table(path, "\t", KDD_COLUMNS, max_rows, header=None)
    ints = _integers(df, KDD_COLUMNS, path, allow_empty=False)
    label = (ints["Click"] > 0).astype(np.float32).rename("label")
    sparse = df[KDD_COLUMNS[2:]]
    return pd.concat([label, ints["Impression"].rename("impressions"), sparse], axis=1)


def _encode_sparse(col: pd.Series, train_rows: np.ndarray, cfg: Preprocess) -> tuple[np.ndarray, int]:
    if cfg.hash_buckets:
        h = pd.util.hash_array(col.to_numpy(dtype=object), categorize=True)
        ids = (h % np.uint64(cfg.hash_buckets - 1)).astype(np.int64) + 1
        ids[(col == "").to_numpy()] = 0
        return ids, cfg.hash_buckets
    counts = col.iloc[train_rows].value_counts()
    keep = counts[(counts >= cfg.min_count) & (counts.index != "")].index
    vocab = pd.Index(keep)
    ids = vocab.get_indexer(col) + 1  # unseen, rare and empty -> -1 + 1 = 0
    return ids.astype(np.int64), len(vocab) + 1


def preprocess(raw: pd.DataFrame, dense_cols: list[str], sparse_cols: list[str], cfg: Preprocess, name: str) -> CTRSplits:
    """log1p-transform dense counts (missing -> 0), build vocabularies on the training split only, split."""
    n = len(raw)
    tr, va, te = split_indices(n, cfg.fractions, cfg.seed)
    dense = np.log1p(raw[dense_cols].clip(lower=0).fillna(0).to_numpy(np.float32)) if dense_cols else np.zeros((n, 0), np.float32)
    sparse, fields = [], [Field(c, "dense") for c in dense_cols]
    for c in sparse_cols:
        ids, vocab = _encode_sparse(raw[c].astype(str), tr.numpy(), cfg)
        sparse.append(ids)
        fields.append(Field(c, "sparse", vocab))
    full = CTRDataset(torch.from_numpy(dense), torch.from_numpy(np.stack(sparse, 1)), torch.from_numpy(raw["label"].to_numpy(np.float32, copy=True)))
    info = {"source": name, "rows": n, "preprocess": asdict(cfg)}
    return CTRSplits(Schema(fields), full.subset(tr), full.subset(va), full.subset(te), info)


_READERS = {
    "criteo": (read_criteo, lambda df: (CRITEO_DENSE, CRITEO_SPARSE)),
    "avazu": (read_avazu, lambda df: ([], [c for c in df.columns if c != "label"])),
    "kdd2012": (read_kdd2012, lambda df: ([], KDD_COLUMNS[2:])),
}


def _cache_key(name: str, path: Path, cfg: Preprocess) -> str:
    st = path.stat()
    blob = json.dumps({"name": name, "path": str(path.resolve()), "size": st.st_size, "mtime": st.st_mtime_ns,
                       "cfg": asdict(cfg), "version": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _save_cache(splits: CTRSplits, folder: Path) -> None:
    import datasets

    parts = {}
    for split in ("train", "valid", "test"):
        d: CTRDataset = getattr(splits, split)
        parts[split] = datasets.Dataset.from_dict({"dense": d.dense.numpy(), "sparse": d.sparse.numpy(), "label": d.label.numpy()})
    # written under a temporary name and renamed, so an interrupted save never leaves a half entry behind
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.DatasetDict(parts).save_to_disk(str(tmp))
    meta = {"fields": [asdict(f) for f in splits.schema.fields], "info": splits.info}
    (tmp / "companion_schema.json").write_text(json.dumps(meta))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _load_cache(folder: Path) -> CTRSplits:
    import datasets

    dd = datasets.load_from_disk(str(folder)).with_format("torch")
    meta = json.loads((folder / "companion_schema.json").read_text())
    schema = Schema([Field(**f) for f in meta["fields"]])
    sets = {}
    for split in ("train", "valid", "test"):
        cols = dd[split][:]
        dense = cols["dense"].float() if len(cols["dense"]) else torch.zeros(0, 0)
        sets[split] = CTRDataset(dense.reshape(len(cols["label"]), -1), cols["sparse"].long(), cols["label"].float())
    return CTRSplits(schema, sets["train"], sets["valid"], sets["test"], {**meta["info"], "cached": str(folder)})


def load_ctr_dataset(name: str, path, max_rows: int | None = None, seed: int = 0, min_count: int = 10,
                     hash_buckets: int | None = None, cache: bool = True) -> CTRSplits:
    """Read, check, preprocess and split one of ``criteo``, ``avazu``, ``kdd2012``; cached after the first call."""
    if name not in _READERS:
        raise ValueError(f"unknown CTR dataset {name!r}; known: {sorted(_READERS)}")
    if path is None or not str(path).strip():
        _check_exists(Path(""), name)
    path = Path(path)
    _check_exists(path, name)
    cfg = Preprocess(max_rows=max_rows, min_count=min_count, hash_buckets=hash_buckets, seed=seed)
    folder = cache_dir() / "ctr" / f"{name}-{_cache_key(name, path, cfg)}"
    if cache and (folder / "companion_schema.json").exists():
        try:
            splits = _load_cache(folder)
            log.info("%s: preprocessed splits from cache %s", name, folder)
            return splits
        except Exception as err:  # noqa: BLE001 (truncated Arrow file, edited schema, older layout: rebuild it)
            log.warning("cache entry %s cannot be read (%s: %s); discarding it and rebuilding from %s",
                        folder, type(err).__name__, " ".join(str(err).split())[:200], path)
            shutil.rmtree(folder, ignore_errors=True)
    reader, columns = _READERS[name]
    raw = reader(path, max_rows)
    dense_cols, sparse_cols = columns(raw)
    splits = preprocess(raw, dense_cols, sparse_cols, cfg, name)
    if cache:
        _save_cache(splits, folder)
    return splits
