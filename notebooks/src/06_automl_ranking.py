# %% [markdown]
# # AutoML for large-capacity ranking models: a predictor + RL searcher in about 100 trials
#
# Yin, Liu, Sun, Chen, Zhang, Liu, Sehgal, Panchal, Hotaj, Liu, Guo, Zhang, Wang, Jiang, Li, Chen, Chen, Yang, Wen,
# *AutoML for Large Capacity Modeling of Meta's Ranking Systems*, WWW'24 Companion,
# [arXiv:2311.07870](https://arxiv.org/abs/2311.07870).
#
# Production timelines give an AutoML search about a hundred model trainings to beat what engineers tuned by hand.
# The paper's answer is sampling-based search over architecture and hyper-parameters with three ingredients:
# cheap **low-fidelity trials** (part of the data) whose label is corrected by the **trend of the training curve**;
# a **predictor** (an ensemble of small MLPs with a pairwise ranking loss) fitted on the trials so far; and a
# **REINFORCE** policy trained against the predictor, whose best draws become the next trials. Only the abstract
# is primary; the method details come from secondary reading notes (see the last section). This notebook tests each
# ingredient on data someone else measured, and the whole loop on real CTR training:
#
# 1. **The low-fidelity label** on LCDB's real learning curves (248 datasets x 20 learners): how well the ranking of
#    learners at a small training size predicts the ranking at the largest, raw and trend-corrected.
# 2. **The predictor** on NAS-Bench-Graph (26,206 measured GNN architectures): held-out Kendall tau of one MLP vs the
#    ensemble, and of the ranking loss vs MSE, paired over seeds.
# 3. **Sample efficiency** on NAS-Bench-Graph: best architecture found vs trials for random search, evolution, TPE
#    and predictor + REINFORCE, over seeds, on several datasets.
# 4. **The paper's setting**: a DHEN-like stacked-interaction space plus the learning rate, low-fidelity trials on
#    MovieLens sequential CTR and on synthetic data with planted interactions, under a FLOPs limit equal to the
#    hand-tuned baseline's (NE gain at equal FLOPs, the paper's ROI framing), against random search and TPE.

# %% tags=["parameters"]
scale = "quick"  # quick|laptop|paper: preset for every knob left at None
seed = 0  # int: base seed (repeats use seed, seed+1, ...)
lcdb_ratios = None  # list: small training sizes as a_L / ratio with a_L the largest size; the paper's long/short horizon is ~25B/11B, about 2.3 (None: preset)
lcdb_window = None  # int≥1≤10: anchors of the curve tail the trend line is fitted to (None: preset)
lcdb_min_learners = None  # int≥3≤20: learners a dataset needs at both sizes to count (None: preset)
pred_seeds = None  # int≥1≤1000: train/held-out splits for the predictor comparison (None: preset)
pred_train = None  # int≥10≤20000: architectures a predictor is fitted on (paper: ~160 configs) (None: preset)
pred_test = None  # int≥10≤20000: held-out architectures tau is measured on (paper: ~30) (None: preset)
pred_members = None  # int≥2≤100: MLPs in the ensemble (paper: ~10) (None: preset)
pred_epochs = None  # int≥1≤10000: training epochs of each MLP (None: preset)
nb_datasets = None  # list: NAS-Bench-Graph datasets searched, from cora, citeseer, pubmed, cs, physics, photo, computers, arxiv, proteins (None: preset)
nb_seeds = None  # int≥1≤1000: search repeats per searcher and dataset (None: preset)
nb_trials = None  # int≥10≤100000: trials per search (paper: ~100) (None: preset)
search_members = None  # int≥1≤100: MLPs in the searcher's predictor ensemble (None: preset)
search_epochs = None  # int≥1≤10000: epochs each time the searcher refits its predictor (None: preset)
search_warmup = None  # int≥2≤10000: random trials before the predictor takes over (None: preset)
search_batch = None  # int≥1≤1000: trials proposed per predictor refit (None: preset)
inner_steps = None  # int≥0≤100000: REINFORCE draws against the predictor per refit (paper: ~2000) (None: preset)
ctr_datasets = None  # list: CTR data for the paper's setting, from synthetic, movielens (None: preset)
ctr_seeds = None  # int≥1≤1000: search repeats per searcher on the CTR task (None: preset)
ctr_trials = None  # int≥4≤10000: low-fidelity trials per CTR search (paper: ~100) (None: preset)
ctr_warmup = None  # int≥2≤1000: random CTR trials before the predictor takes over (None: preset)
ctr_batch = None  # int≥1≤100: CTR trials proposed per predictor refit (None: preset)
ctr_train_rows = None  # int≥500≤100000000: training rows kept (MovieLens is subsampled; synthetic generates train/0.8 rows) (None: preset)
ctr_eval_rows = None  # int≥100≤100000000: validation and test rows kept (None: preset)
ctr_fraction = None  # float>0≤10: epochs of training in one low-fidelity trial (None: preset)
ctr_checkpoints = None  # int≥1≤100: points of the trial's validation-NE curve (None: preset)
pilot_cands = None  # int≥0≤1000: random candidates trained to one epoch to measure the low-fidelity tau on CTR (0: skip) (None: preset)
ctr_label = "trend"  # trend|raw: what a CTR search minimises: the trend-corrected NE (the paper's Eq. 2 idea) or the raw NE at the end of the trial
trend_window = 2  # int≥2≤100: last checkpoints of a CTR trial's curve the trend line is fitted to (2: the slope of the last segment)
batch_size = 256  # int≥16≤100000: CTR training batch size
flops_ratio = 1.0  # float>0≤100: FLOPs limit as a multiple of the hand-tuned baseline's FLOPs (1.0: NE gain at equal FLOPs)
threads = 1  # int≥1≤256: torch CPU threads (these small models run fastest on one)

