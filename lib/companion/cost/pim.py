"""An analytic processing-in-memory (PIM) cost model for recommender subnets.

Mapping (ToRS paper, section 3.2): operators that are matrix-vector products (FC, EFC, the dense-to-sparse
merger, and the projections inside Dot-Product and FM) sit on ReRAM crossbars, weights stationary; the
Dot-Product interaction itself and the FM sum-of-squares run on a digital unit. Each operator's latency,
energy and area follow from the crossbar size, the cell precision, the ADC/DAC figures and the weight and
activation bit-widths:

* a w-bit weight occupies ceil(w / cell_bits) columns (bit slicing), so crossbars ~ rows x cols x w;
* an a-bit input is fed bit-serially through 1-bit DACs, so each product takes ceil(a / dac_bits) cycles;
* each cycle reads the array once and converts the **used** columns with the crossbar's shared ADCs
  (``convert_unused_columns=False``, the default): a crossbar whose last column tile holds only part of a
  layer converts only that part, so fewer weight bits mean fewer conversions (energy) and, on a crossbar
  that is not full, fewer ADC rounds per cycle (latency). Setting ``convert_unused_columns=True`` gives the
  pessimistic reading (every column of an allocated crossbar is converted every cycle, ISAAC's fixed
  multiplexing order), under which a 4-bit layer that still needs the same crossbars saves nothing.

The ADC is by far the largest energy term (about 98 % of a small design's energy with the constants below),
so every energy ratio this model produces is close to a ratio of ADC conversions; the notebook shows how the
verdicts move when the ADC energy is halved or doubled.

The paper ran an in-house simulator with MNSIM 2.0 crossbar figures and CACTI buffers and published
neither the simulator nor absolute numbers; the constants below are the public ones it names (MNSIM 2.0's
default configuration and the ISAAC figures MNSIM itself quotes), plus Horowitz's 45 nm energy table for
digital arithmetic and SRAM/DRAM access. Every constant carries its source in :data:`SOURCES`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

__all__ = ["PIMConfig", "PIMOp", "OpCost", "PIMReport", "crossbar_cost", "digital_cost", "evaluate", "nmp_baseline", "with_bits", "SOURCES"]


@dataclass(frozen=True)
class PIMConfig:
    # crossbar (MNSIM 2.0 SimConfig.ini defaults)
    xbar_rows: int = 128
    xbar_cols: int = 128
    cell_bits: int = 1  # Device_Level = 2 resistance levels
    polarity: int = 2  # one positive and one negative crossbar per weight block
    cell_area_um2: float = 1.44
    cell_read_ns: float = 3.16
    read_voltage: float = 0.5
    r_hrs_ohm: float = 1.5e5
    r_lrs_ohm: float = 3.0e4
    # interfaces (ISAAC figures as tabulated in MNSIM 2.0's DAC/ADC models)
    dac_bits: int = 1
    dac_power_w: float = 0.0039e-3
    dac_area_um2: float = 0.166
    dac_rate_gsps: float = 1.0
    adc_bits: int = 8
    adc_power_w: float = 2e-3
    adc_area_um2: float = 1200.0
    adc_rate_gsps: float = 1.0
    adcs_per_xbar: int = 16  # MNSIM ADC_Num per crossbar group
    convert_unused_columns: bool = False  # True: every column of an allocated crossbar is converted every cycle
    # digital periphery and buffers
    periphery_mhz: float = 100.0  # MNSIM Digital_Frequency: shift-and-add of partial sums
    add_pj: float = 0.1  # 32-bit integer add, Horowitz 45 nm
    sram_pj_per_bit: float = 10.0 / 64  # 8 KB SRAM, 64-bit read = 10 pJ (Horowitz 45 nm); CACTI-class buffer
    buffer_gbps: float = 1024.0  # MNSIM Intra_Tile_Bandwidth
    out_bits: int = 16  # partial sums leave the crossbar tile at 16 bits
    # digital functional unit for Dot-Product / FM (fp16, our choice of 64 lanes at 1 GHz)
    dig_lanes: int = 64
    dig_ghz: float = 1.0
    dig_mac_pj: float = 1.1 + 0.4  # fp16 multiply + add, Horowitz 45 nm
    dig_mac_area_um2: float = 1640.0 + 1360.0  # fp16 multiplier + adder, Horowitz 45 nm

    def __post_init__(self):
        for name in ("xbar_rows", "xbar_cols", "cell_bits", "polarity", "dac_bits", "adc_bits", "adcs_per_xbar", "dig_lanes"):
            if getattr(self, name) < 1:
                raise ValueError(f"PIMConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def cell_read_power_w(self) -> float:
        """MNSIM 2.0's average-case cell read power: weighted HRS/LRS resistance, RMS read voltage."""
        r = self.r_hrs_ohm * self.r_lrs_ohm / (self.r_lrs_ohm * 0.67 + self.r_hrs_ohm * 0.33)
        v = math.sqrt(0.1 * self.read_voltage**2)
        return v * v / r

    @property
    def adc_ns(self) -> float:
        """MNSIM: one conversion takes (precision + 2) sample periods."""
        return (self.adc_bits + 2) / self.adc_rate_gsps

    @property
    def adc_pj(self) -> float:
        return self.adc_power_w * self.adc_ns * 1e3  # W x ns = nJ; x1e3 -> pJ

    @property
    def dac_pj(self) -> float:
        return self.dac_power_w * (1.0 / self.dac_rate_gsps) * 1e3

    @property
    def cell_pj(self) -> float:
        return self.cell_read_power_w * self.cell_read_ns * 1e3


