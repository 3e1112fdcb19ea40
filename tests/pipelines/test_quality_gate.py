"""The quality gate inside ingest: chunked GX validation, its agreement with SQL, references, freshness."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest

import pipelines.validate as validate_module
from pipelines.expectations import SUITES
from pipelines.ingest import ingest
from pipelines.quality import run_passed
from pipelines.settings import DataPaths
from pipelines.status import warehouse_status
from pipelines.warehouse import connect
from tests.conftest import csv_text, land, layer_snapshot, order_row, query
from tests.pipelines.conftest import seed_suppliers

CLOCK = datetime(2024, 1, 10)


def supplier_row(supplier_id="S2", **overrides):
    return {"supplier_id": supplier_id, "supplier_name": "Bolt", "country_code": "VN", "main_category": "tools",
            "registered_at": "2023-01-01T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z"} | overrides


def shipment_row(shipment_id="SH1", order_id="O1", **overrides):
    return {"shipment_id": shipment_id, "order_id": order_id, "shipped_at": "2024-01-03T00:00:00Z",
            "delivered_at": "2024-01-06T00:00:00Z", "carrier": "DHL", "has_valid_tracking": "true",
            "updated_at": "2024-01-06T00:00:00Z"} | overrides


def dispute_row(dispute_id="D1", order_id="O1", **overrides):
    return {"dispute_id": dispute_id, "order_id": order_id, "opened_at": "2024-01-07T00:00:00Z", "reason": "damaged",
            "claim_amount_usd": "50.00", "status": "resolved", "outcome": "buyer_partial_refund",
            "refund_amount_usd": "20.00", "resolved_at": "2024-01-08T00:00:00Z",
            "updated_at": "2024-01-08T00:00:00Z"} | overrides


FUTURE = "2024-03-01T00:00:00Z"
LIMIT = "2024-01-11T00:00:00Z"  # CLOCK + 24 h: not yet the future
# For every rule of every suite, at least one row failing it; some rows fail two rules at
# once; the last rows of each source sit exactly on a rule's boundary and pass, so that a
# `<` written `<=` in SQL or in GX makes the two disagree.
FAILING_ROWS = {
    "suppliers": [supplier_row("S2", registered_at=FUTURE), supplier_row("S3", updated_at=FUTURE),
                  supplier_row("S4"), supplier_row("S4", supplier_name="Other"),
                  supplier_row("S5", registered_at=LIMIT, updated_at=LIMIT)],
    "orders": [order_row("O2", status="lost", order_amount_usd="-1.00"), order_row("O3", status="cancelled", cancelled_by="x"),
               order_row("O4", placed_at=FUTURE), order_row("O5", updated_at=FUTURE),
               order_row("O6"), order_row("O6", buyer_id="B9"), order_row("O6", status="lost"),
               order_row("O7", order_amount_usd="0.00", placed_at=LIMIT, updated_at=LIMIT)],
    "shipments": [shipment_row("SH2", shipped_at=FUTURE), shipment_row("SH3", delivered_at=FUTURE),
                  shipment_row("SH4", updated_at=FUTURE), shipment_row("SH5", delivered_at="2024-01-02T00:00:00Z"),
                  shipment_row("SH6", shipped_at="2023-12-31T00:00:00Z", delivered_at=None),
                  shipment_row("SH7"), shipment_row("SH7", carrier="UPS"),
                  shipment_row("SH8", shipped_at="2024-01-01T10:00:00Z", delivered_at="2024-01-01T10:00:00Z", updated_at=LIMIT)],
    "disputes": [dispute_row("D2", reason="angry", status="lost", outcome="maybe"),
                 dispute_row("D3", claim_amount_usd="-1.00", refund_amount_usd="-2.00"),
                 dispute_row("D4", opened_at=FUTURE), dispute_row("D5", resolved_at=FUTURE),
                 dispute_row("D6", updated_at=FUTURE), dispute_row("D7", resolved_at="2024-01-06T00:00:00Z"),
                 dispute_row("D8", refund_amount_usd="60.00"),
                 dispute_row("D9", claim_amount_usd="500.00", refund_amount_usd="150.00"),
                 dispute_row("D10"), dispute_row("D10", carrier_note="x", claim_amount_usd="49.00"),
                 dispute_row("D11", claim_amount_usd="100.00", refund_amount_usd="100.00", opened_at=LIMIT,
                             resolved_at=LIMIT, updated_at=LIMIT)],
}


def _land_known_order(paths):
    """S1 and its order O1 (100.00, placed 2024-01-01 10:00) are staged before the test's own files."""
    seed_suppliers(paths, "S1")
    land(paths, "orders", "known.csv", csv_text([order_row("O1")]))
    ingest(paths, _config_for_tests(), now=CLOCK)


