"""Ingestion, given landing files, expects exact warehouse rows and ledger entries."""

from __future__ import annotations

import gzip
import json
import os
import threading

import polars as pl
import pytest

import pipelines.ingest as ingest_module
import pipelines.validate as validate_module
from pipelines.ingest import ingest
from pipelines.settings import DataPaths
from tests.conftest import csv_text, land, layer_snapshot, order_row, query
from tests.pipelines.conftest import seed_suppliers


def ledger(paths):
    return query(paths, "SELECT file_path, status, rows_in, rows_loaded, rows_quarantined, error "
                        "FROM meta.load_ledger ORDER BY load_seq")


def assert_no_orders_loaded(paths):
    """No trace of any orders file: no ledger entry, no raw row, no staged row."""
    assert [r[0] for r in ledger(paths) if r[0].startswith("orders/")] == []
    assert query(paths, "SELECT count(*) FROM raw.orders") == [(0,)]
    assert query(paths, "SELECT count(*) FROM staging.orders") == [(0,)]


def current_orders(paths):
    return query(paths, "SELECT order_id, status, updated_at::VARCHAR, load_seq FROM staging.orders_current ORDER BY 1")


def test_valid_rows_are_staged_with_lineage(paths, config, known_supplier):
    land(paths, "orders", "2024-01-02.csv", csv_text([order_row("O1"), order_row("O2")]))
    report = ingest(paths, config)
    assert [(f["status"], f["rows_in"], f["rows_loaded"]) for f in report.files] == [("loaded", 2, 2)]
    assert query(paths, "SELECT order_id, order_amount_usd::VARCHAR, promised_ship_by::VARCHAR, "
                        "is_trade_assured, line_number FROM staging.orders ORDER BY 1") == [
        ("O1", "100.00", "2024-01-05", True, 2), ("O2", "100.00", "2024-01-05", True, 3)]
    assert query(paths, "SELECT count(*), count(DISTINCT file_sha256) FROM raw.orders") == [(2, 1)]


def test_ingesting_twice_loads_once(paths, config, known_supplier):
    land(paths, "orders", "a.csv", csv_text([order_row("O1")]))
    ingest(paths, config)
    before = layer_snapshot(paths)
    second = ingest(paths, config)
    assert second.files == []
    assert layer_snapshot(paths) == before
    assert len(ledger(paths)) == 1


def test_a_file_rewritten_in_place_is_hashed_again_and_loaded(paths, config, known_supplier):
    path = land(paths, "orders", "a.csv", csv_text([order_row("O1", "2024-01-02T00:00:00Z", "placed")]))
    ingest(paths, config)
    stat = path.stat()
    path.write_text(csv_text([order_row("O1", "2024-01-05T00:00:00Z", "shipped")]))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # any write moves the time on
    second = ingest(paths, config)
    assert [(f["file_path"], f["status"]) for f in second.files] == [("orders/a.csv", "loaded")]
    assert current_orders(paths)[0][:2] == ("O1", "shipped")


def test_discovery_trusts_the_stored_hash_of_a_file_whose_size_and_time_are_unchanged(paths, config, known_supplier):
    """An incremental run does not read the landing zone's history again: a file with the size and
    modification time it had when hashed keeps its stored hash (here, content forged behind it)."""
    path = land(paths, "orders", "a.csv", csv_text([order_row("O1", "2024-01-02T00:00:00Z", "placed")]))
    ingest(paths, config)
    stat = path.stat()
    path.write_text(csv_text([order_row("O1", "2024-01-03T00:00:00Z", "placed")]))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert ingest(paths, config).files == []
    assert query(paths, "SELECT file_path, file_bytes FROM meta.landing_fingerprints") == [("orders/a.csv", stat.st_size)]


def test_same_bytes_under_another_name_is_a_recorded_duplicate(paths, config):
    content = csv_text([order_row("O1")])
    land(paths, "orders", "a.csv", content)
    ingest(paths, config)
    land(paths, "orders", "copy of a.csv", content)
    ingest(paths, config)
    assert ledger(paths)[1][:5] == ("orders/copy of a.csv", "duplicate", 0, 0, 0)
    assert query(paths, "SELECT count(*) FROM raw.orders") == [(1,)]


