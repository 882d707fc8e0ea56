# %% [markdown]
# # InterFormer: interleaving non-sequence and sequence learning for CTR
#
# Zeng et al., *InterFormer: Effective Heterogeneous Interaction Learning for Click-Through Rate Prediction*,
# [arXiv:2411.09852](https://arxiv.org/abs/2411.09852) (v4), Meta AI / UIUC.
#
# CTR models see two kinds of input: a bag of profile and context features, and users' behaviour sequences.
# Most models let information go one way only (the candidate attends to the history, as in DIN) and squeeze the
# sequence into a vector early. InterFormer keeps both streams at full size through every layer and lets them
# talk both ways through small, gated summaries. This notebook
#
# 1. builds InterFormer and walks through it with tensor shapes,
# 2. trains it beside the paper's baselines (same embedding layer, same trainer) on real data: MovieLens-100K
#    turned into a sequential CTR task by default, or the BARS splits the paper used if you have them,
# 3. runs the paper's ablations (Fig. 2 interleaving modes and interaction backbones, Fig. 3 early aggregation,
#    Fig. 5 components) on the real data and on a synthetic task whose signal lives in the *order* of the history,
#    where no pooled model can find it,
# 4. looks inside the sequence attention (Fig. 4), and puts the paper's Table 3 beside our numbers, every claim
#    checked by `companion.evidence` with paired intervals over seeds.

# %% tags=["parameters"]
scale = "quick"  # quick|laptop|paper: preset for every knob left at None
seed = 0  # int: random seed (runs use seed, seed+1, ...)
dataset = "movielens"  # movielens|amazon|taobao|kuaivideo: real data for the model table (the BARS ones need their CSVs, see companion.data.bars)
n_seeds = None  # int≥1: seeds per model; verdicts need 3 or more (None: from the scale preset)
epochs = None  # int≥1: maximum training epochs on the real data, early stopping on the monitored validation metric (None: preset)
dim = None  # int≥2: embedding width d, even (None: preset; paper: the BARS recipe's embedding_dim on a BARS dataset)
layers = None  # int≥1: InterFormer layers; the attention-entropy claim needs 2 or more (None: preset)
max_len = None  # int≥1: history length kept per sequence on MovieLens (None: preset)
train_rows = None  # int≥0: cap on real training rows for the model table, a seeded sample (0: all; None: preset)
ablation_rows = None  # int≥0: cap on real training rows for the ablations, a seeded sample (0: all; None: preset)
batch_size = None  # int≥1: training batch size on the real data (None: preset; paper: the BARS recipe's where it has one)
embedding_regularizer = None  # float≥0: λ of the L2 penalty (λ/2)·Σw² on the embedding tables, FuxiCTR's form, real data (None: preset; paper: the BARS recipe's where it has one)
monitor = None  # auc|gauc|logloss: validation metric for early stopping and the weights kept, real data (None: preset; paper: gauc on a BARS dataset)
lr = None  # float>0≤10: Adam learning rate on the real data (None: preset)
baselines = None  # list: baseline models for the table, names from companion.models.zoo.MODEL_ZOO (None: preset)
flow_modes = None  # list: Fig. 2 interleaving modes besides the full model, from n2s, s2n, sep, sole (None: preset)
backbones = None  # list: Fig. 2 interaction backbones on the real data, from dhen, dot, dcnv2 (None: preset)
aggregations = None  # list: Fig. 3 early aggregations besides mean pooling (that one is sole), from mlp, attention (None: preset)
components = None  # list: Fig. 5 components to switch off, from no_pma, no_recent, no_gating, no_pffn, no_attention (None: preset)
synthetic_rows = None  # int≥100: rows of the synthetic order task (None: preset)
synthetic_epochs = None  # int≥1: training epochs on the synthetic task (None: preset)
synthetic_lr = None  # float>0≤10: Adam learning rate on the synthetic task (None: preset)
synthetic_batch_size = None  # int≥1: batch size on the synthetic task (None: preset)
threads = 1  # int≥0≤256: torch CPU threads (0: torch default; these small models run about as fast on one, and one is robust to a busy machine)
device = "cpu"  # str: cpu, cuda or auto

