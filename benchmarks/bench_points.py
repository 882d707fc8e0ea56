"""Point serialization and the CPU selective scan against straightforward references, as speed ratios.

    .venv/bin/python benchmarks/bench_points.py [--points 1000000] [--lengths 1024 ... 65536] [--threads 1]
    .venv/bin/python benchmarks/bench_points.py --training-only      # just the training-scan and backbone rows

Training scan (``--train-length``, default 16,384, d_inner 64, d_state 16): forward + backward CPU time of the
group-checkpointed selective scan against mambapy's Blelloch ``pscan`` (``pip install --no-deps mambapy``, in the
``bench`` extra) and our previous full-state chunked scan, on the same Mamba-like inputs, interleaved repeat by
repeat, with the max differences of outputs and gradients; the bytes autograd saves for each. Backbone
(``--backbone-points``, default 16,000): the notebook's laptop-size U-Net, Mamba (the default: checkpointed scan
and each BiMamba recomputed in backward; the mixers kept; the old chunked scan with the mixers kept) against the
attention baseline: saved-activation bytes, peak bytes allocated over forward + backward (the storages created
during the step, see ``companion.points.profile.PeakMemory``), and forward + backward CPU time.

Serialization: the magic-number z-order and the table-driven Hilbert encoder against a bit-by-bit interleave
and Skilling's per-bit transform (both vectorised over points, no Python per point), on 1M random cells.
Scan: the chunked parallel scan (and the log-step one) against the sequential recurrence, for one sequence
of d_inner x d_state channels at lengths 1k-64k; each result is also checked against the reference.
Mixers (``--mixer-tokens``): CPU time of softmax attention and BiMamba alone, same width, over one global
sequence, with log-log slopes and 95% intervals (the notebook's linear-complexity measurement, standalone).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from companion.cost.latency import median_seconds  # noqa: E402
from companion.models.mamba import linear_scan  # noqa: E402
from companion.points.serialize import (hilbert_encode, hilbert_encode_skilling, serialize,  # noqa: E402
                                        z_order_encode, z_order_encode_reference)


def timeit(fn, repeats, warmup=True):
    return median_seconds(fn, warmup=int(warmup), repeats=repeats)


def mamba_like_inputs(length, d, n, seed=0):
    """What a Mamba block feeds its scan: delta log-uniform in [1e-3, 0.1] (dt_proj's init), A = -(1..n)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(1, length, d, generator=g)
    delta = torch.exp(torch.rand(1, length, d, generator=g) * math.log(100.0) + math.log(1e-3))
    A = -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1)
    B, C = torch.randn(1, length, n, generator=g), torch.randn(1, length, n, generator=g)
    return u, delta, A, B, C


def mambapy_scan(u, delta, A, B, C):
    """mambapy's selective scan (``MambaBlock.selective_scan`` without D), through its Blelloch ``pscan``."""
    from mambapy.pscan import pscan

    dA = torch.exp(delta.unsqueeze(-1) * A)
    bx = delta.unsqueeze(-1) * B.unsqueeze(2) * u.unsqueeze(-1)
    return (pscan(dA, bx) @ C.unsqueeze(-1)).squeeze(3)


def training_scan(length, d, n, repeats, group=None):
    """Forward + backward of one selective scan by three methods on the same inputs, interleaved per repeat."""
    from companion.models.mamba import GROUP, selective_scan
    from companion.points.profile import saved_activation_bytes

    group = group or GROUP
    base = mamba_like_inputs(length, d, n)
    w = torch.randn(1, length, d, generator=torch.Generator().manual_seed(1))
    methods = {"checkpointed (new)": lambda *x: selective_scan(*x, method="checkpointed", group=group),
               "chunked (previous)": lambda *x: selective_scan(*x, method="chunked")}
    try:
        import mambapy  # noqa: F401

        methods["mambapy pscan"] = mambapy_scan
    except ImportError:
        print("mambapy is not installed (pip install --no-deps mambapy): its row is skipped")
    with torch.no_grad():
        ref = selective_scan(*base, method="sequential")  # the plain recurrence, step by step
    out, times, saved = {}, {m: [] for m in methods}, {}
    for rep in range(repeats + 1):  # the first round is the warm-up
        for name, fn in methods.items():
            xs = [t.clone().requires_grad_() for t in base]
            t0 = time.process_time()
            y = fn(*xs)
            grads = torch.autograd.grad((y * w).sum(), xs)
            dt = time.process_time() - t0
            if rep:
                times[name].append(dt)
            else:
                out[name] = (y.detach(), grads)
                xs = [t.clone().requires_grad_() for t in base]
                saved[name] = saved_activation_bytes(lambda: fn(*xs))
    prev_y, prev_g = out["chunked (previous)"]
    res = []
    for name in methods:
        y, g = out[name]
        res.append({"method": name, "length": length, "d_inner": d, "d_state": n, "group": group,
                    "fwd_bwd_cpu_s": statistics.median(times[name]), "cpu_s_all": times[name],
                    "saved_mib": saved[name] / 2**20, "max_diff_y_vs_sequential": (y - ref).abs().max().item(),
                    "max_diff_y_vs_previous": (y - prev_y).abs().max().item(),
                    "max_rel_diff_grad_vs_previous": max(((a - b).abs().max() / b.abs().max()).item()
                                                         for a, b in zip(g, prev_g))})
    return res