SOURCES = [
    {"constant": "crossbar 128x128, 1 bit/cell, 2 crossbars per weight (pos/neg), cell 1.44 um^2, read 3.16 ns, 0.5 V, R 150k/30k ohm", "source": "MNSIM 2.0 default SimConfig.ini (Zhu et al., TCAD 2023; github.com/thu-nics/MNSIM-2.0)"},
    {"constant": "ADC 8 bit, 1 GS/s, 2 mW, 1200 um^2; conversion = (bits+2) periods; 16 ADCs per crossbar; only used columns converted (our reading, see the module docstring)", "source": "ISAAC (Shafiee et al., ISCA 2016) as tabulated in MNSIM 2.0 Hardware_Model/ADC.py; ADC_Num from SimConfig.ini"},
    {"constant": "DAC 1 bit, 1 GS/s, 0.0039 mW, 0.166 um^2, one per crossbar row", "source": "ISAAC as tabulated in MNSIM 2.0 Hardware_Model/DAC.py"},
    {"constant": "shift-and-add at 100 MHz; tile bandwidth 1024 Gb/s", "source": "MNSIM 2.0 SimConfig.ini (Digital_Frequency, Intra_Tile_Bandwidth)"},
    {"constant": "SRAM buffer 10 pJ per 64-bit read of an 8 KB array (0.16 pJ/bit)", "source": "Horowitz, ISSCC 2014, 45 nm; stand-in for the paper's CACTI 32 nm buffers"},
    {"constant": "int32 add 0.1 pJ; fp16 mult 1.1 pJ + add 0.4 pJ; fp16 mult 1640 um^2 + add 1360 um^2", "source": "Horowitz, ISSCC 2014, 45 nm"},
    {"constant": "digital unit: 64 fp16 MAC lanes at 1 GHz", "source": "our choice (the paper gives no figure)"},
    {"constant": "near-memory baseline: DRAM 640 pJ per 32-bit read (20 pJ/bit), int8 MAC 0.2+0.03 pJ, 8 ranks x 19.2 GB/s (DDR4-2400)", "source": "Horowitz ISSCC 2014; RecNMP (Ke et al., ISCA 2020) rank-level NMP on DDR4-2400 DIMMs"},
]


