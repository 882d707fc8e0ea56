"""The HTML report from hand-written run records: tallies over tested claims only, no None cells, the rule column,
the seed(s), captioned figures, and a later failed run shown beside the last good one."""
import json

import pytest

from companion import papers, report, runner


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    p = papers.Paper(0, "demo", "Demo paper", "1234.5678")
    q = papers.Paper(1, "other", "Other paper", "")
    monkeypatch.setattr(papers, "PAPERS", [p, q])
    return tmp_path


def _run(out, slug, run_id, **rec):
    d = out / slug / run_id
    (d / "figures").mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"run_id": run_id, "finished": run_id, **rec}))
    return d


CLAIMS = [
    {"claim": "a beats b", "paper": 0.5, "ours": "gap +0.1", "verdict": "reproduced", "rule": "interval > 0", "note": None},
    {"claim": "c beats d", "paper": None, "ours": None, "verdict": "partly", "rule": "half", "note": ""},
    {"claim": "e beats f", "paper": 1, "ours": 2, "verdict": "inconclusive", "rule": "covers 0"},
    {"claim": "g", "paper": 1, "ours": 2, "verdict": "inconclusive", "rule": "two seeds"},
    {"claim": "h", "paper": 1, "ours": None, "verdict": "not tested", "rule": "needs criteo"},
]


def test_tally_counts_only_tested_claims():
    assert report.tally_text(CLAIMS) == "1 reproduced / 1 partly / 2 inconclusive of 4 tested, 1 not tested"
    assert report.tally_text([CLAIMS[-1]]) == "none tested, 1 not tested"
    assert report.tally_text([]) == ""


def test_page_shows_rule_seeds_captions_and_no_none(outputs):
    d = _run(outputs, "demo", "20260101-000000-quick", status="ok", claims=CLAIMS, params={"seeds": [0, 1, 2]},
             headline={"auc": 0.81234}, scale="quick", runtime_s=3.0)
    (d / "figures" / "learning_curves.png").write_bytes(b"\x89PNG")
    runner._point_latest(outputs / "demo", d)
    page = report.build_report(outputs).read_text()
    assert "None" not in page
    assert "<th>rule</th>" in page and "<td class='rule'>covers 0</td>" in page
    assert "class='v-inconclusive'" in page and ".v-inconclusive{" in page
    assert "seeds 0, 1, 2" in page and "auc=0.8123" in page
    assert "<figcaption>learning curves</figcaption>" in page and "demo/latest/figures/learning_curves.png" in page
    assert "1 reproduced / 1 partly / 2 inconclusive of 4 tested, 1 not tested" in page
    assert "not run yet" in page or "no notebook yet" in page  # the other paper is listed, not hidden


def test_single_seed_override_wins(outputs):
    d = _run(outputs, "demo", "20260101-000000-quick", status="ok", claims=[], overrides={"seed": 7},
             params={"seed": 0})
    runner._point_latest(outputs / "demo", d)
    assert "seed 7" in report.build_report(outputs).read_text()


def test_later_failed_run_is_named_beside_the_last_good_one(outputs):
    good = _run(outputs, "demo", "20260101-000000-quick", status="ok", claims=CLAIMS[:1])
    runner._point_latest(outputs / "demo", good)
    _run(outputs, "demo", "20260102-000000-quick", status="kernel-died", error="the kernel died while running cell 4")
    page = report.build_report(outputs).read_text()
    assert "a later run, <code>20260102-000000-quick</code>, did not finish" in page
    assert "last_failed: kernel-died" in page and "a beats b" in page
    assert "the kernel died while running cell 4" in page


def test_html_in_records_is_escaped(outputs):
    d = _run(outputs, "demo", "20260101-000000-quick", status="ok",
             claims=[{"claim": "<script>x</script>", "verdict": "reproduced", "rule": "<b>", "ours": 1}])
    runner._point_latest(outputs / "demo", d)
    page = report.build_report(outputs).read_text()
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