# %%
import numpy as np
from matplotlib.ticker import MaxNLocator
import pandas as pd
import torch

import companion
from companion import compare, evidence, plots, results
from companion.data import bars
from companion.data.bars import load_bars
from companion.data.movielens_seq import load_movielens_seq
from companion.data.synthetic_seq import make_synthetic_seq
from companion.models import interformer as itf
from companion.models import zoo
from companion.runtime import choose_device, seed_everything

SLUG = "interformer"
ALL_BASELINES = ["FM", "FmFM", "DNN", "DOT", "DCNv2", "DHEN", "AutoInt+", "xDeepFM", "Wukong",
                 "DIN", "DIEN", "BST", "DMIN", "DMR", "TransAct"]
ALL_MODES, ALL_BACKBONES = ["n2s", "s2n", "sep", "sole"], ["dhen", "dot", "dcnv2"]
ALL_AGGREGATIONS, ALL_COMPONENTS = ["mlp", "attention"], ["no_pma", "no_recent", "no_gating", "no_pffn", "no_attention"]
BARS_NAME = {"amazon": "AmazonElectronics_x1", "taobao": "TaobaoAd_x1", "kuaivideo": "KuaiVideo_x1"}
# paper scale on a BARS dataset takes the BARS/FuxiCTR recipe (companion.data.bars.BARS_RECIPES, read from the BARS run
# logs); where the recipe has no value (None), or on MovieLens, this notebook's own paper value stands (PAPER_OWN)
RECIPE = bars.BARS_RECIPES.get(BARS_NAME.get(dataset), {})
PAPER_OWN = dict(dim=64, batch_size=2048, embedding_regularizer=0.0, monitor="auc")
FROM_RECIPE = {"dim": "embedding_dim", "batch_size": "batch_size", "embedding_regularizer": "embedding_regularizer",
               "monitor": "monitor"}
PAPER_TRAIN = {k: PAPER_OWN[k] if RECIPE.get(r) is None else (str(RECIPE[r]).lower() if k == "monitor" else RECIPE[r])
               for k, r in FROM_RECIPE.items()}
RECIPE_FALLBACKS = sorted(k for k, r in FROM_RECIPE.items() if RECIPE and RECIPE.get(r) is None)
PRESETS = {
    "quick": dict(n_seeds=1, epochs=1, dim=16, layers=2, max_len=10, train_rows=8000, ablation_rows=4000,
                  batch_size=512, embedding_regularizer=0.0, monitor="auc", lr=2e-3, baselines=["DNN", "DCNv2", "DIN", "DMR", "TransAct"],
                  flow_modes=["sep", "sole"], backbones=["dhen"], aggregations=[], components=["no_pma"],
                  synthetic_rows=4000, synthetic_epochs=1, synthetic_lr=4e-3, synthetic_batch_size=512),
    "laptop": dict(n_seeds=3, epochs=2, dim=16, layers=2, max_len=20, train_rows=20000, ablation_rows=12000,
                   batch_size=1024, embedding_regularizer=0.0, monitor="auc", lr=2e-3, baselines=ALL_BASELINES, flow_modes=ALL_MODES, backbones=ALL_BACKBONES,
                   aggregations=ALL_AGGREGATIONS, components=ALL_COMPONENTS,
                   synthetic_rows=16000, synthetic_epochs=6, synthetic_lr=4e-3, synthetic_batch_size=512),
    "paper": dict(n_seeds=3, epochs=100, dim=PAPER_TRAIN["dim"], layers=3, max_len=100, train_rows=0, ablation_rows=0,
                  batch_size=PAPER_TRAIN["batch_size"], embedding_regularizer=PAPER_TRAIN["embedding_regularizer"],
                  monitor=PAPER_TRAIN["monitor"], lr=1e-3, baselines=ALL_BASELINES, flow_modes=ALL_MODES, backbones=ALL_BACKBONES,
                  aggregations=ALL_AGGREGATIONS, components=ALL_COMPONENTS,
                  synthetic_rows=200000, synthetic_epochs=20, synthetic_lr=1e-3, synthetic_batch_size=2048),
}
P = companion.params.resolve(PRESETS, scale, globals())
if RECIPE:
    print(f"BARS recipe for {BARS_NAME[dataset]} (used by the paper preset): {RECIPE['source']}; "
          f"no recipe value, this notebook's own paper value instead: {RECIPE_FALLBACKS or 'none'}")
