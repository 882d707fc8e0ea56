# %% [markdown]
# # Rankitect: sampling-based, one-shot and differentiable NAS in one ranking search space
#
# Wen, Liu, Fedorov, Zhang, Yin, Chu, Hassani, Sun, Liu, Wang, Jiang, Chen, Zhang, Liu, Cheng, Chen, Zhao, Han,
# Yang, Hao, Xiong, Chen, *Rankitect: Ranking Architecture Search Battling World-class Engineers at Meta Scale*,
# [arXiv:2311.08430](https://arxiv.org/abs/2311.08430) (WWW'24 Companion).
#
# Rankitect builds ranking models from **low-level building blocks**, from the raw 2-D dense tensor and 3-D
# embedding tensor up to the click logit, and runs three NAS families, **sampling-based**, **one-shot** and
# **DNAS**, fairly in the same space. It reports a competitive NE-vs-FLOPs trade-off from scratch against
# production models, and models better than the engineers' when the space is the engineers' own. It names four
# industrial obstacles, among them *strong* and *dynamic* baselines (engineers ship a better model while the search
# runs). The paper has no public code and only its abstract and a few quoted sentences could be checked, so **most
# of what runs here is a reconstruction**, said cell by cell. This notebook
#
# 1. builds one space of blocks (FC, sigmoid gating, sum, DLRM dot product, FM projection, EFC, attention,
#    dense/sparse fusion) over a few stacked layers that choose blocks, widths and which earlier outputs they read,
#    with analytic FLOPs per candidate and **one FLOPs limit** for all methods, checked before any training;
# 2. runs the three families on it **at the same compute budget, counted in training steps**;
# 3. retrains every family's model from scratch over seeds and puts its NE (normalised entropy) and FLOPs beside
#    hand-designed "engineer" baselines (DLRM-style, DCNv2, DHEN) and a random architecture from the same space;
# 4. at laptop scale, swaps the one-shot search's in-place baseline for a stronger one halfway ("dynamic baseline")
#    and searches a space restricted to the engineers' blocks.

# %% tags=["parameters"]
scale = "quick"  # quick|laptop|paper: preset for every knob left at None
seed = 0  # int: first seed; the repeats use seed, seed+1, ... (each repeat searches and retrains anew)
dataset = "synthetic"  # synthetic|movielens: planted-interaction synthetic CTR, or MovieLens-100K sequential CTR
n_seeds = None  # int≥1≤100: repeats of every search and retraining; verdicts need at least 3 (None: preset)
n_samples = None  # int≥1000≤100000000: synthetic rows (None: preset)
layers = None  # int≥1≤8: stacked layers in the space (None: preset)
emb_dim = 16  # int≥2≤256: embedding width E of every token (the engineer baselines use the same)
budget_steps = None  # int≥4≤10000000: search budget of every family, in training steps (None: preset)
batch_size = 256  # int≥8≤65536: mini-batch of every search and retraining step
trial_steps = None  # int≥1≤1000000: training steps of one sampling-based trial (None: preset)
eval_rows = None  # int≥100≤10000000: validation rows a sampling-based trial is scored on (None: preset)
controller_lr = 0.2  # float>0≤10: REINFORCE step of the sampling-based controller
replay = 4  # int≥0≤100: off-policy replays per evaluated architecture (0: plain on-policy REINFORCE)
clip = 5.0  # float>0≤1000: importance-weight clip of the replay
oneshot_lr = 0.05  # float>0≤10: REINFORCE step of the one-shot controller
warmup_frac = 0.25  # float≥0≤0.9: share of one-shot iterations with uniform paths before the controller learns
arch_lr = 0.05  # float>0≤10: Adam step of the DNAS architecture logits
dnas_lams = None  # list: DNAS cost weights lambda in BCE + lambda * E[FLOPs] / limit, one search per lambda and seed; 0 is the no-cost control (None: preset)
tau_start = 5.0  # float>0≤100: Gumbel-softmax temperature at the start of DNAS
tau_end = 0.5  # float>0≤100: temperature at the end (exponential schedule)
flops_limit_frac = 0.75  # float>0≤10: FLOPs limit of every search, as a fraction of the reference baseline's FLOPs
reference = "DCNv2"  # DCNv2|DLRM-style|DHEN: the engineer baseline the limit and the main claim refer to
retrain_epochs = None  # int≥1≤1000: epochs of every from-scratch retraining (early stopping on validation NE) (None: preset)
lr = 3e-3  # float>0≤10: Adam learning rate of every network's weights
ne_margin = 0.005  # float≥0≤1: NE margin of the "at or beyond" (non-inferiority) and "no worse" claims
variants = None  # bool: also run the dynamic-baseline and engineer-space experiments (None: preset)
swap_pretrain_steps = None  # int≥0≤10000000: training the stronger baseline got before it is swapped in (None: preset)
threads = 1  # int≥1≤256: torch CPU threads (these small models run fastest on one)

