"""A notebook's knobs: the typed parameters cell, its validation, and the scale presets.

Every knob is declared once, in the cell tagged ``parameters``, as ``name = default  # TYPE: help``. TYPE is
``int``/``float``/``bool``/``str``/``list``/``dict`` or a choice list ``a|b|c``, optionally followed by bounds
(``int≥1``, ``float>0≤10``, ``int≥1≤46``). ``≥``/``≤`` are written instead of ``>=``/``<=`` because papermill's own
inspection skips a line with two ``=``.

The same rules run in two places, so a typo is refused wherever a notebook is started:

* ``companion run`` validates the command line before anything heavy is imported (``validate``);
* ``resolve`` validates again inside the kernel: it finds the parameters cell and papermill's injected
  ``# Parameters`` cell in IPython's input history, so a plain ``papermill nb.ipynb out.ipynb -p epoch 2`` fails
  with the same message instead of a warning and a silently lost override.

A knob left at ``None`` takes the preset value for the chosen scale, so ``-p scale laptop -p epochs 3`` means
"the laptop preset, but 3 epochs".
"""
from __future__ import annotations

import ast
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

SCALES = ("quick", "laptop", "paper")
_BOUND = r"(?:>=|<=|≥|≤|>|<)\s*-?[\d.]+(?:[eE][+-]?\d+)?"
_TYPE_RE = re.compile(r"^\s*(?P<type>int|float|bool|str|list|dict|[\w.+-]+(?:\|[\w.+-]+)+)\s*"
                      rf"(?P<bounds>(?:{_BOUND}\s*)*)\s*:\s*(?P<help>.*)$")
_BOUND_RE = re.compile(r"(>=|<=|≥|≤|>|<)\s*(-?[\d.]+(?:[eE][+-]?\d+)?)")
_OPS = {"≥": ">=", "≤": "<="}
_CMP = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
INT_LIMIT = 2**63 - 1  # torch and NumPy seeds, sizes and counts all live in 64 bits
INJECTED_MARK = "# Parameters"  # the first line of the cell papermill injects after the parameters cell


class ParameterError(ValueError, TypeError):
    """A parameter is unknown, mistyped or out of range (``companion run`` exits with code 2).

    A ``TypeError`` too, so code that caught the type check of earlier versions still catches it."""


@dataclass
class Param:
    name: str
    default: Any
    type: str  # int | float | bool | str | list | dict | choices "a|b|c"
    help: str
    bounds: list = field(default_factory=list)  # [(op, value)], op in >=, >, <=, <

    @property
    def choices(self) -> list[str] | None:
        return self.type.split("|") if "|" in self.type else None

    @property
    def op(self) -> str | None:
        return self.bounds[0][0] if self.bounds else None

    @property
    def bound(self) -> float | None:
        return self.bounds[0][1] if self.bounds else None

    def describe(self) -> str:
        bounds = "".join(f"{op}{b:g}" for op, b in self.bounds)
        return f"{self.name} ({self.type}{bounds}, default {self.default!r}): {self.help}"


# ---------------------------------------------------------------- reading the parameters cell

def parse_source(src: str) -> list[Param]:
    """Read ``name = literal  # TYPE: help`` lines (an untyped line takes its default's type)."""
    lines = src.splitlines()
    out = []
    for node in ast.parse(src).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        default = ast.literal_eval(node.value)
        line = lines[node.lineno - 1]
        tail = line[node.value.end_col_offset:]
        comment = tail.split("#", 1)[1].strip() if "#" in tail else ""
        m = _TYPE_RE.match(comment)
        if m:
            typ, hlp = m.group("type"), m.group("help").strip()
            bounds = [(_OPS.get(op, op), float(b)) for op, b in _BOUND_RE.findall(m.group("bounds"))]
        else:
            typ = type(default).__name__ if default is not None else "str"
            hlp, bounds = comment, []
        out.append(Param(name, default, typ, hlp, bounds))
    return out


