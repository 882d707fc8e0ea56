# %% [markdown]
# # DistDNAS: distributed differentiable search of feature interactions with a cost-aware loss
#
# Tunhou Zhang, Wei Wen, Igor Fedorov, Xi Liu, Buyun Zhang, Fangqiu Han, Wen-Yen Chen, Yiping Han, Feng Yan, Hai Li,
# Yiran Chen. *DistDNAS: Search Efficient Feature Interactions within 2 Hours*.
# [arXiv:2311.00231](https://arxiv.org/abs/2311.00231) (IEEE BigData 2024, pp. 1492-1499).
#
# A CTR model mixes features through *interaction modules* of different types and orders: dense layers, DLRM dot
# products, factorization machines, DCN cross layers, attention. Picking the mix by hand is slow and tends to stack
# redundant, expensive modules. DistDNAS makes the choice differentiable: a supernet holds every candidate module
# in every layer, weighted by learned architecture parameters. A cost term in the loss pushes weight away from
# expensive modules. And because a search over a year of logs is slow, it searches each **data date separately and
# in parallel**, then aggregates the per-date choices. The abstract reports +0.001 AUC, 60% fewer FLOPs than
# state-of-the-art CTR models on Criteo Terabyte, and a speed-up of over 25x (2 days of search down to 2 hours).
#
# **What could be read.** Only the abstract and the first paragraph of the introduction; there is no public code.
# The module list, the relaxation, the form of the cost loss, the aggregation rule and every number below are
# **our reconstructions** (`papers/notes/recsys_nas.md` §4, `six_papers_addendum.md` §2). Each section says which.
#
# The notebook shows:
# 1. data dates: a synthetic CTR task whose planted interaction mix drifts from date to date (pairs fade, a
#    triple grows), MovieLens-100K cut by timestamp (real drift), and the Criteo Terabyte day files at paper scale;
# 2. the interaction-module supernet and its analytic FLOPs per module (`companion.nas.distdnas`);
# 3. the lambda sweep: each lambda's search over the dates, the aggregate discretised and retrained from scratch
#    over seeds, as an AUC-vs-FLOPs front beside DCNv2 and a DLRM-style model from the zoo;
# 4. the per-date choices, their aggregate and the planted ground truth;
# 5. the distributed search really launched with `torchrun` (gloo) on 1 and 2 worker processes, its wall time,
#    and a check that it gives the in-process answer;
# 6. the paper's claims checked through `companion.evidence`.

# %% tags=["parameters"]
scale = "quick"  # quick|laptop|paper: preset for every knob left at None
seed = 0  # int: first seed; retraining seeds are seed, seed+1, ...; search seeds likewise
dataset = None  # synthetic|movielens|criteo_tb: where the data dates come from (None: preset; criteo_tb needs data_path)
data_path = ""  # str: folder of the Criteo Terabyte day_0 ... day_23 files (criteo_tb) or a GroupLens ml-100k folder
n_dates = None  # int≥1≤365: search dates (one supernet search each); the date after them is the test set
rows_per_date = None  # int≥0≤1000000000: synthetic rows per date; criteo_tb: rows read per day file (0: all)
layers = None  # int≥1≤8: stacked interaction layers in the supernet
dim = None  # int≥2≤256: embedding width d (every module maps F tokens of width d to F tokens)
rank = None  # int≥1≤1024: rank of the DCNv2 cross layers (the searched ones and the DCNv2 baseline's)
hidden = None  # list: head MLP widths (the searched models and both baselines share it)
search_epochs = None  # int≥1≤100: passes over each date during its search (DistDNAS streams one)
arch_warmup = None  # float≥0≤0.99: fraction of each date's search steps that train only the weights
arch_lr = None  # float>0≤10: Adam learning rate of the architecture logits
relax = "softmax"  # softmax|gumbel: relaxation of each layer's module choice
aggregate = "mean"  # mean|vote: how per-date choices are combined (mean of softmax(alpha), or one top-1 vote per date)
update = "joint"  # joint|alternate: weights and alphas stepped on the same batch, or alphas on a held-out 20% of the date
lams = None  # list: cost-loss weights lambda of the sweep (0: no cost term, the control)
margin = 0.001  # float≥0≤1: AUC equivalence margin (no AUC loss: the 95% interval of the gap stays above -margin)
n_seeds = None  # int≥1≤1000: retraining seeds per model (a verdict needs at least 3)
search_seeds = None  # int≥1≤1000: independent searches per lambda (retraining seed i uses search i mod search_seeds)
retrain_epochs = None  # int≥1≤1000: epochs of every from-scratch training (early stopping on validation AUC)
search_workers = None  # int≥0≤4096: torchrun processes for the sweep's searches (0: in-process, the same aggregate)
timing_workers = None  # list: worker counts whose search wall time is measured with real torchrun launches
timing_repeats = None  # int≥0≤100: repeats of each timing launch (0: no timing)
movielens_lams = None  # list: lambdas of the extra search on MovieLens-100K dates (empty: skip)
threads = 1  # int≥1≤256: torch CPU threads per process (and per torchrun rank)

