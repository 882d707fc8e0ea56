"""Streaming, bounded-memory reading of large delimited files, and the column files the converted data lives in.

The fast path is pyarrow's streaming CSV reader (``pyarrow.csv.open_csv``): C++ parsing in blocks, typed columns,
plain or gzip input. It refuses a row with the wrong number of fields (no padding of short rows), a value that
does not convert to its column's type and bytes that are not UTF-8. Whenever it (or a value check made on its
batches) refuses something, :func:`locate` re-reads the file line by line in Python with the same rules and
raises :class:`DataFormatError` naming the file and the 1-based physical line (blank lines counted, header
included). The slow scan only runs on the error path, so a good file is parsed once, at C++ speed.

Converted splits are written as ``.npy`` files (a header, then the raw rows) next to a ``meta.json``, and read
back memory-mapped, so a second load costs a few file opens, whatever the size.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv

from .errors import DataFormatError

GZIP_MAGIC = b"\x1f\x8b"
BLOCK = 1 << 24  # bytes per read of the row counter (FirstLines)
PARSE_BLOCK = 1 << 20  # pyarrow's parse block: 1 MiB parses about 3x faster than 16 MiB here
SLICE_ROWS = 1 << 20  # rows of one converted column counted or encoded at a time
INT_RE = re.compile(r"-?[0-9]+\Z")  # what Arrow's int64 parser accepts: no '+', no '_', no spaces
FLOAT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_I64 = (-(1 << 63), (1 << 63) - 1)


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_binary(path: Path):
    """A binary stream of the file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


class FirstLines(io.RawIOBase):
    """The bytes of a stream up to and including its ``n``-th non-empty line: ``max_rows`` without reading on.

    Non-empty lines are counted with numpy in blocks of ``BLOCK`` bytes; a line split across two blocks (a newline
    at a block's first or last byte included) is counted once, in the block where it ends.
    """

    def __init__(self, raw, n: int, skip_lines: int = 0):
        self.raw, self.left, self.skip = raw, n, skip_lines
        self.prev_nl = True  # the byte before the current block was a newline (or there was none)
        self.done = False

    def readable(self):
        return True

    def readinto(self, b):
        if self.done:
            return 0
        data = self.raw.read(min(len(b), BLOCK))
        if not data:
            self.done = True
            return 0
        buf = np.frombuffer(data, np.uint8)
        nl = np.flatnonzero(buf == 10)
        starts = np.r_[-1, nl[:-1]] if len(nl) else nl  # index of the newline before each line end
        nonempty = nl - starts > 1
        if len(nl):
            nonempty[0] = nl[0] > 0 or not self.prev_nl
        ends = nl[nonempty]
        if self.skip:  # header lines are not rows
            drop = min(self.skip, len(ends))
            ends, self.skip = ends[drop:], self.skip - drop
        if len(ends) >= self.left:
            cut = int(ends[self.left - 1]) + 1
            self.done = True
            data = data[:cut]
        else:
            self.left -= len(ends)
            if len(data):
                self.prev_nl = data[-1:] == b"\n"
        b[: len(data)] = data
        return len(data)


def _input(path: Path, max_rows: int | None, header_lines: int):
    if max_rows is None:
        return pa.input_stream(str(path), compression="gzip" if is_gzip(path) else None)
    return io.BufferedReader(FirstLines(open_binary(path), max_rows, header_lines), buffer_size=BLOCK)


def read_header(path: Path, sep: str) -> list[str]:
    """The first line of a file with a header row, split on ``sep`` (gzip read through)."""
    with open_binary(path) as fh:
        first = fh.readline()
    if not first.strip():
        raise DataFormatError(path, None, "file is empty (expected a header row)")
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(path, 1, f"header is not UTF-8 (byte 0x{first[err.start]:02x})") from None
    return text.rstrip("\r\n").split(sep)


Validator = Callable[[str], "str | None"]  # a field's text -> a problem, or None when it is fine


def v_int(allow_empty: bool = False, lo: int | None = None, hi: int | None = None, what: str = "an integer") -> Validator:
    def check(s: str):
        if s == "" and allow_empty:
            return None
        if not INT_RE.match(s) or not _I64[0] <= int(s) <= _I64[1]:
            return f"is not {what}: {s!r}"
        v = int(s)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            return f"is out of range [{lo}, {hi}]: {s!r}" if hi is not None else f"must be >= {lo}, got {s!r}"
        return None
    return check


def v_float(allow_empty: bool = False) -> Validator:
    def check(s: str):
        if s == "" and allow_empty:
            return None
        return None if FLOAT_RE.match(s) or s.lower() in ("nan", "inf", "-inf") else f"is not a number: {s!r}"
    return check