def backbone_memory(points, repeats):
    """The notebook's laptop-size U-Nets on a ``points``-cell building: saved bytes, peak bytes of forward +
    backward, and forward + backward CPU time (median), Mamba variants against the attention baseline."""
    from companion.models.point_backbone import build_segmenter
    from companion.points.profile import PeakMemory, saved_activation_bytes, scene_cloud

    feat, grid, _ = scene_cloud(points, 0.1, 200.0, seed=0, in_channels=6)
    net = dict(channels=[24, 48, 64, 96], depths=[1, 1, 1, 1], patch_size=1024, d_state=16, seed=0)
    variants = {"mamba (default: recomputed mixers)": dict(mixer="mamba"),
                "mamba, mixers kept": dict(mixer="mamba", recompute_mixer=False),
                "mamba, chunked scan, mixers kept": dict(mixer="mamba", scan="chunked", recompute_mixer=False),
                "attention (baseline)": dict(mixer="attention")}
    rows = []
    for name, kw in variants.items():
        m = build_segmenter(6, 13, **net, **kw)
        m.train()
        saved = saved_activation_bytes(lambda: m(feat, grid))

        def step():
            m.zero_grad(set_to_none=True)
            out = m(feat, grid)
            out.square().mean().backward()

        with PeakMemory() as pm:
            step()
        times = [0.0] * max(1, repeats)
        for i in range(len(times)):
            t0 = time.process_time()
            step()
            times[i] = time.process_time() - t0
        rows.append({"model": name, "points": points, "saved_mib": saved / 2**20, "peak_fwd_bwd_mib": pm.peak / 2**20,
                     "fwd_bwd_cpu_s": statistics.median(times)})
    return rows


