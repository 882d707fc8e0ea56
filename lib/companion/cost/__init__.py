"""Cost of a model: FLOPs and parameters, CPU latency, fake quantization, the PIM cost model, structured pruning."""
from .flops import Profile, count_flops, count_params, profile
from .latency import Latency, measure_latency
from .pim import PIMConfig, PIMOp, PIMReport, evaluate as pim_evaluate, nmp_baseline
from .quant import FakeQuantModel, QuantPolicy, fake_quant, quantized

__all__ = ["Profile", "count_flops", "count_params", "profile", "Latency", "measure_latency", "PIMConfig", "PIMOp",
           "PIMReport", "pim_evaluate", "nmp_baseline", "FakeQuantModel", "QuantPolicy", "fake_quant", "quantized"]
