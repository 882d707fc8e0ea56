"""The weight-sharing supernet that runs any path of a :class:`SearchSpace`, and the standalone model of one path.

Both are built from the same :class:`ChoiceBlock` with the same module names, so a standalone model can
take its weights from the supernet (:meth:`SuperNet.extract`) and then computes exactly what the supernet
computed on that path (the tests check this for every operator and connection pattern).

Module names (the same in both; B = block index):

=========================  ===========================================================  ===============
name                       what                                                         maps to (PIM)
=========================  ===========================================================  ===============
``embedding.table``        sparse-feature embeddings (``nn.Embedding``)                 memory
``blocks.B.fc.linear``     FC on the concatenated dense inputs                          crossbar
``blocks.B.gating.gate``   ``sigmoid(gate(left)) * right``                              crossbar
``blocks.B.gating.proj``   projection to the block's dense width                        crossbar
``blocks.B.sum.proj``      projection of ``left + right`` to the dense width            crossbar
``blocks.B.dot.dense_proj``  dense inputs -> one token of width E                       crossbar
``blocks.B.dot.token_proj``  operator balancing: tokens -> ceil(sqrt(2 max_dense))      crossbar
``blocks.B.dot.proj``      pairwise dot products -> dense width (products: digital)     crossbar
``blocks.B.efc.linear``    FC along the token axis                                      crossbar
``blocks.B.attn.*``        token_proj, q, k, v, o, ffn1, ffn2                           (not in Small)
``blocks.B.ds_merge.linear``  dense->sparse merger                                      crossbar
``blocks.B.fm_merge.linear``  sparse->dense merger's projection (FM itself: digital)    crossbar
``head``                   final logit                                                  crossbar
=========================  ===========================================================  ===============

Every weight is an ordinary ``nn.Linear``/``nn.Embedding``/``nn.LayerNorm``. The standalone model calls
the modules themselves, so swapping a module by name (e.g. for a fake-quantized one) takes effect.
:func:`linear_roles` lists every linear layer with its block and operator.

Two ways to share weights between paths (``SuperNet(..., sharing=...)``):

* ``"slice"`` (default): a width-``d`` operator uses the first ``d`` output rows of the widest weight and
  normalises over those ``d`` units only, so a path computes *exactly* what its standalone model computes
  (:meth:`SuperNet.extract`), and costs what the path costs. A ``torch.nn.utils.parametrize``
  parametrization on ``weight`` also applies inside the supernet.
* ``"mask"``: NASRec's masked full-width computation (``nasrec/supernet/modules.py``, ``ElasticLinear``):
  every operator computes all units, LayerNorm normalises over all of them, the activation runs, and a 0/1
  mask keeps the first ``d``. Downstream layers read the zeros. Attention attends over the masked (zero)
  tokens too and masks again after its FFN, as NASRec does. The normalisation statistics therefore depend on
  units the path does not own, so no standalone model equals a masked path (``extract`` refuses).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.schema import Schema
from ..models.embedding import FeatureEmbedding
from . import registry
from .space import BINARY_DENSE_OPS, Arch, BlockChoice, SearchSpace

# ----------------------------------------------------------------------------- slicing helpers
_RECORDER: dict | None = None  # module -> (rows, cols) while SuperNet.extract traces a path


def _lin(mod: nn.Linear, x: torch.Tensor, rows: int | None = None, cols: torch.Tensor | int | None = None) -> torch.Tensor:
    """``mod(x)`` when nothing is sliced; otherwise a linear map with the first ``rows`` outputs and ``cols`` inputs."""
    if rows is None and cols is None:
        return mod(x)
    w, b = mod.weight, mod.bias
    if rows is not None:
        w, b = w[:rows], (b[:rows] if b is not None else None)
    if cols is not None:
        w = w[:, :cols] if isinstance(cols, int) else w.index_select(1, cols)
    if _RECORDER is not None:
        _RECORDER[mod] = (rows, cols)
    return F.linear(x, w, b)


def _norm(mod: nn.Module, x: torch.Tensor, rows: int | None = None) -> torch.Tensor:
    if rows is None or isinstance(mod, nn.Identity):
        return mod(x)
    if _RECORDER is not None:
        _RECORDER[mod] = (rows, None)
    return F.layer_norm(x, (rows,), mod.weight[:rows], mod.bias[:rows], mod.eps)


def _ln(n: int, on: bool) -> nn.Module:
    return nn.LayerNorm(n) if on else nn.Identity()


def _keep(y: torch.Tensor, d: int | None, dim: int = -1) -> torch.Tensor:
    """NASRec's width mask: zero every unit of ``dim`` from ``d`` on (no-op when ``d`` is None or the full width)."""
    if d is None or d >= y.shape[dim]:
        return y
    shape = [1] * y.dim()
    shape[dim] = y.shape[dim]
    mask = (torch.arange(y.shape[dim], device=y.device) < d).to(y.dtype).view(shape)
    return y * mask


