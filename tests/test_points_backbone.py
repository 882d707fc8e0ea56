import numpy as np
import pytest
import torch

from companion.data.rooms import S3DIS_CLASSES, make_rooms
from companion.models.point_backbone import Level, PointSegmenter, SparseConv, count_parameters
from companion.points import serialize
from companion.points.train import (SegConfig, collate, confusion, fit_segmentation, iou_from_confusion,
                                    majority_baseline, torch_threads, voxelize)



@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):  # small clouds: one intra-op thread is much faster on a busy machine
        yield


SMALL = dict(enc_depths=(1, 1, 1), enc_channels=(8, 16, 16), dec_depths=(1, 1), dec_channels=(8, 16), d_state=4)


def scene_batch(seed=0):
    rooms = make_rooms(2, seed=seed, n_points=1500)
    return collate([voxelize(r, 0.2) for r in rooms])


def test_cpe_is_equivariant_to_point_order():
    b = scene_batch()
    conv = SparseConv(6, 5, 3)
    ser = serialize(b["grid"], b["batch"])
    y = conv(b["feat"], Level(b["grid"], b["batch"], ser, 2))
    perm = torch.randperm(len(b["grid"]), generator=torch.Generator().manual_seed(0))
    ser_p = serialize(b["grid"][perm], b["batch"][perm])
    y_p = conv(b["feat"][perm], Level(b["grid"][perm], b["batch"][perm], ser_p, 2))
    assert torch.allclose(y_p, y[perm], atol=1e-5)


def test_cpe_uses_neighbours_only():
    grid = torch.tensor([[0, 0, 0], [1, 0, 0], [5, 5, 5]])
    batch = torch.zeros(3, dtype=torch.long)
    conv = SparseConv(1, 1, 3, bias=False)
    level = Level(grid, batch, serialize(grid, batch), 1)
    y0 = conv(torch.tensor([[1.0], [0.0], [0.0]]), level)
    assert y0[2].item() == 0.0 and y0[1].item() != 0.0  # only the adjacent cell hears point 0


@pytest.mark.parametrize("mixer", ["mamba", "attention"])
def test_backbone_is_invariant_to_input_order(mixer):
    torch.manual_seed(0)
    b = scene_batch()
    model = PointSegmenter(6, 13, mixer=mixer, patch_size=64, **SMALL).eval()
    y = model(b["feat"], b["grid"], b["batch"])
    perm = torch.randperm(len(b["grid"]), generator=torch.Generator().manual_seed(1))
    y_p = model(b["feat"][perm], b["grid"][perm], b["batch"][perm])
    assert y.shape == (len(b["grid"]), 13)
    assert torch.allclose(y_p, y[perm], atol=1e-4)
    # and the scenes do not leak into each other: scene 0 alone gives the same logits
    one = b["batch"] == 0
    y0 = model(b["feat"][one], b["grid"][one])
    assert torch.allclose(y0, y[one], atol=1e-4)


def test_baseline_is_of_similar_size():
    m = count_parameters(PointSegmenter(6, 13, mixer="mamba"))
    a = count_parameters(PointSegmenter(6, 13, mixer="attention"))
    assert 0.5 < m / a < 2.0


def test_backbone_rejects_bad_config():
    with pytest.raises(ValueError, match="mixer"):
        PointSegmenter(6, 13, mixer="conv")
    with pytest.raises(ValueError, match="decoder"):
        PointSegmenter(6, 13, enc_depths=(1, 1), enc_channels=(8, 16), dec_depths=(1, 1), dec_channels=(8, 8))


def test_metrics():
    cm = confusion(np.array([0, 0, 1, 2]), np.array([0, 1, 1, -1]), 3)
    m = iou_from_confusion(cm)
    assert m["iou"][0] == pytest.approx(0.5) and m["iou"][1] == pytest.approx(0.5)
    assert m["miou"] == pytest.approx(0.5) and m["oa"] == pytest.approx(2 / 3)


def test_training_beats_majority_on_tiny_rooms():
    torch.manual_seed(0)
    rooms = make_rooms(5, seed=3, n_points=2000)
    cfg = SegConfig(epochs=10, batch_rooms=2, lr=0.01, grid_size=0.25, seed=0)
    model = PointSegmenter(6, 13, mixer="mamba", patch_size=128, **SMALL)
    res = fit_segmentation(model, rooms[:4], rooms[4:], len(S3DIS_CLASSES), cfg, desc="test")
    base = majority_baseline(rooms[:4], rooms[4:], 13, cfg.grid_size)
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert res.valid["miou"] > base["miou"] + 0.05