# %%
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
import torch

import companion
from companion import evidence, plots, results
from companion.data.lcdb import load_lcdb_curves
from companion.data.nasbench_graph import load_nasbench_graph
from companion.nas import automl, benchmarks, lowfi
from companion.nas.ranking import EnsembleConfig, MLPEnsemble
from companion.nas.searchers import PredictorSearch, RandomSearch, RegularizedEvolution, TPESearch
from companion.nas.trials import compare_searchers
from companion.runtime import seed_everything

SLUG = "automl_ranking"
PRESETS = {
    "quick": dict(lcdb_ratios=[2, 8], lcdb_window=3, lcdb_min_learners=10, pred_seeds=3, pred_train=160,
                  pred_test=300, pred_members=3, pred_epochs=40, nb_datasets=["cora"], nb_seeds=3, nb_trials=30,
                  search_members=3, search_epochs=20, search_warmup=10, search_batch=10, inner_steps=300,
                  ctr_datasets=["synthetic"], ctr_seeds=1, ctr_trials=6, ctr_warmup=3, ctr_batch=2,
                  ctr_train_rows=3000, ctr_eval_rows=500, ctr_fraction=0.5, ctr_checkpoints=4, pilot_cands=0),
    "laptop": dict(lcdb_ratios=[2, 4, 8, 32], lcdb_window=3, lcdb_min_learners=10, pred_seeds=5, pred_train=160,
                   pred_test=1000, pred_members=10, pred_epochs=100, nb_datasets=["cora", "arxiv"], nb_seeds=10,
                   nb_trials=100, search_members=5, search_epochs=50, search_warmup=20, search_batch=20,
                   inner_steps=1000, ctr_datasets=["synthetic", "movielens"], ctr_seeds=3, ctr_trials=30,
                   ctr_warmup=10, ctr_batch=5, ctr_train_rows=12000, ctr_eval_rows=2000, ctr_fraction=0.5,
                   ctr_checkpoints=4, pilot_cands=6),
    "paper": dict(lcdb_ratios=[2, 4, 8, 32], lcdb_window=3, lcdb_min_learners=10, pred_seeds=10, pred_train=160,
                  pred_test=30, pred_members=10, pred_epochs=200, nb_datasets=["cora", "citeseer", "pubmed", "arxiv"],
                  nb_seeds=20, nb_trials=100, search_members=10, search_epochs=200, search_warmup=20,
                  search_batch=10, inner_steps=2000, ctr_datasets=["synthetic", "movielens"], ctr_seeds=5,
                  ctr_trials=100, ctr_warmup=20, ctr_batch=10, ctr_train_rows=80000, ctr_eval_rows=10000,
                  ctr_fraction=0.5, ctr_checkpoints=5, pilot_cands=30),
}
P = companion.params.resolve(PRESETS, scale, globals())
torch.set_num_threads(threads)
seed_everything(seed)

# %% [markdown]
# ## 1. The low-fidelity label on real learning curves (LCDB)
#
# The paper trains each trial on part of the data and picks that fraction with a pilot study: the Kendall tau
# between short- and long-horizon NE of a few models. It then replaces the raw short-horizon NE by a
# trend-corrected one ("Eq. 2": a line through the tail of the training curve, extrapolated to the long horizon),
# reported to lift that tau from about 0.77 to about 0.87 (secondary source). LCDB gives the same question on real
# curves: per OpenML dataset, rank the 20 learners by validation log loss at a small training size `a_s` and compare
# with their ranking at the largest size `a_L` reached by at least `lcdb_min_learners` of them. The trend line is
# fitted to the last `lcdb_window` anchors up to `a_s`, against log2(size) ("log") or the size itself ("linear",
# the literal examples-seen form of Eq. 2).

