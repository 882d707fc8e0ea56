"""Figures for the point-cloud notebook: serialization orders, segmentations, per-class IoU, training, scaling."""
from __future__ import annotations

import numpy as np
import torch

from .. import plots
from .serialize import encode
from .sample import grid_sample


def _slab(room: dict, grid_size: float, z_lo: float, z_hi: float):
    coord = torch.from_numpy(room["coord"])
    gs = grid_sample(coord, grid_size)
    c = coord[gs.keep]
    keep = (c[:, 2] >= z_lo) & (c[:, 2] < z_hi)
    return c[keep].numpy(), gs.grid[keep]


def plot_orders(room: dict, orders, slug: str, grid_size: float = 0.1, z_range=(0.3, 0.8), path_points: int = 300):
    """Top-down view of a horizontal slab of a room, coloured by each point's rank along each curve.

    The black line joins the first ``path_points`` points in curve order: the curve's route through space.
    """
    xyz, grid = _slab(room, grid_size, *z_range)
    fig, axes = plots.figure(1, len(orders), figsize=(3.6 * len(orders), 3.6), sharey=True)
    for ax, name in zip(np.atleast_1d(axes), orders):
        if name == "random":
            rank = np.random.default_rng(0).permutation(len(xyz))
        else:
            rank = np.argsort(np.argsort(encode(grid, name).numpy(), kind="stable"), kind="stable")
        ax.scatter(xyz[:, 0], xyz[:, 1], c=rank, cmap="viridis", s=6, linewidths=0)
        first = np.argsort(rank)[:path_points]
        ax.plot(xyz[first, 0], xyz[first, 1], color="black", lw=0.7)
        ax.set_title(name)
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
    np.atleast_1d(axes)[0].set_ylabel("y (m)")
    fig.suptitle(f"rank along each order, slab z in {z_range} m (colour: early = dark)")
    return plots.save(fig, "serialization_orders", slug)


def plot_segmentation(pred: dict, class_names, slug: str, name: str = "segmentation", z_range=(0.1, 2.0)):
    """Ground truth beside prediction, top-down, only points between ``z_range`` (m above the floor) so
    the furniture is not hidden under the ceiling."""
    c, y, p = pred["coord"], pred["label"], pred["pred"]
    z = c[:, 2] - c[:, 2].min()
    top = (z > z_range[0]) & (z < z_range[1])
    fig, axes = plots.figure(1, 2, figsize=(10, 4.6), sharey=True)
    cmap = plots.plt.get_cmap("tab20", len(class_names))
    for ax, lab, title in zip(axes, (y, p), ("ground truth", "prediction")):
        ax.scatter(c[top, 0], c[top, 1], c=lab[top], cmap=cmap, vmin=-0.5, vmax=len(class_names) - 0.5, s=5, linewidths=0)
        ax.set_title(f"{title} ({z_range[0]}-{z_range[1]} m above the floor)")
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
    axes[0].set_ylabel("y (m)")
    handles = [plots.plt.Line2D([], [], marker="o", ls="", color=cmap(i), label=n) for i, n in enumerate(class_names)]
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    return plots.save(fig, name, slug)


def plot_per_class_iou(scores, class_names, slug: str):
    """Per-class IoU per model: ``scores`` has one row per (seed, model) with an ``iou`` list; bars are the
    mean over seeds, error bars the 95% interval over seeds (none with one seed). NaN (class absent) is dropped."""
    import pandas as pd
    import seaborn as sns

    df = pd.DataFrame([{"model": r["model"], "seed": r["seed"], "class": c, "IoU": iou}
                       for r in scores.to_dict("records") for c, iou in zip(class_names, r["iou"])]).dropna()
    fig, ax = plots.figure(figsize=(10, 3.6))
    sns.barplot(df, x="class", y="IoU", hue="model", ax=ax)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU on held-out rooms (fraction, 0-1)")
    ax.set_xlabel("class")
    ax.tick_params(axis="x", rotation=45)
    ax.set_title("per-class IoU on held-out rooms (mean over seeds, 95% interval)")
    return plots.save(fig, "per_class_iou", slug)


def plot_mixer_scaling(df, slug: str, name: str = "scaling"):
    """CPU time and peak memory of the mixer and the block against the number of tokens, log-log, with dashed
    guides of slope 1 (linear) and 2 (quadratic) through the smallest size's Mamba value."""
    import seaborn as sns
    from matplotlib.ticker import NullLocator

    d = df.assign(curve=df["component"] + ", " + df["mixer"])
    fig, axes = plots.figure(1, 2, figsize=(11.5, 4.2))
    for ax, col, ylabel in zip(axes, ("cpu_s", "peak_mib"), ("CPU time per forward (s, median)",
                                                             "peak memory allocated in the forward (MiB)")):
        sns.lineplot(d, x="tokens", y=col, hue="mixer", style="component", marker="o", ax=ax)
        x0 = d.tokens.min()
        y0 = d[(d.tokens == x0) & (d.mixer == "mamba") & (d.component == "mixer")][col].iloc[0]
        xs = np.array([x0, d.tokens.max()], float)
        for k, ls in ((1, "--"), (2, ":")):
            ax.plot(xs, y0 * (xs / x0) ** k, color="grey", ls=ls, lw=1, label=f"slope {k} guide")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ticks = sorted(d.tokens.unique())
        ax.set_xticks(ticks, [f"{t / 1000:.3g}k" for t in ticks], rotation=45)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("sequence length L (tokens = voxel points, log scale)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    axes[0].set_title("time: one global sequence, no patches")
    axes[1].set_title("memory: PyTorch's fused attention keeps no L x L matrix")
    return plots.save(fig, name, slug)


def plot_training(hist, slug: str, name: str = "training"):
    """Training loss and validation mIoU per epoch, one line per model (mean over seeds, band = spread)."""
    import seaborn as sns

    fig, axes = plots.figure(1, 2, figsize=(10, 3.5))
    sns.lineplot(hist, x="epoch", y="loss", hue="model", ax=axes[0], marker="o")
    sns.lineplot(hist, x="epoch", y="valid_miou", hue="model", ax=axes[1], marker="o")
    axes[0].set_ylabel("training loss (cross-entropy, nats)")
    axes[1].set_ylabel("validation mIoU (fraction, 0-1)")
    for ax in axes:
        ax.set_xlabel("epoch")
    return plots.save(fig, name, slug)
