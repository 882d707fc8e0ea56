"""params: the parameters-cell grammar, the checks shared by the runner and the kernel, and how ``resolve`` finds
the parameters cell and papermill's injected cell in IPython's input history (plain papermill runs)."""
import math

import pytest

from companion import params
from companion.params import ParameterError, check, check_namespace, parse_source, resolve

CELL = '''scale = "quick"  # quick|laptop|paper: preset
seed = 0  # int: random seed
n_pairs = 3  # int≥1≤46: planted pairs
lr = 0.01  # float>0: learning rate
dataset = "synthetic"  # synthetic|criteo: data source
data_path = ""  # str: file of the real dataset
device = "cpu"  # str: cpu or cuda
models = None  # list: model names
'''
PRESETS = {"quick": {"models": ["a"]}, "laptop": {"models": ["a", "b"]}, "paper": {"models": ["a", "b", "c"]}}


def _kernel(injected: str = "", **overrides) -> dict:
    """A namespace as a notebook kernel has it after papermill ran the parameters cell and its injected cell."""
    ns = {}
    exec(CELL, ns)
    history = ["", CELL]
    if injected:
        history.append("# Parameters\n" + injected)
        exec(injected, ns)
    ns.update(overrides)
    history.append("P = companion.params.resolve(PRESETS, scale, globals())")
    ns["In"] = history
    return ns


def test_upper_and_lower_bounds_are_both_read():
    spec = {p.name: p for p in parse_source(CELL)}
    assert spec["n_pairs"].bounds == [(">=", 1.0), ("<=", 46.0)]
    assert spec["n_pairs"].describe().startswith("n_pairs (int>=1<=46, default 3)")
    with pytest.raises(ParameterError, match="parameter 'n_pairs' must be <= 46, got 47"):
        check(spec["n_pairs"], 47)


def test_resolve_sees_the_injected_cell_and_refuses_an_unknown_name():
    ns = _kernel("epochs = 2\n")
    with pytest.raises(ParameterError, match="unknown parameter 'epochs'. Valid parameters: scale, seed"):
        resolve(PRESETS, ns["scale"], ns, show=False)
    ns = _kernel("n_pair = 2\n")
    with pytest.raises(ParameterError, match="Did you mean 'n_pairs'"):
        resolve(PRESETS, ns["scale"], ns, show=False)


@pytest.mark.parametrize("injected, message", [
    ('dataset = "avazu"\n', "parameter 'dataset' must be one of ['synthetic', 'criteo'], got 'avazu'"),
    ('scale = "huge"\n', "parameter 'scale' must be one of"),
    ("lr = float('inf')\n", "parameter 'lr' must be a finite number"),
    ("lr = 1e309\n", "parameter 'lr' must be a finite number"),
    ('n_pairs = "abc"\n', "parameter 'n_pairs' expects int, got 'abc'"),
    ("n_pairs = 0\n", "parameter 'n_pairs' must be >= 1, got 0"),
    ('device = ""\n', "parameter 'device' is empty"),
    ("models = [1.5, float('nan')]\n", "parameter 'models' must hold finite numbers only"),
    ("seed = True\n", "parameter 'seed' expects int, got True"),
    ('models = "[a, b]"\n', "expects list, got '[a, b]' (plain papermill: -y 'models: [a, b]')"),
])
def test_resolve_refuses_bad_values_under_plain_papermill(injected, message):
    ns = _kernel(injected)
    with pytest.raises(ParameterError) as err:
        resolve(PRESETS, "quick", ns, show=False)
    assert message in str(err.value)


def test_resolve_accepts_good_injected_values_and_the_empty_default():
    ns = _kernel('dataset = "criteo"\nn_pairs = 46\nlr = 1\nmodels = ["x", "y"]\n')
    p = resolve(PRESETS, "quick", ns, show=False)
    assert p.models == ["x", "y"]
    assert check_namespace(_kernel()) is not None  # data_path = "" is its own default: allowed


def test_without_history_resolve_falls_back_to_the_percent_script(tmp_path):
    script = tmp_path / "00_toy.py"
    script.write_text('# %% [markdown]\n# # toy\n\n# %% tags=["parameters"]\n' + CELL + "\n# %%\nimport companion\n")
    ns = {}
    exec(CELL, ns)
    ns.update(__file__=str(script), dataset="avazu")
    with pytest.raises(ParameterError, match="parameter 'dataset' must be one of"):
        resolve(PRESETS, "quick", ns, show=False)
    assert resolve(PRESETS, "quick", {"scale": "quick"}, show=False).models == ["a"]  # nothing to check against


def test_the_latest_parameters_cell_wins_and_other_cells_are_ignored():
    ns = _kernel()
    ns["In"] = ["", "x = 1  # not a knob line", CELL, 'dataset = "criteo"', "P = ..."]  # a hand edit, not injected
    ns["dataset"] = "criteo"
    check_namespace(ns)
    ns["In"].insert(3, "# Parameters\nbogus = 1\n")
    with pytest.raises(ParameterError, match="unknown parameter 'bogus'"):
        check_namespace(ns)


def test_int_and_float_edges():
    spec = {p.name: p for p in parse_source(CELL)}
    assert params.coerce(spec["seed"], "7") == 7 and params.coerce(spec["seed"], 7.0) == 7
    assert params.coerce(spec["lr"], "1e-3") == 0.001 and math.isfinite(params.coerce(spec["lr"], "1e308"))
    with pytest.raises(ParameterError, match="out of range"):
        params.coerce(spec["seed"], 2**63)
    assert params.coerce(spec["dataset"], "criteo") == "criteo"
    assert params.coerce(spec["models"], "[a, 2024-01-01]") == ["a", "2024-01-01"]