@dataclass(frozen=True)
class PIMOp:
    """One operator of a subnet as the cost model sees it.

    ``kind`` is ``crossbar`` (an in_features x out_features matrix applied ``repeats`` times per sample,
    e.g. EFC applies its token-mixing matrix once per embedding dimension) or ``digital`` (``macs``
    multiply-adds per sample). ``name`` ties the op back to its block and operator.
    """

    name: str
    kind: str
    in_features: int = 0
    out_features: int = 0
    repeats: int = 1
    w_bits: int = 8
    a_bits: int = 8
    macs: int = 0
    block: int = -1
    op: str = ""

    def __post_init__(self):
        if self.kind not in ("crossbar", "digital"):
            raise ValueError(f"PIMOp {self.name!r}: kind must be 'crossbar' or 'digital', got {self.kind!r}")
        if self.kind == "crossbar" and (self.in_features < 1 or self.out_features < 1 or self.repeats < 1):
            raise ValueError(f"PIMOp {self.name!r}: a crossbar op needs positive in/out features and repeats")


@dataclass
class OpCost:
    name: str
    kind: str
    latency_ns: float
    energy_pj: float
    area_um2: float
    crossbars: int = 0
    detail: dict = field(default_factory=dict)


def crossbar_cost(op: PIMOp, cfg: PIMConfig = PIMConfig()) -> OpCost:
    """Latency (per sample), energy (per sample) and area of one weight-stationary matrix on crossbars.

    The matrix is cut into ``row_tiles x col_tiles`` crossbar tiles (times ``polarity``); all tiles compute in
    parallel, so a cycle lasts as long as the fullest tile takes to convert its columns. Energy counts the
    rows that are driven, the cells and columns that hold weights, and (unless ``convert_unused_columns``)
    only the conversions of used columns. Area counts whole allocated crossbars and their ADCs.
    """
    slices = math.ceil(op.w_bits / cfg.cell_bits)
    cols = op.out_features * slices  # physical columns the layer occupies in one row tile
    row_tiles = math.ceil(op.in_features / cfg.xbar_rows)
    col_tiles = math.ceil(cols / cfg.xbar_cols)
    pairs = row_tiles * col_tiles
    n_xbar = pairs * cfg.polarity
    cycles = math.ceil(op.a_bits / cfg.dac_bits)
    if cfg.convert_unused_columns:
        conv_cols, busiest, driven_rows, cell_cols = col_tiles * cfg.xbar_cols, cfg.xbar_cols, row_tiles * cfg.xbar_rows, col_tiles * cfg.xbar_cols
    else:
        conv_cols, busiest, driven_rows, cell_cols = cols, min(cols, cfg.xbar_cols), op.in_features, cols
    adc_rounds = math.ceil(busiest / cfg.adcs_per_xbar)
    cycle_ns = cfg.cell_read_ns + adc_rounds * cfg.adc_ns
    merge_ns = (math.ceil(math.log2(row_tiles * slices)) + 1) * 1e3 / cfg.periphery_mhz
    move_bits = op.in_features * op.a_bits + op.out_features * cfg.out_bits
    move_ns = move_bits / cfg.buffer_gbps
    latency = op.repeats * (cycles * cycle_ns + merge_ns + move_ns)
    e_cells = cfg.polarity * cycles * driven_rows * cell_cols * cfg.cell_pj
    e_dac = cfg.polarity * cycles * driven_rows * col_tiles * cfg.dac_pj
    e_adc = row_tiles * cycles * conv_cols * cfg.adc_pj
    e_add = op.out_features * slices * row_tiles * cycles * cfg.add_pj
    e_buf = move_bits * cfg.sram_pj_per_bit
    energy = op.repeats * (e_cells + e_dac + e_adc + e_add + e_buf)
    area = n_xbar * (cfg.xbar_rows * cfg.xbar_cols * cfg.cell_area_um2 + cfg.xbar_rows * cfg.dac_area_um2) + pairs * cfg.adcs_per_xbar * cfg.adc_area_um2
    detail = {"slices": slices, "row_tiles": row_tiles, "col_tiles": col_tiles, "cycles": cycles, "cycle_ns": cycle_ns,
              "adc_rounds": adc_rounds, "conversions": op.repeats * row_tiles * cycles * conv_cols,
              "e_cells": op.repeats * e_cells, "e_dac": op.repeats * e_dac, "e_adc": op.repeats * e_adc,
              "e_add": op.repeats * e_add, "e_buffer": op.repeats * e_buf}
    return OpCost(op.name, op.kind, latency, energy, area, n_xbar, detail)