# %%
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import seaborn as sns
import torch

import companion
from companion import evidence, plots, results
from companion.nas import rankitect as rk
from companion.progress import tqdm
from companion.runtime import seed_everything
from companion.train import TrainConfig

SLUG = "rankitect"
PRESETS = {
    "quick": dict(n_seeds=3, n_samples=6000, layers=2, budget_steps=120, trial_steps=30, eval_rows=500,
                  dnas_lams=[0.0, 0.1],
                  retrain_epochs=2, variants=False, swap_pretrain_steps=0),
    "laptop": dict(n_seeds=3, n_samples=40000, layers=3, budget_steps=1200, trial_steps=100, eval_rows=2000,
                   dnas_lams=[0.0, 0.003, 0.03, 0.1], retrain_epochs=4, variants=True, swap_pretrain_steps=300),
    "paper": dict(n_seeds=5, n_samples=2000000, layers=5, budget_steps=200000, trial_steps=5000, eval_rows=100000,
                  dnas_lams=[0.0, 0.001, 0.003, 0.01, 0.03, 0.1], retrain_epochs=2, variants=True, swap_pretrain_steps=20000),
}
P = companion.params.resolve(PRESETS, scale, globals())
torch.set_num_threads(threads)
seed_everything(seed)
SEEDS = [seed + r for r in range(P.n_seeds)]
FAMILIES = ["sampling", "one-shot", "DNAS"]
T_START = time.perf_counter()

# %% [markdown]
# ## Data
#
# By default the project's synthetic CTR task with planted feature interactions (a few pairs and one triple of
# fields on top of first-order effects), so the best possible NE is known; `dataset="movielens"` runs the same
# pipeline on MovieLens-100K as sequential CTR (rating >= 4 = click, per-user chronological split; behaviour
# histories enter the space as mean-pooled tokens). NE is the test log loss divided by the entropy of the
# training click rate (He et al. 2014): 1.0 is a constant predictor, lower is better.

# %%
if dataset == "synthetic":
    from companion.data.synthetic import make_synthetic_ctr

    splits = make_synthetic_ctr(n_samples=P.n_samples, seed=seed)
    truth = splits.info["ground_truth"]
    H = rk.entropy_of(splits.base_ctr)
    BAYES_NE = truth.bayes_test["logloss"] / H
    print("planted pairs:", truth.pairs, "| triples:", truth.triples, f"| Bayes-optimal test NE {BAYES_NE:.4f}")
else:
    from companion.data.movielens_seq import load_movielens_seq

    splits = load_movielens_seq()
    BAYES_NE = float("nan")
pd.Series(splits.summary())

# %% [markdown]
# ## The search space, its FLOPs, the engineer baselines and the one limit
#
# Each of `layers` layers chooses a **dense block** (FC; sigmoid gating `sigmoid(W_g x) * W_v x`; sum of the padded
# sources then FC; DLRM-style dot product of a dense token with `k` compressed embedding tokens; FM projection of the
# tokens beside the dense inputs), a **sparse block** (EFC, an FC along the token axis; attention-style token
# mixing), a **fusion** (none; dense -> one extra token; sparse -> dense through an FM; both), a dense width, a
# token count, and **which earlier outputs** its dense and its sparse side read (source 0 = raw inputs). The head
# reads the last layer; layers it does not reach are neither built nor counted. FLOPs per candidate are analytic
# (each block's formula in the operator registry, 2 FLOPs per multiply-add); the tests check that they equal
# `companion.cost.flops.count_flops` of the built model on a dummy batch, for every block and for random
# candidates. The engineer baselines' FLOPs are counted the same way on a dummy batch.

# %%
space = rk.RankitectSpace.for_schema(splits.schema, layers=P.layers, emb_dim=emb_dim)
eng_flops = {n: rk.model_mflops(rk.engineer(n, splits.schema, emb_dim), splits) for n in rk.ENGINEER}
LIMIT_MFLOPS = flops_limit_frac * eng_flops[reference]
constraint = rk.flops_constraint(space, LIMIT_MFLOPS * 1e6)
draws = [space.sample_uniform(np.random.default_rng(1000 + i)) for i in range(400)]
feasible_share = float(np.mean([constraint.ok(c) for c in draws]))
print(f"{space.n_decisions} decisions, {space.size():.3g} decision vectors; uniform draws: median "
      f"{np.median([space.mflops(c) for c in draws]):.4f} MFLOPs, {feasible_share:.0%} within the limit")