SHARING = ("slice", "mask")


@dataclass
class Feat:
    """One source's output: dense [B, w] and tokens [B, t, E]; ``tokens`` excludes the ``ds`` merger tokens."""

    dense: torch.Tensor
    sparse: torch.Tensor
    dense_w: int
    tokens: int
    ds: int  # number of dense->sparse merger tokens appended after ``tokens``


# ----------------------------------------------------------------------------- operators
class FCOp(nn.Module):
    def __init__(self, d_in, d_out, ln):
        super().__init__()
        self.linear, self.norm = nn.Linear(d_in, d_out), _ln(d_out, ln)

    def forward(self, x, d=None, cols=None, mask=False):
        if mask:
            return _keep(F.relu(self.norm(_lin(self.linear, x, None, cols))), d)
        return F.relu(_norm(self.norm, _lin(self.linear, x, d, cols), d))


class GatingOp(nn.Module):
    """``proj(sigmoid(gate(left)) * right)`` with the narrower input zero-padded (NASRec's form)."""

    def __init__(self, w_left, w_mid, d_out, ln):
        super().__init__()
        self.gate, self.proj, self.norm = nn.Linear(w_left, w_mid), nn.Linear(w_mid, d_out), _ln(d_out, ln)

    def forward(self, left, right, d=None, sliced=False, mask=False):
        m = max(left.shape[1], right.shape[1])
        g = torch.sigmoid(_lin(self.gate, left, m if sliced else None, left.shape[1] if sliced else None))
        y = g * F.pad(right, (0, m - right.shape[1]))
        if mask:
            return _keep(self.norm(_lin(self.proj, y, None, m)), d)
        return _norm(self.norm, _lin(self.proj, y, d, m if sliced else None), d)


class SumOp(nn.Module):
    def __init__(self, w_mid, d_out, ln):
        super().__init__()
        self.proj, self.norm = nn.Linear(w_mid, d_out), _ln(d_out, ln)

    def forward(self, left, right, d=None, sliced=False, mask=False):
        m = max(left.shape[1], right.shape[1])
        y = F.pad(left, (0, m - left.shape[1])) + F.pad(right, (0, m - right.shape[1]))
        if mask:
            return _keep(self.norm(_lin(self.proj, y, None, m)), d)
        return _norm(self.norm, _lin(self.proj, y, d, m if sliced else None), d)


def _token_linear(mod, x, rows=None, cols=None):
    """A linear map along the token axis of [B, t, E]."""
    return _lin(mod, x.transpose(1, 2), rows, cols).transpose(1, 2)


def _pairwise(x: torch.Tensor) -> torch.Tensor:
    """Strictly-lower-triangle dot products of the tokens of x [B, n, E] -> [B, n(n-1)/2]."""
    z = torch.bmm(x, x.transpose(1, 2))
    i, j = torch.tril_indices(x.shape[1], x.shape[1], offset=-1, device=x.device)
    return z[:, i, j]


