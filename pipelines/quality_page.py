"""The data-quality page: one self-contained HTML file, <data-dir>/artifacts/quality.html.

Written by `suprel quality --html` from the summary and the latest quarantined rows
(quality.py). Not under published/: that folder is the rankings contract, for search and
analysts; this page is for whoever runs the pipeline. Every value comes from upstream
files (names, paths, raw records), so every value is escaped: a supplier called
`<script>` shows as text. No script, no external resource.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from pipelines.settings import DataPaths

STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.passed{color:#1a7f37}.failed{color:#c00}pre{margin:0;white-space:pre-wrap;max-width:60em}"""


def _cell(value) -> str:
    if isinstance(value, dict):
        value = "\n".join(f"{k} = {v}" for k, v in value.items())
    return f"<td><pre>{html.escape('' if value is None else str(value))}</pre></td>"


def _table(title: str, rows: list[dict], columns: tuple[str, ...]) -> str:
    if not rows:
        return f"<h2>{html.escape(title)}</h2><p>None.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    return f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def render(summary: dict, quarantined: list[dict]) -> str:
    """The page's HTML."""
    run = summary.get("run")
    if run is None:
        verdict = "<p>No validated run yet: run <code>suprel ingest</code>.</p>"
        sections = []
    else:
        word = "passed" if run["passed"] else "failed"
        checks = summary["checks"]
        verdict = (f"<p class='{word}'><b>Run {html.escape(run['run_id'])} {word.upper()}</b></p>"
                   f"<p>Batch clock {html.escape(str(run['batch_clock']))}; {run['files_new']} new file(s); "
                   f"checks: {checks['passed']} passed, {checks['warned']} warned, {checks['failed']} failed.</p>")
        brief = ("source", "file_path", "expectation", "observed_value")
        sections = [
            _table("Critical failures (nothing may be scored or published from this run)", summary["critical"], brief),
            _table("Warnings", summary["warnings"], brief),
            _table("Row-level rules that failed", summary["failed_row_checks"], ("source", "expectation", "files", "rows")),
            _table("Rows quarantined by this run", summary["quarantined_this_run"], ("source", "reason", "rows")),
            _table("Rows quarantined, all runs", summary["quarantined_total"], ("source", "reason", "rows")),
            _table("Rows pending a reference", summary["pending"],
                   ("source", "rows", "oldest_first_seen_at", "oldest_updated_at")),
            _table("Sources", summary["sources"], ("source", "expectation", "success", "observed_value")),
        ]
    rows = [r | {"position": f"{r['file_path']}:{r['line_number']}"} for r in quarantined]
    sections.append(_table(f"Latest quarantined rows ({len(rows)})", rows, (
        "source", "position", "quarantine_reason", "quarantine_detail", "content", "extra_columns", "raw_record")))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Data quality</title>"
            f"<style>{STYLE}</style></head><body><h1>Data quality</h1>"
            f"<p>Warehouse {html.escape(summary['warehouse'])}</p>{verdict}{''.join(sections)}</body></html>")


def write_page(paths: DataPaths, summary: dict, quarantined: list[dict]) -> Path:
    """Write the page aside, then rename it into place, so a reader never sees half a page."""
    target = paths.artifacts / "quality.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    aside = target.with_suffix(".html.tmp")
    aside.write_text(render(summary, quarantined), encoding="utf-8")
    os.replace(aside, target)
    return target