print(f"limit: {flops_limit_frac} x {reference} = {LIMIT_MFLOPS:.4f} MFLOPs/sample")
pd.DataFrame({"MFLOPs/sample": eng_flops}).round(4)

# %%
CFG = rk.SearchConfig(budget_steps=P.budget_steps, batch_size=batch_size, lr=lr, eval_rows=P.eval_rows,
                      trial_steps=P.trial_steps, controller_lr=controller_lr, replay=replay, clip=clip,
                      oneshot_lr=oneshot_lr, warmup_frac=warmup_frac, arch_lr=arch_lr,
                      tau_start=tau_start, tau_end=tau_end)
RETRAIN = TrainConfig(epochs=P.retrain_epochs, batch_size=batch_size, lr=lr, monitor="logloss", patience=1,
                      progress=False)
baseline_of = lambda: rk.engineer("DLRM-style", splits.schema, emb_dim)  # noqa: E731  the one-shot in-place baseline

# %% [markdown]
# ## The three families at one budget
#
# Every family gets `budget_steps` **training steps** (an optimizer step of any network on one mini-batch of
# `batch_size` rows) and the same FLOPs limit:
#
# - **sampling-based**: `budget_steps / trial_steps` stand-alone trials of `trial_steps` steps, scored by NE on
#   `eval_rows` validation rows; the core's REINFORCE controller (a factorised softmax per decision) plus an
#   off-policy replay of already-evaluated architectures with importance weights clipped at `clip` (our reading of
#   "joint on-/off-policy"). Candidates over the limit are redrawn before any training.
# - **one-shot**: a masked full-width supernet of the whole space trained on single paths drawn by an RL controller
#   (uniform for the first `warmup_frac`), and beside it an in-place DLRM-style baseline trained on the same
#   mini-batches; the controller's reward is `NE_baseline - NE_subnet` on that mini-batch (two steps per iteration).
#   The final model is the controller's most likely architecture (or the most likely feasible one among draws).
# - **DNAS**: the same supernet with architecture logits per decision; per iteration a weight step on a
#   Gumbel-sampled path and an architecture step on a validation batch with `BCE + lam * E[FLOPs] / limit`
#   (soft Gumbel-softmax, temperature annealed `tau_start -> tau_end`), then top-1 per decision (two steps per
#   iteration). `E[FLOPs]` uses the same registry formulas with expected sizes. DNAS runs once per lambda in
#   `dnas_lams` (each at the full budget); lambda = 0 is the search without the cost term, the control for the
#   knob that could set the answer by itself.
#
# A random feasible architecture (no search) is the control.
#
# **The rule that picks DNAS's lambda**, declared here, before any test number is read: the **largest lambda
# whose retrained models' mean validation NE (over the seeds) is within `ne_margin` of the lowest mean validation
# NE of the sweep** (`rk.pick_lambda`, DistDNAS's rule from notebook 08 with the sweep's best lambda as the
# reference instead of an engineer baseline). The margin is our choice, the same `ne_margin` the non-inferiority
# claims below use: a cost term that costs less NE than the claims treat as negligible is taken as free, so the
# cheaper model wins. Every DNAS claim below is checked on the picked lambda's models (named "DNAS"); the other
# lambdas, lambda = 0 among them, are shown beside them.

# %%
searches, dnas_sweep = {}, {}
for s in tqdm(SEEDS, desc="seeds"):
    for fam in ["sampling", "one-shot", "random"]:
        searches[(fam, s)] = rk.run_family(fam, space, splits, constraint, CFG, s, baseline=baseline_of)
    for lam_ in P.dnas_lams:
        dnas_sweep[(lam_, s)] = rk.run_family("DNAS", space, splits, constraint, replace(CFG, lam=lam_), s)
runs = [(f, s, r) for (f, s), r in searches.items() if f != "random"]
runs += [(f"DNAS, lambda={lm:g}", s, r) for (lm, s), r in dnas_sweep.items()]
cost = pd.DataFrame([{"family": f, "seed": s, "search_steps": r.steps, "search_s": r.wall_s,
                      "arch": space.describe(r.cand), "MFLOPs": space.mflops(r.cand)} for f, s, r in runs])
cost

# %% [markdown]
# ## Retraining from scratch, beside the engineers
#
# Every found architecture, the random control and the three engineer baselines are trained from scratch with
# the same trainer (Adam, `retrain_epochs` epochs, early stopping on validation log loss), once per seed; NE and
# AUC are on the test split, FLOPs counted on the built model.

