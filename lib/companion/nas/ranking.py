"""Performance predictors for search: an ensemble of small MLPs trained with a pairwise ranking loss, and
gradient-boosted trees, both returning a mean and a spread (the ensemble's disagreement) for each candidate.

Why ranking: a search only needs the order of candidates, and a margin loss on pairs spends the model's capacity
on the order instead of on the scale of noisy labels (Meta's AutoML paper trains its predictor this way; the loss
form is our reconstruction, see ``six_papers_addendum.md`` §3). Multi-task heads share the trunk so a cost (FLOPs,
latency) can be predicted beside the quality. Inputs are decision vectors, one-hot encoded by the space's
cardinalities.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn


def one_hot(codes: np.ndarray, cardinalities: Sequence[int]) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    card = np.asarray(cardinalities, dtype=np.int64)
    if codes.ndim != 2 or codes.shape[1] != len(card):
        raise ValueError(f"codes must be [n, {len(card)}], got {codes.shape}")
    if (codes < 0).any() or (codes >= card).any():
        raise ValueError("a code lies outside the cardinalities")
    offs = np.concatenate([[0], np.cumsum(card)[:-1]])
    out = np.zeros((len(codes), int(card.sum())), dtype=np.float32)
    rows = np.repeat(np.arange(len(codes)), len(card))
    out[rows, (codes + offs).ravel()] = 1.0
    return out


def _standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    mu, sd = float(np.mean(y)), float(np.std(y))
    sd = sd if sd > 1e-12 else 1.0
    return (y - mu) / sd, mu, sd


def margin_ranking_loss(pred: torch.Tensor, y: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Mean hinge over ordered pairs: for y_i > y_j, ``max(0, margin - (pred_i - pred_j))``."""
    diff_y = y[:, None] - y[None, :]
    diff_p = pred[:, None] - pred[None, :]
    mask = diff_y > 0
    if not mask.any():
        return pred.sum() * 0.0
    return torch.relu(margin - diff_p[mask]).mean()


class _MLP(nn.Module):
    def __init__(self, d_in: int, hidden: Sequence[int], n_tasks: int):
        super().__init__()
        layers, d = [], d_in
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.Linear(d, n_tasks)

    def forward(self, x):
        return self.heads(self.trunk(x))


@dataclass
class EnsembleConfig:
    members: int = 5
    hidden: tuple[int, ...] = (64, 64)
    loss: str = "margin"  # "margin" (pairwise ranking) or "mse"
    margin: float = 0.1
    epochs: int = 150
    lr: float = 3e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    bootstrap: bool = True  # each member sees a bootstrap resample (spread = disagreement)

    def __post_init__(self):
        if self.loss not in ("margin", "mse"):
            raise ValueError(f"loss must be 'margin' or 'mse', got {self.loss!r}")
        if self.members < 1 or self.epochs < 1:
            raise ValueError("members and epochs must be >= 1")