# %%
curves = load_lcdb_curves()
print(f"LCDB: {curves.openmlid.nunique()} datasets, {curves.learner.nunique()} learners, {len(curves)} mean-curve points")
tau_rows = []
for r in P.lcdb_ratios:
    for form in ("log", "linear"):
        t = lowfi.lowfi_taus(curves, small_ratio=r, window=P.lcdb_window, min_learners=P.lcdb_min_learners, x=form)
        tau_rows.append(t.assign(ratio=r, form=form))
taus = pd.concat(tau_rows, ignore_index=True)
long_taus = pd.concat([taus[taus.form == "log"].assign(label="raw", tau=lambda d: d.tau_raw)] +
                      [taus.assign(label=lambda d: "trend (" + d.form + ")", tau=lambda d: d.tau_trend)])
tau_table = long_taus.groupby(["ratio", "label"]).tau.agg(["median", "mean", "count"]).unstack("label")
tau_table.round(3)

# %% [markdown]
# ## 2. The predictor: one MLP vs the ensemble, ranking loss vs MSE (NAS-Bench-Graph)
#
# Fitted on `pred_train` random architectures of Cora's table (validation accuracy as the label, one-hot decision
# vectors as input, hidden layers [50, 50] as the reading note gives), scored by Kendall tau on `pred_test` others.
# Each seed draws one split that every variant shares, so the comparisons are paired.

# %%
bench_cora = load_nasbench_graph("cora")
VARIANTS = {
    "one MLP, ranking loss": EnsembleConfig(members=1, hidden=(50, 50), loss="margin", epochs=P.pred_epochs, bootstrap=False, batch_size=256),
    "ensemble, ranking loss": EnsembleConfig(members=P.pred_members, hidden=(50, 50), loss="margin", epochs=P.pred_epochs, batch_size=256),
    "one MLP, MSE": EnsembleConfig(members=1, hidden=(50, 50), loss="mse", epochs=P.pred_epochs, bootstrap=False, batch_size=256),
    "ensemble, MSE": EnsembleConfig(members=P.pred_members, hidden=(50, 50), loss="mse", epochs=P.pred_epochs, batch_size=256),
}
PRED_SEEDS = [seed + i for i in range(P.pred_seeds)]
pred = pd.DataFrame([{"variant": name, "seed": s,
                      "tau": benchmarks.predictor_tau(bench_cora, P.pred_train, P.pred_test, cfg, seed=s)}
                     for name, cfg in VARIANTS.items() for s in PRED_SEEDS])
pred.groupby("variant", sort=False).tau.agg(["mean", "std", "count"]).round(3)

# %% [markdown]
# ## 3. Sample efficiency on NAS-Bench-Graph
#
# Every searcher asks for architectures through the same protocol; a trial looks up the measured validation
# accuracy (what a searcher may see). The curve reports the **test** accuracy of the architecture with the best
# validation accuracy so far, the way a search hands over its result. Predictor + REINFORCE is the core's
# `PredictorSearch`: after `search_warmup` random trials it refits an `MLPEnsemble` (ranking loss) on all trials,
# trains a REINFORCE policy for `inner_steps` draws against the predicted mean + 0.5 x spread, and proposes the
# `search_batch` best unseen draws.

# %%
def nb_makers(space):
    cfg = EnsembleConfig(members=P.search_members, hidden=(50, 50), epochs=P.search_epochs, batch_size=256)
    return {
        "random": lambda s: RandomSearch(space, s),
        "evolution": lambda s: RegularizedEvolution(space, s, population_size=20, sample_size=5, n_children=1),
        "TPE": lambda s: TPESearch(space, s),
        "predictor + RL": lambda s: PredictorSearch(space, lambda card, sd: MLPEnsemble(card, cfg, sd), s,
                                                    warmup=P.search_warmup, batch=P.search_batch,
                                                    inner_steps=P.inner_steps),
    }


NB_SEEDS = [seed + i for i in range(P.nb_seeds)]
nb_curves, nb_tables = [], {}
for name in P.nb_datasets:
    bench = load_nasbench_graph(name)
    space = benchmarks.nasbench_graph_space(bench)
    with tempfile.TemporaryDirectory() as store:
        compare_searchers(space, nb_makers(space), benchmarks.nasbench_graph_objective(bench), metric="valid",
                          direction="max", max_trials=P.nb_trials, seeds=NB_SEEDS, store_dir=store, progress=False)
        nb_curves.append(benchmarks.incumbent_curves(store, bench).assign(dataset=name))
    nb_tables[name] = {"best_test_pct": 100 * bench.frame.test.max(),
                       "test_of_best_valid_pct": 100 * bench.frame.loc[bench.frame.valid.idxmax(), "test"],
                       "random_pick_median_pct": 100 * bench.frame.test.median()}
