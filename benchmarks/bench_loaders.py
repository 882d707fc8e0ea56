"""Loader benchmark (issue 10): peak memory and rows/s of the streaming converters against the pandas readers.

Generates, in a temporary folder, a Criteo-format file (label, 13 integer counts with 20% empty, 26 hex
categories drawn from skewed distributions) and an AmazonElectronics_x1-format BARS folder (train.csv + test.csv,
two ``^``-joined histories of ``--seq-len`` ids per row). Then, each step in a fresh child process (so its peak
RSS is its own, read from ``wait4``):

1. the streaming converter on the full files (peak RSS, rows/s, into an empty cache);
2. a second, cached load of the same files (time; nothing is parsed);
3. the streaming converter and the pandas-based reader of commit ``--legacy`` (read out of git) side by side on
   the same prefix of each file (``--legacy-rows`` / ``--legacy-bars-rows``): the old readers hold every field as a
   Python string (about 4 KB per Criteo row and 17 KB per 200-token BARS row), so on the full files they would
   need tens of GB; the prefix is what they can read here.

    /tmp/cpuslot .venv/bin/python benchmarks/bench_loaders.py               # 10M Criteo rows, 2M BARS rows
    .venv/bin/python benchmarks/bench_loaders.py --rows 200000 --bars-rows 50000   # a quick look
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 100_000


# --- file generation: variable-width decimal/hex fields scattered into one byte buffer per chunk ---------------

_DEC_MAX = 200_000
_DEC = None


def _decimal_table():
    """Bytes and length of every integer below _DEC_MAX (a lookup replaces per-digit arithmetic)."""
    global _DEC
    if _DEC is None:
        text = np.array([f"{i:<6d}" for i in range(_DEC_MAX)], dtype="S6")
        _DEC = (np.frombuffer(text.tobytes(), np.uint8).reshape(_DEC_MAX, 6),
                np.char.str_len(np.char.strip(text)).astype(np.int64))
    return _DEC


def _digits(values: np.ndarray, base: int = 10, width: int | None = None):
    """(byte matrix [n, w] left-aligned, length [n]) of non-negative integers: decimal (below 200,000) or
    fixed-width hex."""
    v = values.astype(np.int64)
    if base == 16:
        alphabet = np.frombuffer(b"0123456789abcdef", np.uint8)
        shifts = 4 * np.arange(width - 1, -1, -1)
        return alphabet[(v[:, None] >> shifts) & 15], np.full(len(v), width, np.int64)
    table, lengths = _decimal_table()
    return table[v], lengths[v]


def _render(fields: list, seps: list[bytes]) -> bytes:
    """One text chunk: ``fields[j]`` is (bytes [n, w], lengths [n]); ``seps[j]`` follows field j (the last: newline)."""
    widths = np.stack([ln for _, ln in fields], 1) + 1  # every field is followed by one separator byte
    row_len = widths.sum(1)
    buf = np.empty(int(row_len.sum()), np.uint8)
    offset = np.r_[0, np.cumsum(row_len)[:-1]]
    for (mat, ln), sep in zip(fields, seps):
        keep = np.arange(mat.shape[1]) < ln[:, None]
        buf[(offset[:, None] + np.arange(mat.shape[1]))[keep]] = mat[keep]
        offset = offset + ln
        buf[offset] = ord(sep)
        offset += 1
    return buf.tobytes()


def _repeat_block(fh, make_chunk, rows: int, block_rows: int | None, chunk: int) -> None:
    """Write ``rows`` rows: freshly drawn chunks, or (``block_rows``) one drawn block of that many rows repeated,
    which keeps the per-row parsing and encoding work of a large file at a fraction of the generation time."""
    if not block_rows or block_rows >= rows:
        for a in range(0, rows, chunk):
            fh.write(make_chunk(min(chunk, rows - a)))
        return
    block = b"".join(make_chunk(min(chunk, block_rows - a)) for a in range(0, block_rows, chunk))
    for _ in range(rows // block_rows):
        fh.write(block)
    left = rows % block_rows
    if left:
        fh.write(b"\n".join(block.split(b"\n", left)[:left]) + b"\n")


def make_criteo(path: Path, rows: int, seed: int = 0, block_rows: int | None = None) -> None:
    rng = np.random.default_rng(seed)
    cards = np.unique(np.geomspace(4, 2_000_000, 26).astype(int))  # like Criteo: a few huge, many small fields
    cards = np.resize(cards, 26)

    def chunk(n):
        fields = [_digits(rng.integers(0, 2, n))]
        for _ in range(13):
            mat, ln = _digits(np.minimum(rng.geometric(0.05, n) - 1, _DEC_MAX - 1))
            ln[rng.random(n) < 0.2] = 0  # empty count
            fields.append((mat, ln))
        for c in cards:
            ids = np.minimum(rng.zipf(1.2, n), c)
            mat, ln = _digits(ids * 2654435761 % (1 << 32), 16, 8)
            ln[rng.random(n) < 0.05] = 0
            fields.append((mat, ln))
        return _render(fields, [b"\t"] * 39 + [b"\n"])

    with open(path, "wb") as fh:
        _repeat_block(fh, chunk, rows, block_rows, CHUNK)


def make_bars(folder: Path, rows: int, seq_len: int, seed: int = 0, block_rows: int | None = None) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def chunk(n):
        item = np.minimum(rng.zipf(1.3, (n, seq_len + 1)), 63_000)
        cate = item % 801
        fields = [_digits(rng.integers(0, 2, n)), _digits(rng.integers(0, 192_403, n)),
                  _digits(item[:, -1]), _digits(cate[:, -1])]
        seps = [b","] * 4
        for hist in (item, cate):
            for k in range(seq_len):
                fields.append(_digits(hist[:, k]))
                seps.append(b"^" if k < seq_len - 1 else b",")
        seps[-1] = b"\n"
        return _render(fields, seps)

    for name, n_rows in (("train.csv", rows), ("test.csv", max(1, rows // 7))):
        with open(folder / name, "wb") as fh:
            fh.write(b"label,user_id,item_id,cate_id,item_history,cate_history\n")
            _repeat_block(fh, chunk, n_rows, block_rows and min(block_rows, n_rows), CHUNK // 4)


def prefix(src: Path, dst: Path, lines: int) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for i, line in enumerate(fi):
            if i >= lines:
                break
            fo.write(line)


# --- measured steps, each in a child process -------------------------------------------------------------------

CHILD = r"""
import importlib.util, json, os, sys, time
sys.path.insert(0, {lib!r})
kind, which, path, legacy = {kind!r}, {which!r}, {path!r}, {legacy!r}
if which == "legacy":
    spec = importlib.util.spec_from_file_location("companion.data._legacy_" + kind, legacy)
    mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod)
