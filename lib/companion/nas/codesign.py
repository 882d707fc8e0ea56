"""Model / PIM co-design (ToRS section 3.2): search a NASRec-Small architecture together with a 4- or 8-bit
weight and activation width for every block, scoring each candidate by supernet log loss and by the
analytic PIM cost of :mod:`companion.cost.pim`.

A :class:`Design` is an architecture plus one ``(weight_bits, activation_bits)`` pair per block: 4 choices
per block, 4^7 = 16,384 for seven blocks, the paper's count. Every crossbar-mapped layer of the block
(FC, EFC, the dense-to-sparse merger, and the projections inside Dot-Product and FM) takes the block's bits;
the head stays at 8 bits; the Dot-Product products and the FM run in float on the digital unit.

The paper states no fitness formula. Two are offered:

* ``penalty`` (default): ``logloss + beta * |E / E_target - 1|`` with E the simulated energy per inference
  (TuNAS-style; NASRec's code carries the same hook for latency). One number, so the evolution's
  tournaments need nothing new.
* ``pareto``: the evolution ranks by log loss alone (the literal reading of the paper: hardware numbers
  are simulated on the designs it finds), and the design is picked from the (log loss, energy, latency)
  Pareto front of everything evaluated: the lowest-energy design within ``loss_tol`` of the best log loss.

Both pick a point whose speed-up is set by a knob (``energy_target``, ``loss_tol``), so a speed-up they
report is a setting, not a finding. The notebook therefore uses :func:`constrained_search`: the lowest
supernet log loss among designs that meet a :class:`Budget` (energy and latency at most the hand-crafted
design's divided by the required ratios), at several budgets, against controls searched under the same
budget and evaluation count: the hand-crafted architecture with searched bits only, float search then
quantization (:func:`float_then_quantize`), and random designs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..cost.flops import profile
from ..cost.pim import PIMConfig, PIMOp, PIMReport, evaluate as pim_evaluate, nmp_baseline
from ..cost.quant import FakeQuantModel, QuantPolicy, quantized
from ..data.schema import CTRSplits, Schema
from ..train import TrainConfig, fit
from .evolution import random_search, regularized_evolution
from .space import Arch, BlockChoice, SearchSpace
from .supernet import NASRecNet, SuperNet
from .training import SubnetEval, SupernetConfig, evaluate_subnet, train_supernet

BIT_CHOICES = (4, 8)
HEAD_BITS = (8, 8)
Bits = tuple[tuple[int, int], ...]

__all__ = ["Design", "CodesignConfig", "CodesignResult", "sample_design", "mutate_design", "quant_rules", "pim_ops",
           "design_cost", "handcrafted_design", "train_quant_supernet", "score_design", "codesign_search",
           "pareto_mask", "train_design", "compare", "codesign_space", "BIT_CHOICES", "Budget", "feasible",
           "constrained_search", "float_search", "float_then_quantize", "train_designs", "INFEASIBLE",
           "CONTROLS", "search_with_controls", "reselect", "front_pairs"]


@dataclass(frozen=True)
class Design:
    arch: Arch
    bits: Bits  # (weight bits, activation bits) per block

    def __post_init__(self):
        _check_bits(self.bits, len(self.arch.blocks))

    def canonical(self) -> "Design":
        """Bits of blocks the head never reads do not matter: set them to 8/8 so equal designs hash equal."""
        live = set(self.arch.active_blocks())
        return Design(self.arch, tuple(tuple(b) if i in live else (8, 8) for i, b in enumerate(self.bits)))

    def key(self) -> str:
        return self.arch.key() + ":" + "".join(f"{w}{a}" for w, a in self.bits)

    def mean_bits(self) -> float:
        live = self.arch.active_blocks()
        return float(np.mean([sum(self.bits[i]) / 2 for i in live]))

    def to_dict(self) -> dict:
        return {"arch": self.arch.to_dict(), "bits": [list(b) for b in self.bits]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Design":
        try:
            return cls(Arch.from_dict(d["arch"]), tuple((int(w), int(a)) for w, a in d["bits"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a design record ({e}): expected {{'arch': ..., 'bits': [[w, a], ...]}}") from e

    def describe(self) -> str:
        lines = self.arch.describe().splitlines()
        return "\n".join(f"{ln}   w{w}/a{a}" for ln, (w, a) in zip(lines, self.bits))


SPACE_SIZES = {
    # 4 blocks, widths 16-64: at 8-bit weights a 32- or 64-wide layer needs 2 or 4 column tiles of a 128x128
    # crossbar, at 4-bit 1 or 2, so weight bits change the tiling even in the quick space
    "tiny": dict(scale="tiny", dense_dims=(16, 32, 64)),
    # 5 blocks, widths 32-128: an 8-bit 128-wide layer spans 8 column tiles, at 4 bits 4
    "medium": dict(scale="tiny", num_blocks=5, dense_dims=(32, 64, 128), sparse_dims=(8, 16)),
    "paper": dict(scale="paper"),  # NASRec-Small as published: 7 blocks, widths 16-1024
}


def codesign_space(size: str = "tiny") -> SearchSpace:
    """NASRec-Small at a size a machine can afford; only ``paper`` is the paper's space."""
    if size not in SPACE_SIZES:
        raise ValueError(f"space size must be one of {sorted(SPACE_SIZES)}, got {size!r}")
    from .space import make_space

    kw = dict(SPACE_SIZES[size])
    return make_space("nasrec-small", kw.pop("scale"), **kw)


