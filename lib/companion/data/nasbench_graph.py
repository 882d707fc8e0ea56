"""NAS-Bench-Graph (Qin et al., NeurIPS 2022 Datasets and Benchmarks): measured results of every GNN
architecture of its space on nine graph datasets, as shipped in the ``nas-bench-graph`` wheel on PyPI.

The space: 4 computing nodes; a macro pattern says which earlier node feeds each one (9 canonical patterns, the
``LINKS`` below) and each node runs one of 9 operations (``OPS``; the ``proteins`` table uses 5). Isomorphic
architectures are merged, leaving 26,206 distinct ones per dataset (2,021 on proteins). Each ``light/<name>.bench``
file is a pickled dict: architecture hash -> ``{"valid_perf", "perf" (test accuracy), "latency" (s), "para"
(parameters, millions)}``, where the hash is ``link_index * 10**4 + sum(op_index_k * 10**(3-k))`` with op indices
into the 9-op list (the package's ``Arch.hash_arch``; the proteins file uses the same base-10 hash over the 9-op
list, with only its 5 ops occurring, checked on the shipped file), so the decision vector is read back from the key.

We fetch the wheel once with ``pip download --no-deps`` (pinned by its sha256), unpickle its tables with the
restricted unpickler (:mod:`companion.data.safe_pickle`: NumPy and builtins only) and cache one parquet table.
``COMPANION_NASBENCH_GRAPH`` may point at the wheel file or at a folder of ``.bench`` files instead.
"""
from __future__ import annotations

import math
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..runtime import cache_dir, log
from . import safe_pickle
from .errors import DataFormatError, MissingDataError
from .pypi_fetch import check_sha256, pip_download

WHEEL = "nas-bench-graph==1.4.0"
WHEEL_SHA256 = "f6ea43836262f1ee8d60c35bbbd20aa2536ee1f8492025e3b0b90096f5afc6ad"
DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv", "proteins")
LINKS = ((0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 1, 1), (0, 0, 1, 2), (0, 0, 1, 3), (0, 1, 1, 1), (0, 1, 1, 2),
         (0, 1, 2, 2), (0, 1, 2, 3))
OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
OPS_PROTEINS = ("gcn", "sage", "arma", "fc", "skip")
FIELDS = {"valid_perf": "valid", "perf": "test", "latency": "latency", "para": "params"}
COLUMNS = ["dataset", "hash", "link", "op0", "op1", "op2", "op3", "valid", "test", "latency", "params"]


def ops_of(dataset: str) -> tuple[str, ...]:
    return OPS_PROTEINS if dataset == "proteins" else OPS


def decode_hash(h: int, dataset: str = "cora") -> tuple[int, tuple[int, int, int, int]]:
    """(link index, four op indices into ``ops_of(dataset)``) of a table key; ValueError for a key outside it."""
    b, n_ops = 10, len(OPS)
    h = int(h)
    if h < 0:
        raise ValueError(f"negative architecture hash {h}")
    digits = []
    for _ in range(4):
        h, d = divmod(h, b)
        digits.append(d)
    if h >= len(LINKS) or any(d >= n_ops for d in digits):
        raise ValueError(f"hash does not decode to a link pattern < {len(LINKS)} and ops < {n_ops}")
    names = ops_of(dataset)
    try:
        ops = tuple(names.index(OPS[d]) for d in reversed(digits))
    except ValueError:
        raise ValueError(f"hash uses an op outside {dataset}'s ops {names}") from None
    return h, ops


def encode_arch(link, ops, dataset: str = "cora") -> int:
    """The table key of a canonical architecture given as its link list and op names (the package's hash)."""
    names = ops_of(dataset)
    link = tuple(int(v) for v in link)
    if link not in LINKS:
        raise ValueError(f"link {list(link)} is not one of the 9 canonical patterns {[list(l) for l in LINKS]}")
    h = LINKS.index(link)
    for op in ops:
        if op not in names:
            raise ValueError(f"op {op!r} is not one of {dataset}'s ops {names}")
        h = h * 10 + OPS.index(op)
    return h


