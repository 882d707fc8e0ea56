# %% [markdown]
# # Serialized Point Mamba: point clouds as sequences for a state-space model
#
# Tao Wang, Wei Wen, Jingzhi Zhai, Kang Xu, Haoming Luo. *Serialized Point Mamba: A Serialized Point Cloud
# Mamba Segmentation Model*. arXiv [2407.12319](https://arxiv.org/abs/2407.12319), 2024.
#
# A point cloud has no order, but a sequence model needs one. The paper sorts points along space-filling
# curves (z-order, Hilbert and their x/y-swapped variants), cuts the sorted sequence into equal-length pieces,
# and runs a bidirectional Mamba (a selective state-space model, linear in sequence length) on each piece,
# inside an encoder-decoder with grid pooling and a conditional positional encoding.
# The paper's body text and code are not public, so this notebook runs a reconstruction on the Point
# Transformer V3 skeleton (see "What the paper leaves open").
#
# This notebook shows:
# 1. what each serialization order looks like and how local it is;
# 2. semantic segmentation of indoor rooms (13 S3DIS classes) by the Mamba backbone, beside a
#    point-transformer baseline of similar size and the majority-class baseline, over several seeds;
# 3. CPU time and memory of the token mixer and of one block as the sequence grows from thousands to tens of
#    thousands of points, BiMamba against softmax attention (the paper's linear-complexity claim), and of
#    the whole segmenters.
#
# By default the rooms are procedural (exact labels, no download); `dataset="s3dis"` or `"scannet"` with
# `data_root` runs the same code on the real data.

# %% tags=["parameters"]
scale = "quick"  # quick|laptop|paper: preset for every knob left at None
seed = 0  # int: first seed; the run uses seed, seed+1, ... (each seed draws its own rooms and initialisation)
n_seeds = None  # int≥1≤1000: seeds per model (3 or more for a verdict on a comparison; fewer is inconclusive)
dataset = "rooms"  # rooms|s3dis|scannet: procedural rooms, or a real dataset read from data_root
data_root = ""  # str: S3DIS folder with Area_1..Area_6, or ScanNet scans/ folder (real datasets only)
n_rooms = None  # int≥4≤10000: procedural rooms per seed (train + valid + test)
room_points = None  # int≥500≤10000000: surface points sampled per procedural room
grid_size = None  # float>0: voxel size in metres (one point per voxel)
epochs = None  # int≥1≤100000: training epochs per model
batch_rooms = None  # int≥1≤1000: rooms per training step
lr = None  # float>0≤10: peak AdamW learning rate (one-cycle schedule)
channels = None  # list: encoder channels per stage
depths = None  # list: encoder blocks per stage
patch_size = None  # int≥8≤100000: points per serialized patch (Mamba window)
d_state = None  # int≥1≤1000: Mamba state size N
train_budget_s = None  # float>0: CPU-seconds cap per model's training (stops early and says so; None: no cap)
scaling_tokens = None  # list: sequence lengths L for timing the mixer and one block alone
scaling_width = None  # int≥8≤1000: channels of the mixer/block in the scaling scan (same for attention and BiMamba)
scaling_repeats = None  # int≥1≤1000: timed repeats per size (the median is kept; one untimed warm-up before)
scaling_cap_s = None  # float>0: stop timing a mixer at larger L once its median CPU time passes this (None: no cap)
backbone_points = None  # list: scene sizes (voxel points) for timing the whole trained-size segmenters
scene_points_per_m2 = 200.0  # float>0: surface sampling density of the scaling scenes (fixed as they grow)
scene_grid = 0.1  # float>0: voxel size in metres of the scaling scenes
recompute_mixer = None  # bool: recompute each BiMamba in backward, one direction and a few thousand tokens at a time (saved training memory below attention's, one more mixer forward)
threads = 1  # int≥1≤256: intra-op torch threads (1 is fastest for room-sized clouds on a small CPU)

# %%
import numpy as np
import pandas as pd
import torch

import companion.params
from companion import evidence, plots, results
from companion.models.point_backbone import build_segmenter, count_parameters
from companion.points import ORDERS, encode, locality, grid_sample
from companion.points import plots as pplots
from companion.points.experiment import benchmark_evidence, load_split, on_par_evidence, seed_runs, split_description
from companion.points.profile import backbone_scaling, exponent_gap, mixer_scaling, slopes
from companion.points.train import SegConfig, feature_channels, predict_room
from companion.data import rooms as roomgen
from companion.runtime import seed_everything