nb = pd.concat(nb_curves, ignore_index=True).assign(test_pct=lambda d: 100 * d.incumbent)
nb_final = nb[nb.trial == P.nb_trials]
print(pd.DataFrame(nb_tables).T.round(2))
nb_final.groupby(["dataset", "searcher"]).test_pct.agg(["mean", "std", "count"]).round(2)

# %% [markdown]
# ## 4. The paper's setting: DHEN-like space + learning rate, low-fidelity CTR trials, a FLOPs limit
#
# Decisions: number of DHEN layers (1-3), the interaction modules in each layer (DOT, DCN or both), the DCN rank,
# the MLP widths, the embedding width and the learning rate (648 candidates), built with the zoo's `DHEN`. A trial
# trains `ctr_fraction` of an epoch with the shared trainer, reads the validation NE at `ctr_checkpoints` points and
# returns the Eq. 2-style label: the NE extrapolated along the line through the last `trend_window` points (the
# slope of the last segment, as the reading notes describe) to one epoch of examples. FLOPs
# per example are counted analytically before training; the limit is `flops_ratio` x the hand-tuned baseline's,
# so every gain is at equal (or lower) FLOPs. Each candidate trains with one fixed seed, and a candidate proposed
# twice is trained once, so all searchers see one table of results. Afterwards the incumbent of every search and
# the baseline are trained for a full epoch on all their rows and scored on the test split.

# %%
def ctr_splits(name):
    if name == "synthetic":
        from companion.data.synthetic import make_synthetic_ctr
        n = int(P.ctr_train_rows / 0.8)
        sp = make_synthetic_ctr(n_samples=n, seed=seed)
        return automl.subsample(sp, None, P.ctr_eval_rows, P.ctr_eval_rows, seed=seed)
    from companion.data.movielens_seq import load_movielens_seq
    return automl.subsample(load_movielens_seq(), P.ctr_train_rows, P.ctr_eval_rows, P.ctr_eval_rows, seed=seed)


CTR_SEEDS = [seed + i for i in range(P.ctr_seeds)]
LABEL = {"trend": "ne", "raw": "ne_raw"}[ctr_label]
dspace = automl.dhen_space()
ctr_curves, ctr_full, ctr_info, pilots = [], [], {}, {}
for name in P.ctr_datasets:
    splits = ctr_splits(name)
    base_flops = automl.candidate_flops(automl.HAND_TUNED, splits)
    limit = automl.flops_constraint(splits, flops_ratio * base_flops)
    obj = automl.LowFiObjective(splits, fraction=P.ctr_fraction, checkpoints=P.ctr_checkpoints, window=trend_window,
                                batch_size=batch_size, constraints=[limit], train_seed=seed)
    base = obj(automl.HAND_TUNED)
    cfg = EnsembleConfig(members=P.search_members, hidden=(50, 50), epochs=P.search_epochs, batch_size=256)
    makers = {"random": lambda s: RandomSearch(dspace, s, constraints=[limit]),
              "TPE": lambda s: TPESearch(dspace, s, constraints=[limit], n_startup=P.ctr_warmup),
              "predictor + RL": lambda s: PredictorSearch(dspace, lambda card, sd: MLPEnsemble(card, cfg, sd), s,
                                                          constraints=[limit], warmup=P.ctr_warmup,
                                                          batch=P.ctr_batch, inner_steps=P.inner_steps)}
    with tempfile.TemporaryDirectory() as store:
        df = compare_searchers(dspace, makers, obj, metric=LABEL, direction="min", max_trials=P.ctr_trials,
                               seeds=CTR_SEEDS, store_dir=store, progress=False)
        inc = automl.best_candidates(store, LABEL, "min")
    ctr_curves.append(df.assign(dataset=name, gain_pct=automl.ne_gain_pct(base[LABEL], df.best)))
    full_base = automl.full_fidelity(automl.HAND_TUNED, splits, seed=seed, batch_size=batch_size)
    for (searcher, s), rec in inc.items():
        full = automl.full_fidelity(rec["cand"], splits, seed=seed, batch_size=batch_size)
        ctr_full.append({"dataset": name, "searcher": searcher, "seed": s, "trial_found": rec["trial"],
                         "lowfi_gain_pct": float(automl.ne_gain_pct(base[LABEL], rec["value"])),
                         "full_gain_pct": float(automl.ne_gain_pct(full_base["test_ne"], full["test_ne"])),
                         "flops_ratio": limit.value(rec["cand"]) / base_flops, "cand": rec["cand"]})
    if P.pilot_cands:
        rng = np.random.default_rng(seed)
        cands = [dspace.sample_uniform(rng) for _ in range(P.pilot_cands)]
        cands = [c for c in cands if limit.ok(c)]
        pilots[name] = automl.pilot_taus(obj, cands, seed=seed, long_fraction=1.0, checkpoints=2 * P.ctr_checkpoints)
    ctr_info[name] = {"rows": splits.summary(), "baseline_flops": base_flops, "baseline_lowfi_ne": base["ne"],
                      "baseline_full_test_ne": full_base["test_ne"], "trainings": obj.evaluations}