def digital_cost(op: PIMOp, cfg: PIMConfig = PIMConfig()) -> OpCost:
    """Dot-Product / FM on the digital unit: MACs spread over the lanes; area is the shared unit's."""
    latency = math.ceil(op.macs / cfg.dig_lanes) / cfg.dig_ghz
    energy = op.macs * cfg.dig_mac_pj
    return OpCost(op.name, op.kind, latency, energy, 0.0, 0, {"macs": op.macs})


@dataclass
class PIMReport:
    ops: list[OpCost]
    latency_ns: float
    energy_pj: float
    area_mm2: float

    def table(self):
        import pandas as pd

        return pd.DataFrame([{k: v for k, v in asdict(o).items() if k != "detail"} for o in self.ops])

    def summary(self) -> dict:
        return {"latency_us": self.latency_ns / 1e3, "energy_nj": self.energy_pj / 1e3, "area_mm2": self.area_mm2,
                "crossbars": sum(o.crossbars for o in self.ops), "adc_share": self.adc_share()}

    def adc_share(self) -> float:
        """Fraction of the energy spent in ADC conversions."""
        return sum(o.detail.get("e_adc", 0.0) for o in self.ops) / max(self.energy_pj, 1e-30)


def evaluate(ops: list[PIMOp], cfg: PIMConfig = PIMConfig()) -> PIMReport:
    """Cost of one inference (per sample). Operators run one after another (a block feeds the next),
    so latencies add; every crossbar operator owns its arrays and one digital unit is shared."""
    costs = [crossbar_cost(o, cfg) if o.kind == "crossbar" else digital_cost(o, cfg) for o in ops]
    area = sum(c.area_um2 for c in costs)
    if any(o.kind == "digital" for o in ops):
        area += cfg.dig_lanes * cfg.dig_mac_area_um2
    return PIMReport(costs, sum(c.latency_ns for c in costs), sum(c.energy_pj for c in costs), area / 1e6)


def nmp_baseline(ops: list[PIMOp], dram_pj_per_bit: float = 20.0, mac_pj: float = 0.23, ranks: int = 8, gbps_per_rank: float = 19.2 * 8) -> PIMReport:
    """RecNMP-style near-memory digital baseline: weights stream from DRAM at 8 bits, int8 MACs in the rank units.

    Latency is bandwidth-bound (weight bytes over ``ranks`` x DDR4-2400 rate); energy is DRAM reads plus MACs.
    """
    costs = []
    for o in ops:
        if o.kind == "crossbar":
            macs = o.in_features * o.out_features * o.repeats
            bits = o.in_features * o.out_features * 8
        else:
            macs, bits = o.macs, 0
        lat = bits / (ranks * gbps_per_rank)
        costs.append(OpCost(o.name, o.kind, lat, bits * dram_pj_per_bit + macs * mac_pj, 0.0))
    return PIMReport(costs, sum(c.latency_ns for c in costs), sum(c.energy_pj for c in costs), 0.0)


def with_bits(ops: list[PIMOp], w_bits: int, a_bits: int) -> list[PIMOp]:
    """The same operators with every crossbar op at one bit-width (e.g. the all-8-bit hand-crafted design)."""
    return [replace(o, w_bits=w_bits, a_bits=a_bits) if o.kind == "crossbar" else o for o in ops]
