"""Rich tables of the quality summary and of quarantined rows, for `suprel quality` and `suprel quarantine`."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table


def _table(title: str, rows: list[dict], columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape("" if row.get(c) is None else str(row.get(c))) for c in columns))
    return table


def summary_renderables(summary: dict) -> list:
    """The latest run's verdict line, then one table per non-empty section."""
    run = summary.get("run")
    if run is None:
        return [f"No validated run in {escape(summary['warehouse'])} yet: run `suprel ingest`."]
    checks = summary["checks"]
    verdict = "[green]PASSED[/]" if run["passed"] else "[bold red]FAILED[/]: nothing may be scored or published from it"
    shown = [f"Run {escape(run['run_id'])} {verdict}. {run['files_new']} new file(s); checks: "
             f"{checks['passed']} passed, {checks['warned']} warned, {checks['failed']} failed."]
    brief = ("source", "file_path", "expectation", "observed_value")
    sections = [
        ("Critical failures", summary["critical"], brief),
        ("Warnings", summary["warnings"], brief),
        ("Row-level rules that failed", summary["failed_row_checks"], ("source", "expectation", "files", "rows")),
        ("Quarantined by this run", summary["quarantined_this_run"], ("source", "reason", "rows")),
        ("Quarantined, all runs", summary["quarantined_total"], ("source", "reason", "rows")),
        ("Pending a reference", summary["pending"], ("source", "rows", "oldest_first_seen_at", "oldest_updated_at")),
        ("Sources", summary["sources"], ("source", "expectation", "success", "observed_value")),
    ]
    return shown + [_table(title, rows, columns) for title, rows, columns in sections if rows]


def quarantine_table(rows: list[dict]) -> Table:
    """Quarantined rows: where they were, why, and what they said."""
    shown = [r | {"position": f"{r['file_path']}:{r['line_number']}",
                  "content": "; ".join(f"{k}={v}" for k, v in r["content"].items()) or r["raw_record"]}
             for r in rows]
    return _table(f"Quarantined rows ({len(rows)} shown)", shown,
                  ("source", "position", "quarantine_reason", "quarantine_detail", "content"))