ctr = pd.concat(ctr_curves, ignore_index=True)
ctr_full = pd.DataFrame(ctr_full)
print(pd.DataFrame(ctr_info).T[["baseline_flops", "baseline_lowfi_ne", "baseline_full_test_ne", "trainings"]])
ctr_full.groupby(["dataset", "searcher"])[["lowfi_gain_pct", "full_gain_pct", "flops_ratio", "trial_found"]].mean().round(3)

# %% [markdown]
# ## Figures

# %%
fig, ax = plots.figure(figsize=(9, 4))
sns.boxplot(data=long_taus, x="ratio", y="tau", hue="label", ax=ax)
ax.set(xlabel="largest training size / small training size (ratio, no unit)",
       ylabel="Kendall tau vs ranking at the largest size (no unit)",
       title="LCDB: low-fidelity ranking of 20 learners, one point per dataset")
plots.save(fig, "lcdb_tau", SLUG)

# %%
fig, ax = plots.figure(figsize=(8, 3.5))
sns.stripplot(data=pred, y="variant", x="tau", ax=ax, size=6)
sns.pointplot(data=pred, y="variant", x="tau", ax=ax, color="black", linestyle="none", errorbar=("ci", 95), markers="d")
ax.set(xlabel="held-out Kendall tau on Cora (no unit)", ylabel="",
       title=f"Predictors fitted on {P.pred_train} architectures, {P.pred_seeds} splits")
plots.save(fig, "predictor_tau", SLUG)

# %%
fig, axes = plots.figure(1, len(P.nb_datasets), figsize=(5 * len(P.nb_datasets), 4), squeeze=False)
for ax, name in zip(axes[0], P.nb_datasets):
    sns.lineplot(data=nb[nb.dataset == name], x="trial", y="test_pct", hue="searcher", errorbar=("ci", 95), ax=ax)
    ax.axhline(nb_tables[name]["test_of_best_valid_pct"], color="grey", ls=":", label="table's best-by-validation")
    ax.set(xlabel="trials (architectures looked up)", ylabel="test accuracy of the incumbent (%)",
           title=f"NAS-Bench-Graph {name}, {P.nb_seeds} seeds, 95% CI")
    ax.legend(fontsize=8)
plots.save(fig, "nasbench_best_so_far", SLUG)

# %%
fig, axes = plots.figure(1, len(P.ctr_datasets), figsize=(5 * len(P.ctr_datasets), 4), squeeze=False)
for ax, name in zip(axes[0], P.ctr_datasets):
    sns.lineplot(data=ctr[ctr.dataset == name], x="trial", y="gain_pct", hue="searcher", errorbar=("ci", 95), ax=ax)
    ax.axhline(0, color="grey", ls=":")
    ax.set(xlabel="low-fidelity trials", ylabel="NE gain over the hand-tuned DHEN (%, low-fidelity label)",
           title=f"{name}: FLOPs <= {flops_ratio:g} x baseline, {P.ctr_seeds} seed(s)")
plots.save(fig, "ctr_ne_gain", SLUG)

# %%
fig, ax = plots.figure(figsize=(6, 4))
sns.scatterplot(data=ctr_full, x="flops_ratio", y="full_gain_pct", hue="searcher", style="dataset", s=70, ax=ax)
ax.axhline(0, color="grey", ls=":")
ax.set(xlabel="FLOPs per example / baseline's (ratio, no unit)", ylabel="test NE gain after one full epoch (%)",
       title="ROI: incumbents of every search vs the hand-tuned baseline")
plots.save(fig, "ctr_roi", SLUG)

# %% [markdown]
# ## Paper vs. this run
#
# The paper's numbers come from its abstract (primary) and from reading notes (secondary, marked [S]). Its
# searches ran on Meta's production models and data; ours on public tables and small CTR tasks, so the
# comparisons are of direction and mechanism, not of magnitude.

