"""An analytic cluster model for the scale no laptop has: a step of a large LLM or recommendation model on N
simulated GPUs, as closed-form time and memory (the Calculon kind of model, `meta_ranking.md` §5.6).

* compute: a roofline per device, ``max(FLOPs / (peak x matmul efficiency), bytes / (HBM bandwidth x efficiency))``;
* communication: alpha-beta cost per collective (ring all-reduce ``2(p-1) alpha + 2 (p-1)/p n / B``, all-gather and
  reduce-scatter half that, point-to-point ``alpha + n / B``, all-to-all ``(p-1) alpha + (p-1)/p n / B``), over
  NVLink inside a node and InfiniBand across nodes (a group that spans nodes runs at the inter-node rate);
* memory: weights, gradients and optimizer states per ZeRO/FSDP stage, activations per micro-batch as Korthikanti
  et al. 2022 count them (with and without recomputation), feasible when they fit the usable HBM.

Every constant lives in :mod:`.constants` with its source. Nothing here is measured: the notebook labels each
number from this module *simulated*. Placement is fixed: tensor-parallel ranks innermost (inside a node), then
pipeline stages, then data-parallel replicas. No overlap of communication with compute is modelled (a
pessimistic choice; real frameworks hide part of the data-parallel traffic behind the backward pass).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from ..nas.protocol import DecisionSpace
from .constants import BYTES, EFFICIENCY, GPU, LATENCY


@dataclass(frozen=True)
class Cluster:
    gpu: str = "H100-SXM"
    n_gpus: int = 1024
    matmul_eff: float = EFFICIENCY["matmul"].value
    hbm_eff: float = EFFICIENCY["hbm"].value
    link_eff: float = EFFICIENCY["link"].value
    usable_hbm: float = EFFICIENCY["usable_hbm"].value
    alpha_intra: float = LATENCY["alpha_intra"].value
    alpha_inter: float = LATENCY["alpha_inter"].value
    overrides: tuple = ()  # (key, value) pairs replacing datasheet values, e.g. for a hand-computed test

    def c(self, key: str) -> float:
        return dict(self.overrides).get(key, GPU[self.gpu][key].value)

    @property
    def per_node(self) -> int:
        return int(self.c("gpus_per_node"))

    @property
    def flops(self) -> float:
        return self.c("bf16_flops") * self.matmul_eff

    @property
    def mem_bw(self) -> float:
        return self.c("hbm_bw") * self.hbm_eff

    @property
    def hbm_bytes(self) -> float:
        return self.c("hbm") * self.usable_hbm

    def link(self, group: int, stride: int) -> tuple[float, float]:
        """(alpha, bandwidth) of a group of ``group`` ranks spaced ``stride`` apart: NVLink if it fits a node."""
        if group * stride <= self.per_node:
            return self.alpha_intra, self.c("nvlink_bw") * self.link_eff
        return self.alpha_inter, self.c("ib_bw") * self.link_eff


def roofline(flops: float, nbytes: float, cl: Cluster) -> float:
    return max(flops / cl.flops, nbytes / cl.mem_bw)


def all_reduce(n: float, p: int, alpha: float, bw: float) -> float:
    return 0.0 if p <= 1 else 2 * (p - 1) * alpha + 2 * (p - 1) / p * n / bw


def all_gather(n: float, p: int, alpha: float, bw: float) -> float:
    """``n`` = the gathered (full) size; reduce-scatter costs the same."""
    return 0.0 if p <= 1 else (p - 1) * alpha + (p - 1) / p * n / bw


def all_to_all(n: float, p: int, alpha: float, bw: float) -> float:
    """``n`` = bytes one rank holds for all ranks (it keeps 1/p of them)."""
    return 0.0 if p <= 1 else (p - 1) * alpha + (p - 1) / p * n / bw


def p2p(n: float, alpha: float, bw: float) -> float:
    return alpha + n / bw


# ----------------------------------------------------------------------------------------------------- LLM
@dataclass(frozen=True)
class Transformer:
    """A decoder-only LLM. Defaults: the shape of Llama 3.1 405B (126 layers, width 16384, SwiGLU width 53248,
    128 heads with 8 key-value heads, vocabulary 128256; Llama 3 paper, Table 3), sequence 8192."""
    layers: int = 126
    hidden: int = 16384
    ffn: int = 53248
    heads: int = 128
    kv_heads: int = 8
    vocab: int = 128256
    seq: int = 8192
    global_batch: int = 2048  # sequences per step (16M tokens at 8192; Llama 3's 405B batch)

    @property
    def layer_params(self) -> int:
        h, kv = self.hidden, self.kv_heads * self.hidden // self.heads
        return 2 * h * h + 2 * h * kv + 3 * h * self.ffn

    @property
    def params(self) -> int:
        return self.layers * self.layer_params + 2 * self.vocab * self.hidden

    def layer_flops_per_token(self) -> float:
        """Forward FLOPs of one layer per token: 2 x weights plus causal attention scores and values."""
        return 2 * self.layer_params + 2 * self.seq * self.hidden  # 4 s h halved by the causal mask

    def attn_score_flops_per_token(self) -> float:
        return 2 * self.seq * self.hidden


LLM_KNOBS = {"tp": (1, 2, 4, 8), "pp": (1, 2, 4, 8, 16), "micro_batch": (1, 2, 4),
             "recompute": ("none", "selective", "full"), "zero": (0, 1, 2, 3)}
LLM_DEFAULT = {"tp": 8, "pp": 16, "micro_batch": 1, "recompute": "full", "zero": 1}


def llm_layout(cfg: dict, m: Transformer, cl: Cluster) -> tuple[int, int] | str:
    """(data-parallel size, micro-batches per replica per step), or the reason the layout cannot exist."""
    tp, pp, mb = cfg["tp"], cfg["pp"], cfg["micro_batch"]
    if tp > cl.per_node:
        return f"tensor parallel {tp} > {cl.per_node} GPUs per node"
    if cl.n_gpus % (tp * pp):
        return f"{cl.n_gpus} GPUs are not a multiple of tp x pp = {tp * pp}"
    if pp > m.layers:
        return f"{pp} pipeline stages > {m.layers} layers"
    if m.heads % tp:
        return f"{m.heads} heads do not split over tensor parallel {tp}"
    dp = cl.n_gpus // (tp * pp)
    if m.global_batch % (dp * mb):
        return f"global batch {m.global_batch} is not a multiple of dp x micro-batch = {dp} x {mb}"
    return dp, m.global_batch // (dp * mb)


def llm_step(cfg: dict, m: Transformer = Transformer(), cl: Cluster = Cluster()) -> dict:
    """Time and memory of one training step (bf16 weights and activations, Adam with fp32 master weights)."""
    lay = llm_layout(cfg, m, cl)
    if isinstance(lay, str):
        return {"valid": False, "reason": lay}
    dp, n_micro = lay
    tp, pp, mb, rc, zero = cfg["tp"], cfg["pp"], cfg["micro_batch"], cfg["recompute"], cfg["zero"]
    Lst, s, h, a = math.ceil(m.layers / pp), m.seq, m.hidden, m.heads  # the largest stage sets the pace
    tokens = mb * s
    # ---- compute, one micro-batch on one stage (the last stage also runs the output head)
    fwd = m.layer_flops_per_token() * tokens * Lst / tp
    extra = {"none": 0.0, "selective": m.attn_score_flops_per_token() * tokens * Lst / tp, "full": fwd}[rc]
    head = 2 * m.vocab * h * tokens / tp
    flops = 3 * (fwd + head) + extra
    w_bytes = 2 * (m.layer_params * Lst + m.vocab * h) / tp
    act_rw = 2 * 34 * s * mb * h * Lst / tp  # stored activations written forward, read backward
    t_compute = roofline(flops, 3 * w_bytes + act_rw, cl)
    # ---- tensor parallel: 4 all-reduces of the layer output per layer (2 forward, 2 backward), +2 if recomputed
    a_tp, bw_tp = cl.link(tp, 1)
    n_ar = Lst * (4 + (2 if rc == "full" else 0))
    t_tp = n_ar * all_reduce(2 * tokens * h, tp, a_tp, bw_tp)
    # ---- pipeline: activations out and gradients back at each stage boundary, 1F1B schedule with its bubble
    a_pp, bw_pp = cl.link(2, tp)
    t_p2p = 2 * p2p(2 * tokens * h, a_pp, bw_pp) if pp > 1 else 0.0
    t_micro = t_compute + t_tp + t_p2p
    t_pipe = (n_micro + pp - 1) * t_micro
    # ---- data parallel / ZeRO: gradient (and, stage 3, parameter) traffic, not overlapped
    p_dev = m.params / (tp * pp)
    a_dp, bw_dp = cl.link(dp, tp * pp)
    g = 2 * p_dev  # bf16 gradients / parameters
    if zero <= 2:
        t_dp = all_reduce(g, dp, a_dp, bw_dp)  # stage 2: reduce-scatter + all-gather, the same volume
    else:
        t_dp = n_micro * 3 * all_gather(g, dp, a_dp, bw_dp)  # per micro-batch: gather fwd + bwd, scatter grads
    step = t_pipe + t_dp
    # ---- memory per device
    state = {0: 16 * p_dev, 1: 4 * p_dev + 12 * p_dev / dp, 2: 2 * p_dev + 14 * p_dev / dp, 3: 16 * p_dev / dp}[zero]
    per_layer = {"none": s * mb * h * (34 + 5 * a * s / h), "selective": 34 * s * mb * h, "full": 2 * s * mb * h}[rc] / tp
    in_flight = min(pp, n_micro)  # 1F1B: the first stage holds pp micro-batches
    act = per_layer * Lst * in_flight + (34 * s * mb * h / tp if rc == "full" else 0.0)  # one layer's live set
    mem = state + act
    return {"valid": True, "feasible": mem <= cl.hbm_bytes, "step_s": step, "tokens_per_s": m.global_batch * s / step,
            "mem_gb": mem / 1e9, "state_gb": state / 1e9, "act_gb": act / 1e9, "dp": dp, "micro_batches": n_micro,
            "t_compute": t_compute * (n_micro + pp - 1), "t_tp": t_tp * (n_micro + pp - 1),
            "t_pp": t_p2p * (n_micro + pp - 1), "t_dp": t_dp, "bubble": (pp - 1) / (n_micro + pp - 1),
            "mfu": 6 * m.params * m.global_batch * s / step / (cl.n_gpus * cl.c("bf16_flops"))}


# ---------------------------------------------------------------------------------------------- recommendation
@dataclass(frozen=True)
class RecModel:
    """A large DLRM-style ads model: 73 B parameters, almost all in embedding tables (1000 tables, 570k rows of
    width 128 on average), a 200 M-parameter dense part (interaction + MLPs). Shape is our assumption: the
    paper gives only the 73 B total."""
    tables: int = 1000
    rows: int = 570_000
    dim: int = 128
    pooling: int = 20           # lookups per table per sample
    dense_params: int = 200_000_000
    dense_flops: float = 1.2e9  # forward+backward FLOPs per sample of the dense part (6 x dense params)
    act_bytes: float = 4e6      # activation bytes stored per sample by the dense part (bf16)

    @property
    def params(self) -> int:
        return self.tables * self.rows * self.dim + self.dense_params


REC_KNOBS = {"batch": (512, 1024, 2048, 4096, 8192), "sharding": ("table_wise", "row_wise", "column_wise"),
             "comm": ("fp32", "bf16", "fp8"), "dense": ("ddp", "fsdp"), "checkpoint": (False, True),
             "emb_dtype": ("fp32", "fp16")}
REC_DEFAULT = {"batch": 1024, "sharding": "table_wise", "comm": "fp32", "dense": "ddp", "checkpoint": False,
               "emb_dtype": "fp32"}
IMBALANCE = {"table_wise": 1.3, "row_wise": 1.05, "column_wise": 1.1}  # assumption: max/mean lookup load per GPU


def rec_step(cfg: dict, m: RecModel = RecModel(), cl: Cluster = Cluster(n_gpus=128)) -> dict:
    """One step of hybrid parallel training: embeddings model-parallel (sharded over every GPU), dense part
    data-parallel; ``batch`` is per GPU."""
    n, b = cl.n_gpus, cfg["batch"]
    eb, cb = BYTES[cfg["emb_dtype"]], BYTES[cfg["comm"]]
    imb = IMBALANCE[cfg["sharding"]]
    # lookups: every sample's rows for this GPU's share of the tables; backward writes rows + row-wise optimizer
    look = b * m.tables * m.pooling * m.dim * eb * imb
    t_emb = 3 * look / cl.mem_bw
    # all-to-all of pooled embeddings forward and their gradients backward; row-wise shards send partial sums
    # for every table to every GPU (n times the volume of table- or column-wise)
    pooled = b * m.tables * m.dim * cb * (n if cfg["sharding"] == "row_wise" else 1)
    a, bw = cl.link(n, 1)
    t_a2a = 2 * all_to_all(pooled, n, a, bw)
    # dense part: roofline (recomputation adds a forward = 1/3 of fwd+bwd)
    flops = b * m.dense_flops * (4 / 3 if cfg["checkpoint"] else 1.0)
    t_dense = roofline(flops, 3 * 2 * m.dense_params, cl)
    g = 2 * m.dense_params
    t_sync = all_reduce(g, n, a, bw) * (1.5 if cfg["dense"] == "fsdp" else 1.0)
    step = t_emb + t_a2a + t_dense + t_sync
    emb_state = m.tables * m.rows * (m.dim * eb + 4) / n * imb  # rows + a row-wise Adagrad accumulator
    dense_state = 16 * m.dense_params / (n if cfg["dense"] == "fsdp" else 1)
    act = b * m.act_bytes * (0.2 if cfg["checkpoint"] else 1.0) + 2 * pooled
    mem = emb_state + dense_state + act
    return {"valid": True, "feasible": mem <= cl.hbm_bytes, "step_s": step, "samples_per_s": b * n / step,
            "mem_gb": mem / 1e9, "t_emb": t_emb, "t_a2a": t_a2a, "t_dense": t_dense, "t_sync": t_sync}


# ------------------------------------------------------------------------------------------- search interface
def llm_space(m: Transformer = Transformer(), cl: Cluster = Cluster()) -> DecisionSpace:
    return DecisionSpace(LLM_KNOBS, name=f"llm-{cl.n_gpus}x{cl.gpu}",
                         check=lambda c: (lambda r: r if isinstance(r, str) else None)(llm_layout(c, m, cl)))


def rec_space(cl: Cluster = Cluster(n_gpus=128)) -> DecisionSpace:
    return DecisionSpace(REC_KNOBS, name=f"rec-{cl.n_gpus}x{cl.gpu}")


class Simulated:
    """A "measurement" on the analytic model: the model's throughput times seeded log-normal noise (a fixed
    draw per configuration and seed, so re-measuring gives a fresh draw only with a new ``rep``); a layout that
    does not fit memory is infeasible (the objective raises, like an out-of-memory job, or returns the penalty
    ``infeasible_reward``)."""

    def __init__(self, step_fn, metric: str, noise: float = 0.03, seed: int = 0, infeasible_reward: float | None = None,
                 **kw):
        self.step_fn, self.metric, self.noise, self.seed, self.kw = step_fn, metric, noise, seed, kw
        self.infeasible_reward = infeasible_reward  # None: raise (a failed trial); a number: a penalty, as in Memo
        self.calls = 0

    def true(self, cfg: dict) -> dict:
        return self.step_fn(cfg, **self.kw)

    def __call__(self, cfg: dict, seed: int = 0, rep: int = 0) -> dict:
        self.calls += 1
        r = self.true(cfg)
        if not r["valid"]:
            raise ValueError(r["reason"])
        if not r["feasible"] and self.infeasible_reward is not None:
            return {**r, self.metric: self.infeasible_reward, "error": f"simulated out of memory: {r['mem_gb']:.1f} GB"}
        if not r["feasible"]:
            raise MemoryError(f"simulated out of memory: {r['mem_gb']:.1f} GB per GPU")
        key = int(hashlib.sha1(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:8], 16)
        rng = np.random.default_rng([self.seed, key, rep])
        out = dict(r)
        out[self.metric] = r[self.metric] * math.exp(self.noise * rng.standard_normal())
        return out