def v_label(as_float: bool = False) -> Validator:
    """0 or 1: written as an integer, or (``as_float``) as any number equal to 0 or 1 (``1.0``)."""
    def check(s: str):
        ok = (FLOAT_RE.match(s) is not None and float(s) in (0.0, 1.0)) if as_float else s in ("0", "1", "-0")
        return None if ok else f"must be 0 or 1, got {s!r}"
    return check


def locate(path: Path, sep: str, names: list[str], header: bool, validators: dict[str, Validator],
           max_rows: int | None, fallback: str, row_check: Callable[[list[str]], "str | None"] | None = None,
           label_of: dict[str, str] | None = None) -> DataFormatError:
    """The first bad line, found by a Python scan applying the rules of the fast path; ``fallback`` if none."""
    n_fields = len(names)
    pos = {c: names.index(c) for c in validators}
    seen = 0
    with open_binary(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            if header and lineno == 1:
                continue
            line = raw.rstrip(b"\r\n")
            if not line:
                continue  # blank lines are skipped, as pyarrow does, but still counted
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as err:
                return DataFormatError(path, lineno, f"not UTF-8: byte 0x{line[err.start]:02x} at column {err.start + 1} "
                                                     "(a latin-1 or other 8-bit file? convert it to UTF-8)")
            parts = text.split(sep)
            if len(parts) != n_fields:
                return DataFormatError(path, lineno, f"expected {n_fields} fields, found {len(parts)}")
            for col, check in validators.items():
                problem = check(parts[pos[col]])
                if problem:
                    return DataFormatError(path, lineno, f"{(label_of or {}).get(col, 'field ' + col)} {problem}")
            if row_check is not None:
                problem = row_check(parts)
                if problem:
                    return DataFormatError(path, lineno, problem)
            seen += 1
            if max_rows is not None and seen >= max_rows:
                break
    return DataFormatError(path, None, fallback)


@dataclass
class CsvSpec:
    """What a file looks like: its columns, which of them to convert and how, and the per-field rules."""

    sep: str
    names: list[str]  # every column of a line, in order
    header: bool
    types: dict[str, pa.DataType]  # columns to read (others are only counted as fields)
    validators: dict[str, Validator] = field(default_factory=dict)
    label_of: dict[str, str] = field(default_factory=dict)  # how a column is named in messages
    row_check: Callable[[list[str]], "str | None"] | None = None


def batches(path: Path, spec: CsvSpec, max_rows: int | None = None,
            batch_check: Callable[[pa.RecordBatch], bool] | None = None) -> Iterator[pa.RecordBatch]:
    """Typed record batches of a delimited file (plain or gzip), at most ``max_rows`` rows in all.

    ``batch_check(batch)`` returns False when a value is out of its allowed set; then, as for any parse error,
    the file is scanned for the first bad line and :class:`DataFormatError` names it.
    """
    read = pv.ReadOptions(column_names=None if spec.header else spec.names, block_size=PARSE_BLOCK, use_threads=True)
    parse = pv.ParseOptions(delimiter=spec.sep, quote_char=False, double_quote=False, escape_char=False)
    convert = pv.ConvertOptions(column_types=spec.types, include_columns=list(spec.types), null_values=[""],
                                strings_can_be_null=False, quoted_strings_can_be_null=False)

    def fail(msg: str):
        return locate(path, spec.sep, spec.names, spec.header, spec.validators, max_rows, msg, spec.row_check,
                      spec.label_of)

    try:
        reader = pv.open_csv(_input(path, max_rows, int(spec.header)), read_options=read, parse_options=parse,
                             convert_options=convert)
    except pa.ArrowInvalid as err:
        if "Empty CSV file" in str(err):
            raise DataFormatError(path, None, "file is empty") from None
        raise fail(f"cannot parse: {' '.join(str(err).split())[:300]}") from None
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as err:
            raise fail(f"cannot parse: {' '.join(str(err).split())[:300]}") from None
        if batch_check is not None and len(batch) and not batch_check(batch):
            raise fail("a value is out of range, but the line could not be located")
        yield batch


# --- column files --------------------------------------------------------------------------------------------

class NpyWriter:
    """Rows appended to an ``.npy`` file whose final row count is known up front (header written first)."""

    def __init__(self, path: Path, dtype, shape: tuple):
        self.path, self.dtype, self.shape = path, np.dtype(dtype), shape
        self.fh = open(path, "wb")
        np.lib.format.write_array_header_2_0(self.fh, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                       "fortran_order": False, "shape": shape})
        self.rows = 0

    def append(self, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if arr.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path}: rows of shape {arr.shape[1:]}, expected {self.shape[1:]}")
        self.fh.write(arr.tobytes())
        self.rows += len(arr)

    def close(self) -> None:
        self.fh.close()
        if self.rows != self.shape[0]:
            raise RuntimeError(f"{self.path}: wrote {self.rows} rows, the header says {self.shape[0]}")


