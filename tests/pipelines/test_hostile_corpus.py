"""The hostile-input corpus (tests/hostile/, see its README): given a case's files, the exact outcome.

Each case lands over a copy of the baseline warehouse and ingests; the test asserts the
run's verdict, the ledger entries, quarantined rows with reason and line, the staged and
pending keys, and that no other row of any warehouse table changed.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipelines.contract import SOURCES
from pipelines.ingest import ingest
from pipelines.settings import DataPaths
from pipelines.warehouse import LAYER_SCHEMAS, connect
from tests.conftest import land

CORPUS = Path(__file__).resolve().parents[1] / "hostile"
CASES = sorted(p.name for p in (CORPUS / "cases").iterdir() if (p / "case.yaml").is_file())
CLOCK = datetime(2024, 1, 8)  # the batch clock of every run: 'now' for the future-timestamp rule
ORDER = ("O20,S1,B3,US,tools,2024-01-06T10:00:00Z,80.00,2024-01-09,2024-01-20,true,{status},,2024-01-06T10:00:00Z\n")
ORDERS_HEADER = ",".join(SOURCES["orders"].column_names) + "\n"
# What a case may add to; every other table must come out exactly as it went in.
CASE_TABLES = {f"{layer}.{s}" for layer in ("raw", "quarantine", "pending", "staging") for s in SOURCES} | {
    "meta.load_ledger", "meta.validation_results", "meta.validation_runs",
    "meta.landing_fingerprints",  # the hash cache of every landing file, loaded or not
    "meta.pending_releases"}  # the rows staged from pending, for the score to recompute their days


def test_the_corpus_has_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, config) -> DataPaths:
    paths = DataPaths(tmp_path_factory.mktemp("baseline") / "data")
    shutil.copytree(CORPUS / "baseline", paths.landing)
    report = ingest(paths, config, now=CLOCK)
    assert (report.passed, report.count("loaded"), report.rows_quarantined, report.rows_pending) == (True, 4, 0, 0)
    assert report.warnings == []
    return paths


@pytest.mark.parametrize("case", CASES)
def test_hostile_case(case, baseline, tmp_path, config):
    spec = yaml.safe_load((CORPUS / "cases" / case / "case.yaml").read_text(encoding="utf-8"))
    paths = DataPaths(tmp_path / "data")
    shutil.copytree(baseline.root, paths.root)
    before = warehouse_rows(paths)
    case_config = _with_overrides(config, spec.get("config", {}))
    for number, step in enumerate(spec["steps"], start=1):
        _land_step(CORPUS / "cases" / case / step["files"], paths, tmp_path, step.get("make", []))
        report = ingest(paths, case_config, now=CLOCK + timedelta(days=step.get("days_later", 0)))
        where = f"step {number}"
        assert report.passed is step["passed"], where
        assert sorted(_named(r) for r in report.critical) == sorted(step.get("critical", [])), where
        assert sorted(_named(r) for r in report.warnings) == sorted(step.get("warnings", [])), where
        if "pending" in step:
            assert _added(before, warehouse_rows(paths))["pending"] == _keyed(step["pending"]), where
    _assert_outcome(spec["expect"], before, warehouse_rows(paths), paths)


def _named(result: dict) -> str:
    return f"{result['file_path'] or result['source']}:{result['expectation']}"


def _with_overrides(config, overrides: dict):
    quality = dataclasses.replace(config.quality, **overrides.get("quality", {}))
    return dataclasses.replace(config, quality=quality)


def _land_step(folder: Path, paths: DataPaths, tmp_path: Path, recipes: list[str]) -> None:
    """Copy the step's files into landing/ (Parquet written from its JSON), then run its recipes."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if path.name.endswith(".parquet.json"):
            target = paths.landing / relative.parent / path.name.removesuffix(".json")
            target.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(json.loads(path.read_text())), target)
        else:
            land(paths, str(relative.parent), relative.name, path.read_bytes())
    for recipe in recipes:
        RECIPES[recipe](paths, tmp_path)


