"""Tiny staging tables for given/expect tests of models/: rows in, Ibis tables out."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import ibis
import pyarrow as pa

ORDER_SCHEMA = {
    "order_id": "string", "supplier_id": "string", "buyer_id": "string", "category": "string",
    "placed_at": "timestamp", "order_amount_usd": "decimal(18,2)", "promised_ship_by": "date",
    "promised_delivery_by": "date", "status": "string", "cancelled_by": "string",
    "updated_at": "timestamp", "load_seq": "int64", "line_number": "int64",
    "buyer_country_code": "string", "is_trade_assured": "boolean",
}
SHIPMENT_SCHEMA = {
    "shipment_id": "string", "order_id": "string", "shipped_at": "timestamp",
    "delivered_at": "timestamp", "has_valid_tracking": "boolean", "updated_at": "timestamp",
    "load_seq": "int64", "line_number": "int64",
}
DISPUTE_SCHEMA = {
    "dispute_id": "string", "order_id": "string", "opened_at": "timestamp", "reason": "string",
    "claim_amount_usd": "decimal(18,2)", "status": "string", "outcome": "string",
    "refund_amount_usd": "decimal(18,2)", "resolved_at": "timestamp", "updated_at": "timestamp",
    "load_seq": "int64", "line_number": "int64",
}


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def order(order_id="O1", updated_at="2024-01-01 10:00", status="paid", **overrides) -> dict:
    """An order placed 2024-01-01 10:00, ship by 01-05, deliver by 01-20, $100."""
    row = {
        "order_id": order_id, "supplier_id": "S1", "buyer_id": "B1", "category": "tools",
        "placed_at": ts("2024-01-01 10:00"), "order_amount_usd": Decimal("100.00"),
        "promised_ship_by": day("2024-01-05"), "promised_delivery_by": day("2024-01-20"),
        "status": status, "cancelled_by": None, "updated_at": ts(updated_at), "load_seq": 1, "line_number": 1,
        "buyer_country_code": "DE", "is_trade_assured": True,
    }
    row.update(overrides)
    return row


def shipment(shipment_id="H1", order_id="O1", updated_at="2024-01-03 09:00", shipped_at="2024-01-03 09:00",
             delivered_at=None, has_valid_tracking=True, **overrides) -> dict:
    row = {
        "shipment_id": shipment_id, "order_id": order_id,
        "shipped_at": ts(shipped_at) if shipped_at else None,
        "delivered_at": ts(delivered_at) if delivered_at else None,
        "has_valid_tracking": has_valid_tracking, "updated_at": ts(updated_at), "load_seq": 1, "line_number": 1,
    }
    row.update(overrides)
    return row


def dispute(dispute_id="D1", order_id="O1", updated_at="2024-01-25 00:00", status="open", outcome=None,
            reason="not_as_described", opened_at="2024-01-25 00:00", refund="0.00", **overrides) -> dict:
    row = {
        "dispute_id": dispute_id, "order_id": order_id, "opened_at": ts(opened_at), "reason": reason,
        "claim_amount_usd": Decimal("100.00"), "status": status, "outcome": outcome,
        "refund_amount_usd": Decimal(refund), "resolved_at": ts(updated_at) if status == "resolved" else None,
        "updated_at": ts(updated_at), "load_seq": 1, "line_number": 1,
    }
    row.update(overrides)
    return row


def table(rows: list[dict], schema: dict) -> ibis.Table:
    arrow_schema = ibis.schema(schema).to_pyarrow()
    return ibis.memtable(pa.Table.from_pylist([{k: r[k] for k in schema} for r in rows], schema=arrow_schema))


def staging(orders=(), shipments=(), disputes=()) -> tuple[ibis.Table, ibis.Table, ibis.Table]:
    return (table(list(orders), ORDER_SCHEMA), table(list(shipments), SHIPMENT_SCHEMA),
            table(list(disputes), DISPUTE_SCHEMA))
