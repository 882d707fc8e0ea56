"""How every run ends (issue 9): a killed kernel, Ctrl-C at any point, papermill errors, races on ``latest`` and on
run folders, unwritable outputs, broken pipes, bad ``-f`` files, and plain papermill runs that must refuse what
``companion run`` refuses. Each case ends in one clear line, its exit code and a recorded status."""
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from companion import cli, report, runner
from companion.params import ParameterError, load_param_file

sys.path.insert(0, str(Path(__file__).parent))
from test_runner import BODY, make_toy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


@pytest.fixture
def toy(tmp_path, monkeypatch):
    return make_toy(tmp_path, monkeypatch)


def _runs(out, slug="toy"):
    return {d.name: json.loads((d / "results.json").read_text()) for d in (out / slug).iterdir()
            if d.is_dir() and not d.is_symlink()}


# ---------------------------------------------------------------- the kernel dies

def test_killed_kernel_is_recorded_and_latest_stays_on_the_good_run(toy, capsys):
    _, out = toy
    good = out / "toy" / "20200101-000000-quick"  # an earlier finished run
    good.mkdir(parents=True)
    (good / "results.json").write_text(json.dumps({"status": "ok", "finished": "2020-01-01T00:00:00"}))
    runner._point_latest(out / "toy", good)
    assert cli.main(["run", "toy", "-p", "mode", "kill", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "FAILED (kernel-died): toy kernel died: the kernel died while running cell" in err
    assert "out-of-memory killer" in err and "Traceback" not in err
    died = [(k, v) for k, v in _runs(out).items() if v["status"] == "kernel-died"]
    assert len(died) == 1
    run_id, rec = died[0]
    assert "import companion, os, sys, time" in rec["error"] and rec["runtime_s"] > 0 and rec["git_commit"]
    assert (out / "toy" / run_id / "90_toy.ipynb").exists()  # the partial notebook is kept
    assert (out / "toy" / "latest").resolve().name == good.name
    assert "last_failed: kernel-died" in report.build_report(out).read_text()


# ---------------------------------------------------------------- --all goes on

def test_run_all_goes_on_after_a_failure_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    bad = BODY.replace("if fail:", "if True:")
    _, out = make_toy(tmp_path, monkeypatch, slugs=("toy_bad", "toy_good"), bodies={"toy_bad": bad})
    assert cli.main(["run", "--all", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "FAILED (failed): toy_bad failed" in err and "1 of 2 notebook(s) did not finish: toy_bad" in err
    assert [r["status"] for r in _runs(out, "toy_bad").values()] == ["failed"]
    assert [r["status"] for r in _runs(out, "toy_good").values()] == ["ok"]
    assert not (out / "toy_bad" / "latest").exists() and (out / "toy_good" / "latest").exists()
    page = report.build_report(out).read_text()
    assert "boom on purpose" in page  # a paper with no finished run shows its newest (failed) run


# ---------------------------------------------------------------- papermill errors and Ctrl-C during the export

def test_papermill_error_is_recorded_as_error(toy, monkeypatch, capsys):
    import papermill

    def unserialisable(*a, **k):
        raise TypeError("Object of type date is not JSON serializable")

    monkeypatch.setattr(papermill, "execute_notebook", unserialisable)
    assert cli.main(["run", "toy", "--quiet"]) == 1
    assert "toy could not run: papermill could not run the notebook: TypeError: Object of type date" in capsys.readouterr().err
    assert [r["status"] for r in _runs(toy[1]).values()] == ["error"]


def test_a_date_in_a_list_reaches_the_notebook_as_text(toy, tmp_path):
    spec = [runner.Param("baselines", None, "list", "models")]
    assert runner.validate(spec, {"baselines": "[DIN, 2024-01-01]"}) == {"baselines": ["DIN", "2024-01-01"]}
    f = tmp_path / "p.yaml"
    f.write_text("scale: quick\nseed: 2024-01-01\n")
    assert load_param_file(f)["seed"] == "2024-01-01"
    with pytest.raises(ParameterError, match="parameter 'seed' expects int, got '2024-01-01'"):
        runner.prepare("toy", param_file=f)


def test_ctrl_c_during_the_html_export_keeps_the_record(toy, monkeypatch, capsys):
    _, out = toy

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_export_html", interrupted)
    assert cli.main(["run", "toy", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "toy: interrupted by the user (Ctrl-C) during the HTML export; partial output kept in" in err
    (rec,) = _runs(out).values()
    assert rec["status"] == "interrupted" and "HTML export" in rec["error"]
    assert rec["runtime_s"] > 0 and rec["git_commit"] and rec["metrics"]["epochs"] == 1  # nothing earlier is lost
    assert not (out / "toy" / "latest").exists()


SIGINT_DRIVER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {tests!r})
    import pytest
    from test_runner import make_toy
    from companion import cli
    mp = pytest.MonkeyPatch()
    from pathlib import Path
    make_toy(Path({tmp!r}), mp)
    sys.exit(cli.main(["run", "toy", "-p", "mode", "slow"]))
''')


def test_ctrl_c_in_a_terminal_ends_in_one_line_and_status_interrupted(tmp_path):
    """A real SIGINT to ``companion run`` while a cell runs: exit 130, one message, no ZMQ or asyncio noise."""
    script = tmp_path / "driver.py"
    script.write_text(SIGINT_DRIVER.format(tests=str(Path(__file__).parent), tmp=str(tmp_path)))
    proc = subprocess.Popen([PY, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 90
    while time.time() < deadline:  # wait for the slow cell to start
        logs = list((tmp_path / "outputs" / "toy").glob("*/run.log")) if (tmp_path / "outputs" / "toy").exists() else []
        if logs and "Executing Cell 4" in logs[0].read_text():
            break
        time.sleep(0.3)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "toy: interrupted by the user (Ctrl-C) during the execution" in err
    for noise in ("Traceback", "ZMQError", "never retrieved", "IPKernelApp"):
        assert noise not in err, err
    (rec,) = _runs(tmp_path / "outputs").values()
    assert rec["status"] == "interrupted"


# ---------------------------------------------------------------- races

def _hammer_latest(slug_dir, targets, n, errors):
    try:
        for i in range(n):
            runner._point_latest(Path(slug_dir), Path(slug_dir) / targets[i % len(targets)])
    except Exception as exc:  # reported through the queue, asserted by the parent
        errors.put(repr(exc))


def _claim_dirs(slug_dir, n, found):
    found.put([runner._new_run_dir(Path(slug_dir), "20260101-000000-quick").name for _ in range(n)])


def test_latest_and_run_folders_are_race_free_across_processes(tmp_path):
    slug_dir = tmp_path / "toy"
    for name in ("a", "b", "c"):
        (slug_dir / name).mkdir(parents=True)
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    procs = [ctx.Process(target=_hammer_latest, args=(str(slug_dir), ["a", "b", "c"], 3000, errors)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert errors.empty(), errors.get()
    assert os.readlink(slug_dir / "latest") in ("a", "b", "c")
    assert not list(slug_dir.glob(".latest.*"))  # no temporary link left behind

    found = ctx.Queue()
    procs = [ctx.Process(target=_claim_dirs, args=(str(slug_dir), 150, found)) for _ in range(2)]
    for p in procs:
        p.start()
    names = found.get(timeout=60) + found.get(timeout=60)
    for p in procs:
        p.join(60)
    assert len(names) == 300 and len(set(names)) == 300  # every run got its own folder


# ---------------------------------------------------------------- outputs, pipes and files

def test_unwritable_outputs_give_one_line_and_exit_1(toy, monkeypatch, capsys, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where outputs/ should be")
    monkeypatch.setattr(runner, "OUTPUTS", blocker)
    assert cli.main(["run", "toy"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot create the run folder under") and "\n" not in err

    def read_only(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(runner, "OUTPUTS", tmp_path / "ro")
    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(runner.RunSetupError, match="Permission denied .*make outputs/ writable"):
        runner.run("toy")


def test_list_into_a_closed_pipe_is_quiet():
    proc = subprocess.run(f"{PY} -m companion.cli list | head -1", shell=True, capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.stdout.count("\n") == 1 and proc.stderr == ""


@pytest.mark.parametrize("content, message", [
    (None, "is a folder; give a YAML file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "is not a text file (binary content)"),
    ("epochs: 2\nlr: 0.1\nepochs: 3\n", "key 'epochs' is set twice (lines 1 and 3)"),
    ("epochs:\n", "sets 'epochs' to null"),
    ("epochs: null\n", "sets 'epochs' to null"),
    ("epochs: [1\n", "is not valid YAML"),
])
def test_bad_parameter_files_are_refused_in_one_line(toy, tmp_path, capsys, content, message):
    f = tmp_path / "params.yaml"
    if content is None:
        f.mkdir()
    elif isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    assert cli.main(["run", "toy", "-f", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and err.startswith("error: parameter file")


def test_parameters_are_refused_before_torch_is_imported():
    code = ("import sys; from companion import cli; rc = cli.main(['run', 'ctr_basics', '-p', 'epoch', '3']); "
            "print(rc, 'torch' in sys.modules, 'papermill' in sys.modules)")
    t0 = time.perf_counter()
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.split() == ["2", "False", "False"], proc.stderr
    assert "unknown parameter 'epoch'. Did you mean 'epochs'?" in proc.stderr
    assert time.perf_counter() - t0 < 20  # a refusal costs an interpreter start, not a torch import


# ---------------------------------------------------------------- plain papermill refuses what the runner refuses

def test_papermill_command_line_exits_non_zero_on_an_unknown_name(toy, tmp_path):
    """The README's plain ``papermill nb out -p epoch 2``: the notebook's own params.resolve refuses the name."""
    nb = toy[0].notebook
    proc = subprocess.run([str(Path(PY).parent / "papermill"), str(nb), str(tmp_path / "o.ipynb"), "-p", "epoch", "2",
                           "--no-progress-bar", "--cwd", str(nb.parent)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COMPANION_RUN_DIR": str(tmp_path / "plain")})
    assert proc.returncode != 0
    assert "ParameterError: unknown parameter 'epoch'. Did you mean 'epochs'?" in proc.stderr + proc.stdout
    assert not (tmp_path / "plain" / "results.json").exists()
# ---------------------------------------------------------------- readable outputs

def test_executed_notebook_and_html_have_no_progress_bars_and_log_is_short(toy):
    import nbformat

    _, out = toy
    rec = runner.run("toy", {"mode": "bars"}, progress=False)
    run_dir = out / "toy" / rec["run_id"]
    nb = nbformat.read(run_dir / "90_toy.ipynb", as_version=4)
    stderr = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr")
    assert "inner" not in stderr  # companion.progress bars are off in the kernel (COMPANION_PROGRESS=0)
    html = (run_dir / "90_toy.html").read_text()
    assert "39/40" not in html and "a real warning the reader must see" in html  # "39/40" is only ever output
    log = (run_dir / "run.log").read_text()
    assert "39/40" not in log and "\r" not in log and "a real warning the reader must see" in log
    assert len(log.splitlines()) < 40


def test_progress_bars_follow_companion_progress(monkeypatch, capsys):
    from companion import progress

    monkeypatch.setenv("COMPANION_PROGRESS", "0")
    assert progress.tqdm(range(3)).disable is True
    monkeypatch.setenv("COMPANION_PROGRESS", "1")
    assert progress.tqdm(range(3)).disable is False
