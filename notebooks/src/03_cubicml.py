# %% [markdown]
# # CubicML: predicting distributed-training performance, and searching system settings with it
#
# Wen, Zhu, Chu, Chen, Yang, *CubicML: Automated ML for Large ML Systems Co-design with ML Prediction of
# Performance*, [arXiv:2409.04585](https://arxiv.org/abs/2409.04585) (2024, AI at Meta).
#
# A large training job has many co-design knobs (batch size, parallelism sizes, precision, recomputation,
# sharding, ...), and each measurement costs a job launch. CubicML logs jobs (configuration -> measured speed or
# out-of-memory), fits a lightweight predictor (a neural network with a margin ranking loss, or trees) to that
# history, and searches in rounds: a REINFORCE sampler proposes the configurations the predictor likes, the top
# ones are launched, their results join the history, the predictor is refitted. This notebook
#
# 1. builds a real configuration space for training a small DLRM-like model on this machine (`companion.systems`),
# 2. measures configurations live on a `torchrun` gloo process group kept alive between jobs (peak memory
#    against a budget: over it is an out-of-memory job),
# 3. fits the two predictors and shows their held-out Kendall tau and error against the number of measured jobs,
# 4. runs the round-based loop against random search and the hand default on the same number of measurements,
#    over seeds, re-measures the winners and the default, and explains the best configurations,
# 5. runs the same loop on an analytic cluster model of a 405B-parameter LLM and a 73B-parameter ads model on
#    many GPUs. **Everything in that part is simulated**, and says so.
#
# The paper reports no predictor accuracy and no recoverable speed-up number, so no number of ours is compared
# with one; the checks below are on the paper's method claims, each against a control.

# %% tags=["parameters"]
scale = "quick"  # quick|laptop|paper: preset for every knob left at None
seed = 0  # int: first search seed (the seeds are seed, seed+1, ...)
n_seeds = None  # int≥1≤100: search seeds for each searcher; verdicts need at least 3 (None: preset)
budget = None  # int≥2≤10000: measured configurations per searcher and seed (None: preset)
warmup_trials = None  # int≥2≤10000: random measurements before the first predictor round (None: preset)
top_k = None  # int≥1≤1000: configurations measured per round of the loop (None: preset)
inner_steps = None  # int≥0≤100000: REINFORCE draws against the predictor per round (0: score uniform draws) (None: preset)
predictor = "gbt"  # gbt|mlp: predictor inside the loop (trees, or the MLP ensemble with the margin ranking loss)
members = None  # int≥1≤20: ensemble members of each predictor (None: preset)
mlp_epochs = None  # int≥1≤10000: training epochs of the MLP predictor (None: preset)
holdout_splits = None  # int≥1≤100: random train/test splits for the held-out predictor accuracy (None: preset)
repeats = None  # int≥1≤50: timed windows per measurement; the median is reported (None: preset)
window_s = None  # float>0≤60: length of one timed window, seconds (None: preset)
rows_per_table = None  # int≥100≤10000000: rows of each of the 8 embedding tables of the measured model (None: preset)
memory_budget_mb = None  # float>0≤1000000: peak memory per process above which a job counts as out of memory, MB (None: preset)
max_global_batch = 8192  # int≥256≤1000000: largest batch x accumulation x processes the space allows
default_reps = None  # int≥1≤1000: measurements of the hand default for its spread (None: preset)
best_reps = None  # int≥1≤1000: re-measurements of each search's best and of the default, interleaved (None: preset)
nproc = 2  # int≥1≤64: processes in the measurement group (the largest data-parallel world size)
timeout_s = 60.0  # float>0≤3600: a measurement without a result after this long counts as hung
oom_penalty = 1.0  # float>0≤1000000: throughput the loop is told for an out-of-memory job (live: samples/s, simulated: the metric's unit)
cluster_gpu = "H100-SXM"  # H100-SXM|A100-SXM: simulated GPU (datasheet constants)
cluster_gpus = None  # int≥8≤1000000: simulated GPUs for the LLM (None: preset)
rec_gpus = None  # int≥8≤1000000: simulated GPUs for the ads model (None: preset)
cluster_budget = None  # int≥2≤10000: simulated measurements per searcher and seed (None: preset)
cluster_warmup = None  # int≥2≤10000: random simulated measurements before the first round (None: preset)
cluster_seeds = None  # int≥1≤100: seeds of the simulated searches (None: preset)
cluster_noise = 0.03  # float≥0≤1: log-normal noise of a simulated measurement (sd of log throughput)

