"""InterFormer (Zeng et al., arXiv 2411.09852): interleaved, bidirectional learning over non-sequence
features and behaviour sequences, plus the attention read-outs, the paper's ablation switches and its Table 3.

Per layer l (notation of the paper; tokens are rows here, [B, N, d]):

- Cross Arch:  X_sum = Gate(LCE(X))                          (non-sequence summary, n_cls tokens)
               S_sum = Gate([S_CLS | PMA(S) | recent(S)])     (sequence summary, n_cls + n_pma + n_recent tokens)
- Interaction Arch:  X <- MLP(Interaction([X | S_sum]))       (DHEN = DOT + DCN by default; back to N tokens)
- Sequence Arch:     S <- MHA_RoPE(PFFN(X_sum, S))            (PFFN: S @ (X_sum^T W) per example)

Before layer 1 the first X_sum is prepended to the sequence as its CLS tokens. The head reads [X_sum | S_sum].
Choices the paper leaves open are constructor arguments; the defaults are explained in the notebook.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data.schema import Schema
from .embedding import FeatureEmbedding
from .layers import (LCE, MLP, PMA, DHENLayer, Gating, MaskNetMerge, MultiHeadAttention, key_attention_mask,
                     mask_positions, masked_mean, recent_selector, recent_tokens, rope_cache)

FLOWS = ("bidirectional", "n2s", "s2n", "separate")
SEQUENCE_MODES = ("full", "mean", "mlp", "attention")
INTERACTIONS = ("dhen", "dot", "dcn")
NORMS = ("pre", "post", "none")


class CrossArch(nn.Module):
    """Exchanges gated summaries: the non-sequence summary X_sum and the sequence summary S_sum."""

    def __init__(self, n_tokens, dim, n_cls, n_pma, n_recent, heads, gating, gate_act):
        super().__init__()
        self.n_cls, self.n_recent = n_cls, n_recent
        self.lce = LCE(n_tokens, n_cls)
        self.x_gate = Gating(dim, gating, gate_act)
        self.pma = PMA(dim, n_pma, heads) if n_pma else None
        self.s_gate = Gating(dim, gating, gate_act)

    def summarize_x(self, x):
        return self.x_gate(self.lce(x))

    def summarize_s(self, s, mask, attn_mask=None, recent=None, readout=None):
        """``attn_mask`` / ``recent``: the PMA mask and recent-event selector, shared by every layer's call.
        ``readout``: :func:`readout_selector` of the same mask; then the CLS tokens, the PMA pooling and the recent
        events are read from ``s`` by one batched matmul (one read of ``s`` and one gradient into it, no slices)."""
        if readout is not None:
            sel_cls, sel_recent = readout[:, : self.n_cls], readout[:, self.n_cls :]
            rows = [sel_cls] + ([self.pma.pool_weights(s, mask, attn_mask)] if self.pma is not None else []) + [sel_recent]
            read = torch.cat(rows, 1) @ s  # [B, n_cls + H * n_pma + n_recent, d]
            n_pool = rows[1].shape[1] if self.pma is not None else 0
            cls, pooled, last = read.split([self.n_cls, n_pool, sel_recent.shape[1]], 1)
            parts = [cls] + ([self.pma.project(pooled)] if self.pma is not None else []) + [last]
            return self.s_gate(torch.cat(parts, 1))
        parts = [s[:, : self.n_cls]]
        if self.pma is not None:
            parts.append(self.pma(s, mask, attn_mask))
        if self.n_recent:
            parts.append(recent_tokens(s[:, self.n_cls :], mask[:, self.n_cls :], self.n_recent, recent))
        return self.s_gate(torch.cat(parts, 1))


def readout_selector(ev_mask: torch.Tensor, n_cls: int, n_recent: int, dtype=torch.float32) -> torch.Tensor:
    """[B, n_cls + n_recent, n_cls + T] one-hot rows over the CLS-prefixed sequence: the CLS tokens, then the
    ``n_recent`` most recent real events (:func:`recent_selector`; zero rows where the history is shorter)."""
    b, t = ev_mask.shape
    cls = torch.eye(n_cls, n_cls + t, dtype=dtype, device=ev_mask.device).expand(b, -1, -1)
    if not n_recent:
        return cls
    recent = torch.cat([ev_mask.new_zeros(b, n_recent, n_cls, dtype=dtype), recent_selector(ev_mask, n_recent, dtype)], -1)
    return torch.cat([cls, recent], 1)


class InteractionArch(nn.Module):
    """Behaviour-aware non-sequence learning: an interaction module over [X | S_sum], then an MLP back to X's shape."""

    def __init__(self, n_tokens, n_extra, dim, kind, dhen_layers, cross_rank, residual):
        super().__init__()
        n_in = n_tokens + n_extra
        modules = {"dhen": ("dot", "dcn"), "dot": ("dot",), "dcn": ("dcn",)}[kind]
        self.inter = nn.Sequential(*[DHENLayer(n_in, n_in, dim, modules, cross_rank) for _ in range(dhen_layers)])
        self.back = nn.Linear(n_in * dim, n_tokens * dim)
        self.n_tokens, self.dim, self.residual = n_tokens, dim, residual
        self.norm = nn.LayerNorm(dim) if residual else nn.Identity()

    def forward(self, x, s_sum):
        z = x if s_sum is None else torch.cat([x, s_sum], 1)
        y = self.back(self.inter(z).flatten(1)).view(-1, self.n_tokens, self.dim)
        return self.norm(x + y) if self.residual else y


