"""SiGeo's theory check (the official notebook ``empirical-justification-for-the-theory-warmup_to_100_Percent``),
on any small image set, plus rank correlations of the recorded quantities with the final test loss.

One-hidden-layer MLPs (``MLP2``: Linear -> ReLU -> Linear -> ReLU on the logits -> log-softmax, as released) of
several widths train with SGD (lr 0.2) for a few epochs. At given points of the *first* epoch (0 %, 10 %, ... of its
batches) and for ``eval_batch`` consecutive batches, the current weights are copied into a second network, which
runs forward and backward on the same batch; its gradients are recorded while the main network trains on. From
them: the current training loss, the log-squared Fisher-Rao norm log((theta . sum_b g_b)^2) over all parameters,
the summed mean |g| and std g (population) over coordinates with non-zero std of the Linear weights, and ZiCo.
The target is the mean test loss after training.

``accumulate=True`` reproduces the released notebook, which never zeroes the copy's gradients, so every recorded
gradient is the running sum over the window's batches and over earlier windows; the default zeroes them.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..progress import tqdm

QUANTITIES = ("current_loss", "fr", "mean_abs_grad", "std_grad", "zico")


class MLP2(nn.Module):
    def __init__(self, input_dim: int, width: int, n_classes: int = 10):
        super().__init__()
        self.input_dim = input_dim
        self.mlp = nn.Sequential(nn.Linear(input_dim, width), nn.ReLU(), nn.Linear(width, n_classes), nn.ReLU())

    def forward(self, x):
        return F.log_softmax(self.mlp(x.reshape(-1, self.input_dim)), dim=1)


def _window_starts(n_batches: int, levels, eval_batch: int) -> list[int]:
    """First batch of each window; a window that would run past the epoch is moved back to end with it."""
    return [min(int(n_batches * lv), max(0, n_batches - eval_batch)) for lv in levels]


def _stats(grads: dict[str, list], flat_sum: torch.Tensor, theta: torch.Tensor) -> dict:
    zico = mean_abs = std = 0.0
    for g in grads.values():
        g = np.stack(g)
        sd = g.std(axis=0)
        nz = np.nonzero(sd)[0]
        ma = np.abs(g).mean(axis=0)
        s = float(np.sum(ma[nz] / sd[nz]))
        if s != 0:
            zico += math.log(s)
            mean_abs += float(ma[nz].sum())
            std += float(sd[nz].sum())
    fr = float(torch.log((flat_sum * theta).sum() ** 2))
    return {"fr": fr, "mean_abs_grad": mean_abs, "std_grad": std, "zico": zico}


def run_one(data, width: int, seed: int, levels=(0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 0.99), epochs: int = 3,
            lr: float = 0.2, batch_size: int = 16, eval_batch: int = 4, accumulate: bool = False) -> list[dict]:
    """Train one MLP2 and record the quantities at every warm-up level; one row per level."""
    x, y = data.x_train.flatten(1), data.y_train
    d = x.shape[1]
    torch.manual_seed(seed)
    net, copy_net = MLP2(d, width), MLP2(d, width)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    n = len(y)
    n_batches = math.ceil(n / batch_size)
    starts = _window_starts(n_batches, levels, eval_batch)
    rec = [dict(grads={}, flat=None, loss=None, out=None) for _ in levels]
    for e in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(n_batches):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            opt.step()
            if e:
                continue
            for k, s in enumerate(starts):
                if not s <= i < s + eval_batch:
                    continue
                copy_net.load_state_dict(net.state_dict())
                if not accumulate:
                    copy_net.zero_grad(set_to_none=True)
                loss2 = F.cross_entropy(copy_net(xb), yb)
                loss2.backward()
                r = rec[k]
                flat = torch.cat([p.grad.flatten() for p in copy_net.parameters()]).detach().clone()
                r["flat"] = flat if r["flat"] is None else r["flat"] + flat
                for name, m in copy_net.named_modules():
                    if isinstance(m, nn.Linear):
                        r["grads"].setdefault(name, []).append(m.weight.grad.detach().flatten().numpy().copy())
                if i == s + eval_batch - 1:
                    theta = torch.cat([p.detach().flatten() for p in net.parameters()])
                    r["out"] = {"current_loss": loss2.item(), **_stats(r["grads"], r["flat"], theta)}
    net.eval()
    with torch.no_grad():
        test_loss = F.cross_entropy(net(data.x_test.flatten(1)), data.y_test).item()
    return [{"width": width, "seed": seed, "level": lv, "window_start": s, "n_batches": n_batches, **rec[k]["out"],
             "test_loss": test_loss} for k, (lv, s) in enumerate(zip(levels, starts))]


def run(data, widths, repeats: int = 1, seed: int = 0, progress: bool = True, **kw) -> pd.DataFrame:
    """Every width ``repeats`` times (seeds seed*100000 + width*100 + r); one row per (width, repeat, level)."""
    rows = []
    jobs = [(w, r) for w in widths for r in range(repeats)]
    for w, r in tqdm(jobs, desc="theory check", disable=not progress, leave=False):
        for row in run_one(data, w, seed * 100_000 + w * 100 + r, **kw):
            rows.append({**row, "repeat": r, "replicate": seed})
    return pd.DataFrame(rows)


def correlations(df: pd.DataFrame, target: str = "test_loss", quantities=QUANTITIES,
                 by=("replicate", "level")) -> pd.DataFrame:
    """Spearman and Kendall of each quantity with ``target`` within every (replicate, level) group."""
    from scipy import stats

    rows = []
    for key, grp in df.groupby(list(by)):
        for q in quantities:
            v = grp[q].replace([np.inf, -np.inf], np.nan)
            ok = v.notna()
            rows.append({**dict(zip(by, key)), "quantity": q,
                         "spearman": stats.spearmanr(v[ok], grp[target][ok]).statistic,
                         "kendall": stats.kendalltau(v[ok], grp[target][ok]).statistic})
    return pd.DataFrame(rows)