SLUG = "serialized_point_mamba"
PRESETS = {
    "quick": dict(n_seeds=3, n_rooms=8, room_points=2000, grid_size=0.1, epochs=3, batch_rooms=2, lr=0.006,
                  channels=[16, 32, 48], depths=[1, 1, 1], patch_size=256, d_state=8, train_budget_s=None,
                  scaling_tokens=[2000, 2828, 4000, 5657, 8000, 11314], scaling_width=32, scaling_repeats=3,
                  scaling_cap_s=None, backbone_points=[4000], recompute_mixer=True),
    "laptop": dict(n_seeds=3, n_rooms=12, room_points=4000, grid_size=0.08, epochs=6, batch_rooms=2, lr=0.005,
                   channels=[24, 48, 64, 96], depths=[1, 1, 1, 1], patch_size=1024, d_state=16, train_budget_s=300.0,
                   scaling_tokens=[2000, 2828, 4000, 5657, 8000, 11314, 16000, 32000, 65536], scaling_width=32,
                   scaling_repeats=5, scaling_cap_s=20.0, backbone_points=[8000, 16000], recompute_mixer=True),
    "paper": dict(n_seeds=3, n_rooms=272, room_points=200000, grid_size=0.02, epochs=3000, batch_rooms=12, lr=0.006,
                  channels=[32, 64, 128, 256, 512], depths=[2, 2, 2, 6, 2], patch_size=4096, d_state=16,
                  train_budget_s=None, scaling_tokens=[4096, 16384, 65536, 262144], scaling_width=64,
                  scaling_repeats=5, scaling_cap_s=60.0, backbone_points=[16000, 64000, 256000], recompute_mixer=True),
}
P = companion.params.resolve(PRESETS, scale, globals())
SEEDS = [seed + r for r in range(P.n_seeds)]
seed_everything(seed)
torch.set_num_threads(threads)

# %% [markdown]
# ## Data
# Procedural rooms: floor, ceiling, walls with windows, a door and a board, beams, columns, tables with
# chairs, a sofa, bookcases and clutter, each surface sampled with colour noise. Every seed draws its own
# rooms, split into train / valid / test by index, so the test rooms are never seen in training. On ScanNet the
# official `scannetv2_train.txt` / `scannetv2_val.txt` lists decide the split when they lie in `data_root` or its
# parent (val is then the test set, as in the paper's val mIoU); without them the scenes are re-split by name and
# the line below says that no number is comparable. S3DIS holds out Area 5.

# %%
splits = {s: load_split(dataset, s, P.n_rooms, P.room_points, data_root) for s in SEEDS}
SPLIT = split_description(dataset, data_root, P.n_rooms)
print("split that ran:", SPLIT)
train_rooms, valid_rooms, test_rooms, CLASSES = splits[seed]
NUM_CLASSES = len(CLASSES)
FEATURES = ("color", "normal") if all("normal" in r for r in train_rooms) else ("color",)
CFG = SegConfig(epochs=P.epochs, batch_rooms=P.batch_rooms, lr=P.lr, grid_size=P.grid_size, features=FEATURES,
                seed=seed, max_seconds=P.train_budget_s, threads=threads)
freq = roomgen.class_frequencies(train_rooms, NUM_CLASSES)
print(f"per seed: {len(train_rooms)} train / {len(valid_rooms)} valid / {len(test_rooms)} test rooms, "
      f"{np.mean([len(r['coord']) for r in train_rooms]):.0f} raw points per room; seeds {SEEDS}")
print(pd.Series(freq, index=CLASSES).round(3).to_string())

# %% [markdown]
# ## Serialization: four curves through the same room
# Each voxel gets an integer code from its grid cell; sorting by the code is the serialization. Z-order
# interleaves the bits of x, y and z; Hilbert is a continuous curve (consecutive cells always touch);
# the `-trans` variants swap x and y first. Below, the floor of a room seen from above, coloured by rank
# along each curve, with the route of the first 400 points drawn in black; `random` is the order a file gives.
# Each curve visits the room block by block; they differ in which blocks come first and how they connect.

# %%
picture_room = roomgen.make_room(seed, n_points=40000)  # a dense room, so the floor is a full sheet of cells
pplots.plot_orders(picture_room, ("random",) + ORDERS, SLUG, grid_size=0.1, z_range=(-0.1, 0.06), path_points=400);

