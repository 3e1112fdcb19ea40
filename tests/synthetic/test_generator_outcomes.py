"""The landed records agree with the truth under CONTRACT.md section 2, re-computed here."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from synthetic import MarketplaceParams
from synthetic.marketplace import simulate


def test_settled_orders_show_exactly_their_true_outcome(recomputed):
    settled = recomputed.filter("is_settled")
    assert settled.height > 0.6 * recomputed.height
    assert settled["is_defect"].sum() > 50
    mismatched = settled.filter(pl.col("defect_now") != pl.col("is_defect"))
    assert mismatched.height == 0, mismatched.select("order_id", "outcome", "status", "defect_now").head()


def test_a_healthy_order_never_looks_like_a_defect(recomputed):
    in_flight = recomputed.filter(~pl.col("is_settled"))
    assert in_flight.height > 100
    assert recomputed.filter(pl.col("defect_now") & ~pl.col("is_defect")).height == 0


def test_recent_orders_are_in_flight(recomputed):
    in_flight = recomputed.filter(~pl.col("is_settled"))
    assert in_flight.filter(pl.col("status").is_in(["placed", "paid", "shipped", "delivered"])).height > 50


def test_buyer_cancellations_and_unfounded_disputes_exist_on_healthy_orders(recomputed):
    healthy = recomputed.filter(~pl.col("is_defect") & pl.col("is_settled"))
    assert healthy.filter(pl.col("cancelled_by") == "buyer").height > 10
    assert healthy.filter(pl.col("disputes") > 0).height > 10


def test_order_shapes(recomputed, generated):
    shipped = recomputed.filter(pl.col("parcels").is_not_null())
    assert 0.05 < shipped.select((pl.col("parcels") > 1).mean()).item() < 0.16
    assert 0.08 < recomputed.select(pl.col("promised_delivery_by").is_null().mean()).item() < 0.25
    assert 0.80 < recomputed.select((pl.col("is_trade_assured") == "true").mean()).item() < 0.95
    settled = recomputed.filter(pl.col("is_settled") & pl.col("on_time_ship").is_not_null())
    assert 0.03 < 1 - settled["on_time_ship"].mean() < 0.4


@pytest.fixture(scope="module")
def holiday_world():
    """A bigger marketplace, kept in memory, spanning the year-end holiday."""
    return simulate(MarketplaceParams(suppliers=300, days=150, start=date(2023, 10, 15), seed=11))


def test_the_holiday_brings_more_defects(holiday_world):
    stable = holiday_world.suppliers.filter(pl.col("dynamics") == 0)["supplier_idx"]
    orders = holiday_world.orders.filter(~pl.col("is_fake") & pl.col("supplier_idx").is_in(stable.implode()))
    rates = dict(orders.group_by("is_holiday").agg(pl.col("is_defect").mean()).iter_rows())
    assert rates[True] > rates[False] * 1.25


def test_worse_suppliers_and_the_holiday_ship_and_deliver_later(holiday_world):
    world = holiday_world
    orders = world.orders.filter(~pl.col("is_fake"))
    shipped = world.shipments.group_by("order_idx").agg(pl.col("shipped_t").min(), pl.col("delivered_t").max())
    frame = orders.join(shipped, on="order_idx").filter(pl.col("delivered_t") >= 0).with_columns(
        late_ship=pl.col("shipped_t") >= (pl.col("ship_by_day") + 1) * 86_400,
        transit_days=(pl.col("delivered_t") - pl.col("shipped_t")) / 86_400)
    by_season = frame.group_by("is_holiday").agg(pl.col("late_ship").mean(), pl.col("transit_days").mean())
    holiday, normal = (by_season.filter(pl.col("is_holiday") == flag).row(0, named=True) for flag in (True, False))
    assert holiday["late_ship"] > normal["late_ship"] + 0.03
    assert holiday["transit_days"] > normal["transit_days"] + 1.5
    risk = frame.with_columns(worse=pl.col("true_defect_probability") > pl.col("true_defect_probability").median())
    worse, better = (risk.filter(pl.col("worse") == flag)["late_ship"].mean() for flag in (True, False))
    assert worse > better + 0.02

