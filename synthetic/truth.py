"""Ground truth in <data_dir>/truth/: what really happened, written apart from the landing zone.

The pipeline never reads these files; tests, notebooks and benchmarks compare its
estimates with them.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from synthetic import cohorts
from synthetic.marketplace import Marketplace, active_supplier_days
from synthetic.outcomes import OUTCOMES
from synthetic.suppliers import reliability
from synthetic.text import label, record_id


def _epoch_day(world: Marketplace) -> int:
    return (world.params.start - date(1970, 1, 1)).days


def _timestamp(seconds: pl.Expr, world: Marketplace) -> pl.Expr:
    """UTC datetime from seconds since the start."""
    epoch_s = _epoch_day(world) * cohorts.SECONDS_PER_DAY
    return pl.from_epoch(seconds.cast(pl.Int64) + epoch_s, time_unit="s").dt.replace_time_zone("UTC")


def supplier_truth(world: Marketplace) -> pl.DataFrame:
    """Suppliers as they really are; grain: one row per supplier."""
    s = world.suppliers
    reliability_path = reliability(world.defect_logit)
    return s.select(
        "supplier_id",
        category=label("category", cohorts.CATEGORIES),
        country_code=label("country", cohorts.COUNTRIES),
        dynamics=label("dynamics", cohorts.DYNAMICS),
        registered_at=_timestamp(pl.col("registered_t"), world),
        is_fraud_ring="is_fraud_ring",
        volume_multiplier="volume",
        change_starts_on=pl.when(pl.col("dynamics") > 0)
        .then((pl.col("change_start_day") + _epoch_day(world)).cast(pl.Date)),
        change_length_days="change_length_days",
        latent_reliability_at_start=pl.Series(reliability_path[:, 0].astype(np.float64)),
        latent_reliability=pl.Series(reliability_path[:, -1].astype(np.float64)),
    )


def supplier_day_truth(world: Marketplace) -> pl.DataFrame:
    """Latent reliability path; grain: one row per supplier per day from registration (or the start)."""
    supplier, day = active_supplier_days(world)
    return pl.DataFrame({
        "supplier_id": world.suppliers["supplier_id"].gather(supplier),
        "date": pl.Series(day + _epoch_day(world), dtype=pl.Int32).cast(pl.Date),
        "latent_reliability": reliability(world.defect_logit[supplier, day]).astype(np.float64),
    })


def order_truth(world: Marketplace) -> pl.DataFrame:
    """Orders as they really are; grain: one row per order placed in the period.

    settled_at is when the outcome became final (may lie after the period: in flight);
    is_settled says it lies inside the period, so the landed records show the outcome.
    """
    o = world.orders
    ids = world.suppliers["supplier_id"]
    return o.select(
        order_id=record_id("order", pl.col("order_idx")),
        supplier_id=ids.gather(o["supplier_idx"]),
        buyer_id=record_id("buyer", pl.col("buyer_idx")),
        placed_at=_timestamp(pl.col("placed_t"), world),
        order_amount_usd=pl.col("amount_cents") / 100,
        is_first_order="is_first_order",
        is_holiday="is_holiday",
        true_defect_probability="true_defect_probability",
        is_defect="is_defect",
        is_fake="is_fake",
        outcome=label("outcome", OUTCOMES),
        settled_at=_timestamp(pl.col("settled_t"), world),
        is_settled=pl.col("settled_t") < world.horizon_t,
    )


def write_truth(world: Marketplace, dirty_rows: pl.DataFrame, truth_dir: Path) -> dict[str, int]:
    """Writes the four truth tables; returns rows per table."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "suppliers": supplier_truth(world),
        "supplier_days": supplier_day_truth(world),
        "orders": order_truth(world),
        "dirty_rows": dirty_rows,
    }
    for name, frame in tables.items():
        frame.write_parquet(truth_dir / f"{name}.parquet", compression="zstd")
    return {name: frame.height for name, frame in tables.items()}
