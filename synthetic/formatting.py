"""Landed rows as contract text: every column a string (null where the contract allows it).

CONTRACT.md section 1: timestamps ISO-8601 UTC (2024-03-05T10:22:31Z), dates YYYY-MM-DD,
money with exactly 2 decimals, booleans true/false. Keeping every column a string in every
format (csv, parquet, jsonl) lets a dirty row carry "abc" in an amount column, and gives
the ingester one casting path whatever the format.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from pipelines.contract import CANCELLED_BY, DISPUTE_OUTCOMES, DISPUTE_REASONS, SOURCES
from synthetic import cohorts
from synthetic.dirty import corrupt
from synthetic.marketplace import ORDER_STEPS, Marketplace
from synthetic.suppliers import MAX_RECORD_UPDATES
from synthetic.text import label, record_id

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DISPUTE_STEP_STATUS = ("open", "escalated")  # step 2 (decided) takes its status from the outcome


class RowFormatter:
    """Turns landed rows (key, step, updated_t, dirty_rule, ...) of a source into contract rows."""

    def __init__(self, world: Marketplace) -> None:
        self._world = world
        self._epoch_day = (world.params.start - date(1970, 1, 1)).days
        self._epoch_s = self._epoch_day * cohorts.SECONDS_PER_DAY
        self._arrays: dict[str, dict[str, np.ndarray]] = {}
        self._supplier_names = pl.Series(world.supplier_names, dtype=pl.String)

    def format(self, source: str, rows: pl.DataFrame) -> pl.DataFrame:
        """Contract columns of `rows`, in contract order, plus batch_day; same grain as `rows`."""
        frame = getattr(self, f"_{source}")(rows)
        frame = corrupt(frame.with_columns(rows.select("dirty_rule", "dirty_pick")), source)
        return frame.select("batch_day", *SOURCES[source].column_names)

    def _columns(self, name: str, keys: np.ndarray, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Columns of one of the world's frames, gathered at `keys` (numpy arrays cached once)."""
        cache = self._arrays.setdefault(name, {})
        frame = getattr(self._world, name)
        for column in columns:
            if column not in cache:
                cache[column] = frame[column].to_numpy()
        return {column: cache[column][keys] for column in columns}

    def _suppliers(self, rows: pl.DataFrame) -> pl.DataFrame:
        keys = rows["key"].to_numpy()
        got = self._columns("suppliers", keys, ("category", "country", "registered_t"))
        version = keys.astype(np.int64) * (1 + MAX_RECORD_UPDATES) + rows["step"].to_numpy()
        return rows.with_columns(**got).select(
            "batch_day",
            supplier_id=record_id("supplier", pl.col("key")),
            supplier_name=self._supplier_names.gather(version),
            country_code=label("country", cohorts.COUNTRIES),
            main_category=label("category", cohorts.CATEGORIES),
            registered_at=self._timestamp("registered_t"),
            updated_at=self._timestamp("updated_t"),
        )

    def _orders(self, rows: pl.DataFrame) -> pl.DataFrame:
        got = self._columns("orders", rows["key"].to_numpy(), (
            "supplier_idx", "buyer_idx", "buyer_country", "category", "placed_t", "amount_cents",
            "ship_by_day", "delivery_by_day", "is_trade_assured", "cancelled_by"))
        status = label("step", ORDER_STEPS)
        return rows.with_columns(**got).select(
            "batch_day",
            order_id=record_id("order", pl.col("key")),
            supplier_id=record_id("supplier", pl.col("supplier_idx")),
            buyer_id=record_id("buyer", pl.col("buyer_idx")),
            buyer_country_code=label("buyer_country", cohorts.COUNTRIES),
            category=label("category", cohorts.CATEGORIES),
            placed_at=self._timestamp("placed_t"),
            order_amount_usd=_money("amount_cents"),
            promised_ship_by=self._date("ship_by_day"),
            promised_delivery_by=self._date("delivery_by_day"),
            is_trade_assured=_boolean("is_trade_assured"),
            status=status,
            cancelled_by=pl.when(status == "cancelled").then(label("cancelled_by", CANCELLED_BY)),
            updated_at=self._timestamp("updated_t"),
        )

    def _shipments(self, rows: pl.DataFrame) -> pl.DataFrame:
        got = self._columns("shipments", rows["key"].to_numpy(), (
            "order_idx", "shipped_t", "delivered_t", "carrier", "has_valid_tracking"))
        return rows.with_columns(**got).select(
            "batch_day",
            shipment_id=record_id("shipment", pl.col("key")),
            order_id=record_id("order", pl.col("order_idx")),
            shipped_at=self._timestamp("shipped_t"),
            delivered_at=pl.when(pl.col("step") == 1).then(self._timestamp("delivered_t")),
            carrier=label("carrier", cohorts.CARRIERS),
            has_valid_tracking=_boolean("has_valid_tracking"),
            updated_at=self._timestamp("updated_t"),
        )

    def _disputes(self, rows: pl.DataFrame) -> pl.DataFrame:
        got = self._columns("disputes", rows["key"].to_numpy(), (
            "order_idx", "opened_t", "decided_t", "reason", "outcome", "claim_cents", "refund_cents"))
        decided = pl.col("step") == 2
        outcome = label("outcome", DISPUTE_OUTCOMES)
        return rows.with_columns(**got).select(
            "batch_day",
            dispute_id=record_id("dispute", pl.col("key")),
            order_id=record_id("order", pl.col("order_idx")),
            opened_at=self._timestamp("opened_t"),
            reason=label("reason", DISPUTE_REASONS),
            claim_amount_usd=_money("claim_cents"),
            status=pl.when(decided).then(pl.when(outcome == "withdrawn").then(pl.lit("withdrawn"))
                                         .otherwise(pl.lit("resolved")))
            .otherwise(label("step", _DISPUTE_STEP_STATUS)),
            outcome=pl.when(decided).then(outcome),
            refund_amount_usd=pl.when(decided & (pl.col("refund_cents") >= 0)).then(_money("refund_cents")),
            resolved_at=pl.when(decided).then(self._timestamp("decided_t")),
            updated_at=self._timestamp("updated_t"),
        )

    def _timestamp(self, column: str) -> pl.Expr:
        seconds = pl.col(column).cast(pl.Int64) + self._epoch_s
        return pl.from_epoch(seconds, time_unit="s").dt.strftime(TIMESTAMP_FORMAT)

    def _date(self, column: str) -> pl.Expr:
        day = pl.col(column)
        return pl.when(day >= 0).then((day + self._epoch_day).cast(pl.Date).cast(pl.String))


def _money(column: str) -> pl.Expr:
    """Cents as a decimal string with exactly 2 decimals."""
    return (pl.col(column).cast(pl.Decimal(18, 2)) / 100).cast(pl.String)


def _boolean(column: str) -> pl.Expr:
    return pl.when(pl.col(column)).then(pl.lit("true")).otherwise(pl.lit("false"))