# %% [markdown]
# **Locality.** For a sequence model, neighbours in the sequence should be neighbours in space. We measure
# the mean distance between consecutive points and the mean radius of windows of 64 consecutive points.

# %%
coord = torch.from_numpy(test_rooms[0]["coord"])
gs = grid_sample(coord, P.grid_size)
orders_to_check = {"random": torch.randperm(len(gs.keep), generator=torch.Generator().manual_seed(seed))}
orders_to_check |= {o: torch.argsort(encode(gs.grid, o)) for o in ORDERS}
loc = pd.DataFrame({o: locality(coord[gs.keep], idx) for o, idx in orders_to_check.items()}).T
print(loc.round(3).to_string())

# %% [markdown]
# ## Models
# Both share the same U-Net: a sparse 3x3x3 convolution stem, stages of blocks
# (CPE -> pre-norm mixer -> MLP), stride-2 grid pooling by code shift, unpooling with skip connections.
# The mixer is a **bidirectional Mamba** on serialized patches (ours, Serialized Point Mamba) or **softmax
# attention** on the same patches (the PTv3-style point-transformer baseline). Blocks cycle through the four
# orders, shuffled each forward pass during training; the deepest stage runs one global sequence per room.

# %%
net = dict(channels=P.channels, depths=P.depths, d_state=P.d_state, patch_size=P.patch_size,
           recompute_mixer=P.recompute_mixer)
builders = {"serialized point mamba": lambda s: build_segmenter(feature_channels(FEATURES), NUM_CLASSES,
                                                                mixer="mamba", seed=s, **net),
            "point transformer (baseline)": lambda s: build_segmenter(feature_channels(FEATURES), NUM_CLASSES,
                                                                      mixer="attention", seed=s, **net)}
print({k: f"{count_parameters(b(seed)) / 1e6:.3f} M parameters" for k, b in builders.items()})

# %% [markdown]
# ## Training, one run per seed and model
# AdamW with a one-cycle cosine schedule and cross-entropy, random rotation/scale/flip/jitter and colour
# augmentation, rooms voxelised afresh every step. Validation mIoU is tracked each epoch; the test rooms are
# scored once at the end. The majority-class baseline predicts the most frequent training class everywhere.

# %%
scores, fits, models = seed_runs(splits, builders, CFG, NUM_CLASSES)
print(scores.drop(columns="iou").round(3).to_string(index=False))
print(scores.groupby("model")[["miou", "oa", "macc"]].agg(["mean", "std"]).round(3).to_string())

# %%
hist = pd.concat([pd.DataFrame(r.history).assign(model=n, seed=s) for (s, n), r in fits.items()])
pplots.plot_training(hist, SLUG);

# %% [markdown]
# ## Held-out rooms
# mIoU averages the per-class intersection-over-union over the classes present in the test rooms.

# %%
pplots.plot_per_class_iou(scores[scores.model != "majority class"], CLASSES, SLUG);

# %%
pplots.plot_segmentation(predict_room(models[seed, "serialized point mamba"], test_rooms[0], CFG), CLASSES, SLUG);

# %% [markdown]
# ## Cost as the sequence grows: the mixer and one block alone
# The paper's efficiency argument: a state-space scan costs time linear in the sequence length L, softmax
# attention over the same sequence quadratic. Whole segmenters hide that (grid pooling shrinks the sequence,
# convolutions and MLPs are linear whatever the mixer), so we time the **token mixer alone** (BiMamba vs
# multi-head softmax attention, same width) and **one block** (CPE -> mixer -> MLP) on one global sequence of
# L tokens. The tokens come from a scene that **grows at fixed density** (rooms added side by side, each
# sampled at `scene_points_per_m2` and voxelised at `scene_grid`), so a larger L means a bigger building, not
# a denser room. Time is **CPU time** of this process (robust to other jobs on a shared machine), the median
# of `scaling_repeats` runs after a warm-up (the warm-up also records the peak memory). Attention uses PyTorch's fused kernel, which never stores the
# L x L matrix, so its memory stays linear and only its time can show the quadratic term.

# %%
scan = mixer_scaling(P.scaling_tokens, channels=P.scaling_width, d_state=P.d_state, repeats=P.scaling_repeats,
                     grid_size=scene_grid, points_per_m2=scene_points_per_m2, seed=seed, threads=threads,
                     max_seconds=P.scaling_cap_s)
