"""Point serialization and the CPU selective scan against straightforward references, as speed ratios.

    .venv/bin/python benchmarks/bench_points.py [--points 1000000] [--lengths 1024 ... 65536] [--threads 1]

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
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from companion.cost.latency import median_seconds  # noqa: E402
from companion.models.mamba import linear_scan  # noqa: E402
from companion.points.serialize import (hilbert_encode, hilbert_encode_skilling, serialize,  # noqa: E402
                                        z_order_encode, z_order_encode_reference)


def timeit(fn, repeats, warmup=True):
    return median_seconds(fn, warmup=int(warmup), repeats=repeats)


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
    ap.add_argument("--json", type=str, default="", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    if args.points < 1 or not 1 <= args.depth <= 16:
        ap.error("--points must be >= 1 and --depth in 1..16")
    torch.set_num_threads(args.threads)
    rows = []
    gen = torch.Generator().manual_seed(0)
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
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
