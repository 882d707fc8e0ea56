"""The PIM cost model against numbers worked out by hand from the MNSIM 2.0 / ISAAC / Horowitz constants."""
import math

import pytest

from companion.cost.pim import PIMConfig, PIMOp, crossbar_cost, digital_cost, evaluate, nmp_baseline, with_bits


def test_hand_computed_fc_256x64_8bit():
    cfg = PIMConfig()
    c = crossbar_cost(PIMOp("fc", "crossbar", 256, 64, 1, 8, 8), cfg)
    # 8-bit weights on 1-bit cells: 8 columns per weight -> 512 columns = 4 column tiles; 256 rows = 2 row tiles;
    # 8 tiles x 2 (pos/neg) = 16 crossbars; 8-bit inputs through 1-bit DACs = 8 cycles
    assert c.crossbars == 16
    # cycle = 3.16 ns read + (128 columns / 16 ADCs) x (8 + 2) ns conversion = 83.16 ns
    # merge = (log2(2 row tiles x 8 slices) + 1) x 10 ns = 50 ns; buffer = (256*8 + 64*16) bits / 1024 Gb/s = 3 ns
    assert c.latency_ns == pytest.approx(8 * 83.16 + 50 + 3)
    r = 1.5e5 * 3e4 / (3e4 * 0.67 + 1.5e5 * 0.33)  # 64,655 ohm
    cell_pj = (0.1 * 0.25 / r) * 3.16e-9 * 1e12  # V^2/R x read time
    e = (16 * 8 * 128 * 128 * cell_pj  # cells
         + 16 * 8 * 128 * 0.0039  # 1-bit DACs, 0.0039 mW x 1 ns
         + 8 * 8 * 128 * 20.0  # ADC: 8 pairs x 8 cycles x 128 columns x (2 mW x 10 ns)
         + 64 * 8 * 2 * 8 * 0.1  # shift-and-add
         + 3072 * 10 / 64)  # SRAM buffer
    assert c.energy_pj == pytest.approx(e, rel=1e-9)
    assert c.energy_pj == pytest.approx(167766, rel=1e-3)
    area = 16 * (128 * 128 * 1.44 + 128 * 0.166) + 8 * 16 * 1200
    assert c.area_um2 == pytest.approx(area)


def test_bits_move_the_costs_the_right_way():
    base = PIMOp("efc", "crossbar", 300, 200, 16, 8, 8)
    c88 = crossbar_cost(base)
    c48 = crossbar_cost(PIMOp("efc", "crossbar", 300, 200, 16, 4, 8))
    c84 = crossbar_cost(PIMOp("efc", "crossbar", 300, 200, 16, 8, 4))
    assert c48.crossbars < c88.crossbars and c48.area_um2 < c88.area_um2  # fewer weight slices
    assert c48.energy_pj < c88.energy_pj
    assert c84.latency_ns < c88.latency_ns  # fewer input cycles
    assert c84.energy_pj == pytest.approx(c88.energy_pj / 2, rel=0.05)  # energy ~ input cycles
    one = crossbar_cost(PIMOp("efc", "crossbar", 300, 200, 1, 8, 8))
    assert c88.energy_pj == pytest.approx(16 * one.energy_pj)  # repeats scale latency and energy, not area
    assert c88.area_um2 == one.area_um2


def test_digital_unit_and_totals():
    d = digital_cost(PIMOp("dot", "digital", macs=640))
    assert d.latency_ns == pytest.approx(10.0)  # 640 MACs / 64 lanes at 1 GHz
    assert d.energy_pj == pytest.approx(640 * 1.5)
    ops = [PIMOp("fc", "crossbar", 256, 64), PIMOp("dot", "digital", macs=640)]
    rep = evaluate(ops)
    assert rep.latency_ns == pytest.approx(sum(c.latency_ns for c in rep.ops))
    assert rep.area_mm2 == pytest.approx((crossbar_cost(ops[0]).area_um2 + 64 * 3000) / 1e6)
    assert with_bits(ops, 4, 4)[0].w_bits == 4 and with_bits(ops, 4, 4)[1] == ops[1]
    nmp = nmp_baseline(ops)
    assert nmp.energy_pj == pytest.approx(256 * 64 * 8 * 20 + 256 * 64 * 0.23 + 640 * 0.23)


def test_validation_errors():
    with pytest.raises(ValueError, match="kind"):
        PIMOp("x", "analog")
    with pytest.raises(ValueError, match="positive"):
        PIMOp("x", "crossbar", 0, 4)
    with pytest.raises(ValueError, match="xbar_rows"):
        PIMConfig(xbar_rows=0)
    assert math.isclose(PIMConfig().adc_pj, 20.0)


def _cell_pj():
    r = 1.5e5 * 3e4 / (3e4 * 0.67 + 1.5e5 * 0.33)
    return (0.1 * 0.25 / r) * 3.16e-9 * 1e12