# %%
import numpy as np
import pandas as pd
import seaborn as sns
import torch

import companion.params
from companion import evidence, plots, results
from companion.data.date_shards import DateSpec
from companion.nas import distdnas as dd
from companion.runtime import seed_everything

SLUG = "distdnas"
PRESETS = {
    "quick": dict(dataset="synthetic", n_dates=3, rows_per_date=2000, layers=2, dim=8, rank=8, hidden=[64],
                  search_epochs=1, arch_warmup=0.3, arch_lr=0.05, lams=[0.0, 0.01], n_seeds=3, search_seeds=1,
                  retrain_epochs=1, search_workers=0, timing_workers=[1, 2], timing_repeats=1, movielens_lams=[]),
    "laptop": dict(dataset="synthetic", n_dates=6, rows_per_date=6000, layers=2, dim=8, rank=8, hidden=[64],
                   search_epochs=2, arch_warmup=0.3, arch_lr=0.05, lams=[0.0, 0.003, 0.01, 0.03], n_seeds=3,
                   search_seeds=3, retrain_epochs=3, search_workers=0, timing_workers=[1, 2], timing_repeats=3,
                   movielens_lams=[0.0, 0.01]),
    "paper": dict(dataset="criteo_tb", n_dates=23, rows_per_date=0, layers=3, dim=16, rank=64, hidden=[512, 256],
                  search_epochs=1, arch_warmup=0.3, arch_lr=0.05, lams=[0.0, 0.003, 0.01, 0.03], n_seeds=3,
                  search_seeds=1, retrain_epochs=1, search_workers=23, timing_workers=[1, 23], timing_repeats=1,
                  movielens_lams=[]),
}
P = companion.params.resolve(PRESETS, scale, globals())
torch.set_num_threads(threads)
seed_everything(seed)
SEEDS = [seed + i for i in range(P.n_seeds)]
CFG = dd.SearchConfig(layers=P.layers, dim=P.dim, rank=P.rank, hidden=tuple(P.hidden), epochs=P.search_epochs,
                      arch_warmup=P.arch_warmup, arch_lr=P.arch_lr, relax=relax, aggregate=aggregate, update=update)
SPEC = DateSpec(P.dataset, n_dates=P.n_dates, rows_per_date=P.rows_per_date, seed=seed, path=data_path)
print(CFG)

# %% [markdown]
# ## Data dates
#
# DistDNAS searches each day of Criteo Terabyte on its own. Here a *date* is a chronological shard, and the date
# after the last search date is the test set (so every test row lies in the future of every training row).
#
# - **synthetic** (default): the project's planted-interaction CTR generator (`companion.data.synthetic`) with one
#   ground truth shared by all dates (three planted feature pairs and one planted triple) and a **drifting mix**:
#   the pairs' strength falls from 1.5 to 0.5 and the triple's rises from 0.5 to 1.5 between the first date and
#   the test date. Per-date searches therefore have a reason to disagree, and the aggregate has something to do.
# - **movielens**: MovieLens-100K's ratings cut by timestamp into equal-count shards (Sept 1997 to Apr 1998, real
#   drift: new users arrive, the click rate moves), with the non-sequential features of `movielens_seq`.
# - **criteo_tb** (paper scale): one date per `day_N` file, categories hashed per field so all days agree.
#   It cannot run on this machine (1 TB; a day file is read into memory whole), but it is the same code path.

# %%
shards = SPEC.build()
truth_pairs, truth_triples = shards.info.get("pairs"), shards.info.get("triples")
if truth_pairs is not None:
    print("planted pairs:", truth_pairs, "| planted triple:", truth_triples)
    print("Bayes-optimal AUC on the test date: %.4f" % shards.info["bayes_test"]["auc"])