zoo.check_models(P.baselines)
if threads:
    torch.set_num_threads(threads)
seed_everything(seed)
dev = choose_device(device)
SEEDS = [seed + i for i in range(P.n_seeds)]
TRAIN = dict(epochs=P.epochs, batch_size=P.batch_size, lr=P.lr, device=str(dev), patience=2,
             embedding_regularizer=P.embedding_regularizer, monitor=P.monitor)
# the BARS recipe is for the BARS data: the synthetic task keeps plain training and early stopping on AUC
SYN_TRAIN = dict(TRAIN, epochs=P.synthetic_epochs, lr=P.synthetic_lr, batch_size=P.synthetic_batch_size,
                 embedding_regularizer=0.0, monitor="auc")
IF_KW = dict(layers=P.layers)  # everything else at the defaults discussed at the end
ABL_REAL = itf.ablation_variants(IF_KW, P.flow_modes, P.backbones, P.aggregations, P.components)
ABL_SYN = itf.ablation_variants(IF_KW, P.flow_modes, ["dhen"], P.aggregations)

# %% [markdown]
# ## Data
#
# The default real dataset is MovieLens-100K as a *sequential* CTR task: each rating is a row, the "click" is a
# rating of 4 or 5, the non-sequence fields are the user's profile and the movie's features, and the two aligned
# sequences are the movies the user rated before (ids and genres). The split is chronological per user: each
# user's last 10% of ratings are the test set. The paper's datasets (AmazonElectronics, TaobaoAd, KuaiVideo, BARS
# "x1" splits) load with `dataset=...` once their CSVs are on disk. The model table and the ablations train on
# seeded samples of the training rows (`train_rows`, `ablation_rows`; validation and test are never cut).

# %%
if dataset == "movielens":
    full = load_movielens_seq(max_len=P.max_len)
else:
    full = load_bars({"amazon": "AmazonElectronics_x1", "taobao": "TaobaoAd_x1", "kuaivideo": "KuaiVideo_x1"}[dataset], seed=seed)
data = compare.cap_train(full, P.train_rows, seed)
abl_data = compare.cap_train(full, P.ablation_rows, seed)
print(data.summary())
print(data.schema.describe())

# %% [markdown]
# ## The architecture, with shapes
#
# Non-sequence fields become N tokens of width d (the shared embedding layer; dense values get a token each).
# The k aligned sequences are merged position by position by **MaskNet** (a self-mask, then a linear map from k·d to d).
# Then each layer runs three arches:
#
# - **Cross Arch** builds the two summaries. Non-sequence → sequence: `X_sum = Gate(LCE(X))`, a learned linear mix of
#   the N tokens into 4. Sequence → non-sequence: `S_sum = Gate([CLS | PMA | recent])`: the 4 CLS positions, 2 tokens
#   from attention pooling with learned queries, and the 2 latest events.
# - **Interaction Arch**: DHEN (inner products + a low-rank cross network, plus a shortcut) over `[X | S_sum]`, then
#   a linear map back to N tokens. The sequence enters the feature interactions, yet X is never pooled.
# - **Sequence Arch**: a *personalized* FFN, every event multiplied by a d×d matrix computed from `X_sum`, then
#   multi-head self-attention with rotary positions and a padding mask. Before layer 1 `X_sum` is prepended as the
#   4 CLS tokens, so the profile can query the history from the start.
#
# The head reads `[X_sum | S_sum]`. One forward pass on 8 rows:

# %%
model = zoo.build_model("InterFormer", data.schema, P.dim, pretrained=data.pretrained, **IF_KW)
print(f"{zoo.n_params(model):,} parameters")
model.trace_shapes(data.train.batch(slice(0, 8)))