class SequenceArch(nn.Module):
    """Context-aware sequence modelling: a personalized FFN from X_sum, then masked self-attention with RoPE."""

    def __init__(self, dim, n_sum, heads, personalized, norm, rope, dropout=0.0, use_pffn=True, use_attention=True):
        super().__init__()
        self.personalized, self.norm_kind = personalized, norm
        self.use_pffn, self.use_attention = use_pffn, use_attention
        self.w_static = nn.Parameter(torch.eye(dim) / math.sqrt(dim) + torch.randn(dim, dim) * 0.01)
        self.w_pffn = nn.Parameter(torch.randn(n_sum, dim) / math.sqrt(n_sum * dim)) if personalized else None
        self.attn = MultiHeadAttention(dim, heads, rope=rope, dropout=dropout)
        self.n1 = nn.LayerNorm(dim) if norm != "none" else nn.Identity()
        self.n2 = nn.LayerNorm(dim) if norm != "none" else nn.Identity()

    def pffn(self, x_sum, s):
        """S @ W^T with W = W_static + X_sum^T W_PFFN, a d x d matrix per example (App. A.2.2); built transposed
        by one baddbmm and applied by one bmm (no einsum permutes)."""
        b = s.shape[0]
        w_t = self.w_static.t().unsqueeze(0)  # [1, e, d]
        if self.personalized:
            w_t = torch.baddbmm(w_t, self.w_pffn.t().unsqueeze(0).expand(b, -1, -1), x_sum)  # [B, e, d]
        return torch.bmm(s, w_t.expand(b, -1, -1))

    def forward(self, s, mask, pos, x_sum, rope=None, attn_mask=None):
        """PFFN then attention; ``use_pffn`` / ``use_attention`` drop one step (the Fig. 5 ablations).
        ``rope`` / ``attn_mask``: the RoPE tables and attention mask, computed once per forward by the caller."""
        att = dict(key_mask=mask, q_pos=pos, k_pos=pos, rope=rope, attn_mask=attn_mask)
        if self.use_pffn:
            if self.norm_kind == "pre":
                s = s + self.pffn(x_sum, self.n1(s))
            elif self.norm_kind == "post":
                s = self.n1(s + self.pffn(x_sum, s))
            else:
                s = self.pffn(x_sum, s)
        if self.use_attention:
            if self.norm_kind == "pre":
                h = self.n2(s)
                s = s + self.attn(h, h, **att)
            elif self.norm_kind == "post":
                s = self.n2(s + self.attn(s, s, **att))
            else:
                s = self.attn(s, s, **att)
        return s


