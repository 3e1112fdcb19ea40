"""Validation results and runs, as rows of meta.validation_results and meta.validation_runs.

A result is one check of one file (load_id) or of one source (load_id NULL) in one run.
Severity says what a failure did: `row` (failing rows quarantined), `critical` (the run
fails: nothing is scored or published from it), `warning` (recorded and shown).
"""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pyarrow as pa

from pipelines.expectations import CRITICAL, WARNING

RESULT_COLUMNS = ("run_id", "source", "load_id", "file_path", "expectation", "severity", "success",
                  "unexpected_count", "element_count", "observed_value", "details", "validated_at")

RESULT_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("source", pa.string()), ("load_id", pa.string()), ("file_path", pa.string()),
    ("expectation", pa.string()), ("severity", pa.string()), ("success", pa.bool_()),
    ("unexpected_count", pa.int64()), ("element_count", pa.int64()), ("observed_value", pa.string()),
    ("details", pa.string()), ("validated_at", pa.timestamp("us")),
])


def result(source: str, load_id: str | None, path: str | None, expectation: str, severity: str,
           unexpected: int, elements: int, details: dict, observed: str | None = None) -> dict:
    """One result; run_id and the time are added when it is written."""
    if observed is None and elements:
        observed = f"{unexpected} of {elements} rows ({unexpected / elements:.2%})"
    return {"source": source, "load_id": load_id, "file_path": path, "expectation": expectation,
            "severity": severity, "success": unexpected == 0, "unexpected_count": unexpected,
            "element_count": elements, "observed_value": observed, "details": json.dumps(details, default=str)}


def failed(results: list[dict], severity: str) -> list[dict]:
    return [r for r in results if r["severity"] == severity and not r["success"]]


def write_results(con: duckdb.DuckDBPyConnection, run_id: str, results: list[dict], now: datetime) -> None:
    if not results:
        return
    rows = pa.Table.from_pylist([r | {"run_id": run_id, "validated_at": now} for r in results],
                                schema=RESULT_SCHEMA)
    # One insert from an Arrow table: executemany costs ~0.3 ms a row, and a file has ~20 results.
    con.register("_results_arrow", rows)
    con.execute(f"INSERT INTO meta.validation_results ({', '.join(RESULT_COLUMNS)}) "
                f"SELECT {', '.join(RESULT_COLUMNS)} FROM _results_arrow")
    con.unregister("_results_arrow")


def write_run(con: duckdb.DuckDBPyConnection, run_id: str, started: datetime, finished: datetime,
              batch_clock: datetime, files_new: int) -> None:
    """The run's record, its verdict counted from every result stored under its run_id."""
    critical, warnings = con.execute(
        "SELECT count_if(severity = ? AND NOT success), count_if(severity = ? AND NOT success) "
        "FROM meta.validation_results WHERE run_id = ?", [CRITICAL, WARNING, run_id]).fetchall()[0]
    con.execute("DELETE FROM meta.validation_runs WHERE run_id = ?", [run_id])
    con.execute("INSERT INTO meta.validation_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, started, finished, batch_clock, files_new, critical == 0, critical, warnings])
