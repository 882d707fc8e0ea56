import numpy as np
import pytest

from companion.data.synthetic import make_synthetic_ctr
from companion.nas import make_space
from companion.nas import twoshot as ts
from companion.nas.fgps import set_entropy
from companion.nas.predictor import PredictorConfig
from companion.train import TrainConfig


def _cfg(**kw):
    base = dict(first_shot_steps=20, second_shot_steps=10, batch_size=64, lr=0.05, finetune_steps=2, eval_rows=200,
                predictor_paths=12, predictor=PredictorConfig(epochs=5), pool_population=30, pool_sample=5,
                pool_children=6, pool_keep=2, pool_generations=15, n_paths=16, fgps_batch=6, fgps_k=2,
                ea_population=4, ea_sample=2, ea_children=2, ea_generations=2, top_k=2,
                scratch=TrainConfig(epochs=1, batch_size=128, lr=3e-3, monitor="logloss", patience=1, progress=False),
                diversity_draws=5, progress=False)
    base.update(kw)
    return ts.TwoShotConfig(**base)


def test_two_shot_pipeline_end_to_end_is_deterministic():
    splits = make_synthetic_ctr(n_samples=1500, n_dense=2, n_sparse=4, vocab_size=8, seed=0)
    space = make_space("nasrec-full", "tiny", num_blocks=3)
    cfg = _cfg()
    r = ts.run_two_shot(splits, space, cfg, seed=0)
    assert list(r.summary.strategy) == list(ts.STRATEGIES)
    assert all(len(r.path_sets[s]) == 16 for s in ("uniform", "quality", "fgps"))
    # FGPS and quality-only draw from the same pool; FGPS's set is the more diverse one
    keys = {a.key() for a in r.pool}
    assert all(a.key() in keys for a in r.path_sets["fgps"] + r.path_sets["quality"])
    ent = dict(zip(r.summary.strategy, r.summary.path_set_entropy))
    assert ent["fgps"] > ent["quality"]
    assert ent["fgps"] == pytest.approx(set_entropy(space.encode_many(r.path_sets["fgps"])))
    # NASRec's protocol: each strategy's final model is its top-k candidate with the best *validation* log loss
    for row in r.summary.itertuples():
        mine = r.scratch[r.scratch.found_by.str.split(",").apply(lambda f, s=row.strategy: s in f)]
        best = mine.loc[mine.scratch_valid_logloss.idxmin()]
        assert (row.final_key, row.final_test_logloss) == (best.key, best.scratch_test_logloss)
    # the diversity controls: quality-only top-k is by construction the best set by predicted log loss, every
    # random pool draw has the pool's size and is no better, and the set means agree with the summary
    d = r.diversity
    assert len(d[d.set == "pool_random"]) == len(d[d.set == "uniform"]) == cfg.diversity_draws
    q, pool = d[d.set == "quality"].pred_logloss.iloc[0], d[d.set == "pool"].pred_logloss.iloc[0]
    assert q <= d[d.set == "pool_random"].pred_logloss.min() and q <= d[d.set == "fgps"].pred_logloss.iloc[0] and q <= pool
    assert pool == pytest.approx(float(np.mean(r.pool_predicted)))
    assert dict(zip(r.summary.strategy, r.summary.path_set_pred_logloss))["fgps"] == d[d.set == "fgps"].pred_logloss.iloc[0]
    tab = ts.diversity_table([r])
    assert tab[tab.set == "pool"].pred_gap_vs_pool.iloc[0] == 0.0 and (tab[tab.set == "quality"].pred_gap_vs_pool <= 0).all()
    assert len(r.scratch) >= 2 and {"supernet_uniform", "supernet_quality", "supernet_fgps"} <= set(r.scratch.columns)
    finals = r.final_archs()
    assert set(finals) == set(ts.STRATEGIES) and all(space.validate(a) for a in finals.values())
    again = ts.run_two_shot(splits, space, cfg, seed=0)
    assert again.summary.final_test_logloss.tolist() == r.summary.final_test_logloss.tolist()
    assert len(ts.summarize([r, again])) == 2 * len(ts.STRATEGIES)
    curves = ts.entropy_curves(r)
    assert set(curves.set) == {"FGPS", "quality-only top-k", "random draw from the pool", "uniform from the space"}
    usage = ts.op_usage(list(finals.values()))
    assert usage["count"].sum() >= 2 * len(finals)


def test_config_checks():
    with pytest.raises(ValueError, match="unknown strategies"):
        _cfg(strategies=("fgps", "magic"))
    with pytest.raises(ValueError, match="n_paths"):
        _cfg(n_paths=0)
    with pytest.raises(ValueError, match="sharing"):
        _cfg(sharing="prune")


def test_pipeline_runs_with_masked_weight_sharing():
    splits = make_synthetic_ctr(n_samples=800, n_dense=2, n_sparse=3, vocab_size=8, seed=1)
    space = make_space("nasrec-full", "tiny", num_blocks=2)
    r = ts.run_two_shot(splits, space, _cfg(sharing="mask", n_paths=8, pool_population=16, pool_generations=6), seed=1)
    assert list(r.summary.strategy) == list(ts.STRATEGIES)
    assert np.isfinite(r.summary.final_test_logloss).all()


def test_head_to_head_counts_wins_per_seed():
    import pandas as pd

    summary = pd.DataFrame({"strategy": ["fgps", "uniform"] * 3, "seed": [0, 0, 1, 1, 2, 2],
                            "final_test_logloss": [0.40, 0.41, 0.50, 0.49, 0.30, 0.33]})
    h = ts.head_to_head(summary, "fgps", "uniform")
    assert (h["seeds"], h["wins"]) == (3, 2)
    assert h["mean_diff"] == pytest.approx((-0.01 + 0.01 - 0.03) / 3)