class EarlyAggregator(nn.Module):
    """Compress the sequence before any interaction (the paper's Fig. 3 alternatives to keeping it whole).

    ``mean``: masked mean, one token. ``mlp``: the ``max_len`` most recent events (newest first, zeros where the
    history is shorter, so padding cannot move them) flattened through an MLP into ``n_out`` tokens.
    ``attention``: one masked self-attention layer with RoPE over the events, then attention pooling (PMA) with
    ``n_out`` learned queries.
    """

    def __init__(self, kind, dim, n_out, max_len, heads, act="swish"):
        super().__init__()
        self.kind, self.n_out, self.max_len, self.dim = kind, (1 if kind == "mean" else n_out), max_len, dim
        if kind == "mlp":
            self.mlp = MLP(max_len * dim, [4 * dim * self.n_out], self.n_out * dim, act=act)
        elif kind == "attention":
            self.norm = nn.LayerNorm(dim)
            self.attn = MultiHeadAttention(dim, heads, rope=True)
            self.pool = PMA(dim, self.n_out, heads)

    def forward(self, s, mask):
        if self.kind == "mean":
            return masked_mean(s, mask).unsqueeze(1)
        if self.kind == "mlp":
            flat = recent_tokens(s, mask, self.max_len).flatten(1)
            return self.mlp(flat).view(-1, self.n_out, self.dim)
        pos = mask_positions(mask)
        h = self.norm(s)
        s = s + self.attn(h, h, key_mask=mask, q_pos=pos, k_pos=pos)
        return self.pool(s, mask)