def _check_bits(bits: Bits, n: int) -> None:
    if len(bits) != n:
        raise ValueError(f"a design needs one (w, a) bit pair per block: got {len(bits)} for {n} blocks")
    for i, pair in enumerate(bits):
        if len(pair) != 2 or any(not isinstance(b, int) or not 2 <= b <= 16 for b in pair):
            raise ValueError(f"block {i}: bits must be a (weight, activation) pair of integers in 2..16, got {pair!r}")


def sample_design(space: SearchSpace, rng, choices=BIT_CHOICES, connections: str = "uniform") -> Design:
    arch = space.sample(rng, connections=connections)
    bits = tuple((int(rng.choice(choices)), int(rng.choice(choices))) for _ in range(space.num_blocks))
    return Design(arch, bits).canonical()


def mutate_design(space: SearchSpace, d: Design, rng, choices=BIT_CHOICES, p_bits: float = 0.3) -> Design:
    """One mutation: re-sample one live block's bit pair (probability ``p_bits``) or one architecture field."""
    if rng.random() < p_bits:
        live = d.arch.active_blocks()
        i = int(rng.choice(live))
        bits = list(d.bits)
        bits[i] = (int(rng.choice(choices)), int(rng.choice(choices)))
        return Design(d.arch, tuple(bits)).canonical()
    return Design(space.mutate(d.arch, rng), d.bits).canonical()


def quant_rules(bits: Bits, head_bits=HEAD_BITS) -> dict:
    """Policy rules for :class:`~companion.cost.quant.QuantPolicy`: block ``i`` -> its bits; everything else
    (the head, which the supernet calls from its root module) -> ``head_bits``."""
    rules = {"": tuple(head_bits), "head": tuple(head_bits)}
    rules.update({f"blocks.{i}": tuple(b) for i, b in enumerate(bits)})
    return rules


_OPS_CACHE: dict = {}


def _dummy_batch(schema: Schema) -> dict:
    return {"dense": torch.zeros(1, len(schema.dense)), "sparse": torch.zeros(1, len(schema.sparse), dtype=torch.long)}