print(shards.schema.describe())
shards.table()

# %% [markdown]
# ## The supernet: interaction modules and their cost
#
# Every module maps the F feature tokens (each of width d) to F tokens, as a residual update, so modules stack and
# mix in any layer. Each layer is the softmax(alpha)-weighted sum of all candidates followed by a LayerNorm; a shared
# MLP head reads the last layer. The candidates follow the notes' reconstruction of DistDNAS's space: a dense layer
# over all tokens (`fc`, first order), DLRM pairwise dot products (`dot`), the factorization-machine vector (`fm`),
# DCNv2 low-rank cross layers of depth 1-3 (`cross1..3`, orders 2-4), an FC along the token axis (`efc`),
# single-head self-attention (`attn`) and `identity` (no new interaction). Their FLOPs are analytic (registered in
# `companion.nas.registry`) and equal what `companion.cost.flops` counts on a built copy (the tests check it). The
# cost term of the loss is `lambda * sum_layers sum_m softmax(alpha)_m * MACs_m / max_m MACs_m`.

# %%
ctx = CFG.ctx(shards.schema)
costs = pd.DataFrame({"module": CFG.modules, "order": [dd.ORDER[m] for m in CFG.modules],
                      "FLOPs per sample": [2 * dd.module_macs(m, ctx) for m in CFG.modules]})
costs["normalised cost"] = costs["FLOPs per sample"] / costs["FLOPs per sample"].max()
print(f"F = {ctx['F']} tokens of width d = {ctx['d']}; head MLP {list(CFG.hidden)}: "
      f"{2 * dd.head_macs(ctx, CFG.hidden)} FLOPs per sample, shared by every searched model")
costs.set_index("module")

# %% [markdown]
# ## The lambda sweep
#
# For each lambda the search runs once per date (dates are independent, so they could run on different machines),
# the per-date softmax(alpha) are aggregated (`aggregate`), the top module of each layer is kept, and that
# architecture is **retrained from scratch** on all search dates pooled (validation: the end of the newest date;
# test: the next date). The baselines get the same embedding, the same head MLP, the same data and the same seeds:
# DCNv2 (three low-rank cross layers beside the MLP, `companion.models.zoo`) and a DLRM-style model (pairwise dot
# products beside the flattened embeddings, then the MLP). lambda = 0 is the search without the cost term: the control
# for what the cost term itself does.
#
# Recorded laptop run (synthetic, 6 dates x 6,000 rows, 3 search seeds and 3 retraining seeds per lambda; Bayes AUC
# on the test date about 0.83): lambda = 0 kept expensive stacks (`efc > cross3`, `cross3 > cross3`, `fc > cross3`;
# 38,208 FLOPs per sample on average) at test AUC 0.7153 +- 0.0079; lambda = 0.003 kept `efc > identity` or
# `identity > identity` (16,555 FLOPs, 57% fewer) at 0.7133 +- 0.0054; from lambda = 0.01 every search chose
# `identity > identity` (the embedding and the head alone, 14,464 FLOPs) at 0.7014 +- 0.0181. DCNv2 reached
# 0.6917 +- 0.0064 at 25,440 FLOPs and the DLRM-style model 0.7079 +- 0.0106 at 29,248. So the cost term does trade
# FLOPs for AUC along a front, and on this small task the hand-designed baselines sit below it; the interaction
# modules earn little over a plain MLP when a few thousand rows per date are all there is. The quick preset (3 dates
# of 2,000 rows, one pass) is a smoke test: its models stay near AUC 0.56-0.61.

# %%
searches, models = dd.lambda_sweep(shards, CFG, P.lams, SEEDS, search_seeds=P.search_seeds,
                                   epochs=P.retrain_epochs, spec=SPEC, workers=P.search_workers)
front = (models.groupby("model", sort=False)
         .agg(arch=("arch", "first"), flops=("flops", "mean"), test_auc=("test_auc", "mean"),
              test_auc_sd=("test_auc", "std"), valid_auc=("valid_auc", "mean"), test_logloss=("test_logloss", "mean")))
print("architecture per lambda and search seed:")
display(searches[["lam", "search_seed", "arch", "expected_flops", "search_wall_s"]])
front.round(4)

# %%
fig, ax = plots.figure(figsize=(7.5, 4.5))
pts = models.assign(kflops=models.flops / 1e3)
sns.pointplot(data=pts, x="kflops", y="test_auc", hue="model", native_scale=True, errorbar="sd",
              linestyles="none", markers="o", ax=ax)