# %% [markdown]
# ## InterFormer against the baselines
#
# Every model uses the same embedding layer, the same trainer (Adam, early stopping on the validation metric
# `monitor`: AUC, or gAUC in the paper preset on a BARS dataset) and the same width d. Non-sequential baselines see each history mean-pooled into one extra token, the way BARS feeds
# sequences to them. DMIN and DMR are short implementations of their papers without their auxiliary losses (see
# `companion.models.sequential`). We report test AUC, gAUC (per-user AUC weighted by rows), log loss, parameter
# count and training throughput, as mean and standard deviation over seeds, and the validation AUC by which the
# best baseline is chosen (choosing it on test would flatter it).

# %%
variants = {m: (m, {}) for m in P.baselines} | {"InterFormer": ("InterFormer", IF_KW)}
trained = {}
runs = compare.run_grid(variants, data, P.dim, SEEDS, TRAIN, desc="model table", keep=trained)
table = compare.summarize_grid(runs)
best_base = table.drop(index="InterFormer").valid_auc.idxmax()
print(f"best baseline on validation AUC: {best_base}")
table.round(4)

# %%
order = list(table.index)
style = {"InterFormer": ("D", "C3", "InterFormer"), best_base: ("s", "C2", "best baseline (validation AUC)")}
fig, ax = plots.figure(figsize=(7.5, 0.35 * len(order) + 1.5))
for i, name in enumerate(order):  # a point plot with intervals: no bar axis to truncate
    v = runs[runs.model == name].auc.to_numpy()
    lo, hi = evidence.interval(v) if len(v) > 1 else (v.mean(), v.mean())
    marker, color, label = style.get(name, ("o", "C0", "other baselines"))
    ax.errorbar(v.mean(), i, xerr=[[v.mean() - lo], [hi - v.mean()]], fmt=marker, color=color, capsize=3,
                label=label if label not in ax.get_legend_handles_labels()[1] else None)
ax.set_yticks(range(len(order)), order)
ax.invert_yaxis()
ax.xaxis.set_major_locator(MaxNLocator(6))
ax.set_xlabel(f"test AUC (0-1, higher is better)\nmean and 95% t interval over {len(SEEDS)} seed(s)")
ax.set_ylabel("model")
ax.legend(loc="lower left", fontsize=8)
ax.set_title(f"{data.info['source'].split(' (')[0]}, {len(data.train):,} training rows")
plots.save(fig, "model_table_auc", SLUG)

# %% [markdown]
# ## The paper's ablations
#
# Same InterFormer, one switch at a time, against the full model (`int/dhen`):
#
# - **Fig. 2, interleaving modes** × interaction backbone (DHEN, DOT, DCNv2): `n2s` only non-sequence → sequence (the
#   Interaction Arch gets no sequence summary), `s2n` only sequence → non-sequence (no personalized FFN; the CLS
#   tokens are learned constants), `sep` no exchange (the streams meet only in the head), `sole` no Sequence Arch
#   (the history is mean-pooled into one token for the Interaction Arch).
# - **Fig. 3, early aggregation**: the sequence compressed before any interaction, by mean pooling (= `sole`), an MLP
#   over the latest events, or self-attention plus attention pooling (`agg:mlp`, `agg:attention`).
# - **Fig. 5, components**: no PMA tokens, no recent tokens, no gating, no PFFN, no self-attention.
#
# On the real data these run on `ablation_rows` training rows. The **synthetic task** (`companion.data.synthetic_seq`)
# plants two signals in the *positions* of two events, a fair coin each: whether the event of the profile's
# target category is in the newer or older half of the history (the profile must steer how the history is read),
# and whether the event of the candidate's category is the latest one, scaled by the context (the sequence must
# meet two non-sequence fields). The multiset of the history is the same whatever the coins say, so any
# mean-pooled model is blind to both: its best possible AUC (`pooled Bayes`) is what the first-order part gives.
# A mean-pooled DCNv2 trains beside the ablations as the control for that. The old version of this task planted a
# category share, which mean-pooled models could read (a mean-pooled DCNv2 beat bidirectional InterFormer on it).

