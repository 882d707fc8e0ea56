"""Chronological "data dates" for DistDNAS-style searches: one shard per date, in time order, plus the date after
the last one as the test set.

DistDNAS (arXiv 2311.00231) runs one supernet search per day of Criteo Terabyte and aggregates the per-day choices.
Three sources cut the same way:

- :func:`synthetic_dates`: the planted-interaction generator with one shared ground truth and a planted mix that
  drifts over the dates (pair interactions fade, the triple grows), so per-date choices can disagree for a reason;
- :func:`movielens_dates`: MovieLens-100K's ratings cut by timestamp into equal-count chronological shards (real
  drift: Sept 1997 to Apr 1998), with the non-sequential features of :mod:`.movielens_seq`;
- :func:`criteo_day_dates`: the Criteo Terabyte ``day_N`` files (paper scale), one file per date.

:class:`DateSpec` names a source by plain values, so every rank of a torchrun job rebuilds the same shards.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .errors import MissingDataError
from .schema import CTRDataset, CTRSplits, Field, Schema, split_indices


@dataclass
class DateShards:
    schema: Schema
    dates: list[CTRDataset]  # training dates, oldest first
    test: CTRDataset  # the date after the last training date
    names: list[str]  # one label per training date, then the test date's
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.names) != len(self.dates) + 1:
            raise ValueError(f"{len(self.names)} names for {len(self.dates)} dates and a test date")

    def pooled(self, valid_fraction: float = 0.1) -> CTRSplits:
        """All training dates as one training set (the retraining of the searched model), with the last
        ``valid_fraction`` of the newest date as validation and the test date as test."""
        if not 0 < valid_fraction < 1:
            raise ValueError(f"valid_fraction must lie in (0, 1), got {valid_fraction}")
        last = self.dates[-1]
        cut = len(last) - max(1, int(round(valid_fraction * len(last))))
        head = [*self.dates[:-1], last.subset(torch.arange(cut))]
        train = CTRDataset(torch.cat([d.dense for d in head]), torch.cat([d.sparse for d in head]),
                           torch.cat([d.label for d in head]))
        valid = last.subset(torch.arange(cut, len(last)))
        return CTRSplits(self.schema, train, valid, self.test, {**self.info, "split": "dates pooled; valid = end of "
                                                                 "the newest date; test = the next date"})

    def table(self) -> pd.DataFrame:
        """One row per date: rows and click rate (and the planted mix for synthetic dates)."""
        rows = []
        for i, (name, d) in enumerate(zip(self.names, [*self.dates, self.test])):
            r = {"date": name, "role": "test" if i == len(self.dates) else "search", "rows": len(d), "ctr": d.ctr}
            for k, v in self.info.get("per_date", [{}] * (i + 1))[i].items():
                r[k] = v
            rows.append(r)
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class DateSpec:
    """Plain-value recipe of a set of dates (JSON-able, so torchrun ranks rebuild identical shards)."""

    source: str = "synthetic"  # synthetic | movielens | criteo_tb
    n_dates: int = 4
    rows_per_date: int = 3000  # synthetic rows per date; a cap per day for criteo_tb (0: all)
    seed: int = 0
    pair_scale: tuple = (1.5, 0.5)  # synthetic: planted pair strength on the first and the test date
    triple_scale: tuple = (0.5, 1.5)  # synthetic: planted triple strength on the first and the test date
    path: str = ""  # movielens: a GroupLens ml-100k folder (empty: the cached wheel); criteo_tb: the day-file folder
    hash_buckets: int = 100000  # criteo_tb

    def __post_init__(self):
        if self.source not in ("synthetic", "movielens", "criteo_tb"):
            raise ValueError(f"source must be synthetic|movielens|criteo_tb, got {self.source!r}")
        if self.n_dates < 1:
            raise ValueError(f"n_dates must be >= 1, got {self.n_dates}")

    def to_dict(self) -> dict:
        return asdict(self)

    def build(self) -> DateShards:
        if self.source == "synthetic":
            return synthetic_dates(self.n_dates, self.rows_per_date, self.seed, self.pair_scale, self.triple_scale)
        if self.source == "movielens":
            return movielens_dates(self.n_dates, path=self.path or None)
        return criteo_day_dates(self.path, range(self.n_dates), test_day=self.n_dates,
                                max_rows_per_day=self.rows_per_date or None, hash_buckets=self.hash_buckets)


def _lerp(ab, t: float) -> float:
    a, b = ab
    return float(a + t * (b - a))


def synthetic_dates(n_dates: int = 4, rows_per_date: int = 3000, seed: int = 0, pair_scale=(1.5, 0.5),
                    triple_scale=(0.5, 1.5), **kwargs) -> DateShards:
    """``n_dates`` search dates and a test date from one planted ground truth (``structure_seed=seed``), with
    the planted pair and triple strengths moving linearly from their first to their last value over the dates."""
    from .synthetic import make_synthetic_ctr

    dates, names, per_date, truth, bayes = [], [], [], None, None
    for k in range(n_dates + 1):
        t = k / n_dates
        ps, ts = _lerp(pair_scale, t), _lerp(triple_scale, t)
        row_seed = 100003 * (seed + 1) + k  # the rows of each date differ, the structure does not
        sp = make_synthetic_ctr(n_samples=rows_per_date, seed=row_seed, structure_seed=seed, pair_scale=ps,
                                triple_scale=ts, **kwargs)
        tr, va, te = split_indices(rows_per_date, (0.8, 0.1, 0.1), row_seed)
        order = torch.cat([tr, va, te])
        d = CTRDataset(torch.cat([sp.train.dense, sp.valid.dense, sp.test.dense]),
                       torch.cat([sp.train.sparse, sp.valid.sparse, sp.test.sparse]),
                       torch.cat([sp.train.label, sp.valid.label, sp.test.label]))
        prob = sp.info["true_prob"][order]
        truth = sp.info["ground_truth"]
        per_date.append({"pair_scale": ps, "triple_scale": ts})
        names.append(f"day {k}")
        if k == n_dates:
            from ..metrics import evaluate_ctr
            bayes = evaluate_ctr(d.label.numpy(), prob.numpy())
        dates.append(d)
    info = {"source": "synthetic", "seed": seed, "per_date": per_date, "pairs": truth.pairs,
            "triples": truth.triples, "bayes_test": bayes}
    return DateShards(sp.schema, dates[:-1], dates[-1], names, info)


def movielens_dates(n_dates: int = 4, threshold: int = 4, path=None) -> DateShards:
    """MovieLens-100K cut by timestamp into ``n_dates + 1`` equal-count shards, oldest first (the last is the test
    date). Features: the non-sequential fields of :func:`companion.data.movielens_seq.build_sequential_ctr` (user,
    age, gender, occupation, zip digit, movie, genre, decade; release year and log history length)."""
    from .movielens import load_movielens100k
    from .movielens_seq import build_sequential_ctr

    ml = load_movielens100k(path)
    sp = build_sequential_ctr(ml.ratings, ml.users, ml.items, ml.genres, max_len=1, threshold=threshold,
                              fractions=(1.0, 0.0, 0.0), source="MovieLens-100K")
    # build_sequential_ctr keeps its rows in (user, timestamp, item) order; recover each row's timestamp from it
    r = ml.ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)
    full = sp.train
    if len(r) != len(full) or not np.array_equal((r.rating.to_numpy() >= threshold).astype(np.float32),
                                                 full.label.numpy()):
        raise RuntimeError("MovieLens rows and their timestamps no longer line up (build_sequential_ctr's row order "
                           "changed); movielens_dates needs updating")
    ts = r.timestamp.to_numpy()
    order = np.argsort(ts, kind="stable")
    cuts = np.array_split(order, n_dates + 1)
    schema = Schema([f for f in sp.schema.fields if f.kind != "sequence"])
    dates, names, per_date = [], [], []
    for idx in cuts:
        i = torch.as_tensor(idx)
        dates.append(CTRDataset(full.dense[i], full.sparse[i], full.label[i]))
        lo, hi = pd.to_datetime(ts[idx].min(), unit="s"), pd.to_datetime(ts[idx].max(), unit="s")
        names.append(f"{lo:%Y-%m-%d}..{hi:%m-%d}")
        per_date.append({"first": f"{lo:%Y-%m-%d}", "last": f"{hi:%Y-%m-%d}",
                         "users": int(full.sparse[i, 0].unique().numel())})
    info = {"source": f"MovieLens-100K ({ml.source})", "threshold": threshold, "per_date": per_date}
    return DateShards(schema, dates[:-1], dates[-1], names, info)


CRITEO_TB_DAYS = 24  # day_0 .. day_23; the usual protocol searches/trains on days 0-22 and tests on day 23


def _criteo_day_file(folder: Path, day: int) -> Path:
    for name in (f"day_{day}", f"day_{day}.gz", f"day_{day}.txt"):
        if (folder / name).exists():
            return folder / name
    raise MissingDataError(f"Criteo Terabyte day {day}", [folder / f"day_{day}", folder / f"day_{day}.gz"],
                           "Download the Criteo 1TB Click Logs (https://ailab.criteo.com/download-criteo-1tb-click-"
                           "logs-dataset/) and pass the folder holding day_0 ... day_23 (plain or gzipped).")


def criteo_day_dates(folder, days=range(23), test_day: int = 23, max_rows_per_day: int | None = None,
                     hash_buckets: int = 100000) -> DateShards:
    """One date per Criteo Terabyte day file (Criteo TSV: label, I1..I13, C1..C26). Dense values become
    log(1 + max(x, 0)) (0 where empty); categories are hashed per field into ``hash_buckets`` ids (0 = empty), so
    every day maps a category to the same id without a vocabulary pass over 1 TB."""
    from .ctr_formats import CRITEO_DENSE, CRITEO_SPARSE, read_criteo

    if not str(folder):
        raise MissingDataError("Criteo Terabyte day files", [], "Set the data path to the folder with day_0 ... day_23.")
    folder = Path(folder)
    days = list(days)
    if hash_buckets < 2:
        raise ValueError(f"hash_buckets must be >= 2, got {hash_buckets}")

    def load(day: int) -> CTRDataset:
        df = read_criteo(_criteo_day_file(folder, day), max_rows=max_rows_per_day)
        dense = np.log1p(np.clip(np.nan_to_num(df[CRITEO_DENSE].to_numpy(np.float64), nan=0.0), 0, None))
        sparse = []
        for c in CRITEO_SPARSE:
            v = df[c].fillna("").astype(str).to_numpy(object)
            ids = (pd.util.hash_array(v, categorize=True) % np.uint64(hash_buckets - 1)).astype(np.int64) + 1
            ids[v == ""] = 0
            sparse.append(ids)
        return CTRDataset(torch.as_tensor(dense, dtype=torch.float32), torch.as_tensor(np.stack(sparse, 1)),
                          torch.as_tensor(np.array(df["label"], dtype=np.float32)))

    dates = [load(d) for d in days]
    test = load(test_day)
    schema = Schema([Field(c, "dense") for c in CRITEO_DENSE] + [Field(c, "sparse", hash_buckets) for c in CRITEO_SPARSE])
    return DateShards(schema, dates, test, [f"day_{d}" for d in days] + [f"day_{test_day}"],
                      {"source": f"Criteo Terabyte ({folder})", "hash_buckets": hash_buckets,
                       "per_date": [{} for _ in range(len(days) + 1)]})