class RawColumn:
    """A headerless file of fixed-width rows, appended while streaming (the row count is not known yet)."""

    def __init__(self, path: Path, dtype, width: tuple = ()):
        self.path, self.dtype, self.width = path, np.dtype(dtype), tuple(width)
        self.fh = open(path, "wb")
        self.rows = 0

    def append(self, arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        self.fh.write(arr.tobytes())
        self.rows += len(arr)

    def close(self):
        self.fh.close()

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop), read (not mapped) so that only they are resident."""
        row_bytes = self.dtype.itemsize * int(np.prod(self.width or (1,)))
        with open(self.path, "rb") as fh:
            fh.seek(start * row_bytes)
            out = np.fromfile(fh, dtype=self.dtype, count=(stop - start) * (row_bytes // self.dtype.itemsize))
        return out.reshape((stop - start, *self.width))


class StringSpool:
    """One string column spooled to an Arrow IPC stream file while parsing, read back whole or in batches."""

    def __init__(self, path: Path):
        self.path = path
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = None

    def append(self, arr: pa.Array) -> None:
        if self.writer is None:
            self.writer = pa.ipc.new_stream(self.sink, pa.schema([("v", arr.type)]))
        self.writer.write_batch(pa.record_batch([arr], names=["v"]))

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.sink.close()

    def column(self) -> pa.ChunkedArray:
        with pa.OSFile(str(self.path), "rb") as src:
            return pa.ipc.open_stream(src).read_all().column(0)

    def iter(self) -> Iterator[pa.Array]:
        with pa.OSFile(str(self.path), "rb") as src:
            for b in pa.ipc.open_stream(src):
                yield b.column(0)

    def slices(self, rows: int | None = None) -> Iterator[tuple[int, pa.Array]]:
        """(first row, values) of consecutive slices of about ``rows`` rows (default ``SLICE_ROWS``): a column's
        work in bounded memory, whatever the file's length."""
        rows = rows or SLICE_ROWS
        buf, have, start = [], 0, 0
        for arr in self.iter():
            buf.append(arr)
            have += len(arr)
            while have >= rows:
                whole = pa.concat_arrays(buf)
                yield start, whole.slice(0, rows)
                start, have = start + rows, have - rows
                buf = [whole.slice(rows)] if have else []
        if have:
            yield start, pa.concat_arrays(buf)


class Entry:
    """A cache entry under construction: a temporary folder renamed into place only once complete."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.work = self.tmp / "work"
        self.work.mkdir()

    def commit(self, meta: dict) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        (self.tmp / "meta.json").write_text(json.dumps(meta))
        shutil.rmtree(self.folder, ignore_errors=True)
        os.replace(self.tmp, self.folder)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def load_npy(path: Path) -> np.ndarray:
    """A column file memory-mapped copy-on-write (writable for torch, nothing read until touched)."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_2_0 if version == (2, 0) else np.lib.format.read_array_header_1_0
        shape, _, dtype = read(fh)
    if int(np.prod(shape)) == 0:  # nothing to map (a file of zero-width rows)
        return np.zeros(shape, dtype)
    return np.load(path, mmap_mode="c", allow_pickle=False)


# --- vocabularies --------------------------------------------------------------------------------------------

class Counter:
    """Counts of string values accumulated over batches (merged in Arrow, so memory is the distinct values)."""

    def __init__(self):
        self.parts: list[pa.Table] = []
        self.pending = 0  # rows in the parts not merged yet
        self.merged = 0  # rows of the last merged table

    def add(self, values: pa.Array | pa.ChunkedArray) -> None:
        if len(values) == 0:
            return
        vc = values.value_counts()
        if isinstance(vc, pa.ChunkedArray):
            vc = vc.combine_chunks()
        self.parts.append(pa.table({"v": vc.field(0), "n": vc.field(1).cast(pa.int64())}))
        self.pending += len(vc)
        if self.pending > 2 * self.merged + (1 << 20):  # geometric: merging costs O(distinct values) overall
            self._merge()

    def _merge(self) -> None:
        t = pa.concat_tables(self.parts).group_by("v").aggregate([("n", "sum")]).rename_columns(["v", "n"])
        self.parts, self.pending, self.merged = [t], 0, len(t)

    def table(self) -> pa.Table:
        if not self.parts:
            return pa.table({"v": pa.array([], pa.string()), "n": pa.array([], pa.int64())})
        self._merge()
        return self.parts[0]


