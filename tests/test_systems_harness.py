"""The measurement harness: a 2-process gloo group fed configurations; crashes and hangs become failed trials
after a timeout and the search goes on."""
import json

import pytest

from companion.nas.protocol import DecisionSpace
from companion.nas.searchers import RandomSearch
from companion.nas.trials import run_search
from companion.systems.harness import Harness, Infeasible, MeasureSettings
from companion.systems.model import JobShape
from companion.systems.space import HAND_DEFAULT

FAST = MeasureSettings(warmup=1, repeats=2, target_s=0.01, max_steps=3)
SMALL = JobShape(rows_per_table=2000)
BASE = {**HAND_DEFAULT, "threads": 1, "batch": 256, "emb_dim": 16}


@pytest.fixture(scope="module")
def harness():
    h = Harness(nproc=2, settings=FAST, timeout_s=8, shape=SMALL)
    yield h.start()
    h.close()


def test_two_process_job_returns_throughput_and_memory(harness):
    m = harness.measure({**BASE, "world": 2, "bucket_mb": 1})
    assert m["status"] == "ok", m
    assert m["samples_per_s"] > 0 and len(m["rates"]) == 2
    # the table alone is 16,000 x 16 fp32 = 1 MB, its dense gradient and two Adam states 3 MB more
    assert m["peak_mb"] > 1.0
    assert m["machine_cores"] >= 1 and m["machine_torch"]
    one = harness.measure(BASE)
    assert one["status"] == "ok" and one["samples_per_s"] > 0


def test_memory_budget_makes_a_job_infeasible(harness):
    harness.memory_budget_mb = 2.0
    try:
        big = harness.measure({**BASE, "emb_dim": 64})  # table 16,000 x 64 fp32 = 4 MB, plus its gradient: > 2 MB
        assert big["status"] == "infeasible" and "budget 2 MB" in big["error"] and big["peak_mb"] > 4
        with pytest.raises(Infeasible):
            harness.objective({**BASE, "emb_dim": 64})
        harness.memory_budget_mb = 1000.0
        assert harness.measure({**BASE, "emb_dim": 64})["status"] == "ok"
    finally:
        harness.memory_budget_mb = None


def test_crash_and_hang_are_failed_trials_and_the_search_goes_on(harness, tmp_path):
    jobs = {"ok": BASE, "crash": {**BASE, "emb_grad": "sparse", "optimizer": "adam"},  # torch refuses: a real crash
            "hang": BASE, "ok2": {**BASE, "world": 2, "bucket_mb": 5}}
    space = DecisionSpace({"job": list(jobs)}, name="faults")

    def objective(cand, seed):
        return harness.objective(jobs[cand["job"]], seed) if cand["job"] != "hang" else \
            _hang(harness, jobs["hang"])

    store = tmp_path / "trials.jsonl"
    res = run_search(space, RandomSearch(space, seed=0), objective, metric="samples_per_s", max_trials=4,
                     store=store, progress=False)
    by = {t["candidate"]["job"]: t for t in res.trials}
    assert set(by) == set(jobs)
    assert by["crash"]["status"] == "failed" and "sparse" in by["crash"]["error"]
    assert by["hang"]["status"] == "failed" and "hung" in by["hang"]["error"]
    assert by["ok"]["status"] == "ok" and by["ok2"]["status"] == "ok"
    assert by["ok2"]["metrics"]["samples_per_s"] > 0
    recs = [json.loads(l) for l in store.read_text().splitlines()]
    assert any(r.get("metrics") and r["metrics"].get("machine_host") for r in recs)
    assert harness.starts >= 2  # the group was restarted after the failures


def _hang(h, cfg):
    from companion.systems.harness import MeasurementFailed
    m = h.measure(cfg, fault="hang")
    if m["status"] != "ok":
        raise MeasurementFailed(m["error"])
    return m