def test_same_seed_same_numbers():
    rooms = make_rooms(3, seed=5, n_points=1200)
    cfg = SegConfig(epochs=2, batch_rooms=2, lr=0.01, grid_size=0.3, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = PointSegmenter(6, 13, mixer="mamba", patch_size=64, **SMALL)
        runs.append(fit_segmentation(model, rooms[:2], rooms[2:], 13, cfg, desc="test").history)
    assert runs[0] == runs[1]


def test_build_segmenter_mirrors_the_encoder_and_is_seeded():
    from companion.models.point_backbone import build_segmenter

    a = build_segmenter(6, 13, channels=[8, 16], depths=[1, 1], mixer="mamba", patch_size=64, d_state=4, seed=3)
    b = build_segmenter(6, 13, channels=[8, 16], depths=[1, 1], mixer="mamba", patch_size=64, d_state=4, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert len(a.enc) == 2 and len(a.dec) == 1


def test_training_budget_counts_cpu_not_waiting(monkeypatch):
    """The budget is CPU seconds: a tiny one stops after the first epoch (and says so); wall-clock time spent
    waiting (a busy shared machine, simulated by sleeping in every step) does not count against it."""
    import time

    rooms = make_rooms(3, seed=5, n_points=1200)
    torch.manual_seed(0)
    model = PointSegmenter(6, 13, mixer="attention", patch_size=64, **SMALL)
    tiny = SegConfig(epochs=3, batch_rooms=2, lr=0.01, grid_size=0.3, seed=0, max_seconds=1e-6)
    res = fit_segmentation(model, rooms[:2], rooms[2:], 13, tiny, desc="test")
    assert res.stopped_early and res.epochs_run == 1
    import companion.points.train as tr

    real = tr.collate
    monkeypatch.setattr(tr, "collate", lambda v: (time.sleep(0.5), real(v))[1])
    roomy = SegConfig(epochs=3, batch_rooms=2, lr=0.01, grid_size=0.3, seed=0, max_seconds=1.0)
    res = fit_segmentation(model, rooms[:2], rooms[2:], 13, roomy, desc="test")
    assert not res.stopped_early and res.epochs_run == 3 and res.train_seconds > 1.5


def test_scan_choice_and_mixer_recompute_give_the_same_training_step():
    """The checkpointed scan (default) and recomputing the BiMamba mixers in backward change what is kept for
    backward, not the numbers: same logits and gradients as the full-state chunked scan, and less saved memory."""
    from companion.points.profile import saved_activation_bytes

    b = scene_batch(3)
    outs = {}
    for name, kw in {"chunked": dict(scan="chunked", recompute_mixer=False),
                     "checkpointed": dict(recompute_mixer=False), "checkpointed+recompute": {}}.items():
        torch.manual_seed(0)
        m = PointSegmenter(6, 13, shuffle_orders=False, patch_size=64, **SMALL, **kw)
        y = m(b["feat"], b["grid"], b["batch"])
        y.square().mean().backward()
        outs[name] = (y.detach(), [p.grad.clone() for p in m.parameters()],
                      saved_activation_bytes(lambda: m(b["feat"], b["grid"], b["batch"])))
    ref_y, ref_g, ref_saved = outs["chunked"]
    for name in ("checkpointed", "checkpointed+recompute"):
        y, g, saved = outs[name]
        assert torch.allclose(y, ref_y, atol=1e-5), name
        assert all(torch.allclose(a, r, atol=1e-5, rtol=1e-4) for a, r in zip(g, ref_g)), name
        assert saved < ref_saved, name
    assert outs["checkpointed+recompute"][2] < outs["checkpointed"][2]


def test_default_recomputes_mixers_in_pieces_and_matches_the_plain_path(monkeypatch):
    """The default training path (checkpointed scan, each BiMamba recomputed in backward one direction and a few
    sequences at a time; pieces of 2 patches here) gives the loss and every gradient of the plain path, which
    keeps every activation, to 1e-5 (the same scan: the scans' own float-order differences, ~4e-5 relative on
    gradients that are zero in exact arithmetic, are the test above's)."""
    import companion.models.mamba as mm

    monkeypatch.setattr(mm, "RECOMPUTE_TOKENS", 128)  # 2 patches of 64 per recomputed piece
    b = scene_batch(4)
    res = {}
    for name, kw in {"default": {}, "plain": dict(recompute_mixer=False)}.items():
        torch.manual_seed(0)
        m = PointSegmenter(6, 13, shuffle_orders=False, patch_size=64, **SMALL, **kw)
        loss = m(b["feat"], b["grid"], b["batch"]).square().mean()
        loss.backward()
        res[name] = (m, loss.item(), {k: p.grad.clone() for k, p in m.named_parameters()})
    m, loss, grads = res["default"]
    _, ref_loss, ref_grads = res["plain"]
    inner = m.enc[0][0].mixer.inner
    assert inner.recompute and inner.recompute_tokens == 128 and inner.fwd.scan == "checkpointed"
    assert len(b["feat"]) > 4 * 64  # more than one piece at the first stage
    assert abs(loss - ref_loss) <= 1e-5 * abs(ref_loss)
    top = max(g.abs().max().item() for g in ref_grads.values())
    for k, g in grads.items():
        # atol 2e-7 of the largest gradient: a bias right before BatchNorm has a zero gradient in exact arithmetic
        assert torch.allclose(g, ref_grads[k], rtol=1e-5, atol=2e-7 * top), k


def test_split_description_names_the_scannet_split(tmp_path):
    """The notebook states which ScanNet split ran: the official lists when present, else the flagged re-split."""
    from companion.points import experiment

    scans = tmp_path / "scans"
    names = [f"scene{i:04d}_00" for i in range(6)]
    rng = np.random.default_rng(0)
    for n in names:
        d = scans / n
        d.mkdir(parents=True)
        np.save(d / "coord.npy", rng.random((50, 3)).astype(np.float32))
        np.save(d / "color.npy", rng.integers(0, 256, (50, 3)).astype(np.uint8))
        np.save(d / "segment20.npy", rng.integers(0, 20, 50))
    experiment._real.cache_clear()
    resplit = experiment.split_description("scannet", str(scans))
    assert "re-split" in resplit and "not comparable" in resplit
    (tmp_path / "scannetv2_train.txt").write_text("\n".join(names[:4]) + "\n")
    (tmp_path / "scannetv2_val.txt").write_text("\n".join(names[4:]) + "\n")
    experiment._real.cache_clear()
    official = experiment.split_description("scannet", str(scans))
    assert official.startswith("ScanNet v2 official split") and "2 of 2 val scenes" in official
    train, valid, test, _ = experiment.load_split("scannet", 0, 0, 0, str(scans))
    assert sorted(r["name"] for r in test) == names[4:]
    experiment._real.cache_clear()
    assert "split by index" in experiment.split_description("rooms", n_rooms=8)