class InterFormer(nn.Module):
    """InterFormer with the ablation switches the notebook uses.

    flow: ``bidirectional`` (the paper), ``n2s`` (non-seq -> seq only: the Interaction Arch gets no S_sum),
    ``s2n`` (seq -> non-seq only: no personalized FFN, CLS tokens are learned constants), ``separate`` (neither;
    the two streams meet only in the head). sequence: ``full`` keeps the whole sequence through every layer;
    ``mean`` summarizes it early by mean pooling (no Sequence Arch), the "aggressive aggregation" the paper
    argues against (Fig. 2's ``sole`` mode); ``mlp`` and ``attention`` compress it early with an MLP or with
    attention (Fig. 3; see ``EarlyAggregator``). head_summaries: ``final`` applies one more Cross Arch after the
    last layer so the head sees the last updates; ``last_layer`` reuses layer L's summaries as Algorithm 1 is
    printed. ``pffn`` / ``seq_attention`` = False drop the PFFN or the attention of every Sequence Arch, and
    ``n_pma=0``, ``n_recent=0``, ``gating="none"`` drop those parts (the Fig. 5 component ablations).
    """

    def __init__(self, schema: Schema, dim: int = 16, layers: int = 2, n_cls: int = 4, n_pma: int = 2,
                 n_recent: int = 2, heads: int = 2, interaction: str = "dhen", dhen_layers: int = 1,
                 gating: str = "self", gate_act: str = "sigmoid", flow: str = "bidirectional",
                 sequence: str = "full", norm: str = "pre", head_summaries: str = "final",
                 head_hidden=(256, 128), rope: bool = True, cross_rank: int = 32, residual: bool = True,
                 act: str = "swish", pffn: bool = True, seq_attention: bool = True):
        super().__init__()
        for name, val, allowed in (("flow", flow, FLOWS), ("sequence", sequence, SEQUENCE_MODES),
                                   ("interaction", interaction, INTERACTIONS), ("norm", norm, NORMS),
                                   ("head_summaries", head_summaries, ("final", "last_layer"))):
            if val not in allowed:
                raise ValueError(f"InterFormer: {name} must be one of {allowed}, got {val!r}")
        if not schema.sequence:
            raise ValueError("InterFormer needs at least one sequence field in the schema")
        if layers < 1 or n_cls < 1 or n_pma < 0 or n_recent < 0:
            raise ValueError(f"InterFormer: need layers >= 1, n_cls >= 1, n_pma >= 0, n_recent >= 0; got "
                             f"{layers}, {n_cls}, {n_pma}, {n_recent}")
        self.schema, self.dim, self.flow, self.sequence, self.head_summaries = schema, dim, flow, sequence, head_summaries
        self.n_cls, self.heads, self.rope = n_cls, heads, rope
        if rope and (dim // heads) % 2:
            raise ValueError(f"InterFormer: RoPE needs an even head width, got dim {dim} / heads {heads}")
        self.emb = FeatureEmbedding(schema, dim)
        n, k = self.emb.n_tokens, self.emb.n_sequences
        self.merge = MaskNetMerge(k, dim, act=act)
        n_ssum = n_cls + n_pma + n_recent
        if sequence != "full":
            max_len = max(f.max_len for f in schema.sequence)
            self.aggregate = EarlyAggregator(sequence, dim, n_ssum, max_len, heads, act)
            n_ssum = self.aggregate.n_out
        s2n = flow in ("bidirectional", "s2n")
        n2s = flow in ("bidirectional", "n2s")
        n_cross = layers + (1 if head_summaries == "final" else 0)
        self.cross = nn.ModuleList(CrossArch(n, dim, n_cls, n_pma, n_recent, heads, gating, gate_act)
                                   for _ in range(n_cross))
        self.interaction = nn.ModuleList(InteractionArch(n, n_ssum if s2n else 0, dim, interaction, dhen_layers,
                                                         cross_rank, residual) for _ in range(layers))
        if sequence == "full":
            self.seq_arch = nn.ModuleList(SequenceArch(dim, n_cls, heads, n2s, norm, rope, use_pffn=pffn,
                                                       use_attention=seq_attention) for _ in range(layers))
        else:
            self.seq_arch = nn.ModuleList()
        self.cls_const = None if n2s else nn.Parameter(torch.randn(n_cls, dim) * 0.1)
        self.s2n, self.n2s = s2n, n2s
        self.head = MLP((n_cls + n_ssum) * dim, list(head_hidden), 1, act=act)
        self._trace: list | None = None

    def _t(self, stage: str, t: torch.Tensor) -> torch.Tensor:
        if self._trace is not None:
            self._trace.append((stage, tuple(t.shape)))
        return t

    @torch.no_grad()
    def trace_shapes(self, batch) -> pd.DataFrame:
        """Every intermediate tensor of one forward pass with its shape (for the architecture walk-through)."""
        self._trace = []
        try:
            self.eval()
            self(batch)
            return pd.DataFrame(self._trace, columns=["stage", "shape"])
        finally:
            self._trace = None

    def record_attention(self, on: bool = True) -> None:
        """Keep each Sequence Arch's attention map of the next forward pass (slower; for plots)."""
        for arch in self.seq_arch:
            arch.attn.keep_weights = on

    def attention_maps(self) -> list[torch.Tensor]:
        """Per layer [B, heads, n_cls + T, n_cls + T] from the last forward pass with recording on."""
        return [a.attn.last_weights for a in self.seq_arch if a.attn.last_weights is not None]

    def preprocess(self, batch):
        x = self.emb.tokens(batch)
        seqs, mask = self.emb.sequences(batch)
        return x, self.merge(seqs), mask.any(1)

    def forward(self, batch, return_summaries: bool = False):
        t = self._t
        x, s, ev_mask = self.preprocess(batch)
        if self._trace is not None:
            seqs, _ = self.emb.sequences(batch)
            t("non-sequence tokens X (shared embedding)", x)
            t("k aligned sequences, embedded", seqs)
            t("MaskNet-merged sequence S", s)
        b = x.shape[0]
        x_sum = t("X_sum = Gate(LCE(X)) (first layer)", self.cross[0].summarize_x(x))
        if self.sequence != "full":
            pooled = t(f"S compressed early ({self.sequence})", self.aggregate(s, ev_mask))
            for inter in self.interaction:
                x = inter(x, pooled if self.s2n else None)
            x_sum = self.cross[-1].summarize_x(x)
            s_sum = pooled
        else:
            cls = x_sum if self.n2s else self.cls_const.unsqueeze(0).expand(b, -1, -1)
            s = t("S with CLS tokens prepended", torch.cat([cls, s], 1))
            mask = torch.cat([ev_mask.new_ones(b, self.n_cls), ev_mask], 1)
            pos = torch.cat([torch.arange(self.n_cls, device=x.device).expand(b, -1), mask_positions(ev_mask, self.n_cls)], 1)
            # positions and mask are the same for every layer: RoPE's cos/sin and the attention mask once per forward
            attn_mask = key_attention_mask(mask)
            rope = rope_cache(pos, self.dim // self.heads, dtype=s.dtype, heads=self.heads) if self.rope else None
            summ = dict(attn_mask=attn_mask, readout=readout_selector(ev_mask, self.n_cls, self.cross[0].n_recent, s.dtype))
            for layer, (inter, seq_arch) in enumerate(zip(self.interaction, self.seq_arch)):
                cross = self.cross[layer]
                if layer > 0:
                    x_sum = t(f"layer {layer + 1}: X_sum", cross.summarize_x(x))
                s_sum = t(f"layer {layer + 1}: S_sum = Gate([CLS | PMA | recent])", cross.summarize_s(s, mask, **summ))
                x, s = inter(x, s_sum if self.s2n else None), seq_arch(s, mask, pos, x_sum, rope, attn_mask)
                t(f"layer {layer + 1}: X after Interaction Arch", x)
                t(f"layer {layer + 1}: S after Sequence Arch", s)
            if self.head_summaries == "final":
                x_sum, s_sum = self.cross[-1].summarize_x(x), self.cross[-1].summarize_s(s, mask, **summ)
        h = t("head input [X_sum | S_sum], flattened", torch.cat([x_sum, s_sum], 1).flatten(1))
        logit = t("logit", self.head(h).squeeze(-1))
        return (logit, x_sum, s_sum) if return_summaries else logit


def recorded_attention(model: InterFormer, batch: dict) -> list[torch.Tensor]:
    """Attention maps [B, H, T, T] of every sequence layer for one forward pass in eval mode."""
    model.eval()
    model.record_attention(True)
    try:
        with torch.no_grad():
            model(batch)
        return model.attention_maps()
    finally:
        model.record_attention(False)


def mean_attention(model: InterFormer, batch: dict, min_events: int | None = None) -> list[np.ndarray]:
    """Per layer, the attention map averaged over heads and over the rows whose history is full (so positions line up)."""
    maps = recorded_attention(model, batch)
    n_ev = (batch["seq"] > 0).any(1).sum(-1)
    keep = n_ev >= (min_events if min_events is not None else batch["seq"].shape[-1])
    if not keep.any():
        raise ValueError("no row in the batch has a full history; pass a smaller min_events")
    return [m[keep].mean((0, 1)).numpy() for m in maps]


# Table 3 of the paper (arXiv v4): gAUC, AUC, LogLoss, #Params per dataset (see shared notes, section 1.10)
PAPER_TABLE3 = {
    #            Amazon                               TaobaoAd                             KuaiVideo
    "FM": [(0.8494, 0.8485, 0.5060, "4.23M"), (0.5628, 0.6231, 0.1973, "43.08M"), (0.6567, 0.7389, 0.4445, "52.76M")],
    "xDeepFM": [(0.8763, 0.8791, 0.4394, "5.46M"), (0.5675, 0.6378, 0.1960, "53.79M"), (0.6621, 0.7423, 0.4382, "43.56M")],
    "AutoInt+": [(0.8786, 0.8804, 0.4441, "5.87M"), (0.5701, 0.6467, 0.1941, "42.05M"), (0.6619, 0.7420, 0.4369, "43.95M")],
    "DCNv2": [(0.8783, 0.8807, 0.4447, "5.23M"), (0.5704, 0.6472, 0.1933, "43.71M"), (0.6627, 0.7426, 0.4378, "42.48M")],
    "FmFM": [(0.8521, 0.8537, 0.4796, "4.21M"), (0.5698, 0.6330, 0.1963, "43.06M"), (0.6552, 0.7389, 0.4429, "51.97M")],
    "DOT": [(0.8697, 0.8703, 0.4485, "4.23M"), (0.5701, 0.6482, 0.1941, "41.54M"), (0.6605, 0.7435, 0.4361, "41.29M")],
    "DHEN": [(0.8759, 0.8790, 0.4398, "4.99M"), (0.5708, 0.6509, 0.1929, "43.89M"), (0.6589, 0.7424, 0.4365, "42.06M")],
    "Wukong": [(0.8747, 0.8765, 0.4455, "4.28M"), (0.5693, 0.6478, 0.1932, "41.72M"), (0.6587, 0.7423, 0.4372, "41.37M")],
    "DIN": [(0.8817, 0.8848, 0.4324, "5.40M"), (0.5719, 0.6507, 0.1931, "42.26M"), (0.6621, 0.7437, 0.4353, "43.03M")],
    "DIEN": [(0.8825, 0.8856, 0.4276, "5.37M"), (0.5721, 0.6519, 0.1929, "42.38M"), (0.6651, 0.7451, 0.4343, "43.43M")],
    "BST": [(0.8823, 0.8847, 0.4305, "5.30M"), (0.5698, 0.6489, 0.1935, "42.05M"), (0.6617, 0.7446, 0.4352, "42.83M")],
    "DMIN": [(0.8831, 0.8852, 0.4298, "5.94M"), (0.5723, 0.6498, 0.1933, "42.17M"), (0.6623, 0.7449, 0.4356, "41.61M")],
    "DMR": [(0.8827, 0.8848, 0.4309, "6.47M"), (0.5711, 0.6504, 0.1932, "45.82M"), (0.6642, 0.7449, 0.4355, "44.15M")],
    "TransAct": [(0.8835, 0.8851, 0.4285, "7.56M"), (0.5715, 0.6498, 0.1933, "44.39M"), (0.6632, 0.7448, 0.4352, "42.97M")],
    "InterFormer": [(0.8843, 0.8865, 0.4253, "7.18M"), (0.5728, 0.6528, 0.1926, "44.73M"), (0.6637, 0.7453, 0.4340, "43.61M")],
}
PAPER_DATASETS = ("AmazonElectronics", "TaobaoAd", "KuaiVideo")
# the notebook's ``dataset`` knob -> the Table 3 columns it should sit beside (MovieLens is not in the paper)
PAPER_DATASET_OF = {"amazon": "AmazonElectronics", "taobao": "TaobaoAd", "kuaivideo": "KuaiVideo", "movielens": None}


def paper_table(dataset: str = "AmazonElectronics") -> pd.DataFrame:
    """One dataset's columns of the paper's Table 3."""
    if dataset not in PAPER_DATASETS:
        raise ValueError(f"dataset must be one of {PAPER_DATASETS}, got {dataset!r}")
    i = PAPER_DATASETS.index(dataset)
    rows = {m: dict(zip(("gauc", "auc", "logloss", "params"), v[i])) for m, v in PAPER_TABLE3.items()}
    return pd.DataFrame.from_dict(rows, orient="index")


def paper_columns(dataset: str) -> pd.DataFrame:
    """The paper's numbers to put beside a run on ``dataset`` (a notebook ``dataset`` value).

    A BARS dataset gets its own Table 3 columns; MovieLens, which the paper does not use, gets the AUC of every
    paper dataset so that only orderings are compared.
    """
    if dataset not in PAPER_DATASET_OF:
        raise ValueError(f"dataset must be one of {list(PAPER_DATASET_OF)}, got {dataset!r}")
    name = PAPER_DATASET_OF[dataset]
    if name is not None:
        return paper_table(name).add_prefix("paper_")
    return pd.DataFrame({f"paper_auc_{d}": paper_table(d).auc for d in PAPER_DATASETS})


def paper_lead(dataset: str) -> str:
    """The paper's Table 3 margin of InterFormer over its best baseline, for the claims table."""
    names = [PAPER_DATASET_OF[dataset]] if PAPER_DATASET_OF.get(dataset) else list(PAPER_DATASETS)
    parts = []
    for d in names:
        t = paper_table(d)
        best = t.drop(index="InterFormer").auc.idxmax()
        parts.append(f"{d}: AUC {t.auc['InterFormer']:.4f} vs {best} {t.auc[best]:.4f} "
                     f"({t.auc['InterFormer'] - t.auc[best]:+.4f})")
    prefix = "" if PAPER_DATASET_OF.get(dataset) else "not on MovieLens; on its datasets "
    return prefix + "; ".join(parts)


# The paper's ablations as InterFormer switches. Fig. 2: interleaving modes x interaction backbone; Fig. 3: how
# the sequence is compressed before the interaction (``full`` = InterFormer's own way); Fig. 5: one component off.
FLOW_MODES = {"int": {}, "n2s": {"flow": "n2s"}, "s2n": {"flow": "s2n"}, "sep": {"flow": "separate"},
              "sole": {"sequence": "mean"}}
BACKBONES = {"dhen": "dhen", "dot": "dot", "dcnv2": "dcn"}
AGGREGATIONS = {"mlp": {"sequence": "mlp"}, "attention": {"sequence": "attention"}}  # Fig. 3's mean pooling = ``sole``
COMPONENTS = {"no_pma": {"n_pma": 0}, "no_recent": {"n_recent": 0}, "no_gating": {"gating": "none"},
              "no_pffn": {"pffn": False}, "no_attention": {"seq_attention": False}}
FULL = "int/dhen"  # the label of the unablated model in every ablation table


def ablation_variants(base: dict, modes=(), backbones=("dhen",), aggregations=(), components=()) -> dict:
    """``label -> ("InterFormer", kwargs)`` for a grid: ``mode/backbone`` (Fig. 2), ``agg:kind`` (Fig. 3) and the
    component names (Fig. 5). The full model (``int/dhen``) is not included; every comparison is against it."""
    bad = ([m for m in modes if m not in FLOW_MODES] + [b for b in backbones if b not in BACKBONES]
           + [a for a in aggregations if a not in AGGREGATIONS] + [c for c in components if c not in COMPONENTS])
    if bad:
        raise ValueError(f"unknown ablations {bad}; modes {list(FLOW_MODES)}, backbones {list(BACKBONES)}, "
                         f"aggregations {list(AGGREGATIONS)}, components {list(COMPONENTS)}")
    out = {}
    for b in backbones if modes else ():
        for m in ("int", *modes):  # each backbone's own full model, so its modes have a reference
            label = f"{m}/{b}"
            if label != FULL:
                out[label] = ("InterFormer", {**base, **FLOW_MODES[m], "interaction": BACKBONES[b]})
    for a in aggregations:
        out[f"agg:{a}"] = ("InterFormer", {**base, **AGGREGATIONS[a]})
    for c in components:
        out[c] = ("InterFormer", {**base, **COMPONENTS[c]})
    return out


def attention_entropy(model: InterFormer, batch: dict) -> list[float]:
    """Per layer, the mean entropy of the attention rows of real tokens, divided by log(number of real keys):
    1 means uniform attention over the history, values near 0 mean attention on a few tokens."""
    maps = recorded_attention(model, batch)
    ev = (batch["seq"] > 0).any(1)
    keys = torch.cat([torch.ones(ev.shape[0], model.n_cls, dtype=torch.bool), ev], 1)  # [B, T]
    n_keys = keys.sum(-1).float()
    out = []
    for w in maps:  # [B, H, T, T]
        h = -(w.clamp_min(1e-12).log() * w).sum(-1)  # [B, H, T]
        norm = h / n_keys.log().clamp_min(1e-6).view(-1, 1, 1)
        q = keys.unsqueeze(1).expand_as(norm)
        out.append(float(norm[q].mean()))
    return out


def entropy_by_layer(entropies: dict) -> tuple[dict, dict]:
    """Split per-seed entropies (``seed -> [layer 1, layer 2, ...]``) into layer 1 and the most focused later layer,
    the two sides of the Fig. 4 reading; seeds of a one-layer model have no later layer and are left out."""
    first = {s: e[0] for s, e in entropies.items() if len(e) > 1}
    later = {s: min(e[1:]) for s, e in entropies.items() if len(e) > 1}
    return first, later