# %%
rows, sweep_rows = [], []
for s in tqdm(SEEDS, desc="retrain"):
    for fam in ["sampling", "one-shot", "random"]:
        r = searches[(fam, s)]
        m = rk.retrain(lambda c=r.cand: rk.RankNet(splits.schema, space, c), splits, s, RETRAIN)
        rows.append(rk.result_row(fam, s, r, space, m))
    for lam_ in P.dnas_lams:
        r = dnas_sweep[(lam_, s)]
        m = rk.retrain(lambda c=r.cand: rk.RankNet(splits.schema, space, c), splits, s, RETRAIN)
        sweep_rows.append(rk.result_row(f"DNAS, lambda={lam_:g}", s, r, space, m) | {"lam": lam_})
    for name in rk.ENGINEER:
        m = rk.retrain(lambda n=name: rk.engineer(n, splits.schema, emb_dim), splits, s, RETRAIN)
        rows.append(rk.result_row(name, s, None, None, m))
sweep = pd.DataFrame(sweep_rows)
LAM = rk.pick_lambda(sweep[["lam", "seed", "valid_ne"]], margin=ne_margin)  # validation columns only
for s in SEEDS:
    searches[("DNAS", s)] = dnas_sweep[(LAM, s)]
table = pd.concat([pd.DataFrame(rows), sweep[sweep.lam == LAM].drop(columns="lam").assign(model="DNAS")],
                  ignore_index=True)
table = table.set_index("model").loc[FAMILIES + ["random"] + list(rk.ENGINEER)].reset_index()
print(f"picked lambda = {LAM:g} (validation NE per lambda: "
      f"{sweep.groupby('lam').valid_ne.mean().round(4).to_dict()}, margin {ne_margin})")
summary = table.groupby("model", sort=False).agg(ne=("ne", "mean"), ne_sd=("ne", "std"), auc=("auc", "mean"),
                                                 mflops=("mflops", "mean")).round(4)
summary

# %% [markdown]
# ### The lambda sweep
#
# Each lambda's DNAS model, retrained per seed: validation NE (what the rule reads), test NE and FLOPs.
# Left: validation NE against FLOPs; right: test NE against FLOPs; one point per seed, the dashed line is the limit.

# %%
sweep_summary = sweep.groupby("lam").agg(valid_ne=("valid_ne", "mean"), ne=("ne", "mean"), ne_sd=("ne", "std"),
                                         mflops=("mflops", "mean"), arch=("arch", "first")).round(4)
sweep_summary["picked"] = sweep_summary.index == LAM
fig, axes = plots.figure(1, 2, figsize=(11, 4))
for ax, col, lab in [(axes[0], "valid_ne", "validation NE"), (axes[1], "ne", "test NE")]:
    sns.scatterplot(data=sweep.assign(lam=sweep.lam.map("{:g}".format)), x="mflops", y=col, hue="lam",
                    style="lam", s=70, ax=ax)
    ax.axvline(LIMIT_MFLOPS, ls="--", c="grey", lw=1, label="FLOPs limit")
    ax.set(xlabel="FLOPs (MFLOPs per sample)", ylabel=f"{lab} (log loss / base-rate entropy)",
           title=f"DNAS lambda sweep: {lab} (picked lambda = {LAM:g})")
    ax.legend(title="lambda", fontsize=7)
_ = plots.save(fig, "lambda_sweep", SLUG)
sweep_summary

# %% [markdown]
# ## Laptop scale: the dynamic baseline and the engineer-designed space
#
# *Dynamic baseline*: the one-shot search again, but halfway through its in-place baseline is replaced by a
# stronger model (a DCNv2 already trained for `swap_pretrain_steps` steps, standing for the better production model
# engineers ship mid-search; those steps are the engineers', not counted in the search budget). The reward
# `NE_baseline - NE_subnet` drops at the swap; the controller learns from its advantage over a moving average, so
# the question is whether the search still ends with an equally good model. *Engineer-designed space*: the same
# DNAS search in a space restricted to the engineers' blocks (FC and dot product on the dense side, EFC on the
# sparse side, no fusion or FM fusion), compared with the reference engineer baseline.