time_slopes, mem_slopes = slopes(scan, "cpu_s"), slopes(scan, "peak_mib")
gap = {c: exponent_gap(scan, c) for c in ("mixer", "block")}
print(scan.drop(columns=["repeats"]).round(4).to_string(index=False))
print("capped (stopped at larger L):", scan.attrs["capped"] or "none")
print("CPU-time slopes (log-log, 95% t interval):")
print(time_slopes.round(3).to_string(index=False))
print("peak-memory slopes:")
print(mem_slopes.round(3).to_string(index=False))
print({c: f"attention minus BiMamba exponent {g['slope']:.2f} [{g['lo']:.2f}, {g['hi']:.2f}]" for c, g in gap.items()})
pplots.plot_mixer_scaling(scan, SLUG);

# %% [markdown]
# How to read this: a slope near 1 is linear, near 2 quadratic. At small L both mixers pay fixed per-call
# costs (Python dispatch, the scan's about 3 sqrt(L) vectorised steps), which pulls the fitted slopes below
# their asymptotes; the block adds the CPE and the MLP, linear for both, so the block's gap is smaller than
# the mixer's. The memory panel is what each forward allocates: attention's fused kernel keeps no L x L
# matrix, and without gradients our scan processes the sequence in cache-sized pieces, so both stay linear
# or below; training memory is another matter (see the whole-segmenter table below).

# %% [markdown]
# **Density check.** The scaling scenes keep their density as they grow: voxel points per m2 of floor
# footprint at each size (a denser-room generator would multiply this by the size ratio).

# %%
print(scan.groupby("tokens")[["rooms", "cells_per_m2"]].first().round(1).to_string())

# %% [markdown]
# ## The whole segmenters at their trained size
# The two trained-size U-Nets (patched BiMamba with a global last stage, patched attention) on scenes of
# `backbone_points` voxel points: inference CPU time, peak memory of the forward, and the activation memory
# autograd keeps for training.

# %%
bb_models = {n: b(seed) for n, b in builders.items()}
backbone = backbone_scaling(bb_models, P.backbone_points, repeats=P.scaling_repeats, grid_size=scene_grid,
                            points_per_m2=scene_points_per_m2, seed=seed, threads=threads,
                            in_channels=feature_channels(FEATURES))
print(backbone.drop(columns="cpu_times").round(3).to_string(index=False))

# %% [markdown]
# ## Paper vs. this run
# The paper's numbers are for ScanNet v2 val and S3DIS Area 5 with full-size models trained for hundreds of
# GPU epochs; ours are for the scale stated below. Every verdict comes from `companion.evidence` with its rule
# and the control it is measured against: the majority-class baseline and the attention backbone trained on
# the same seeds, attention timed the same way as BiMamba (if attention did not come out super-linear, the
# scan could not tell linear from quadratic).

# %%
by_model = {m: d.set_index("seed")["miou"].to_dict() for m, d in scores.groupby("model")}
spm_miou, ptb_miou, maj_miou = (by_model[k] for k in ("serialized point mamba", "point transformer (baseline)", "majority class"))
vs_majority = evidence.paired(spm_miou, maj_miou, metric="test mIoU", names=("SPM", "majority class"))
vs_attention = evidence.paired(spm_miou, ptb_miou, metric="test mIoU", names=("SPM", "attention baseline"))
where = f"{dataset} at scale={scale} ({len(train_rooms)} train rooms per seed, grid {P.grid_size} m, {len(SEEDS)} seeds)"
ts = time_slopes.set_index(["component", "mixer"])
ms = mem_slopes.set_index(["component", "mixer"])
L_lo, L_hi = min(P.scaling_tokens), int(scan.tokens.max())
big = backbone[backbone.points == backbone.points.max()].set_index("model")
train_mem_ratio = float(big.loc["serialized point mamba", "train_memory_mib"] / big.loc["point transformer (baseline)", "train_memory_mib"])
lat_ratio = np.array(big.loc["serialized point mamba", "cpu_times"]) / np.array(big.loc["point transformer (baseline)", "cpu_times"])