# %%
abl_real = compare.run_grid({itf.FULL: ("InterFormer", IF_KW), **ABL_REAL}, abl_data, P.dim, SEEDS, TRAIN,
                            desc="ablations (real)")
syn = make_synthetic_seq(n=P.synthetic_rows, seed=seed)
print("synthetic:", syn.summary())
print("Bayes-optimal test AUC %.4f; best mean-pooled model (pooled Bayes) %.4f"
      % (syn.info["bayes_test"]["auc"], syn.info["pooled_bayes_test"]["auc"]))
abl_syn = compare.run_grid({itf.FULL: ("InterFormer", IF_KW), **ABL_SYN, "DCNv2 (mean-pooled)": ("DCNv2", {})},
                           syn, P.dim, SEEDS, SYN_TRAIN, desc="ablations (synthetic)")

# %%
abl = pd.concat([compare.summarize_grid(abl_real).assign(data="real"), compare.summarize_grid(abl_syn).assign(data="synthetic")])
abl[["data", "auc", "auc_sd", "gauc", "logloss", "params", "samples_per_s"]].round(4)

# %%
def group_of(name):
    return ("Fig. 3 aggregation" if name.startswith("agg:") or name == "sole/dhen" else
            "Fig. 5 component" if name in itf.COMPONENTS else "Fig. 2 mode/backbone" if "/" in name else "control")


gap_real, gap_syn = compare.paired_against(abl_real, itf.FULL), compare.paired_against(abl_syn, itf.FULL)
fig, axes = plots.figure(1, 2, figsize=(12, 0.3 * max(len(gap_real), len(gap_syn)) + 1.6), squeeze=False)
colors = {"Fig. 2 mode/backbone": "C0", "Fig. 3 aggregation": "C2", "Fig. 5 component": "C4", "control": "C7"}
for ax, (name, gaps) in zip(axes[0], [("real", gap_real), ("synthetic", gap_syn)]):
    for i, (m, p) in enumerate(gaps.items()):
        lo, hi = (p.lo, p.hi) if np.isfinite(p.lo) else (p.mean, p.mean)
        ax.errorbar(p.mean, i, xerr=[[p.mean - lo], [hi - p.mean]], fmt="o", capsize=3, color=colors[group_of(m)],
                    label=group_of(m) if group_of(m) not in ax.get_legend_handles_labels()[1] else None)
    ax.axvline(0, c="k", lw=0.8)
    ax.set_yticks(range(len(gaps)), list(gaps))
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.set_xlabel(f"test AUC of the full model − variant (AUC units)\n> 0: what was removed helps; "
                  f"95% paired t interval, {len(SEEDS)} seed(s)")
    ax.set_ylabel("variant")
    ax.set_title(f"{name} data")
    ax.legend(fontsize=8, title="ablation", loc="best")
plots.save(fig, "ablations_auc", SLUG)

# %% [markdown]
# ## Inside the Sequence Arch: attention maps
#
# Attention of every position (rows: 4 CLS tokens, then the history oldest → newest) over every position,
# averaged over heads and over test rows whose history is full, one panel per layer (the first seed's model). The
# paper reads its maps (TaobaoAd, 3 layers) as near-uniform in layer 1 and focused on a few tokens later. The number
# under each panel is the mean attention entropy divided by its uniform maximum (1 = uniform); the claim below uses
# it for every seed's model.

# %%
probe = data.test.batch(slice(0, 2000))
maps = itf.mean_attention(trained[("InterFormer", seed)], probe)
entropy = {s: itf.attention_entropy(trained[("InterFormer", s)], probe) for s in SEEDS}
n_cls = trained[("InterFormer", seed)].n_cls
fig, axes = plots.figure(1, len(maps), figsize=(4 * len(maps) + 1, 3.8), squeeze=False)
for i, (ax, m) in enumerate(zip(axes[0], maps)):
    im = ax.imshow(m, cmap="viridis", vmin=0)
    ax.grid(False)
    ax.axhline(n_cls - 0.5, c="w", lw=0.8)
    ax.axvline(n_cls - 0.5, c="w", lw=0.8)
    ax.set_title(f"layer {i + 1} (normalized entropy {entropy[seed][i]:.2f})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"key position (token index)\n0-{n_cls - 1}: CLS, then events oldest → newest")
    ax.set_ylabel("query position (token index)")
fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="attention weight (probability, rows sum to 1)")
plots.save(fig, "attention_maps", SLUG)

