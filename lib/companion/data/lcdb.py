"""LCDB (Mohr, Viering et al. 2022): real learning curves of 20 scikit-learn learners on 248 OpenML datasets,
as shipped in the ``lcdb`` sdist on PyPI (``lcdb/database-logloss.csv``).

One row per (dataset, learner, training size, outer seed, inner seed) with train/valid/test log loss; training
sizes are the geometric anchors 16, 23, 32, 45, 64, 91, ... (x sqrt 2) plus each dataset's full training size.
We fetch the sdist once with ``pip download --no-deps --no-binary :all:`` (pinned by its sha256), stream just the
log-loss member out of the tar archive, check it, and cache it as parquet, with a second, small table of the
curves averaged over seeds (what the low-fidelity analysis reads). ``COMPANION_LCDB`` may point at the sdist or
at a ``database-logloss.csv`` instead.
"""
from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..runtime import cache_dir, log
from .errors import DataFormatError, MissingDataError
from .pypi_fetch import check_sha256, pip_download

SDIST = "lcdb==0.1.0"
SDIST_SHA256 = "450ea69b249866298653f718d66a825e3d19a4024dd4ff140b89f2e04d4777ae"
MEMBER = "lcdb-0.1.0/lcdb/database-logloss.csv"
COLUMNS = ["openmlid", "learner", "size_train", "size_test", "outer_seed", "inner_seed", "traintime", "score_train",
           "score_valid", "score_test"]
INT_COLS = ["openmlid", "size_train", "size_test", "outer_seed", "inner_seed"]
FLOAT_COLS = ["traintime", "score_train", "score_valid", "score_test"]
CURVE_COLUMNS = ["openmlid", "learner", "size_train", "n_seeds", "valid", "test", "train"]


def short_learner(name: str) -> str:
    """``sklearn.ensemble.RandomForestClassifier`` -> ``RandomForestClassifier`` (SVC_* names stay)."""
    return str(name).rsplit(".", 1)[-1]


def read_logloss_csv(source, name: str | None = None) -> pd.DataFrame:
    """The log-loss table from a path or an open binary file; a row with the wrong number of fields or a value
    that is not a number raises :class:`DataFormatError` naming the file and line (line 1 = the header)."""
    name = name or str(source)
    try:
        df = pd.read_csv(source, dtype={"learner": str}, on_bad_lines="error", low_memory=False)
    except pd.errors.ParserError as e:
        msg = str(e)
        line = None
        if "line" in msg:
            try:
                line = int(msg.split("line", 1)[1].split(",")[0].strip())
            except ValueError:
                pass
        raise DataFormatError(name, line, f"malformed CSV row ({msg.strip()})") from None
    except pd.errors.EmptyDataError:
        raise DataFormatError(name, None, "file is empty") from None
    if list(df.columns) != COLUMNS:
        raise DataFormatError(name, 1, f"expected the columns {COLUMNS}, found {list(df.columns)}")
    if df.empty:
        raise DataFormatError(name, None, "no rows")
    for col in INT_COLS + FLOAT_COLS:
        if df[col].dtype.kind in "iu" or (col in FLOAT_COLS and df[col].dtype.kind == "f"):
            continue
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() | (col in INT_COLS and (num % 1 != 0))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(name, i + 2, f"column {col!r} is not {'an integer' if col in INT_COLS else 'a number'}: "
                                               f"{df[col].iloc[i]!r}")
        df[col] = num.astype("int64" if col in INT_COLS else "float64")
    for col in INT_COLS:
        df[col] = df[col].astype("int64")
    bad = ~np.isfinite(df[FLOAT_COLS].to_numpy()).all(1) | (df["size_train"].to_numpy() < 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFormatError(name, i + 2, f"non-finite score or training size < 1: {df.iloc[i].to_dict()}")
    return df


def mean_curves(df: pd.DataFrame) -> pd.DataFrame:
    """Log loss averaged over the outer/inner seeds, one row per (dataset, learner, training size)."""
    g = df.groupby(["openmlid", "learner", "size_train"], sort=True)
    out = g.agg(n_seeds=("score_valid", "size"), valid=("score_valid", "mean"), test=("score_test", "mean"),
                train=("score_train", "mean")).reset_index()
    out["learner"] = out["learner"].map(short_learner)
    return out[CURVE_COLUMNS]


def _read_from_sdist(sdist: Path) -> pd.DataFrame:
    with tarfile.open(sdist, "r:gz") as tf:
        try:
            fh = tf.extractfile(MEMBER)
        except KeyError:
            fh = None
        if fh is None:
            raise DataFormatError(sdist, None, f"the archive has no member {MEMBER}")
        with fh:
            return read_logloss_csv(fh, name=f"{sdist.name}:{MEMBER}")


def fetch_lcdb(dest: Path | None = None) -> Path:
    """Download the sdist (no dependencies, sha256-pinned), take the log-loss CSV, cache it and its mean curves."""
    dest = Path(dest) if dest else cache_dir() / "lcdb"
    if (dest / "logloss.parquet").exists() and (dest / "logloss_curves.parquet").exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log.info("fetching LCDB from the %s sdist (no dependencies; 68 MB)", SDIST)
        sdist = pip_download(SDIST, SDIST_SHA256, Path(tmp), sdist=True, what="LCDB",
                             hint="Offline? Set COMPANION_LCDB to the lcdb-0.1.0.tar.gz sdist or to its "
                                  "lcdb/database-logloss.csv.")
        df = _read_from_sdist(sdist)
    df.to_parquet(dest / "logloss.parquet", index=False)
    mean_curves(df).to_parquet(dest / "logloss_curves.parquet", index=False)
    (dest / "SOURCE.txt").write_text(f"{MEMBER} from the PyPI sdist {SDIST} (sha256 {SDIST_SHA256})\n"
                                     f"{len(df)} rows, {df.openmlid.nunique()} datasets, {df.learner.nunique()} learners\n")
    return dest


def load_lcdb_curves(path=None) -> pd.DataFrame:
    """Mean log-loss curves (:data:`CURVE_COLUMNS`): from ``path``/``COMPANION_LCDB`` (sdist or CSV) or the cache."""
    path = path or os.environ.get("COMPANION_LCDB")
    if path:
        p = Path(path)
        if not p.exists():
            raise MissingDataError("LCDB", [p], "COMPANION_LCDB names a file that does not exist.")
        if p.name.endswith(".tar.gz"):
            check_sha256(p, SDIST_SHA256)
            return mean_curves(_read_from_sdist(p))
        return mean_curves(read_logloss_csv(p))
    return pd.read_parquet(fetch_lcdb() / "logloss_curves.parquet")


def load_lcdb_rows(path=None) -> pd.DataFrame:
    """Every log-loss row (1.95 M), for analyses that need the seeds."""
    path = path or os.environ.get("COMPANION_LCDB")
    if path:
        p = Path(path)
        return _read_from_sdist(p) if p.name.endswith(".tar.gz") else read_logloss_csv(p)
    return pd.read_parquet(fetch_lcdb() / "logloss.parquet")