ax.set(xlabel="FLOPs per sample (thousands)", ylabel="test AUC (next date)",
       title=f"AUC vs FLOPs: lambda sweep and baselines (mean +- sd over {len(SEEDS)} seeds)")
ax.legend(fontsize=8)
_ = plots.save(fig, "front", SLUG)

# %% [markdown]
# ## Which model the claims are checked on
#
# The rule, declared before the test numbers are read: the **largest lambda whose searched models' mean validation
# AUC is within `margin` of DCNv2's** (the smallest lambda if none is). Validation numbers only, so the pick does
# not look at the test date. In the recorded laptop run DCNv2's validation AUC (0.7508) was below every searched
# model's, so the rule picked the largest lambda, 0.03, whose model is `identity > identity`.

# %%
LAM = dd.pick_lambda(models, "DCNv2", margin)
chosen = f"searched, lambda={LAM:g}"
print(f"picked lambda = {LAM:g}: {front.loc[chosen, 'arch']}")
by = lambda name, col="test_auc": models[models.model == name].set_index("seed")[col].to_dict()  # noqa: E731
pairs = {b: evidence.paired(by(chosen), by(b), metric="test AUC", names=(chosen, b))
         for b in ["DCNv2", "DLRM (dot)", "searched, lambda=0"]}
saving = {b: 1 - models[models.model == chosen].set_index("seed").flops / models[models.model == b].set_index("seed").flops
          for b in pairs}
pd.DataFrame({b: {"AUC gap": p.mean, "95% CI lo": p.lo, "95% CI hi": p.hi, "FLOPs saving": float(saving[b].mean())}
              for b, p in pairs.items()}).T.round(4)

# %% [markdown]
# ## Per-date choices, their aggregate and the planted ground truth
#
# Each row is one date's search (the first search seed at the picked lambda): the top module of each layer with
# its weight, and the highest interaction order the stack reaches (orders multiply along the residual stack:
# `cross2` then `fm` reaches 3 x 2 = 6). On synthetic data the planted logit holds interactions of order 2 (the
# pairs, strong on early dates) and 3 (the triple, strong on late dates).
#
# In the recorded laptop run at lambda = 0.03 only the first date (strongest pairs) kept a second-order module
# (`fm` in layer 0); every later date, and the aggregate, chose identity in both layers. At lambda = 0 the
# searches kept `cross3` (order 4) in the last layer in all three search seeds: without the cost term the search
# reaches the planted orders, with it the accuracy gain of doing so on a few thousand rows is smaller than the price.

# %%
out = searches[(searches.lam == LAM)].iloc[0].outcome
per_date = dd.per_date_frame(out, shards.names)
if truth_pairs is not None:
    mix = shards.table().set_index("date")[["pair_scale", "triple_scale"]]
    per_date = per_date.join(mix, how="left")
display(per_date)
heat = pd.DataFrame([[p for l in range(CFG.layers) for p in r.probs[f"layer{l}"]] for r in out.per_date]
                    + [[p for l in range(CFG.layers) for p in out.aggregate[f"layer{l}"]]],
                    index=[*shards.names[:-1], f"aggregate ({out.rule})"],
                    columns=[f"L{l} {m}" for l in range(CFG.layers) for m in CFG.modules])
fig, ax = plots.figure(figsize=(min(16, 1 + 0.55 * heat.shape[1]), 1.2 + 0.45 * heat.shape[0]))
sns.heatmap(heat, annot=True, fmt=".2f", cmap="viridis", cbar_kws={"label": "architecture weight (probability)"},
            ax=ax, annot_kws={"fontsize": 7})
ax.set(xlabel="layer and module", ylabel="date", title=f"softmax(alpha) per date and aggregated (lambda = {LAM:g})")
_ = plots.save(fig, "per_date", SLUG)

