"""Loaders for the BARS "x1" CSV splits InterFormer is benchmarked on (reczoo/BARS, FuxiCTR format).

Each dataset is a folder with ``train.csv`` and ``test.csv`` (comma-separated, a header row); sequence columns
hold ids joined by ``^`` (oldest first). As in the BARS configs: categories seen fewer than ``min_count`` times
in training map to an out-of-vocabulary id, sequences keep their last ``max_len`` events and are pre-padded,
a history column shares its vocabulary and embedding with its target column (``item_history`` with
``item_id``), and gAUC groups by user. A ``meta`` column (AmazonElectronics' ``user_id``) is read only to group
rows for gAUC, never embedded, as in the BARS dataset config. The x1 splits have no validation file (BARS
validated on the test file); here ``valid_fraction`` of the training rows are held out instead, or the test file
is reused when ``valid_fraction=0`` to match BARS exactly.

KuaiVideo_x1 ships 64-d visual item embeddings (``item_visual_emb_dim64.h5``: datasets ``key``, the item ids, and
``value``, [items, 64]). When the file is beside the CSVs it adds BARS' three pretrained fields: ``item_emb`` (the
target item) and ``pos_items_emb`` / ``neg_items_emb`` (the two histories), whose frozen table is
``splits.pretrained["item_emb"]`` (rows 0 and 1, padding and unknown, are zeros).

Files stream through pyarrow (:mod:`.stream`) and are converted once into memory-mapped ``.npy`` columns in the
cache; the published md5 sums (reczoo/Datasets READMEs) are checked on that first conversion.

Ids: 0 is padding, 1 is out-of-vocabulary/rare, real categories start at 2.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from ..runtime import cache_dir, log
from . import stream as st
from .errors import DataFormatError, MissingDataError
from .pypi_fetch import file_digest
from .schema import CTRDataset, CTRSplits, Field, Schema

PAD, OOV = 0, 1
CACHE_FORMAT = 3  # 1: one torch file loaded whole; 2: memory-mapped .npy columns; 3: blockwise holdout above 4M rows
ASSEMBLE_ROWS = 1 << 16


@dataclass(frozen=True)
class SeqCol:
    name: str
    share_with: str | None
    max_len: int


@dataclass(frozen=True)
class Visual:
    """Pretrained item vectors: an h5 file with ``key`` and ``value``, looked up by the ids of ``column``."""

    file: str
    column: str
    dim: int
    fields: tuple[tuple[str, str], ...]  # (new field, the column whose ids it looks up)


@dataclass(frozen=True)
class BarsSpec:
    name: str
    label: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    sequences: tuple[SeqCol, ...]
    group: str
    min_count: int = 10
    splitter: str = "^"
    url: str = ""
    md5: dict = field(default_factory=dict)  # published md5 sums (reczoo/Datasets README of the split)
    visual: Visual | None = None


BARS_SPECS = {
    "AmazonElectronics_x1": BarsSpec(
        "AmazonElectronics_x1", "label", ("item_id", "cate_id"), (),
        (SeqCol("item_history", "item_id", 100), SeqCol("cate_history", "cate_id", 100)), "user_id", min_count=1,
        url="https://huggingface.co/datasets/reczoo/AmazonElectronics_x1",
        md5={"train.csv": "e9bf80b92985e463db18fdc753d347b5", "test.csv": "57a20e82fe736dd495f2eaf0669bf6d0"}),
    "TaobaoAd_x1": BarsSpec(
        "TaobaoAd_x1", "clk",
        ("userid", "cms_segid", "cms_group_id", "final_gender_code", "age_level", "pvalue_level", "shopping_level",
         "occupation", "new_user_class_level", "adgroup_id", "cate_id", "campaign_id", "customer", "brand", "pid",
         "btag"), ("price",),
        (SeqCol("cate_his", "cate_id", 50), SeqCol("brand_his", "brand", 50), SeqCol("btag_his", "btag", 50)),
        "userid", url="https://huggingface.co/datasets/reczoo/TaobaoAd_x1",
        md5={"train.csv": "eaabfc8629f23519b04593e26c7522fc", "test.csv": "f5ae6197e52385496d46e2867c1c8da1"}),
    "KuaiVideo_x1": BarsSpec(
        "KuaiVideo_x1", "is_click", ("user_id", "item_id"), (),
        (SeqCol("pos_items", "item_id", 100), SeqCol("neg_items", "item_id", 100)), "user_id",
        url="https://huggingface.co/datasets/reczoo/KuaiVideo_x1",
        md5={"train.csv": "16f13734411532cc313caf2180bfcd56", "test.csv": "ba26c01caaf6c65c272af11aa451fc7a"},
        visual=Visual("item_visual_emb_dim64.h5", "item_id", 64,
                      (("item_emb", "item_id"), ("pos_items_emb", "pos_items"), ("neg_items_emb", "neg_items")))),
}

# What the BARS/FuxiCTR tuned runs of each split used, read from the published run logs in reczoo/BARS
# (``benchmarks/<Model>/<Model>_<dataset>_x1_tuner_config_*`` READMEs): the values a `paper`-scale run should take.
# ``None`` where the logs seen disagree or were not found. gAUC (grouped by ``BarsSpec.group``) is the metric the
# issue asks to monitor.
BARS_RECIPES = {
    "AmazonElectronics_x1": {"embedding_dim": 64, "batch_size": 1024, "embedding_regularizer": 5e-3, "monitor": "gAUC",
                             "source": "DNN, DCN, DCNv2, DeepFM, DIN, DIEN logs: embedding_dim 64, "
                                       "embedding_regularizer 0.005, batch_size 1024"},
    "TaobaoAd_x1": {"embedding_dim": 32, "batch_size": 8192, "embedding_regularizer": None, "monitor": "gAUC",
                    "source": "DIN config (research notes, meta_ranking.md 1.8): embedding_dim 32, batch 8192"},
    "KuaiVideo_x1": {"embedding_dim": 64, "batch_size": None, "embedding_regularizer": None, "monitor": "gAUC",
                     "source": "BARS leaderboard note: embedding size 64; logs use batch 4096 or 8192 and "
                               "embedding_regularizer 1e-4 or 5e-5 depending on the model"},
}


def bars_root(root=None) -> Path:
    return Path(root or os.environ.get("COMPANION_BARS") or cache_dir() / "bars")


def md5sum(path: Path) -> str:
    return file_digest(path, "md5")


def check_md5(path: Path, expected: str, url: str) -> None:
    """Compare with the published sum; a passed check is remembered (keyed by path, size and mtime) so that other
    options of the same files do not hash gigabytes again."""
    stamp = path.stat()
    memo = cache_dir() / "bars_md5" / hashlib.sha1(
        f"{path.resolve()}|{stamp.st_size}|{stamp.st_mtime_ns}|{expected}".encode()).hexdigest()
    if memo.exists():
        return
    got = md5sum(path)
    if got == expected:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(f"{path} md5 {got}\n")
        return
    if got != expected:
        raise DataFormatError(path, None, f"md5 {got} does not match the published {expected} (reczoo/Datasets "
                                          f"README): a truncated or different download. Fetch it again from {url}, "
                                          "or pass verify_md5=False to load this file as it is")


def _csv_spec(path: Path, spec: BarsSpec) -> tuple[st.CsvSpec, list[str]]:
    header = st.read_header(path, ",")
    seqs = [s.name for s in spec.sequences]
    need = [spec.label, *spec.categorical, *spec.numeric, *seqs]
    missing = [c for c in [*need, spec.group] if c not in header]
    if missing:
        raise DataFormatError(path, 1, f"{spec.name} header lacks columns {missing}; found {header}")
    types = {spec.label: pa.float64(), **{c: pa.string() for c in [*spec.categorical, spec.group, *seqs]},
             **{c: pa.float64() for c in spec.numeric}}
    csv = st.CsvSpec(",", header, True, types,
                     validators={spec.label: st.v_label(as_float=True), **{c: st.v_float(True) for c in spec.numeric}},
                     label_of={spec.label: f"label {spec.label!r}", **{c: f"numeric column {c!r}" for c in spec.numeric}})
    return csv, header


class _Part:
    """One CSV parsed once: label, numeric values and group spooled, categorical and sequence strings spooled."""

    def __init__(self, path: Path, spec: BarsSpec, work: Path, tag: str, max_rows: int | None):
        self.path, self.n = path, 0
        csv, _ = _csv_spec(path, spec)
        self.label = st.RawColumn(work / f"{tag}.label.bin", np.float32)
        self.num = st.RawColumn(work / f"{tag}.num.bin", np.float64, (len(spec.numeric),))
        cols = [*spec.categorical, spec.group]
        self.spool = {c: st.StringSpool(work / f"{tag}.{i}.arrow") for i, c in enumerate(dict.fromkeys(cols))}
        # histories are split once, here: their tokens and per-row lengths are spooled batch by batch
        self.tokens = {s.name: (st.StringSpool(work / f"{tag}.{s.name}.tok.arrow"),
                                st.StringSpool(work / f"{tag}.{s.name}.len.arrow")) for s in spec.sequences}
        self.stats = np.zeros((3, len(spec.numeric)))  # count, sum, sum of squares

        def ok(b):
            y = b.column(spec.label)
            return y.null_count == 0 and pc.all(pc.is_in(y, value_set=pa.array([0.0, 1.0]))).as_py()

        for b in st.batches(path, csv, max_rows, batch_check=ok):
            self.label.append(b.column(spec.label).to_numpy().astype(np.float32))
            num = np.stack([b.column(c).to_numpy(zero_copy_only=False) for c in spec.numeric], 1) \
                if spec.numeric else np.zeros((len(b), 0))
            num = np.nan_to_num(num, nan=0.0)  # an empty numeric field is 0, as in BARS' fill_na
            self.num.append(num)
            self.stats += [np.full(num.shape[1], len(b)), num.sum(0), (num ** 2).sum(0)]
            for c, sp in self.spool.items():
                sp.append(b.column(c))
            for c, (tok, ln) in self.tokens.items():
                lst = pc.split_pattern(b.column(c), pattern=spec.splitter)
                tok.append(pc.list_flatten(lst))
                ln.append(pc.list_value_length(lst))
            self.n += len(b)
        for f in (self.label, self.num, *self.spool.values(), *(x for pair in self.tokens.values() for x in pair)):
            f.close()
        if self.n == 0:
            raise DataFormatError(path, None, "has a header but no data rows")


def _encode_seq(flat, lengths, vocab: pa.Array, max_len: int) -> np.ndarray:
    """The tokens of a batch of ``a^b^c`` histories (flattened, with each row's count) -> a pre-padded
    [N, max_len] id matrix keeping the last max_len events; an empty token (an empty history) is padding."""
    ids = st.encode(flat, vocab, offset=2, missing=OOV)
    ids[pc.equal(pc.binary_length(flat), 0).to_numpy(zero_copy_only=False)] = PAD
    lengths = lengths.to_numpy(zero_copy_only=False).astype(np.int64)
    n = len(lengths)
    out = np.zeros((n, max_len), dtype=np.int64)
    if n and (lengths == max_len).all():  # every history exactly full: a reshape
        out[:] = ids.reshape(n, max_len)
        return out
    ends = np.cumsum(lengths)
    keep = np.minimum(lengths, max_len)
    row = np.repeat(np.arange(n), keep)
    within = np.arange(keep.sum()) - np.repeat(np.cumsum(keep) - keep, keep)
    out[row, np.repeat(max_len - keep, keep) + within] = ids[np.repeat(ends - keep, keep) + within]
    return out


def _read_visual(path: Path, vis: Visual) -> tuple[pa.Array, np.ndarray]:
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - h5py is a dependency
        raise ImportError("reading KuaiVideo's visual embeddings needs h5py (pip install h5py)") from err
    try:
        with h5py.File(path, "r") as hf:
            if "key" not in hf or "value" not in hf:
                raise DataFormatError(path, None, f"expected datasets 'key' and 'value', found {sorted(hf.keys())}")
            keys, values = hf["key"][:], hf["value"][:]
    except OSError as err:
        raise DataFormatError(path, None, f"not a readable HDF5 file ({err})") from None
    if values.ndim != 2 or values.shape[1] != vis.dim or len(keys) != len(values):
        raise DataFormatError(path, None, f"expected 'value' of shape [len(key)={len(keys)}, {vis.dim}], "
                                          f"found {list(values.shape)}")
    keys = [k.decode() if isinstance(k, bytes) else str(k) for k in keys.tolist()]
    if len(set(keys)) != len(keys):
        raise DataFormatError(path, None, "'key' holds duplicate item ids")
    return pa.array(keys, pa.string()), values.astype(np.float32)


def load_bars(name: str, root=None, max_rows: int | None = None, min_count: int | None = None,
              valid_fraction: float = 0.1, seed: int = 0, cache: bool = True, verify_md5: bool = True) -> CTRSplits:
    """Load ``<root>/<name>/{train,test}.csv`` (root: argument, $COMPANION_BARS, or the cache).

    The first call converts the CSVs (streaming, bounded memory) into the cache; later calls memory-map it.
    ``verify_md5`` checks the files against the published sums on that first conversion (full files only:
    ``max_rows`` does not change the check, a cut or edited file fails it).
    """
    if name not in BARS_SPECS:
        raise ValueError(f"unknown BARS dataset {name!r}; known: {sorted(BARS_SPECS)}")
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    spec = BARS_SPECS[name]
    min_count = spec.min_count if min_count is None else min_count
    folder = bars_root(root) / name
    files = {s: folder / f"{s}.csv" for s in ("train", "test")}
    absent = [p for p in files.values() if not p.exists()]
    if absent:
        raise MissingDataError(f"{name} ({', '.join(p.name for p in absent)})", absent,
                               f"Download the split from {spec.url} and unpack train.csv and test.csv into {folder} "
                               "(or pass root=... / set COMPANION_BARS to the folder that holds the dataset folders).")
    visual = folder / spec.visual.file if spec.visual else None
    if visual is not None and not visual.exists():
        log.warning("%s: %s not found; loading without the visual item embeddings (BARS uses them: put the file "
                    "from %s beside the CSVs)", name, visual, spec.url)
        visual = None
    stamp = "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in [*files.values(), *([visual] if visual else [])])
    key = hashlib.sha1(f"{stamp}|{max_rows}|{min_count}|{valid_fraction}|{seed}|{CACHE_FORMAT}".encode()).hexdigest()[:16]
    entry_dir = cache_dir() / "bars_columns" / f"{name}_{key}"
    if cache and (entry_dir / "meta.json").exists():
        splits = _read_cached(entry_dir, valid_fraction)
        if splits is not None:
            log.info("%s: cached columns %s", name, entry_dir)
            return splits
    if verify_md5:
        for s, p in files.items():
            if p.name in spec.md5:
                check_md5(p, spec.md5[p.name], spec.url)
    if not cache:
        entry_dir = entry_dir.with_name(entry_dir.name + f".nocache{os.getpid()}")
    _convert(spec, files, visual, min_count, valid_fraction, seed, max_rows, entry_dir, folder)
    splits = _read_cached(entry_dir, valid_fraction)
    if splits is None:
        raise RuntimeError(f"{entry_dir}: the entry just written cannot be read back")
    if not cache:
        splits = _in_memory(splits, valid_fraction)
        shutil.rmtree(entry_dir, ignore_errors=True)
    return splits


def _in_memory(splits: CTRSplits, valid_fraction: float) -> CTRSplits:
    def copy(d: CTRDataset) -> CTRDataset:
        return CTRDataset(*(None if t is None else t.clone() for t in (d.dense, d.sparse, d.label, d.seq, d.group)))

    test = copy(splits.test)
    valid = test if valid_fraction == 0 else copy(splits.valid)
    pre = {k: v.clone() for k, v in splits.pretrained.items()}
    return CTRSplits(splits.schema, copy(splits.train), valid, test, splits.info, pre)


def _convert(spec: BarsSpec, files: dict, visual: Path | None, min_count: int, valid_fraction: float, seed: int,
             max_rows: int | None, entry_dir: Path, folder: Path) -> None:
    entry = st.Entry(entry_dir)
    try:
        w = entry.work
        parts = {s: _Part(files[s], spec, w, s, max_rows) for s in ("train", "test")}
        tr = parts["train"]
        # vocabularies from training rows only; a history shares its target column's vocabulary
        vocabs: dict[str, pa.Array] = {}
        for col in spec.categorical:
            cnt = st.Counter()
            for _, part in tr.spool[col].slices():
                cnt.add(part)
            for s in spec.sequences:
                if s.share_with == col:
                    for arr in tr.tokens[s.name][0].iter():
                        cnt.add(arr)  # empty tokens are counted, then dropped by vocabulary()
            vocabs[col] = st.vocabulary(cnt.table(), min_count)
        for s in spec.sequences:
            if s.share_with is None:
                cnt = st.Counter()
                for arr in tr.tokens[s.name][0].iter():
                    cnt.add(arr)
                vocabs[s.name] = st.vocabulary(cnt.table(), min_count)
        c, s1, s2 = tr.stats
        mean = s1 / np.maximum(c, 1)
        std = np.sqrt(np.maximum(s2 - c * mean ** 2, 0) / np.maximum(c - 1, 1))
        std = np.where(std > 0, std, 1.0)  # a constant column is left centred, as pandas' `std() or 1.0`
        # distinct group ids of both files in order of first appearance (unique of per-slice uniques keeps it)
        groups = pc.unique(pa.chunked_array([pc.unique(sl) for p in (tr, parts["test"])
                                             for _, sl in p.spool[spec.group].slices()]))
        # pretrained visual vectors: their own vocabulary (every key of the h5 file, in its order)
        vis_vocab, pretrained = None, {}
        if visual is not None:
            vis_vocab, values = _read_visual(visual, spec.visual)
            table = np.zeros((len(values) + 2, spec.visual.dim), np.float32)
            table[2:] = values
            np.save(entry.tmp / "pretrained.item_emb.npy", table)
            pretrained = {"item_emb": "pretrained.item_emb.npy"}
        seq_specs = [(s.name, s.name, vocabs[s.share_with or s.name], s.max_len) for s in spec.sequences]
        extra_sparse = []
        if vis_vocab is not None:
            for new, src in spec.visual.fields:
                if src in spec.categorical:
                    extra_sparse.append((new, src))
                else:
                    seq_specs.append((new, src, vis_vocab, next(s.max_len for s in spec.sequences if s.name == src)))
        # encode every part's columns into row files
        enc = {}
        for tag, part in parts.items():
            ids_f = st.RawColumn(w / f"{tag}.ids.bin", np.int64)
            for col, vocab in [*((c, vocabs[c]) for c in spec.categorical), *((src, vis_vocab) for _, src in extra_sparse)]:
                for _, sl in part.spool[col].slices():
                    ids_f.append(st.encode(sl, vocab, offset=2, missing=OOV))
            ids_f.close()
            grp_f = st.RawColumn(w / f"{tag}.group.bin", np.int64)
            for _, sl in part.spool[spec.group].slices():
                grp_f.append(st.encode(sl, groups, offset=0, missing=-1))
            grp_f.close()
            seq_f = []
            for new, src, vocab, max_len in seq_specs:
                f = st.RawColumn(w / f"{tag}.seq.{new}.bin", np.int64, (max_len,))
                tok, ln = part.tokens[src]
                for flat, lengths in zip(tok.iter(), ln.iter()):
                    f.append(_encode_seq(flat, lengths, vocab, max_len))
                f.close()
                seq_f.append(f)
            enc[tag] = (ids_f, grp_f, seq_f)
        # which training rows are held out for validation (the same draw as before the streaming rewrite)
        assign = np.zeros(tr.n, np.uint8)
        if valid_fraction > 0:
            assign = st.holdout_assignment(tr.n, valid_fraction, seed)
            vnote = f"{valid_fraction:.0%} of train held out (seed {seed})"
        else:
            vnote = "test file reused as validation (the BARS convention)"
        n_sparse = len(spec.categorical) + len(extra_sparse)
        lens = [m for *_, m in seq_specs]
        width = max(lens)
        if len(set(lens)) > 1:
            raise ValueError(f"{spec.name}: sequences of different max_len {lens} cannot share one tensor")
        outs = {"train": (parts["train"], 0), "valid": (parts["train"], 1), "test": (parts["test"], None)}
        sizes = {}
        for out, (part, which) in outs.items():
            if out == "valid" and valid_fraction == 0:
                continue
            tag = "train" if part is tr else "test"
            sel = np.ones(part.n, bool) if which is None else assign == which
            m = int(sel.sum())
            sizes[out] = m
            wr = {"dense": st.NpyWriter(entry.tmp / f"{out}.dense.npy", np.float32, (m, len(spec.numeric))),
                  "sparse": st.NpyWriter(entry.tmp / f"{out}.sparse.npy", np.int64, (m, n_sparse)),
                  "label": st.NpyWriter(entry.tmp / f"{out}.label.npy", np.float32, (m,)),
                  "seq": st.NpyWriter(entry.tmp / f"{out}.seq.npy", np.int64, (m, len(seq_specs), width)),
                  "group": st.NpyWriter(entry.tmp / f"{out}.group.npy", np.int64, (m,))}
            ids_f, grp_f, seq_f = enc[tag]
            n = part.n
            for a in range(0, n, ASSEMBLE_ROWS):
                b = min(n, a + ASSEMBLE_ROWS)
                k = sel[a:b]
                if not k.any():
                    continue
                wr["label"].append(part.label.read(a, b)[k])
                wr["dense"].append(((part.num.read(a, b) - mean) / std)[k])
                wr["sparse"].append(np.stack([ids_f.read(j * n + a, j * n + b) for j in range(n_sparse)], 1)[k])
                wr["seq"].append(np.stack([f.read(a, b) for f in seq_f], 1)[k])
                wr["group"].append(grp_f.read(a, b)[k])
            for x in wr.values():
                x.close()
        fields = [Field(c, "dense") for c in spec.numeric]
        fields += [Field(c, "sparse", len(vocabs[c]) + 2) for c in spec.categorical]
        fields += [Field(new, "sparse", len(vis_vocab) + 2, pretrained="item_emb") for new, _ in extra_sparse]
        fields += [Field(s.name, "sequence", len(vocabs[s.share_with or s.name]) + 2, s.max_len, share_with=s.share_with)
                   for s in spec.sequences]
        if vis_vocab is not None:
            fields += [Field(new, "sequence", len(vis_vocab) + 2, ml, share_with="item_emb")
                       for new, _, _, ml in seq_specs[len(spec.sequences):]]
        info = {"source": f"BARS {spec.name} ({folder})", "validation": vnote, "min_count": min_count,
                "gauc_group": f"{spec.group} (meta: grouping only)" if spec.group not in spec.categorical else spec.group,
                "visual_embeddings": str(visual) if visual else "absent"}
        entry.commit({"format": CACHE_FORMAT, "fields": [_field_row(f) for f in fields], "info": info,
                      "sizes": sizes, "pretrained": pretrained})
    except BaseException:
        entry.abort()
        raise


def _field_row(f: Field) -> list:
    return [f.name, f.kind, f.vocab_size, f.max_len, f.share_with, f.pretrained]


def _read_cached(folder: Path, valid_fraction: float) -> CTRSplits | None:
    """The cached splits (memory-mapped), or ``None`` after naming and deleting an entry that cannot be read
    (truncated, an older format, an edited meta file); the caller then rebuilds it from the CSVs."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"not a format-{CACHE_FORMAT} cache entry")
        schema = Schema([Field(n, k, v, m, share_with=sw, pretrained=pt) for n, k, v, m, sw, pt in meta["fields"]])
        parts = {}
        for part, size in meta["sizes"].items():
            cols = {c: torch.from_numpy(st.load_npy(folder / f"{part}.{c}.npy"))
                    for c in ("dense", "sparse", "label", "seq", "group")}
            if len(cols["label"]) != size:
                raise ValueError(f"{part}: {len(cols['label'])} rows, meta.json says {size}")
            parts[part] = CTRDataset(**cols)
        if "valid" not in parts:
            parts["valid"] = parts["test"]
        pre = {k: torch.from_numpy(st.load_npy(folder / v)) for k, v in meta.get("pretrained", {}).items()}
        return CTRSplits(schema, parts["train"], parts["valid"], parts["test"], dict(meta["info"]), pre)
    except Exception as err:  # noqa: BLE001 (any unreadable entry is rebuilt, never trusted)
        log.warning("cache entry %s cannot be read (%s: %s); discarding it and rebuilding from the CSV files",
                    folder, type(err).__name__, " ".join(str(err).split())[:200])
        shutil.rmtree(folder, ignore_errors=True)
        return None
