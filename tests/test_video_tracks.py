"""The synthetic track generator and the two-parquet on-disk format with its checks."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from companion.data import video_tracks as vt
from companion.data.errors import DataFormatError, MissingDataError


@pytest.fixture(scope="module")
def episode():
    return vt.make_episode(vt.make_world(0), 1, n_shots=40)


def test_generator_is_deterministic_and_long_tailed(episode):
    again = vt.make_episode(vt.make_world(0), 1, n_shots=40)
    pd.testing.assert_frame_equal(episode.tracks, again.tracks)
    np.testing.assert_array_equal(episode.features["voice"], again.features["voice"])
    counts = np.bincount(episode.labels, minlength=16)
    assert counts[:6].min() > counts[6:].max()  # every major character outnumbers every minor one here


def test_faces_sit_inside_their_own_body_box(episode):
    t = episode.tracks
    faces, bodies = t[t.modality == "face"], t[t.modality == "body"]
    inside = 0
    for _, f in faces.iterrows():
        b = bodies[(bodies.shot == f.shot) & (bodies.label == f.label)]
        if len(b):
            b = b.iloc[0]
            assert b.x0 <= f.x0 and f.x1 <= b.x1 and b.y0 <= f.y0 and f.y1 <= b.y1
            assert b.start <= f.start and f.end <= b.end
            inside += 1
    assert inside > 0.8 * len(faces)


def test_voices_come_from_characters_on_screen_and_speakers_move_their_lips(episode):
    t = episode.tracks
    voices = t[t.modality == "voice"]
    assert (voices.end > voices.start).all()
    visual = set(zip(t[t.modality != "voice"].shot, t[t.modality != "voice"].label))
    seen = np.mean([(s, l) in visual for s, l in zip(voices.shot, voices.label)])
    assert seen > 0.9  # only a speaker whose face and body are both missing (about 3 %) is off screen
    faces = t[t.modality == "face"]
    voiced = {(s, l) for s, l in zip(t[t.modality == "voice"].shot, t[t.modality == "voice"].label)}
    speaking = np.array([(s, l) in voiced for s, l in zip(faces.shot, faces.label)])
    assert faces.lip[speaking].mean() > faces.lip[~speaking].mean() + 0.4


def test_missing_modalities_follow_their_rates():
    w = vt.make_world(0)
    none_missing = vt.make_episode(w, 2, n_shots=60, p_face_missing=0.0, p_body_missing=0.0)
    t = none_missing.tracks
    assert (t.modality == "face").sum() == (t.modality == "body").sum()
    half = vt.make_episode(w, 2, n_shots=60, p_face_missing=0.5, p_body_missing=0.0).tracks
    ratio = (half.modality == "face").sum() / (half.modality == "body").sum()
    assert 0.35 < ratio < 0.65


def test_parquet_round_trip(episode, tmp_path):
    other = vt.make_episode(vt.make_world(0), 5, n_shots=10)
    vt.write_video_tracks([episode, other], tmp_path)
    back = vt.read_video_tracks(tmp_path)
    assert [v.video_id for v in back] == [episode.video_id, other.video_id]
    pd.testing.assert_frame_equal(back[0].tracks, episode.tracks, check_dtype=False)
    for m in vt.MODALITIES:
        np.testing.assert_array_equal(back[0].features[m], episode.features[m])


def _rewrite_features(tmp_path, mutate):
    tab = pq.read_table(tmp_path / "features.parquet")
    pq.write_table(mutate(tab), tmp_path / "features.parquet")


@pytest.mark.parametrize("case, column, message", [
    ("ragged", "feature", "length"),
    ("nan", "feature", "NaN"),
    ("strings", "feature", "list of floats"),
    ("no_column", "feature", "missing"),
    ("unknown_track", "track_id", "not in tracks.parquet"),
])
def test_malformed_features_file_names_file_and_column(episode, tmp_path, case, column, message):
    vt.write_video_tracks(episode, tmp_path)

    def mutate(tab):
        feats = tab.column("feature").to_pylist()
        if case == "ragged":
            feats[3] = feats[3][:-1]
        elif case == "nan":
            feats[7][0] = float("nan")
        elif case == "strings":
            return tab.set_column(2, "feature", pa.array([str(f[0]) for f in feats]))
        elif case == "no_column":
            return tab.drop(["feature"])
        elif case == "unknown_track":
            ids = tab.column("track_id").to_pylist()
            ids[0] = 10_000
            return tab.set_column(1, "track_id", pa.array(ids, pa.int64()))
        return tab.set_column(2, "feature", pa.array(feats, pa.list_(pa.float32())))

    _rewrite_features(tmp_path, mutate)
    with pytest.raises(DataFormatError) as err:
        vt.read_video_tracks(tmp_path)
    text = str(err.value)
    assert "features.parquet" in text and f"column {column!r}" in text and message in text, text


def test_malformed_tracks_file_names_file_and_column(episode, tmp_path):
    vt.write_video_tracks(episode, tmp_path)
    t = pq.read_table(tmp_path / "tracks.parquet").to_pandas()
    t.loc[4, "modality"] = "hand"
    pq.write_table(pa.Table.from_pandas(t, preserve_index=False), tmp_path / "tracks.parquet")
    with pytest.raises(DataFormatError, match=r"tracks\.parquet: column 'modality', row 4: 'hand'"):
        vt.read_video_tracks(tmp_path)
    t.loc[4, "modality"] = "face"
    t.loc[2, "end"] = t.loc[2, "start"] - 1
    pq.write_table(pa.Table.from_pandas(t, preserve_index=False), tmp_path / "tracks.parquet")
    with pytest.raises(DataFormatError, match=r"column 'end', row 2"):
        vt.read_video_tracks(tmp_path)


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(MissingDataError, match="tracks.parquet"):
        vt.read_video_tracks(tmp_path)
