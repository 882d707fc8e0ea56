"""MovieLens-100K as a sequential CTR task (real data, small enough for a laptop).

Every rating becomes one row: will user u "click" (rate >= ``threshold``) movie i, given
- non-sequence fields: user id, age bucket, gender, occupation, first zip digit, movie id, primary genre,
  release decade, plus two dense values (standardized release year and log history length);
- two aligned sequences: the movies the user rated *before* this one, and their primary genres
  (the last ``max_len`` of them, oldest first, pre-padded with 0), whatever the rating was.

Split: per user and in time order (a leave-last-out split widened to fractions): each user's last
``fractions[2]`` of ratings are the test set, the ones before them validation, the rest training. So every
test row lies in its user's future and every user appears in all three splits (gAUC is per user).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .schema import CTRDataset, CTRSplits, Field, Schema

AGE_EDGES = [18, 25, 35, 45, 50, 56]  # the MovieLens-1M age groups


def _codes(values: pd.Series) -> np.ndarray:
    """Category codes starting at 1 (0 stays free for padding/unknown), in sorted order for stability."""
    return pd.Categorical(values, categories=sorted(values.unique())).codes.astype(np.int64) + 1


def _standardize(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    return (v - v.mean()) / (sd if sd > 0 else 1.0)


def build_sequential_ctr(ratings: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame, genres: list[str],
                         max_len: int = 20, threshold: int = 4, fractions=(0.8, 0.1, 0.1),
                         source: str = "MovieLens-100K") -> CTRSplits:
    """Turn rating/user/item tables (MovieLens column names) into a sequential CTR split; see the module doc."""
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    for name, df, cols in (("ratings", ratings, ["user_id", "item_id", "rating", "timestamp"]),
                           ("users", users, ["user_id", "age", "gender", "occupation", "zip_code"]),
                           ("items", items, ["item_id", "release_date", *genres])):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"the {name} table lacks columns {missing}; it has {list(df.columns)}")
    unknown_users = set(ratings.user_id) - set(users.user_id)
    unknown_items = set(ratings.item_id) - set(items.item_id)
    if unknown_users or unknown_items:
        raise ValueError(f"ratings refer to {len(unknown_users)} users and {len(unknown_items)} items missing from "
                         f"the users/items tables (e.g. {sorted(unknown_users)[:3]}, {sorted(unknown_items)[:3]})")

    r = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)
    n = len(r)
    u = r.user_id.to_numpy()
    start = np.r_[0, np.flatnonzero(u[1:] != u[:-1]) + 1]
    counts = np.diff(np.r_[start, n])
    first_row = np.repeat(start, counts)
    rank = np.arange(n) - first_row  # position of the rating in its user's timeline
    size = np.repeat(counts, counts)

    # item side: primary genre (first flagged one, 0 if none) and release year
    it = items.set_index("item_id")
    gmat = it[genres].to_numpy()
    primary = np.where(gmat.any(1), gmat.argmax(1) + 1, 0)
    year = pd.to_datetime(it.release_date, format="%d-%b-%Y", errors="coerce").dt.year
    year = year.fillna(year.median()).to_numpy()
    item_pos = pd.Series(np.arange(len(it)), index=it.index)
    ipos = item_pos.loc[r.item_id].to_numpy()
    item_ids = r.item_id.to_numpy().astype(np.int64)
    item_genre = primary[ipos]
    decade = ((year[ipos] // 10) - (year.min() // 10) + 1).astype(np.int64)

    # user side
    us = users.set_index("user_id")
    upos = pd.Series(np.arange(len(us)), index=us.index).loc[r.user_id].to_numpy()
    age = np.digitize(us.age.to_numpy(), AGE_EDGES)[upos] + 1
    gender = _codes(us.gender.astype(str))[upos]
    occupation = _codes(us.occupation.astype(str))[upos]
    zip1 = _codes(us.zip_code.astype(str).str[:1])[upos]

    # histories: the max_len ratings before each one, oldest first, pre-padded
    offs = np.arange(-max_len, 0)
    idx = np.arange(n)[:, None] + offs[None, :]
    valid = idx >= first_row[:, None]
    idx = np.where(valid, idx, 0)
    hist_items = np.where(valid, item_ids[idx], 0)
    hist_genres = np.where(valid, item_genre[idx], 0)
    hist_len = np.minimum(rank, max_len)

    n_items = int(max(items.item_id.max(), item_ids.max())) + 1
    schema = Schema([
        Field("year", "dense"), Field("log_history", "dense"),
        Field("user_id", "sparse", int(u.max()) + 1), Field("age", "sparse", len(AGE_EDGES) + 2),
        Field("gender", "sparse", int(gender.max()) + 1), Field("occupation", "sparse", int(occupation.max()) + 1),
        Field("zip1", "sparse", int(zip1.max()) + 1), Field("item_id", "sparse", n_items),
        Field("genre", "sparse", len(genres) + 1), Field("decade", "sparse", int(decade.max()) + 1),
        Field("item_history", "sequence", n_items, max_len, share_with="item_id"),
        Field("genre_history", "sequence", len(genres) + 1, max_len, share_with="genre"),
    ])
    y = year[ipos]
    lh = np.log1p(rank)
    dense = np.stack([_standardize(y), _standardize(lh)], 1).astype(np.float32)
    sparse = np.stack([u, age, gender, occupation, zip1, item_ids, item_genre, decade], 1).astype(np.int64)
    seq = np.stack([hist_items, hist_genres], 1).astype(np.int64)
    label = (r.rating.to_numpy() >= threshold).astype(np.float32)

    # per-user chronological split
    frac_pos = rank / size
    test = frac_pos >= 1 - fractions[2]
    valid_split = ~test & (frac_pos >= 1 - fractions[2] - fractions[1])
    train = ~test & ~valid_split

    def ds(m):
        i = np.flatnonzero(m)
        return CTRDataset(torch.as_tensor(dense[i]), torch.as_tensor(sparse[i]), torch.as_tensor(label[i]),
                          torch.as_tensor(seq[i]), torch.as_tensor(u[i].astype(np.int64)))

    info = {"source": source, "split": "per-user chronological (last ratings of each user are the test set)",
            "threshold": threshold, "max_len": max_len, "mean_history": float(hist_len.mean())}
    return CTRSplits(schema, ds(train), ds(valid_split), ds(test), info)


def load_movielens_seq(max_len: int = 20, threshold: int = 4, fractions=(0.8, 0.1, 0.1), path=None) -> CTRSplits:
    """MovieLens-100K as sequential CTR (reads the tables through :func:`companion.data.movielens.load_movielens100k`)."""
    from .movielens import load_movielens100k

    ml = load_movielens100k(path)
    return build_sequential_ctr(ml.ratings, ml.users, ml.items, ml.genres, max_len, threshold, fractions,
                                source=f"MovieLens-100K ({ml.source})")