def _is_parameters_source(src: str) -> bool:
    """Literal assignments only, at least one with a TYPE comment: how the parameters cell is recognised in a
    kernel's input history."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return False
    if not tree.body or not all(isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                                for n in tree.body):
        return False
    lines, typed = src.splitlines(), 0
    for node in tree.body:
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return False  # a computed value: a settings cell, not the parameters cell
        tail = lines[node.lineno - 1][node.value.end_col_offset:]
        typed += "#" in tail and bool(_TYPE_RE.match(tail.split("#", 1)[1].strip()))
    return typed > 0


def parameters_cell(nb_path: Path) -> str:
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    raise ParameterError(f"{Path(nb_path).name} has no cell tagged 'parameters'")


def parse_parameters(nb_path: Path) -> list[Param]:
    """The knobs of a stored notebook (``.ipynb``), from its cell tagged ``parameters``."""
    return parse_source(parameters_cell(nb_path))


def _percent_script_parameters(path: Path) -> str | None:
    """The parameters cell of a jupytext percent script (``notebooks/src/NN_slug.py`` run as a plain script)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    m = re.search(r"^# %%[^\n]*tags=\[[^\]]*[\"']parameters[\"'][^\]]*\][^\n]*\n(.*?)(?=^# %%|\Z)", text, re.S | re.M)
    return m.group(1) if m else None


# ---------------------------------------------------------------- checking values

def _finite_plain(p: Param, v, raw) -> None:
    """Lists and dicts reach the kernel as JSON-like literals: plain types and finite numbers only."""
    if isinstance(v, float) and not math.isfinite(v):
        raise ParameterError(f"parameter {p.name!r} must hold finite numbers only, got {raw!r}")
    if isinstance(v, (list, tuple)):
        for x in v:
            _finite_plain(p, x, raw)
    elif isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                raise ParameterError(f"parameter {p.name!r}: dict keys must be strings, got {k!r} in {raw!r}")
            _finite_plain(p, x, raw)
    elif not (v is None or isinstance(v, (str, int, float, bool))):
        raise ParameterError(f"parameter {p.name!r} holds {v!r} ({type(v).__name__}), which cannot be passed to a "
                             f"notebook; write it as a string, a number, a bool, a list or a mapping")


def check(p: Param, v: Any, raw: Any = None) -> Any:
    """Refuse a value of the wrong type, outside its bounds or choices, non-finite or empty; return it as typed.

    ``v`` is already a Python value (from the kernel's namespace or from ``coerce``); no string is parsed here."""
    __tracebackhide__ = True  # IPython shows the notebook line and the message, not these frames
    raw = v if raw is None else raw
    if v is None:
        if p.default is None:
            return None
        raise ParameterError(f"parameter {p.name!r} cannot be None (its default is {p.default!r})")
    if p.choices:
        if not isinstance(v, str) or v not in p.choices:
            raise ParameterError(f"parameter {p.name!r} must be one of {p.choices}, got {raw!r}")
        return v
    if p.type == "bool":
        if not isinstance(v, bool):
            hint = f" (plain papermill: -p {p.name} True)" if isinstance(v, str) else ""
            raise ParameterError(f"parameter {p.name!r} expects a bool (true/false), got {raw!r}{hint}")
        return v
    if p.type == "int":
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ParameterError(f"parameter {p.name!r} expects int, got {raw!r}")
        if abs(v) > INT_LIMIT:
            raise ParameterError(f"parameter {p.name!r} is out of range (at most 2^63 - 1 in size), got {raw!r}")
    elif p.type == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParameterError(f"parameter {p.name!r} expects float, got {raw!r}")
        v = float(v)
        if not math.isfinite(v):
            raise ParameterError(f"parameter {p.name!r} must be a finite number, got {raw!r}")
    elif p.type in ("list", "dict"):
        if not isinstance(v, list if p.type == "list" else dict):
            hint = f" (plain papermill: -y '{p.name}: [a, b]')" if isinstance(v, str) else ""
            raise ParameterError(f"parameter {p.name!r} expects {p.type}, got {raw!r}{hint}")
        _finite_plain(p, v, raw)
    else:
        if not isinstance(v, str):
            raise ParameterError(f"parameter {p.name!r} expects str, got {raw!r}")
        if not v.strip() and p.default != "":
            raise ParameterError(f"parameter {p.name!r} is empty; give a value (its default is {p.default!r})")
    for op, bound in p.bounds:
        if not _CMP[op](v, bound):
            raise ParameterError(f"parameter {p.name!r} must be {op} {bound:g}, got {raw!r}")
    return v


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def coerce(p: Param, value: Any) -> Any:
    """Turn a command-line string (or a YAML value) into the parameter's type, then ``check`` it."""
    raw = value
    if isinstance(value, str) and value.strip().lower() in ("none", "null") and p.default is None:
        return None
    if (p.type == "str" or p.choices) and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # a YAML file's `space_size: 1` or `data_path: 2024` means the text
    if isinstance(value, str) and not p.choices:
        s = value.strip()
        try:
            if p.type == "bool":
                low = s.lower()
                if low not in _TRUE | _FALSE:
                    raise ParameterError(f"parameter {p.name!r} expects a bool (true/false), got {raw!r}")
                value = low in _TRUE
            elif p.type == "int":
                value = int(s)
            elif p.type == "float":
                value = float(s)
            elif p.type in ("list", "dict"):
                value = yaml.load(s, Loader=_Loader)
        except ParameterError:
            raise
        except (ValueError, yaml.YAMLError):
            raise ParameterError(f"parameter {p.name!r} expects {p.type}, got {raw!r}") from None
    return check(p, value, raw)


