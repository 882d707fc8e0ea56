"""The analytic cluster model on hand-computed cases (exact numbers), and orderings it must respect."""
import math

import pytest

from companion.systems import constants
from companion.systems.cluster import (LLM_DEFAULT, REC_DEFAULT, Cluster, RecModel, Simulated, Transformer, all_gather,
                                       all_reduce, all_to_all, llm_space, llm_step, rec_step)

TINY = Transformer(layers=2, hidden=4, ffn=8, heads=2, kv_heads=2, vocab=10, seq=4, global_batch=2)
UNIT = dict(matmul_eff=1.0, hbm_eff=1.0, link_eff=1.0, usable_hbm=1.0, alpha_intra=0.0, alpha_inter=0.0,
            overrides=(("bf16_flops", 1e12), ("hbm_bw", 1e12), ("nvlink_bw", 1e11), ("ib_bw", 1e10), ("hbm", 1e6)))


def test_collectives_by_hand():
    assert all_reduce(1e9, 4, 1e-5, 1e11) == pytest.approx(6e-5 + 0.015, rel=1e-12)
    assert all_gather(1e9, 4, 1e-5, 1e11) == pytest.approx(3e-5 + 0.0075, rel=1e-12)
    assert all_to_all(8e9, 8, 0.0, 1e10) == pytest.approx(0.7, rel=1e-12)
    assert all_reduce(1e9, 1, 1e-5, 1e11) == 0.0


def test_llm_step_on_a_hand_computed_case():
    # layer params 2*16 + 2*4*4 + 3*4*8 = 160; total 2*160 + 2*10*4 = 400
    assert TINY.layer_params == 160 and TINY.params == 400
    r = llm_step({"tp": 1, "pp": 1, "micro_batch": 1, "recompute": "none", "zero": 0}, TINY, Cluster(n_gpus=2, **UNIT))
    # dp 2, 1 micro-batch; flops 3 * (352*4*2 + 2*10*4*4) = 9408 > bytes 3*720 + 2176 = 4336 -> compute-bound
    assert (r["dp"], r["micro_batches"]) == (2, 1)
    assert r["t_compute"] == pytest.approx(9408 / 1e12, rel=1e-12)
    # data parallel: ring all-reduce of 800 bf16 gradient bytes over 2 ranks in one node: 800 / 1e11
    assert r["t_dp"] == pytest.approx(8e-9, rel=1e-12)
    assert r["step_s"] == pytest.approx(9408e-12 + 8e-9, rel=1e-12)
    # memory: 16 B/param (bf16 weights + grads, fp32 Adam) + activations 4*4*(34 + 5*2*4/4) per layer x 2 layers
    assert r["state_gb"] * 1e9 == pytest.approx(6400, rel=1e-12)
    assert r["act_gb"] * 1e9 == pytest.approx(1408, rel=1e-12)
    assert r["feasible"]  # 7808 B <= 1e6 B
    z3 = llm_step({"tp": 1, "pp": 1, "micro_batch": 1, "recompute": "none", "zero": 3}, TINY, Cluster(n_gpus=2, **UNIT))
    assert z3["state_gb"] * 1e9 == pytest.approx(3200, rel=1e-12)
    # stage 3 gathers parameters forward and backward and scatters gradients: 3 half-rings of 800 B
    assert z3["t_dp"] == pytest.approx(3 * 400 / 1e11, rel=1e-12)


def test_llm_orderings_and_refusals():
    cl = Cluster()
    full = llm_step({**LLM_DEFAULT, "recompute": "full"}, Transformer(), cl)
    none = llm_step({**LLM_DEFAULT, "recompute": "none"}, Transformer(), cl)
    assert none["act_gb"] > full["act_gb"] and none["t_compute"] < full["t_compute"]
    z1, z3 = (llm_step({**LLM_DEFAULT, "zero": z}, Transformer(), cl) for z in (1, 3))
    assert z3["state_gb"] < z1["state_gb"] and z3["t_dp"] > z1["t_dp"]
    sp = llm_space(Transformer(), cl)
    assert "GPUs per node" in llm_step({**LLM_DEFAULT, "tp": 16}, Transformer(), cl)["reason"]
    assert sp.reason({**LLM_DEFAULT, "pp": 16}) is None and sp.reason(LLM_DEFAULT) is None
    assert "multiple" in llm_step({**LLM_DEFAULT, "micro_batch": 4, "pp": 1, "tp": 1}, Transformer(global_batch=2050), cl)["reason"]
    # the 405B shape: Llama 3.1 405B's published size, about 405.8e9 parameters by this count
    assert Transformer().params == pytest.approx(405.8e9, rel=1e-3)


def test_rec_row_wise_sends_n_times_the_pooled_volume():
    cl = Cluster(n_gpus=16, **{**UNIT, "overrides": UNIT["overrides"][:-1]})
    tw, rw = (rec_step({**REC_DEFAULT, "sharding": s}, RecModel(), cl) for s in ("table_wise", "row_wise"))
    assert rw["t_a2a"] == pytest.approx(16 * tw["t_a2a"], rel=1e-12)
    fp8 = rec_step({**REC_DEFAULT, "comm": "fp8"}, RecModel(), cl)
    assert fp8["t_a2a"] == pytest.approx(tw["t_a2a"] / 4, rel=1e-12)


def test_simulated_measurement_is_seeded_and_infeasible_raises():
    sim = Simulated(llm_step, "tokens_per_s", noise=0.05, seed=1)
    a, b = sim(LLM_DEFAULT)["tokens_per_s"], sim(LLM_DEFAULT)["tokens_per_s"]
    assert a == b and a != sim(LLM_DEFAULT, rep=1)["tokens_per_s"]
    assert abs(math.log(a / llm_step(LLM_DEFAULT)["tokens_per_s"])) < 0.25
    with pytest.raises(MemoryError):
        sim({"tp": 1, "pp": 1, "micro_batch": 2, "recompute": "none", "zero": 0})  # 16 B x 405e9 on one GPU


def test_every_constant_has_a_source():
    rows = constants.table()
    assert len(rows) >= 16 and all(r["source"].startswith(("datasheet:", "assumption:")) for r in rows)