# %%
ratio_near = min(P.lcdb_ratios, key=lambda r: abs(r - 25 / 11))
at = taus[taus.ratio == ratio_near]
lf = {form: evidence.paired(dict(zip(g.openmlid, g.tau_trend)), dict(zip(g.openmlid, g.tau_raw)),
                            metric="Kendall tau", names=(f"trend-corrected ({form})", "raw"))
      for form, g in at.groupby("form")}
pv = pred.pivot(index="seed", columns="variant", values="tau")
p_ens = evidence.paired(pv["ensemble, ranking loss"].to_dict(), pv["one MLP, ranking loss"].to_dict(),
                        metric="held-out Kendall tau", names=("ensemble", "one MLP"))
p_rank = evidence.paired(pv["ensemble, ranking loss"].to_dict(), pv["ensemble, MSE"].to_dict(),
                         metric="held-out Kendall tau", names=("ranking loss", "MSE"))


def nb_pair(name, other):
    f = nb_final[nb_final.dataset == name].pivot(index="seed", columns="searcher", values="test_pct")
    return evidence.paired(f["predictor + RL"].to_dict(), f[other].to_dict(), metric=f"{name} test accuracy (%)",
                           names=("predictor + RL", other))


def ctr_pair(name, other):
    """Paired over seeds on the incumbents' test-NE gain after a full epoch (the low-fidelity label picked them)."""
    f = ctr_full[ctr_full.dataset == name].pivot(index="seed", columns="searcher", values="full_gain_pct")
    return evidence.paired(f["predictor + RL"].to_dict(), f[other].to_dict(), metric=f"{name} full-epoch NE gain (%)",
                           names=("predictor + RL", other))


def ctr_lowfi_pair(name, other):
    f = ctr[(ctr.dataset == name) & (ctr.trial == P.ctr_trials)].pivot(index="seed", columns="searcher", values="best")
    return evidence.paired(f["predictor + RL"].to_dict(), f[other].to_dict(), metric=f"{name} low-fidelity NE",
                           higher_is_better=False, names=("predictor + RL", other))


nb_pairs = {(d, o): nb_pair(d, o) for d in P.nb_datasets for o in ("random", "TPE")}
ctr_pairs = {(d, o): ctr_pair(d, o) for d in P.ctr_datasets for o in ("random", "TPE")}
ctr_lowfi = {(d, o): ctr_lowfi_pair(d, o) for d in P.ctr_datasets for o in ("random", "TPE")}
pr_full = ctr_full[ctr_full.searcher == "predictor + RL"].full_gain_pct.to_numpy()
pr_full_ci = evidence.interval(pr_full)
TH_NE = evidence.Threshold(0.09, "at_least", 0.09, unit="%", source="abstract: up to 0.09% NE reduction vs human "
                           "baselines at ~100 trials; 'partly' = a gain between 0 and 0.09%")
pilot_text = "; ".join(f"{k}: raw {v['tau_raw']:.2f} -> trend {v['tau_trend']:.2f} ({len(v['rows'])} candidates)"
                       for k, v in pilots.items()) or "not run at this scale"