def _config_for_tests(**quality):
    from pipelines.settings import load_config
    config = load_config()
    return dataclasses.replace(config, quality=dataclasses.replace(config.quality, **quality))


def test_gx_and_sql_count_the_same_failing_rows_for_every_rule(paths, config):
    _land_known_order(paths)
    for source, rows in FAILING_ROWS.items():
        land(paths, source, "bad.csv", csv_text(rows, list(dict.fromkeys(k for r in rows for k in r))))
    report = ingest(paths, config, now=CLOCK)
    assert report.passed, report.critical  # a disagreement would be the critical gx_agrees_with_sql
    results = query(paths, "SELECT source, expectation, unexpected_count, details FROM meta.validation_results "
                           f"WHERE run_id = '{report.run_id}' AND severity = 'row' AND details LIKE '%gx_chunk%'")
    by_rule = {(source, name): (failing, json.loads(details)["gx_chunk"]) for source, name, failing, details in results}
    for source, suite in SUITES.items():
        for expectation in suite:
            failing, gx = by_rule[(source, expectation.name)]
            assert failing >= 1, (source, expectation.name)      # the test exercises every rule ...
            assert gx["unexpected_count"] == failing, (source, expectation.name)  # ... and GX agrees


def test_every_failing_row_is_quarantined_with_its_first_rule_and_the_good_ones_staged(paths, config):
    _land_known_order(paths)
    land(paths, "orders", "bad.csv", csv_text(FAILING_ROWS["orders"]))
    ingest(paths, config, now=CLOCK)
    assert query(paths, "SELECT order_id, quarantine_reason FROM quarantine.orders ORDER BY line_number") == [
        ("O2", "bad_enum"), ("O3", "bad_enum"), ("O4", "future_timestamp"), ("O5", "future_timestamp"),
        ("O6", "ambiguous_version"), ("O6", "ambiguous_version"), ("O6", "bad_enum")]
    assert query(paths, "SELECT order_id FROM staging.orders ORDER BY 1") == [("O1",), ("O7",)]


def _count_gx_runs(monkeypatch) -> list[str]:
    calls = []
    original = validate_module.run_suite

    def counting(source, frame, *args):
        calls.append(source)
        return original(source, frame, *args)

    monkeypatch.setattr(validate_module, "run_suite", counting)
    return calls


@pytest.mark.parametrize("chunk_rows, gx_runs", [(1_000, 1), (1, 3)])
def test_a_source_is_validated_once_per_chunk_and_chunks_do_not_change_the_outcome(
        paths, config, known_supplier, monkeypatch, chunk_rows, gx_runs):
    for day in range(3):
        land(paths, "orders", f"2024-01-0{day + 1}.csv", csv_text([
            order_row(f"O{day}"), order_row(f"O{day}", status="lost"), order_row("O9", f"2024-01-0{day + 1}T00:00:00Z")]))
    calls = _count_gx_runs(monkeypatch)
    ingest(paths, _config_for_tests(chunk_rows=chunk_rows), now=CLOCK)
    assert calls == ["orders"] * gx_runs
    reference = DataPaths(paths.root.parent / "reference")
    seed_suppliers(reference, "S1")
    for day in range(3):
        name = f"2024-01-0{day + 1}.csv"
        land(reference, "orders", name, (paths.landing / "orders" / name).read_bytes())
        ingest(reference, config, now=CLOCK)  # one file per run: the smallest chunks there are
    assert layer_snapshot(paths) == layer_snapshot(reference)


