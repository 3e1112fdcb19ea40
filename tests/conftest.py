"""Fixtures shared by the suite: a fresh dataset folder, the default config, landing writers."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

import pytest

from pipelines.contract import SOURCES
from pipelines.settings import Config, DataPaths, load_config
from pipelines.warehouse import connect


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    return DataPaths(tmp_path / "data")


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config()


def csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    """A CSV file's text from dict rows; missing keys become empty fields."""
    columns = columns or list(rows[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return buffer.getvalue()


def land(paths: DataPaths, source: str, name: str, content: str | bytes) -> Path:
    """Write one landing file and return its path."""
    target = paths.landing / source / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    target.write_bytes(content)
    return target


def order_row(order_id="O1", updated_at="2024-01-02T00:00:00Z", status="placed", **overrides) -> dict:
    """A valid orders row; override any column."""
    row = {
        "order_id": order_id, "supplier_id": "S1", "buyer_id": "B1", "buyer_country_code": "US",
        "category": "tools", "placed_at": "2024-01-01T10:00:00Z", "order_amount_usd": "100.00",
        "promised_ship_by": "2024-01-05", "promised_delivery_by": "2024-01-20",
        "is_trade_assured": "true", "status": status, "cancelled_by": None, "updated_at": updated_at,
    }
    row.update(overrides)
    return row


def query(paths: DataPaths, sql: str) -> list[tuple]:
    con = connect(paths, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def layer_snapshot(paths: DataPaths) -> dict[str, list[tuple]]:
    """Every row of staging and quarantine (lineage columns dropped), sorted: for comparing runs."""
    con = connect(paths, read_only=True)
    try:
        snapshot = {}
        for source in SOURCES.values():
            names = ", ".join(f'"{c}"' for c in source.column_names)
            snapshot[f"staging.{source.name}_current"] = sorted(
                con.execute(f"SELECT {names} FROM staging.{source.name}_current").fetchall(), key=repr)
            snapshot[f"quarantine.{source.name}"] = sorted(con.execute(
                f"SELECT {names}, file_path, line_number, quarantine_reason FROM quarantine.{source.name}"
            ).fetchall(), key=repr)
        return snapshot
    finally:
        con.close()


@pytest.fixture(scope="session")
def small_marketplace(tmp_path_factory) -> DataPaths:
    """A generated marketplace (60 suppliers x 150 days), landing files and truth; read-only."""
    from synthetic import MarketplaceParams, write_marketplace

    root = tmp_path_factory.mktemp("small_marketplace")
    write_marketplace(root, MarketplaceParams(suppliers=60, days=150, seed=11, dirty_rate=0.002))
    return DataPaths(root)


def copy_landing(source: DataPaths, target: DataPaths) -> DataPaths:
    """A fresh dataset with the same landing files (and truth) as `source`."""
    import shutil

    shutil.copytree(source.landing, target.landing)
    if source.truth.exists():
        shutil.copytree(source.truth, target.truth)
    return target


@pytest.fixture(scope="session")
def prefect_api_url():
    """One Prefect test server for the session (starting one costs seconds); yields its API URL."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield PREFECT_API_URL.value()


def withhold_a_supplier(paths: DataPaths) -> tuple[str, Callable[[], None]]:
    """Take the first supplier's rows out of the supplier files: its orders (and their
    shipments and disputes) wait in pending until its record lands. Returns the supplier id
    and a function that lands the record (a file after the others)."""
    supplier_files = sorted(paths.landing.glob("suppliers/*.csv"))
    held, header, supplier = [], None, None
    for path in supplier_files:
        with path.open(newline="") as handle:
            header, *rows = list(csv.reader(handle))
        supplier = supplier or rows[0][header.index("supplier_id")]
        held += [row for row in rows if row[header.index("supplier_id")] == supplier]
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *(r for r in rows if r[header.index("supplier_id")] != supplier)])

    def land() -> None:
        with (paths.landing / "suppliers" / f"{supplier_files[-1].stem}-late.csv").open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *held])

    return supplier, land
