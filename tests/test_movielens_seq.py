import numpy as np
import pandas as pd
import pytest
import torch

from companion.data.movielens import GENRES
from companion.data.movielens_seq import build_sequential_ctr


def _tables():
    rng = np.random.default_rng(0)
    ratings = []
    for u in (1, 2, 3):
        for t in range(20):
            ratings.append((u, int(rng.integers(1, 9)), int(rng.integers(1, 6)), 1000 * u + 10 * t))
    ratings = pd.DataFrame(ratings, columns=["user_id", "item_id", "rating", "timestamp"]).sample(frac=1, random_state=0)
    users = pd.DataFrame({"user_id": [1, 2, 3], "age": [17, 30, 60], "gender": ["M", "F", "M"],
                          "occupation": ["writer", "artist", "writer"], "zip_code": ["12345", "90210", "T8H1N"]})
    items = pd.DataFrame({"item_id": range(1, 9), "title": [f"m{i}" for i in range(1, 9)],
                          "release_date": ["01-Jan-1995"] * 7 + [""]})
    for g in GENRES:
        items[g] = 0
    for i, g in zip(range(1, 9), ["Action", "Comedy", "Drama", "Action", "Horror", "Comedy", "Drama", "unknown"]):
        items.loc[items.item_id == i, g] = 1
    return ratings, users, items


def test_histories_are_earlier_ratings_and_split_is_chronological():
    ratings, users, items = _tables()
    sp = build_sequential_ctr(ratings, users, items, GENRES, max_len=5, threshold=4)
    assert len(sp.train) + len(sp.valid) + len(sp.test) == 60
    assert [f.name for f in sp.schema.sequence] == ["item_history", "genre_history"]
    r = ratings.sort_values(["user_id", "timestamp"])
    u1 = r[r.user_id == 1].item_id.tolist()
    # user 1's third rating: history = its first two items, pre-padded
    tr = sp.train
    rows = (tr.group == 1).nonzero().flatten()
    third = tr.seq[rows[2], 0]
    assert third.tolist() == [0, 0, 0, u1[0], u1[1]]
    assert tr.sparse[rows[2], 5] == u1[2]
    # genre history is aligned with the item history
    genre_of = {i: 1 + GENRES.index(g) for i, g in zip(range(1, 9), ["Action", "Comedy", "Drama", "Action", "Horror",
                                                                      "Comedy", "Drama", "unknown"])}
    pairs = [(it, g) for it, g in zip(tr.seq[:, 0].flatten().tolist(), tr.seq[:, 1].flatten().tolist())]
    assert all(g == 0 if it == 0 else g == genre_of[it] for it, g in pairs)
    assert all(int(g) == genre_of[int(i)] for i, g in zip(tr.sparse[:, 5], tr.sparse[:, 6]))
    # labels follow the threshold
    assert set(tr.label.tolist()) <= {0.0, 1.0}
    # every user's test rows come after their training rows: test histories are longer
    for u in (1, 2, 3):
        n_tr = int((sp.train.group == u).sum())
        n_te = int((sp.test.group == u).sum())
        assert n_te >= 1 and n_tr >= 14
        assert int((sp.test.seq[sp.test.group == u, 0] > 0).sum(-1).min()) == 5  # full-length history by then
    assert sp.train.dense.shape[1] == 2 and torch.isfinite(sp.train.dense).all()


def test_threshold_and_bad_tables():
    ratings, users, items = _tables()
    sp = build_sequential_ctr(ratings, users, items, GENRES, max_len=3, threshold=5)
    all_labels = torch.cat([sp.train.label, sp.valid.label, sp.test.label]).sum()
    assert int(all_labels) == int((ratings.rating >= 5).sum())
    with pytest.raises(ValueError, match="lacks columns"):
        build_sequential_ctr(ratings.drop(columns="timestamp"), users, items, GENRES)
    with pytest.raises(ValueError, match="missing from"):
        build_sequential_ctr(ratings, users[users.user_id != 3], items, GENRES)
    with pytest.raises(ValueError, match="max_len"):
        build_sequential_ctr(ratings, users, items, GENRES, max_len=0)