claims = [
    results.claim("Eq. 2's curve-trend correction makes the low-fidelity ranking agree better with the long one",
                  "Kendall tau ~0.77 -> ~0.87 [S]",
                  f"LCDB, a_L/a_s ~ {ratio_near}: log form {lf['log'].text(3)}; linear form {lf['linear'].text(3)} "
                  f"(over {lf['log'].n} datasets); CTR pilot (one epoch as the long horizon): {pilot_text}",
                  evidence.all_of([evidence.gap_verdict(lf["log"], min_effect=0.05),
                                   evidence.gap_verdict(lf["linear"], min_effect=0.05)],
                                  rule="both forms of the correction, paired over LCDB datasets"),
                  note="control: the raw low-fidelity score of the same learners at the same size"),
    results.claim("An ensemble of predictors ranks held-out configs much better than one predictor",
                  "tau 0.38 (one) vs 0.87 (ensemble of ~10), ~160 training configs [S]",
                  f"NAS-Bench-Graph Cora, {P.pred_train} training architectures: {p_ens.text(3)}",
                  evidence.gap_verdict(p_ens, min_effect=0.1),
                  note="control: one MLP of the same shape, same split, same loss; min effect 0.1 is ours (a fifth "
                       "of the paper's gap)"),
    results.claim("A pairwise ranking loss trains a better-ranking predictor than MSE", "chosen over MSE [S]",
                  f"ensembles on Cora: {p_rank.text(3)}", evidence.gap_verdict(p_rank),
                  note="control: the same ensemble trained with MSE on the same split"),
    results.claim("Predictor + RL finds better architectures than random search at equal trials",
                  "CVR task, 150 trials: -0.093% NE vs random -0.064% [S]",
                  "; ".join(nb_pairs[(d, "random")].text(2) for d in P.nb_datasets) + f" at {P.nb_trials} trials; "
                  "CTR: " + "; ".join(f"{ctr_pairs[(d, 'random')].text(3)} (search label: {ctr_lowfi[(d, 'random')].text(4)})"
                                      for d in P.ctr_datasets),
                  evidence.all_of([evidence.gap_verdict(nb_pairs[(d, "random")]) for d in P.nb_datasets] +
                                  [evidence.gap_verdict(ctr_pairs[(d, "random")]) for d in P.ctr_datasets],
                                  rule="every NAS-Bench-Graph dataset and every CTR task"),
                  note="control: random search on the same space, seeds, budget and FLOPs limit; NAS-Bench-Graph "
                       "on the incumbent's test accuracy, CTR on its test NE after a full epoch"),
    results.claim("Predictor + RL beats Bayesian optimisation at equal trials",
                  "150 trials: -0.093% NE vs BO -0.082% [S]",
                  "; ".join(nb_pairs[(d, "TPE")].text(2) for d in P.nb_datasets) + "; CTR: " +
                  "; ".join(f"{ctr_pairs[(d, 'TPE')].text(3)} (search label: {ctr_lowfi[(d, 'TPE')].text(4)})"
                            for d in P.ctr_datasets),
                  evidence.all_of([evidence.gap_verdict(nb_pairs[(d, "TPE")]) for d in P.nb_datasets] +
                                  [evidence.gap_verdict(ctr_pairs[(d, "TPE")]) for d in P.ctr_datasets],
                                  rule="every NAS-Bench-Graph dataset and every CTR task"),
                  note="control: Optuna's multivariate TPE on the same decisions (the paper's BO is unspecified)"),
    results.claim("Within ~100 trials the search beats the hand-tuned model at equal FLOPs",
                  "up to 0.09% NE reduction, ~100 trials (abstract)",
                  f"predictor + RL incumbents after {P.ctr_trials} trials, test NE after a full epoch: "
                  f"{np.mean(pr_full):+.3f}% (95% CI {pr_full_ci[0]:+.3f} to {pr_full_ci[1]:+.3f}, "
                  f"{len(pr_full)} searches over {', '.join(P.ctr_datasets)}), FLOPs <= {flops_ratio:g} x baseline",
                  evidence.threshold_verdict(float(np.mean(pr_full)), TH_NE, ci=pr_full_ci),
                  note="control: the zoo's DHEN defaults with lr 1e-3 (our 'hand-tuned' model, not Meta's), "
                       "trained the same way"),
    results.claim("Or, at equal NE, +25% QPS", "+25% QPS (abstract)", "FLOPs only; QPS was not measured",
                  evidence.not_tested("we count FLOPs per example, not serving throughput; the FLOPs ratio of each "
                                      "incumbent is in the ROI figure")),
]
pd.DataFrame(claims)[["claim", "paper", "ours", "verdict"]]

# %% [markdown]
# **Recorded runs** (seed 0, this machine shared with other jobs; numbers from `results.json`).
#
# - *quick* (`companion run automl_ranking`, 105-170 s wall on the loaded machine, about 35 s of CPU): a smoke
#   test. LCDB at a_L/a_s = 2: median tau 0.897 raw vs 0.848 with the log trend; Cora predictors 0.323 (one MLP)
#   vs 0.366 (ensemble of 3), ranking loss over MSE reproduced on 3 splits; the Cora searches and the one-seed CTR
#   search are inconclusive.
# - *laptop* (`companion run automl_ranking --scale laptop`, 23 min wall under load, 8.3 min of CPU):
#   - *Low-fidelity label*: the correction lowers tau on LCDB at every ratio (at a_L/a_s = 2, median 0.897 raw,
#     0.848 log trend, 0.731 linear trend; paired gap -0.063 [-0.078, -0.048] and -0.192 over 237 datasets): not
#     reproduced. The CTR pilot agrees (6 candidates to one epoch: tau 0.33 -> -0.20 on synthetic, 1.00 -> 0.73 on
#     MovieLens).
#   - *Predictor*: one MLP 0.339, ensemble of 10 0.377 (gap +0.038 [+0.022, +0.054], 5/5 splits): the direction
#     holds but far from 0.38 -> 0.87 (partly). Ranking loss over MSE: +0.053 [-0.010, +0.117], inconclusive.
#   - *Sample efficiency at 100 trials, 10 seeds*: Cora incumbents 79.86% (predictor + RL), 79.94% (random), 80.45%
#     (TPE), 79.97% (evolution); arxiv 72.02%, 72.02%, 71.97%, 72.09%. No searcher separates from random.
#   - *CTR, 30 trials, 3 seeds, FLOPs <= baseline*: the trend label rewards steep last segments, so the label's
#     "gains" exceed 100% (an extrapolated NE below zero); retrained for a full epoch the predictor + RL incumbents
#     are 3.5% worse than the hand-tuned DHEN on average (95% CI -8.3% to +1.3%), and no searcher pair separates.
#     With `ctr_label="raw"` (same preset, 10.4 min of notebook wall on a quieter machine) the label's gains are
#     1-7% and the predictor + RL incumbents retrained for an epoch gain +0.50% NE (95% CI -0.39% to +1.38%, 6
#     searches) at 21-52% of the baseline's FLOPs across searchers: inconclusive, and still no pair of searchers
#     separates.