def _symlink_outside(paths: DataPaths, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text(ORDERS_HEADER + ORDER.format(status="placed"))
    (paths.landing / "orders").mkdir(parents=True, exist_ok=True)
    (paths.landing / "orders" / "link.csv").symlink_to(outside)


def _long_fields(paths: DataPaths, tmp_path: Path) -> None:
    land(paths, "suppliers", "long.csv", "supplier_id,supplier_name,registered_at,updated_at\n"
         f"S3,{'x' * 3_000_000},2023-05-01,2024-01-06\nS4,short,2023-05-01,2024-01-06\n")
    land(paths, "orders", "long.csv", ORDERS_HEADER + ORDER.format(status="y" * 100_000))


RECIPES = {
    "symlink_outside": _symlink_outside,
    "traversal_name": lambda paths, _: land(paths, "orders", "..\\..\\..\\etc\\passwd.csv",
                                           ORDERS_HEADER + ORDER.format(status="placed")),
    "newline_name": lambda paths, _: land(paths, "orders", "a\nINFO fake.csv", ORDERS_HEADER + ORDER.format(status="placed")),
    "long_fields": _long_fields,
}


def warehouse_rows(paths: DataPaths) -> dict[str, tuple[list[str], Counter]]:
    """Every table of every layer: its column names and its rows, counted."""
    con = connect(paths, read_only=True)
    try:
        tables = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE schema_name IN "
                             f"({', '.join(repr(s) for s in LAYER_SCHEMAS)})").fetchall()
        found = {}
        for (table,) in tables:
            cursor = con.execute(f"SELECT * FROM {table}")
            found[table] = ([d[0] for d in cursor.description], Counter(cursor.fetchall()))
        return found
    finally:
        con.close()


def _added(before: dict, after: dict) -> dict:
    """What the case changed, in the terms of case.yaml; asserts nothing else changed."""
    outcome = {"ledger": [], "quarantined": [], "staged": {}, "pending": {}, "raw": {}}
    for table, (columns, rows) in after.items():
        old = before.get(table, (columns, Counter()))[1]
        assert table.startswith("pending.") or not old - rows, f"{table} lost rows"
        new = [dict(zip(columns, row)) for row in (rows - old).elements()]
        assert table in CASE_TABLES or not new, f"{table} changed"
        layer, name = table.split(".")
        if table == "meta.load_ledger":
            outcome["ledger"] = sorted(new, key=lambda r: r["load_seq"])
        elif layer == "quarantine":
            outcome["quarantined"] += [[name, r["file_path"], r["line_number"], r["quarantine_reason"]] for r in new]
        elif layer in ("staging", "pending") and new:
            outcome["staged" if layer == "staging" else "pending"][name] = sorted(r[SOURCES[name].key] for r in new)
        elif layer == "raw" and new:
            outcome["raw"][name] = len(new)
    outcome["quarantined"].sort()
    return outcome


def _keyed(keys: dict) -> dict:
    return {source: sorted(values) for source, values in keys.items() if values}


def _assert_outcome(expect: dict, before: dict, after: dict, paths: DataPaths) -> None:
    assert _query(paths, "SELECT file_path FROM meta.load_ledger "
                         "WHERE rows_in <> rows_loaded + rows_quarantined + rows_pending") == []
    outcome = _added(before, after)
    ledger = [{"file": r["file_path"], "status": r["status"],
               "rows": [r["rows_in"], r["rows_loaded"], r["rows_quarantined"], r["rows_pending"]]}
              for r in outcome["ledger"]]
    assert ledger == [{k: e[k] for k in ("file", "status", "rows")} for e in expect["ledger"]]
    for entry, wanted in zip(outcome["ledger"], expect["ledger"]):
        assert (entry["error"] is None) == ("error" not in wanted), entry["error"]
        assert wanted.get("error", "") in (entry["error"] or "")
    assert outcome["quarantined"] == sorted(expect.get("quarantined", []))
    assert outcome["staged"] == _keyed(expect.get("staged", {}))
    assert outcome["pending"] == _keyed(expect.get("pending", {}))
    rows_in = Counter()
    for entry in outcome["ledger"]:
        rows_in[entry["source"]] += entry["rows_in"]
    assert outcome["raw"] == {s: n for s, n in rows_in.items() if n}  # raw holds every row that came in
    for check in expect.get("values", []):
        assert [list(r) for r in _query(paths, check["sql"])] == check["rows"], check["sql"]


def _query(paths: DataPaths, sql: str) -> list[tuple]:
    con = connect(paths, read_only=True)
    try:
        return [tuple(str(v) if hasattr(v, "as_tuple") else v for v in row) for row in con.execute(sql).fetchall()]
    finally:
        con.close()
