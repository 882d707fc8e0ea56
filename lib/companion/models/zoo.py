"""Every CTR model of the companion by name, so notebooks and benchmarks build them from a string."""
from __future__ import annotations

from torch import nn

from ..data.schema import Schema
from .ctr import DCNv2, DHEN, DNN, DOT, FM, AutoIntPlus, FmFM, Wukong, XDeepFM
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


def build_model(name: str, schema: Schema, dim: int, **kwargs) -> nn.Module:
    if name not in MODEL_ZOO:
        raise ValueError(f"unknown model {name!r}; the zoo has {list(MODEL_ZOO)}")
    return MODEL_ZOO[name](schema, dim, **kwargs)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
