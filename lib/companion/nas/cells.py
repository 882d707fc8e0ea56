"""A small NAS-Bench-201-like cell space for 8x8 images, and its ground truth by training.

A cell has 4 nodes; every edge i -> j (i < j, 6 edges) carries one of ``OPS``: none (zero), skip, 1x1 conv,
3x3 conv, 3x3 average pool; node j is the sum of its incoming edges, the cell's output is node 3. Convolutions are
ReLU-Conv-BatchNorm as in NAS-Bench-201, with ``nn.ReLU`` modules so activation-pattern proxies (NASWOT) see them.
The network: a 3x3 stem convolution with BatchNorm, ``n_cells`` cells at ``channels`` channels, ReLU, global
average pooling, a linear classifier. 5^6 = 15,625 cells.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

OPS = ("none", "skip", "conv1x1", "conv3x3", "avgpool3x3")
EDGES = tuple((i, j) for j in range(1, 4) for i in range(j))  # (0,1), (0,2), (1,2), (0,3), (1,3), (2,3)


class Zero(nn.Module):
    def forward(self, x):
        return x * 0.0


def _op(name: str, c: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip":
        return nn.Identity()
    if name == "avgpool3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    k = 1 if name == "conv1x1" else 3
    return nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c))


class Cell(nn.Module):
    def __init__(self, arch: tuple[str, ...], c: int):
        super().__init__()
        self.arch = arch
        self.edges = nn.ModuleList(_op(o, c) for o in arch)

    def forward(self, x):
        nodes = [x]
        for j in range(1, 4):
            nodes.append(sum(self.edges[e](nodes[i]) for e, (i, jj) in enumerate(EDGES) if jj == j))
        return nodes[3]


class CellNet(nn.Module):
    def __init__(self, arch: tuple[str, ...], channels: int = 8, n_cells: int = 2, n_classes: int = 10, in_ch: int = 1):
        super().__init__()
        bad = [o for o in arch if o not in OPS]
        if len(arch) != len(EDGES) or bad:
            raise ValueError(f"a cell is {len(EDGES)} ops from {OPS}, got {arch}")
        self.arch = tuple(arch)
        self.stem = nn.Sequential(nn.Conv2d(in_ch, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.cells = nn.Sequential(*[Cell(self.arch, channels) for _ in range(n_cells)])
        self.act = nn.ReLU()
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x):
        return self.classifier(self.act(self.cells(self.stem(x))).mean((2, 3)))


@dataclass(frozen=True)
class CellSpace:
    ops: tuple[str, ...] = OPS
    channels: int = 8
    n_cells: int = 2

    def size(self) -> int:
        return len(self.ops) ** len(EDGES)

    def sample(self, n: int, seed: int = 0) -> list[tuple[str, ...]]:
        """``n`` distinct cells drawn uniformly (without replacement) from the whole space."""
        total = self.size()
        if not 1 <= n <= total:
            raise ValueError(f"n must lie in 1..{total}, got {n}")
        idx = np.random.default_rng(seed).choice(total, size=n, replace=False)
        every = list(itertools.product(self.ops, repeat=len(EDGES)))
        return [every[i] for i in idx]

    def build(self, arch, seed: int | None = None) -> CellNet:
        if seed is not None:
            torch.manual_seed(seed)
        return CellNet(arch, self.channels, self.n_cells)


def describe(arch) -> str:
    return "|".join(f"{o}~{i}" for o, (i, _) in zip(arch, EDGES))


def train_cell(space: CellSpace, arch, data, epochs: int = 10, batch_size: int = 64, lr: float = 0.1,
               seed: int = 0) -> dict:
    """Ground truth: SGD (momentum 0.9, Nesterov, weight decay 5e-4, cosine lr: NAS-Bench-201's recipe, shortened)
    from a fresh initialisation; returns validation and test accuracy and the final training loss."""
    net = space.build(arch, seed=seed + 10_000)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    n = len(data.y_train)
    steps = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    net.train()
    loss = torch.tensor(float("nan"))
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            loss = F.cross_entropy(net(data.x_train[idx]), data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        va = (net(data.x_valid).argmax(1) == data.y_valid).float().mean().item()
        te = (net(data.x_test).argmax(1) == data.y_test).float().mean().item()
    return {"valid_acc": va, "test_acc": te, "train_loss": loss.item()}