# %%
import time

import numpy as np
import pandas as pd
import seaborn as sns
import torch
from scipy import stats
from threadpoolctl import threadpool_limits

import companion
from companion import evidence, plots, results
from companion.systems import cluster, constants, search
from companion.systems.harness import Harness, MeasureSettings, Memo
from companion.systems.model import JobShape
from companion.systems.space import HAND_DEFAULT, KNOBS, n_valid, training_space

SLUG = "cubicml"
PRESETS = {
    "quick": dict(n_seeds=3, budget=8, warmup_trials=4, top_k=2, inner_steps=200, members=3, mlp_epochs=40,
                  holdout_splits=3, repeats=3, window_s=0.03, rows_per_table=5000, memory_budget_mb=64.0,
                  default_reps=3, best_reps=1, cluster_gpus=1024, rec_gpus=128, cluster_budget=16, cluster_warmup=6,
                  cluster_seeds=3),
    "laptop": dict(n_seeds=5, budget=30, warmup_trials=10, top_k=5, inner_steps=1000, members=3, mlp_epochs=60,
                   holdout_splits=3, repeats=3, window_s=0.08, rows_per_table=10000, memory_budget_mb=96.0,
                   default_reps=8, best_reps=3, cluster_gpus=1024, rec_gpus=128, cluster_budget=40, cluster_warmup=10,
                   cluster_seeds=5),
    "paper": dict(n_seeds=5, budget=200, warmup_trials=50, top_k=10, inner_steps=2000, members=5, mlp_epochs=150,
                  holdout_splits=10, repeats=5, window_s=0.5, rows_per_table=1000000, memory_budget_mb=8000.0,
                  default_reps=20, best_reps=5, cluster_gpus=16384, rec_gpus=1024, cluster_budget=100,
                  cluster_warmup=20, cluster_seeds=5),
}
P = companion.params.resolve(PRESETS, scale, globals())
torch.set_num_threads(1)
_limits = threadpool_limits(1)  # sklearn's trees: one thread, the measurement group has the others
SEEDS = [seed + r for r in range(P.n_seeds)]
T0 = time.perf_counter()

# %% [markdown]
# ## The configuration space
#
# Ten knobs of one training job of a small DLRM-like model (bottom MLP, 8 embedding tables, dot interactions, top
# MLP; `companion.systems.model`). The space refuses combinations that cannot run or that duplicate another job,
# each with its reason; a job that runs but needs more memory than the budget is only found out by running it.
# The hand default is what one would launch without a search (PyTorch's defaults, Adam, one process on every core).

# %%
space = training_space(max_global_batch=max_global_batch)
shape = JobShape(rows_per_table=P.rows_per_table)
print(f"{space.name}: {space.n_decisions} knobs, {space.size()} combinations, {n_valid(space)} valid")
display(pd.DataFrame({"knob": list(KNOBS), "choices": [", ".join(map(str, v)) for v in KNOBS.values()],
                      "hand default": [HAND_DEFAULT[k] for k in KNOBS]}))
refused = [{**HAND_DEFAULT, "world": 2}, {**HAND_DEFAULT, "emb_grad": "sparse"},
           {**HAND_DEFAULT, "bucket_mb": 1}, {**HAND_DEFAULT, "batch": 8192, "accum": 2, "threads": 1}]
pd.DataFrame({"change from the default": [{k: v for k, v in c.items() if v != HAND_DEFAULT[k]} for c in refused],
              "refused because": [space.reason(c) for c in refused]})

# %% [markdown]
# ## Measuring: one process group, fed jobs
#
# `Harness` starts `torchrun --nproc_per_node 2` once (gloo); every job is a file the ranks pick up. A job builds
# the model for its configuration, runs a warm-up step, then `repeats` timed windows of equal step counts, and
# reports the median samples/s and the peak resident memory above the process's size before the job (the
# kernel's high-water mark, reset per job). A job whose warm step takes over 2 s is reported from that one step
# (flagged `slow`), so a hopeless configuration costs seconds, not the hang timeout. A world-size-1 job runs on rank 0 while rank 1 waits. The machine is
# shared with other work, so the default is measured several times first: its spread is the noise floor every
# comparison below has to clear.

