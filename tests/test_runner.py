"""Runner: parameter validation before any cell runs, a recorded status for every way a run ends, the report.

The toy notebook here is a real one, executed by papermill in a real kernel; ``mode`` picks how its run ends.
``tests/test_runner_robust.py`` reuses ``make_toy`` for the harder endings (a killed kernel, Ctrl-C, races).
"""
import json

import nbformat
import pytest

from companion import cli, papers, report, runner

PARAMS = '''scale = "quick"  # quick|laptop|paper: preset
seed = 0  # int: random seed
epochs = None  # int≥1: epochs (None: preset)
lr = 0.01  # float>0≤10: learning rate
verbose = False  # bool: chatty output
fail = False  # bool: raise in the second cell
mode = "ok"  # ok|kill|bars|slow: how the body ends (kill: the kernel kills itself)
device = "cpu"  # str: cpu or cuda
'''
BODY = '''import companion, os, sys, time
from companion import evidence
if fail:
    raise RuntimeError("boom on purpose")
P = companion.params.resolve({"quick": {"epochs": 1}, "laptop": {"epochs": 5}, "paper": {"epochs": 50}}, scale, globals())
if mode == "kill":
    os.kill(os.getpid(), 9)
if mode == "slow":
    time.sleep(60)
if mode == "bars":
    from companion.progress import tqdm
    for _ in tqdm(range(300), mininterval=0, desc="inner"):
        pass
    for i in range(40):
        sys.stderr.write(f"\\r{i}%|##   | {i}/40 [00:01<00:02, 3.1it/s]")
    sys.stderr.write("\\n")
    import warnings
    warnings.warn("a real warning the reader must see")
companion.results.save("toy", params=vars(P) | {"seed": seed}, metrics={"epochs": P.epochs, "lr": lr}, claims=[
    companion.results.claim("toy claim", 1, P.epochs, evidence.Evidence("reproduced", "toy rule: epochs >= 1")),
    companion.results.claim("toy open claim", 2, None, evidence.not_tested("not measured here"))],
    headline={"epochs": P.epochs})
'''


def make_toy(tmp_path, monkeypatch, slugs=("toy",), bodies=None):
    """Register toy papers whose notebooks live in ``tmp_path``; outputs go to ``tmp_path/outputs``."""
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir(exist_ok=True)
    monkeypatch.setattr(papers, "NOTEBOOK_DIR", nb_dir)
    made = []
    for i, slug in enumerate(slugs):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell(PARAMS)
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {slug}"), cell, nbformat.v4.new_code_cell((bodies or {}).get(slug, BODY))]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        paper = papers.Paper(90 + i, slug, f"Toy paper {slug}", "0000.00000")
        monkeypatch.setitem(papers.BY_SLUG, slug, paper)
        nbformat.write(nb, paper.notebook)
        made.append(paper)
    monkeypatch.setattr(papers, "PAPERS", made)
    out = tmp_path / "outputs"
    monkeypatch.setattr(runner, "OUTPUTS", out)
    monkeypatch.setattr(report, "OUTPUTS", out)
    return made[0], out


@pytest.fixture
def toy(tmp_path, monkeypatch):
    return make_toy(tmp_path, monkeypatch)


def _record(out, run_id, slug="toy"):
    return json.loads((out / slug / run_id / "results.json").read_text())


def _runs(out, slug="toy"):
    return {d.name: json.loads((d / "results.json").read_text()) for d in (out / slug).iterdir()
            if d.is_dir() and not d.is_symlink()}


def test_parameters_are_parsed_with_types_bounds_and_help(toy):
    spec = {p.name: p for p in runner.parse_parameters(toy[0].notebook)}
    assert spec["scale"].choices == ["quick", "laptop", "paper"]
    assert (spec["epochs"].type, spec["epochs"].op, spec["epochs"].bound) == ("int", ">=", 1.0)
    assert spec["lr"].bounds == [(">", 0.0), ("<=", 10.0)]
    assert spec["lr"].help == "learning rate" and spec["verbose"].default is False


@pytest.mark.parametrize("given, message", [
    ({"epoch": "3"}, "unknown parameter 'epoch'. Did you mean 'epochs'?"),
    ({"epochs": "abc"}, "parameter 'epochs' expects int, got 'abc'"),
    ({"verbose": "maybe"}, "parameter 'verbose' expects a bool"),
    ({"epochs": "0"}, "parameter 'epochs' must be >= 1, got '0'"),
    ({"epochs": "-2"}, "must be >= 1"),
    ({"lr": "0"}, "parameter 'lr' must be > 0"),
    ({"lr": "11"}, "parameter 'lr' must be <= 10, got '11'"),
    ({"lr": "inf"}, "parameter 'lr' must be a finite number, got 'inf'"),
    ({"lr": "nan"}, "must be a finite number"),
    ({"lr": "1e309"}, "must be a finite number, got '1e309'"),
    ({"seed": "1e23"}, "parameter 'seed' expects int, got '1e23'"),
    ({"seed": 1e23}, "parameter 'seed' expects int"),
    ({"seed": str(2**64)}, "parameter 'seed' is out of range"),
    ({"scale": "huge"}, "must be one of ['quick', 'laptop', 'paper']"),
    ({"mode": ""}, "parameter 'mode' must be one of"),
    ({"device": ""}, "parameter 'device' is empty; give a value (its default is 'cpu')"),
    ({"device": "  "}, "parameter 'device' is empty"),
    ({"epochs": "2.5"}, "expects int"),
])
def test_bad_parameters_are_refused_before_running(toy, given, message):
    spec = runner.parse_parameters(toy[0].notebook)
    with pytest.raises(runner.ParameterError) as err:
        runner.validate(spec, given)
    assert message in str(err.value)