def read_bench(source, dataset: str, name: str | None = None) -> pd.DataFrame:
    """One ``.bench`` table (a path, or bytes read from the wheel) as a frame with :data:`COLUMNS`. A malformed
    entry raises :class:`DataFormatError` naming the file and the architecture key."""
    name = name or (str(source) if not isinstance(source, (bytes, bytearray)) else f"{dataset}.bench")
    try:
        obj = safe_pickle.loads(bytes(source)) if isinstance(source, (bytes, bytearray)) else safe_pickle.load(source)
    except safe_pickle.UnsafePickleError:
        raise
    except Exception as e:  # truncated or not a pickle at all
        raise DataFormatError(name, None, f"not a readable NAS-Bench-Graph table ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or not obj:
        raise DataFormatError(name, None, f"expected a non-empty dict hash -> results, got {type(obj).__name__}")
    rows = []
    for key, entry in obj.items():
        try:
            link, ops = decode_hash(key, dataset)
        except (TypeError, ValueError) as e:
            raise DataFormatError(name, None, f"architecture key {key!r}: {e}") from None
        if not isinstance(entry, dict) or set(FIELDS) - set(entry):
            raise DataFormatError(name, None, f"architecture key {key}: entry lacks fields "
                                              f"{sorted(set(FIELDS) - set(entry or {}))}")
        vals = []
        for f in FIELDS:
            try:
                v = float(entry[f])
            except (TypeError, ValueError):
                raise DataFormatError(name, None, f"architecture key {key}: {f}={entry[f]!r} is not a number") from None
            if not math.isfinite(v):
                raise DataFormatError(name, None, f"architecture key {key}: {f} is {v}")
            vals.append(v)
        rows.append((dataset, int(key), link, *ops, *vals))
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.sort_values("hash", kind="stable").reset_index(drop=True)


def _tables_from_wheel(wheel: Path) -> pd.DataFrame:
    frames = []
    with zipfile.ZipFile(wheel) as zf:
        for d in DATASETS:
            member = f"nas_bench_graph/light/{d}.bench"
            frames.append(read_bench(zf.read(member), d, name=f"{wheel.name}:{member}"))
    return pd.concat(frames, ignore_index=True)


def _tables_from_folder(folder: Path) -> pd.DataFrame:
    found = [d for d in DATASETS if (folder / f"{d}.bench").exists()]
    if not found:
        raise MissingDataError("NAS-Bench-Graph tables", [folder / f"{d}.bench" for d in DATASETS],
                               "Expected the wheel's light/<dataset>.bench files.")
    return pd.concat([read_bench(folder / f"{d}.bench", d) for d in found], ignore_index=True)


def fetch_nasbench_graph(dest: Path | None = None) -> Path:
    """Download the wheel (no dependencies, sha256-pinned), unpickle its tables safely, cache them as parquet."""
    dest = Path(dest) if dest else cache_dir() / "nasbench_graph"
    table = dest / "nasbench_graph.parquet"
    if table.exists():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log.info("fetching NAS-Bench-Graph from the %s wheel (no dependencies)", WHEEL)
        wheel = pip_download(WHEEL, WHEEL_SHA256, Path(tmp), sdist=False, what="NAS-Bench-Graph",
                             hint="Offline? Set COMPANION_NASBENCH_GRAPH to the wheel file or to a folder of its "
                                  "light/<dataset>.bench files.")
        df = _tables_from_wheel(wheel)
    df.to_parquet(table, index=False)
    (dest / "SOURCE.txt").write_text(f"unpickled (restricted: numpy + builtins only) from the PyPI wheel {WHEEL} "
                                     f"(sha256 {WHEEL_SHA256})\n{len(df)} rows over {df.dataset.nunique()} datasets\n")
    return dest


def load_table(path=None) -> tuple[pd.DataFrame, str]:
    """Every dataset's table in one frame, and where it came from."""
    path = path or os.environ.get("COMPANION_NASBENCH_GRAPH")
    if path:
        p = Path(path)
        if p.is_dir():
            return _tables_from_folder(p), str(p)
        if not p.exists():
            raise MissingDataError("NAS-Bench-Graph", [p], "COMPANION_NASBENCH_GRAPH names a file that does not exist.")
        check_sha256(p, WHEEL_SHA256)
        return _tables_from_wheel(p), str(p)
    folder = fetch_nasbench_graph()
    return pd.read_parquet(folder / "nasbench_graph.parquet"), f"{WHEEL} wheel (cached in {folder})"


@dataclass
class NASBenchGraph:
    """One dataset's table: ``frame`` rows in hash order, decision vectors ``codes`` [n, 5] (link, op0..op3)."""

    dataset: str
    frame: pd.DataFrame
    source: str

    @property
    def ops(self) -> tuple[str, ...]:
        return ops_of(self.dataset)

    @property
    def codes(self) -> np.ndarray:
        return self.frame[["link", "op0", "op1", "op2", "op3"]].to_numpy(np.int64)

    @property
    def cardinalities(self) -> list[int]:
        return [len(LINKS)] + [len(self.ops)] * 4

    def label(self, row: int) -> str:
        r = self.frame.iloc[int(row)]
        return f"link {list(LINKS[int(r.link)])} ops {[self.ops[int(r[f'op{k}'])] for k in range(4)]}"

    def lookup(self, link, ops) -> dict:
        """The measured results of one architecture (canonical link pattern and op names)."""
        h = encode_arch(link, ops, self.dataset)
        hit = self.frame.index[self.frame["hash"].to_numpy() == h]
        if not len(hit):
            raise KeyError(f"{self.dataset}: architecture link={list(link)} ops={list(ops)} (hash {h}) is not in the "
                           "table (not canonical: the benchmark merged it with an isomorphic one)")
        return self.frame.loc[hit[0], ["valid", "test", "latency", "params"]].to_dict()

    def __repr__(self) -> str:
        return f"NASBenchGraph({self.dataset}: {len(self.frame)} architectures, from {self.source})"


def load_nasbench_graph(dataset: str, path=None) -> NASBenchGraph:
    if dataset not in DATASETS:
        raise ValueError(f"unknown NAS-Bench-Graph dataset {dataset!r}; it has {DATASETS}")
    df, source = load_table(path)
    sub = df[df.dataset == dataset].sort_values("hash", kind="stable").reset_index(drop=True)
    if sub.empty:
        raise MissingDataError(f"NAS-Bench-Graph table {dataset!r}", [source], "That table was not among the files read.")
    return NASBenchGraph(dataset, sub, source)
