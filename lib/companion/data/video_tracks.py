"""Character tracks of long videos: a synthetic generator with known identities, and the on-disk format
(two parquet files) through which users bring their own extracted features.

**The task** (UniDG's "temporal character grouping"): a video yields face tracks, body tracks and voice segments;
group them by character so that each character's moments on screen (and on the sound track) are found.

**The generator.** A *world* fixes how a latent identity becomes an observed feature in each modality: for each of
face, body and voice a fixed random two-layer map g_m (tanh) of ``W_m z + A_m s + B_m p`` plus Gaussian noise, where
z is the character's identity vector, s a nuisance shared by everything in a shot (scene lighting and background
for faces and bodies, the recording channel for voices), and p a per-track nuisance (pose; for bodies also the
outfit, which changes between blocks of scenes). Training and test *episodes* (videos) share one world but draw
new characters, as face-clustering benchmarks train and test on disjoint identities. In an episode:

* characters have a long-tailed screen share: a few major characters and many minor ones with a few tracks each;
* the video is a sequence of shots; each shot holds 1-4 characters standing side by side in the frame;
* every present character has a body track (missing with ``p_body_missing``: occluded) and a face track inside it
  (missing with ``p_face_missing``: turned away), the face box inside the body box: the **spatial link**;
* dialogue turns split each shot; a speaking character's voice segment overlaps its face track, whose lip activity
  is high: the **temporal link**; a character is silent in a shot with ``p_silent``.

**On disk** (``write_video_tracks`` / ``read_video_tracks``), a folder with two files:

``tracks.parquet``, one row per track:

============  =========  =====================================================================
column        type       meaning
============  =========  =====================================================================
video_id      string     the video (episode) the track belongs to
track_id      int64      unique within its video
modality      string     ``face``, ``body`` or ``voice``
start, end    float64    seconds from the start of the video, ``end >= start``
shot          int64      shot index (used for nothing but display; may be all 0)
x0,y0,x1,y1   float64    the track's median box in frame fractions (face and body; null for voice)
lip           float64    lip activity in [0, 1] for faces (null when unknown; null for body/voice)
label         int64      character id, -1 when unknown (optional column: absent means all unknown)
============  =========  =====================================================================

``features.parquet``, one row per track: ``video_id`` (string), ``track_id`` (int64), ``feature``
(list of float32: the track's embedding or raw descriptor, the same length for every track of a modality).

``read_video_tracks`` checks both files and raises :class:`~companion.data.errors.DataFormatError` naming the file,
the column and the first bad row; nothing is skipped silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataFormatError, MissingDataError

MODALITIES = ("face", "body", "voice")
TRACK_COLUMNS = {"video_id": "string", "track_id": "int", "modality": "string", "start": "float", "end": "float",
                 "shot": "int", "x0": "float", "y0": "float", "x1": "float", "y1": "float", "lip": "float"}
OPTIONAL_COLUMNS = {"label": "int"}


@dataclass
class VideoTracks:
    """One video: the track table (rows ordered by ``track_id``) and one feature matrix per modality.

    ``features[m]`` has one row per track of modality ``m``, in the order of ``tracks[tracks.modality == m]``.
    """
    video_id: str
    tracks: pd.DataFrame
    features: dict
    info: dict = field(default_factory=dict)

    def rows(self, modality: str) -> np.ndarray:
        """Positions (into ``tracks``) of the tracks of one modality, in feature-row order."""
        return np.flatnonzero(self.tracks.modality.to_numpy() == modality)

    @property
    def labels(self) -> np.ndarray:
        return self.tracks.label.to_numpy() if "label" in self.tracks else np.full(len(self.tracks), -1)

    def summary(self) -> dict:
        t = self.tracks
        lab = self.labels
        out = {"video": self.video_id, "tracks": len(t), "minutes": round(float(t.end.max()) / 60, 1)}
        for m in MODALITIES:
            out[m] = int((t.modality == m).sum())
        out["characters"] = int(len(np.unique(lab[lab >= 0])))
        return out


# ---------------------------------------------------------------------------------------------------------------
# the synthetic world and its episodes


@dataclass
class World:
    """Fixed maps from identity and nuisance to observed features, shared by all episodes drawn from it."""
    seed: int
    d_id: int
    dims: dict
    maps: dict
    noise: dict
    nuisance: dict

    def observe(self, modality: str, z: np.ndarray, scene: np.ndarray, pose: np.ndarray, rng) -> np.ndarray:
        m = self.maps[modality]
        h = z @ m["W"] + self.nuisance[modality] * (scene @ m["A"] + pose @ m["B"])
        x = np.tanh(h) @ m["V"] + self.noise[modality] * rng.standard_normal((len(z), self.dims[modality]))
        return x.astype(np.float32)


def make_world(seed: int = 0, d_id: int = 16, dims: dict | None = None, noise: dict | None = None,
               nuisance: dict | None = None, d_nuisance: int = 8) -> World:
    """A world of modality maps. Default noise makes voices the weakest cue and bodies weaker than faces."""
    rng = np.random.default_rng([seed, 7])
    dims = dims or {"face": 64, "body": 64, "voice": 32}
    noise = {"face": 0.35, "body": 0.5, "voice": 0.7, **(noise or {})}
    nuisance = {"face": 0.8, "body": 1.0, "voice": 1.0, **(nuisance or {})}
    maps = {}
    hidden = 48
    for m in MODALITIES:
        maps[m] = {"W": rng.standard_normal((d_id, hidden)) / np.sqrt(d_id),
                   "A": rng.standard_normal((d_nuisance, hidden)) / np.sqrt(d_nuisance),
                   "B": rng.standard_normal((d_nuisance, hidden)) / np.sqrt(d_nuisance),
                   "V": rng.standard_normal((hidden, dims[m])) / np.sqrt(hidden)}
    return World(seed, d_id, dims, maps, noise, nuisance)


def _screen_shares(rng, n_major: int, n_minor: int) -> np.ndarray:
    """Long tail: major characters share most of the screen time, minor ones a Zipf-like remainder."""
    major = rng.uniform(0.6, 1.0, n_major) * 8.0
    minor = 1.0 / np.arange(1, n_minor + 1) ** 0.7 * rng.uniform(0.5, 1.0, n_minor)
    w = np.r_[major, minor]
    return w / w.sum()


def make_episode(world: World, seed: int, *, n_major: int = 6, n_minor: int = 10, n_shots: int = 120,
                 p_face_missing: float = 0.3, p_body_missing: float = 0.1, p_silent: float = 0.3,
                 outfit_blocks: int = 3, video_id: str | None = None) -> VideoTracks:
    """One video with known identities (``label``) drawn from ``world``; see the module docstring."""
    rng = np.random.default_rng([world.seed, seed, 11])
    n_char = n_major + n_minor
    z = rng.standard_normal((n_char, world.d_id))
    z *= np.sqrt(world.d_id) / np.linalg.norm(z, axis=1, keepdims=True)
    share = _screen_shares(rng, n_major, n_minor)
    d_nu = world.maps["face"]["A"].shape[0]
    outfits = rng.standard_normal((n_char, outfit_blocks, d_nu))
    rows, feats = [], {m: [] for m in MODALITIES}
    t = 0.0
    tid = 0

    def add(modality, c, start, end, shot, box, lip, scene, pose):
        nonlocal tid
        rows.append({"track_id": tid, "modality": modality, "start": start, "end": end, "shot": shot,
                     "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3], "lip": lip, "label": c})
        feats[modality].append(world.observe(modality, z[c:c + 1], scene[None], pose[None], rng)[0])
        tid += 1

    nan_box = (np.nan,) * 4
    for shot in range(n_shots):
        dur = rng.uniform(3.0, 10.0)
        k = min(1 + rng.poisson(1.0), 4, n_char)
        present = rng.choice(n_char, size=k, replace=False, p=share)
        scene = rng.standard_normal(d_nu)
        channel = rng.standard_normal(d_nu)
        block = min(int(shot * outfit_blocks / n_shots), outfit_blocks - 1)
        # side-by-side positions; neighbours may overlap, which makes some face-in-body links ambiguous
        centres = np.sort(rng.uniform(0.15, 0.85, k))
        speakers = [c for c in present if rng.random() >= p_silent]
        turns = []
        if speakers:
            edges = np.sort(rng.uniform(t, t + dur, rng.poisson(1.5)))
            bounds = np.r_[t, edges, t + dur]
            turns = [(speakers[rng.integers(len(speakers))], a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= 0.5]
        voiced = {c for c, _, _ in turns}
        for c, cx in zip(present, centres):
            w = rng.uniform(0.18, 0.28)
            s0 = t + rng.uniform(0, 0.2 * dur)
            s1 = t + dur - rng.uniform(0, 0.2 * dur)
            body_box = (cx - w / 2, 0.25, cx + w / 2, 1.0)
            if rng.random() >= p_body_missing:
                pose = 0.5 * rng.standard_normal(d_nu) + outfits[c, block]
                add("body", c, s0, s1, shot, body_box, np.nan, scene, pose)
            if rng.random() >= p_face_missing:
                fw = w * 0.45
                fy = rng.uniform(0.27, 0.33)
                face_box = (cx - fw / 2, fy, cx + fw / 2, fy + 0.12)
                f0, f1 = s0 + rng.uniform(0, 0.15 * (s1 - s0)), s1 - rng.uniform(0, 0.15 * (s1 - s0))
                lip = float(np.clip((0.75 if c in voiced else 0.15) + 0.12 * rng.standard_normal(), 0, 1))
                add("face", c, f0, f1, shot, face_box, lip, scene, rng.standard_normal(d_nu))
        for c, a, b in turns:
            add("voice", c, a + 0.1, b - 0.1, shot, nan_box, np.nan, channel, 0.5 * rng.standard_normal(d_nu))
        t += dur
    tracks = pd.DataFrame(rows)
    vid = video_id or f"w{world.seed}-e{seed}"
    tracks.insert(0, "video_id", vid)
    tracks = tracks.astype({"track_id": "int64", "shot": "int64", "label": "int64"})
    features = {m: np.asarray(feats[m], dtype=np.float32).reshape(-1, world.dims[m]) for m in MODALITIES}
    role = np.r_[np.zeros(n_major, int), np.ones(n_minor, int)]
    info = {"n_major": n_major, "n_minor": n_minor, "major": list(range(n_major)), "share": share.tolist(),
            "role": ["major" if r == 0 else "minor" for r in role], "world_seed": world.seed, "seed": seed,
            "p_face_missing": p_face_missing, "p_body_missing": p_body_missing, "p_silent": p_silent}
    return VideoTracks(vid, tracks, features, info)


# ---------------------------------------------------------------------------------------------------------------
# on disk


def write_video_tracks(videos, folder) -> Path:
    """Write videos as ``tracks.parquet`` + ``features.parquet`` in ``folder`` (the format documented above)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    videos = [videos] if isinstance(videos, VideoTracks) else list(videos)
    tables, frows = [], {"video_id": [], "track_id": [], "feature": []}
    for v in videos:
        t = v.tracks.copy()
        t["video_id"] = v.video_id
        tables.append(t)
        for m in MODALITIES:
            idx = v.rows(m)
            frows["video_id"] += [v.video_id] * len(idx)
            frows["track_id"] += t.track_id.to_numpy()[idx].tolist()
            frows["feature"] += [row for row in v.features[m]]
    tracks = pd.concat(tables, ignore_index=True)
    cols = list(TRACK_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in tracks]
    pq.write_table(pa.Table.from_pandas(tracks[cols], preserve_index=False), folder / "tracks.parquet")
    feat = pa.table({"video_id": pa.array(frows["video_id"], pa.string()),
                     "track_id": pa.array(frows["track_id"], pa.int64()),
                     "feature": pa.array([np.asarray(f, np.float32) for f in frows["feature"]], pa.list_(pa.float32()))})
    pq.write_table(feat, folder / "features.parquet")
    return folder