# %% [markdown]
# ## Distributed search with torchrun: the same answer, and the wall time
#
# The same dates and configuration (picked lambda) launched for real with `torchrun --standalone
# --nproc_per_node W -m companion.nas.dist_search` (gloo on CPU, one thread per rank): rank r searches dates r,
# r + W, ...; every date's softmax(alpha) is gathered on every rank and aggregated in date order, so every rank and
# the in-process loop get the same architecture. The search wall time is rank 0's time from a start barrier to the
# gathered result (process start and data building excluded); the launch wall time is the whole job from here.
#
# Recorded laptop run (6 dates, 3 repeats, on the shared 2-core machine with a load average of 11-12): search wall
# time 39.2 s with one worker and 24.2 s with two, a speed-up of 1.68x (per repeat 1.80x, 2.12x, 1.12x); whole
# launches 58.5 s and 46.6 s. Every rank of every launch ended with the same architecture, equal to the in-process
# search's. The quick run's single repeat measured 0.92x (13.2 s and 14.4 s) on an even busier machine.

# %%
timing = dd.time_workers(SPEC, dd.with_lam(CFG, LAM), seed, P.timing_workers, P.timing_repeats)
matches = bool(len(timing)) and bool(timing.identical.all()) and all(a == out.aggregate for a in timing["aggregate"])
print(f"every rank of every launch agreed: {bool(timing.identical.all()) if len(timing) else 'no launch'}; "
      f"equal to the in-process aggregate: {matches}")
if len(timing):
    wide = timing.pivot(index="repeat", columns="workers", values="search_wall_s")
    w_max = max(P.timing_workers)
    speedups = (wide[min(P.timing_workers)] / wide[w_max]).to_numpy()
    print(f"search wall time, mean over {P.timing_repeats} repeat(s): "
          + ", ".join(f"{w} worker(s) {wide[w].mean():.2f} s" for w in wide.columns)
          + f"; speed-up {np.mean(speedups):.2f}x with {w_max} workers")
    fig, ax = plots.figure(figsize=(6, 3.6))
    sns.barplot(data=timing.melt(id_vars=["workers", "repeat"], value_vars=["search_wall_s", "launch_wall_s"]),
                x="workers", y="value", hue="variable", ax=ax, errorbar="sd")
    ax.set(xlabel="torchrun worker processes", ylabel="wall time (s)", title="Search wall time by worker count")
    _ = plots.save(fig, "timing", SLUG)
timing.drop(columns=["aggregate"])

# %% [markdown]
# ## The same search on MovieLens-100K dates (real drift)
#
# Runs when `movielens_lams` is not empty (laptop preset): MovieLens-100K cut into `n_dates` chronological shards,
# searched and retrained the same way, beside the same two baselines.
#
# Recorded laptop run (6 dates of about 14,300 ratings, Sept 1997 to Mar 1998; test: Mar 29 to Apr 22 1998): lambda = 0
# chose `efc > dot` (20,768 FLOPs) at test AUC 0.7040 +- 0.0048, lambda = 0.01 `identity > identity` (10,368 FLOPs)
# at 0.6916 +- 0.0147; DCNv2 reached 0.7151 +- 0.0046 (18,208 FLOPs) and the DLRM-style model 0.7102 +- 0.0028
# (17,728). On real data with drift the baselines win here, and the cheaper searched model loses AUC.

# %%
ml_front = None
if P.movielens_lams:
    ml_spec = DateSpec("movielens", n_dates=P.n_dates, path=data_path if P.dataset == "movielens" else "")
    ml_shards = ml_spec.build()
    display(ml_shards.table())
    ml_searches, ml_models = dd.lambda_sweep(ml_shards, CFG, P.movielens_lams, SEEDS, search_seeds=1,
                                             epochs=P.retrain_epochs)
    ml_front = ml_models.groupby("model", sort=False).agg(arch=("arch", "first"), flops=("flops", "mean"),
                                                          test_auc=("test_auc", "mean"), test_auc_sd=("test_auc", "std"))
    display(ml_searches[["lam", "arch", "per_date"]])
    display(ml_front.round(4))
else:
    print("skipped (movielens_lams is empty)")

# %% [markdown]
# ## Paper vs. this run
#
# The paper's numbers are from its abstract (the only part that could be read): Criteo Terabyte, against
# "state-of-the-art CTR models" it does not name there. Ours: the scale and data above. Every verdict comes from
# `companion.evidence` with its rule; the AUC margin is declared as data with its source.
#
# Recorded verdicts. Laptop (synthetic; picked lambda 0.03): FLOPs saved at no AUC loss vs DCNv2 *inconclusive*
# (gap +0.0097, 95% CI [-0.0275, +0.0469], 43% fewer FLOPs); vs the DLRM-style model *inconclusive* (gap -0.0065,
# CI [-0.0252, +0.0121], 51% fewer FLOPs); +0.001 AUC over DCNv2 *inconclusive*; the cost term vs lambda = 0
# *inconclusive* (gap -0.0139, CI [-0.0424, +0.0146], 60% fewer FLOPs); speed-up *inconclusive* (1.68x, the
# interval over 3 repeats straddles the 1.5x line). Three seeds with a seed-to-seed spread of 0.005-0.018 AUC cannot
# resolve a 0.001 margin. Quick (a smoke test): partly, partly, reproduced, inconclusive, not reproduced (0.92x).