def test_a_disagreement_between_gx_and_sql_fails_the_run(paths, config, known_supplier, monkeypatch):
    original = validate_module.run_suite

    def off_by_one(*args):
        found = original(*args)
        found["status_in_set"]["unexpected_count"] += 1
        return found

    monkeypatch.setattr(validate_module, "run_suite", off_by_one)
    land(paths, "orders", "a.csv", csv_text([order_row("O1")]))
    report = ingest(paths, config, now=CLOCK)
    assert [(r["expectation"], r["observed_value"]) for r in report.critical] == [
        ("gx_agrees_with_sql", "status_in_set: SQL counted 0 failing rows, great-expectations 1")]
    con = connect(paths, read_only=True)
    try:
        assert run_passed(con, report.run_id) is False
    finally:
        con.close()


def test_run_passed_is_what_a_flow_asks_before_scoring(paths, config, known_supplier):
    land(paths, "orders", "a.csv", csv_text([order_row("O1")]))
    good = ingest(paths, config, now=CLOCK)
    land(paths, "orders", "b.csv.gz", b"not gzip")
    bad = ingest(paths, config, now=CLOCK)
    con = connect(paths, read_only=True)
    try:
        assert (run_passed(con, good.run_id), run_passed(con, bad.run_id), run_passed(con, "never-ran")) == (
            True, False, False)
    finally:
        con.close()
    assert (good.passed, bad.passed) == (True, False)


def test_pending_rows_balance_the_ledger_before_and_after_their_release(paths, config):
    land(paths, "shipments", "s.csv", csv_text([shipment_row("SH1", "O1"), shipment_row("SH2", "O2")]))
    ingest(paths, config, now=CLOCK)
    totals = warehouse_status(paths)["totals"]
    assert (totals["rows_in"], totals["rows_loaded"], totals["rows_quarantined"], totals["rows_pending"]) == (2, 0, 0, 2)
    seed_suppliers(paths, "S1")
    land(paths, "orders", "o.csv", csv_text([order_row("O1")]))
    ingest(paths, config, now=CLOCK)
    assert [(f["file_path"], f["rows_in"], f["rows_loaded"], f["rows_pending"]) for f in warehouse_status(paths)["files"]] == [
        ("shipments/s.csv", 2, 1, 1), ("orders/o.csv", 1, 1, 0)]
    assert query(paths, "SELECT shipment_id, pending_reason FROM pending.shipments") == [
        ("SH2", "order_id O2 is not in orders yet")]


def test_a_stalled_reference_feed_does_not_expire_the_rows_waiting_for_it(paths, config, known_supplier):
    land(paths, "orders", "o.csv", csv_text([order_row("O1", "2024-01-02T00:00:00Z")]))
    land(paths, "shipments", "1.csv", csv_text([shipment_row("SH9", "O9", updated_at="2024-01-03T00:00:00Z")]))
    # Shipments keep flowing for weeks; orders do not: the orders' clock stands still.
    land(paths, "shipments", "2.csv", csv_text([shipment_row("SH1", "O1", updated_at="2024-02-20T00:00:00Z")]))
    report = ingest(paths, config, now=datetime(2024, 2, 21))
    assert query(paths, "SELECT shipment_id FROM pending.shipments") == [("SH9",)]
    assert [(r["source"], r["expectation"]) for r in report.warnings] == [
        ("orders", "source_is_fresh"), ("disputes", "source_has_data")]


def test_sources_without_data_are_reported_and_the_run_still_passes(paths, config, known_supplier):
    land(paths, "orders", "o.csv", csv_text([order_row("O1")]))
    report = ingest(paths, config, now=CLOCK)
    assert report.passed
    assert sorted((r["source"], r["observed_value"]) for r in report.warnings) == [
        ("disputes", "disputes has never had data: scoring goes on from the other sources"),
        ("shipments", "shipments has never had data: scoring goes on from the other sources")]


def test_a_warehouse_from_before_the_gate_gets_its_columns(paths, config, known_supplier):
    con = connect(paths)
    con.execute("ALTER TABLE meta.load_ledger DROP COLUMN rows_pending")
    con.execute("ALTER TABLE quarantine.orders DROP COLUMN quarantine_run_id")
    con.close()
    land(paths, "orders", "a.csv", csv_text([order_row("O1"), order_row("O2", status="lost")]))
    report = ingest(paths, config, now=CLOCK)
    assert query(paths, "SELECT rows_pending FROM meta.load_ledger") == [(0,)]
    assert query(paths, "SELECT order_id, quarantine_run_id FROM quarantine.orders") == [("O2", report.run_id)]