# %%
var_rows, swap_hist = [], None
if P.variants:
    eng_space = rk.RankitectSpace.for_schema(splits.schema, layers=P.layers, emb_dim=emb_dim, name="engineer",
                                             **rk.ENGINEER_BLOCKS)
    eng_con = rk.flops_constraint(eng_space, LIMIT_MFLOPS * 1e6)
    for s in tqdm(SEEDS, desc="variants"):
        strong = rk.pretrained("DCNv2", splits, emb_dim, P.swap_pretrain_steps, s, lr=lr, batch_size=batch_size)
        dyn = rk.oneshot_search(space, splits, constraint, CFG, baseline_of, s, swap_at=0.5, make_stronger=lambda m=strong: m)
        swap_hist = swap_hist or dyn.history
        m = rk.retrain(lambda c=dyn.cand: rk.RankNet(splits.schema, space, c), splits, s, RETRAIN)
        var_rows.append(rk.result_row("one-shot, dynamic baseline", s, dyn, space, m))
        es = rk.dnas_search(eng_space, splits, eng_con, replace(CFG, lam=LAM), s)  # the picked lambda
        m = rk.retrain(lambda c=es.cand: rk.RankNet(splits.schema, eng_space, c), splits, s, RETRAIN)
        var_rows.append(rk.result_row("DNAS, engineer space", s, es, eng_space, m))
variants_table = pd.DataFrame(var_rows)
full = pd.concat([table, variants_table], ignore_index=True)
variants_table

# %% [markdown]
# ## NE vs FLOPs
#
# Each point is one retrained model (one seed); the dashed line is the FLOPs limit every search ran under.

# %%
fig, ax = plots.figure(figsize=(7.5, 4.8))
sns.scatterplot(data=full, x="mflops", y="ne", hue="model", style="model", s=70, ax=ax)
ax.axvline(LIMIT_MFLOPS, ls="--", c="grey", lw=1, label="FLOPs limit")
means = full.groupby("model").agg(mflops=("mflops", "mean"), ne=("ne", "mean"))
pareto = means.sort_values("mflops")
pareto = pareto[pareto["ne"] <= pareto["ne"].cummin()]
ax.plot(pareto["mflops"], pareto["ne"], c="k", lw=1, alpha=0.6, label="Pareto front of the means")
ax.set(xlabel="FLOPs (MFLOPs per sample)", ylabel="test NE (log loss / base-rate entropy)",
       title=f"NE vs FLOPs, {dataset}, {len(SEEDS)} seeds")
ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
_ = plots.save(fig, "pareto", SLUG)

# %% [markdown]
# ## Search cost and search dynamics
#
# Left: the budget every family used (training steps; equal by construction) and its wall time. Middle: the
# one-shot reward per iteration (the dashed line marks the swap when the dynamic-baseline run exists). Right: the
# DNAS expected FLOPs under softmax(alpha) per iteration, against the limit.

# %%
fig, axes = plots.figure(1, 3, figsize=(13, 3.8))
cs = cost.groupby("family", sort=False).agg(steps=("search_steps", "mean"), wall=("search_s", "mean")).reset_index()
sns.barplot(data=cs, x="family", y="wall", ax=axes[0], color="C0")
for i, r in cs.iterrows():
    axes[0].text(i, r.wall, f"{int(r.steps)} steps", ha="center", va="bottom", fontsize=8)