# %%
paper = pd.DataFrame({"paper (Criteo Terabyte, abstract)": ["+0.001", "-60%", "> 25x (2 days -> 2 hours)"]},
                     index=["AUC vs SOTA", "FLOPs vs SOTA", "search speed-up"])
paper["this run"] = [pairs["DCNv2"].text(4),
                     f"{-100 * float(saving['DCNv2'].mean()):+.1f}% vs DCNv2, {-100 * float(saving['DLRM (dot)'].mean()):+.1f}% vs DLRM-style",
                     f"{np.mean(speedups):.2f}x with {w_max} workers" if len(timing) else "not measured"]
print(f"this run: {P.dataset}, {P.n_dates} dates x {P.rows_per_date} rows, scale {scale}, seeds {SEEDS}, "
      f"picked lambda {LAM:g}")
display(paper)

TH_NO_LOSS = evidence.Threshold(-margin, "at_least", 0.0, unit="AUC",
                                source="equivalence margin = the paper's own reported AUC gain (+0.001, abstract), "
                                       "the smallest AUC difference it presents as meaningful")
TH_SAVING = evidence.Threshold(0.6, "at_least", 0.6, unit="fraction",
                               source="DistDNAS abstract: 60% FLOPs saving; any saving above 0 counts as partly")
W_MAX = max(P.timing_workers) if len(timing) else 2
TH_SPEEDUP = evidence.Threshold(0.75 * W_MAX, "at_least", max(0.0, 0.75 * W_MAX - 1.0), unit="x",
                                source="ours: the paper's 25x comes from searching ~24 Criteo days in parallel, i.e. "
                                       "near-linear in the number of date searches; we ask for 75% parallel "
                                       "efficiency, and anything above 1x for partly")


def no_loss_and_saving(b):
    p = pairs[b]
    s = saving[b].to_numpy()
    return evidence.all_of([evidence.threshold_verdict(p.mean, TH_NO_LOSS, ci=(p.lo, p.hi)),
                            evidence.threshold_verdict(float(s.mean()), TH_SAVING, ci=evidence.interval(s))],
                           rule="AUC gap not below -margin (95% interval) and FLOPs saved")


claims = [
    results.claim("The searched model saves FLOPs at no AUC loss against DCNv2 (abstract: +0.001 AUC, -60% FLOPs)",
                  "+0.001 AUC, 60% FLOPs saving vs SOTA on Criteo Terabyte",
                  f"{pairs['DCNv2'].text()}; FLOPs saving {float(saving['DCNv2'].mean()):.1%}",
                  no_loss_and_saving("DCNv2"),
                  "control: DCNv2 with the same embedding, head MLP, data and seeds; the model is picked by the "
                  "declared validation rule above"),
    results.claim("... and against a DLRM-style dot-product model", "(same claim; DLRM is a named baseline family)",
                  f"{pairs['DLRM (dot)'].text()}; FLOPs saving {float(saving['DLRM (dot)'].mean()):.1%}",
                  no_loss_and_saving("DLRM (dot)"), "control: DOT from the zoo, same embedding, head, data and seeds"),
    results.claim("The searched model is more accurate than the SOTA baseline (+0.001 AUC)", "+0.001 AUC",
                  pairs["DCNv2"].text(), evidence.gap_verdict(pairs["DCNv2"], min_effect=0.001),
                  "control: DCNv2 as above; a real gap below 0.001 is 'partly'"),
    results.claim("The cost-aware loss removes FLOPs without losing AUC (its mechanism)",
                  "implied: the cost loss 'penalizes redundant interaction modules'",
                  f"{pairs['searched, lambda=0'].text()}; FLOPs saving {float(saving['searched, lambda=0'].mean()):.1%}",
                  no_loss_and_saving("searched, lambda=0"),
                  "control: the same search with lambda = 0 (no cost term); a picked lambda of 0 saves nothing"),
    results.claim("Searching the dates in parallel speeds the search up (abstract: > 25x)", "> 25x (2 days -> 2 hours)",
                  (f"{np.mean(speedups):.2f}x with {w_max} vs {min(P.timing_workers)} torchrun workers "
                   f"({P.timing_repeats} repeat(s)); {len(shards.dates)} dates") if len(timing) else "not measured",
                  (evidence.threshold_verdict(float(np.mean(speedups)), TH_SPEEDUP,
                                              ci=evidence.interval(speedups) if len(speedups) > 1 else None)
                   if len(timing) else evidence.not_tested("timing_repeats = 0")),
                  "control: the same dates searched by one process; the machine is shared, so wall times are noisy"),
]
results.print_claims(claims)

