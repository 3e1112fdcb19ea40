"""The landing-zone contract (shared/CONTRACT.md section 1), as data.

Ingestion, validation and the generator all read the sources' columns from here, so the
contract is written down once. Column order is the contract's order.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCEPTED_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".jsonl")

ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "completed", "cancelled")
CANCELLED_BY = ("buyer", "supplier", "platform")
DISPUTE_REASONS = (
    "not_received", "late_delivery", "not_as_described", "quality", "quantity_short",
    "damaged", "other",
)
DISPUTE_STATUSES = ("open", "escalated", "resolved", "withdrawn")
DISPUTE_OUTCOMES = (
    "buyer_full_refund", "buyer_partial_refund", "replacement", "supplier_favored", "withdrawn",
)


@dataclass(frozen=True)
class Column:
    """One contract column: `kind` is string, timestamp, date, decimal, boolean or enum."""

    name: str
    kind: str
    required: bool = False
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """One landing source: its folder name, key column and columns in contract order."""

    name: str
    key: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


SUPPLIERS = Source("suppliers", "supplier_id", (
    Column("supplier_id", "string", required=True),
    Column("supplier_name", "string"),
    Column("country_code", "string"),
    Column("main_category", "string"),
    Column("registered_at", "timestamp", required=True),
    Column("updated_at", "timestamp", required=True),
))

ORDERS = Source("orders", "order_id", (
    Column("order_id", "string", required=True),
    Column("supplier_id", "string", required=True),
    Column("buyer_id", "string", required=True),
    Column("buyer_country_code", "string"),
    Column("category", "string"),
    Column("placed_at", "timestamp", required=True),
    Column("order_amount_usd", "decimal", required=True),
    Column("promised_ship_by", "date", required=True),
    Column("promised_delivery_by", "date"),
    Column("is_trade_assured", "boolean"),
    Column("status", "enum", required=True, values=ORDER_STATUSES),
    Column("cancelled_by", "enum", values=CANCELLED_BY),
    Column("updated_at", "timestamp", required=True),
))

SHIPMENTS = Source("shipments", "shipment_id", (
    Column("shipment_id", "string", required=True),
    Column("order_id", "string", required=True),
    Column("shipped_at", "timestamp"),
    Column("delivered_at", "timestamp"),
    Column("carrier", "string"),
    Column("has_valid_tracking", "boolean"),
    Column("updated_at", "timestamp", required=True),
))

DISPUTES = Source("disputes", "dispute_id", (
    Column("dispute_id", "string", required=True),
    Column("order_id", "string", required=True),
    Column("opened_at", "timestamp", required=True),
    Column("reason", "enum", required=True, values=DISPUTE_REASONS),
    Column("claim_amount_usd", "decimal"),
    Column("status", "enum", required=True, values=DISPUTE_STATUSES),
    Column("outcome", "enum", values=DISPUTE_OUTCOMES),
    Column("refund_amount_usd", "decimal"),
    Column("resolved_at", "timestamp"),
    Column("updated_at", "timestamp", required=True),
))

SOURCES: dict[str, Source] = {s.name: s for s in (SUPPLIERS, ORDERS, SHIPMENTS, DISPUTES)}


def accepted_format(file_name: str) -> str | None:
    """The format of a landing file from its name (`csv`, `csv.gz`, ...), or None if not accepted."""
    lowered = file_name.lower()
    for suffix in sorted(ACCEPTED_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return suffix.lstrip(".")
    return None
