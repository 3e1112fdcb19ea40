"""What a person sees: the quality summary, quarantined rows, the HTML page, and the CLI commands."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.ingest import ingest
from pipelines.quality import quality_summary, quarantined_rows
from pipelines.quality_page import write_page
from tests.conftest import csv_text, land, order_row
from tests.pipelines.conftest import seed_suppliers

HOSTILE_NAME = '<script>alert("x")</script> & =cmd'


@pytest.fixture
def warehouse(paths, config):
    """One run: O1 staged, O2 bad enum, O3 negative, O4 pending on supplier S9, a skipped .xlsx."""
    seed_suppliers(paths, "S1")
    land(paths, "orders", "a.csv", csv_text([
        order_row("O1"), order_row("O2", status=HOSTILE_NAME), order_row("O3", order_amount_usd="-3.00"),
        order_row("O4", supplier_id="S9")]))
    land(paths, "orders", "notes.xlsx", b"PK")
    return ingest(paths, config)


def test_the_summary_gives_the_latest_runs_verdict_checks_quarantine_pending_and_sources(paths, warehouse):
    summary = quality_summary(paths)
    assert (summary["run"]["run_id"], summary["run"]["passed"]) == (warehouse.run_id, True)
    assert summary["warnings"][1] == {"source": "orders", "file_path": "orders/notes.xlsx",
                                      "expectation": "file_accepted", "success": False,
                                      "observed_value": "not an accepted format (.csv, .csv.gz, .parquet, .jsonl)"}
    assert summary["failed_row_checks"] == [
        {"source": "orders", "expectation": "order_amount_usd_not_negative", "files": 1, "rows": 1},
        {"source": "orders", "expectation": "status_in_set", "files": 1, "rows": 1}]
    assert summary["quarantined_this_run"] == summary["quarantined_total"] == [
        {"source": "orders", "reason": "bad_enum", "rows": 1}, {"source": "orders", "reason": "negative_amount", "rows": 1}]
    assert [(p["source"], p["rows"]) for p in summary["pending"]] == [("orders", 1)]
    assert {(s["source"], s["expectation"], s["success"]) for s in summary["sources"]} == {
        ("suppliers", "source_is_fresh", True), ("orders", "source_is_fresh", True),
        ("shipments", "source_has_data", False), ("disputes", "source_has_data", False)}
    checks = summary["checks"]
    assert (checks["warned"], checks["failed"]) == (3, 2)  # xlsx + two empty sources; two row rules


def test_quarantined_rows_show_their_original_content_and_position(paths, warehouse):
    rows = quarantined_rows(paths, source="orders", reason="negative_amount")
    assert [(r["file_path"], r["line_number"], r["quarantine_reason"], r["quarantine_detail"]) for r in rows] == [
        ("orders/a.csv", 4, "negative_amount", "order_amount_usd = -3.00 is negative")]
    assert rows[0]["content"]["order_amount_usd"] == "-3.00" and rows[0]["content"]["order_id"] == "O3"
    assert len(quarantined_rows(paths, limit=1)) == 1
    with pytest.raises(ValueError, match="unknown source 'returns'"):
        quarantined_rows(paths, source="returns")


def test_the_page_escapes_every_upstream_string(paths, warehouse):
    page = write_page(paths, quality_summary(paths), quarantined_rows(paths))
    assert page == paths.artifacts / "quality.html"
    html = page.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; =cmd" in html
    assert f"Run {warehouse.run_id} PASSED" in html and "orders/a.csv:3" in html
    assert not list(paths.artifacts.glob("*.tmp"))


def _cli(*args):
    return CliRunner().invoke(main, [*args], catch_exceptions=False)


def test_suprel_quality_json_html_and_quarantine(paths, warehouse):
    summary = json.loads(_cli("quality", "--json", "--data-dir", str(paths.root)).stdout)
    assert summary["run"]["run_id"] == warehouse.run_id
    assert "PASSED" in _cli("quality", "--data-dir", str(paths.root)).stdout
    _cli("quality", "--html", "--data-dir", str(paths.root))
    assert (paths.artifacts / "quality.html").is_file()
    listed = json.loads(_cli("quarantine", "--reason", "bad_enum", "--json", "--data-dir", str(paths.root)).stdout)
    assert [(r["source"], r["line_number"], r["content"]["status"]) for r in listed] == [("orders", 3, HOSTILE_NAME)]
    assert "orders/a.csv:3" in _cli("quarantine", "--source", "orders", "--data-dir", str(paths.root)).stdout


def test_suprel_ingest_exits_non_zero_on_a_critical_failure_and_says_why(paths):
    land(paths, "orders", "empty.csv", b"")
    result = _cli("ingest", "--data-dir", str(paths.root))
    assert result.exit_code == 1
    said = " ".join((result.stdout + result.stderr).split())  # rich wraps lines at the terminal's width
    assert "1 critical data-quality failure(s): this run must not be scored or published" in said
    assert "critical orders/empty.csv file_readable: the file is empty (0 bytes)" in said


def test_suprel_status_totals_include_pending(paths, warehouse):
    totals = json.loads(_cli("status", "--json", "--data-dir", str(paths.root)).stdout)["totals"]
    assert (totals["rows_in"], totals["rows_loaded"], totals["rows_quarantined"], totals["rows_pending"]) == (4, 1, 2, 1)