elif kind == "criteo":
    from companion.data import ctr_formats as mod
else:
    from companion.data import bars as mod
t0 = time.perf_counter()
if kind == "criteo":
    s = mod.load_ctr_dataset("criteo", path, min_count=10, cache=which != "legacy")
else:
    kw = dict(verify_md5=False) if which != "legacy" else dict()
    s = mod.load_bars("AmazonElectronics_x1", root=path, valid_fraction=0.1, cache=which != "legacy", **kw)
dt = time.perf_counter() - t0
rows = len(s.train) + len(s.valid) + len(s.test)
print("RESULT " + json.dumps(dict(seconds=dt, rows=rows, cached="cached" in s.info or dt < 0)))
"""


def run_measured(kind, which, path, cache, legacy=None) -> dict:
    """One load in a fresh child process: its time, and its own peak RSS (ru_maxrss from wait4, in MiB)."""
    code = CHILD.format(lib=str(ROOT / "lib"), kind=kind, which=which, path=str(path), legacy=str(legacy or ""))
    env = dict(os.environ, COMPANION_CACHE=str(cache), OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        text, etext = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{kind}/{which} failed:\n{etext[-3000:]}")
    res = json.loads(next(ln for ln in text.splitlines() if ln.startswith("RESULT "))[7:])
    res.update(which=which, kind=kind, peak_rss_mib=round(usage.ru_maxrss / 1024, 1),
               process_seconds=round(time.perf_counter() - t0, 2), rows_per_s=round(res["rows"] / res["seconds"]))
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="Criteo-format rows (default 10M)")
    ap.add_argument("--bars-rows", type=int, default=2_000_000, help="BARS train.csv rows (test.csv gets 1/7)")
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--legacy-rows", type=int, default=300_000, help="prefix both Criteo readers run on")
    ap.add_argument("--legacy-bars-rows", type=int, default=30_000, help="prefix both BARS readers run on")
    ap.add_argument("--repeats", type=int, default=3, help="alternated runs of both readers on the prefix")
    ap.add_argument("--legacy", default="891c84f", help="commit whose pandas-based readers are the baseline")
    ap.add_argument("--block-rows", type=int, default=0,
                    help="draw this many rows once and repeat them to the requested size (0: draw every row)")
    ap.add_argument("--only", choices=["both", "criteo", "bars"], default="both", help="which format to run")
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary one, removed afterwards)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_loaders_"))
    tmp.mkdir(parents=True, exist_ok=True)
    results = {"args": vars(args), "steps": []}
    try:
        legacy = {}
        for kind, rel in (("criteo", "lib/companion/data/ctr_formats.py"), ("bars", "lib/companion/data/bars.py")):
            src = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.legacy}:{rel}"], capture_output=True,
                                 text=True, check=True).stdout
            legacy[kind] = tmp / f"legacy_{kind}.py"
            legacy[kind].write_text(src)
        t0 = time.perf_counter()
        crit = tmp / "criteo" / "train.txt"
        crit.parent.mkdir(exist_ok=True)
        bars_root = tmp / "bars"
        results["files_mib"] = {}
        if args.only in ("both", "criteo"):
            make_criteo(crit, args.rows, block_rows=args.block_rows or None)
            results["files_mib"]["criteo"] = round(crit.stat().st_size / 2**20, 1)
        if args.only in ("both", "bars"):
            make_bars(bars_root / "AmazonElectronics_x1", args.bars_rows, args.seq_len,
                      block_rows=args.block_rows // 5 if args.block_rows else None)
            results["files_mib"]["bars_train"] = round(
                (bars_root / "AmazonElectronics_x1" / "train.csv").stat().st_size / 2**20, 1)
        results["generate_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"generated {results['files_mib']} (MiB) in {results['generate_seconds']} s", flush=True)

        def step(label, *a, **k):
            r = run_measured(*a, **k)
            r["step"] = label
            results["steps"].append(r)
            print(f"{label:<44} {r['rows']:>10,} rows {r['seconds']:8.2f} s {r['rows_per_s']:>10,} rows/s "
                  f"peak RSS {r['peak_rss_mib']:8.1f} MiB", flush=True)
            return r

        if args.only == "bars":
            crit = None
        if crit is not None:
            run_criteo(args, tmp, crit, legacy, results, step)
        if args.only in ("both", "bars"):
            run_bars(args, tmp, bars_root, legacy, results, step)
    finally:
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1))
        if not args.dir:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


def side_by_side(args, step, kind, path, rows, tmp, legacy_file):
    """Streaming and legacy reader on the same prefix, alternated ``--repeats`` times (each into an empty cache):
    the median of the per-repeat rows/s ratios, and the ratios themselves (the machine's load moves both)."""
    ratios = []
    for r in range(args.repeats):
        new = step(f"{kind}: streaming, first {rows:,} rows (#{r + 1})", kind, "new", path, tmp / f"cache_{kind}_n{r}")
        old = step(f"{kind}: pandas ({args.legacy}), same rows (#{r + 1})", kind, "legacy", path,
                   tmp / f"cache_{kind}_o{r}", legacy_file)
        ratios.append(round(new["rows_per_s"] / old["rows_per_s"], 2))
    return float(np.median(ratios)), ratios


def run_criteo(args, tmp, crit, legacy, results, step):
    step("criteo: streaming, full file", "criteo", "new", crit, tmp / "cache")
    step("criteo: second load (cached)", "criteo", "new", crit, tmp / "cache")
    pre = tmp / "criteo_prefix" / "train.txt"
    pre.parent.mkdir(exist_ok=True)
    prefix(crit, pre, min(args.legacy_rows, args.rows))
    results["criteo_speedup_same_file"], results["criteo_speedup_repeats"] = side_by_side(
        args, step, "criteo", pre, args.legacy_rows, tmp, legacy["criteo"])
    for f in (crit, pre):
        f.unlink()
    print(f"speed-up on the same file: criteo {results['criteo_speedup_same_file']}x (median; repeats "
          f"{results['criteo_speedup_repeats']})", flush=True)


def run_bars(args, tmp, bars_root, legacy, results, step):
    step("bars: streaming, full files", "bars", "new", bars_root, tmp / "cache")
    step("bars: second load (cached)", "bars", "new", bars_root, tmp / "cache")
    bpre = tmp / "bars_prefix" / "AmazonElectronics_x1"
    bpre.mkdir(parents=True)
    prefix(bars_root / "AmazonElectronics_x1" / "train.csv", bpre / "train.csv", min(args.legacy_bars_rows, args.bars_rows) + 1)
    prefix(bars_root / "AmazonElectronics_x1" / "test.csv", bpre / "test.csv", max(2, args.legacy_bars_rows // 7) + 1)
    results["bars_speedup_same_file"], results["bars_speedup_repeats"] = side_by_side(
        args, step, "bars", bpre.parent, args.legacy_bars_rows, tmp, legacy["bars"])
    print(f"speed-up on the same file: bars {results['bars_speedup_same_file']}x (median; repeats "
          f"{results['bars_speedup_repeats']})", flush=True)


if __name__ == "__main__":
    main()