# %%
harness = Harness(nproc=nproc, settings=MeasureSettings(warmup=1, repeats=P.repeats, target_s=P.window_s),
                  memory_budget_mb=P.memory_budget_mb, timeout_s=timeout_s, shape=shape).start()
print(f"group of {nproc} started in {harness.startup_s[-1]:.1f} s on {harness.machine}")
default_runs = search.remeasure(harness.measure, {"default": HAND_DEFAULT}, P.default_reps)
d = default_runs.samples_per_s.astype(float)
default_cv = float(d.std(ddof=1) / d.mean()) if len(d) > 1 else float("nan")
print(f"hand default: {d.median():.0f} samples/s median of {len(d)} (min {d.min():.0f}, max {d.max():.0f}, "
      f"coefficient of variation {default_cv:.1%}); peak {default_runs.peak_mb.max():.0f} MB per process "
      f"(budget {P.memory_budget_mb:g} MB)")

# %% [markdown]
# ## The loop against random search, on the same measurements
#
# Random search and the loop get `budget` measurements per seed. The loop is the core's `PredictorSearch` with
# `batch = top_k`: it fits the predictor on every job so far (log throughput), trains a REINFORCE policy against the
# predicted mean + 0.5 x spread, and measures the top-k distinct unseen proposals; then refits. Both draw their first
# `warmup_trials` configurations from the same seeded generator, so the loop starts from the random search's own
# first jobs. A configuration proposed twice (by either searcher) is measured once and its result reused
# (`Memo`). An out-of-memory job is told to the searchers as `oom_penalty` samples/s (a penalty, so the predictor
# learns where memory runs out; it is never a "best") and kept as infeasible in the tables. Every trial, with the
# machine it ran on, is in the JSON-lines trial store.

# %%
memo = Memo(harness, space, infeasible_reward=oom_penalty)
store_dir = companion.runtime.run_dir(SLUG) / "trials"
t_search = time.perf_counter()
frame, runs = search.compare(space, memo, seeds=SEEDS, budget=P.budget, warmup=P.warmup_trials, top_k=P.top_k,
                             make_predictor=search.predictor_factory(predictor, members=P.members, epochs=P.mlp_epochs),
                             inner_steps=P.inner_steps, store_dir=store_dir)
search_s = time.perf_counter() - t_search
measured = search.measured_table(runs, space)
status = measured.status.value_counts().to_dict()
print(f"{memo.fresh} distinct jobs measured in {search_s:.0f} s ({search_s / max(memo.fresh, 1):.2f} s each with the "
      f"predictor fits); outcomes {status}; group starts {harness.starts}")
infeasible = measured[measured.status == "infeasible"]
if len(infeasible):
    print("out of memory, e.g.:", infeasible.error.iloc[0])

# %%
fig, ax = plots.figure(figsize=(7, 4))
sns.lineplot(data=frame, x="trial", y="best", hue="searcher", errorbar=("pi", 100), ax=ax)
ax.axhline(d.median(), color="grey", ls="--", label="hand default (median)")
ax.set(xlabel="measured configurations", ylabel="best throughput so far (samples/s)",
       title=f"Live measurements, {len(SEEDS)} seeds (band: range over seeds)")
ax.set_ylim(bottom=0)
ax.legend()
_ = plots.save(fig, "search", SLUG)

# %% [markdown]
# ## The predictors: how well they rank jobs they have not seen
#
# The random-search jobs are a uniform sample of the space (all seeds together). Each predictor is trained on `n` of
# them and ranks the rest: Kendall tau between predicted and measured throughput, and, for the regressors, the
# median relative error of the predicted throughput (the margin-loss MLP predicts an order, not a scale).

