"""What the quality gate found, for the flow and for people: run verdicts, summaries, quarantined rows.

`run_passed(con, run_id)` is what a flow asks before scoring or publishing. The summary
(`suprel quality`) covers the latest run: its checks passed, warned and failed, rows it
quarantined by source and reason, what waits in pending, and each source's freshness.
"""

from __future__ import annotations

import json

import duckdb

from pipelines.contract import SOURCES
from pipelines.settings import DataPaths
from pipelines.warehouse import connect, quote, table_exists

RUN_FIELDS = ("run_id", "started_at", "finished_at", "batch_clock", "files_new", "passed",
              "critical_failures", "warnings")


def run_passed(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """True when the run was validated and had no critical failure; a run never validated did not pass."""
    row = con.execute("SELECT passed FROM meta.validation_runs WHERE run_id = ?", [run_id]).fetchone()
    return bool(row and row[0])


def latest_run(con: duckdb.DuckDBPyConnection) -> dict | None:
    row = con.execute(f"SELECT {', '.join(RUN_FIELDS)} FROM meta.validation_runs "
                      f"ORDER BY finished_at DESC LIMIT 1").fetchone()
    return dict(zip(RUN_FIELDS, row)) if row else None


def quality_summary(paths: DataPaths) -> dict:
    """The latest run's verdict and checks, quarantine by source and reason, pending, freshness."""
    con = connect(paths, read_only=True)
    try:
        run = latest_run(con) if _has_quality_tables(con) else None
        summary = {"warehouse": str(paths.warehouse), "run": run}
        if run is None:
            return summary
        return summary | _run_checks(con, run["run_id"]) | {
            "quarantined_this_run": _quarantine_counts(con, run["run_id"]),
            "quarantined_total": _quarantine_counts(con, None),
            "pending": _pending(con),
        }
    finally:
        con.close()


def _has_quality_tables(con) -> bool:
    return table_exists(con, "meta", "validation_runs")


def _run_checks(con, run_id: str) -> dict:
    rows = con.execute("SELECT source, load_id, file_path, expectation, severity, success, unexpected_count, "
                       "observed_value, details FROM meta.validation_results WHERE run_id = ? "
                       "ORDER BY source, file_path, expectation", [run_id]).fetchall()
    keys = ("source", "load_id", "file_path", "expectation", "severity", "success", "unexpected_count",
            "observed_value", "details")
    results = [dict(zip(keys, r)) for r in rows]
    failing = [r for r in results if not r["success"]]
    return {
        "checks": {"passed": len(results) - len(failing),
                   "warned": sum(r["severity"] == "warning" for r in failing),
                   "failed": sum(r["severity"] != "warning" for r in failing)},
        "critical": [_brief(r) for r in failing if r["severity"] == "critical"],
        "warnings": [_brief(r) for r in failing if r["severity"] == "warning"],
        "failed_row_checks": _row_failures(failing),
        "sources": [_brief(r) | {"details": json.loads(r["details"] or "{}")} for r in results
                    if r["load_id"] is None and r["expectation"] in ("source_is_fresh", "source_has_data")],
    }


def _brief(result: dict) -> dict:
    return {k: result[k] for k in ("source", "file_path", "expectation", "success", "observed_value")}


def _row_failures(failing: list[dict]) -> list[dict]:
    """Row-level rules that failed, by source and rule: files and rows concerned."""
    grouped: dict[tuple, dict] = {}
    for r in failing:
        if r["severity"] == "row":
            entry = grouped.setdefault((r["source"], r["expectation"]), {
                "source": r["source"], "expectation": r["expectation"], "files": 0, "rows": 0})
            entry["files"] += 1
            entry["rows"] += r["unexpected_count"] or 0
    return list(grouped.values())


def _quarantine_counts(con, run_id: str | None) -> list[dict]:
    where = "" if run_id is None else " WHERE quarantine_run_id = $run"
    union = " UNION ALL ".join(f"SELECT '{name}' AS source, quarantine_reason AS reason, count(*) AS rows "
                               f"FROM quarantine.{name}{where} GROUP BY ALL" for name in SOURCES)
    rows = con.execute(f"SELECT * FROM ({union}) ORDER BY source, rows DESC, reason",
                       {} if run_id is None else {"run": run_id}).fetchall()
    return [{"source": s, "reason": reason, "rows": n} for s, reason, n in rows]


def _pending(con) -> list[dict]:
    union = " UNION ALL ".join(f"SELECT '{name}', count(*), min(first_seen_at), min(updated_at) FROM pending.{name}"
                               for name in SOURCES)
    return [{"source": s, "rows": n, "oldest_first_seen_at": seen, "oldest_updated_at": updated}
            for s, n, seen, updated in con.execute(union).fetchall() if n]


QUARANTINE_FIELDS = ("source", "file_path", "line_number", "quarantine_reason", "quarantine_column",
                     "quarantine_detail", "quarantined_at", "quarantine_run_id", "load_id", "extra_columns", "raw_record")


def quarantined_rows(paths: DataPaths, source: str | None = None, reason: str | None = None,
                     limit: int = 50) -> list[dict]:
    """Quarantined rows, newest first, with their original content (the text as landed) and file:line."""
    if source is not None and source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; the sources are {', '.join(SOURCES)}")
    con = connect(paths, read_only=True)
    try:
        found = []
        for name in [source] if source else list(SOURCES):
            found += _quarantined_of(con, name, reason, limit)
        found.sort(key=lambda r: (r["quarantined_at"], r["source"], r["file_path"], r["line_number"]), reverse=True)
        return found[:limit]
    finally:
        con.close()


def _quarantined_of(con, name: str, reason: str | None, limit: int) -> list[dict]:
    columns = SOURCES[name].column_names
    selected = ", ".join(quote(c) for c in (*QUARANTINE_FIELDS[1:], *columns))
    where = "WHERE quarantine_reason = $reason" if reason else ""
    rows = con.execute(f"SELECT {selected} FROM quarantine.{name} {where} ORDER BY quarantined_at DESC, "
                       f"file_path, line_number LIMIT {int(limit)}", {"reason": reason} if reason else {}).fetchall()
    found = []
    for row in rows:
        meta = dict(zip(QUARANTINE_FIELDS[1:], row[: len(QUARANTINE_FIELDS) - 1]))
        content = {c: v for c, v in zip(columns, row[len(QUARANTINE_FIELDS) - 1:]) if v is not None}
        found.append({"source": name, **meta, "content": content})
    return found
