"""Progressive association: fuse per-modality clusters into characters through spatial and temporal context.

UniDG's abstract names the idea ("exploits spatial and temporal contexts among different modalities"); its rules
are not public. The reconstruction (points_video.md B5.4):

1. faces first (the most reliable cue): every face cluster is a character;
2. **spatial links**: a face track inside exactly one body box, that body box holding exactly one face, at
   overlapping times, links the two tracks; each body cluster joins every character that holds at least ``share``
   of its links (and ``min_links``), which also merges face clusters of one character that share a body cluster;
3. **temporal links**: a voice segment overlapping exactly one face with lip activity above ``lip_threshold``
   links to that face; voice clusters join characters by the same rule;
4. a cluster with no links joins the character whose centroid is most similar to its own if the cosine exceeds
   ``cross_threshold``, which only means something when all modalities share one space (the unified network);
   otherwise it stays a character of its own.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np


@dataclass
class AssociationConfig:
    share: float = 0.5
    min_links: int = 3
    merge: bool = False
    lip_threshold: float = 0.5
    overlap: float = 0.5
    cross_modal: bool = True
    cross_threshold: float = 0.5


def _overlap(a0, a1, b0, b1):
    return np.clip(np.minimum(a1[:, None], b1[None, :]) - np.maximum(a0[:, None], b0[None, :]), 0, None)


def spatial_links(tracks) -> np.ndarray:
    """(face row, body row) pairs of unambiguous face-inside-body containment at overlapping times."""
    t = tracks
    f = np.flatnonzero(t.modality.to_numpy() == "face")
    b = np.flatnonzero(t.modality.to_numpy() == "body")
    if not len(f) or not len(b):
        return np.zeros((0, 2), np.int64)
    F, B = t.iloc[f], t.iloc[b]
    ov = _overlap(F.start.to_numpy(), F.end.to_numpy(), B.start.to_numpy(), B.end.to_numpy())
    dur = np.maximum(F.end.to_numpy() - F.start.to_numpy(), 1e-6)
    cx = (F.x0.to_numpy() + F.x1.to_numpy()) / 2
    cy = (F.y0.to_numpy() + F.y1.to_numpy()) / 2
    inside = ((B.x0.to_numpy()[None] <= cx[:, None]) & (cx[:, None] <= B.x1.to_numpy()[None])
              & (B.y0.to_numpy()[None] <= cy[:, None])
              & (cy[:, None] <= (B.y0.to_numpy() + 0.5 * (B.y1.to_numpy() - B.y0.to_numpy()))[None]))
    cand = inside & (ov > 0.5 * dur[:, None])
    ok = cand & (cand.sum(1, keepdims=True) == 1) & (cand.sum(0, keepdims=True) == 1)
    i, j = np.nonzero(ok)
    return np.stack([f[i], b[j]], 1)


def temporal_links(tracks, lip_threshold: float = 0.5, overlap: float = 0.5) -> np.ndarray:
    """(voice row, face row) pairs: the voice overlaps exactly one face whose lips move."""
    t = tracks
    v = np.flatnonzero(t.modality.to_numpy() == "voice")
    f = np.flatnonzero(t.modality.to_numpy() == "face")
    if not len(v) or not len(f):
        return np.zeros((0, 2), np.int64)
    V, F = t.iloc[v], t.iloc[f]
    ov = _overlap(V.start.to_numpy(), V.end.to_numpy(), F.start.to_numpy(), F.end.to_numpy())
    dur = np.maximum(V.end.to_numpy() - V.start.to_numpy(), 1e-6)
    lip = np.nan_to_num(F.lip.to_numpy(float), nan=0.0)
    cand = (ov > overlap * dur[:, None]) & (lip[None] > lip_threshold)
    ok = cand & (cand.sum(1, keepdims=True) == 1)
    i, j = np.nonzero(ok)
    return np.stack([v[i], f[j]], 1)


def progressive(video, emb: np.ndarray, labels: np.ndarray, cfg: AssociationConfig = AssociationConfig()) -> dict:
    """Fuse per-modality cluster ``labels`` (one id per track row, distinct across modalities) into characters.

    Faces first: each face cluster starts a character. Then bodies, then voices: a linked track follows its link
    (links are far purer than clusters of the weaker modalities); the cluster's unlinked tracks follow the
    character most of its links point to (at least ``share`` of them); a cluster without links joins the most
    similar character centroid above ``cross_threshold`` (one shared space only) or starts a character. With
    ``merge``, a body cluster whose links point to several characters with at least ``share`` and ``min_links``
    each merges them (two face clusters of one character joined through the body): the "progressive" part.
    Returns the fused labels and counts of what each step did.
    """
    from .gcn import UnionFind

    t = video.tracks
    mod = t.modality.to_numpy()
    n = len(t)
    uf = UnionFind(n)  # over tracks; a character is a set
    placed = np.zeros(n, bool)
    faces = np.flatnonzero(mod == "face")
    for k in np.unique(labels[faces]):
        members = faces[labels[faces] == k]
        for r in members[1:]:
            uf.union(int(members[0]), int(r))
    placed[faces] = True
    log = {"face_clusters": int(len(np.unique(labels[faces])))}
    steps = (("body", spatial_links(t)[:, ::-1]), ("voice", temporal_links(t, cfg.lip_threshold, cfg.overlap)))
    for m, links in steps:
        rows = np.flatnonzero(mod == m)
        if not len(rows):
            continue
        target = dict(zip(links[:, 0].tolist(), links[:, 1].tolist()))  # track row -> linked face row
        voted = by_sim = new = merges = 0
        char_rows = np.flatnonzero(placed)
        if cfg.cross_modal and len(char_rows):
            roots = np.array([uf.find(int(r)) for r in char_rows])
            cids, cents = _centroids_by(emb[char_rows], roots)
        for k in np.unique(labels[rows]):
            members = rows[labels[rows] == k]
            linked = [r for r in members.tolist() if r in target]
            for r in linked:
                uf.union(r, int(target[r]))
            votes = Counter(uf.find(int(target[r])) for r in linked)
            total = sum(votes.values())
            rest = [r for r in members.tolist() if r not in target]
            if total:
                winner, count = votes.most_common(1)[0]
                if cfg.merge and m == "body":
                    strong = [c for c, v in votes.items() if v >= cfg.share * total and v >= cfg.min_links]
                    for c in strong[1:]:
                        uf.union(int(strong[0]), int(c))
                    merges += max(0, len(strong) - 1)
                if count >= cfg.share * total:
                    for r in rest:
                        uf.union(r, int(winner))
                    voted += 1
                    placed[members] = True
                    continue
            if rest and cfg.cross_modal and len(char_rows):
                c = emb[rest].mean(0)
                c = c / max(np.linalg.norm(c), 1e-12)
                sims = cents @ c
                if sims.max() > cfg.cross_threshold:
                    for r in rest:
                        uf.union(r, int(cids[int(sims.argmax())]))
                    by_sim += 1
                    placed[members] = True
                    continue
            for r in rest[1:]:
                uf.union(rest[0], r)
            new += 1
            placed[members] = True
        log[f"{m}_links"] = int(len(links))
        log[f"{m}_clusters_by_links"], log[f"{m}_clusters_by_similarity"], log[f"{m}_clusters_new"] = voted, by_sim, new
        log[f"{m}_character_merges"] = merges
    fused = np.array([uf.find(i) for i in range(n)])
    return {"labels": np.unique(fused, return_inverse=True)[1], "log": log}


def _centroids_by(emb, groups):
    ids = np.unique(groups)
    cents = np.stack([emb[groups == g].mean(0) for g in ids])
    return ids, cents / np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-12)


def link_accuracy(video) -> dict:
    """Share of spatial and temporal links that join tracks of one character (ground truth needed)."""
    lab = video.labels
    s, v = spatial_links(video.tracks), temporal_links(video.tracks)
    return {"spatial_links": len(s), "spatial_precision": float((lab[s[:, 0]] == lab[s[:, 1]]).mean()) if len(s) else float("nan"),
            "temporal_links": len(v), "temporal_precision": float((lab[v[:, 0]] == lab[v[:, 1]]).mean()) if len(v) else float("nan")}