# %% [markdown]
# ## Paper vs. this run
#
# The paper's Table 3 columns for the dataset this run used (for MovieLens, which the paper does not use, the AUC of
# all three of its datasets) beside our table. The scales differ by orders of magnitude (the paper: millions of rows,
# tuned embedding sizes, an A100), so compare orderings and gaps, not levels.

# %%
side = itf.paper_columns(dataset).join(table[["valid_auc", "auc", "auc_sd", "gauc", "logloss", "params"]]
                                       .add_prefix(f"ours_{scale}_"), how="outer")
side.sort_values(f"ours_{scale}_auc", ascending=False)

# %%
lead = {m: evidence.paired_frame(runs, "InterFormer", best_base, m) for m in ("auc", "gauc", "logloss")}
flows_real = [p for b in P.backbones for p in
              compare.paired_against(abl_real, f"int/{b}", [f"{m}/{b}" for m in P.flow_modes]).values()]
flows_syn = list(compare.paired_against(abl_syn, itf.FULL, [f"{m}/dhen" for m in P.flow_modes]).values())
agg_names = ["sole/dhen"] + [f"agg:{a}" for a in P.aggregations]
aggs_real = list(compare.paired_against(abl_real, itf.FULL, agg_names).values())
aggs_syn = list(compare.paired_against(abl_syn, itf.FULL, agg_names).values())
comps = list(compare.paired_against(abl_real, itf.FULL, P.components).values())
h_first, h_later = itf.entropy_by_layer(entropy)
p_entropy = evidence.paired(h_first, h_later, metric="normalized attention entropy",
                            names=("layer 1", "most focused later layer"))
NEAR_UNIFORM = evidence.Threshold(0.9, "at_least", 0.05, unit="of the uniform maximum",
                                  source="our reading of 'near-uniform' (the paper gives no number)")
h1 = list(h_first.values())
syn_control = evidence.paired_frame(abl_syn, itf.FULL, "DCNv2 (mean-pooled)", "auc")
POOLED_CEILING = evidence.Threshold(round(syn.info["pooled_bayes_test"]["auc"] + 0.01, 4), "at_most", 0.01, unit="AUC",
                                    source="the pooled Bayes AUC of this synthetic test set + 0.01 for test-set noise")
pooled_auc = abl_syn[abl_syn.model == "DCNv2 (mean-pooled)"].auc.to_numpy()


def txt(ps):
    return " | ".join(p.text() for p in ps) if ps else "not run"


