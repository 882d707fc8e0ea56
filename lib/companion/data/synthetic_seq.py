"""Synthetic sequential CTR data whose flow signals live in the *order* of the history, out of reach of pooling.

Each user has a profile and a taste over item categories; each row is (user, candidate item, context, history).
The history holds exactly one event of the profile's target category and exactly one event of the candidate's
category; every other event is a filler drawn from the user's taste over the remaining categories. The click
logit is

    bias + w_n2s * c_profile + w_s2n * c_candidate * scale(context) + w_first * z(first-order effects)

with two fair coins that only decide *where* those two events sit:

- ``c_profile`` (non-sequence -> sequence): +1 puts the profile's target-category event in the newer half of
  the history, -1 in the older half. Which event matters is named by a non-sequence field, so the profile has
  to steer how the sequence is read.
- ``c_candidate`` (sequence -> non-sequence): +1 puts the candidate-category event among the ``recent`` latest
  events, -1 before them; its size is scaled by the context (a factor in [0.25, 1.75] per context value), so
  what the sequence says has to meet two non-sequence fields.

Why pooling cannot see them: the multiset of the history (hence any mean-, sum- or attention-without-position
pooling of it) is the same whatever the coins say, so the coins are independent of every permutation-invariant
summary given the non-sequence fields. The best such model averages the coins out; its AUC is returned as
``pooled_bayes_test`` beside the Bayes-optimal ``bayes_test``. With ``w_first == 0`` and ``bias == 0`` that
average is exactly 0.5 for every row, so a pooled model cannot beat chance at all (the unit tests use this).
The previous version of this task planted a category *share*, which a mean-pooled model could read off.
"""
from __future__ import annotations

import numpy as np
import torch

