"""Fixtures of the pipelines tests: known reference records."""

from __future__ import annotations

import pytest

from pipelines.settings import DataPaths
from pipelines.warehouse import connect


def seed_suppliers(paths: DataPaths, *supplier_ids: str) -> None:
    """Given: these suppliers are already staged, so orders naming them are not held pending.

    Written straight into staging (no landing file, no ledger entry), so that the tests
    about ingesting orders see only their own files in the ledger.
    """
    con = connect(paths)
    try:
        for supplier_id in supplier_ids:
            con.execute("INSERT INTO staging.suppliers (supplier_id, registered_at, updated_at, load_id, load_seq, "
                        "line_number) VALUES (?, '2023-01-01', '2024-01-01', 'seed', 0, 0)", [supplier_id])
    finally:
        con.close()


@pytest.fixture
def known_supplier(paths: DataPaths) -> None:
    """Supplier S1, the supplier of conftest.order_row, is known."""
    seed_suppliers(paths, "S1")