class MLPEnsemble:
    """``fit(codes, y)`` with ``y`` of shape [n] (quality only) or [n, k] (quality first, then costs). Task 0 uses
    the configured loss; cost tasks always use MSE on standardised targets. Higher predicted = better for task 0
    when ``y`` is a reward (higher is better)."""

    def __init__(self, cardinalities: Sequence[int], cfg: EnsembleConfig | None = None, seed: int = 0):
        self.card, self.cfg, self.seed = np.asarray(cardinalities), cfg or EnsembleConfig(), seed
        self.members: list[_MLP] = []

    def fit(self, codes: np.ndarray, y: np.ndarray) -> "MLPEnsemble":
        cfg = self.cfg
        x = torch.from_numpy(one_hot(codes, self.card))
        y = np.asarray(y, dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        if len(y) != len(x) or len(x) < 2:
            raise ValueError(f"need at least 2 labelled candidates with one label row each, got {len(x)} and {len(y)}")
        if not np.isfinite(y).all():
            raise ValueError("predictor labels contain NaN or inf; drop failed trials first")
        cols = [_standardise(y[:, k]) for k in range(y.shape[1])]
        self.scale = [(mu, sd) for _, mu, sd in cols]
        yt = torch.tensor(np.stack([c for c, _, _ in cols], 1), dtype=torch.float32)
        rng = np.random.default_rng(self.seed)
        self.members = []
        for m in range(cfg.members):
            torch.manual_seed(self.seed * 1000 + m)
            net = _MLP(x.shape[1], cfg.hidden, yt.shape[1])
            opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            idx = rng.integers(len(x), size=len(x)) if cfg.bootstrap else np.arange(len(x))
            xm, ym = x[idx], yt[idx]
            for _ in range(cfg.epochs):
                order = torch.from_numpy(rng.permutation(len(xm)))
                for s in range(0, len(xm), cfg.batch_size):
                    b = order[s:s + cfg.batch_size]
                    if len(b) < 2:
                        continue
                    out = net(xm[b])
                    if cfg.loss == "margin":
                        loss = margin_ranking_loss(out[:, 0], ym[b, 0], cfg.margin)
                    else:
                        loss = ((out[:, 0] - ym[b, 0]) ** 2).mean()
                    if yt.shape[1] > 1:
                        loss = loss + ((out[:, 1:] - ym[b, 1:]) ** 2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            self.members.append(net.eval())
        return self

    def predict_tasks(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and spread per task, [n, k] each, on the labels' scale (task 0 on a standardised scale under the
        ranking loss, whose outputs have no absolute meaning)."""
        if not self.members:
            raise RuntimeError("fit the predictor first")
        x = torch.from_numpy(one_hot(codes, self.card))
        with torch.no_grad():
            outs = torch.stack([m(x) for m in self.members]).numpy()  # [members, n, k]
        mean, sd = outs.mean(0), outs.std(0)
        for k, (mu, s) in enumerate(self.scale):
            if k == 0 and self.cfg.loss == "margin":
                continue
            mean[:, k], sd[:, k] = mean[:, k] * s + mu, sd[:, k] * s
        return mean, sd

    def predict(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, sd = self.predict_tasks(codes)
        return mean[:, 0], sd[:, 0]


class GBTEnsemble:
    """Bagged histogram gradient-boosted trees (scikit-learn); spread = disagreement of the bags."""

    def __init__(self, cardinalities: Sequence[int], members: int = 5, max_iter: int = 200, learning_rate: float = 0.1,
                 seed: int = 0, one_hot_inputs: bool = False):
        self.card, self.members_n, self.max_iter, self.lr, self.seed = np.asarray(cardinalities), members, max_iter, learning_rate, seed
        self.one_hot_inputs = one_hot_inputs
        self.models = []

    def _x(self, codes):
        codes = np.asarray(codes, dtype=np.int64)
        return one_hot(codes, self.card) if self.one_hot_inputs else codes.astype(np.float64)

    def fit(self, codes: np.ndarray, y: np.ndarray) -> "GBTEnsemble":
        from sklearn.ensemble import HistGradientBoostingRegressor
        x, y = self._x(codes), np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or len(y) != len(x) or len(x) < 2 or not np.isfinite(y).all():
            raise ValueError("GBTEnsemble.fit needs finite 1-D labels, one per candidate, at least 2")
        rng = np.random.default_rng(self.seed)
        self.models = []
        for m in range(self.members_n):
            idx = rng.integers(len(x), size=len(x)) if self.members_n > 1 else np.arange(len(x))
            model = HistGradientBoostingRegressor(max_iter=self.max_iter, learning_rate=self.lr, min_samples_leaf=min(20, max(2, len(x) // 10)),
                                                  random_state=self.seed * 1000 + m)
            self.models.append(model.fit(x[idx], y[idx]))
        return self

    def predict(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.models:
            raise RuntimeError("fit the predictor first")
        outs = np.stack([m.predict(self._x(codes)) for m in self.models])
        return outs.mean(0), outs.std(0)