from ..metrics import evaluate_ctr
from .schema import CTRDataset, CTRSplits, Field, Schema


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def make_synthetic_seq(n: int = 20000, n_users: int = 200, n_profiles: int = 16, n_categories: int = 12,
                       items_per_category: int = 5, n_contexts: int = 4, max_len: int = 12, min_len: int | None = None,
                       recent: int = 1, weights=(3.0, 3.0, 0.5), bias: float = -0.3, fractions=(0.8, 0.1, 0.1),
                       seed: int = 0) -> CTRSplits:
    """Rows are (user, candidate, context, history); weights are (n2s, s2n, first-order) logit scales.

    The defaults make the order signals strong (Bayes AUC about 0.95) and the id vocabularies small, because
    small-init embedding models otherwise spend their first epochs memorizing ids before they find a product
    of two embeddings; on a laptop budget a weaker signal is simply not learned by any model.

    History lengths are drawn from [min_len, max_len] (pre-padded to max_len); ``min_len`` defaults to and must be
    at least ``2 * recent + 2`` so each coin has a free slot on both sides.
    """
    min_len = 2 * recent + 2 if min_len is None else min_len
    if n < 10 or recent < 1 or min_len < 2 * recent + 2 or max_len < min_len:
        raise ValueError(f"need n >= 10, recent >= 1 and 2 * recent + 2 <= min_len <= max_len; got n={n}, "
                         f"recent={recent}, min_len={min_len}, max_len={max_len}")
    if n_categories < 3:
        raise ValueError(f"need n_categories >= 3 (two planted categories and fillers), got {n_categories}")
    if len(weights) != 3:
        raise ValueError(f"weights must be (n2s, s2n, first_order), got {weights}")
    rng = np.random.default_rng(seed)
    n_items = n_categories * items_per_category
    profile = rng.integers(0, n_profiles, n_users)
    taste = rng.dirichlet(np.full(n_categories, 0.3), n_users) + 1e-3
    profile_target = rng.integers(0, n_categories, n_profiles)  # the category each profile "cares" about

    user = rng.integers(0, n_users, n)
    prof = profile[user]
    c_p = profile_target[prof]
    cand_cat = (c_p + rng.integers(1, n_categories, n)) % n_categories  # any category but the profile's
    cand_item = cand_cat * items_per_category + rng.integers(0, items_per_category, n)
    context = rng.integers(0, n_contexts, n)
    lengths = rng.integers(min_len, max_len + 1, n)

    # fillers: the user's taste without the two planted categories
    w = taste[user].copy()
    w[np.arange(n), c_p] = 0
    w[np.arange(n), cand_cat] = 0
    cum = (w / w.sum(1, keepdims=True)).cumsum(1)
    drawn = (rng.random((n, max_len))[..., None] > cum[:, None, :]).sum(-1).clip(max=n_categories - 1)

    # the two coins and the positions they choose (within the real history, 0 = oldest)
    coin_cand = rng.choice([-1.0, 1.0], n)
    coin_prof = rng.choice([-1.0, 1.0], n)
    u1, u2 = rng.random(n), rng.random(n)
    pos_cand = np.where(coin_cand > 0, lengths - recent + (u1 * recent).astype(int),
                        (u1 * (lengths - recent)).astype(int))
    half = (lengths + 1) // 2  # older half: [0, half), newer half: [half, L)
    lo = np.where(coin_prof > 0, half, 0)
    size = np.where(coin_prof > 0, lengths - half, half)
    inside = (pos_cand >= lo) & (pos_cand < lo + size)  # the candidate's event took a slot on this side
    k = (u2 * (size - inside)).astype(int)
    pos_prof = lo + k + (inside & (lo + k >= pos_cand))  # skip the taken slot

    cats = drawn.copy()
    r = np.arange(n)
    cats[r, pos_cand] = cand_cat
    cats[r, pos_prof] = c_p
    pad = max_len - lengths
    valid = np.arange(max_len)[None, :] >= pad[:, None]  # pre-padding: the history sits at the end
    cats_padded = np.zeros((n, max_len), dtype=np.int64)
    src = np.arange(max_len)[None, :] - pad[:, None]
    cats_padded[valid] = cats[np.nonzero(valid)[0], src[valid]]
    items = cats_padded * items_per_category + rng.integers(0, items_per_category, (n, max_len))

    ctx_scale = rng.uniform(0.25, 1.75, n_contexts)[context]
    first = rng.normal(size=n_profiles)[prof] + rng.normal(size=n_categories)[cand_cat] + rng.normal(size=n_contexts)[context]
    z_first = (first - first.mean()) / (first.std() + 1e-12)
    w_n2s, w_s2n, w_first = weights
    logit = bias + w_n2s * coin_prof + w_s2n * coin_cand * ctx_scale + w_first * z_first
    p = _sigmoid(logit)
    label = (rng.random(n) < p).astype(np.float32)
    # the best a permutation-invariant model can do: average the coins out (both are fair and independent of it)
    p_pooled = np.mean([_sigmoid(bias + w_n2s * a + w_s2n * b * ctx_scale + w_first * z_first)
                        for a in (-1.0, 1.0) for b in (-1.0, 1.0)], 0).round(12)  # no float-noise ranking

    schema = Schema([
        Field("user_id", "sparse", n_users + 1), Field("profile", "sparse", n_profiles + 1),
        Field("context", "sparse", n_contexts + 1), Field("item_id", "sparse", n_items + 1),
        Field("category", "sparse", n_categories + 1),
        Field("item_history", "sequence", n_items + 1, max_len, share_with="item_id"),
        Field("category_history", "sequence", n_categories + 1, max_len, share_with="category"),
    ])
    sparse = np.stack([user + 1, prof + 1, context + 1, cand_item + 1, cand_cat + 1], 1)
    seq = np.stack([np.where(valid, items + 1, 0), np.where(valid, cats_padded + 1, 0)], 1)
    order = rng.permutation(n)
    a = int(round(n * fractions[0]))
    bnd = a + int(round(n * fractions[1]))

    def ds(idx):
        return CTRDataset(torch.zeros(len(idx), 0), torch.as_tensor(sparse[idx]), torch.as_tensor(label[idx]),
                          torch.as_tensor(seq[idx]), torch.as_tensor(user[idx]))

    tr, va, te = order[:a], order[a:bnd], order[bnd:]

    def score(prob):
        try:
            return evaluate_ctr(label[te], prob[te], groups=user[te], base_ctr=float(label[tr].mean()))
        except ValueError:  # tiny test sets may have no user with both classes: no gAUC then
            return evaluate_ctr(label[te], prob[te], base_ctr=float(label[tr].mean()))

    info = {
        "source": "synthetic sequences (companion.data.synthetic_seq)",
        "bayes_test": score(p),
        "pooled_bayes_test": score(p_pooled),
        "first_order_only_test": score(_sigmoid(bias + w_first * z_first)),
        "weights": {"n2s": w_n2s, "s2n": w_s2n, "first_order": w_first}, "recent": recent,
        "planted": {"profile_target": profile_target.tolist()},
    }
    return CTRSplits(schema, ds(tr), ds(va), ds(te), info)