# %% [markdown]
# ## What the paper leaves open / where we differ
#
# - *Sources*: only the abstract is primary. The low-fidelity study, Eq. 2, the predictor shape ([in, 50, 50, 2]),
#   the ~10-member ensemble with a margin ranking loss, REINFORCE for ~2,000 steps, and the 150-trial comparison
#   come from two reading notes ([S]); the formulas are our reconstruction. No official code exists.
# - *Eq. 2*: we fit a least-squares line to the last `lcdb_window` (LCDB) or `trend_window` (CTR) points of the
#   curve and extrapolate to the long horizon; nothing bounds the extrapolated NE (a steep last segment can push it
#   far below the raw value), so the CTR verdicts are taken on the incumbents retrained for a full epoch. On LCDB each anchor is a separate training on more
#   data, not a point along one run; we show both a log-size and the literal linear form.
# - *Predictor*: two tasks in the paper (NE and FLOPs); FLOPs here are counted exactly, so the searcher's predictor
#   has the quality head only and FLOPs enter as a hard constraint checked before training (the paper's ROI
#   constraint, "Eq. 6", is not known in detail). The UCB bonus (mean + 0.5 x spread) is the core's choice.
# - *Space*: the zoo's DHEN layer offers DOT and DCN modules; the paper's space also lists self-attention, linear
#   and convolution modules, and init scale and layer norm as hyper-parameters. 648 candidates here.
# - *Low fidelity*: each curve segment is its own `train.fit` call, so Adam's moments restart at every checkpoint;
#   the paper trains on ~11B of 25B examples, we on `ctr_fraction` of an epoch of a few thousand rows.
# - *NAS-Bench-Graph*: decision vectors the benchmark merged as isomorphic are mapped to a table member (sibling
#   ops sorted, else the nearest member by Hamming distance); its skip-op canonicalisation is not reimplemented.
#   Accuracy stands in for NE and there is no FLOPs limit there.
# - *Scale*: the quick preset is a smoke test (one CTR seed, a handful of trials); its CTR verdicts are
#   inconclusive by construction.

# %%
headline = {"lcdb_tau_raw": float(at[at.form == "log"].tau_raw.median()),
            "lcdb_tau_trend_log": float(at[at.form == "log"].tau_trend.median()),
            "tau_one_mlp": float(pv["one MLP, ranking loss"].mean()),
            "tau_ensemble": float(pv["ensemble, ranking loss"].mean()),
            **{f"nb_{d}_{s.replace(' + ', '_').lower()}_pct": float(nb_final[(nb_final.dataset == d) &
                                                                             (nb_final.searcher == s)].test_pct.mean())
               for d in P.nb_datasets for s in ("random", "predictor + RL")},
            "ctr_pred_full_gain_pct": float(np.mean(pr_full))}
results.save(SLUG, params=vars(P) | {"seed": seed, "batch_size": batch_size, "flops_ratio": flops_ratio,
                                     "trend_window": trend_window, "ctr_label": ctr_label},
             metrics={"lcdb_taus": taus.to_dict("records"), "predictor": pred.to_dict("records"),
                      "nasbench_final": nb_final.to_dict("records"), "nasbench_tables": nb_tables,
                      "ctr_final": ctr[ctr.trial == P.ctr_trials].to_dict("records"),
                      "ctr_full": ctr_full.to_dict("records"), "ctr_info": ctr_info,
                      "pilots": {k: {"tau_raw": v["tau_raw"], "tau_trend": v["tau_trend"]} for k, v in pilots.items()}},
             claims=claims, headline=headline)
