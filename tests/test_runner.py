"""Runner: parameter validation before any cell runs, failure and interrupt handling, the report."""
import json

import nbformat
import pytest

from companion import cli, papers, report, runner

PARAMS = '''scale = "quick"  # quick|laptop|paper: preset
seed = 0  # int: random seed
epochs = None  # int≥1: epochs (None: preset)
lr = 0.01  # float>0: learning rate
verbose = False  # bool: chatty output
fail = False  # bool: raise in the second cell
'''
BODY = '''import companion, json
if fail:
    raise RuntimeError("boom on purpose")
P = companion.params.resolve({"quick": {"epochs": 1}, "laptop": {"epochs": 5}, "paper": {"epochs": 50}}, scale, globals())
companion.results.save("toy", params=vars(P), metrics={"epochs": P.epochs, "lr": lr}, claims=[
    companion.results.claim("toy claim", 1, P.epochs, "reproduced")], headline={"epochs": P.epochs})
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(PARAMS)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# toy"), cell, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    toy_paper = papers.Paper(99, "toy", "Toy paper", "0000.00000")
    monkeypatch.setattr(papers, "NOTEBOOK_DIR", nb_dir)
    monkeypatch.setitem(papers.BY_SLUG, "toy", toy_paper)
    monkeypatch.setattr(papers, "PAPERS", [toy_paper])
    nbformat.write(nb, toy_paper.notebook)
    out = tmp_path / "outputs"
    monkeypatch.setattr(runner, "OUTPUTS", out)
    monkeypatch.setattr(report, "OUTPUTS", out)
    return toy_paper, out


def test_parameters_are_parsed_with_types_bounds_and_help(toy):
    spec = {p.name: p for p in runner.parse_parameters(toy[0].notebook)}
    assert spec["scale"].choices == ["quick", "laptop", "paper"]
    assert (spec["epochs"].type, spec["epochs"].op, spec["epochs"].bound) == ("int", ">=", 1.0)
    assert spec["lr"].help == "learning rate" and spec["verbose"].default is False


@pytest.mark.parametrize("given, message", [
    ({"epoch": "3"}, "unknown parameter 'epoch'. Did you mean 'epochs'?"),
    ({"epochs": "abc"}, "parameter 'epochs' expects int, got 'abc'"),
    ({"verbose": "maybe"}, "parameter 'verbose' expects a bool"),
    ({"epochs": "0"}, "parameter 'epochs' must be >= 1, got '0'"),
    ({"epochs": "-2"}, "must be >= 1"),
    ({"lr": "0"}, "parameter 'lr' must be > 0"),
    ({"scale": "huge"}, "must be one of ['quick', 'laptop', 'paper']"),
    ({"epochs": "2.5"}, "expects int"),
])
def test_bad_parameters_are_refused_before_running(toy, given, message):
    spec = runner.parse_parameters(toy[0].notebook)
    with pytest.raises(runner.ParameterError) as err:
        runner.validate(spec, given)
    assert message in str(err.value)


def test_good_values_are_typed(toy):
    spec = runner.parse_parameters(toy[0].notebook)
    assert runner.validate(spec, {"epochs": "3", "lr": "1e-3", "verbose": "yes", "scale": "laptop"}) == \
        {"epochs": 3, "lr": 0.001, "verbose": True, "scale": "laptop"}


def test_cli_exit_codes_for_bad_input(toy, capsys):
    assert cli.main(["run", "toy", "-p", "epoch", "3"]) == 2
    assert "Did you mean 'epochs'" in capsys.readouterr().err
    assert cli.main(["run", "toi"]) == 2
    assert "Did you mean 'toy'" in capsys.readouterr().err
    assert cli.main(["run", "--all", "-p", "seed", "1"]) == 2


def test_param_file(toy, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("epochs: [1, 2]\n")
    with pytest.raises(runner.ParameterError, match="expects int"):
        runner.run("toy", param_file=f, progress=False)
    f.write_text("- not a mapping\n")
    with pytest.raises(runner.ParameterError, match="mapping"):
        runner.run("toy", param_file=f, progress=False)


def test_run_records_results_and_latest_then_report(toy):
    _, out = toy
    rec = runner.run("toy", {"epochs": "3"}, scale="laptop", progress=False)
    run_dir = out / "toy" / rec["run_id"]
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["status"] == "ok" and saved["metrics"]["epochs"] == 3 and saved["params"]["epochs"] == 3
    assert saved["scale"] == "laptop" and saved["runtime_s"] > 0 and "torch" in saved["versions"]
    assert (run_dir / "00_toy.html").exists() is False and (run_dir / "99_toy.html").exists()
    assert (out / "toy" / "latest").resolve() == run_dir.resolve()
    page = report.build_report(out).read_text()
    assert "toy claim" in page and "reproduced" in page and "epochs=3" in page


def test_failing_notebook_keeps_partial_copy_and_says_which_cell(toy):
    _, out = toy
    good = runner.run("toy", progress=False)
    with pytest.raises(runner.NotebookFailed, match=r"cell \d+ of the executed notebook .*RuntimeError: boom on purpose"):
        runner.run("toy", {"fail": "true"}, progress=False)
    latest = (out / "toy" / "latest").resolve()
    assert latest.name != good["run_id"]
    saved = json.loads((latest / "results.json").read_text())
    assert saved["status"] == "failed" and "boom on purpose" in saved["error"]
    assert (latest / "99_toy.ipynb").exists()
    assert "failed" in report.build_report(out).read_text()


def test_interrupted_run_leaves_earlier_runs_intact(toy, monkeypatch):
    _, out = toy
    good = runner.run("toy", progress=False)
    import papermill

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt, match="earlier runs untouched"):
        runner.run("toy", progress=False)
    assert (out / "toy" / "latest").resolve().name == good["run_id"]
    assert json.loads((out / "toy" / good["run_id"] / "results.json").read_text())["status"] == "ok"
    runs = [d for d in (out / "toy").iterdir() if d.is_dir() and d.name != "latest"]
    interrupted_dirs = [d for d in runs if json.loads((d / "results.json").read_text())["status"] == "interrupted"]
    assert len(interrupted_dirs) == 1


def test_list_shows_parameters(toy, capsys):
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    assert "toy" in text and "epochs (int>=1, default None): epochs (None: preset)" in text


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