axes[0].set(xlabel="family", ylabel="search wall time (s)", title="search cost at one budget")
hist = pd.DataFrame(swap_hist or searches[("one-shot", SEEDS[0])].history)
axes[1].plot(hist["iter"], hist["reward"], lw=0.6, alpha=0.5, label="reward")
axes[1].plot(hist["iter"], hist["moving_baseline"], lw=1.5, label="controller's moving average")
if swap_hist:
    axes[1].axvline(len(hist) // 2, ls="--", c="grey", lw=1, label="baseline swapped")
axes[1].set(xlabel="one-shot iteration", ylabel="NE_baseline - NE_subnet (NE)", title="one-shot reward")
axes[1].legend(fontsize=7)
dh = pd.DataFrame(searches[("DNAS", SEEDS[0])].history)
axes[2].plot(dh["iter"], dh["expected_mflops"], label="E[FLOPs] under softmax(alpha)")
axes[2].axhline(LIMIT_MFLOPS, ls="--", c="grey", lw=1, label="limit")
axes[2].set(xlabel="DNAS iteration", ylabel="expected MFLOPs per sample", title="DNAS cost term", ylim=(0, None))
axes[2].legend(fontsize=7)
_ = plots.save(fig, "search", SLUG)

# %% [markdown]
# ## Paper vs. this run
#
# The paper's numbers could not be checked (only the abstract and quotations are public), so the "paper" column
# quotes its qualitative statements. Thresholds are declared beside each claim; comparisons are paired over seeds
# (seed = one search and one retraining).

# %%
ne_of = lambda name: full[full.model == name].set_index("seed")["ne"].to_dict()  # noqa: E731
mfl_of = lambda name: float(full[full.model == name]["mflops"].mean())  # noqa: E731
TH_AT_OR_BEYOND = evidence.Threshold(-ne_margin, "at_least", 0.0, unit="NE",
                                     source=f"our non-inferiority margin ne_margin={ne_margin} (the paper gives no NE "
                                            "numbers; 'competitive trade-off' read as at most this much worse)")
TH_FLOPS = evidence.Threshold(1.0, "at_most", 0.0, unit="x reference FLOPs",
                              source="the paper's 'at lower FLOPs'; here guaranteed by the limit (the control knob)")


def at_or_beyond(name):
    p = evidence.paired(ne_of(name), ne_of(reference), metric="ne", higher_is_better=False, names=(name, reference))
    ne_part = evidence.threshold_verdict(p.mean, TH_AT_OR_BEYOND, ci=(p.lo, p.hi))
    fl_part = evidence.threshold_verdict(mfl_of(name) / mfl_of(reference), TH_FLOPS)
    return p, evidence.all_of([ne_part, fl_part], rule=f"{name} vs {reference}: NE non-inferior and FLOPs lower")


claims = []
for fam in FAMILIES:
    p, ev = at_or_beyond(fam)
    claims.append(results.claim(
        f"A {fam} searched model reaches the engineer baseline's NE or better at lower FLOPs (abstract)",
        "competitive NE vs FLOPs against production models (no numbers public)",
        f"{p.text()}; {mfl_of(fam):.4f} vs {mfl_of(reference):.4f} MFLOPs", ev,
        f"control: the reference {reference} under the same trainer; the FLOPs half is set by the limit"))
best_engineer = min(rk.ENGINEER, key=lambda n: float(np.mean(list(ne_of(n).values()))))  # lowest mean test NE
for fam in FAMILIES:
    p = evidence.paired(ne_of(fam), ne_of(best_engineer), metric="ne", higher_is_better=False, names=(fam, best_engineer))
    claims.append(results.claim(
        f"A {fam} searched model reaches the best engineer baseline's NE or better at lower FLOPs",
        "competitive NE vs FLOPs against the strongest production model",
        f"{p.text()}; {mfl_of(fam):.4f} vs {mfl_of(best_engineer):.4f} MFLOPs",
        evidence.all_of([evidence.threshold_verdict(p.mean, TH_AT_OR_BEYOND, ci=(p.lo, p.hi)),
                         evidence.threshold_verdict(mfl_of(fam) / mfl_of(best_engineer), TH_FLOPS)]),
        f"control: the engineer baseline with the lowest mean test NE in this run ({best_engineer}), chosen after "
        "the run, so this is the strictest reading"))
pairs = {(a, b): evidence.paired(ne_of(a), ne_of(b), metric="ne", higher_is_better=False, names=(a, b))
         for a, b in [("DNAS", "sampling"), ("one-shot", "sampling"), ("DNAS", "one-shot")]}
for (a, b), p in pairs.items():
    claims.append(results.claim(f"At equal budget ({P.budget_steps} training steps), {a} finds a better model than {b}",
                                "the paper compares the three fairly; which won could not be verified",
                                p.text(), evidence.gap_verdict(p), "same space, limit, budget and retraining"))
for fam in FAMILIES:
    p = evidence.paired(ne_of(fam), ne_of("random"), metric="ne", higher_is_better=False, names=(fam, "random"))
    claims.append(results.claim(f"{fam} search beats a random architecture under the same limit",
                                "implicit (search is worth its cost)", p.text(), evidence.gap_verdict(p),
                                "control: one uniform feasible draw per seed, retrained identically"))
if P.variants:
    p_dyn = evidence.paired(ne_of("one-shot, dynamic baseline"), ne_of("one-shot"), metric="ne",
                            higher_is_better=False, names=("dynamic", "static"))
    TH_DYN = evidence.Threshold(-ne_margin, "at_least", 0.0, unit="NE",
                                source=f"our margin ne_margin={ne_margin}: the swap may cost at most this much NE")
    claims.append(results.claim("The in-place baseline lets one-shot search survive a baseline swapped mid-search",
                                "dynamic baselines named as an obstacle the method handles",
                                p_dyn.text(), evidence.threshold_verdict(p_dyn.mean, TH_DYN, ci=(p_dyn.lo, p_dyn.hi)),
                                "control: the same one-shot search with a static baseline, same seeds"))
    p_eng = evidence.paired(ne_of("DNAS, engineer space"), ne_of(reference), metric="ne", higher_is_better=False,
                            names=("engineer-space search", reference))
    claims.append(results.claim("In an engineer-designed space the search beats the engineers' model",
                                "better than engineer models offline, positive online A/B", p_eng.text(),
                                evidence.gap_verdict(p_eng), f"control: {reference}; FLOPs within the same limit"))
else:
    claims.append(results.claim("The in-place baseline lets one-shot search survive a baseline swapped mid-search",
                                "dynamic baselines named as an obstacle", "not run",
                                evidence.not_tested("variants=False (laptop preset runs it)")))
claims.append(results.claim("A searched model wins an online A/B test", "statistically significant online gain",
                            "no online traffic", evidence.not_tested("offline companion")))
results.print_claims(claims)

# %% [markdown]
# ## Recorded runs (synthetic data, seeds 0-2)
#
# **Laptop** (`companion run rankitect --scale laptop`, 1450 s notebook wall on the shared 2-core machine, 3
# layers, 40,000 rows, a 1,200-step budget per family and per DNAS lambda, `dnas_lams=[0, 0.003, 0.03, 0.1]`,
# limit 0.0772 MFLOPs = 0.75 x DCNv2). Test NE, mean +- sd over 3 seeds, and MFLOPs per sample: sampling
# 0.844 +- 0.009 at 0.042; one-shot 0.849 +- 0.006 at 0.046; DNAS (picked lambda = 0) 0.846 +- 0.015 at 0.074;
# random control 0.863 +- 0.007 at 0.050; DLRM-style 0.825 +- 0.005 at 0.103; DCNv2 0.874 +- 0.004 at 0.103; DHEN
# 0.825 +- 0.008 at 0.236; one-shot with the dynamic baseline 0.860 +- 0.007 at 0.039; DNAS in the engineer space
# (lambda = 0) 0.854 +- 0.013 at 0.023. Search wall time per search at the equal budget: sampling 24 s, one-shot
# 27 s, DNAS 60-80 s per lambda (its steps are supernet steps over every block).
#
# The lambda sweep (mean validation NE / test NE +- sd / MFLOPs): lambda = 0, 0.821 / 0.846 +- 0.015 / 0.074;
# 0.003, 0.848 / 0.857 +- 0.014 / 0.031; 0.03, 0.830 / 0.848 +- 0.008 / 0.004; 0.1, 0.838 / 0.854 +- 0.015 / 0.002.
# Without the cost term the searches grow up to the limit (in 2 of 3 seeds the top-1 architecture was over it and
# the feasibility fallback chose the most probable feasible draw); from lambda = 0.03 they collapse to the
# cheapest blocks (with Adam on the logits the steady cost gradient beats the noisy accuracy gradient). The rule
# picked lambda = 0: every other lambda's mean validation NE is 0.009 or more above lambda = 0's, beyond the
# 0.005 margin. The NE cost of the penalty is not monotone in lambda (0.003 is the worst on validation and test),
# and the test NE of lambda = 0.03 (0.848 at 0.004 MFLOPs) is within 0.003 of lambda = 0's at under 6% of the
# FLOPs, so with 3 seeds the sweep does not separate the lambdas on test NE; the rule's pick stands because it was
# fixed on validation NE before these numbers were read. The FLOPs half of the DNAS claims is set by the limit,
# not by lambda.
#
# What this says: every family's model beats the reference DCNv2 at lower FLOPs. For sampling and one-shot the
# intervals exclude zero; for DNAS the gap is +0.028 NE with interval [-0.004, +0.059], non-inferior within the
# 0.005 margin, but only just. None reaches the best engineer baselines (DHEN and DLRM-style, about 0.825 NE):
# against DHEN the gaps are -0.019 (sampling), -0.025 (one-shot, interval [-0.037, -0.012], so partly) and -0.021
# NE (DNAS, interval [-0.044, +0.001]). The three families cannot be told apart at this budget, and none beats
# the random control beyond the noise of 3 seeds. The DCNv2 reference is the weakest engineer model here, so
# the "beyond the reference" claims read more into the search than the comparison with the best engineer model
# allows. DNAS verdicts before the sweep (lambda = 0.1 only) -> now (picked lambda = 0): beyond DCNv2
# inconclusive -> reproduced; beyond DHEN inconclusive -> inconclusive; against sampling, one-shot and random
# inconclusive throughout; engineer space inconclusive -> inconclusive (+0.020 NE over DCNv2, interval
# [-0.004, +0.044]).
#
# **Quick** (a smoke test: 6,000 rows, 2 layers, a 120-step budget, 2 retraining epochs, `dnas_lams=[0, 0.1]`;
# 70-88 s notebook wall with the machine under load): every model stays near NE 1 (0.98-1.08), so its verdicts are
# inconclusive by design. The rule picks lambda = 0.1 there (validation NE 0.987 against 0.994 at lambda = 0),
# so the quick DNAS numbers are those before the sweep; its headline (with the picked lambda) is pinned.

# %% [markdown]
# ## What the paper leaves open, and where we differ
#
# Rankitect has no public code and its full text could not be read; everything below the abstract is ours.
#
# - **Space** (reconstruction): blocks from NASRec and Drs.NAS (same group), not Rankitect's unpublished list;
#   a few layers and small widths (`widths` 16-128, `tokens` 4-16, `emb_dim` 16) instead of production scale;
#   every layer reads any subset of earlier outputs, with an empty set meaning the newest one. No activation
#   checkpointing or vectorisation (the paper's systems work) is needed at this size.
# - **FLOPs**: analytic, per sample, 2 per multiply-add, embedding lookups and element-wise work free (the project's
#   convention); the paper's FLOPs accounting is not known. The limit is `flops_limit_frac` of one engineer
#   baseline, our choice; a hard constraint for the sampling and one-shot controllers, a penalty for DNAS with a
#   feasibility fallback at discretisation.
# - **Sampling-based**: REINFORCE with a moving-average baseline plus a clipped importance-weighted replay, reward
#   `-NE` on a validation subset after a short training (low fidelity). The paper's "joint on-/off-policy" is
#   known only by name (a secondary summary); the replay rule and the clip of 5 are ours.
# - **One-shot**: NASRec-style masked sharing (full-width compute, 0/1 width masks, LayerNorm over the full width),
#   single-path training, the reward measured on the training mini-batch before the update (both models see it
#   for the first time within a pass), a factorised controller. The paper's figure of an in-place co-trained
#   baseline is known only from a summary; its controller, reward scaling and warm-up are not.
# - **DNAS**: FBNet/DistDNAS-style linear penalty `lambda * E[FLOPs] / limit` (the paper's form unknown), the
#   expectation mean-field over independent decisions (exact for costs linear in each decision, approximate for
#   the attention's `T^2` and the sum's max), weight steps on hard Gumbel paths (GDAS-style, to keep the cost of
#   a weight step near one path's), architecture steps on soft Gumbel mixtures. The paper's lambda is not known:
#   ours is picked from `dnas_lams` by a rule on validation NE (ours, declared above the results), each lambda
#   searching at the full budget, so DNAS spends `len(dnas_lams)` times the budget the other families get before
#   its pick (the same is true of any method whose knob is tuned; the claims compare one search per family).
# - **Budget**: counted in training steps per search, the same for all families; the in-place baseline's steps
#   are counted against one-shot, the stronger baseline's pre-training in the dynamic-baseline run is not (it
#   stands for the engineers' model). Wall time is reported beside it.
# - **Engineer baselines**: zoo models sized by us (MLP 128-64, DCNv2 2 cross layers of rank 16, DHEN 1 layer), not
#   Meta's production models, trained by the same trainer as the searched models.
# - **Scale**: the quick preset is a smoke test (a 120-step budget, 2 retraining epochs); its numbers are not
#   evidence about the paper. Laptop numbers and wall time are in the next cell's record.

# %%
headline = {f"ne_{k.replace(' ', '_').replace(',', '')}": float(v) for k, v in summary["ne"].items()}
headline |= {"limit_mflops": float(LIMIT_MFLOPS), "dnas_mflops": float(summary.loc["DNAS", "mflops"]),
             "dnas_lam": float(LAM)}
results.save(SLUG, params=vars(P) | {"dataset": dataset, "seeds": SEEDS, "space": space.config(),
                                     "limit_mflops": LIMIT_MFLOPS, "reference": reference, "search": vars(CFG)},
             metrics={"table": full.to_dict("records"), "cost": cost.to_dict("records"),
                      "dnas_sweep": sweep.to_dict("records"), "dnas_lam": LAM,
                      "engineer_mflops": eng_flops, "feasible_share": feasible_share, "bayes_ne": BAYES_NE,
                      "search_info": {f"{f}/{s}": {k: v for k, v in r.info.items() if k != "probs"}
                                      for (f, s), r in searches.items()}
                      | {f"DNAS lambda={lm:g}/{s}": {k: v for k, v in r.info.items() if k != "probs"}
                         for (lm, s), r in dnas_sweep.items()},
                      "wall_s": time.perf_counter() - T_START},
             claims=claims, headline=headline)
print(f"total wall time {time.perf_counter() - T_START:.1f} s")