def test_latest_updated_at_wins_whatever_the_arrival_order(paths, config, known_supplier):
    land(paths, "orders", "a.csv", csv_text([order_row("O1", "2024-01-05T00:00:00Z", "shipped")]))
    land(paths, "orders", "b.csv", csv_text([order_row("O1", "2024-01-02T00:00:00Z", "placed")]))
    ingest(paths, config)
    assert [r[:3] for r in current_orders(paths)] == [("O1", "shipped", "2024-01-05 00:00:00")]
    assert query(paths, "SELECT count(*) FROM staging.orders") == [(2,)]  # every version kept


def test_updated_at_tie_goes_to_the_batch_ingested_last(paths, config, known_supplier):
    land(paths, "orders", "a.csv", csv_text([order_row("O1", status="paid")]))
    ingest(paths, config)
    land(paths, "orders", "b.csv", csv_text([order_row("O1", status="shipped")]))
    ingest(paths, config)
    assert [r[:2] for r in current_orders(paths)] == [("O1", "shipped")]


def test_offsets_are_converted_to_utc_and_naive_means_utc(paths, config, known_supplier):
    land(paths, "orders", "a.csv", csv_text([
        order_row("O1", updated_at="2024-01-02T03:00:00+02:00"),
        order_row("O2", updated_at="2024-01-02 01:00:00"),
    ]))
    ingest(paths, config)
    assert [r[2] for r in current_orders(paths)] == ["2024-01-02 01:00:00", "2024-01-02 01:00:00"]


def _write_every_format(paths, rows):
    land(paths, "orders", "a.csv", csv_text(rows[:1]))
    land(paths, "orders", "b.csv.gz", gzip.compress(csv_text(rows[1:2]).encode(), mtime=0))
    land(paths, "orders", "c.jsonl", "\n".join(json.dumps(r) for r in rows[2:3]) + "\n")
    target = paths.landing / "orders" / "d.parquet"
    pl.DataFrame(rows[3:4]).write_parquet(target)


def test_every_accepted_format_gives_the_same_typed_rows(paths, config, known_supplier):
    rows = [order_row(f"O{i}") for i in range(4)]
    _write_every_format(paths, rows)
    report = ingest(paths, config)
    assert [(f["file_format"], f["status"], f["rows_loaded"]) for f in report.files] == [
        ("csv", "loaded", 1), ("csv.gz", "loaded", 1), ("jsonl", "loaded", 1), ("parquet", "loaded", 1)]
    staged = query(paths, "SELECT * EXCLUDE (order_id, load_id, load_seq, file_sha256, line_number) FROM staging.orders")
    assert len(set(staged)) == 1


def test_typed_parquet_columns_are_accepted(paths, config, known_supplier):
    frame = pl.DataFrame([order_row("O1")]).with_columns(
        pl.col("order_amount_usd").cast(pl.Float64), pl.col("is_trade_assured") == "true",
        pl.col("placed_at").str.to_datetime(time_zone="UTC"),
    )
    (paths.landing / "orders").mkdir(parents=True)
    frame.write_parquet(paths.landing / "orders" / "typed.parquet")
    ingest(paths, config)
    assert query(paths, "SELECT order_amount_usd::VARCHAR, is_trade_assured, placed_at::VARCHAR FROM staging.orders") == [
        ("100.00", True, "2024-01-01 10:00:00")]


@pytest.mark.parametrize("column, value, reason, detail", [
    ("order_amount_usd", "-5.00", "negative_amount", "order_amount_usd = -5.00 is negative"),
    ("order_amount_usd", "12.345", "bad_amount", 'order_amount_usd = "12.345" is not an amount in USD with at most 2 decimals'),
    ("order_amount_usd", "abc", "bad_amount", 'order_amount_usd = "abc" is not an amount in USD with at most 2 decimals'),
    ("placed_at", "31/02/2024", "bad_timestamp", 'placed_at = "31/02/2024" is not an ISO-8601 timestamp'),
    ("promised_ship_by", "2024-02-30", "bad_date", 'promised_ship_by = "2024-02-30" is not a YYYY-MM-DD date'),
    ("is_trade_assured", "yes", "bad_boolean", 'is_trade_assured = "yes" is not true or false'),
    ("status", "lost", "bad_enum", 'status = "lost" is not one of placed, paid, shipped, delivered, completed, cancelled'),
    ("buyer_id", "", "missing_required", "required column buyer_id is empty"),
    ("buyer_id", "NULL", "missing_required", "required column buyer_id is empty"),
])
def test_a_row_that_cannot_be_typed_is_quarantined_with_line_column_and_reason(paths, config, known_supplier, column, value, reason, detail):
    land(paths, "orders", "a.csv", csv_text([order_row("O1"), order_row("O2", **{column: value})]))
    report = ingest(paths, config)
    assert (report.files[0]["rows_in"], report.files[0]["rows_loaded"], report.files[0]["rows_quarantined"]) == (2, 1, 1)
    assert query(paths, "SELECT order_id, file_path, line_number, quarantine_column, quarantine_reason, "
                        "quarantine_detail FROM quarantine.orders") == [("O2", "orders/a.csv", 3, column, reason, detail)]
    assert query(paths, "SELECT order_id FROM staging.orders") == [("O1",)]