claims = [
    results.claim("InterFormer beats the best baseline on AUC, gAUC and log loss (Table 3)", itf.paper_lead(dataset),
                  txt(lead.values()), evidence.all_of([evidence.gap_verdict(p) for p in lead.values()]),
                  f"control: {best_base}, the best of {len(P.baselines)} baselines on validation AUC, same embedding, "
                  f"trainer and width; {len(data.train):,} training rows"),
    results.claim("(a) bidirectional flow beats n2s, s2n, no exchange and no Sequence Arch, for every backbone "
                  "(Fig. 2), real data", "sole < sep < n2s ≈ s2n < int, up to +1.46% AUC", txt(flows_real),
                  evidence.all_of([evidence.gap_verdict(p) for p in flows_real], rule="every mode below int"),
                  f"control: the same model with one path cut, per backbone ({', '.join(P.backbones)}); "
                  f"{len(abl_data.train):,} training rows"),
    results.claim("(a) the same on the synthetic order task, DHEN backbone", "task not in the paper", txt(flows_syn),
                  evidence.all_of([evidence.gap_verdict(p) for p in flows_syn], rule="every mode below int"),
                  "the task plants one signal per direction, both invisible to pooling"),
    results.claim("(b) keeping the full sequence beats compressing it early, by mean pooling, MLP or attention "
                  "(Fig. 3)", "avg pooling < MLP < MHA < InterFormer",
                  "real: " + txt(aggs_real) + " || synthetic: " + txt(aggs_syn),
                  evidence.all_of([evidence.gap_verdict(p) for p in aggs_real + aggs_syn], rule="every aggregation below full"),
                  "control: the same Interaction Arch and head fed an early summary"),
    results.claim("Each of PMA, recent tokens, gating, PFFN and self-attention helps (Fig. 5), real data",
                  "removing PMA up to -0.004 AUC, gating up to -0.003; the others less", txt(comps),
                  evidence.all_of([evidence.gap_verdict(p) for p in comps], rule="every component helps"),
                  "control: the full model with one component off"),
    results.claim("Attention is near-uniform in layer 1 and more focused later (Fig. 4)", "qualitative, TaobaoAd, 3 layers",
                  "layer-1 normalized entropy " + (f"{np.mean(h1):.3f}; " if h1 else "n/a; ") + p_entropy.text(3),
                  evidence.all_of([evidence.threshold_verdict(float(np.mean(h1)) if h1 else float("nan"), NEAR_UNIFORM,
                                                              ci=evidence.interval(h1) if len(h1) > 1 else None),
                                   evidence.gap_verdict(p_entropy, min_effect=0.02)]),
                  "focus: the layer-1 entropy minus the lowest later layer, >= 0.02 of the maximum for full credit "
                  "(our number); needs layers >= 2; " + f"{len(SEEDS)} seed(s)"),
    results.claim("Control: a mean-pooled model cannot see the synthetic order signals", "design check, not a paper claim",
                  f"mean-pooled DCNv2 AUC {pooled_auc.mean():.4f} vs pooled Bayes {syn.info['pooled_bayes_test']['auc']:.4f}; "
                  + syn_control.text(),
                  evidence.threshold_verdict(float(pooled_auc.mean()), POOLED_CEILING,
                                             ci=evidence.interval(pooled_auc) if len(pooled_auc) > 1 else None),
                  "if this fails, the synthetic ablations measure a leak, not the flows"),
    results.claim("Industrial: -0.15% NE and +24% QPS vs the internal model", "Meta Ads, 70B samples", "-",
                  evidence.not_tested("internal Meta data"), ""),
]
results.print_claims(claims)

