"""Every CTR model of the companion by name, so notebooks and benchmarks build them from a string."""
from __future__ import annotations

from torch import nn

from ..data.schema import Schema
from .ctr import DCNv2, DHEN, DNN, DOT, FM, AutoIntPlus, FmFM, Wukong, XDeepFM
from .embedding import attach_pretrained
from .interformer import InterFormer
from .sequential import BST, DIEN, DIN, DMIN, DMR, TransAct

MODEL_ZOO = {
    "FM": FM, "FmFM": FmFM, "DNN": DNN, "DOT": DOT, "DCNv2": DCNv2, "DHEN": DHEN, "AutoInt+": AutoIntPlus,
    "xDeepFM": XDeepFM, "Wukong": Wukong,
    "DIN": DIN, "DIEN": DIEN, "BST": BST, "DMIN": DMIN, "DMR": DMR, "TransAct": TransAct, "InterFormer": InterFormer,
}
SEQUENTIAL = ("DIN", "DIEN", "BST", "DMIN", "DMR", "TransAct", "InterFormer")


def check_models(names) -> list[str]:
    """Fail before any training if a requested model is not in the zoo."""
    unknown = [m for m in names if m not in MODEL_ZOO]
    if unknown:
        raise ValueError(f"unknown models {unknown}; the zoo has {list(MODEL_ZOO)}")
    return list(names)


def build_model(name: str, schema: Schema, dim: int, pretrained: dict | None = None, **kwargs) -> nn.Module:
    """``name`` from the zoo; ``pretrained`` (``CTRSplits.pretrained``) supplies the frozen tables that fields with
    ``Field.pretrained`` read, and must hold every one they name (see :mod:`companion.models.embedding`)."""
    if name not in MODEL_ZOO:
        raise ValueError(f"unknown model {name!r}; the zoo has {list(MODEL_ZOO)}")
    model = MODEL_ZOO[name](schema, dim, **kwargs)
    if any(f.pretrained for f in schema.fields):
        attach_pretrained(model, pretrained)
    return model


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
