"""Figures of the unidg notebook that take more than a few lines: a video's tracks on a time line, and
neighbourhood sizes per node."""
from __future__ import annotations

import numpy as np

from ..data.video_tracks import MODALITIES


def timeline(ax, video, max_characters: int = 12, minutes: float | None = None):
    """Each character's tracks as bars on a time line, one row per character and modality."""
    t = video.tracks
    lab = video.labels
    order = [c for c, _ in sorted(((c, (lab == c).sum()) for c in np.unique(lab)), key=lambda p: -p[1])][:max_characters]
    colours = dict(zip(MODALITIES, ("tab:blue", "tab:orange", "tab:green")))
    offsets = dict(zip(MODALITIES, (-0.25, 0.0, 0.25)))
    end = t.end.max() / 60 if minutes is None else minutes
    for row, c in enumerate(order):
        for m in MODALITIES:
            sel = t[(t.label == c) & (t.modality == m) & (t.start / 60 < end)]
            ax.broken_barh(list(zip(sel.start / 60, (sel.end - sel.start) / 60)), (row + offsets[m] - 0.1, 0.2),
                           color=colours[m], label=m if row == 0 else None)
    ax.set_yticks(range(len(order)), [f"char {c} ({'major' if c in video.info.get('major', []) else 'minor'})" for c in order])
    ax.set_xlim(0, end)
    ax.invert_yaxis()
    ax.set_xlabel("time in the video (minutes)")
    ax.legend(loc="lower right", fontsize=8)
    return order