def _unknown(name: str, known) -> ParameterError:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ParameterError(f"unknown parameter {name!r}.{hint} Valid parameters: {', '.join(known)}")


def validate(spec: list[Param], given: dict) -> dict:
    """Check every given name and value against the notebook's parameters; return typed values."""
    by_name = {p.name: p for p in spec}
    out = {}
    for name, value in given.items():
        if name not in by_name:
            raise _unknown(name, list(by_name))
        out[name] = coerce(by_name[name], value)
    return out


# ---------------------------------------------------------------- YAML parameter files

class _Loader(yaml.SafeLoader):
    """Safe YAML without timestamps (``2024-01-01`` stays a string: a date cannot reach a kernel) and without
    silently repeated keys."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in rs if tag != "tag:yaml.org,2002:timestamp"]
    for ch, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _mapping_without_duplicates(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is set twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        except TypeError:  # an unhashable key: the base constructor says so
            pass
    return yaml.SafeLoader.construct_mapping(loader, node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_param_file(path) -> dict:
    """A ``-f`` file: a YAML mapping of knob names to values; refused, in one line, when it is anything else."""
    path = Path(path)
    if not path.exists():
        raise ParameterError(f"parameter file {path} does not exist")
    if path.is_dir():
        raise ParameterError(f"parameter file {path} is a folder; give a YAML file of name: value lines")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ParameterError(f"parameter file {path} cannot be read: {err.strerror or err}") from None
    try:
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterError(f"parameter file {path} is not a text file (binary content); "
                             "give a YAML file of name: value lines") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        if "set twice" in str(getattr(err, "problem", "")):
            raise ParameterError(f"parameter file {path}: {err.problem}; keep one") from None
        detail = " ".join(str(err).split())
        raise ParameterError(f"parameter file {path} is not valid YAML: {detail}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"parameter file {path} must hold a mapping of name: value, got {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str):
            raise ParameterError(f"parameter file {path}: parameter names must be strings, got {key!r}")
        if value is None:
            raise ParameterError(f"parameter file {path} sets {key!r} to null (an empty value); write a value, "
                                 "or remove the line to keep the default or the scale preset")
    return data


# ---------------------------------------------------------------- inside the kernel: presets and the last check

def _history_cells(namespace: dict) -> tuple[str | None, list[str]]:
    """The latest parameters cell in the kernel's input history and the ``# Parameters`` cells papermill injected
    after it; ``(None, [])`` outside IPython."""
    history = namespace.get("In") or namespace.get("_ih")
    if not isinstance(history, list):
        return None, []
    spec_at = None
    for i in range(len(history) - 1, -1, -1):
        src = history[i]
        if isinstance(src, str) and not src.lstrip().startswith(INJECTED_MARK) and _is_parameters_source(src):
            spec_at = i
            break
    if spec_at is None:
        return None, []
    injected = [s for s in history[spec_at + 1:] if isinstance(s, str) and s.lstrip().startswith(INJECTED_MARK)]
    return history[spec_at], injected


def _assigned_names(src: str) -> list[str]:
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    return [t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)]


def _spec_for(namespace: dict) -> tuple[list[Param] | None, list[str]]:
    src, injected = _history_cells(namespace)
    if src is None:
        script = namespace.get("__file__") or namespace.get("__vsc_ipynb_file__")
        if isinstance(script, str) and script.endswith(".py"):
            src = _percent_script_parameters(Path(script))
        elif isinstance(script, str) and script.endswith(".ipynb"):
            try:
                src = parameters_cell(Path(script))
            except (OSError, ParameterError, ValueError):
                src = None
    if src is None:
        return None, []
    try:
        spec = parse_source(src)
    except (SyntaxError, ValueError):
        return None, []
    return spec, [name for cell in injected for name in _assigned_names(cell)]


def check_namespace(namespace: dict) -> list[Param] | None:
    """Refuse unknown injected names and invalid knob values in a running notebook; returns the spec it used."""
    __tracebackhide__ = True  # IPython shows the notebook line and the message, not these frames
    spec, injected = _spec_for(namespace)
    if spec is None:
        return None
    known = [p.name for p in spec]
    for name in injected:
        if name not in known:
            raise _unknown(name, known)
    for p in spec:
        if p.name in namespace:
            check(p, namespace[p.name])
    return spec


def resolve(presets: dict[str, dict], scale: str, namespace: dict, show: bool = True) -> SimpleNamespace:
    """Merge the preset row for ``scale`` with the knobs the caller set (non-None names in ``namespace``).

    Before merging, every knob in ``namespace`` is checked against the parameters cell (types, bounds, choices,
    finite numbers), and a name papermill injected that the cell does not declare is refused."""
    __tracebackhide__ = True  # IPython shows the notebook line and the message, not these frames
    check_namespace(namespace)
    if scale not in presets:
        raise ParameterError(f"unknown scale {scale!r}; this notebook has presets for {sorted(presets)}")
    row = presets[scale]
    resolved, origin = {}, {}
    for key, default in row.items():
        given = namespace.get(key)
        if given is not None:
            _check_type(key, given, default)
        resolved[key], origin[key] = (default, scale) if given is None else (given, "set")
    if show:
        width = max(map(len, resolved), default=4)
        print(f"{'knob':<{width}}  {'value':<20} from")
        for key, val in resolved.items():
            print(f"{key:<{width}}  {str(val):<20} {origin[key]}")
    return SimpleNamespace(**resolved)


def _check_type(key: str, given, preset) -> None:
    """A knob set by hand must have its preset's type (the check that holds even for a knob the parameters cell
    types loosely)."""
    __tracebackhide__ = True  # IPython shows the notebook line and the message, not these frames
    if preset is None:
        return
    if isinstance(preset, bool):
        ok, want = isinstance(given, bool), "bool"
    elif isinstance(preset, int):
        ok, want = isinstance(given, int) and not isinstance(given, bool), "int"
    elif isinstance(preset, float):
        ok, want = isinstance(given, (int, float)) and not isinstance(given, bool), "float"
    elif isinstance(preset, (list, tuple)):
        ok, want = isinstance(given, (list, tuple)), "list"
    elif isinstance(preset, str):
        ok, want = isinstance(given, str), "str"
    else:
        return
    if not ok:
        raise ParameterError(f"parameter {key!r} expects {want} (like its preset {preset!r}), got {given!r}")
