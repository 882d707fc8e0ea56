"""Each notebook's quick-scale headline numbers, pinned: seeded CPU runs are deterministic, so a change that moves
a number fails here loudly (the way Microsoft Recommenders asserts its notebooks' metrics).

A pin lives in ``tests/pins/<slug>.json``. After an intended change, rewrite it with
``PIN_UPDATE=1 .venv/bin/python -m pytest tests/test_headline_pins.py -k <slug>`` and say why in the commit.
"""
import json
import math
import os
from pathlib import Path

import pytest

from companion import papers, runner

PINS = Path(__file__).parent / "pins"
RTOL, ATOL = 1e-3, 1e-4  # same machine type and seeds give the same numbers; this only absorbs float printing


def _pinned():
    return sorted(p.stem for p in PINS.glob("*.json"))


def _headline(slug: str, pin: dict, tmp_path) -> dict:
    """The quick run's headline: read from the runs nbval just made when ``PIN_SOURCE`` names them (``make test``:
    each notebook then runs once, not twice), else from a fresh run through the runner."""
    source = os.environ.get("PIN_SOURCE")
    if source and not pin.get("params"):
        path = Path(source) / slug / "results.json"
        assert path.exists(), f"PIN_SOURCE={source} has no results.json for {slug}: did its notebook run under nbval?"
        return json.loads(path.read_text())["headline"]
    rec = runner.run(slug, params=pin.get("params", {}), scale="quick", outputs=tmp_path, progress=False, html=False)
    return rec["headline"]


@pytest.mark.parametrize("slug", _pinned())
def test_quick_headline_matches_its_pin(slug, tmp_path):
    pin = json.loads((PINS / f"{slug}.json").read_text())
    got = _headline(slug, pin, tmp_path)
    if os.environ.get("PIN_UPDATE"):
        (PINS / f"{slug}.json").write_text(json.dumps({**pin, "headline": got}, indent=2) + "\n")
        pytest.skip(f"rewrote pin for {slug}")
    assert set(got) == set(pin["headline"]), f"headline keys changed: {sorted(got)} vs {sorted(pin['headline'])}"
    rtol, atol = pin.get("rtol", RTOL), pin.get("atol", ATOL)
    moved = {k: (pin["headline"][k], v) for k, v in got.items()
             if not (isinstance(v, (int, float)) and math.isclose(v, pin["headline"][k], rel_tol=rtol, abs_tol=atol))
             and v != pin["headline"][k]}
    assert not moved, f"{slug} quick headline moved (pinned, now): {moved}"


def test_every_built_notebook_has_a_pin():
    built = {p.slug for p in papers.PAPERS if p.built}
    assert built and built <= set(_pinned()), f"notebooks without a headline pin: {sorted(built - set(_pinned()))}"
