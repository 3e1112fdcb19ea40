"""The peer: the supplier metrics as an analyst would first write them, in plain pandas.

Grain of `supplier_metrics`: one row per supplier x metric over the `window_days` days
ending on the as-of date, with raw_numerator, raw_denominator and buyers (distinct buyers
with evidence), for orders, gmv_usd, late_shipment, on_time_delivery and order_defect.

Same definitions as models/outcomes.py (shared/CONTRACT.md section 2, each outcome
decided from the versions known at its due moment and filed on its due day), computed in
one pass over every staged version: load the tables into frames, merge, group by. No
facts, no incremental state, no buyer cap (raw figures only).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

BUYER_FAVOURED = ("buyer_full_refund", "buyer_partial_refund", "replacement")
DECIDED = ("resolved", "withdrawn")
DAY = pd.Timedelta(days=1)


def read_staged(warehouse: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every staged version of orders, shipments and disputes, as pandas frames."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        orders = con.execute("SELECT order_id, supplier_id, buyer_id, placed_at, order_amount_usd::DOUBLE AS "
                             "order_amount_usd, promised_ship_by, promised_delivery_by, status, cancelled_by, "
                             "updated_at, load_seq, line_number FROM staging.orders").df()
        shipments = con.execute("SELECT order_id, shipment_id, shipped_at, delivered_at, updated_at "
                                "FROM staging.shipments").df()
        disputes = con.execute("SELECT order_id, dispute_id, opened_at, reason, status, outcome, updated_at "
                               "FROM staging.disputes").df()
    finally:
        con.close()
    for frame, columns in ((orders, ("promised_ship_by", "promised_delivery_by")),):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column])
    return orders, shipments, disputes


def order_outcomes(orders: pd.DataFrame, shipments: pd.DataFrame, disputes: pd.DataFrame,
                   as_of: dt.date) -> pd.DataFrame:
    """One row per order placed by as_of, with its due days and decided outcomes."""
    end = pd.Timestamp(as_of) + DAY
    known = orders[orders.updated_at < end].sort_values(["updated_at", "load_seq", "line_number"])
    placed = known.drop_duplicates("order_id").copy()
    placed = placed[placed.placed_at < end]
    placed["ship_due_at"] = placed.promised_ship_by + DAY
    placed["delivery_due_at"] = (placed.promised_delivery_by + DAY).fillna(placed.ship_due_at + pd.Timedelta(days=15))
    placed["nd_due_at"] = placed.delivery_due_at + pd.Timedelta(days=30)
    placed["maturity_due_at"] = placed.delivery_due_at + pd.Timedelta(days=37)

    cancelled = known[known.status == "cancelled"].drop_duplicates("order_id")
    placed = placed.merge(cancelled[["order_id", "updated_at", "cancelled_by"]].rename(
        columns={"updated_at": "cancelled_at", "cancelled_by": "cancelled_by_at"}), on="order_id", how="left")
    for cut, prefix in (("ship_due_at", "ship"), ("delivery_due_at", "delivery"), ("nd_due_at", "nd")):
        placed = placed.merge(_shipments_by(placed, shipments, cut, prefix), on="order_id", how="left")
    placed = placed.merge(_disputes(placed, disputes, end), on="order_id", how="left")
    return _decide(placed, end)


def _shipments_by(placed: pd.DataFrame, shipments: pd.DataFrame, cut: str, prefix: str) -> pd.DataFrame:
    rows = shipments.merge(placed[["order_id", cut]], on="order_id")
    rows = rows[rows.updated_at < rows[cut]]
    rows = rows.assign(shipped=rows.shipped_at < rows[cut], delivered=rows.delivered_at < rows[cut])
    per = rows.groupby(["order_id", "shipment_id"]).agg(shipped=("shipped", "any"), delivered=("delivered", "any"))
    per = per.groupby("order_id").agg(n=("shipped", "size"), shipped=("shipped", "sum"),
                                      delivered=("delivered", "sum"))
    return per.add_prefix(f"{prefix}_").reset_index()


def _disputes(placed: pd.DataFrame, disputes: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    rows = disputes[disputes.updated_at < end].merge(placed[["order_id", "maturity_due_at"]], on="order_id")
    lost = rows.outcome.isin(BUYER_FAVOURED)
    rows = rows.assign(decided_at=rows.updated_at.where(rows.status.isin(DECIDED)), lost=lost,
                       lost_nr=lost & (rows.reason == "not_received"))
    per = rows.groupby(["order_id", "dispute_id"]).agg(
        opened_at=("opened_at", "min"), decided_at=("decided_at", "min"), lost=("lost", "any"),
        lost_nr=("lost_nr", "any"), maturity_due_at=("maturity_due_at", "max")).reset_index()
    per = per[per.opened_at < per.maturity_due_at]
    return per.groupby("order_id").agg(
        disputes=("dispute_id", "size"), undecided=("decided_at", lambda s: s.isna().sum()),
        last_decided_at=("decided_at", "max"), any_lost=("lost", "any"), lost_nr=("lost_nr", "any")).reset_index()


def _decide(t: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    def cancelled_before(moment):
        return t.cancelled_at.notna() & (t.cancelled_at < moment)

    def all_delivered(prefix):
        return (t[f"{prefix}_n"].fillna(0) > 0) & (t[f"{prefix}_delivered"] == t[f"{prefix}_n"])

    is_cancelled = cancelled_before(t.maturity_due_at)
    matured_at = t.maturity_due_at.where(t.last_decided_at.isna() | (t.last_decided_at < t.maturity_due_at),
                                         t.last_decided_at)
    matured_at = matured_at.where(t.undecided.fillna(0) == 0, pd.NaT)
    matured_at = t.cancelled_at.where(is_cancelled, matured_at)
    matured = matured_at.notna() & (matured_at <= end)
    ship_due = (t.ship_due_at <= end) & ~cancelled_before(t.ship_due_at)
    delivery_due = t.promised_delivery_by.notna() & (t.delivery_due_at <= end) & ~cancelled_before(t.delivery_due_at)
    non_delivery = ~is_cancelled & (~all_delivered("nd") | t.lost_nr.fillna(False).astype(bool))
    defect = (is_cancelled & (t.cancelled_by_at == "supplier")) | non_delivery | t.any_lost.fillna(False).astype(bool)
    return pd.DataFrame({
        "supplier_id": t.supplier_id, "buyer_id": t.buyer_id, "order_amount_usd": t.order_amount_usd.fillna(0.0),
        "placed_on": t.placed_at.dt.normalize(), "ship_due_on": t.promised_ship_by,
        "delivery_due_on": t.promised_delivery_by,
        "matured_on": (matured_at - pd.Timedelta(microseconds=1)).dt.normalize().where(matured),
        "is_shipped_late": (~(t.ship_shipped.fillna(0) > 0)).astype(float).where(ship_due),
        "is_delivered_on_time": all_delivered("delivery").astype(float).where(delivery_due),
        "is_defect": defect.astype(float).where(matured),
    })


METRICS = (  # name, day column, numerator (None: count the order)
    ("orders", "placed_on", None),
    ("gmv_usd", "placed_on", "order_amount_usd"),
    ("late_shipment", "ship_due_on", "is_shipped_late"),
    ("on_time_delivery", "delivery_due_on", "is_delivered_on_time"),
    ("order_defect", "matured_on", "is_defect"),
)


def supplier_metrics(orders, shipments, disputes, as_of: dt.date, window_days: int = 365) -> pd.DataFrame:
    """Per supplier x metric over the window: raw numerator, raw denominator, distinct buyers."""
    outcomes = order_outcomes(orders, shipments, disputes, as_of)
    last, first = pd.Timestamp(as_of), pd.Timestamp(as_of) - pd.Timedelta(days=window_days - 1)
    frames = []
    for name, day, numerator in METRICS:
        rows = outcomes[(outcomes[day] >= first) & (outcomes[day] <= last)]
        if numerator is not None:
            rows = rows[rows[numerator].notna()]
        rows = rows.assign(num=1.0 if numerator is None else rows[numerator])
        per = rows.groupby("supplier_id").agg(raw_numerator=("num", "sum"), raw_denominator=("num", "size"),
                                              buyers=("buyer_id", "nunique")).reset_index()
        frames.append(per.assign(metric=name))
    metrics = pd.concat(frames, ignore_index=True)
    metrics["raw_denominator"] = metrics.raw_denominator.astype(float)
    return metrics[["supplier_id", "metric", "raw_numerator", "raw_denominator", "buyers"]]
