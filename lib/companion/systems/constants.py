"""Every constant of the analytic cluster model, with where it comes from.

``datasheet``: the vendor's published peak (dense, without structured sparsity). ``assumption``: our choice,
not a measured or published value for these parts; the notebook says which numbers rest on them. Peak numbers
are upper bounds no real job reaches, which is why an achievable fraction sits beside them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Const:
    value: float
    unit: str
    source: str


GPU = {
    "H100-SXM": {
        "bf16_flops": Const(989e12, "FLOP/s", "datasheet: NVIDIA H100 Tensor Core GPU (SXM5), BF16 Tensor Core 1,979 TFLOPS "
                                              "with sparsity = 989 TFLOPS dense"),
        "hbm_bw": Const(3.35e12, "B/s", "datasheet: NVIDIA H100 SXM5, HBM3 3.35 TB/s"),
        "hbm": Const(80e9, "B", "datasheet: NVIDIA H100 SXM5, 80 GB HBM3"),
        "nvlink_bw": Const(450e9, "B/s", "datasheet: NVIDIA H100 SXM5, NVLink 900 GB/s total = 450 GB/s per direction"),
        "ib_bw": Const(50e9, "B/s", "datasheet: NVIDIA ConnectX-7 / Quantum-2 NDR InfiniBand 400 Gb/s per port, one port "
                                     "per GPU as in DGX H100 = 50 GB/s per direction"),
        "gpus_per_node": Const(8, "GPU", "datasheet: NVIDIA DGX H100, 8 GPUs per node"),
    },
    "A100-SXM": {
        "bf16_flops": Const(312e12, "FLOP/s", "datasheet: NVIDIA A100 Tensor Core GPU (SXM4), BF16 Tensor Core 312 TFLOPS "
                                              "dense (624 with sparsity)"),
        "hbm_bw": Const(2.039e12, "B/s", "datasheet: NVIDIA A100 80GB SXM4, HBM2e 2,039 GB/s"),
        "hbm": Const(80e9, "B", "datasheet: NVIDIA A100 80GB SXM4"),
        "nvlink_bw": Const(300e9, "B/s", "datasheet: NVIDIA A100 SXM4, NVLink 600 GB/s total = 300 GB/s per direction"),
        "ib_bw": Const(25e9, "B/s", "datasheet: NVIDIA ConnectX-6 HDR InfiniBand 200 Gb/s per port, one port per GPU as in "
                                     "DGX A100 = 25 GB/s per direction"),
        "gpus_per_node": Const(8, "GPU", "datasheet: NVIDIA DGX A100, 8 GPUs per node"),
    },
}

EFFICIENCY = {
    "matmul": Const(0.6, "fraction of peak FLOP/s", "assumption: large bf16 GEMMs in training reach roughly half to "
                                                        "two thirds of peak; not measured on these parts"),
    "hbm": Const(0.8, "fraction of peak B/s", "assumption: streaming kernels reach most of the HBM peak"),
    "link": Const(0.8, "fraction of peak B/s", "assumption: NCCL bus bandwidth on large messages"),
    "usable_hbm": Const(0.9, "fraction of HBM", "assumption: allocator fragmentation, CUDA context and workspaces"),
}

LATENCY = {
    "alpha_intra": Const(5e-6, "s per collective step", "assumption: NVLink collective step latency, microseconds order"),
    "alpha_inter": Const(1e-5, "s per collective step", "assumption: InfiniBand collective step latency, ~10 us order"),
}

BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "fp8": 1}


def table() -> list[dict]:
    """All constants as rows (name, value, unit, source), for the notebook's documented table."""
    rows = []
    for gpu, d in GPU.items():
        rows += [{"name": f"{gpu}.{k}", "value": c.value, "unit": c.unit, "source": c.source} for k, c in d.items()]
    for group in (EFFICIENCY, LATENCY):
        rows += [{"name": k, "value": c.value, "unit": c.unit, "source": c.source} for k, c in group.items()]
    return rows
