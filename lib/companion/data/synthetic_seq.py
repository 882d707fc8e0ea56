"""Synthetic sequential CTR data whose click logit needs information to flow both ways.

Each user has a profile id and a history of items (each item belongs to one category; the item and category
histories are two aligned sequences). The true logit has three parts, each standardized:

- ``n2s`` (profile reads the sequence): the share of the history that falls in the category the *profile*
  points to. A model can only compute it if non-sequence information steers how the sequence is read.
- ``s2n`` (sequence meets the candidate): how many of the ``recent`` latest events share the *candidate's*
  category, times a sign set by the context field. What the sequence says has to meet two non-sequence
  fields, and it depends on order, so an early mean over the history blurs it.
- first-order effects of profile, candidate category and context.

The Bayes-optimal test metrics (true probabilities) are returned, so a model's gap to the best possible is known.
"""
from __future__ import annotations

import numpy as np
import torch

from ..metrics import evaluate_ctr
from .schema import CTRDataset, CTRSplits, Field, Schema


def make_synthetic_seq(n: int = 20000, n_users: int = 500, n_profiles: int = 16, n_categories: int = 12,
                       items_per_category: int = 20, n_contexts: int = 4, max_len: int = 20, min_len: int = 2, recent: int = 3,
                       weights=(1.0, 1.0, 0.5), bias: float = -0.3, fractions=(0.8, 0.1, 0.1),
                       seed: int = 0) -> CTRSplits:
    """Rows are (user, candidate, context, history); weights are (n2s, s2n, first-order) logit scales."""
    if n < 10 or max_len < min_len or min_len < 1:
        raise ValueError(f"need n >= 10 and 1 <= min_len <= max_len; got n={n}, min_len={min_len}, max_len={max_len}")
    if not 1 <= recent <= max_len:
        raise ValueError(f"recent must be in [1, max_len], got {recent}")
    if len(weights) != 3:
        raise ValueError(f"weights must be (n2s, s2n, first_order), got {weights}")
    rng = np.random.default_rng(seed)
    n_items = n_categories * items_per_category
    # users: a profile and a taste over categories (a few favourite categories)
    profile = rng.integers(0, n_profiles, n_users)
    taste = rng.dirichlet(np.full(n_categories, 0.3), n_users)
    profile_target = rng.integers(0, n_categories, n_profiles)  # the category each profile "cares" about
    user = rng.integers(0, n_users, n)
    lengths = rng.integers(min_len, max_len + 1, n)
    cats = np.zeros((n, max_len), dtype=np.int64)
    items = np.zeros((n, max_len), dtype=np.int64)
    valid = np.arange(max_len)[None, :] >= (max_len - lengths)[:, None]  # pre-padding: history at the end
    cum = taste[user].cumsum(1)
    u = rng.random((n, max_len))
    drawn = (u[..., None] > cum[:, None, :]).sum(-1).clip(max=n_categories - 1)
    cats[valid] = drawn[valid]
    items[valid] = cats[valid] * items_per_category + rng.integers(0, items_per_category, int(valid.sum()))
    cand_cat = np.where(rng.random(n) < 0.5, drawn[:, -1], rng.integers(0, n_categories, n))
    cand_item = cand_cat * items_per_category + rng.integers(0, items_per_category, n)
    context = rng.integers(0, n_contexts, n)

    prof = profile[user]
    denom = lengths.astype(float)
    share_profile = (valid & (cats == profile_target[prof][:, None])).sum(1) / denom
    share_cand = (valid & (cats == cand_cat[:, None]))[:, -recent:].sum(1) / recent
    ctx_sign = rng.choice([-1.0, 1.0], n_contexts)[context]
    first = rng.normal(size=n_profiles)[prof] + rng.normal(size=n_categories)[cand_cat] + rng.normal(size=n_contexts)[context]

    def z(v):
        return (v - v.mean()) / (v.std() + 1e-12)

    w_n2s, w_s2n, w_first = weights
    logit = bias + w_n2s * z(share_profile) + w_s2n * z(share_cand * ctx_sign) + w_first * z(first)
    p = 1 / (1 + np.exp(-logit))
    label = (rng.random(n) < p).astype(np.float32)

    schema = Schema([
        Field("user_id", "sparse", n_users + 1), Field("profile", "sparse", n_profiles + 1),
        Field("context", "sparse", n_contexts + 1), Field("item_id", "sparse", n_items + 1),
        Field("category", "sparse", n_categories + 1),
        Field("item_history", "sequence", n_items + 1, max_len, share_with="item_id"),
        Field("category_history", "sequence", n_categories + 1, max_len, share_with="category"),
    ])
    sparse = np.stack([user + 1, prof + 1, context + 1, cand_item + 1, cand_cat + 1], 1)
    seq = np.stack([np.where(valid, items + 1, 0), np.where(valid, cats + 1, 0)], 1)
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
        "first_order_only_test": score(1 / (1 + np.exp(-(bias + w_first * z(first))))),
        "weights": {"n2s": w_n2s, "s2n": w_s2n, "first_order": w_first}, "recent": recent,
    }
    return CTRSplits(schema, ds(tr), ds(va), ds(te), info)