def test_null_like_strings_in_optional_columns_are_null(paths, config, known_supplier):
    land(paths, "orders", "a.csv", csv_text([order_row("O1", promised_delivery_by="None", cancelled_by="NaN")]))
    ingest(paths, config)
    assert query(paths, "SELECT promised_delivery_by, cancelled_by FROM staging.orders") == [(None, None)]


def test_records_spanning_lines_and_malformed_records_keep_their_physical_line(paths, config):
    text = ("supplier_id,supplier_name,registered_at,updated_at\n"
            'S1,"Acme\nTrading, ""Ltd""",2023-01-01,2024-01-01\n'
            "S2,Short\n"
            "S3,Fine,2023-01-01,2024-01-01\n")
    land(paths, "suppliers", "a.csv", text)
    ingest(paths, config)
    assert query(paths, "SELECT supplier_id, supplier_name, line_number FROM staging.suppliers ORDER BY 1") == [
        ("S1", 'Acme\nTrading, "Ltd"', 2), ("S3", "Fine", 5)]
    assert query(paths, "SELECT line_number, quarantine_reason, raw_record FROM quarantine.suppliers") == [
        (4, "malformed_record", "S2,Short")]


def test_unknown_columns_are_kept_in_raw_and_column_order_does_not_matter(paths, config, known_supplier):
    row = order_row("O1")
    columns = ["note"] + list(reversed(list(row)))
    land(paths, "orders", "a.csv", csv_text([{**row, "note": "hi"}], columns))
    ingest(paths, config)
    assert query(paths, "SELECT extra_columns FROM raw.orders") == [('{"note":"hi"}',)]
    assert query(paths, "SELECT order_id, status FROM staging.orders") == [("O1", "placed")]


def test_missing_required_column_rejects_the_file_and_the_run_goes_on(paths, config, known_supplier):
    rows = [order_row("O1"), order_row("O2")]
    columns = [c for c in rows[0] if c != "buyer_id"]
    land(paths, "orders", "a.csv", csv_text(rows, columns))
    land(paths, "orders", "b.csv", csv_text([order_row("O3")]))
    report = ingest(paths, config)
    rejected, loaded = report.files
    assert rejected["status"] == "rejected"
    assert rejected["error"].startswith("missing required column buyer_id (the header has: order_id, supplier_id,")
    assert (rejected["rows_in"], rejected["rows_loaded"], rejected["rows_quarantined"]) == (2, 0, 2)
    assert query(paths, "SELECT order_id, quarantine_reason FROM quarantine.orders ORDER BY 1") == [
        ("O1", "file_rejected"), ("O2", "file_rejected")]
    assert loaded["status"] == "loaded"
    assert query(paths, "SELECT order_id FROM staging.orders") == [("O3",)]


@pytest.mark.parametrize("name, content, message", [
    ("a.csv.gz", b"this is not gzip", "not a readable gzip file"),
    ("a.csv", "order_id,supplier_name\nO1,Caf\xe9\n".encode("latin-1"), "not UTF-8 text: byte 0xE9 at line 2"),
    ("a.csv", b"", "the file is empty (0 bytes)"),
    ("a.parquet", b"PAR1 not really", "not a readable Parquet file"),
])
def test_unreadable_files_are_rejected_whole_with_a_message(paths, config, name, content, message):
    land(paths, "orders", name, content)
    report = ingest(paths, config)
    assert report.files[0]["status"] == "rejected"
    assert message in report.files[0]["error"]
    assert query(paths, "SELECT count(*) FROM raw.orders") == [(0,)]


def test_other_files_are_reported_and_skipped(paths, config):
    land(paths, "orders", "a.xlsx", b"PK\x03\x04")
    land(paths, "elsewhere", "b.csv", "x\n1\n")
    report = ingest(paths, config)
    assert [(f["file_path"], f["status"]) for f in report.files] == [
        ("elsewhere/b.csv", "skipped"), ("orders/a.xlsx", "skipped")]


