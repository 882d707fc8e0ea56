"""``outputs/index.html``: one row per paper from its latest finished run, with the paper-vs-run claims and figures.

``latest`` points only at a run that finished; when a later run did not (failed, kernel died, interrupted), the
page says so beside the last good one instead of hiding either.
"""
from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from . import papers
from .runner import OUTPUTS, runs

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;width:100%;margin:.5rem 0} th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;
text-align:left;vertical-align:top;font-size:.92rem} th{background:#f5f5f5}
.ok{color:#1a7f37;font-weight:600} .failed,.kernel-died,.error{color:#cf222e;font-weight:600} .missing{color:#888}
.interrupted{color:#9a6700;font-weight:600} .later{color:#9a6700;margin:.2rem 0}
.v-reproduced{background:#dafbe1} .v-not-reproduced{background:#ffebe9} .v-partly{background:#fff8c5}
.v-inconclusive{background:#ddf4ff} .v-not-tested{background:#f6f8fa}
td.rule{color:#555;font-size:.82rem} details{margin:.3rem 0 1rem}
figure.thumb{display:inline-block;margin:4px;vertical-align:top;text-align:center}
figure.thumb img{height:230px;max-width:1150px;border:1px solid #ddd} figure.thumb figcaption{font-size:.85rem;color:#444}
section{border-top:2px solid #eee;padding-top:.6rem;margin-top:1rem} code{background:#f6f8fa;padding:0 .2rem}
"""


def _fmt(v) -> str:
    """A cell's text: numbers to 4 significant digits, nothing for a missing value (never the word None)."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{html.escape(str(k))}={_fmt(x)}" for k, x in v.items())
    return html.escape(str(v))


def _latest(slug: str, outputs: Path) -> tuple[Path | None, dict | None, tuple[Path, dict] | None]:
    """The run ``latest`` points at, and the newest run when it is a later one that did not finish."""
    all_runs = runs(outputs / slug)
    link = outputs / slug / "latest"
    rec = None
    if (link / "results.json").exists():
        try:
            rec = json.loads((link / "results.json").read_text())
        except json.JSONDecodeError:
            rec = {"status": "error", "error": "results.json is not valid JSON"}
    else:  # no finished run yet: show the newest one, whatever its status
        link, rec = all_runs[-1] if all_runs else (None, None)
        return link, rec, None
    newest = all_runs[-1] if all_runs else None
    later = newest if newest and newest[0].resolve() != link.resolve() and newest[1].get("status") != "ok" else None
    return link, rec, later


def tally_text(claims: list[dict]) -> str:
    """``2 reproduced / 1 partly / 3 inconclusive of 6 tested, 2 not tested``: untested claims never count."""
    from .evidence import VERDICTS, tally

    if not claims:
        return ""
    t = tally(c.get("verdict") for c in claims)
    parts = [f"{t[v]} {v}" for v in VERDICTS if v != "not tested" and t[v]]
    text = f"{' / '.join(parts) or 'none'} of {t['tested']} tested" if t["tested"] else "none tested"
    return text + (f", {t['not tested']} not tested" if t["not tested"] else "")


def _claims_table(claims: list[dict]) -> str:
    if not claims:
        return "<p class='missing'>no claims recorded</p>"
    rows = "".join(
        f"<tr class='v-{html.escape(str(c.get('verdict') or '').replace(' ', '-'))}'><td>{_fmt(c.get('claim'))}</td>"
        f"<td>{_fmt(c.get('paper'))}</td><td>{_fmt(c.get('ours'))}</td><td>{_fmt(c.get('verdict'))}</td>"
        f"<td class='rule'>{_fmt(c.get('rule'))}</td><td>{_fmt(c.get('note'))}</td></tr>" for c in claims)
    return ("<table><tr><th>claim</th><th>paper</th><th>this run</th><th>verdict</th><th>rule</th><th>note</th></tr>"
            f"{rows}</table>")


def _seed(rec: dict) -> str:
    """The seed(s) the run used: an override wins, else what the notebook recorded (``seed`` or ``seeds``)."""
    over, params = rec.get("overrides") or {}, rec.get("params") or {}
    for src in (over, params):
        for key in ("seeds", "seed"):
            if src.get(key) is not None:
                return f"{'seeds' if isinstance(src[key], (list, tuple)) else 'seed'} {_fmt(src[key])}"
    return "seed not recorded"


def _figures(slug: str, link: Path | None, rel: str) -> str:
    figs = sorted((link / "figures").glob("*.png")) if link else []
    return "".join(
        f"<figure class='thumb'><a href='{slug}/{rel}/figures/{html.escape(f.name)}'>"
        f"<img src='{slug}/{rel}/figures/{html.escape(f.name)}' alt='{html.escape(f.stem)}'></a>"
        f"<figcaption>{html.escape(f.stem.replace('_', ' '))}</figcaption></figure>" for f in figs)


def build_report(outputs: Path | None = None) -> Path:
    """Write the index page; papers without a notebook or a run are listed as such, never hidden."""
    outputs = Path(outputs or OUTPUTS)
    outputs.mkdir(parents=True, exist_ok=True)
    summary, sections = [], []
    for p in papers.PAPERS:
        link, rec, later = _latest(p.slug, outputs)
        title = f"<a href='{p.url}'>{html.escape(p.title)}</a>" if p.url else html.escape(p.title)
        if rec is None:
            state = "no notebook yet" if not p.built else "not run yet"
            summary.append(f"<tr><td><code>{p.slug}</code></td><td>{title}</td><td class='missing'>{state}</td>"
                           "<td></td><td></td><td></td><td></td></tr>")
            continue
        rel = "latest" if link is not None and link.name == "latest" else html.escape(link.name)
        status = str(rec.get("status") or "unknown")
        head = ", ".join(f"{html.escape(str(k))}={_fmt(v)}" for k, v in (rec.get("headline") or {}).items())
        nb_link = f"<a href='{p.slug}/{rel}/{html.escape(rec['html'])}'>notebook</a>" if rec.get("html") else ""
        runtime = f"{rec.get('runtime_s') or 0:.0f} s"
        claims = rec.get("claims") or []
        later_note = ""
        if later:
            ld, lr = later
            later_note = (f"<p class='later'>a later run, <code>{html.escape(ld.name)}</code>, did not finish "
                          f"(<span class='{html.escape(str(lr.get('status')))}'>{_fmt(lr.get('status'))}</span>): "
                          f"{_fmt(lr.get('error'))}; this page shows the last finished run.</p>")
        status_cell = f"<td class='{html.escape(status)}'>{html.escape(status)}" + (
            f"<br><span class='later'>last_failed: {_fmt(later[1].get('status'))}</span>" if later else "") + "</td>"
        summary.append(f"<tr><td><a href='#{p.slug}'><code>{p.slug}</code></a></td><td>{title}</td>{status_cell}"
                       f"<td>{_fmt(rec.get('scale'))}, {runtime}</td><td>{tally_text(claims)}</td><td>{head}</td>"
                       f"<td>{nb_link}</td></tr>")
        err = f"<p class='failed'>{_fmt(rec.get('error'))}</p>" if rec.get("error") else ""
        meta = (f"run <code>{_fmt(rec.get('run_id'))}</code>, commit <code>{_fmt(rec.get('git_commit'))}</code>, "
                f"device {_fmt(rec.get('device'))}, {_seed(rec)}")
        sections.append(f"<section id='{p.slug}'><h2>{p.number:02d} {html.escape(p.title)}</h2><p class='sub'>{meta}</p>"
                        f"{later_note}{err}<details open><summary>Paper vs. this run ({tally_text(claims) or 'no claims'})"
                        f"</summary>{_claims_table(claims)}</details><div>{_figures(p.slug, link, rel)}</div></section>")
    now = dt.datetime.now().isoformat(timespec="seconds")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Paper companion report</title><style>{CSS}</style></head>"
            f"<body><h1>Paper companion: latest runs</h1><p class='sub'>built {now}</p>"
            "<table><tr><th>slug</th><th>paper</th><th>status</th><th>scale, runtime</th><th>claims</th><th>headline</th><th></th></tr>"
            f"{''.join(summary)}</table>{''.join(sections)}</body></html>")
    path = outputs / "index.html"
    tmp = path.with_name(f".index.{dt.datetime.now().strftime('%H%M%S%f')}.tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path
