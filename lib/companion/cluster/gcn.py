"""A GCN link model on torch-geometric, in the style of learn-to-cluster's GCN-V/E, and clustering from its links.

The model reads an affinity graph (fixed-k or dynamic, from :mod:`companion.cluster.graph`) whose node features
are the L2-normalised embeddings. Its graph layers are PyG ``SAGEConv`` with mean aggregation: W [x, mean_N(x)],
which is learn-to-cluster's ``GraphConv`` (concat of a node and the row-normalised average of its neighbours).
Two heads:

* **confidence** (GCN-V): a scalar per node regressed onto how much of its neighbourhood shares its identity
  (the mean over neighbours of +sim for same-identity and -sim for other neighbours, the size-normalised
  variant of learn-to-cluster's ``s_nbr``);
* **link** (GCN-E-like, and STAR-FC's pair head): the probability that an edge joins one identity, from
  identity-free scalars of the pair (see ``GCNLink``).

Clustering (``link_clusters``): each node points to its best-scored neighbour among those with a higher
confidence (learn-to-cluster's "connect to a more confident neighbour", ``max_conn = 1``); the link is kept if its
score exceeds ``threshold``; union-find over kept links gives the clusters. The score is the edge's cosine
(GCN-V's inference, the default) or the link head's probability (GCN-E-like).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class UnionFind:
    """Disjoint sets with path halving and union by size."""

    def __init__(self, n: int):
        self.parent = np.arange(n)
        self.size = np.ones(n, dtype=np.int64)

    def find(self, a: int) -> int:
        p = self.parent
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def labels(self) -> np.ndarray:
        """Dense cluster ids 0..C-1 in order of each cluster's first member."""
        roots = np.array([self.find(i) for i in range(len(self.parent))])
        _, first, inv = np.unique(roots, return_index=True, return_inverse=True)
        order = np.argsort(np.argsort(first))
        return order[inv]


def union_find(n: int, edges) -> np.ndarray:
    """Cluster labels of ``n`` nodes joined by ``edges``, an array of shape (2, E)."""
    e = np.asarray(edges, dtype=np.int64).reshape(2, -1)
    uf = UnionFind(n)
    for a, b in e.T:
        uf.union(int(a), int(b))
    return uf.labels()