class DotOp(nn.Module):
    """Dot-Product with operator balancing: the dense inputs become one token (projection + LayerNorm over E),
    the tokens are projected along the token axis to ``k = ceil(sqrt(2 * max_dense))`` (+ LayerNorm over the
    k tokens), then every pairwise dot product is projected to the dense width (NASRec's ``DotProduct``)."""

    def __init__(self, d_in, t_in, k, emb, d_out, ln):
        super().__init__()
        self.k = k
        self.dense_proj, self.dense_norm = nn.Linear(d_in, emb), _ln(emb, ln)
        self.token_proj, self.token_norm = nn.Linear(t_in, k), _ln(k, ln)
        self.proj, self.norm = nn.Linear((k + 1) * k // 2, d_out), _ln(d_out, ln)

    def forward(self, xd, xs, d=None, dcols=None, tcols=None, mask=False):
        tok = self.dense_norm(_lin(self.dense_proj, xd, None, dcols)).unsqueeze(1)
        xt = self.token_norm(_lin(self.token_proj, xs.transpose(1, 2), None, tcols)).transpose(1, 2)
        y = _lin(self.proj, _pairwise(torch.cat([tok, xt], 1)), None if mask else d)
        return _keep(self.norm(y), d) if mask else _norm(self.norm, y, d)


class EFCOp(nn.Module):
    def __init__(self, t_in, t_out, ln):
        super().__init__()
        self.linear, self.norm = nn.Linear(t_in, t_out), _ln(t_out, ln)

    def forward(self, xs, t=None, cols=None, mask=False):
        if mask:
            return _keep(F.relu(self.norm(_lin(self.linear, xs.transpose(1, 2), None, cols))), t).transpose(1, 2)
        y = _lin(self.linear, xs.transpose(1, 2), t, cols)
        return F.relu(_norm(self.norm, y, t)).transpose(1, 2)


class AttnOp(nn.Module):
    """Token projection to t tokens, then one post-norm Transformer encoder layer (Q = K = V)."""

    def __init__(self, t_in, t_out, emb, heads, ln):
        super().__init__()
        self.heads = heads
        self.token_proj, self.token_norm = nn.Linear(t_in, t_out), _ln(t_out, ln)
        self.q, self.k, self.v, self.o = (nn.Linear(emb, emb) for _ in range(4))
        self.norm1, self.norm2 = _ln(emb, ln), _ln(emb, ln)
        self.ffn1, self.ffn2 = nn.Linear(emb, emb), nn.Linear(emb, emb)

    def forward(self, xs, t=None, cols=None, mask=False):
        if mask:  # NASRec: project to all tokens, normalise, mask; attend over every token; mask again
            x = _keep(self.token_norm(_lin(self.token_proj, xs.transpose(1, 2), None, cols)), t).transpose(1, 2)
        else:
            x = _norm(self.token_norm, _lin(self.token_proj, xs.transpose(1, 2), t, cols), t).transpose(1, 2)
        b, n, e = x.shape
        split = lambda z: z.view(b, n, self.heads, e // self.heads).transpose(1, 2)  # noqa: E731
        a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
        x = self.norm1(x + self.o(a.transpose(1, 2).reshape(b, n, e)))
        x = self.norm2(x + self.ffn2(F.relu(self.ffn1(x))))
        return _keep(x, t, dim=1) if mask else x


class DSMerge(nn.Module):
    """Dense -> sparse merger: FC to ``n_tok * E`` units, reshaped into extra tokens."""

    def __init__(self, d_in, n_tok, emb, ln):
        super().__init__()
        self.n_tok, self.emb = n_tok, emb
        self.linear, self.norm = nn.Linear(d_in, n_tok * emb), _ln(n_tok * emb, ln)

    def forward(self, yd, sliced=False):
        y = self.norm(_lin(self.linear, yd, None, yd.shape[1] if sliced else None))
        return y.view(yd.shape[0], self.n_tok, self.emb)


class FMMerge(nn.Module):
    """Sparse -> dense merger: FM over the tokens, ``(sum e)^2 - sum e^2``, projected to the dense width."""

    def __init__(self, emb, d_out, ln):
        super().__init__()
        self.linear, self.norm = nn.Linear(emb, d_out), _ln(d_out, ln)

    def forward(self, ys, d=None, mask=False):
        s = ys.sum(1)
        if mask:
            return _keep(self.norm(_lin(self.linear, s * s - (ys * ys).sum(1))), d)
        return _norm(self.norm, _lin(self.linear, s * s - (ys * ys).sum(1), d), d)


# ----------------------------------------------------------------------------- the block
def _arange_cat(spans: list[tuple[int, int]], device) -> torch.Tensor:
    return torch.cat([torch.arange(a, a + n, device=device) for a, n in spans if n > 0])


class ChoiceBlock(nn.Module):
    """Block ``index``. With ``choice=None`` it is a supernet block (every op, widest dims, every source);
    with a choice it holds exactly that choice's modules at exact sizes."""

    def __init__(self, space: SearchSpace, index: int, stem_w: int, n_sparse: int, choice: BlockChoice | None = None,
                 in_dense: int | None = None, in_tokens: int | None = None, layernorm: bool = True,
                 sharing: str = "slice"):
        super().__init__()
        if sharing not in SHARING:
            raise ValueError(f"sharing must be one of {SHARING}, got {sharing!r}")
        s, i, E, ln = space, index, space.emb_dim, layernorm
        self.space, self.index, self.stem_w, self.n_sparse, self.fixed = space, index, stem_w, n_sparse, choice
        self.sharing = sharing
        self.k = math.ceil(math.sqrt(2 * s.max_dense))
        slot_t = s.max_tokens + s.ds_tokens
        if choice is None:  # supernet: inputs laid out as every source at its widest
            self.dense_off = [0] + [stem_w + j * s.max_dense for j in range(i)]
            self.tok_off = [0] + [n_sparse + j * slot_t for j in range(i)]
            d_in, t_in = stem_w + i * s.max_dense, n_sparse + i * slot_t
            w_mid, D, T = max(stem_w, s.max_dense), s.max_dense, s.max_tokens
            dense_ops, sparse_ops, ds, fm = s.dense_ops, s.sparse_ops, True, True
        else:
            d_in, t_in, D, T = in_dense, in_tokens, choice.dense_dim, choice.sparse_dim
            dense_ops, sparse_ops, ds, fm = (choice.dense_op,), (choice.sparse_op,), choice.dense_to_sparse, choice.sparse_to_dense
            w_left = w_mid = None
        ctx = {"d_in": d_in, "t_in": t_in, "D": D, "T": T, "E": E, "k": self.k, "ln": ln, "heads": s.attn_heads}
        for op in dense_ops:  # every operator is built by its registry entry, under its own name
            if registry.get(op).kind == "dense_binary":
                if choice is not None:
                    w_left, w_right = in_dense  # a pair for binary ops
                    w_mid = max(w_left, w_right)
                else:
                    w_left = w_mid
                ctx = {**ctx, "w_left": w_left, "w_mid": w_mid}
            setattr(self, op, registry.build(op, ctx))
        for op in sparse_ops:
            setattr(self, op, registry.build(op, ctx))
        if ds:
            self.ds_merge = DSMerge(D, s.ds_tokens, E, ln)
        if fm:
            self.fm_merge = FMMerge(E, D, ln)

    # columns of the selected sources inside the supernet's widest layout
    def _dense_cols(self, feats, srcs, device):
        return _arange_cat([(self.dense_off[j], feats[j].dense_w) for j in srcs], device)

    def _tok_cols(self, feats, srcs, device):
        spans = []
        for j in srcs:
            spans.append((self.tok_off[j], feats[j].tokens))
            if j > 0 and feats[j].ds:
                spans.append((self.tok_off[j] + self.space.max_tokens, feats[j].ds))
        return _arange_cat(spans, device)

    def forward(self, feats: list[Feat], c: BlockChoice) -> Feat:
        sliced = self.fixed is None
        mk = sliced and self.sharing == "mask"
        dev = feats[0].dense.device
        d, t = (c.dense_dim, c.sparse_dim) if sliced else (None, None)
        xs = torch.cat([feats[j].sparse for j in c.sparse_in], 1)
        tcols = self._tok_cols(feats, c.sparse_in, dev) if sliced else None
        dense_ops = self.space.dense_ops if c.dense_op == "all" else (c.dense_op,)
        sparse_ops = self.space.sparse_ops if c.sparse_op == "all" else (c.sparse_op,)
        kinds = {op: registry.get(op).kind for op in dense_ops}
        need_xd = any(k in ("dense_unary", "dense_sparse") for k in kinds.values())
        if need_xd:
            xd = torch.cat([feats[j].dense for j in c.dense_in], 1)
            dcols = self._dense_cols(feats, c.dense_in, dev) if sliced else None
        yd = 0
        for op in dense_ops:  # how a block calls an operator depends only on its kind
            mod, kind = getattr(self, op), kinds[op]
            if kind == "dense_unary":
                yd = yd + mod(xd, d, dcols, mk)
            elif kind == "dense_sparse":
                yd = yd + mod(xd, xs, d, dcols, tcols, mk)
            else:
                yd = yd + mod(feats[c.left].dense, feats[c.right].dense, d, sliced, mk)
        ys = 0
        for op in sparse_ops:
            ys = ys + getattr(self, op)(xs, t, tcols, mk)
        n_ds = 0
        if c.dense_to_sparse:  # NASRec projects the operators' dense output, before the FM term is added
            extra = self.ds_merge(yd, sliced)
            n_ds = extra.shape[1]
        if c.sparse_to_dense:
            yd = yd + self.fm_merge(ys, d, mk)
        if c.dense_to_sparse:
            ys = torch.cat([ys, extra], 1)
        if mk:  # masked outputs keep the full width: downstream layers read the zeros
            return Feat(yd, ys, yd.shape[1], self.space.max_tokens, n_ds)
        return Feat(yd, ys, c.dense_dim, c.sparse_dim, n_ds)


# ----------------------------------------------------------------------------- stem and models
class _Base(nn.Module):
    def __init__(self, schema: Schema, space: SearchSpace):
        super().__init__()
        if not schema.sparse:
            raise ValueError("the NASRec models need at least one sparse field in the schema")
        self.schema, self.space = schema, space
        self.n_dense, self.n_sparse = len(schema.dense), len(schema.sparse)
        self.stem_w = max(self.n_dense, 1)  # no dense features (Avazu): one zero column, as NASRec does
        self.embedding = FeatureEmbedding(Schema(list(schema.sparse)), space.emb_dim)

    def stem(self, batch: dict) -> Feat:
        tok = self.embedding.tokens(batch)
        dense = batch["dense"].float() if self.n_dense else tok.new_zeros(tok.shape[0], 1)
        return Feat(dense, tok, self.stem_w, self.n_sparse, 0)


class SuperNet(_Base):
    """All blocks at their widest; ``forward(batch, arch)`` runs one path (or ``space.full_path()``).

    Unused sources and blocks the head does not read are skipped, so a forward costs about what the
    path itself costs.
    """

    def __init__(self, schema: Schema, space: SearchSpace, layernorm: bool = True, sharing: str = "slice"):
        super().__init__(schema, space)
        if sharing not in SHARING:
            raise ValueError(f"sharing must be one of {SHARING}, got {sharing!r}")
        self.layernorm, self.sharing = layernorm, sharing
        self.blocks = nn.ModuleList(ChoiceBlock(space, i, self.stem_w, self.n_sparse, layernorm=layernorm, sharing=sharing)
                                    for i in range(space.num_blocks))
        self.slot_t = space.max_tokens + space.ds_tokens
        self.head = nn.Linear(space.max_dense + self.slot_t * space.emb_dim, 1)
        self.path: Arch | None = None

    def set_path(self, arch: Arch | None) -> "SuperNet":
        """Fix the path ``forward(batch)`` runs when no arch is passed (e.g. to train with ``companion.train.fit``)."""
        self.path = arch
        return self

    def body(self, batch: dict, arch: Arch) -> Feat:
        feats: dict[int, Feat] = {0: self.stem(batch)}
        for i in arch.active_blocks():
            feats[i + 1] = self.blocks[i](feats, arch.blocks[i])
        return feats[len(arch.blocks)]

    def head_cols(self, last: Feat, device=None) -> torch.Tensor:
        """Columns of ``head`` that the last block's actual outputs occupy."""
        E = self.space.emb_dim
        toks = list(range(last.tokens)) + list(range(self.space.max_tokens, self.space.max_tokens + last.ds))
        cols = list(range(last.dense_w)) + [self.space.max_dense + p * E + e for p in toks for e in range(E)]
        return torch.tensor(cols, dtype=torch.long, device=device)

    def features(self, batch: dict, arch: Arch) -> torch.Tensor:
        """The head's input for this path, in the standalone model's layout [B, d + t*E]."""
        last = self.body(batch, arch)
        return torch.cat([last.dense, last.sparse.flatten(1)], 1)

    def forward(self, batch: dict, arch: Arch | None = None) -> torch.Tensor:
        arch = arch or self.path
        if arch is None:
            raise ValueError("SuperNet.forward needs an architecture: pass arch=... or call set_path(arch) first")
        last = self.body(batch, arch)
        x = torch.cat([last.dense, last.sparse.flatten(1)], 1)
        return _lin(self.head, x, None, self.head_cols(last, x.device)).squeeze(-1)

    def extract(self, arch: Arch, layernorm: bool | None = None) -> "NASRecNet":
        """A standalone model of ``arch`` holding a copy of the supernet's weights on that path."""
        global _RECORDER
        if self.sharing != "slice":
            raise ValueError(f"extract() needs sharing='slice': with sharing={self.sharing!r} a path's LayerNorms see "
                             "units it does not own, so no standalone model computes the same function")
        self.space.validate(arch)
        model = NASRecNet(self.schema, self.space, arch, layernorm=self.layernorm if layernorm is None else layernorm)
        if model.layernorm != self.layernorm:
            raise ValueError("extract() copies weights, so the standalone model must use the supernet's layernorm setting")
        dummy = {"dense": torch.zeros(2, self.n_dense), "sparse": torch.zeros(2, self.n_sparse, dtype=torch.long)}
        dev = next(self.parameters()).device
        dummy = {k: v.to(dev) for k, v in dummy.items()}
        _RECORDER = {}
        try:
            with torch.no_grad():
                self.forward(dummy, arch)
            rec = _RECORDER
        finally:
            _RECORDER = None
        with torch.no_grad():
            for name, mod in model.named_modules():
                if not isinstance(mod, (nn.Linear, nn.LayerNorm, nn.Embedding)):
                    continue
                src = self.get_submodule(name)
                rows, cols = rec.get(src, (None, None))
                for pname, p in mod.named_parameters(recurse=False):
                    w = getattr(src, pname)
                    if rows is not None:
                        w = w[:rows]
                    if cols is not None and pname == "weight" and w.dim() == 2:
                        w = w[:, :cols] if isinstance(cols, int) else w.index_select(1, cols)
                    if w.shape != p.shape:
                        raise RuntimeError(f"extract: {name}.{pname} has shape {tuple(p.shape)}, supernet slice {tuple(w.shape)}")
                    p.copy_(w)
        return model.to(dev)


class NASRecNet(_Base):
    """A standalone model of one architecture: only the blocks the head reads, each at its exact sizes."""

    def __init__(self, schema: Schema, space: SearchSpace, arch: Arch, layernorm: bool = True):
        super().__init__(schema, space)
        space.validate(arch)
        self.arch, self.layernorm = arch, layernorm
        dense_w, toks = {0: self.stem_w}, {0: self.n_sparse}
        blocks = {}
        for i in arch.active_blocks():
            c = arch.blocks[i]
            in_dense = (dense_w[c.left], dense_w[c.right]) if c.dense_op in BINARY_DENSE_OPS else sum(dense_w[j] for j in c.dense_in)
            blocks[str(i)] = ChoiceBlock(space, i, self.stem_w, self.n_sparse, c, in_dense,
                                         sum(toks[j] for j in c.sparse_in), layernorm)
            dense_w[i + 1] = c.dense_dim
            toks[i + 1] = c.sparse_dim + (space.ds_tokens if c.dense_to_sparse else 0)
        self.blocks = nn.ModuleDict(blocks)
        n = space.num_blocks
        self.head = nn.Linear(dense_w[n] + toks[n] * space.emb_dim, 1)

    def forward(self, batch: dict) -> torch.Tensor:
        feats = {0: self.stem(batch)}
        for key, block in self.blocks.items():
            i = int(key)
            feats[i + 1] = block(feats, self.arch.blocks[i])
        last = feats[len(self.arch.blocks)]
        return self.head(torch.cat([last.dense, last.sparse.flatten(1)], 1)).squeeze(-1)


def build(schema: Schema, space: SearchSpace, arch: Arch | None = None, layernorm: bool = True,
          sharing: str = "slice") -> nn.Module:
    """``SuperNet`` when ``arch`` is None, else a freshly initialised standalone ``NASRecNet``."""
    return SuperNet(schema, space, layernorm, sharing) if arch is None else NASRecNet(schema, space, arch, layernorm)


_OP_OF_CHILD = {"fc": "fc", "gating": "gating", "sum": "sum", "dot": "dot", "efc": "efc", "attn": "attn",
                "ds_merge": "dense_to_sparse", "fm_merge": "sparse_to_dense"}


def linear_roles(model: nn.Module) -> list[dict]:
    """Every ``nn.Linear`` with its block, operator (fc, gating, sum, dot, efc, attn, dense_to_sparse,
    sparse_to_dense, head) and sub-layer name: what a cost model or a quantizer needs to map layers."""
    rows = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        parts = name.split(".")
        if parts[0] == "blocks":
            rows.append({"name": name, "block": int(parts[1]), "op": _OP_OF_CHILD[parts[2]], "layer": ".".join(parts[3:]),
                         "in_features": mod.in_features, "out_features": mod.out_features, "module": mod})
        else:
            rows.append({"name": name, "block": None, "op": name, "layer": name,
                         "in_features": mod.in_features, "out_features": mod.out_features, "module": mod})
    return rows


@contextmanager
def eval_mode(model: nn.Module):
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)