def pim_ops(schema: Schema, space: SearchSpace, design: Design, head_bits=HEAD_BITS) -> list[PIMOp]:
    """The operators of ``design`` as the PIM model sees them, read off a traced forward pass of the
    standalone model: each linear layer becomes a crossbar op (applied ``rows / batch`` times per sample,
    e.g. once per embedding dimension for EFC), the Dot-Product's pairwise products and the FM become
    digital ops."""
    key = (len(schema.dense), len(schema.sparse), space, design.arch.key())  # the ops depend on field counts only
    if key not in _OPS_CACHE:
        torch.manual_seed(0)
        model = NASRecNet(schema, space, design.arch)
        prof = profile(model, _dummy_batch(schema))
        recs = []
        for o in prof.ops:
            parts = o.module.split(".")
            block = int(parts[1]) if parts[0] == "blocks" else -1
            op = parts[2] if block >= 0 else "head"
            if o.kind == "linear":
                recs.append(("crossbar", o.module, block, op, o.in_features, o.out_features, o.rows, 0))
            else:
                recs.append(("digital", o.module, block, op, 0, 0, 0, o.flops // 2))
        for i in design.arch.active_blocks():
            c = design.arch.blocks[i]
            if c.sparse_to_dense:  # FM: (sum_t e)^2 - sum_t e^2 over the sparse op's t tokens of width E
                recs.append(("digital", f"blocks.{i}.fm_merge.fm", i, "fm_merge", 0, 0, 0, 2 * c.sparse_dim * space.emb_dim))
        _OPS_CACHE[key] = recs
    ops = []
    for kind, name, block, op, fin, fout, rows, macs in _OPS_CACHE[key]:
        w, a = design.bits[block] if block >= 0 else head_bits
        ops.append(PIMOp(name, kind, fin, fout, max(rows, 1), w, a, macs, block, op))
    return ops


def design_cost(schema: Schema, space: SearchSpace, design: Design, cfg: PIMConfig = PIMConfig()) -> PIMReport:
    return pim_evaluate(pim_ops(schema, space, design), cfg)


def handcrafted_design(space: SearchSpace, bits: int = 8, width: int | None = None) -> Design:
    """A DLRM-like hand design in NASRec-Small: bottom FC on the raw dense features, a Dot-Product
    interaction with the embeddings, then a chain of FCs ("top MLP"); EFC keeps the raw tokens, no mergers.
    Width: the second-largest dense width (wide, as hand designs are); every block at ``bits``."""
    dims = space.dense_dims
    width = width or (dims[-2] if len(dims) > 1 else dims[-1])
    if width not in dims:
        raise ValueError(f"width {width} is not a dense width of this space {dims}")
    if "fc" not in space.dense_ops or "dot" not in space.dense_ops or "efc" not in space.sparse_ops:
        raise ValueError("the hand-crafted design needs fc and dot dense ops and the efc sparse op (NASRec-Small)")
    tok = space.sparse_dims[-1]
    blocks = [BlockChoice("fc", "efc", width, tok, dense_in=(0,), sparse_in=(0,))]
    if space.num_blocks > 1:
        blocks.append(BlockChoice("dot", "efc", width, tok, dense_in=(1,), sparse_in=(0,)))
    for i in range(2, space.num_blocks):
        blocks.append(BlockChoice("fc", "efc", width, tok, dense_in=(i,), sparse_in=(i,)))
    arch = space.validate(Arch(tuple(blocks)))
    return Design(arch, tuple((bits, bits) for _ in blocks))


def train_quant_supernet(supernet: SuperNet, splits: CTRSplits, cfg: SupernetConfig | None = None,
                         choices=BIT_CHOICES, desc: str = "quantized supernet") -> dict:
    """NASRec supernet training with quantization in the loop: every step samples a path and a bit pair
    per block, and the forward runs fake-quantized under those bits (straight-through gradients)."""
    cfg = cfg or SupernetConfig()
    space = supernet.space
    policy = QuantPolicy(quant_rules(((8, 8),) * space.num_blocks))

    def sampler(rng):
        policy.set(quant_rules(tuple((int(rng.choice(choices)), int(rng.choice(choices))) for _ in range(space.num_blocks))))
        return space.sample(rng, connections="binomial")

    with quantized(supernet, policy):
        return train_supernet(supernet, splits, cfg, sampler=sampler, desc=desc)


def score_design(supernet: SuperNet, design: Design, splits: CTRSplits, ev: SubnetEval | None = None) -> dict:
    """Supernet log loss / AUC of ``design`` with its bits applied (fake-quant), after the optional head fine-tune."""
    policy = QuantPolicy(quant_rules(design.bits))
    with quantized(supernet, policy):
        return evaluate_subnet(supernet, design.arch, splits, ev)


@dataclass
class CodesignConfig:
    objective: str = "penalty"  # penalty | pareto
    beta: float = 0.05  # penalty weight on |E / E_target - 1|
    energy_target: float = 0.5  # E_target as a fraction of the hand-crafted all-8-bit design's energy
    loss_tol: float = 0.002  # pareto: pick the lowest-energy design within this log loss of the best
    population: int = 32
    sample_size: int = 8
    children: int = 4
    generations: int = 20
    p_bits: float = 0.3
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        if self.objective not in ("penalty", "pareto"):
            raise ValueError(f"objective must be 'penalty' or 'pareto', got {self.objective!r}")
        if self.beta < 0 or not self.energy_target > 0 or self.loss_tol < 0:
            raise ValueError(f"need beta >= 0, energy_target > 0, loss_tol >= 0; got {self.beta}, {self.energy_target}, {self.loss_tol}")


@dataclass
class CodesignResult:
    table: pd.DataFrame  # every evaluated design: logloss, auc, latency_us, energy_nj, area_mm2, objective, ...
    chosen: Design | None
    handcrafted: Design
    hand_cost: dict
    config: CodesignConfig
    designs: dict = field(default_factory=dict)  # key -> Design
    budget: "Budget | None" = None  # the constraint a constrained search picked under

    def front(self, x: str = "energy_nj") -> pd.DataFrame:
        """The (log loss, x) Pareto front of the evaluated designs, sorted by x."""
        t = self.table
        m = pareto_mask(t[["logloss", x]].to_numpy())
        return t[m].sort_values(x)


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """True for rows no other row dominates (all objectives minimised)."""
    p = np.asarray(points, dtype=float)
    n = len(p)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        dominated = np.all(p <= p[i], axis=1) & np.any(p < p[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def codesign_search(supernet: SuperNet, splits: CTRSplits, cfg: CodesignConfig | None = None,
                    ev: SubnetEval | None = None, pim: PIMConfig = PIMConfig(), score_cache: dict | None = None) -> CodesignResult:
    """Regularized evolution over designs (architecture + per-block bits) on a trained supernet.

    ``score_cache`` (design key -> supernet metrics) lets several searches on the same supernet and
    scoring settings share evaluations, e.g. the penalty and the Pareto runs."""
    cfg = cfg or CodesignConfig()
    space, schema = supernet.space, splits.schema
    hand = handcrafted_design(space)
    hand_cost = design_cost(schema, space, hand, pim).summary()
    e_target = cfg.energy_target * hand_cost["energy_nj"]
    rows, designs = {}, {}

    def evaluate(d: Design) -> float:
        k = d.key()
        if k not in rows:
            m = _cached_score(supernet, d, splits, ev, score_cache)
            c = design_cost(schema, space, d, pim).summary()
            pen = cfg.beta * abs(c["energy_nj"] / e_target - 1)
            rows[k] = {"key": k, "order": len(rows), **m, **c, "mean_bits": d.mean_bits(), "penalty": pen,
                       "objective": m["logloss"] + pen, "active_blocks": len(d.arch.active_blocks())}
            designs[k] = d
        return rows[k]["objective"] if cfg.objective == "penalty" else rows[k]["logloss"]

    regularized_evolution(
        lambda r: sample_design(space, r), lambda d, r: mutate_design(space, d, r, p_bits=cfg.p_bits), evaluate,
        key=lambda d: d.key(), population_size=cfg.population, sample_size=min(cfg.sample_size, cfg.population),
        n_children=cfg.children, generations=cfg.generations, seed=cfg.seed, progress=cfg.progress,
        desc=f"co-design ({cfg.objective})")
    table = pd.DataFrame(list(rows.values()))
    if cfg.objective == "penalty":
        best = table.loc[table["objective"].idxmin(), "key"]
    else:
        front = table[pareto_mask(table[["logloss", "energy_nj", "latency_us"]].to_numpy())]
        ok = front[front["logloss"] <= front["logloss"].min() + cfg.loss_tol]
        best = ok.loc[ok["energy_nj"].idxmin(), "key"]
    table["chosen"] = table["key"] == best
    return CodesignResult(table, designs[best], hand, hand_cost, cfg, designs)


def train_design(splits: CTRSplits, space: SearchSpace, design: Design | None, cfg: TrainConfig, seed: int = 0,
                 arch: Arch | None = None, desc: str = "from scratch") -> tuple[torch.nn.Module, dict]:
    """Train a design from scratch as a standalone model, fake-quantized at its bits (``design=None`` with
    ``arch``: float). Returns the (wrapped) model and its test metrics."""
    torch.manual_seed(seed)
    arch = design.arch if design is not None else arch
    if arch is None:
        raise ValueError("train_design needs a design or an arch")
    model = NASRecNet(splits.schema, space, arch)
    if design is not None:
        model = FakeQuantModel(model, quant_rules(design.bits))
    res = fit(model, splits, cfg, desc=desc)
    return model, {**res.test, "train_time_s": res.train_time_s}


def compare(schema: Schema, space: SearchSpace, chosen: Design, hand: Design, pim: PIMConfig = PIMConfig()) -> dict:
    """Speed-up and energy efficiency of ``chosen`` over ``hand`` on the PIM model, and of both over the
    RecNMP-style near-memory digital baseline."""
    c, h = design_cost(schema, space, chosen, pim), design_cost(schema, space, hand, pim)
    nc = nmp_baseline(pim_ops(schema, space, chosen))
    return {
        "speedup_vs_hand": h.latency_ns / c.latency_ns,
        "energy_eff_vs_hand": h.energy_pj / c.energy_pj,
        "area_ratio_vs_hand": h.area_mm2 / max(c.area_mm2, 1e-12),
        "speedup_vs_nmp": nc.latency_ns / c.latency_ns,
        "energy_eff_vs_nmp": nc.energy_pj / c.energy_pj,
        "chosen": c.summary(), "hand": h.summary(),
    }



# ----------------------------------------------------------------------------- selection under a constraint
INFEASIBLE = 10.0  # added to the fitness of a design over budget (log losses are < 1 on any sane model)


@dataclass(frozen=True)
class Budget:
    """Energy <= E_hand / ``energy_eff`` and latency <= L_hand / ``speedup``, relative to the hand-crafted
    all-8-bit design on the same PIM model (the paper's point is energy_eff 1.8, speedup 1.5)."""
    energy_eff: float
    speedup: float

    def __post_init__(self):
        if not (self.energy_eff > 0 and self.speedup > 0):
            raise ValueError(f"budget ratios must be > 0, got {self.energy_eff}, {self.speedup}")

    def limits(self, hand_cost: dict) -> tuple[float, float]:
        return hand_cost["energy_nj"] / self.energy_eff, hand_cost["latency_us"] / self.speedup

    @property
    def label(self) -> str:
        return f"{self.energy_eff:g}x energy / {self.speedup:.3g}x speed"


def feasible(cost: dict, hand_cost: dict, budget: Budget) -> bool:
    e_max, l_max = budget.limits(hand_cost)
    return cost["energy_nj"] <= e_max * (1 + 1e-12) and cost["latency_us"] <= l_max * (1 + 1e-12)


def _violation(cost: dict, hand_cost: dict, budget: Budget) -> float:
    e_max, l_max = budget.limits(hand_cost)
    return max(0.0, cost["energy_nj"] / e_max - 1, cost["latency_us"] / l_max - 1)


def _cached(cache: dict | None, key: str, compute):
    """``compute()`` once per key when several searches share one supernet's scores (``cache`` may be None)."""
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def _cached_score(supernet, design: Design, splits, ev, cache) -> dict:
    return _cached(cache, design.key(), lambda: score_design(supernet, design, splits, ev))


def constrained_search(supernet: SuperNet, splits: CTRSplits, budget: Budget, cfg: CodesignConfig | None = None,
                       ev: SubnetEval | None = None, pim: PIMConfig = PIMConfig(), score_cache: dict | None = None,
                       arch: Arch | None = None, method: str = "evolution", desc: str = "",
                       include: tuple = ()) -> CodesignResult:
    """The lowest supernet log loss among designs within ``budget``.

    ``method='evolution'``: regularized evolution whose fitness is the log loss of a feasible design and
    ``INFEASIBLE`` + the relative overshoot of one over budget; ``'random'``: as many distinct random designs
    as the evolution evaluates (``population + generations * children``). ``arch`` fixes the architecture
    and searches the bits only (the mutation then always re-samples one live block's bit pair).
    ``include``: designs evaluated before the search, on top of its budget (e.g. the all-4-bit version of a
    fixed architecture, so a bits-only control always has its cheapest point). ``chosen`` is None when no
    evaluated design meets the budget.
    """
    cfg = cfg or CodesignConfig()
    if method not in ("evolution", "random"):
        raise ValueError(f"method must be 'evolution' or 'random', got {method!r}")
    space, schema = supernet.space, splits.schema
    hand = handcrafted_design(space)
    hand_cost = design_cost(schema, space, hand, pim).summary()
    rows, designs = {}, {}

    if arch is None:
        sample = lambda r: sample_design(space, r)  # noqa: E731
        mutate = lambda d, r: mutate_design(space, d, r, p_bits=cfg.p_bits)  # noqa: E731
    else:
        arch = space.validate(arch)
        sample = lambda r: Design(arch, tuple((int(r.choice(BIT_CHOICES)), int(r.choice(BIT_CHOICES))) for _ in arch.blocks)).canonical()  # noqa: E731
        mutate = lambda d, r: mutate_design(space, d, r, p_bits=1.0)  # noqa: E731

    def evaluate(d: Design) -> float:
        k = d.key()
        if k not in rows:
            m = _cached_score(supernet, d, splits, ev, score_cache)
            c = design_cost(schema, space, d, pim).summary()
            ok = feasible(c, hand_cost, budget)
            rows[k] = {"key": k, "order": len(rows), **m, **c, "mean_bits": d.mean_bits(), "feasible": ok,
                       "objective": m["logloss"] + (0.0 if ok else INFEASIBLE + _violation(c, hand_cost, budget)),
                       "active_blocks": len(d.arch.active_blocks())}
            designs[k] = d
        return rows[k]["objective"]

    label = desc or f"{method}{' (bits only)' if arch is not None else ''} @ {budget.label}"
    for d in include:
        evaluate(d.canonical())
    if method == "evolution":
        regularized_evolution(sample, mutate, evaluate, key=lambda d: d.key(), population_size=cfg.population,
                              sample_size=min(cfg.sample_size, cfg.population), n_children=cfg.children,
                              generations=cfg.generations, seed=cfg.seed, progress=cfg.progress, desc=label)
    else:
        random_search(sample, evaluate, n=cfg.population + cfg.generations * cfg.children, seed=cfg.seed,
                      key=lambda d: d.key(), progress=cfg.progress, desc=label)
    table = pd.DataFrame(list(rows.values()))
    ok = table[table["feasible"]]
    best = ok.loc[ok["logloss"].idxmin(), "key"] if len(ok) else None
    table["chosen"] = table["key"] == best
    return CodesignResult(table, designs[best] if best is not None else None, hand, hand_cost, cfg, designs, budget)


def float_search(supernet: SuperNet, splits: CTRSplits, cfg: CodesignConfig | None = None, ev: SubnetEval | None = None,
                 score_cache: dict | None = None) -> pd.DataFrame:
    """Hardware-agnostic architecture search: regularized evolution on the supernet's float log loss.
    Returns every evaluated architecture (columns ``key``, ``logloss``, ``auc``, ``arch``), best first."""
    cfg = cfg or CodesignConfig()
    space = supernet.space
    rows = {}

    def evaluate(a: Arch) -> float:
        k = "float:" + a.key()
        if k not in rows:
            m = _cached(score_cache, k, lambda: evaluate_subnet(supernet, a, splits, ev))
            rows[k] = {"key": k, **m, "arch": a}
        return rows[k]["logloss"]

    regularized_evolution(lambda r: space.sample(r), lambda a, r: space.mutate(a, r), evaluate, key=lambda a: a.key(),
                          population_size=cfg.population, sample_size=min(cfg.sample_size, cfg.population),
                          n_children=cfg.children, generations=cfg.generations, seed=cfg.seed, progress=cfg.progress,
                          desc="float search")
    return pd.DataFrame(list(rows.values())).sort_values("logloss", kind="stable").reset_index(drop=True)


def float_then_quantize(supernet: SuperNet, splits: CTRSplits, budget: Budget, float_table: pd.DataFrame,
                        cfg: CodesignConfig | None = None, ev: SubnetEval | None = None, pim: PIMConfig = PIMConfig(),
                        score_cache: dict | None = None) -> CodesignResult:
    """Two-stage control: the best float architecture that can meet ``budget`` at all-4-bit, then its bits
    searched under the budget (same evaluation count as the joint search, plus the all-4-bit point). ``chosen`` is None when no
    float architecture can meet the budget even at 4 bits."""
    space, schema = supernet.space, splits.schema
    hand = handcrafted_design(space)
    hand_cost = design_cost(schema, space, hand, pim).summary()
    for a in float_table["arch"]:
        low = Design(a, ((4, 4),) * len(a.blocks))
        if feasible(design_cost(schema, space, low, pim).summary(), hand_cost, budget):
            return constrained_search(supernet, splits, budget, cfg, ev, pim, score_cache, arch=a,
                                      desc=f"float arch, bits @ {budget.label}", include=(low,))
    return CodesignResult(pd.DataFrame(columns=["key", "logloss", "feasible", "chosen"]), None, hand, hand_cost, cfg or CodesignConfig(), {}, budget)


def train_designs(splits: CTRSplits, space: SearchSpace, jobs: pd.DataFrame, designs: dict, cfg: TrainConfig,
                  cache: dict | None = None) -> pd.DataFrame:
    """Train the design of every row of ``jobs`` (columns ``key``, a key of ``designs``, and ``seed``) from
    scratch, fake-quantized at its bits, with that row's seed; returns ``jobs`` with ``test_logloss`` and
    ``test_auc`` added (NaN where ``key`` is missing). A (design, seed) pair that several rows share is
    trained once (``cache``), since training is seeded and deterministic."""
    from dataclasses import replace

    cache = {} if cache is None else cache
    out = jobs.copy()
    ll, auc = [], []
    for r in jobs.itertuples():
        if not isinstance(r.key, str):
            ll.append(np.nan)
            auc.append(np.nan)
            continue
        k = (r.key, int(r.seed))
        if k not in cache:
            _, m = train_design(splits, space, designs[r.key], replace(cfg, seed=int(r.seed), progress=False), seed=int(r.seed))
            cache[k] = m
        ll.append(cache[k]["logloss"])
        auc.append(cache[k]["auc"])
    out["test_logloss"], out["test_auc"] = ll, auc
    return out


CONTROLS = ("co-design", "hand arch + searched bits", "float search, then bits", "random designs")


def search_with_controls(supernet: SuperNet, splits: CTRSplits, budgets: list[Budget], seeds, cfg: CodesignConfig,
                         ev: SubnetEval | None = None, pim: PIMConfig = PIMConfig(), score_cache: dict | None = None) -> tuple[pd.DataFrame, dict, dict]:
    """For every seed and budget: the joint co-design search and its three controls, each with the same
    number of supernet evaluations, each picking the lowest supernet log loss within the budget. The two
    bits-only controls also evaluate their architecture at all-4-bit (one extra evaluation), so they always
    have a design within any budget that point meets: the controls are given the benefit of the doubt.

    Returns ``picks`` (one row per method, budget, seed: the chosen design's key, supernet log loss and PIM
    cost; ``key`` None when the method found nothing within budget), ``designs`` (key -> Design) and
    ``pools`` ((method, energy_eff, seed) -> every design that search evaluated; all of them are also in
    ``designs``) for re-selection under
    other cost models. The float search runs once per seed; its best architecture (unconstrained) is
    recorded under ``float_best`` in ``designs`` as ``float_best:<seed>``."""
    from dataclasses import replace

    score_cache = {} if score_cache is None else score_cache
    hand = handcrafted_design(supernet.space)
    rows, designs, pools = [], {}, {}
    for s in seeds:
        c = replace(cfg, seed=int(s))
        ftab = float_search(supernet, splits, c, ev, score_cache)
        best_float = ftab["arch"].iloc[0]
        designs[f"float_best:{int(s)}"] = Design(best_float, ((8, 8),) * len(best_float.blocks))
        for b in budgets:
            runs = {
                CONTROLS[0]: constrained_search(supernet, splits, b, c, ev, pim, score_cache),
                CONTROLS[1]: constrained_search(supernet, splits, b, c, ev, pim, score_cache, arch=hand.arch,
                                                include=(Design(hand.arch, ((4, 4),) * len(hand.arch.blocks)),)),
                CONTROLS[2]: float_then_quantize(supernet, splits, b, ftab, c, ev, pim, score_cache),
                CONTROLS[3]: constrained_search(supernet, splits, b, c, ev, pim, score_cache, method="random"),
            }
            for name, r in runs.items():
                pools[(name, b.energy_eff, int(s))] = r
                designs.update(r.designs)
                row = {"method": name, "energy_eff": b.energy_eff, "speedup": b.speedup, "seed": int(s), "key": None,
                       "evaluated": len(r.table)}
                if r.chosen is not None:
                    ch = r.table[r.table["chosen"]].iloc[0]
                    designs[ch["key"]] = r.chosen
                    row.update(key=ch["key"], sn_logloss=ch["logloss"], energy_nj=ch["energy_nj"], latency_us=ch["latency_us"],
                               mean_bits=ch["mean_bits"], active_blocks=ch["active_blocks"])
                rows.append(row)
    return pd.DataFrame(rows), designs, pools


def reselect(pools: dict, schema: Schema, space: SearchSpace, pim: PIMConfig) -> pd.DataFrame:
    """Re-cost every design of every pool under ``pim`` and pick again within the same budget (supernet log
    loss, no new search, no retraining): how much the picks depend on the cost model's constants."""
    hand_cost = design_cost(schema, space, handcrafted_design(space), pim).summary()
    rows = []
    for (name, eff, seed), r in pools.items():
        best = None
        for k, d in r.designs.items():
            c = design_cost(schema, space, d, pim).summary()
            ll = float(r.table.loc[r.table["key"] == k, "logloss"].iloc[0])
            if feasible(c, hand_cost, r.budget) and (best is None or ll < best[0]):
                best = (ll, k, c)
        rows.append({"method": name, "energy_eff": eff, "seed": seed, "sn_logloss": best[0] if best else np.nan,
                     "key": best[1] if best else None, "energy_nj": best[2]["energy_nj"] if best else np.nan,
                     "latency_us": best[2]["latency_us"] if best else np.nan})
    return pd.DataFrame(rows)


def front_pairs(scratch: pd.DataFrame, a: str, b: str, value: str = "test_logloss") -> tuple[dict, dict, dict]:
    """Per seed, the mean of ``value`` over the budgets at which both methods ``a`` and ``b`` found a design
    within budget: ``(a_by_seed, b_by_seed, budgets_used_by_seed)``, ready for ``evidence.paired``. A seed
    where the two share no budget is left out (and so counts against the seed minimum)."""
    t = scratch.dropna(subset=[value])
    wa = t[t["method"] == a].pivot_table(index="seed", columns="energy_eff", values=value)
    wb = t[t["method"] == b].pivot_table(index="seed", columns="energy_eff", values=value)
    out_a, out_b, used = {}, {}, {}
    for s in wa.index.intersection(wb.index):
        both = wa.loc[s].notna() & wb.loc[s].reindex(wa.columns).notna()
        cols = list(both[both].index)
        if cols:
            out_a[int(s)] = float(wa.loc[s, cols].mean())
            out_b[int(s)] = float(wb.loc[s, cols].mean())
            used[int(s)] = cols
    return out_a, out_b, used
