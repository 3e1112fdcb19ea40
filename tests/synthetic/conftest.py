"""One small generated marketplace shared by the generator's tests (about a second to make)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from synthetic import MarketplaceParams, write_marketplace
from tests.synthetic.generator_landing import end_of_day, latest_versions, read_source, timestamp

LOST = ["buyer_full_refund", "buyer_partial_refund", "replacement"]

# Spans the year-end holiday, with every kind of mess switched on and turned up.
SMALL = MarketplaceParams(
    suppliers=60, days=150, start=date(2023, 10, 1), seed=7, dirty_rate=0.02,
    duplicate_rate=0.02, late_arrival_rate=0.05, fraud_ring_share=0.05,
)


@dataclass(frozen=True)
class Generated:
    params: MarketplaceParams
    data_dir: Path
    summary: dict

    def truth(self, table: str) -> pl.DataFrame:
        return pl.read_parquet(self.data_dir / "truth" / f"{table}.parquet")


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Generated:
    data_dir = tmp_path_factory.mktemp("marketplace")
    return Generated(SMALL, data_dir, write_marketplace(data_dir, SMALL))


@pytest.fixture(scope="session")
def recomputed(generated) -> pl.DataFrame:
    """Truth orders joined to what their landed records say at the end of the period.

    defect_now is CONTRACT.md section 2's order defect, from the current version of every
    record (rows failing the contract's typing dropped, as the ingester quarantines them).
    """
    as_of = datetime.combine(generated.params.start + timedelta(days=generated.params.days), time(),
                             tzinfo=timezone.utc)
    orders = latest_versions(read_source(generated.data_dir, "orders"), "orders")
    shipments = latest_versions(read_source(generated.data_dir, "shipments"), "shipments")
    disputes = latest_versions(read_source(generated.data_dir, "disputes"), "disputes")
    parcels = shipments.group_by("order_id").agg(
        parcels=pl.len(), arrived=pl.col("delivered_at").is_not_null().sum(),
        first_shipped=timestamp("shipped_at").min(), last_delivered=timestamp("delivered_at").max())
    claims = disputes.group_by("order_id").agg(
        disputes=pl.len(),
        lost=pl.col("outcome").is_in(LOST).any(),
        not_received_lost=(pl.col("outcome").is_in(LOST) & (pl.col("reason") == "not_received")).any())
    frame = orders.join(parcels, on="order_id", how="left").join(claims, on="order_id", how="left")
    limit = pl.when(pl.col("promised_delivery_by").is_not_null()).then(end_of_day("promised_delivery_by", 30)) \
        .otherwise(end_of_day("promised_ship_by", 45))
    delivered_in_time = (pl.col("arrived") == pl.col("parcels")) & (pl.col("last_delivered") < limit)
    cancelled = pl.col("status") == "cancelled"
    non_delivery = (~cancelled & (limit <= as_of) & ~delivered_in_time.fill_null(False)) \
        | pl.col("not_received_lost").fill_null(False)
    supplier_cancel = cancelled & (pl.col("cancelled_by") == "supplier")
    return frame.with_columns(
        defect_now=supplier_cancel | non_delivery | pl.col("lost").fill_null(False),
        on_time_ship=pl.col("first_shipped") < end_of_day("promised_ship_by"),
        on_time_delivery=delivered_in_time & (pl.col("last_delivered") < end_of_day("promised_delivery_by")),
    ).join(pl.read_parquet(generated.data_dir / "truth" / "orders.parquet"), on="order_id", how="full",
           coalesce=True)