def _bad(path, column, problem, row=None):
    where = f"column {column!r}" + (f", row {row}" if row is not None else "")
    return DataFormatError(path, None, f"{where}: {problem}")


def _check_types(path, df: pd.DataFrame, spec: dict):
    for col, kind in spec.items():
        if col not in df:
            continue
        s = df[col]
        if kind == "string":
            ok = pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)
            if ok:
                bad = np.flatnonzero(~s.map(lambda v: isinstance(v, str)).to_numpy())
                if len(bad):
                    raise _bad(path, col, f"expected text, got {s.iloc[bad[0]]!r}", int(bad[0]))
        elif kind == "int":
            ok = pd.api.types.is_integer_dtype(s) and not s.isna().any()
        else:
            ok = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if not ok:
            raise _bad(path, col, f"expected {kind} values, found dtype {s.dtype}"
                       + (" with nulls" if kind == "int" and s.isna().any() else ""))


def read_video_tracks(folder, tracks_file: str = "tracks.parquet", features_file: str = "features.parquet") -> list[VideoTracks]:
    """Read and check the two-file format; one :class:`VideoTracks` per ``video_id`` (in order of appearance)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    tp, fp = folder / tracks_file, folder / features_file
    missing = [p for p in (tp, fp) if not p.exists()]
    if missing:
        raise MissingDataError("video track files", missing,
                               "Write them with companion.data.video_tracks.write_video_tracks, or export your own "
                               "extracted features in the format of that module's docstring.")
    try:
        tracks = pq.read_table(tp).to_pandas()
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataFormatError(tp, None, f"not a readable parquet file ({err})") from None
    absent = [c for c in TRACK_COLUMNS if c not in tracks]
    if absent:
        raise _bad(tp, absent[0], f"missing (required columns: {', '.join(TRACK_COLUMNS)})")
    _check_types(tp, tracks, {**TRACK_COLUMNS, **OPTIONAL_COLUMNS})
    mods = tracks.modality.to_numpy()
    bad = np.flatnonzero(~np.isin(mods, MODALITIES))
    if len(bad):
        raise _bad(tp, "modality", f"{mods[bad[0]]!r} is not one of {MODALITIES}", int(bad[0]))
    for col in ("start", "end"):
        bad = np.flatnonzero(~np.isfinite(tracks[col].to_numpy(float)))
        if len(bad):
            raise _bad(tp, col, "must be a finite number of seconds", int(bad[0]))
    bad = np.flatnonzero(tracks.end.to_numpy() < tracks.start.to_numpy())
    if len(bad):
        raise _bad(tp, "end", f"ends ({tracks.end.iloc[bad[0]]}) before it starts ({tracks.start.iloc[bad[0]]})", int(bad[0]))
    visual = np.isin(mods, ("face", "body"))
    for a, b in (("x0", "x1"), ("y0", "y1")):
        lo, hi = tracks[a].to_numpy(float), tracks[b].to_numpy(float)
        bad = np.flatnonzero(visual & ~(np.isfinite(lo) & np.isfinite(hi) & (hi >= lo)))
        if len(bad):
            raise _bad(tp, b, f"face and body tracks need a finite box with {b} >= {a}", int(bad[0]))
    lip = tracks.lip.to_numpy(float)
    bad = np.flatnonzero(np.isfinite(lip) & ((lip < 0) | (lip > 1)))
    if len(bad):
        raise _bad(tp, "lip", f"lip activity must lie in [0, 1], got {lip[bad[0]]}", int(bad[0]))
    dup = tracks.duplicated(["video_id", "track_id"]).to_numpy()
    if dup.any():
        r = int(np.flatnonzero(dup)[0])
        raise _bad(tp, "track_id", f"track {tracks.track_id.iloc[r]} appears twice in video {tracks.video_id.iloc[r]!r}", r)
    if "label" not in tracks:
        tracks["label"] = -1

    try:
        ftab = pq.read_table(fp)
    except Exception as err:
        raise DataFormatError(fp, None, f"not a readable parquet file ({err})") from None
    for col in ("video_id", "track_id", "feature"):
        if col not in ftab.column_names:
            raise _bad(fp, col, "missing (required columns: video_id, track_id, feature)")
    import pyarrow as pa

    ftype = ftab.schema.field("feature").type
    if not (pa.types.is_list(ftype) or pa.types.is_large_list(ftype) or pa.types.is_fixed_size_list(ftype)) \
            or not (pa.types.is_floating(ftype.value_type) or pa.types.is_integer(ftype.value_type)):
        raise _bad(fp, "feature", f"expected a list of floats per row, found {ftype}")
    fdf = ftab.select(["video_id", "track_id"]).to_pandas()
    _check_types(fp, fdf, {"video_id": "string", "track_id": "int"})
    vectors = ftab.column("feature").to_pylist()
    key_t = pd.MultiIndex.from_frame(tracks[["video_id", "track_id"]])
    key_f = pd.MultiIndex.from_frame(fdf[["video_id", "track_id"]])
    if key_f.has_duplicates:
        r = int(np.flatnonzero(key_f.duplicated())[0])
        raise _bad(fp, "track_id", f"track {fdf.track_id.iloc[r]} of video {fdf.video_id.iloc[r]!r} has two feature rows", r)
    pos = key_f.get_indexer(key_t)
    extra = np.setdiff1d(np.arange(len(fdf)), pos)
    if len(extra):
        r = int(extra[0])
        raise _bad(fp, "track_id", f"track {fdf.track_id.iloc[r]} of video {fdf.video_id.iloc[r]!r} is not in {tp.name}", r)
    if (pos < 0).any():
        r = int(np.flatnonzero(pos < 0)[0])
        raise _bad(fp, "track_id", f"no feature row for track {tracks.track_id.iloc[r]} of video "
                   f"{tracks.video_id.iloc[r]!r} (row {r} of {tp.name})")
    lengths = {}
    out = []
    for vid in pd.unique(tracks.video_id):
        sel = np.flatnonzero(tracks.video_id.to_numpy() == vid)
        t = tracks.iloc[sel].copy()
        order = np.argsort(t.track_id.to_numpy(), kind="stable")
        t = t.iloc[order].reset_index(drop=True)
        frows = pos[sel][order]
        feats = {}
        for m in MODALITIES:
            idx = frows[t.modality.to_numpy() == m]
            mats = []
            for r in idx:
                v = vectors[r]
                if v is None:
                    raise _bad(fp, "feature", "null feature", int(r))
                if m not in lengths:
                    lengths[m] = (len(v), int(r))
                if len(v) != lengths[m][0]:
                    raise _bad(fp, "feature", f"{m} feature of length {len(v)}; earlier {m} rows have "
                               f"{lengths[m][0]} (row {lengths[m][1]})", int(r))
                mats.append(v)
            arr = np.asarray(mats, dtype=np.float32).reshape(len(idx), lengths.get(m, (0,))[0])
            nonfinite = ~np.isfinite(arr).all(axis=1)
            if nonfinite.any():
                raise _bad(fp, "feature", "contains NaN or infinity", int(idx[np.flatnonzero(nonfinite)[0]]))
            feats[m] = arr
        out.append(VideoTracks(str(vid), t, feats, {"source": str(folder)}))
    return out