def vocabulary(counts: pa.Table, min_count: int, drop_empty: bool = True) -> pa.Array:
    """Values seen at least ``min_count`` times, most frequent first, ties by value (a deterministic order)."""
    import pyarrow.compute as pc

    keep = pc.greater_equal(counts["n"], min_count)
    if drop_empty:
        keep = pc.and_(keep, pc.not_equal(counts["v"], ""))
    t = counts.filter(keep).sort_by([("v", "ascending")])
    order = np.argsort(-t["n"].to_numpy(), kind="stable")
    return t["v"].take(pa.array(order)).combine_chunks() if len(t) else pa.array([], counts["v"].type)


def encode(values, vocab: pa.Array, offset: int, missing: int) -> np.ndarray:
    """Position of each value in ``vocab`` plus ``offset``; values not in it get ``missing``."""
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):  # one lookup: index_in hashes the value set again for every chunk
        values = values.combine_chunks()
    idx = pc.index_in(values, value_set=vocab)
    out = idx.to_numpy(zero_copy_only=False)  # float with NaN where null
    if idx.null_count:
        res = np.full(len(out), missing, np.int64)
        ok = idx.is_valid().to_numpy(zero_copy_only=False)
        res[ok] = idx.filter(idx.is_valid()).to_numpy().astype(np.int64) + offset
        return res
    return out.astype(np.int64) + offset


SPLIT_BLOCK = 1 << 22  # rows per independently permuted block of a large file's split (a 32 MiB permutation)


def _block_counts(n: int, fractions, block: int) -> list[tuple[int, int, int]]:
    """(train, valid, test) rows of every block of ``block`` consecutive rows: differences of the cumulative
    targets ``round(e * f)`` at each block end ``e``, so the totals are exactly those of one draw over all rows."""
    out, done_a, done_b, start = [], 0, 0, 0
    for end in [*range(block, n, block), n]:
        a, b = int(round(end * fractions[0])), int(round(end * fractions[1]))
        out.append((a - done_a, b - done_b, (end - start) - (a - done_a) - (b - done_b)))
        done_a, done_b, start = a, b, end
    return out


def split_assignment(n: int, fractions, seed: int, block: int = SPLIT_BLOCK) -> np.ndarray:
    """Split id (0 train, 1 valid, 2 test) of every row, drawn in bounded memory.

    Up to ``block`` rows this is the permutation of ``schema.split_indices`` (so small files keep their splits).
    A larger file is cut into blocks of ``block`` consecutive rows and each block is split by its own seeded
    permutation, with per-block sizes that add up to the single-draw totals: memory is one block's permutation
    instead of one over all rows (1.6 GB for a Terabyte day file), and every stretch of the file is split in the
    same proportions (a stratified draw: Criteo files are in time order).
    """
    from .schema import split_indices

    if n <= block:
        tr, va, te = split_indices(n, fractions, seed)
        out = np.empty(n, np.uint8)
        out[tr.numpy()], out[va.numpy()], out[te.numpy()] = 0, 1, 2
        return out
    return _blockwise(n, _block_counts(n, fractions, block), seed, block)


def holdout_assignment(n: int, fraction: float, seed: int, block: int = SPLIT_BLOCK) -> np.ndarray:
    """1 for the ``fraction`` of rows held out (at least one), else 0; blockwise above ``block`` rows like
    :func:`split_assignment` (the draw of up to ``block`` rows is ``default_rng(seed).permutation``)."""
    k = max(1, int(round(n * fraction)))
    if n <= block:
        out = np.zeros(n, np.uint8)
        out[np.random.default_rng(seed).permutation(n)[:k]] = 1
        return out
    counts = [(t + c, v, 0) for t, v, c in _block_counts(n, (0.0, k / n, 1 - k / n), block)]
    return _blockwise(n, counts, seed, block)


def _blockwise(n: int, counts, seed: int, block: int) -> np.ndarray:
    out = np.empty(n, np.uint8)
    for i, (a, b, c) in enumerate(counts):
        lo = i * block
        size = min(block, n - lo)
        if a + b + c != size or min(a, b, c) < 0:
            raise AssertionError(f"block {i}: counts {(a, b, c)} do not cover its {size} rows")
        perm = np.random.default_rng([seed, i]).permutation(size)
        part = out[lo:lo + size]
        part[perm[:a]], part[perm[a:a + b]], part[perm[a + b:]] = 0, 1, 2
    return out