def confidence_target(edge_index: np.ndarray, weight: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Mean over a node's neighbours of +sim (same identity) or -sim (other identity)."""
    src, dst = edge_index
    signed = np.where(labels[src] == labels[dst], weight, -weight)
    tot = np.bincount(src, weights=signed, minlength=n)
    deg = np.bincount(src, minlength=n)
    return (tot / np.maximum(deg, 1)).astype(np.float32)


class GCNLink(nn.Module):
    """SAGEConv (mean) layers, then a node-confidence head and an edge-link head.

    The link head reads identity-free scalars of a pair: the cosine of the input embeddings, the cosine of the
    GCN outputs (a learned metric over neighbourhood-smoothed features) and both nodes' confidences. Feeding it
    h_i * h_j instead (as a pair head over raw features does) lets it memorise the directions of the few training
    identities a video offers, and it then fails on new characters; with thousands of training identities
    (MS1M) that problem does not arise, here it does.
    """

    def __init__(self, d_in: int, hidden: int = 32, layers: int = 1, dropout: float = 0.0):
        super().__init__()
        from torch_geometric.nn import SAGEConv

        dims = [d_in] + [hidden] * layers
        self.convs = nn.ModuleList(SAGEConv(a, b, aggr="mean") for a, b in zip(dims[:-1], dims[1:]))
        self.act = nn.PReLU()
        self.dropout = dropout
        self.conf = nn.Sequential(nn.Linear(hidden + 2, hidden), nn.PReLU(), nn.Linear(hidden, 1))
        self.link = nn.Sequential(nn.Linear(4, 16), nn.PReLU(), nn.Linear(16, 1))

    def embed(self, x, edge_index):
        h = x
        for conv in self.convs:
            h = self.act(conv(h, edge_index))
            h = nn.functional.dropout(h, self.dropout, self.training)
        return h

    def forward(self, x, edge_index, pairs):
        """Node confidences (n,) and link logits for ``pairs`` (2, P)."""
        from torch_geometric.utils import scatter

        h = self.embed(x, edge_index)
        sim = (x[edge_index[0]] * x[edge_index[1]]).sum(1)
        mean_sim = scatter(sim, edge_index[0], 0, dim_size=len(x), reduce="mean")
        sd_sim = scatter((sim - mean_sim[edge_index[0]]) ** 2, edge_index[0], 0, dim_size=len(x), reduce="mean").sqrt()
        conf = self.conf(torch.cat([h, mean_sim[:, None], sd_sim[:, None]], 1)).squeeze(1)
        hn = nn.functional.normalize(h, dim=1)
        cos_x = (x[pairs[0]] * x[pairs[1]]).sum(1)
        cos_h = (hn[pairs[0]] * hn[pairs[1]]).sum(1)
        feats = torch.stack([cos_x, cos_h, conf[pairs[0]], conf[pairs[1]]], 1)
        return conf, self.link(feats).squeeze(1)


@dataclass
class GCNConfig:
    hidden: int = 32
    layers: int = 1
    steps: int = 100
    lr: float = 0.01
    weight_decay: float = 1e-5
    threshold: float = 0.5
    seed: int = 0


def _graph_tensors(x: np.ndarray, nb):
    ei, w = nb.edges(symmetric=True)
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(ei), w


def train_gcn(graphs, cfg: GCNConfig = GCNConfig(), progress: bool = False) -> GCNLink:
    """Fit one model on labelled training graphs: a list of ``(x, neighbourhoods, labels)``.

    Full-batch steps cycle through the graphs; loss = MSE(confidence) + BCE(link) over every directed edge,
    positives re-weighted to balance the two classes.
    """
    torch.manual_seed(cfg.seed)
    data = []
    for x, nb, y in graphs:
        xt, ei, w = _graph_tensors(x, nb)
        y = np.asarray(y)
        conf = torch.as_tensor(confidence_target(ei.numpy(), w, y, len(y)))
        same = torch.as_tensor((y[ei[0].numpy()] == y[ei[1].numpy()]).astype(np.float32))
        data.append((xt, ei, conf, same))
    model = GCNLink(data[0][0].shape[1], cfg.hidden, cfg.layers)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    pos = torch.cat([d[3] for d in data]).mean().clamp(0.05, 0.95)
    bce = nn.BCEWithLogitsLoss(pos_weight=(1 - pos) / pos)
    model.train()
    steps = range(cfg.steps)
    if progress:
        from ..progress import tqdm

        steps = tqdm(steps, desc="GCN link model", leave=False)
    for step in steps:
        xt, ei, conf, same = data[step % len(data)]
        c, logit = model(xt, ei, ei)
        loss = nn.functional.mse_loss(c, conf) + bce(logit, same)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


@torch.no_grad()
def predict(model: GCNLink, x: np.ndarray, nb, score: str = "similarity") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(confidence (n,), edge_index (2, E), edge score (E,))`` on one graph.

    ``score="similarity"``: the cosine of the edge (GCN-V's inference: confidence orients the links, similarity
    decides them); ``score="link"``: the link head's probability (GCN-E-like).
    """
    xt, ei, w = _graph_tensors(x, nb)
    c, logit = model(xt, ei, ei)
    s = w if score == "similarity" else torch.sigmoid(logit).numpy()
    return c.numpy(), ei.numpy(), np.asarray(s)


def link_clusters(conf: np.ndarray, edge_index: np.ndarray, prob: np.ndarray, threshold: float = 0.5,
                  rule: str = "peak") -> np.ndarray:
    """Clusters from scored edges. ``peak``: each node keeps its most probable link to a more confident
    neighbour (a forest rooted at density peaks); ``all``: every edge above the threshold (chains more)."""
    n = len(conf)
    src, dst = edge_index
    keep = prob > threshold
    if rule == "all":
        return union_find(n, np.stack([src[keep], dst[keep]]))
    if rule != "peak":
        raise ValueError(f"rule must be 'peak' or 'all', got {rule!r}")
    ok = keep & (conf[dst] > conf[src])
    s, d, p = src[ok], dst[ok], prob[ok]
    order = np.lexsort((-p, s))  # by source, best link first
    s, d = s[order], d[order]
    first = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, bool)
    return union_find(n, np.stack([s[first], d[first]]))