# %%
uniform = search.measured_table(runs, space, only="random")
ok = uniform[uniform.status == "ok"]
cands = [{k: r[k] for k in KNOBS} for _, r in ok.iterrows()]
n_max = len(ok) - max(5, len(ok) // 4)
grid = sorted({n for n in (6, 10, 20, 40, 80, 160, n_max) if 4 <= n <= n_max})
acc = search.holdout(space, cands, ok.samples_per_s.astype(float).to_numpy(), kinds=["gbt", "mlp", "mlp-mse"],
                     n_train=grid, splits=P.holdout_splits, seed=seed, members=P.members, epochs=P.mlp_epochs)
summary_acc = acc.groupby(["predictor", "n_train"]).agg(tau=("tau", "mean"), tau_sd=("tau", "std"),
                                                         rel_error=("rel_error", "mean")).reset_index()
summary_acc.round(3)

# %%
fig, ax = plots.figure(figsize=(7, 4))
sns.lineplot(data=acc, x="n_train", y="tau", hue="predictor", marker="o", errorbar=("pi", 100), ax=ax)
ax.axhline(0, color="grey", lw=0.8)
ax.set(xlabel="measured configurations used for training", ylabel="held-out Kendall tau (unitless)",
       title="Learning curve of the predictors (band: range over splits)", ylim=(-1, 1))
_ = plots.save(fig, "learning_curve", SLUG)

# %% [markdown]
# ## Winners re-measured, against the default re-measured
#
# A search's best-so-far is the maximum of noisy measurements, biased upwards. So each search's best configuration
# and the default are measured again, `best_reps` times each, round-robin, and the comparisons use those numbers.

# %%
best = {f"{n}-{s}": search.best_config(runs[(n, s)]) for n, s in runs}
again = search.remeasure(harness.measure, {"default": HAND_DEFAULT, **best}, P.best_reps)
again_ok = again[again.status == "ok"]
med = again_ok.groupby("name").samples_per_s.median()
default_again = float(med.get("default", np.nan))
per_seed = pd.DataFrame({n: {s: med.get(f"{n}-{s}", np.nan) for s in SEEDS} for n in ("random", "predictor")})
per_seed["default"] = default_again
per_seed["speedup_predictor"] = per_seed.predictor / default_again
per_seed["speedup_random"] = per_seed.random / default_again
per_seed.round(2)

# %% [markdown]
# ### The best configurations, explained
#
# The best re-measured configuration beside the default, knob by knob, and what a predictor fitted on every
# successful job says each knob is worth: the predicted throughput ratio of the best configuration over the same
# configuration with that one knob set back to the default's value (a prediction, not a measurement).

# %%
all_ok = measured[measured.status == "ok"]
top_name = med.drop("default").idxmax()
top = best[top_name]
full = search.predictor_factory("gbt", members=P.members)(space.cardinalities(), seed)
full.fit(np.stack([space.encode({k: r[k] for k in KNOBS}) for _, r in all_ok.iterrows()]),
         all_ok.samples_per_s.astype(float).to_numpy())
rows = []
for k in KNOBS:
    back = {**top, k: HAND_DEFAULT[k]}
    if top[k] == HAND_DEFAULT[k] or not space.valid(back):
        rows.append({"knob": k, "best": top[k], "default": HAND_DEFAULT[k], "predicted gain of this knob": None})
        continue
    p_top, p_back = (full.predict(space.encode(c)[None])[0][0] for c in (top, back))
    rows.append({"knob": k, "best": top[k], "default": HAND_DEFAULT[k], "predicted gain of this knob": float(np.exp(p_top - p_back))})
explain = pd.DataFrame(rows)
print(f"best: {top_name}, re-measured {med[top_name]:.0f} samples/s = {med[top_name] / default_again:.2f}x the re-measured default")
display(explain.round(2))
top_jobs = all_ok.sort_values("samples_per_s", ascending=False).head(max(5, len(all_ok) // 10))
print(f"knob values among the {len(top_jobs)} fastest measured jobs:")
pd.DataFrame({k: top_jobs[k].value_counts().to_dict() for k in KNOBS}).T.fillna(0).astype(int)

# %% [markdown]
# ## Where the analytic model meets the measurements: a one-device roofline
#
# The cluster model below is a roofline per device plus communication. Its compute half can be checked here: the
# measured job's FLOPs and bytes per step (`companion.systems.search.cpu_roofline`) against this CPU's own matmul
# FLOP/s and copy bandwidth, measured now on one thread. Communication is not modelled in this check (the two
# processes share the machine's memory). Agreement in *order* (Kendall tau) is the test; the absolute ratio shows
# how far below the roofline a small PyTorch job runs.

# %%
dev = search.cpu_device(threads=1)
print(f"this CPU, one thread: {dev['flops'] / 1e9:.1f} GFLOP/s (fp32 matmul), {dev['mem_bw'] / 1e9:.1f} GB/s (copy)")
roof = pd.DataFrame([{**search.cpu_roofline({k: r[k] for k in KNOBS}, dev, shape),
                      "measured": float(r.samples_per_s)} for _, r in all_ok.iterrows()])
roof_tau = stats.kendalltau(roof.samples_per_s, roof.measured).statistic
roof["fraction"] = roof.measured / roof.samples_per_s
print(f"{len(roof)} measured jobs: Kendall tau (roofline vs measured) {roof_tau:.2f}; measured = "
      f"{roof.fraction.median():.2f} x roofline (median; IQR {roof.fraction.quantile(.25):.2f}-{roof.fraction.quantile(.75):.2f})")
fig, ax = plots.figure(figsize=(5.5, 4.5))
sns.scatterplot(data=roof, x="samples_per_s", y="measured", hue="bound", ax=ax)
lim = [roof[["samples_per_s", "measured"]].min().min() * 0.8, roof[["samples_per_s", "measured"]].max().max() * 1.2]
ax.plot(lim, lim, color="grey", lw=0.8)
ax.set(xscale="log", yscale="log", xlabel="roofline prediction (samples/s)", ylabel="measured (samples/s)",
       title="One-device roofline check")
_ = plots.save(fig, "roofline", SLUG)
harness.close()

# %% [markdown]
# ## The same loop at cluster scale (simulated)
#
# **Every number in this section is simulated** by `companion.systems.cluster`: a 405B-parameter LLM (Llama 3.1
# 405B's shape, 8192 tokens, 2048 sequences per step) on `cluster_gpus` GPUs, choosing tensor, pipeline and (hence)
# data-parallel sizes, micro-batch, recomputation and ZeRO stage; and a 73B-parameter ads model (our shape: 1000
# tables of width 128) on `rec_gpus` GPUs, choosing per-GPU batch, embedding sharding, all-to-all precision, DDP
# or FSDP for the dense part, checkpointing and embedding precision. A "measurement" is the model's throughput
# times log-normal noise (`cluster_noise`); a layout that does not fit HBM is an out-of-memory job. The constants
# and their sources:

# %%
display(pd.DataFrame(constants.table()))
cl_llm = cluster.Cluster(gpu=cluster_gpu, n_gpus=P.cluster_gpus)
cl_rec = cluster.Cluster(gpu=cluster_gpu, n_gpus=P.rec_gpus)
llm, rec = cluster.Transformer(), cluster.RecModel()
problems = {
    "LLM 405B": (cluster.llm_space(llm, cl_llm), cluster.Simulated(cluster.llm_step, "tokens_per_s", cluster_noise, seed,
                                                                    oom_penalty, m=llm, cl=cl_llm), "tokens_per_s", cluster.LLM_DEFAULT),
    "ads 73B": (cluster.rec_space(cl_rec), cluster.Simulated(cluster.rec_step, "samples_per_s", cluster_noise, seed,
                                                             oom_penalty, m=rec, cl=cl_rec), "samples_per_s", cluster.REC_DEFAULT),
}
sim_rows, sim_best, sim_frames = [], {}, []
for name, (sp, sim, metric, default) in problems.items():
    true = [sim.true(sp.decode(np.array(c))) for c in np.ndindex(*sp.cardinalities()) if sp.valid(sp.decode(np.array(c)))]
    feas = [t for t in true if t["feasible"]]
    optimum, d_true = max(t[metric] for t in feas), sim.true(default)[metric]
    f, rs = search.compare(sp, lambda c, s: sim(c), seeds=[seed + r for r in range(P.cluster_seeds)],
                           budget=P.cluster_budget, warmup=P.cluster_warmup, top_k=max(1, P.top_k),
                           make_predictor=search.predictor_factory("gbt", members=P.members),
                           inner_steps=P.inner_steps, metric=metric)
    f["problem"] = name
    sim_frames.append(f.assign(best_rel=f.best / optimum))
    for (sname, s), res in rs.items():  # the winner's true (noise-free) simulated throughput; 0 if nothing fit
        t = sim.true(search.best_config(res))
        sim_best[(name, sname, s)] = t[metric] / optimum if t["feasible"] else 0.0
    sim_rows.append({"problem": name, "valid layouts": len(true), "fit in memory": len(feas),
                     "default / optimum": d_true / optimum, "default": default})
sim_frame = pd.concat(sim_frames)
sim_table = pd.DataFrame(sim_rows)
display(sim_table)
sim_res = pd.DataFrame([{"problem": p, "searcher": sn, "seed": s, "best / optimum": v} for (p, sn, s), v in sim_best.items()])
sim_res.groupby(["problem", "searcher"])["best / optimum"].agg(["mean", "min", "max"]).round(3)

# %%
fig, axes = plots.figure(1, 2, figsize=(11, 4))
for ax, (name, g) in zip(axes, sim_frame.groupby("problem", sort=False)):
    sns.lineplot(data=g, x="trial", y="best_rel", hue="searcher", errorbar=("pi", 100), ax=ax)
    ax.axhline(sim_table.set_index("problem").loc[name, "default / optimum"], color="grey", ls="--", label="default")
    ax.set(xlabel="simulated measurements", ylabel="best simulated throughput / simulated optimum (ratio)",
           title=f"SIMULATED: {name}", ylim=(0, 1.1))
    ax.legend()
_ = plots.save(fig, "cluster_simulated", SLUG)

# %% [markdown]
# ## Recorded runs (1 Dec 2026, the shared 2-core machine: AMD EPYC, torch 2.13.0+cpu, load average 4-12 from other work)
#
# - **quick** (`companion run cubicml`): 176 s wall (group start 14.6 s; 36 distinct live jobs, 1 out of memory,
#   in 98 s). Hand default 4748 / 5731 / 4589 samples/s at the start, 2627 when re-measured at the end: the
#   machine's load moved it by 2x within three minutes, far beyond its 12% spread inside one block. Winners beat
#   the re-measured default 6.45x (geometric mean, 95% CI 2.37-17.51, reproduced); the loop vs random at 8
#   measurements: random better in 3/3 seeds, interval covers 0 (inconclusive); predictors' held-out tau on
#   18 jobs: GBT 0.53, MLP (margin) 0.80, intervals wide (inconclusive / partly). Simulated: loop vs random
#   inconclusive on both problems. Roofline tau 0.36 (partly); jobs run at 0.02x the roofline.
# - **laptop** (`/tmp/cpuslot companion run cubicml --scale laptop`): 851 s in the runner (21 min 20 s with the wait
#   for a CPU slot); 243 distinct live jobs (12 out of memory, none crashed or hung) in 626 s, one group start
#   (21 s), then 8 + 33 re-measurements. Hand default 1778 samples/s median at the start (CV 13%), 3368 when
#   re-measured at the end (1955-4220 over 3 runs): again a drift larger than any within-block spread.
#   Held-out Kendall tau rises with the number of jobs trained on (GBT 0.30 at 6 jobs, 0.54 at 20, 0.70 at 40,
#   0.67 at 105; MLP margin 0.34 / 0.57 / 0.64 / 0.64; median relative error of the GBT 55% at 6 jobs, 30% at 105):
#   both predictors reproduced against the tau >= 0.5 bar. Re-measured best samples/s: loop 20979-29980, random
#   21846-28601 over the 5 seeds; the loop better in 4/5 seeds, mean gap +1222 samples/s, 95% CI -5140..+7583:
#   **inconclusive**. Speed-up of the loop's winners over the re-measured default 7.52x (95% CI 6.36-8.88,
#   reproduced; against the start-of-run default it would read about twice that, which is why the comparison uses
#   the re-measured one). The best job: batch 8192, one thread, sparse embedding gradients with SGD, width 16,
#   one process; the predictor credits one thread instead of two with 5.2x (two threads are slow on an
#   oversubscribed machine), width 16 with 1.5x, batch 8192 with 1.35x. Simulated: on the ads model the loop is
#   better in 5/5 seeds (best / optimum 0.92 vs 0.86, CI -0.013..+0.123: inconclusive, just); on the LLM it is
#   not (0.93 vs 0.95; 80 of 708 layouts fit in memory, and the Megatron-style default is already at 0.90 of the
#   simulated optimum). Roofline tau 0.44 over 231 jobs (partly); the jobs run at 0.03x the roofline, so on this
#   CPU the small-op overhead the roofline leaves out dominates; the matmul efficiency assumed for GPUs is not
#   validated by this check.

# %% [markdown]
# ## Paper vs. this run
#
# The paper (abstract, v1 introduction, a secondary review; `six_papers_addendum.md` §5) states the method and that
# it sped up Meta's 73B ads and up-to-405B LLM training; its predictor accuracy and speed-ups are not recoverable.
# So the claims are the method's: a predictor trained on job history ranks unseen jobs, the round-based loop beats
# random search at equal measurements, and it speeds the job up over the hand default. Each names its control.

# %%
big = acc[acc.n_train == acc.n_train.max()]
tau_by = big.groupby("predictor").tau.mean()
tau_ci = {k: evidence.interval(g.tau.to_numpy()) for k, g in big.groupby("predictor")}
TH_TAU = evidence.Threshold(0.5, "at_least", 0.2, source="our bar: the paper reports no predictor accuracy; tau 0.5 "
                            "orders three of four job pairs correctly (0.3-0.5 counts as partly)")
cmp_random = evidence.paired(per_seed.predictor.to_dict(), per_seed.random.to_dict(), metric="re-measured best samples/s",
                             names=("round-based loop", "random search"))
log_speed = np.log(per_seed.speedup_predictor.to_numpy())
sp_lo, sp_hi = (np.exp(v) for v in evidence.interval(log_speed))
TH_SPEED = evidence.Threshold(1.0, "at_least", 0.0, source="no speed-up of the paper is recoverable; the control is the "
                              "hand default re-measured, so the bar is any gain with its interval above 1x", unit="x")
sim_cmp = {p: evidence.paired(sim_res[(sim_res.problem == p) & (sim_res.searcher == "predictor")].set_index("seed")["best / optimum"].to_dict(),
                              sim_res[(sim_res.problem == p) & (sim_res.searcher == "random")].set_index("seed")["best / optimum"].to_dict(),
                              metric="simulated best / optimum", names=("loop (simulated)", "random (simulated)"))
           for p in problems}
TH_ROOF = evidence.Threshold(0.5, "at_least", 0.2, source="our bar for the simulator's compute half: the roofline must order "
                             "measured jobs (tau >= 0.5; 0.3-0.5 partly)")
claims = [
    results.claim("A lightweight predictor trained on logged jobs predicts training performance (ranks unseen "
                  "configurations); trees", "no accuracy reported",
                  f"GBT held-out Kendall tau {tau_by['gbt']:.2f} (95% CI over {P.holdout_splits} splits "
                  f"{tau_ci['gbt'][0]:.2f}..{tau_ci['gbt'][1]:.2f}) trained on {int(big.n_train.max())} jobs, tested on "
                  f"{int(big.n_test.iloc[0])}", evidence.threshold_verdict(float(tau_by["gbt"]), TH_TAU, ci=tau_ci["gbt"]),
                  note="control: tau 0 is a predictor that knows nothing (tests/test_cubicml.py checks pure-noise labels give ~0)"),
    results.claim("... the same with the MLP ensemble trained with a margin ranking loss", "no accuracy reported",
                  f"MLP (margin) held-out Kendall tau {tau_by['mlp']:.2f} (CI {tau_ci['mlp'][0]:.2f}..{tau_ci['mlp'][1]:.2f})",
                  evidence.threshold_verdict(float(tau_by["mlp"]), TH_TAU, ci=tau_ci["mlp"])),
    results.claim("Searching in rounds with the predictor (predict, measure the top-k, refit) finds faster "
                  "configurations than random search on the same number of measurements", "not quantified",
                  f"{cmp_random.text(0)}; {P.budget} measurements each, {len(SEEDS)} seeds, winners re-measured "
                  f"{P.best_reps}x", evidence.gap_verdict(cmp_random),
                  note="control: random search from the same first jobs (paired start)"),
    results.claim("The search speeds training up over the hand-set default (measured here)",
                  "speed-ups on Meta's jobs, not recoverable",
                  f"{np.exp(log_speed.mean()):.2f}x geometric mean over seeds (95% CI {sp_lo:.2f}..{sp_hi:.2f}); "
                  f"default re-measured {default_again:.0f} samples/s, its spread over {len(d)} runs "
                  f"{default_cv:.1%} (CV)", evidence.threshold_verdict(float(np.exp(log_speed.mean())), TH_SPEED, ci=(sp_lo, sp_hi)),
                  note="control: the hand default measured again, interleaved with the winners"),
    results.claim("SIMULATED: the loop beats random search on a 405B LLM's parallel layout", "not quantified",
                  sim_cmp["LLM 405B"].text(3) + f"; {P.cluster_gpus} simulated {cluster_gpu}",
                  evidence.gap_verdict(sim_cmp["LLM 405B"]), note="analytic model with noise; no GPU was used"),
    results.claim("SIMULATED: the loop beats random search on a 73B ads model's settings", "not quantified",
                  sim_cmp["ads 73B"].text(3) + f"; {P.rec_gpus} simulated {cluster_gpu}",
                  evidence.gap_verdict(sim_cmp["ads 73B"]), note="analytic model with noise; no GPU was used"),
    results.claim("Validation (ours): the analytic model's roofline orders the measured jobs", "-",
                  f"Kendall tau {roof_tau:.2f} over {len(roof)} jobs; measured at {roof.fraction.median():.2f}x the roofline",
                  evidence.threshold_verdict(float(roof_tau), TH_ROOF)),
    results.claim("Speed-ups on Meta's 73B-parameter ads models and LLMs up to 405B parameters", "reported, numbers not recoverable",
                  "-", evidence.not_tested("no speed-up number is recoverable from the paper, and no cluster is here; "
                                           "the cluster section above is simulated")),
]
results.print_claims(claims)

# %% [markdown]
# ## What the paper leaves open, and where we differ
#
# - **Predictor inputs and architecture** are not known (secondary source: "a neural network or a decision-tree
#   regressor" with a margin ranking loss). We one-hot the decision vector (trees read it as ordinals), fit on log
#   throughput, and use the core's ensembles (`GBTEnsemble`, `MLPEnsemble` with `loss="margin"`).
# - **The searcher**: REINFORCE over several rounds. We use the core's `PredictorSearch` (REINFORCE against the
#   predicted mean + 0.5 x ensemble spread, `inner_steps` draws per round, top-k distinct unseen proposals).
# - **Search spaces**: the paper's ads space has 5 x 3^11 x 10 configurations (review); ours is a laptop-scale job
#   with ten knobs, and the simulated spaces are ours. The analytic model does not overlap communication with
#   compute, ignores context parallelism, pipeline interleaving and FP8, and its efficiency factors are assumptions
#   (see the table).
# - **Infeasible jobs**: a job over the memory budget is recorded as failed, like an out-of-memory job; the loop
#   never proposes it again but the predictor does not learn from it (the paper's treatment is unknown).
# - **Noise**: the measurements share a 2-core machine with other work. Re-measuring the winners and the default
#   guards against the winner's curse, not against a slow drift that hits one seed's searches.
# - **Shared measurements**: a configuration proposed twice is measured once (`Memo`); the two searchers at one
#   seed therefore see the same number for the same job.

# %%
wall_s = time.perf_counter() - T0
headline = {"valid_configurations": int(n_valid(space)),
            "sim_llm_loop_best_over_optimum": float(sim_res[(sim_res.problem == "LLM 405B") & (sim_res.searcher == "predictor")]["best / optimum"].mean()),
            "sim_llm_random_best_over_optimum": float(sim_res[(sim_res.problem == "LLM 405B") & (sim_res.searcher == "random")]["best / optimum"].mean()),
            "sim_ads_loop_best_over_optimum": float(sim_res[(sim_res.problem == "ads 73B") & (sim_res.searcher == "predictor")]["best / optimum"].mean()),
            "sim_llm_default_over_optimum": float(sim_table.set_index("problem").loc["LLM 405B", "default / optimum"])}
print(f"wall time {wall_s:.0f} s; {memo.fresh} live searched jobs + {len(default_runs) + len(again)} re-measurements")
results.save(SLUG, params={**vars(P), "seed": seed, "seeds": SEEDS, "predictor": predictor, "nproc": nproc,
                           "max_global_batch": max_global_batch, "cluster_gpu": cluster_gpu, "cluster_noise": cluster_noise,
                           "timeout_s": timeout_s},
             metrics={"default_runs": default_runs.to_dict("records"), "default_cv": default_cv,
                      "remeasured": again.to_dict("records"), "per_seed": per_seed.reset_index().to_dict("records"),
                      "search_curves": frame.to_dict("records"), "measured": measured.drop(columns=["error"]).to_dict("records"),
                      "predictor_accuracy": acc.to_dict("records"), "explain": explain.to_dict("records"),
                      "roofline": {"tau": roof_tau, "device": dev, "median_fraction": float(roof.fraction.median())},
                      "simulated": {"table": sim_table.to_dict("records"), "results": sim_res.to_dict("records")},
                      "machine": harness.machine, "measure_wall_s": search_s, "fresh_jobs": memo.fresh,
                      "group_starts": harness.starts, "startup_s": harness.startup_s, "wall_s": wall_s},
             claims=claims, headline=headline)
