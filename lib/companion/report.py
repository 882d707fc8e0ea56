"""``outputs/index.html``: one row per paper from its latest run, with the paper-vs-run claims and figures."""
from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from . import papers
from .runner import OUTPUTS

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;width:100%;margin:.5rem 0} th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;
text-align:left;vertical-align:top;font-size:.92rem} th{background:#f5f5f5}
.ok{color:#1a7f37;font-weight:600} .failed{color:#cf222e;font-weight:600} .missing{color:#888}
.interrupted{color:#9a6700;font-weight:600}
.v-reproduced{background:#dafbe1} .v-not-reproduced{background:#ffebe9} .v-partly{background:#fff8c5}
.v-not-tested{background:#f6f8fa} details{margin:.3rem 0 1rem} img.thumb{height:110px;margin:2px;border:1px solid #ddd}
section{border-top:2px solid #eee;padding-top:.6rem;margin-top:1rem} code{background:#f6f8fa;padding:0 .2rem}
"""


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _latest(slug: str, outputs: Path) -> tuple[Path | None, dict | None]:
    link = outputs / slug / "latest"
    res = link / "results.json"
    if not res.exists():
        return None, None
    try:
        return link, json.loads(res.read_text())
    except json.JSONDecodeError:
        return link, {"status": "failed", "error": "results.json is not valid JSON"}


def _claims_table(claims: list[dict]) -> str:
    if not claims:
        return "<p class='missing'>no claims recorded</p>"
    rows = "".join(
        f"<tr class='v-{html.escape(str(c.get('verdict', '')).replace(' ', '-'))}'><td>{_fmt(c.get('claim', ''))}</td>"
        f"<td>{_fmt(c.get('paper', ''))}</td><td>{_fmt(c.get('ours', ''))}</td><td>{_fmt(c.get('verdict', ''))}</td>"
        f"<td>{_fmt(c.get('note', ''))}</td></tr>" for c in claims)
    return f"<table><tr><th>claim</th><th>paper</th><th>this run</th><th>verdict</th><th>note</th></tr>{rows}</table>"


def build_report(outputs: Path | None = None) -> Path:
    """Write the index page; papers without a notebook or a run are listed as such, never hidden."""
    outputs = Path(outputs or OUTPUTS)
    outputs.mkdir(parents=True, exist_ok=True)
    summary, sections = [], []
    for p in papers.PAPERS:
        link, rec = _latest(p.slug, outputs)
        title = f"<a href='{p.url}'>{html.escape(p.title)}</a>" if p.url else html.escape(p.title)
        if rec is None:
            state = "no notebook yet" if not p.built else "not run yet"
            summary.append(f"<tr><td><code>{p.slug}</code></td><td>{title}</td><td class='missing'>{state}</td>"
                           "<td></td><td></td><td></td><td></td></tr>")
            continue
        status = rec.get("status", "?")
        head = ", ".join(f"{k}={_fmt(v)}" for k, v in (rec.get("headline") or {}).items())
        nb_link = f"<a href='{p.slug}/latest/{rec['html']}'>notebook</a>" if rec.get("html") else ""
        runtime = f"{rec.get('runtime_s', 0):.0f} s"
        verdicts = [c.get("verdict") for c in rec.get("claims") or []]
        tally = f"{verdicts.count('reproduced')}/{len(verdicts)} reproduced" if verdicts else ""
        summary.append(f"<tr><td><a href='#{p.slug}'><code>{p.slug}</code></a></td><td>{title}</td>"
                       f"<td class='{status}'>{status}</td><td>{_fmt(rec.get('scale', ''))}, {runtime}</td>"
                       f"<td>{tally}</td><td>{head}</td><td>{nb_link}</td></tr>")
        figs = sorted((link / "figures").glob("*.png")) if link else []
        thumbs = "".join(f"<a href='{p.slug}/latest/figures/{f.name}'><img class='thumb' src='{p.slug}/latest/figures/{f.name}' "
                         f"title='{html.escape(f.stem)}'></a>" for f in figs)
        err = f"<p class='failed'>{html.escape(str(rec.get('error')))}</p>" if rec.get("error") else ""
        meta = (f"run <code>{html.escape(str(rec.get('run_id')))}</code>, commit <code>{html.escape(str(rec.get('git_commit')))}</code>, "
                f"device {html.escape(str(rec.get('device')))}, seed {_fmt((rec.get('overrides') or {}).get('seed', (rec.get('params') or {}).get('seed', 'default')))}")
        sections.append(f"<section id='{p.slug}'><h2>{p.number:02d} {html.escape(p.title)}</h2><p class='sub'>{meta}</p>{err}"
                        f"<details open><summary>Paper vs. this run</summary>{_claims_table(rec.get('claims') or [])}</details>"
                        f"<div>{thumbs}</div></section>")
    now = dt.datetime.now().isoformat(timespec="seconds")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Paper companion report</title><style>{CSS}</style></head>"
            f"<body><h1>Paper companion: latest runs</h1><p class='sub'>built {now}</p>"
            "<table><tr><th>slug</th><th>paper</th><th>status</th><th>scale, runtime</th><th>claims</th><th>headline</th><th></th></tr>"
            f"{''.join(summary)}</table>{''.join(sections)}</body></html>")
    path = outputs / "index.html"
    path.write_text(page)
    return path
