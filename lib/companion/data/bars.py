"""Loaders for the BARS "x1" CSV splits InterFormer is benchmarked on (reczoo/BARS, FuxiCTR format).

Each dataset is a folder with ``train.csv`` and ``test.csv`` (comma-separated, a header row); sequence columns
hold ids joined by ``^`` (oldest first). As in the BARS configs: categories seen fewer than ``min_count`` times
in training map to an out-of-vocabulary id, sequences keep their last ``max_len`` events and are pre-padded,
a history column shares its vocabulary and embedding with its target column (``item_history`` with
``item_id``), and gAUC groups by user. The x1 splits have no validation file (BARS validated on the test
file); here ``valid_fraction`` of the training rows are held out instead, or the test file is reused when
``valid_fraction=0`` to match BARS exactly.

Ids: 0 is padding, 1 is out-of-vocabulary/rare, real categories start at 2.
KuaiVideo's pretrained 2048-d visual item embeddings (an HDF5 file beside the CSVs) are not used.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..runtime import cache_dir, log
from .errors import DataFormatError, MissingDataError
from .schema import CTRDataset, CTRSplits, Field, Schema

PAD, OOV = 0, 1


@dataclass(frozen=True)
class SeqCol:
    name: str
    share_with: str | None
    max_len: int


@dataclass(frozen=True)
class BarsSpec:
    name: str
    label: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    sequences: tuple[SeqCol, ...]
    group: str
    min_count: int = 10
    splitter: str = "^"
    url: str = ""


BARS_SPECS = {
    "AmazonElectronics_x1": BarsSpec(
        "AmazonElectronics_x1", "label", ("user_id", "item_id", "cate_id"), (),
        (SeqCol("item_history", "item_id", 100), SeqCol("cate_history", "cate_id", 100)), "user_id", min_count=1,
        url="https://huggingface.co/datasets/reczoo/AmazonElectronics_x1"),
    "TaobaoAd_x1": BarsSpec(
        "TaobaoAd_x1", "clk",
        ("userid", "cms_segid", "cms_group_id", "final_gender_code", "age_level", "pvalue_level", "shopping_level",
         "occupation", "new_user_class_level", "adgroup_id", "cate_id", "campaign_id", "customer", "brand", "pid",
         "btag"), ("price",),
        (SeqCol("cate_his", "cate_id", 50), SeqCol("brand_his", "brand", 50), SeqCol("btag_his", "btag", 50)),
        "userid", url="https://huggingface.co/datasets/reczoo/TaobaoAd_x1"),
    "KuaiVideo_x1": BarsSpec(
        "KuaiVideo_x1", "is_click", ("user_id", "item_id"), (),
        (SeqCol("pos_items", "item_id", 100), SeqCol("neg_items", "item_id", 100)), "user_id",
        url="https://huggingface.co/datasets/reczoo/KuaiVideo_x1"),
}


def _read_csv(path: Path, spec: BarsSpec, max_rows: int | None) -> pd.DataFrame:
    need = [spec.label, *spec.categorical, *spec.numeric, *(s.name for s in spec.sequences)]
    try:
        header = pd.read_csv(path, nrows=0).columns.tolist()
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, None, "file is empty (expected a header row)") from None
    missing = [c for c in need if c not in header]
    if missing:
        raise DataFormatError(path, 1, f"{spec.name} header lacks columns {missing}; found {header}")
    # field count per line first (BARS files have no quoting): pandas would pad short rows silently
    lines = pd.read_csv(path, sep="\x1f", header=None, dtype=str, quoting=3, nrows=None if max_rows is None else max_rows + 1,
                        keep_default_na=False, skip_blank_lines=False)[0]
    commas = lines.str.count(",").to_numpy()
    bad = np.flatnonzero(commas != len(header) - 1)
    if len(bad):
        i = int(bad[0])
        raise DataFormatError(path, i + 1, f"row has {commas[i] + 1} fields, the header has {len(header)}")
    df = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=max_rows, usecols=need, engine="c")
    bad = ~df[spec.label].isin(["0", "1", "0.0", "1.0"])
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise DataFormatError(path, i + 2, f"label {spec.label!r} must be 0 or 1, got {df[spec.label].iloc[i]!r}")
    for col in spec.numeric:
        vals = pd.to_numeric(df[col].replace("", "0"), errors="coerce")
        if vals.isna().any():
            i = int(vals.isna().to_numpy().argmax())
            raise DataFormatError(path, i + 2, f"numeric column {col!r} has a non-number: {df[col].iloc[i]!r}")
    return df


def _tokens(series: pd.Series, splitter: str) -> pd.Series:
    """All ids of a sequence column, one per row of the result (empty histories contribute nothing)."""
    flat = series.str.split(splitter, regex=False).explode()
    return flat[flat != ""]


def _vocab(counts: pd.Series, min_count: int) -> dict:
    kept = counts[counts >= min_count]
    kept = kept.sort_index(kind="stable").sort_values(ascending=False, kind="stable")  # deterministic order
    return {tok: i + 2 for i, tok in enumerate(kept.index)}


def _encode_seq(series: pd.Series, vocab: dict, splitter: str, max_len: int) -> np.ndarray:
    """Map ``a^b^c`` strings to a pre-padded [N, max_len] id matrix keeping the last max_len events."""
    parts = series.str.split(splitter, regex=False)
    lengths = parts.str.len().to_numpy()
    flat = parts.explode()
    ids = np.array(flat.map(vocab).fillna(OOV).astype(np.int64).to_numpy())
    ids[(flat == "").to_numpy()] = PAD
    out = np.zeros((len(series), max_len), dtype=np.int64)
    ends = np.cumsum(lengths)
    keep = np.minimum(lengths, max_len)
    row = np.repeat(np.arange(len(series)), keep)
    within = np.arange(keep.sum()) - np.repeat(np.cumsum(keep) - keep, keep)  # 0..keep-1 per row
    src = np.repeat(ends - keep, keep) + within
    dst = np.repeat(max_len - keep, keep) + within
    out[row, dst] = ids[src]  # an empty history ("") is a single PAD
    return out


def bars_root(root=None) -> Path:
    return Path(root or os.environ.get("COMPANION_BARS") or cache_dir() / "bars")


def load_bars(name: str, root=None, max_rows: int | None = None, min_count: int | None = None,
              valid_fraction: float = 0.1, seed: int = 0, cache: bool = True) -> CTRSplits:
    """Load ``<root>/<name>/{train,test}.csv`` into tensors (root: argument, $COMPANION_BARS, or the cache)."""
    if name not in BARS_SPECS:
        raise ValueError(f"unknown BARS dataset {name!r}; known: {sorted(BARS_SPECS)}")
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    spec = BARS_SPECS[name]
    min_count = spec.min_count if min_count is None else min_count
    folder = bars_root(root) / name
    files = {s: folder / f"{s}.csv" for s in ("train", "test")}
    absent = [p for p in files.values() if not p.exists()]
    if absent:
        raise MissingDataError(f"{name} ({', '.join(p.name for p in absent)})", absent,
                               f"Download the split from {spec.url} and unpack train.csv and test.csv into {folder} "
                               "(or pass root=... / set COMPANION_BARS to the folder that holds the dataset folders).")
    key = None
    if cache:
        stamp = "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files.values())
        key = hashlib.sha1(f"{stamp}|{max_rows}|{min_count}|{valid_fraction}|{seed}".encode()).hexdigest()[:16]
        cached = cache_dir() / "bars_tensors" / f"{name}_{key}.pt"
        if cached.exists():
            splits = _read_cached(cached)
            if splits is not None:
                log.info("%s: cached tensors %s", name, cached)
                return splits

    train_df, test_df = (_read_csv(files[s], spec, max_rows) for s in ("train", "test"))
    # vocabularies from training rows only; a history shares its target column's vocabulary
    vocabs = {}
    for col in spec.categorical:
        tokens = [train_df[col][train_df[col] != ""]]
        tokens += [_tokens(train_df[s.name], spec.splitter) for s in spec.sequences if s.share_with == col]
        vocabs[col] = _vocab(pd.concat(tokens).value_counts(), min_count)
    for s in spec.sequences:
        if s.share_with is None:
            vocabs[s.name] = _vocab(_tokens(train_df[s.name], spec.splitter).value_counts(), min_count)
    num_stats = {c: (lambda v: (v.mean(), v.std() or 1.0))(pd.to_numeric(train_df[c].replace("", "0")))
                 for c in spec.numeric}

    def encode(df):
        dense = np.stack([(pd.to_numeric(df[c].replace("", "0")).to_numpy() - num_stats[c][0]) / num_stats[c][1]
                          for c in spec.numeric], 1) if spec.numeric else np.zeros((len(df), 0))
        sparse = np.stack([df[c].map(vocabs[c]).fillna(OOV).astype(np.int64).to_numpy() for c in spec.categorical], 1)
        seq = np.stack([_encode_seq(df[s.name], vocabs[s.share_with or s.name], spec.splitter, s.max_len)
                        for s in spec.sequences], 1)
        label = df[spec.label].astype(float).to_numpy()
        return dense.astype(np.float32), sparse, seq, label.astype(np.float32)

    group_codes = {v: i for i, v in enumerate(pd.concat([train_df[spec.group], test_df[spec.group]]).unique())}

    def dataset(df, idx=None):
        d, s, q, y = encode(df if idx is None else df.iloc[idx])
        g = (df if idx is None else df.iloc[idx])[spec.group].map(group_codes).to_numpy().astype(np.int64)
        return CTRDataset(torch.as_tensor(d), torch.as_tensor(s), torch.as_tensor(y), torch.as_tensor(q), torch.as_tensor(g))

    test = dataset(test_df)
    if valid_fraction > 0:
        perm = np.random.default_rng(seed).permutation(len(train_df))
        n_valid = max(1, int(round(len(train_df) * valid_fraction)))
        train, valid = dataset(train_df, np.sort(perm[n_valid:])), dataset(train_df, np.sort(perm[:n_valid]))
        vnote = f"{valid_fraction:.0%} of train held out (seed {seed})"
    else:
        train, valid = dataset(train_df), test
        vnote = "test file reused as validation (the BARS convention)"

    fields = [Field(c, "dense") for c in spec.numeric]
    fields += [Field(c, "sparse", len(vocabs[c]) + 2) for c in spec.categorical]
    fields += [Field(s.name, "sequence", len(vocabs[s.share_with or s.name]) + 2, s.max_len, share_with=s.share_with)
               for s in spec.sequences]
    splits = CTRSplits(Schema(fields), train, valid, test,
                       {"source": f"BARS {name} ({folder})", "validation": vnote, "min_count": min_count})
    if cache:
        _write_cached(splits, cached)
    return splits


_CACHE_FORMAT = 1
_COLUMNS = ("dense", "sparse", "label", "seq", "group")


def _write_cached(splits: CTRSplits, path: Path) -> None:
    """Tensors and plain values only, so the cache is read back with ``weights_only=True`` (no pickle of objects,
    so a file planted in the cache cannot run code); written under a temporary name and renamed."""
    payload = {
        "format": _CACHE_FORMAT,
        "schema": [[f.name, f.kind, f.vocab_size, f.max_len, f.share_with] for f in splits.schema.fields],
        "info": {k: v for k, v in splits.info.items() if isinstance(v, (str, int, float, bool))},
        "splits": {part: {c: getattr(getattr(splits, part), c) for c in _COLUMNS}
                   for part in ("train", "valid", "test")},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _read_cached(path: Path) -> CTRSplits | None:
    """The cached splits, or ``None`` after naming and deleting an entry that cannot be read safely (truncated,
    an older format, or anything but tensors and plain values); the caller then rebuilds it from the CSVs."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != _CACHE_FORMAT:
            raise ValueError(f"not a format-{_CACHE_FORMAT} cache entry")
        schema = Schema([Field(n, k, v, m, share_with=sw) for n, k, v, m, sw in payload["schema"]])
        parts = {part: CTRDataset(**{c: cols.get(c) for c in _COLUMNS}) for part, cols in payload["splits"].items()}
        return CTRSplits(schema, parts["train"], parts["valid"], parts["test"], dict(payload["info"]))
    except Exception as err:  # noqa: BLE001 (any unreadable entry is rebuilt, never trusted)
        log.warning("cache entry %s cannot be read (%s: %s); discarding it and rebuilding from the CSV files",
                    path, type(err).__name__, " ".join(str(err).split())[:200])
        try:
            path.unlink()
        except OSError:
            pass
        return None
