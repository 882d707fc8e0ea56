"""The embedding layer every CTR model in the companion shares, so model comparisons differ only above it.

Sparse fields live in one table with per-field offsets (one lookup per batch instead of one per field);
each dense scalar becomes a token by scaling a learned vector; sequence fields get their own rows in the
table unless ``share_with`` points them at a sparse field (item ids in history and as the target item).

Lookups are ``index_select`` on the table while its gradients are dense (its backward, an ``index_add``, gives
bit-identical gradients at about half the cost of ``nn.Embedding``'s dense backward on CPU), and the module's
``nn.Embedding`` itself once the trainer switches the table to sparse gradients (``TrainConfig.embedding_optimizer``).
A model with a first-order (width-1) term can fuse that table into this one as an extra column
(:meth:`fuse_first_order`), so one lookup serves both.

**Pretrained (frozen) tables.** A field with ``Field.pretrained = "name"`` (and every sequence that shares with it)
reads its rows from the frozen table ``CTRSplits.pretrained["name"]`` ([vocab_size, d_pre]) instead of learned
rows: KuaiVideo's 64-d visual item vectors. The table is a non-persistent buffer, so it gets no gradient, is in no
optimizer, is never regularized and is not copied into checkpoints. When ``d_pre`` differs from the model's width
a learned linear map (with bias) projects it; at equal widths the rows are used as they are. That is our choice,
and the same as FuxiCTR's ``pretrained_emb`` with ``freeze_emb: True`` and its default ``pretrain_usage: init``
(a frozen table, an ``nn.Linear`` when the widths differ). A width-1 first-order embedding projects the frozen
vector to one weight the same way (FuxiCTR's LR layer instead gives such a field a learned id weight).

The tables arrive after the model is built (:func:`attach_pretrained`, which ``zoo.build_model(...,
pretrained=splits.pretrained)`` calls), so model constructors need no new argument. Using a layer whose table
never arrived, or attaching tables that lack one a field names, raises an error naming the field and the table.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.schema import Schema


class MissingPretrainedError(ValueError):
    """A field names a pretrained table that was not given (or not attached yet)."""


class FeatureEmbedding(nn.Module):
    def __init__(self, schema: Schema, dim: int, pretrained: dict | None = None):
        super().__init__()
        self.schema, self.dim = schema, dim
        # fields served by a frozen table: the sparse fields that name one and every sequence that shares with them
        self.frozen_of: dict[str, str] = {f.name: f.pretrained for f in schema.sparse if f.pretrained}
        for f in schema.sequence:
            if f.pretrained:
                self.frozen_of[f.name] = f.pretrained
            elif f.share_with in self.frozen_of:
                self.frozen_of[f.name] = self.frozen_of[f.share_with]
        offsets, start = {}, 0
        for f in schema.sparse:
            if f.name not in self.frozen_of:
                offsets[f.name], start = start, start + f.vocab_size
        for f in schema.sequence:
            if f.name in self.frozen_of:
                continue
            if f.share_with is not None:
                if f.share_with not in offsets:
                    raise ValueError(f"sequence {f.name!r} shares with {f.share_with!r}, which is not a sparse field")
                offsets[f.name] = offsets[f.share_with]
            else:
                offsets[f.name], start = start, start + f.vocab_size
        self.table = nn.Embedding(max(start, 1), dim)
        nn.init.normal_(self.table.weight, std=0.01)
        learned_sparse = [f for f in schema.sparse if f.name not in self.frozen_of]
        learned_seq = [f for f in schema.sequence if f.name not in self.frozen_of]
        self.register_buffer("sparse_off", torch.tensor([offsets[f.name] for f in learned_sparse], dtype=torch.long), persistent=False)
        self.register_buffer("seq_off", torch.tensor([offsets[f.name] for f in learned_seq], dtype=torch.long), persistent=False)
        n_dense = len(schema.dense)
        self.dense_weight = nn.Parameter(torch.randn(n_dense, dim) * 0.01) if n_dense else None
        self.dense_bias = nn.Parameter(torch.zeros(n_dense, dim)) if n_dense else None
        self.extra = 0  # columns fused in from a first-order embedding (see fuse_first_order)
        if self.frozen_of:
            # where learned and frozen lookups go: learned columns first, then frozen ones, put back in schema order
            sp = [f.name for f in schema.sparse]
            sq = [f.name for f in schema.sequence]
            self._sparse_learned = [i for i, n in enumerate(sp) if n not in self.frozen_of]
            self._sparse_frozen = [(i, self.frozen_of[n]) for i, n in enumerate(sp) if n in self.frozen_of]
            self._seq_learned = [i for i, n in enumerate(sq) if n not in self.frozen_of]
            self._seq_frozen = [(i, self.frozen_of[n]) for i, n in enumerate(sq) if n in self.frozen_of]
            for name, cols in (("_sparse_order", self._sparse_learned + [i for i, _ in self._sparse_frozen]),
                               ("_seq_order", self._seq_learned + [i for i, _ in self._seq_frozen])):
                self.register_buffer(name, torch.argsort(torch.tensor(cols, dtype=torch.long)), persistent=False)
            self.frozen_proj = nn.ModuleDict()  # table -> projection to `dim` columns (Identity at equal widths)
            self.frozen_proj_extra = nn.ModuleDict()  # table -> projection to the fused first-order columns
            self._attached: set[str] = set()
        if pretrained is not None:
            self.attach_pretrained(pretrained)

    # ---------------------------------------------------------------- frozen tables
    @property
    def pretrained_fields(self) -> dict[str, str]:
        """``field -> table`` for the fields served by a frozen table."""
        return dict(self.frozen_of)

    @property
    def pending_pretrained(self) -> dict[str, str]:
        """``field -> table`` for the fields whose frozen table has not been attached yet."""
        if not self.frozen_of:
            return {}
        return {f: t for f, t in self.frozen_of.items() if t not in self._attached}

    @staticmethod
    def _buffer(table: str) -> str:
        return "frozen_" + "".join(c if c.isalnum() else "_" for c in table)

    def attach_pretrained(self, tables: dict) -> None:
        """Install the frozen tables this layer's fields name (from ``CTRSplits.pretrained``), with the learned
        projections they need. Raises :class:`MissingPretrainedError` naming a field whose table is absent."""
        if not self.frozen_of:
            return
        tables = tables or {}
        for fname, tname in self.frozen_of.items():
            if tname not in tables:
                raise MissingPretrainedError(
                    f"field {fname!r} reads the pretrained table {tname!r}, which is not among the tables given "
                    f"({sorted(tables) or 'none'}); pass the splits' tables: "
                    f"zoo.build_model(..., pretrained=splits.pretrained)")
        for tname in dict.fromkeys(self.frozen_of.values()):
            t = torch.as_tensor(tables[tname])
            vocab = {self.schema[f].vocab_size for f, n in self.frozen_of.items() if n == tname}
            if t.dim() != 2 or not t.is_floating_point() or t.shape[0] not in vocab or len(vocab) != 1:
                raise ValueError(f"pretrained table {tname!r}: expected a float [vocab, d] tensor with vocab "
                                 f"{sorted(vocab)} (the fields' vocab_size), got {t.dtype} {list(t.shape)}")
            d_pre = int(t.shape[1])
            device = self.table.weight.device
            self.register_buffer(self._buffer(tname), t.detach().to(device, self.table.weight.dtype), persistent=False)
            if tname not in self.frozen_proj:
                self.frozen_proj[tname] = (nn.Identity() if d_pre == self.dim else nn.Linear(d_pre, self.dim)).to(device)
            if self.extra and tname not in self.frozen_proj_extra:
                self.frozen_proj_extra[tname] = nn.Linear(d_pre, self.extra).to(device)
            self._attached.add(tname)

    def _check_attached(self) -> None:
        require_attached(self)

    def frozen_lookup(self, table: str, idx: torch.Tensor) -> torch.Tensor:
        """Rows of the frozen ``table`` for ``idx`` [...], projected: [..., width]."""
        t = getattr(self, self._buffer(table))
        x = t.index_select(0, idx.reshape(-1)).view(*idx.shape, t.shape[1])
        y = self.frozen_proj[table](x)
        return torch.cat([y, self.frozen_proj_extra[table](x)], -1) if self.extra else y

    # ---------------------------------------------------------------- learned tables
    @property
    def width(self) -> int:
        """Columns of every lookup: ``dim`` plus any fused first-order columns."""
        return self.dim + self.extra

    def fuse_first_order(self, other: "FeatureEmbedding") -> None:
        """Append ``other``'s weights (same schema, usually width 1) as extra columns of this table, dense weights
        and biases. The values are copied, so a model built in the old order keeps its initial weights exactly."""
        if other.schema is not self.schema and [f.name for f in other.schema.fields] != [f.name for f in self.schema.fields]:
            raise ValueError("fuse_first_order needs an embedding of the same schema")
        if self.frozen_of and (self._attached or other._attached):
            raise ValueError("fuse_first_order must run before the pretrained tables are attached")
        with torch.no_grad():
            self.table.weight = nn.Parameter(torch.cat([self.table.weight, other.table.weight], 1))
            self.table.embedding_dim = self.table.weight.shape[1]
            if self.dense_weight is not None:
                self.dense_weight = nn.Parameter(torch.cat([self.dense_weight, other.dense_weight], 1))
                self.dense_bias = nn.Parameter(torch.cat([self.dense_bias, other.dense_bias], 1))
        self.extra += other.width

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Table rows for ``idx`` [...] -> [..., width]."""
        if self.table.sparse:
            return self.table(idx)
        return self.table.weight.index_select(0, idx.reshape(-1)).view(*idx.shape, self.width)

    def used_rows(self, batch: dict) -> torch.Tensor:
        """The distinct rows of ``table`` that ``batch`` reads (sparse ids, and the real events of every learned
        sequence; padding positions are masked out of the model, so they are not counted): what a per-batch
        embedding regularizer penalizes."""
        parts = []
        if len(self.sparse_off):
            sp = batch["sparse"] if not self.frozen_of else batch["sparse"][:, self._sparse_learned]
            parts.append((sp + self.sparse_off).reshape(-1))
        if len(self.seq_off):
            seq = batch["seq"] if not self.frozen_of else batch["seq"][:, self._seq_learned]
            parts.append((seq + self.seq_off.view(1, -1, 1))[seq > 0])
        if not parts:
            return torch.zeros(0, dtype=torch.long, device=self.table.weight.device)
        return torch.unique(torch.cat(parts))

    @property
    def n_tokens(self) -> int:
        """Non-sequence tokens: one per dense field plus one per sparse field."""
        return len(self.schema.dense) + len(self.schema.sparse)

    @property
    def n_sequences(self) -> int:
        return len(self.schema.sequence)

    def _sparse_rows(self, sparse: torch.Tensor) -> torch.Tensor:
        """[B, S] ids -> [B, S, width], learned and frozen fields in schema order."""
        if not self.frozen_of:
            return self.lookup(sparse + self.sparse_off)
        self._check_attached()
        parts = []
        if self._sparse_learned:
            parts.append(self.lookup(sparse[:, self._sparse_learned] + self.sparse_off))
        parts += [self.frozen_lookup(t, sparse[:, i]).unsqueeze(1) for i, t in self._sparse_frozen]
        return torch.cat(parts, 1).index_select(1, self._sparse_order)

    def _seq_rows(self, seq: torch.Tensor) -> torch.Tensor:
        """[B, Q, L] ids -> [B, Q, L, width], learned and frozen sequences in schema order."""
        if not self.frozen_of:
            return self.lookup(seq + self.seq_off.view(1, -1, 1))
        self._check_attached()
        parts = []
        if self._seq_learned:
            parts.append(self.lookup(seq[:, self._seq_learned] + self.seq_off.view(1, -1, 1)))
        parts += [self.frozen_lookup(t, seq[:, i]).unsqueeze(1) for i, t in self._seq_frozen]
        return torch.cat(parts, 1).index_select(1, self._seq_order)

    def tokens(self, batch: dict) -> torch.Tensor:
        """Non-sequence field embeddings [B, D+S, dim] (dense first, then sparse)."""
        parts = []
        if self.dense_weight is not None:
            parts.append(batch["dense"].unsqueeze(-1) * self.dense_weight + self.dense_bias)
        if self.schema.sparse:
            parts.append(self._sparse_rows(batch["sparse"]))
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]

    def sequences(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Sequence embeddings [B, Q, L, dim] and the mask of real (non-padding) positions [B, Q, L]."""
        seq = batch["seq"]
        mask = seq > 0
        emb = self._seq_rows(seq) * mask.unsqueeze(-1)
        return emb, mask

    def pooled_sequences(self, batch: dict) -> torch.Tensor:
        """Each sequence's masked mean over its real events, [B, Q, width] (zeros for an empty history): the same
        numbers as ``masked_mean(*sequences(batch))`` with one mask multiplication instead of two."""
        seq = batch["seq"]
        m = (seq > 0).unsqueeze(-1).to(self.table.weight.dtype)
        emb = self._seq_rows(seq)
        return (emb * m).sum(-2) / m.sum(-2).clamp_min(1.0)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.tokens(batch)


def embeddings_of(model: nn.Module) -> list[FeatureEmbedding]:
    """Every :class:`FeatureEmbedding` inside ``model`` (each once)."""
    return [m for m in model.modules() if isinstance(m, FeatureEmbedding)]


def attach_pretrained(model: nn.Module, tables: dict | None) -> nn.Module:
    """Give every embedding layer of ``model`` the frozen tables its fields name (``CTRSplits.pretrained``);
    a no-op for a model without such fields. Call it before the optimizer is made: the projections it adds are
    trainable, and the trainer refuses a model that still waits for a table."""
    for emb in embeddings_of(model):
        emb.attach_pretrained(tables or {})
    return model


def require_attached(model: nn.Module, have=None, where: str = "") -> None:
    """Raise :class:`MissingPretrainedError` naming the first field whose frozen table ``model`` never got
    (``have``: the tables that were on offer, for the message)."""
    missing = pending_pretrained(model)
    if missing:
        f, t = next(iter(missing.items()))
        offer = f" (the splits have {sorted(have) or 'none'})" if have is not None else ""
        raise MissingPretrainedError(
            f"{where}field {f!r} reads the pretrained table {t!r}, which was never attached to this embedding{offer}; "
            "build the model with zoo.build_model(..., pretrained=splits.pretrained) or call "
            "companion.models.embedding.attach_pretrained(model, splits.pretrained)")


def pending_pretrained(model: nn.Module) -> dict[str, str]:
    """``field -> table`` of every frozen table ``model`` still waits for (empty when it is ready to train)."""
    out = {}
    for emb in embeddings_of(model):
        out.update(emb.pending_pretrained)
    return out
