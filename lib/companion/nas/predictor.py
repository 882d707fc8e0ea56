"""The path-quality predictor of two-shot NAS: each encoding token is looked up in a small embedding
table (15-d in the paper), the embeddings are concatenated and an MLP regresses the *normalised* log loss.
The paper gives neither the MLP's size nor how the embeddings are combined; concatenation keeps the
position of every token, which a sum would lose.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from torch import nn


class PathPredictor(nn.Module):
    def __init__(self, cardinalities: np.ndarray, emb_dim: int = 15, hidden: int = 64, layers: int = 2):
        super().__init__()
        card = torch.as_tensor(np.asarray(cardinalities), dtype=torch.long)
        self.register_buffer("offsets", torch.cumsum(card, 0) - card, persistent=False)
        self.table = nn.Embedding(int(card.sum()), emb_dim)
        dims, mods = [len(card) * emb_dim] + [hidden] * layers, []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*mods, nn.Linear(dims[-1], 1))
        self.mean, self.std = 0.0, 1.0  # of the training targets, to undo the normalisation

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.table(codes + self.offsets).flatten(1)).squeeze(-1)

    @torch.no_grad()
    def predict(self, codes: np.ndarray, batch_size: int = 8192) -> np.ndarray:
        """Predicted log loss (un-normalised) for integer encodings [N, L]."""
        self.eval()
        x = torch.as_tensor(np.asarray(codes), dtype=torch.long)
        out = torch.cat([self(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) else torch.zeros(0)
        return out.numpy() * self.std + self.mean


@dataclass
class PredictorConfig:
    emb_dim: int = 15
    hidden: int = 64
    layers: int = 1
    epochs: int = 100
    lr: float = 1e-3  # 3e-3 sometimes killed every ReLU (constant predictions) on 0/1 token encodings
    weight_decay: float = 1e-4
    batch_size: int = 64
    holdout: float = 0.2  # share kept aside to report Kendall tau before refitting on everything
    seed: int = 0


def _train(model: PathPredictor, x: torch.Tensor, y: torch.Tensor, cfg: PredictorConfig) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            loss = F.mse_loss(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def fit_predictor(codes: np.ndarray, losses: np.ndarray, cardinalities: np.ndarray,
                  cfg: PredictorConfig | None = None) -> tuple[PathPredictor, dict]:
    """Fit on (encoding, log loss) pairs; report held-out Kendall tau, then refit on all pairs (as the paper does)."""
    cfg = cfg or PredictorConfig()
    codes, losses = np.asarray(codes), np.asarray(losses, dtype=np.float64)
    if len(codes) != len(losses) or len(codes) < 4:
        raise ValueError(f"need at least 4 (encoding, loss) pairs of equal count, got {len(codes)} and {len(losses)}")
    if not np.all(np.isfinite(losses)):
        raise ValueError("losses contain NaN/inf")
    rng = np.random.default_rng(cfg.seed)
    perm = rng.permutation(len(codes))
    n_hold = int(round(len(codes) * cfg.holdout)) if len(codes) >= 10 else 0
    report = {"n_train": len(codes)}

    def make(idx):
        torch.manual_seed(cfg.seed)
        m = PathPredictor(cardinalities, cfg.emb_dim, cfg.hidden, cfg.layers)
        m.mean, m.std = float(losses[idx].mean()), float(losses[idx].std() or 1.0)
        y = torch.as_tensor((losses[idx] - m.mean) / m.std, dtype=torch.float32)
        _train(m, torch.as_tensor(codes[idx], dtype=torch.long), y, cfg)
        return m

    if n_hold >= 3:
        hold, train = perm[:n_hold], perm[n_hold:]
        m = make(train)
        tau = kendalltau(m.predict(codes[hold]), losses[hold]).statistic
        report.update(holdout_kendall_tau=float(tau), n_holdout=int(n_hold))
    model = make(perm)
    fitted = model.predict(codes)
    if np.std(fitted) < 1e-6 * max(float(np.std(losses)), 1e-12):
        raise RuntimeError("the path predictor collapsed to a constant (dead ReLUs); lower PredictorConfig.lr")
    report["train_kendall_tau"] = float(kendalltau(fitted, losses).statistic)
    return model, report