def test_a_failure_inside_a_files_transaction_leaves_no_trace(paths, config, known_supplier, monkeypatch):
    land(paths, "orders", "a.csv", csv_text([order_row("O1"), order_row("O2", order_amount_usd="-1.00")]))
    land(paths, "orders", "b.csv", csv_text([order_row("O1", "2024-01-09T00:00:00Z", "shipped")]))

    def crash(con, entries):
        if any(entry["file_path"] == "orders/b.csv" for entry in entries):
            raise RuntimeError("disk full")  # after raw, staging and quarantine were written
        original(con, entries)

    original = ingest_module._write_ledger
    monkeypatch.setattr(ingest_module, "_write_ledger", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest(paths, config)
    assert_no_orders_loaded(paths)  # a.csv and b.csv commit in one transaction (one chunk): neither left a trace

    monkeypatch.setattr(ingest_module, "_write_ledger", original)
    ingest(paths, config)
    recovered = layer_snapshot(paths)

    clean_paths = DataPaths(paths.root.parent / "clean")
    seed_suppliers(clean_paths, "S1")
    for name in ("a.csv", "b.csv"):
        land(clean_paths, "orders", name, (paths.landing / "orders" / name).read_bytes())
    ingest(clean_paths, config)
    assert recovered == layer_snapshot(clean_paths)
    assert [r[:5] for r in ledger(paths)] == [r[:5] for r in ledger(clean_paths)]


def test_gx_checks_a_chunk_on_its_own_thread_while_the_chunks_rows_are_written(
        paths, config, known_supplier, monkeypatch):
    land(paths, "orders", "a.csv", csv_text([order_row("O1"), order_row("O2", order_amount_usd="-1.00")]))
    written, seen = threading.Event(), []
    original_suite, original_typed = validate_module.run_suite, ingest_module.insert_typed

    def typed(*args):
        original_typed(*args)
        written.set()

    def suite(*args):  # waits for the staging insert: run before it, as GX used to be, this times out
        seen.append((threading.current_thread().name, written.wait(timeout=10)))
        return original_suite(*args)

    monkeypatch.setattr(ingest_module, "insert_typed", typed)
    monkeypatch.setattr(validate_module, "run_suite", suite)
    report = ingest(paths, config)
    assert [(name.startswith("suprel-gx"), overlapped) for name, overlapped in seen] == [(True, True)]
    assert report.passed
    [(sql_count, details)] = query(paths, "SELECT unexpected_count, details FROM meta.validation_results "
                                          "WHERE expectation = 'order_amount_usd_not_negative'")
    assert (sql_count, json.loads(details)["gx_chunk"]["unexpected_count"]) == (1, 1)  # GX's result was stored


def test_a_gx_failure_on_its_thread_leaves_no_trace_of_the_chunk(paths, config, known_supplier, monkeypatch):
    land(paths, "orders", "a.csv", csv_text([order_row("O1")]))

    def broken(*args):
        raise RuntimeError("great-expectations broke")

    monkeypatch.setattr(validate_module, "run_suite", broken)
    with pytest.raises(RuntimeError, match="great-expectations broke"):
        ingest(paths, config)
    assert_no_orders_loaded(paths)
    monkeypatch.undo()
    ingest(paths, config)  # nothing lost: the next run loads the file whole
    assert [r[:4] for r in ledger(paths) if r[0].startswith("orders/")] == [("orders/a.csv", "loaded", 1, 1)]


def test_files_are_read_ahead_in_order_within_the_byte_budget(paths, config):
    for day in range(1, 7):
        land(paths, "orders", f"2024-01-0{day}.csv", csv_text([order_row(f"O{day}")]))
    files = ingest_module.discover(paths.landing, config.ingest.max_file_mb)
    budget = files[0].size * 2  # two files ahead at most
    planned = [(f, {"load_id": f"L{n}", "load_seq": n}) for n, f in enumerate(files, 1)]
    with ingest_module._ReadAhead(planned, budget) as reads:
        for landing_file, entry in planned:
            rows, problem = reads.next(landing_file).result()
            assert reads.held <= budget and len(reads.ahead) <= 2
            assert problem is None and rows.column("load_id").to_pylist() == [entry["load_id"]]
            assert rows.column("order_id").to_pylist() == [landing_file.path.stem.replace("2024-01-0", "O")]
    assert not reads.ahead and not reads.todo