# %% [markdown]
# ## What the paper leaves open, and what we chose
#
# - **Gating**: the equation reads `σ(Z ⊙ MLP(Z))`, the cited self-gating is `Z ⊙ σ(MLP(Z))`. Default `gating="self"`
#   (keeps the sign and scale of the summary; the printed form squashes it to (0, 1)); `gating="printed"` with
#   `gate_act` in sigmoid/tanh/identity gives the literal form.
# - **Residuals and LayerNorm**: not described. Default `norm="pre"`: pre-norm residual around the PFFN and the
#   attention, and `LayerNorm(X + MLP(...))` after the Interaction Arch; `norm="post"` and `"none"` are there.
# - **PFFN**: the appendix form `W = X_sumᵀ W_p` (linear in the summary) plus a shared static matrix; the `s2n`
#   ablation keeps only the static one, `no_pffn` drops the step.
# - **Which summaries the head reads**: Algorithm 1 as printed feeds the head layer L's summaries, leaving the last
#   updates unused. Default `head_summaries="final"` applies one more Cross Arch; `"last_layer"` is the literal reading.
# - **Dense features**: the paper maps all dense values to one token; the companion's shared embedding gives each its
#   own token (the same for every model here).
# - **Padding and positions**: RoPE positions count real events only and padded keys are masked, so output does not
#   depend on padding (a unit test checks this). PMA attends over CLS tokens plus events, so an empty history
#   still has a key. KuaiVideo's click and non-click histories are not aligned, yet MaskNet merges them position by
#   position as the paper's recipe implies.
# - **Heads, layers, width**: not given for the benchmarks; 2 heads, d and the layer count from the scale preset.
# - **Ablations**: the paper's figures give no bar values, no seeds and no details of its `sole`, MLP and MHA
#   aggregations. Ours: `sole` mean-pools the history into one token for the Interaction Arch; `agg:mlp` flattens the
#   `max_len` latest events through an MLP, `agg:attention` runs one RoPE self-attention layer and PMA; both give as
#   many tokens as InterFormer's sequence summary (8). The paper ran Fig. 2 on its three datasets; we run the three
#   backbones on the real data and DHEN on the synthetic task. To fit a laptop, the laptop preset trains the model
#   table on 20,000 of MovieLens' 80,367 training rows and the ablations on 12,000, for 2 epochs each, so small
#   component effects (the paper's are ≤ 0.004 AUC) may be below what 3 seeds can resolve: such a claim then reads
#   "inconclusive". On the synthetic task the models first memorize ids and find the order signals only after a
#   few epochs, and not on every seed, so its intervals are wide.
# - **Baselines**: DMIN and DMR follow their papers without the auxiliary losses (our trainer has one BCE loss, as
#   for DIEN); BARS-tuned configurations are not used, every baseline runs at width d with our defaults.
# - **Validation**: the BARS x1 splits have no validation file (BARS validated on test); we hold out 10% of training.
#   The best baseline is the one with the highest validation AUC (also when the trainer monitors gAUC).
# - **The BARS recipe** (`companion.data.bars.BARS_RECIPES`, read from the published BARS/FuxiCTR run logs): the
#   `paper` preset on a BARS dataset takes its embedding width, batch size, embedding regularizer and monitored
#   metric (gAUC, grouped by user, the column BARS declares as `meta`). AmazonElectronics_x1: width 64, batch 1,024,
#   embedding regularizer 0.005, gAUC (DNN, DCN, DCNv2, DeepFM, DIN and DIEN logs). TaobaoAd_x1: width 32, batch
#   8,192, gAUC (the DIN config); no regularizer in the recipe, so 0. KuaiVideo_x1: width 64, gAUC; the logs'
#   batch size (4,096 or 8,192) and regularizer (1e-4 or 5e-5) depend on the model, so this notebook's 2,048 and 0
#   stand. The regularizer is FuxiCTR's: (λ/2)·Σw² over the whole embedding tables at every step. One recipe for
#   every model, where BARS tuned each baseline separately; learning rate, epochs and layers stay ours. MovieLens has
#   no BARS recipe; the quick and laptop presets use none of it (no regularizer, AUC monitored).
# - **KuaiVideo's visual vectors**: the 64-d item vectors of `item_visual_emb_dim64.h5` are a frozen table (no
#   gradient, never regularized) read by the `item_emb` field and both histories' `_emb` copies, as in BARS; at a
#   width other than 64 a learned linear map projects them (FuxiCTR's `pretrain_usage: init` does the same).

# %%
ours_if = table.loc["InterFormer"]
results.save(
    SLUG,
    params=vars(P) | {"scale": scale, "seed": seed, "dataset": dataset, "seeds": SEEDS},
    metrics={"table": table.reset_index().to_dict("records"), "ablations": abl.reset_index().to_dict("records"),
             "runs": runs.to_dict("records"), "ablation_runs": pd.concat([abl_real.assign(data="real"), abl_syn.assign(data="synthetic")]).to_dict("records"),
             "attention_entropy": entropy, "synthetic_bayes_test": syn.info["bayes_test"],
             "synthetic_pooled_bayes_test": syn.info["pooled_bayes_test"], "data": data.summary()},
    claims=claims,
    headline={"InterFormer AUC": round(float(ours_if.auc), 4), "best baseline (validation)": best_base,
              "best baseline AUC": round(float(table.loc[best_base].auc), 4),
              "synthetic: full - sole AUC": round(gap_syn["sole/dhen"].mean, 4) if "sole/dhen" in gap_syn else None,
              "synthetic: mean-pooled DCNv2 AUC": round(float(pooled_auc.mean()), 4)},
)