# %% [markdown]
# ## What the paper leaves open, and where we differ
#
# Everything inside the method is a reconstruction (the paper's body could not be read; no code exists):
#
# - **Search space.** Our candidates (identity, FC, DLRM dot, FM, DCNv2 cross of 1-3 layers, EFC, attention) follow
#   the notes' reading of "interaction modules of varying orders and types"; the paper's exact list, whether a
#   layer may keep several modules, and its dense/sparse two-stream layout (NASRec-style) are unknown. Here every
#   module maps tokens to tokens with a residual, and one module per layer is kept (top-1).
# - **Relaxation and updates.** Softmax over alpha by default (`relax="gumbel"` with a temperature schedule is
#   available), weights and alphas updated jointly on each batch after a weight-only warm-up of `arch_warmup` of
#   the steps (FBNet-style); `update="alternate"` steps the alphas on a held-out 20% of each date (DARTS-style).
# - **Cost loss.** The linear expected cost `lambda * sum softmax(alpha)_m * FLOPs_m / max FLOPs`, summed over layers;
#   the paper's exact form (linear, log, a target-cost form) and its lambda are unknown. FLOPs count matrix
#   products only (2 per multiply-add), as `companion.cost.flops` does.
# - **Aggregation.** Mean of the per-date softmax(alpha), then top-1 per layer (`aggregate="vote"`: one top-1 vote
#   per date). The paper's rule, and how many dates it used, are unknown.
# - **Baselines.** The paper's "state-of-the-art CTR models" are not named in the abstract. Ours are DCNv2 and a
#   DLRM-style model with the searched models' embedding width and head MLP, so FLOPs differences come from the
#   interaction part only; the shared head bounds how much any search can save (see the FLOPs table above).
# - **Speed-up.** The paper's 25x compares one sequential search over all days with per-day searches in parallel
#   (on many GPUs). Here W torchrun processes on a small, shared CPU machine search the same dates; the ideal is W x.
#   The quick preset's single timing repeat is a smoke test, not evidence.
# - **Scale.** Synthetic dates of a few thousand rows and MovieLens-100K instead of 1 TB of Criteo logs; the quick
#   preset's searches see a few dozen steps per date, so its numbers say little about the paper. The `paper`
#   preset runs Criteo Terabyte's day files through the same code (`dataset="criteo_tb"`, `data_path` = the folder
#   with `day_0` ... `day_23`, one torchrun process per date), but a day file is read into memory whole, which a
#   full 1 TB run would need a streaming loader for.

# %%
headline = {"picked_lambda": LAM, "picked_arch": front.loc[chosen, "arch"],
            "searched_test_auc": float(front.loc[chosen, "test_auc"]),
            "dcnv2_test_auc": float(front.loc["DCNv2", "test_auc"]),
            "dlrm_test_auc": float(front.loc["DLRM (dot)", "test_auc"]),
            "searched_flops": float(front.loc[chosen, "flops"]), "dcnv2_flops": float(front.loc["DCNv2", "flops"]),
            "torchrun_matches_inprocess": matches}
results.save(SLUG, params=vars(P) | {"seed": seed, "relax": relax, "aggregate": aggregate, "update": update,
                                     "margin": margin, "seeds": SEEDS, "search": CFG.to_dict()},
             metrics={"models": models.to_dict("records"),
                      "searches": searches.drop(columns=["outcome"]).to_dict("records"),
                      "per_date": per_date.reset_index().to_dict("records"),
                      "paired": {b: p.to_dict() for b, p in pairs.items()},
                      "timing": timing.drop(columns=["aggregate"]).to_dict("records"),
                      "movielens": ml_front.reset_index().to_dict("records") if ml_front is not None else None},
             claims=claims, headline=headline)
