"""Every notebook: stored without outputs, in sync with its percent script, and with a parameters cell the runner
and papermill can both read (each knob typed, a scale preset, a seed)."""
import json
from pathlib import Path

import pytest

from companion import papers, runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_every_notebook_is_registered():
    registered = {p.notebook.name for p in papers.PAPERS}
    assert NOTEBOOKS and {nb.name for nb in NOTEBOOKS} <= registered


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(nb):
    cells = json.loads(nb.read_text())["cells"]
    assert not [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_in_sync_with_percent_script(nb):
    """The .ipynb and its jupytext percent pair (notebooks/jupytext.toml) hold the same cells and tags."""
    import jupytext

    src = ROOT / "notebooks" / "src" / f"{nb.stem}.py"
    assert src.exists(), f"{src} is missing"
    built = [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in jupytext.read(src, fmt="py:percent").cells]
    stored = [(c["cell_type"], c["source"] if isinstance(c["source"], str) else "".join(c["source"]),
               c.get("metadata", {}).get("tags", [])) for c in json.loads(nb.read_text())["cells"]]
    assert built == stored, f"{nb.name} differs from {src.name}: run `make sync` (jupytext --sync)"


def test_jupytext_pairing_is_declared():
    import jupytext.config

    cfg = jupytext.config.load_jupytext_configuration_file(str(ROOT / "notebooks" / "jupytext.toml"))
    assert cfg.formats in ("ipynb,src//py:percent", ["ipynb,src//py:percent"])


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_typed_and_papermill_reads_them(nb):
    import papermill

    spec = runner.parse_parameters(nb)
    names = [p.name for p in spec]
    assert "scale" in names and "seed" in names
    assert next(p for p in spec if p.name == "scale").choices == ["quick", "laptop", "paper"]
    untyped = [p.name for p in spec if p.default is None and p.type == "str" and "str" not in p.help[:4]]
    assert not untyped, f"knobs defaulting to None need a TYPE comment: {untyped}"
    seen = list(papermill.inspect_notebook(str(nb)))
    assert seen == names, f"papermill reads {len(seen)} of {len(names)} knobs (a second '=' on a line hides it)"


def _presets(src: Path) -> dict:
    """The notebook's PRESETS table, evaluated from its module-level assignments (no data, no training)."""
    import ast

    ns: dict = {}
    for node in ast.parse(src.read_text()).body:
        if isinstance(node, (ast.Assign, ast.Import, ast.ImportFrom)):  # names the table reads (e.g. a recipe)
            try:
                exec(compile(ast.Module([node], []), str(src), "exec"), ns)
            except Exception:
                pass
        if "PRESETS" in ns:  # stop there: with the imports in place, later assignments would load data and train
            break
    return ns.get("PRESETS", {})


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_presets_cover_every_scale_with_the_declared_types(nb):
    presets = _presets(ROOT / "notebooks" / "src" / f"{nb.stem}.py")
    assert set(presets) == {"quick", "laptop", "paper"}
    spec = {p.name: p for p in runner.parse_parameters(nb)}
    wrong = []
    for scale, row in presets.items():
        for key, value in row.items():
            if key not in spec or value is None:
                continue
            try:
                runner.coerce(spec[key], value)
            except runner.ParameterError as err:
                wrong.append(f"{scale}.{key}: {err}")
            if spec[key].type == "float" and isinstance(value, int):
                wrong.append(f"{scale}.{key}: write {value} as {float(value)} (a float knob)")
    assert not wrong, wrong


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_preset_key_is_a_parameter(nb):
    """A preset value a reader cannot override with -p is a hidden knob."""
    presets = _presets(ROOT / "notebooks" / "src" / f"{nb.stem}.py")
    names = {p.name for p in runner.parse_parameters(nb)}
    hidden = sorted({k for row in presets.values() for k in row} - names)
    assert not hidden, f"preset keys that are not parameters: {hidden}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_scale_branches_or_hand_made_verdicts(nb):
    """Scale-dependent values live in the PRESETS table and verdicts come from companion.evidence."""
    import re

    src = "\n".join(ln for ln in (ROOT / "notebooks" / "src" / f"{nb.stem}.py").read_text().splitlines()
                    if not ln.lstrip().startswith("#"))  # code only: prose may name the verdicts
    assert not re.findall(r"scale\s*[!=]=", src), "a `scale ==` branch: put the value in PRESETS"
    hand = re.findall(r"\"(?:reproduced|partly|not reproduced|inconclusive|not tested)\"", src)
    assert not hand, f"verdict words written in the notebook: {hand} (use companion.evidence)"