def test_good_values_are_typed(toy):
    spec = runner.parse_parameters(toy[0].notebook)
    assert runner.validate(spec, {"epochs": "3", "lr": "1e-3", "verbose": "yes", "scale": "laptop", "seed": 5.0}) == \
        {"epochs": 3, "lr": 0.001, "verbose": True, "scale": "laptop", "seed": 5}


def test_cli_exit_codes_for_bad_input(toy, capsys):
    assert cli.main(["run", "toy", "-p", "epoch", "3"]) == 2
    assert "Did you mean 'epochs'" in capsys.readouterr().err
    assert cli.main(["run", "toi"]) == 2
    assert "Did you mean 'toy'" in capsys.readouterr().err
    assert cli.main(["run", "--all", "-p", "seed", "1"]) == 2


def test_scale_given_twice_must_agree(toy, capsys):
    with pytest.raises(runner.ParameterError, match="--scale laptop and -p scale quick disagree"):
        runner.prepare("toy", {"scale": "quick"}, scale="laptop")
    assert runner.prepare("toy", {"scale": "laptop"}, scale="laptop")[2] == "laptop"
    assert cli.main(["run", "toy", "--scale", "paper", "-p", "scale", "quick"]) == 2
    assert "disagree" in capsys.readouterr().err


def test_param_file(toy, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("epochs: [1, 2]\n")
    with pytest.raises(runner.ParameterError, match="expects int"):
        runner.run("toy", param_file=f, progress=False)
    f.write_text("- not a mapping\n")
    with pytest.raises(runner.ParameterError, match="mapping"):
        runner.run("toy", param_file=f, progress=False)
    assert not (tmp_path / "outputs").exists()  # refused before a run folder exists


def test_run_records_results_and_latest_then_report(toy):
    _, out = toy
    rec = runner.run("toy", {"epochs": "3"}, scale="laptop", progress=False)
    run_dir = out / "toy" / rec["run_id"]
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["status"] == "ok" and saved["metrics"]["epochs"] == 3 and saved["params"]["epochs"] == 3
    assert saved["scale"] == "laptop" and saved["runtime_s"] > 0 and "torch" in saved["versions"]
    assert (run_dir / "90_toy.html").exists() and saved["html"] == "90_toy.html"
    assert (out / "toy" / "latest").resolve() == run_dir.resolve()
    page = report.build_report(out).read_text()
    assert "toy claim" in page and "v-reproduced" in page and "epochs=3" in page
    assert "1 reproduced of 1 tested, 1 not tested" in page  # the untested claim is not in the denominator
    assert "toy rule: epochs &gt;= 1" in page and "None" not in page and "seed 0" in page


def test_failing_notebook_keeps_partial_copy_and_leaves_latest_on_the_good_run(toy):
    _, out = toy
    good = runner.run("toy", progress=False, html=False)
    with pytest.raises(runner.NotebookFailed, match=r"cell \d+ of the executed notebook .*RuntimeError: boom on purpose") as err:
        runner.run("toy", {"fail": "true"}, progress=False, html=False)
    assert err.value.status == "failed"
    assert (out / "toy" / "latest").resolve().name == good["run_id"]
    failed = {k: v for k, v in _runs(out).items() if v["status"] == "failed"}
    (run_id, saved), = failed.items()
    assert "boom on purpose" in saved["error"] and saved["git_commit"] is not None and saved["runtime_s"] > 0
    assert (out / "toy" / run_id / "90_toy.ipynb").exists()
    page = report.build_report(out).read_text()
    assert f"a later run, <code>{run_id}</code>, did not finish" in page and "last_failed: failed" in page
    assert "toy claim" in page  # the last good run is still shown


def test_interrupted_run_leaves_earlier_runs_intact(toy, monkeypatch, capsys):
    _, out = toy
    good = runner.run("toy", progress=False, html=False)
    import papermill

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt, match="earlier runs untouched"):
        runner.run("toy", progress=False)
    assert (out / "toy" / "latest").resolve().name == good["run_id"]
    assert _record(out, good["run_id"])["status"] == "ok"
    statuses = sorted(r["status"] for r in _runs(out).values())
    assert statuses == ["interrupted", "ok"]
    assert cli.main(["run", "toy"]) == 130
    assert "interrupted by the user (Ctrl-C) during the execution" in capsys.readouterr().err


def test_list_shows_parameters(toy, capsys):
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    assert "toy" in text and "epochs (int>=1, default None): epochs (None: preset)" in text
    assert "lr (float>0<=10, default 0.01)" in text


def test_resolve_checks_types_even_without_the_runner():
    from companion.params import resolve

    presets = {"quick": {"epochs": 1, "lr": 0.1, "models": ["a"], "flag": False}}
    p = resolve(presets, "quick", {"epochs": 3, "lr": 1, "models": None}, show=False)
    assert (p.epochs, p.lr, p.models, p.flag) == (3, 1, ["a"], False)
    with pytest.raises(TypeError, match="parameter 'epochs' expects int"):
        resolve(presets, "quick", {"epochs": "abc"}, show=False)
    with pytest.raises(TypeError, match="parameter 'flag' expects bool"):
        resolve(presets, "quick", {"flag": "maybe"}, show=False)
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        resolve(presets, "huge", {}, show=False)