TH = {  # every threshold with its source; the verdicts below only apply them
    "scannet": evidence.Threshold(76.8, "at_least", 1.0, unit="mIoU", source="paper abstract (ScanNet v2 val); "
                                  "tolerance 1 mIoU is ours, about 3x the 0.3 gap between two published S3DIS figures"),
    "s3dis": evidence.Threshold(70.3, "at_least", 1.0, unit="mIoU", source="paper abstract (S3DIS Area 5; HybridTM's "
                                "table lists 70.6); tolerance 1 mIoU is ours, about 3x that 0.3 discrepancy"),
    "on_par": evidence.Threshold(-0.007, "near", 0.03, unit="mIoU", source="paper: SPM 76.8 vs PTv3 77.5 on ScanNet "
                                 "(gap -0.7 points) called on par; +-3 points is ours, for small models trained minutes"),
    "linear": evidence.Threshold(1.2, "at_most", 0.2, source="linear cost is a log-log slope of 1; 0.2 allows for "
                                 "per-call overheads at small L (ours); up to 1.4 counts as partly"),
    "gap": evidence.Threshold(0.5, "at_least", 0.2, source="quadratic minus linear is an exponent gap of 1; half of "
                              "it is required (ours), 0.3 as partly"),
    "memory": evidence.Threshold(2.0, "at_most", 1.0, unit="x", source="Mamba / attention training (saved-activation) "
                                 "memory of the whole segmenter; within 2x read as 'reasonable' (ours, no paper number), "
                                 "up to 3x as partly"),
    "latency": evidence.Threshold(1.0, "at_most", 0.25, unit="x", source="Mamba / attention CPU time of the whole "
                                  "segmenter; parity or better is the claim, up to 1.25x as partly (ours)"),
}
bench = {b: benchmark_evidence(b, dataset, [100 * v for v in spm_miou.values()], TH[b]) for b in ("scannet", "s3dis")}
claims = [
    results.claim("ScanNet v2 val mIoU", 76.8, bench["scannet"].detail.get("value"), bench["scannet"],
                  f"mean test mIoU over {len(SEEDS)} seeds when dataset='scannet'; the paper's model is full size, trained on GPUs; "
                  f"split: {SPLIT}"),
    results.claim("S3DIS Area 5 mIoU", 70.3, bench["s3dis"].detail.get("value"), bench["s3dis"],
                  f"mean test mIoU over {len(SEEDS)} seeds when dataset='s3dis'; a model smaller than the paper's is expected to fall short; "
                  f"split: {SPLIT}"),
    results.claim("ScanNet v2 instance segmentation mAP", 40.0, None, evidence.not_tested("no instance head here")),
    results.claim(f"the Mamba backbone segments rooms well above the majority baseline ({where})", None,
                  vs_majority.text(3), evidence.gap_verdict(vs_majority, min_effect=0.1),
                  "control: predicting the most frequent training class; 0.1 mIoU as the least 'well above' (ours)"),
    results.claim("accuracy on par with attention-based point transformers (SPM 76.8 vs PTv3 77.5 on ScanNet)",
                  "-0.7 mIoU", vs_attention.text(3),
                  on_par_evidence(vs_attention, TH["on_par"]),
                  f"control: the PTv3-style attention backbone, same skeleton, seeds and budget; {where}"),
    results.claim("linear complexity in the number of points (time of the mixer and of one block)", "linear",
                  f"BiMamba CPU-time slope: mixer {ts.loc[('mixer', 'mamba'), 'slope']:.2f} "
                  f"[{ts.loc[('mixer', 'mamba'), 'lo']:.2f}, {ts.loc[('mixer', 'mamba'), 'hi']:.2f}], block "
                  f"{ts.loc[('block', 'mamba'), 'slope']:.2f} [{ts.loc[('block', 'mamba'), 'lo']:.2f}, "
                  f"{ts.loc[('block', 'mamba'), 'hi']:.2f}]",
                  evidence.all_of([evidence.threshold_verdict(ts.loc[(c, "mamba"), "slope"], TH["linear"],
                                                              ci=(ts.loc[(c, "mamba"), "lo"], ts.loc[(c, "mamba"), "hi"]))
                                   for c in ("mixer", "block")]),
                  f"L = {L_lo}-{L_hi} tokens, one global sequence, width {P.scaling_width}, CPU time, pure-PyTorch scan"),
    results.claim("linear where attention is quadratic: BiMamba's exponent clearly below attention's", "1 vs 2",
                  f"attention minus BiMamba exponent: mixer {gap['mixer']['slope']:.2f} [{gap['mixer']['lo']:.2f}, "
                  f"{gap['mixer']['hi']:.2f}], block {gap['block']['slope']:.2f} [{gap['block']['lo']:.2f}, "
                  f"{gap['block']['hi']:.2f}]; attention's own slope (mixer) {ts.loc[('mixer', 'attention'), 'slope']:.2f}",
                  evidence.all_of([evidence.threshold_verdict(gap[c]["slope"], TH["gap"], ci=(gap[c]["lo"], gap[c]["hi"]))
                                   for c in ("mixer", "block")]),
                  "control: attention timed the same way on the same tokens; the gap is the slope of the paired time "
                  "ratio, so its interval is paired by size"),
    results.claim("lowest latency among Mamba-based point segmenters", "lowest (no numbers public)", None,
                  evidence.not_tested("no other Mamba segmenter (PointMamba, PCM, Pamba...) is built here")),
    results.claim("latency of the whole segmenter at most that of the attention baseline (same skeleton)",
                  "not a paper number", f"Mamba / attention CPU time {np.median(lat_ratio):.2f}x at "
                  f"{int(backbone.points.max())} points ({big.loc['serialized point mamba', 'cpu_s']:.3f} s vs "
                  f"{big.loc['point transformer (baseline)', 'cpu_s']:.3f} s)",
                  evidence.threshold_verdict(float(np.median(lat_ratio)), TH["latency"], ci=evidence.interval(lat_ratio)),
                  "the paper's latency is CUDA kernels on a GPU; here a pure-PyTorch CPU scan against PyTorch's fused "
                  "CPU attention; interval over timing repeats (measurement noise only)"),
    results.claim("reasonable memory use", "reasonable (no numbers public)",
                  f"BiMamba peak-memory slope (mixer, inference) {ms.loc[('mixer', 'mamba'), 'slope']:.2f} "
                  f"[{ms.loc[('mixer', 'mamba'), 'lo']:.2f}, {ms.loc[('mixer', 'mamba'), 'hi']:.2f}]; at L={L_hi}: "
                  f"{scan[(scan.tokens == L_hi) & (scan.component == 'mixer')].set_index('mixer')['peak_mib'].round(0).to_dict()} MiB; "
                  f"training memory of the segmenters at {int(backbone.points.max())} points "
                  f"{big['train_memory_mib'].round(0).to_dict()} MiB ({train_mem_ratio:.1f}x)",
                  evidence.all_of([evidence.threshold_verdict(ms.loc[("mixer", "mamba"), "slope"], TH["linear"],
                                                              ci=(ms.loc[("mixer", "mamba"), "lo"], ms.loc[("mixer", "mamba"), "hi"])),
                                   evidence.threshold_verdict(train_mem_ratio, TH["memory"])]),
                  "'reasonable' has no number in the paper: read as memory linear in L and training memory within 2x of "
                  "the attention baseline's; the checkpointed pure-PyTorch scan keeps one state per group of at most 2,048 steps, "
                  f"and recompute_mixer={P.recompute_mixer} says whether the mixers' projections are recomputed too"),
]
results.print_claims(claims)