def print_training(extra):
    ts = {r["method"]: r for r in extra["training_scan"]}
    new = ts["checkpointed (new)"]
    print(f"training scan, L={new['length']}, d_inner {new['d_inner']}, d_state {new['d_state']}, group {new['group']}, "
          "forward + backward, CPU s (median):")
    for r in ts.values():
        print(f"  {r['method']:<20} {r['fwd_bwd_cpu_s']:7.3f} s  saved {r['saved_mib']:8.1f} MiB  "
              f"max|y - sequential| {r['max_diff_y_vs_sequential']:.1e}  max|y - previous| "
              f"{r['max_diff_y_vs_previous']:.1e}  grads vs previous (rel) {r['max_rel_diff_grad_vs_previous']:.1e}")
    if "mambapy pscan" in ts:
        sp = ts["mambapy pscan"]["fwd_bwd_cpu_s"] / new["fwd_bwd_cpu_s"]
        print(f"  speed-up over mambapy pscan {sp:.2f}x (target >= 1.5x: {'met' if sp >= 1.5 else 'NOT met'})")
    sp = ts["chunked (previous)"]["fwd_bwd_cpu_s"] / new["fwd_bwd_cpu_s"]
    mem = ts["chunked (previous)"]["saved_mib"] / new["saved_mib"]
    print(f"  speed-up over the previous chunked scan {sp:.2f}x; saved memory {mem:.1f}x lower "
          f"(target >= 10x: {'met' if mem >= 10 else 'NOT met'})")
    for rows in extra["backbone"]:
        att = next(r for r in rows if r["model"].startswith("attention"))
        print(f"backbone at {rows[0]['points']} points (laptop-size U-Net, training step):")
        for r in rows:
            print(f"  {r['model']:<46} saved {r['saved_mib']:7.1f} MiB ({r['saved_mib'] / att['saved_mib']:.2f}x "
                  f"attention)  peak {r['peak_fwd_bwd_mib']:7.1f} MiB ({r['peak_fwd_bwd_mib'] / att['peak_fwd_bwd_mib']:.2f}x)"
                  f"  {r['fwd_bwd_cpu_s']:.2f} s")
        d = rows[0]
        met = d["saved_mib"] < att["saved_mib"] and d["peak_fwd_bwd_mib"] < att["peak_fwd_bwd_mib"]
        print(f"  default below attention in saved and peak memory: {'met' if met else 'NOT met'}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--depth", type=int, default=10, help="bits per axis of the random grid (10: 1024^3 cells)")
    ap.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    ap.add_argument("--d-inner", type=int, default=32)
    ap.add_argument("--d-state", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mixer-tokens", type=int, nargs="*", default=[],
                    help="also time attention vs BiMamba alone at these sequence lengths (e.g. 2000 4000 ... 65536)")
    ap.add_argument("--train-length", type=int, default=16384, help="sequence length of the training-scan rows")
    ap.add_argument("--train-d-inner", type=int, default=64)
    ap.add_argument("--group", type=int, default=None, help="steps per checkpointed group (default: the library's)")
    ap.add_argument("--backbone-points", type=int, nargs="*", default=[16000])
    ap.add_argument("--training-only", action="store_true", help="skip the serialization and no-grad scan rows")
    ap.add_argument("--json", type=str, default="", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if args.points < 1 or not 1 <= args.depth <= 16:
        ap.error("--points must be >= 1 and --depth in 1..16")
    torch.set_num_threads(args.threads)
    rows = []
    gen = torch.Generator().manual_seed(0)
    extra = {"training_scan": training_scan(args.train_length, args.train_d_inner, args.d_state, args.repeats,
                                            args.group),
             "backbone": [backbone_memory(n, args.repeats) for n in args.backbone_points]}
    print_training(extra)
    if args.training_only:
        if args.json:
            Path(args.json).write_text(json.dumps({"threads": args.threads, **extra}, indent=2))
        return extra
    grid = torch.randint(0, 1 << args.depth, (args.points, 3), generator=gen)
    for name, fast, ref in (("z-order", z_order_encode, z_order_encode_reference),
                            ("hilbert", hilbert_encode, hilbert_encode_skilling)):
        assert torch.equal(fast(grid, args.depth), ref(grid, args.depth)), f"{name}: fast encoder disagrees"
        t_fast = timeit(lambda: fast(grid, args.depth), args.repeats)
        t_ref = timeit(lambda: ref(grid, args.depth), args.repeats)
        rows.append({"task": f"{name} encode, {args.points:,} points", "ours_s": t_fast, "reference_s": t_ref,
                     "speedup": t_ref / t_fast, "max_abs_err": 0.0})
    t_ser = timeit(lambda: serialize(grid), args.repeats)
    rows.append({"task": f"serialize 4 orders + sort + inverse, {args.points:,} points", "ours_s": t_ser,
                 "reference_s": None, "speedup": None, "max_abs_err": None})
    for length in args.lengths:
        a = torch.rand(1, length, args.d_inner, args.d_state, generator=gen) * 0.2 + 0.8
        b = torch.randn(1, length, args.d_inner, args.d_state, generator=gen)
        with torch.no_grad():
            ref = linear_scan(a, b, "sequential")  # also the warm-up of the timing below
            t_ref = timeit(lambda: linear_scan(a, b, "sequential"), args.repeats, warmup=False)
            for method in ("chunked", "logstep"):
                out = linear_scan(a, b, method)
                err = (out - ref).abs().max().item()
                t = timeit(lambda: linear_scan(a, b, method), args.repeats)
                rows.append({"task": f"{method} scan, L={length}, {args.d_inner}x{args.d_state} channels",
                             "ours_s": t, "reference_s": t_ref, "speedup": t_ref / t, "max_abs_err": err})
        del a, b, ref
    width = max(len(r["task"]) for r in rows)
    print(f"{'task':<{width}}  {'ours (s)':>9}  {'reference (s)':>13}  {'speedup':>8}  {'max |err|':>9}")
    for r in rows:
        ref_s = f"{r['reference_s']:.4f}" if r["reference_s"] is not None else "-"
        sp = f"{r['speedup']:.1f}x" if r["speedup"] is not None else "-"
        err = f"{r['max_abs_err']:.1e}" if r["max_abs_err"] is not None else "-"
        print(f"{r['task']:<{width}}  {r['ours_s']:>9.4f}  {ref_s:>13}  {sp:>8}  {err:>9}")
    if args.mixer_tokens:
        from companion.points.profile import exponent_gap, mixer_scaling, slopes

        scan = mixer_scaling(args.mixer_tokens, channels=args.d_inner, d_state=args.d_state, repeats=args.repeats,
                             threads=args.threads)
        print(scan[["component", "mixer", "tokens", "cpu_s", "peak_mib"]].round(4).to_string(index=False))
        print(slopes(scan).round(3).to_string(index=False))
        for c in ("mixer", "block"):
            g = exponent_gap(scan, c)
            print(f"{c}: attention minus BiMamba exponent {g['slope']:.2f} [{g['lo']:.2f}, {g['hi']:.2f}]")
        rows += [{"task": f"{r['component']} {r['mixer']}, L={r['tokens']}", "ours_s": r["cpu_s"], "reference_s": None,
                  "speedup": None, "max_abs_err": None} for r in scan.to_dict("records")]
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": rows, **extra}, indent=2))
    return rows


if __name__ == "__main__":
    main()