def test_hand_computed_partial_crossbar_converts_used_columns_only():
    """A 20 -> 10 layer fills 20 rows and 80 (8-bit) or 40 (4-bit) of the 128 columns of one crossbar."""
    c8 = crossbar_cost(PIMOp("fc", "crossbar", 20, 10, 1, 8, 8))
    c4 = crossbar_cost(PIMOp("fc", "crossbar", 20, 10, 1, 4, 8))
    assert (c8.crossbars, c4.crossbars) == (2, 2)  # one tile either way, x2 polarity
    assert (c8.detail["adc_rounds"], c4.detail["adc_rounds"]) == (5, 3)  # ceil(80/16), ceil(40/16)
    move = (20 * 8 + 10 * 16) / 1024
    assert c8.latency_ns == pytest.approx(8 * (3.16 + 5 * 10) + (3 + 1) * 10 + move)  # merge: log2(8 slices) + 1
    assert c4.latency_ns == pytest.approx(8 * (3.16 + 3 * 10) + (2 + 1) * 10 + move)
    e8 = 2 * 8 * 20 * 80 * _cell_pj() + 2 * 8 * 20 * 1 * 0.0039 + 8 * 80 * 20.0 + 10 * 8 * 8 * 0.1 + 320 * 10 / 64
    e4 = 2 * 8 * 20 * 40 * _cell_pj() + 2 * 8 * 20 * 1 * 0.0039 + 8 * 40 * 20.0 + 10 * 4 * 8 * 0.1 + 320 * 10 / 64
    assert c8.energy_pj == pytest.approx(e8, rel=1e-9) and c4.energy_pj == pytest.approx(e4, rel=1e-9)
    assert c8.detail["e_adc"] == pytest.approx(12800.0) and c4.detail["e_adc"] == pytest.approx(6400.0)


def test_pessimistic_reading_converts_every_column():
    """convert_unused_columns=True: the same layer converts all 128 columns, so 4-bit weights save no ADC energy."""
    cfg = PIMConfig(convert_unused_columns=True)
    c8 = crossbar_cost(PIMOp("fc", "crossbar", 20, 10, 1, 8, 8), cfg)
    c4 = crossbar_cost(PIMOp("fc", "crossbar", 20, 10, 1, 4, 8), cfg)
    assert c8.detail["e_adc"] == c4.detail["e_adc"] == pytest.approx(8 * 128 * 20.0)
    assert c8.detail["adc_rounds"] == c4.detail["adc_rounds"] == 8
    assert c8.energy_pj - c4.energy_pj == pytest.approx(10 * 4 * 8 * 0.1)  # only the shift-and-add differs
    assert c8.energy_pj > crossbar_cost(PIMOp("fc", "crossbar", 20, 10, 1, 8, 8)).energy_pj


def test_weight_bits_change_the_tiling():
    """24 outputs x 8 bits = 192 columns: 2 column tiles; at 4 bits 96 columns: 1. Under either reading the ADC
    energy of the layer halves, and the allocated crossbars and their ADCs halve."""
    for conv in (False, True):
        cfg = PIMConfig(convert_unused_columns=conv)
        c8 = crossbar_cost(PIMOp("fc", "crossbar", 64, 24, 1, 8, 8), cfg)
        c4 = crossbar_cost(PIMOp("fc", "crossbar", 64, 24, 1, 4, 8), cfg)
        assert (c8.detail["col_tiles"], c4.detail["col_tiles"]) == (2, 1)
        assert (c8.crossbars, c4.crossbars) == (4, 2)
        conv8, conv4 = (256, 128) if conv else (192, 96)
        assert c8.detail["e_adc"] == pytest.approx(8 * conv8 * 20.0) and c4.detail["e_adc"] == pytest.approx(8 * conv4 * 20.0)
    # used-column reading: the fullest tile of the 8-bit layer is full (8 rounds), the 4-bit one holds 96 (6 rounds)
    assert crossbar_cost(PIMOp("fc", "crossbar", 64, 24, 1, 8, 8)).detail["adc_rounds"] == 8
    assert crossbar_cost(PIMOp("fc", "crossbar", 64, 24, 1, 4, 8)).detail["adc_rounds"] == 6


def test_adc_share_and_adc_constant():
    ops = [PIMOp("fc", "crossbar", 256, 64), PIMOp("dot", "digital", macs=640)]
    rep = evaluate(ops)
    assert rep.adc_share() == pytest.approx(rep.ops[0].detail["e_adc"] / rep.energy_pj)
    assert rep.summary()["adc_share"] == rep.adc_share()
    double = evaluate(ops, PIMConfig(adc_power_w=4e-3))
    assert double.energy_pj - rep.energy_pj == pytest.approx(rep.ops[0].detail["e_adc"])  # only the ADC term moves
    assert double.latency_ns == rep.latency_ns