# %% [markdown]
# ## What the paper leaves open
# Only the abstract and third-party summaries of the paper could be read; no code is public. Choices made here:
# - **Skeleton**: Point Transformer V3's U-Net (CPE -> mixer -> MLP blocks, stride-2 grid pooling by code
#   shift, unpooling with skips), with the attention replaced by a bidirectional Mamba; channels and depths
#   are scaled down per preset (PTv3's are 32-512 and 2-2-2-6-2 at `scale="paper"`).
# - **Bidirectional Mamba**: two independent Mamba mixers, one over the reversed sequence, outputs summed
#   (as in the closest public sibling, HybridTM); d_state 16 (8 at quick scale), d_conv 4, expand 2.
# - **Patches**: windows of `patch_size` points (4,096 at paper scale, as in HybridTM); a long room's last
#   patch is filled with points of the patch before it (PTv3's rule, which the paper's summaries describe);
#   a room shorter than a patch is masked instead, which gives exactly the unpadded result. The deepest
#   stage runs one global sequence per room.
# - **Orders**: z, z-trans, Hilbert, Hilbert-trans; block i of a stage uses order i mod 4, shuffled per pass.
# - **CPE**: a 3x3x3 submanifold sparse convolution written in PyTorch (a hashed neighbour lookup), then
#   Linear + LayerNorm, as in PTv3's xCPE. Input features: colour and normal (colour only for S3DIS).
# - **Training**: AdamW + one-cycle cosine, cross-entropy only (no Lovasz term), no test-time augmentation;
#   scored on the voxelised points.
# - **Data**: procedural rooms with the S3DIS classes stand in for S3DIS/ScanNet unless `data_root` is given.
#   ScanNet uses the official val split as its test set when `scannetv2_train.txt` / `scannetv2_val.txt` lie in
#   `data_root` or its parent; otherwise the scenes are re-split by name and the run prints that its mIoU is not
#   comparable with the paper's val number.
#
# ## Where this run differs from the paper's measurements
# - **Cost is measured on CPU**, as CPU time of this process, with a pure-PyTorch scan (a two-level chunked
#   parallel scan) against PyTorch's fused CPU attention. The paper times CUDA kernels (mamba-ssm's selective
#   scan, flash attention) on a GPU, where constants and memory behaviour differ: the paper's "lowest latency"
#   cannot be read off these numbers, only the growth exponents can. mamba-ssm's fused CUDA kernel is not used
#   on CPU (it is CUDA-only); on a GPU with mamba-ssm installed the same module calls it.
# - **The complexity claim is checked on the mixer and one block alone**, over one global sequence, because a
#   whole segmenter patches its sequences (PTv3-style windows are linear for attention too) and shrinks them by
#   grid pooling. The whole segmenters are timed as well, as a separate check that is not a paper number.
# - **The scan is checkpointed in groups**: for training it keeps only the state entering each group of at most
#   2,048 steps (and its inputs) and recomputes one group at a time in backward, running the gradient's reversed
#   recurrence from the group after it; same values as keeping every state, to float precision. mamba-ssm's
#   kernel recomputes the states in backward too, but from registers on chip and in one fused pass; ours
#   holds a (batch, group, d_inner, d_state) working set in memory, at most 2^20 floats per buffer (the group
#   is shortened so that a batch of patches fits one buffer).
#   `recompute_mixer=True` (every preset) also drops the mixers' projections, convolution and gates, recomputed
#   in backward one direction and about 4,096 tokens at a time, at the cost of one more mixer forward. Measured by
#   `benchmarks/bench_points.py` with the laptop-size U-Net, one training step at 16,000 points: saved memory
#   262 MiB and peak 283 MiB, against 549 / 553 MiB without the recompute and 287 / 300 MiB for attention; at
#   4,000 points the saved memory is below attention's (68 vs 75 MiB) but the peak is not (86 vs 76 MiB), since
#   one recomputed piece's working set (about 19 MiB) is larger than that gap.
# - **Serialization depth**: the cube's depth is the bit length of (largest grid coordinate + 1), Pointcept's
#   rule (`Point.serialization`), one bit more than needed when the largest coordinate is 2^k - 1. That extra
#   bit leaves z-order unchanged but flips the Hilbert curve's orientation, so with this rule our four orders
#   are Pointcept's (checked code for code against an independent implementation of its definition).
# - **Scaling scenes** are buildings of procedural rooms at a fixed surface density, cut to exactly L voxel
#   points (a z-order prefix); token features are random, since cost does not depend on their values.
# - **Seeds**: every seed redraws the rooms and the initialisation; comparisons are paired by seed with a t
#   interval, and fewer than 3 seeds are inconclusive by rule.

# %%
results.save(
    SLUG,
    params=vars(P) | {"scale": scale, "seed": seed, "seeds": SEEDS, "dataset": dataset, "threads": threads,
                      "scene_points_per_m2": scene_points_per_m2, "scene_grid": scene_grid, "split": SPLIT},
    metrics={"test": scores.to_dict("records"),
             "parameters": {n: count_parameters(b(seed)) for n, b in builders.items()},
             "locality": loc.to_dict(), "mixer_scaling": scan.to_dict("records"), "scaling_capped": scan.attrs["capped"],
             "time_slopes": time_slopes.to_dict("records"), "memory_slopes": mem_slopes.to_dict("records"),
             "exponent_gap": gap, "backbone_scaling": backbone.to_dict("records")},
    claims=claims,
    headline={"SPM test mIoU (mean over seeds)": float(np.mean(list(spm_miou.values()))),
              "attention baseline mIoU (mean over seeds)": float(np.mean(list(ptb_miou.values()))),
              "majority mIoU (mean over seeds)": float(np.mean(list(maj_miou.values())))},
)
