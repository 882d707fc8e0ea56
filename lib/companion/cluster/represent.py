"""The unified representation network: one network for face, body and voice tracks, in one space.

UniDG's abstract: "learns representations of multiple modalities within the same space and still preserves the
modality's uniqueness". The body of the paper is not available; the design here follows the team's earlier public
code (a transformer whose attention is shared across modalities while each modality has its own FFN; see
points_video_addendum.md B-4), cut down to an MLP for feature vectors:

    x_m --(modality-specific input layer)--> h --(shared block + modality-specific FFN, residual) x depth
      --(shared projection)--> L2-normalised embedding

trained with one cosine-margin classifier (CosFace) over the training identities, shared by all modalities, so the
face, body and voice of a character are pulled to the same class centre. ``shared=False`` gives the ablation: one
independent network per modality (same widths, its own classifier), whose spaces are not comparable across
modalities.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..data.video_tracks import MODALITIES


class _Block(nn.Module):
    def __init__(self, h: int, modalities, shared: nn.Module | None):
        super().__init__()
        self.norm = nn.LayerNorm(h)
        self.shared = shared if shared is not None else nn.Sequential(nn.Linear(h, h), nn.GELU())
        self.ffn = nn.ModuleDict({m: nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Linear(h, h)) for m in modalities})

    def forward(self, h, m):
        z = self.norm(h)
        return h + self.shared(z) + self.ffn[m](z)


class UnifiedNet(nn.Module):
    """Shared trunk with modality-specific input layers and FFNs; ``forward(x, modality)`` -> unit vectors."""

    def __init__(self, dims: dict, hidden: int = 128, emb: int = 64, depth: int = 2):
        super().__init__()
        self.modalities = list(dims)
        self.inp = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in dims.items()})
        self.blocks = nn.ModuleList(_Block(hidden, self.modalities, None) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, emb))

    def forward(self, x, m):
        h = self.inp[m](x)
        for b in self.blocks:
            h = b(h, m)
        return nn.functional.normalize(self.out(h), dim=1)


class SeparateNets(nn.Module):
    """The ablation: an independent UnifiedNet-shaped network per modality."""

    def __init__(self, dims: dict, hidden: int = 128, emb: int = 64, depth: int = 2):
        super().__init__()
        self.modalities = list(dims)
        self.nets = nn.ModuleDict({m: UnifiedNet({m: d}, hidden, emb, depth) for m, d in dims.items()})

    def forward(self, x, m):
        return self.nets[m](x, m)


class CosFace(nn.Module):
    """Cosine classifier with an additive margin: logits s * (cos - m * onehot)."""

    def __init__(self, emb: int, classes: int, s: float = 16.0, m: float = 0.2):
        super().__init__()
        self.w = nn.Parameter(torch.randn(classes, emb) * 0.01)
        self.s, self.m = s, m

    def forward(self, e, y):
        cos = e @ nn.functional.normalize(self.w, dim=1).T
        return self.s * (cos - self.m * nn.functional.one_hot(y, cos.shape[1]))


@dataclass
class RepConfig:
    shared: bool = True
    hidden: int = 64
    emb: int = 32
    depth: int = 1
    steps: int = 200
    batch: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0


def training_set(videos) -> dict:
    """Per modality, the stacked features and identity ids made unique across videos (labels < 0 dropped)."""
    out = {m: ([], []) for m in MODALITIES}
    offset = 0
    for v in videos:
        lab = v.labels
        for m in MODALITIES:
            y = lab[v.rows(m)]
            keep = y >= 0
            out[m][0].append(v.features[m][keep])
            out[m][1].append(y[keep] + offset)
        offset += int(lab.max()) + 1 if (lab >= 0).any() else 0
    return {m: (np.concatenate(xs), np.concatenate(ys)) for m, (xs, ys) in out.items() if sum(len(y) for y in ys)}


def train_representation(videos, cfg: RepConfig = RepConfig(), progress: bool = False) -> nn.Module:
    """Fit the unified network (or, with ``shared=False``, the separate ones) on labelled training videos.

    Each step draws an equal share of the batch from every modality; the unified network has one classifier for
    all modalities, the separate networks one each. Same steps, batch and optimiser in both cases.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = training_set(videos)
    dims = {m: x.shape[1] for m, (x, _) in data.items()}
    n_cls = int(max(y.max() for _, y in data.values())) + 1
    cls_net = UnifiedNet if cfg.shared else SeparateNets
    net = cls_net(dims, cfg.hidden, cfg.emb, cfg.depth)
    heads = nn.ModuleDict({"all": CosFace(cfg.emb, n_cls)}) if cfg.shared else \
        nn.ModuleDict({m: CosFace(cfg.emb, n_cls) for m in dims})
    params = list(net.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.steps)
    tensors = {m: (torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)) for m, (x, y) in data.items()}
    per = max(1, cfg.batch // len(tensors))
    steps = range(cfg.steps)
    if progress:
        from ..progress import tqdm

        steps = tqdm(steps, desc=("unified" if cfg.shared else "separate") + " representation", leave=False)
    net.train()
    for _ in steps:
        loss = 0.0
        for m, (x, y) in tensors.items():
            b = torch.as_tensor(rng.integers(0, len(y), per))
            e = net(x[b], m)
            head = heads["all"] if cfg.shared else heads[m]
            loss = loss + nn.functional.cross_entropy(head(e, y[b]), y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return net


@torch.no_grad()
def embed(net: nn.Module | None, video) -> np.ndarray:
    """Embeddings of every track of ``video``, aligned with ``video.tracks`` rows; ``net=None`` uses the given
    features L2-normalised (for users' own embeddings; modalities must then share one length to be compared)."""
    from .graph import l2_normalise

    n = len(video.tracks)
    out = None
    for m in MODALITIES:
        rows = video.rows(m)
        if not len(rows):
            continue
        x = video.features[m]
        e = l2_normalise(x) if net is None else net(torch.as_tensor(x), m).numpy()
        if out is None:
            out = np.zeros((n, e.shape[1]), np.float32)
        if e.shape[1] != out.shape[1]:
            raise ValueError(f"{m} embeddings have length {e.shape[1]}, others {out.shape[1]}: "
                             "give a representation network, or features of one length")
        out[rows] = e
    return out
