"""Validating chunks: how a chunk finds its referenced records must not change any verdict."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import polars as pl

import pipelines.validate as validate_module
from benchmarks import compare_warehouses
from pipelines.ingest import ingest
from pipelines.settings import DataPaths
from tests.conftest import copy_landing, csv_text, land, order_row, query


def test_the_runs_table_of_current_versions_gives_the_warehouse_of_per_chunk_lookups(
        tmp_path, small_marketplace, config, monkeypatch, capsys):
    # Small chunks: shipments and disputes span many chunks, so the run builds its table of the
    # orders' current versions; the pending rows re-checked at the end see orders released then.
    config = dataclasses.replace(config, quality=dataclasses.replace(config.quality, chunk_rows=3000))
    built = []
    real = validate_module._referenced_current

    def counting(con, source, ref):
        sql = real(con, source, ref)
        built.append(validate_module.REF_CACHE in sql)
        return sql

    monkeypatch.setattr(validate_module, "_referenced_current", counting)
    warehouses = []
    for label, after in (("lookups", 10**9), ("table", 0)):
        monkeypatch.setattr(validate_module, "REF_CACHE_AFTER", after)
        paths = copy_landing(small_marketplace, DataPaths(tmp_path / label))
        _break_context_rules(paths)
        ingest(paths, config)
        warehouses.append(str(paths.warehouse))
    for source, reason in (("shipments", "shipped_before_placed"), ("disputes", "refund_above_order_amount")):
        assert query(paths, f"SELECT count(*) FROM quarantine.{source} WHERE quarantine_reason = '{reason}'") != [(0,)]
    assert query(paths, "SELECT count(*) FROM meta.validation_results WHERE expectation = 'gx_agrees_with_sql'") == [(0,)]
    assert any(built) and not all(built)
    capsys.readouterr()
    compare_warehouses.main(warehouses)
    assert capsys.readouterr().out.splitlines()[-1] == "EQUAL"


def _break_context_rules(paths: DataPaths) -> None:
    """A few rows each that only the referenced order's current version can fail: shipped before
    it was placed, refunded above its amount (within the claim)."""
    for source, column, changes in (("shipments", "shipped_at", {"shipped_at": "2020-01-01T00:00:00Z"}),
                                    ("disputes", "refund_amount_usd",
                                     {"claim_amount_usd": "99999999.00", "refund_amount_usd": "99999999.00"})):
        file = sorted((paths.landing / source).glob("*.csv"))[40]
        rows = pl.read_csv(file, infer_schema=False)
        broken = rows.with_row_index().filter(pl.col(column).is_not_null())["index"][:3].to_list()
        rows = rows.with_columns(pl.when(pl.int_range(pl.len()).is_in(broken)).then(pl.lit(v)).otherwise(pl.col(c)).alias(c)
                                 for c, v in changes.items())
        rows.write_csv(file)


def test_the_runs_table_holds_the_current_version_and_is_rebuilt_after_pending_orders_are_released(
        paths, config, known_supplier, monkeypatch):
    from tests.pipelines.test_quality_gate import shipment_row, supplier_row

    monkeypatch.setattr(validate_module, "REF_CACHE_AFTER", 0)  # every chunk reads the run's table
    config = dataclasses.replace(config, quality=dataclasses.replace(
        config.quality, chunk_rows=1, volume_min_history_files=10**6))
    # O1 was placed on the 1st, then corrected to the 4th: its current version says the 4th.
    land(paths, "orders", "2024-01-01.csv", csv_text([order_row("O1")]))
    land(paths, "orders", "2024-01-04.csv", csv_text([order_row("O1", "2024-01-04T00:00:00Z",
                                                                placed_at="2024-01-04T00:00:00Z")]))
    # O2's supplier S9 is unknown: O2 waits, and so does its shipment.
    land(paths, "orders", "2024-01-05.csv", csv_text([order_row("O2", "2024-01-05T00:00:00Z", supplier_id="S9")]))
    shipments = [shipment_row("SH1", "O1", shipped_at="2024-01-03T00:00:00Z"),
                 shipment_row("SH2", "O1", shipped_at="2024-01-05T00:00:00Z"),
                 shipment_row("SH3", "O2", shipped_at="2024-01-05T00:00:00Z")]
    for n, row in enumerate(shipments):
        land(paths, "shipments", f"2024-01-0{n + 6}.csv", csv_text([row]))
    ingest(paths, config, now=datetime(2024, 1, 10))
    assert query(paths, "SELECT shipment_id, quarantine_reason FROM quarantine.shipments") == [("SH1", "shipped_before_placed")]
    assert query(paths, "SELECT shipment_id FROM pending.shipments") == [("SH3",)]
    # S9 lands: O2 is released at the end of the run, and then SH3 finds it.
    land(paths, "suppliers", "2024-01-09.csv", csv_text([supplier_row("S9")]))
    for n in range(3):  # chunks of shipments that build the run's table before O2 is released
        land(paths, "shipments", f"2024-01-1{n}.csv", csv_text([shipment_row(f"SH{n + 4}", "O1", shipped_at="2024-01-05T00:00:00Z")]))
    ingest(paths, config, now=datetime(2024, 1, 10))
    assert query(paths, "SELECT count(*) FROM pending.shipments") == [(0,)]
    assert sorted(query(paths, "SELECT shipment_id FROM staging.shipments")) == [
        ("SH2",), ("SH3",), ("SH4",), ("SH5",), ("SH6",)]


def test_the_runs_table_is_built_again_when_the_target_has_new_versions(paths, monkeypatch):
    from pipelines.contract import SOURCES
    from pipelines.expectations import REFERENCES
    from pipelines.warehouse import connect

    monkeypatch.setattr(validate_module, "REF_CACHE_AFTER", 0)
    con = connect(paths)
    try:
        found = []
        for order_id in ("O1", "O2"):
            con.execute("INSERT INTO staging.orders (order_id, placed_at, updated_at, load_id, load_seq, line_number) "
                        "VALUES (?, '2024-01-01', '2024-01-01', 'L', 1, ?)", [order_id, len(found)])
            con.execute("CREATE OR REPLACE TEMP TABLE _chunk_typed AS SELECT ? AS order_id, NULL AS __reason", [order_id])
            sql = validate_module._referenced_current(con, SOURCES["shipments"], REFERENCES["shipments"])
            assert validate_module.REF_CACHE in sql
            found += con.execute(f"SELECT __ref_key FROM ({sql})").fetchall()
        assert found == [("O1",), ("O2",)]
    finally:
        con.close()
