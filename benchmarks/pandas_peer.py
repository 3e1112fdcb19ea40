"""The peer: the supplier metrics as an analyst would first write them, in plain pandas.

Grain of `supplier_metrics`: one row per known supplier x metric x window, the columns of
scores.supplier_metrics (raw and buyer-capped numerator and denominator, buyers, top buyer
share, rate, target, status); of `median_days_late`: one row per supplier with a late
delivery in the long window.

Same definitions as models/outcomes.py, models/metrics.py and models/scorecard.py (each
outcome decided from the versions known at its due moment and filed on its due day, the
buyer cap's water level), and the same config (windows, cap, targets), computed in one
pass over every staged version: load the tables into frames, merge, group by. No facts,
no incremental state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

BUYER_FAVOURED = ("buyer_full_refund", "buyer_partial_refund", "replacement")
DECIDED = ("resolved", "withdrawn")
DAY = pd.Timedelta(days=1)
EVIDENCE = ["raw_numerator", "raw_denominator", "numerator", "denominator", "buyers"]
LEVEL_SLACK = 1e-9  # as models/metrics.py: a level that equals a buyer's evidence survives rounding

METRICS = (  # name, day column, numerator, denominator (None: the order counts 1), higher is better
    ("orders", "placed_on", None, None, False),
    ("gmv_usd", "placed_on", "order_amount_usd", None, False),
    ("late_shipment", "ship_due_on", "is_shipped_late", None, False),
    ("on_time_delivery", "delivery_due_on", "is_delivered_on_time", None, True),
    ("valid_tracking", "nd_due_on", "has_valid_tracking", None, True),
    ("non_delivery", "matured_on", "is_non_delivery", None, False),
    ("supplier_cancellation", "matured_on", "is_supplier_cancellation", None, False),
    ("dispute", "matured_on", "has_dispute", None, False),
    ("dispute_loss", "matured_on", "is_dispute_lost", "has_decided_dispute", False),
    ("refund_share", "matured_on", "refund_usd", "order_amount_usd", False),
    ("order_defect", "matured_on", "is_defect", None, False),
)


def read_staged(warehouse: Path) -> dict[str, pd.DataFrame]:
    """Every staged version of suppliers, orders, shipments and disputes, as pandas frames."""
    queries = {
        "suppliers": "SELECT supplier_id, updated_at FROM staging.suppliers",
        "orders": "SELECT order_id, supplier_id, buyer_id, placed_at, order_amount_usd::DOUBLE AS order_amount_usd, "
                  "promised_ship_by, promised_delivery_by, status, cancelled_by, updated_at, load_seq, line_number "
                  "FROM staging.orders",
        "shipments": "SELECT order_id, shipment_id, shipped_at, delivered_at, has_valid_tracking, updated_at "
                     "FROM staging.shipments",
        "disputes": "SELECT order_id, dispute_id, opened_at, reason, status, outcome, "
                    "refund_amount_usd::DOUBLE AS refund_amount_usd, updated_at FROM staging.disputes",
    }
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        staged = {name: con.execute(sql).df() for name, sql in queries.items()}
    finally:
        con.close()
    for column in ("promised_ship_by", "promised_delivery_by"):
        staged["orders"][column] = pd.to_datetime(staged["orders"][column])
    return staged


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
    rows = rows.assign(shipped=rows.shipped_at < rows[cut], delivered=rows.delivered_at < rows[cut],
                       tracked=rows.has_valid_tracking.fillna(False).astype(int))
    per = rows.groupby(["order_id", "shipment_id"]).agg(
        shipped=("shipped", "any"), delivered=("delivered", "any"), tracked=("tracked", "min"),
        delivered_at=("delivered_at", "min"))
    per = per.groupby("order_id").agg(n=("shipped", "size"), shipped=("shipped", "sum"),
                                      delivered=("delivered", "sum"), tracked=("tracked", "sum"),
                                      last_delivered_at=("delivered_at", "max"))
    return per.add_prefix(f"{prefix}_").reset_index()


def _disputes(placed: pd.DataFrame, disputes: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    rows = disputes[disputes.updated_at < end].merge(placed[["order_id", "maturity_due_at"]], on="order_id")
    lost = rows.outcome.isin(BUYER_FAVOURED)
    rows = rows.assign(decided_at=rows.updated_at.where(rows.status.isin(DECIDED)), lost=lost,
                       lost_nr=lost & (rows.reason == "not_received"),
                       decided=rows.outcome.notna() & (rows.outcome != "withdrawn"),
                       refund_usd=rows.refund_amount_usd.where(lost, 0.0))
    per = rows.groupby(["order_id", "dispute_id"]).agg(
        opened_at=("opened_at", "min"), decided_at=("decided_at", "min"), lost=("lost", "any"),
        lost_nr=("lost_nr", "any"), decided=("decided", "any"), refund_usd=("refund_usd", "max"),
        maturity_due_at=("maturity_due_at", "max")).reset_index()
    per = per[per.opened_at < per.maturity_due_at].assign(undecided=lambda p: p.decided_at.isna())
    return per.groupby("order_id").agg(
        disputes=("dispute_id", "size"), undecided=("undecided", "sum"),
        last_decided_at=("decided_at", "max"), any_lost=("lost", "any"), lost_nr=("lost_nr", "any"),
        any_decided=("decided", "any"), refund_usd=("refund_usd", "sum")).reset_index()


def _decide(t: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    def cancelled_before(moment):
        return t.cancelled_at.notna() & (t.cancelled_at < moment)

    def all_delivered(prefix):
        return (t[f"{prefix}_n"].fillna(0) > 0) & (t[f"{prefix}_delivered"] == t[f"{prefix}_n"])

    def flag(column):
        return t[column].fillna(False).astype(bool)

    is_cancelled = cancelled_before(t.maturity_due_at)
    matured_at = t.maturity_due_at.where(t.last_decided_at.isna() | (t.last_decided_at < t.maturity_due_at),
                                         t.last_decided_at)
    matured_at = matured_at.where(t.undecided.fillna(0) == 0, pd.NaT)
    matured_at = t.cancelled_at.where(is_cancelled, matured_at)
    matured = matured_at.notna() & (matured_at <= end)
    ship_due = (t.ship_due_at <= end) & ~cancelled_before(t.ship_due_at)
    delivery_due = t.promised_delivery_by.notna() & (t.delivery_due_at <= end) & ~cancelled_before(t.delivery_due_at)
    nd_due = (t.nd_due_at <= end) & ~cancelled_before(t.nd_due_at)
    supplier_cancelled = is_cancelled & (t.cancelled_by_at == "supplier")
    non_delivery = ~is_cancelled & (~all_delivered("nd") | flag("lost_nr"))
    days_late = (t.nd_last_delivered_at - t.delivery_due_at).dt.total_seconds() / 86400.0
    return pd.DataFrame({
        "supplier_id": t.supplier_id, "buyer_id": t.buyer_id, "order_amount_usd": t.order_amount_usd.fillna(0.0),
        "placed_on": t.placed_at.dt.normalize(), "ship_due_on": t.promised_ship_by,
        "delivery_due_on": t.promised_delivery_by, "nd_due_on": t.nd_due_at - DAY,
        "matured_on": (matured_at - pd.Timedelta(microseconds=1)).dt.normalize().where(matured),
        "is_shipped_late": (~(t.ship_shipped.fillna(0) > 0)).astype(float).where(ship_due),
        "is_delivered_on_time": all_delivered("delivery").astype(float).where(delivery_due),
        "has_valid_tracking": (t.nd_tracked == t.nd_n).astype(float).where(nd_due & (t.nd_n.fillna(0) > 0)),
        "days_late": days_late.where(nd_due & all_delivered("nd") & (days_late > 0)),
        "is_supplier_cancellation": supplier_cancelled.astype(float).where(matured),
        "is_non_delivery": non_delivery.astype(float).where(matured),
        "has_dispute": (t.disputes.fillna(0) > 0).astype(float).where(matured),
        "has_decided_dispute": flag("any_decided").astype(float).where(matured),
        "is_dispute_lost": flag("any_lost").astype(float).where(matured),
        "refund_usd": t.refund_usd.fillna(0.0).where(matured),
        "is_defect": (supplier_cancelled | non_delivery | flag("any_lost")).astype(float).where(matured),
    })


def water_level(denominators: np.ndarray, share: float, min_orders: float) -> float:
    """The most one buyer's evidence may count (NaN: no cap needed): the level m at which no
    buyer holds more than `share` of the capped total, never below min_orders."""
    d = np.sort(denominators)[::-1]
    total = d.sum()
    if d[0] <= share * total:
        return np.nan
    k = np.arange(1, len(d) + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = share * (total - np.cumsum(d)) / (1 - share * k)
    next_d = np.append(d[1:], 0.0)
    ok = (share * k < 1) & (m <= d * (1 + LEVEL_SLACK)) & (m >= next_d * (1 - LEVEL_SLACK)) & (m > 0)
    return max(m[ok].min() if ok.any() else 0.0, min_orders)


def _in_window(outcomes: pd.DataFrame, day: str, as_of: dt.date, window_days: int) -> pd.DataFrame:
    last = pd.Timestamp(as_of)
    return outcomes[outcomes[day].between(last - pd.Timedelta(days=window_days - 1), last)]


def window_metrics(outcomes: pd.DataFrame, as_of: dt.date, window_days: int, cap) -> pd.DataFrame:
    """Per supplier x metric over the window: raw and buyer-capped evidence, buyers, top buyer share."""
    frames = []
    for name, day, numerator, denominator, _ in METRICS:
        rows = _in_window(outcomes, day, as_of, window_days)
        if numerator is not None:
            rows = rows[rows[numerator].notna()]
        frames.append(pd.DataFrame({
            "supplier_id": rows.supplier_id, "buyer_id": rows.buyer_id, "metric": name,
            "numerator": 1.0 if numerator is None else rows[numerator].astype(float),
            "denominator": 1.0 if denominator is None else rows[denominator].fillna(0.0).astype(float)}))
    per_buyer = pd.concat(frames).groupby(["supplier_id", "metric", "buyer_id"], as_index=False).sum()
    levels = per_buyer.groupby(["supplier_id", "metric"]).denominator.apply(
        lambda d: water_level(d.to_numpy(), cap.share, cap.min_orders)).rename("level").reset_index()
    per_buyer = per_buyer.merge(levels, on=["supplier_id", "metric"])
    weight = np.where(per_buyer.level.isna() | (per_buyer.denominator <= per_buyer.level), 1.0,
                      per_buyer.level / per_buyer.denominator)
    per_buyer = per_buyer.assign(capped_numerator=per_buyer.numerator * weight,
                                 capped_denominator=per_buyer.denominator * weight)
    metrics = per_buyer.groupby(["supplier_id", "metric"]).agg(
        raw_numerator=("numerator", "sum"), raw_denominator=("denominator", "sum"),
        numerator=("capped_numerator", "sum"), denominator=("capped_denominator", "sum"),
        buyers=("buyer_id", "nunique"), top_denominator=("denominator", "max")).reset_index()
    metrics["top_buyer_share"] = (metrics.top_denominator / metrics.raw_denominator).where(metrics.raw_denominator > 0)
    return metrics.drop(columns="top_denominator")


def supplier_metrics(staged: dict[str, pd.DataFrame], as_of: dt.date,
                     scoring) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(supplier_metrics, median_days_late) as of as_of, with `scoring` the config's scoring section."""
    outcomes = order_outcomes(staged["orders"], staged["shipments"], staged["disputes"], as_of)
    suppliers = staged["suppliers"]
    known = suppliers[suppliers.updated_at < pd.Timestamp(as_of) + DAY].supplier_id.drop_duplicates()
    grid = pd.MultiIndex.from_product([known, [m[0] for m in METRICS]], names=["supplier_id", "metric"])
    grid = grid.to_frame(index=False)
    windows = []
    for days in (scoring.long_window_days, scoring.short_window_days):
        found = window_metrics(outcomes, as_of, days, scoring.buyer_cap)
        complete = grid.merge(found, on=["supplier_id", "metric"], how="left")
        complete[EVIDENCE] = complete[EVIDENCE].fillna(0)  # a known supplier without evidence: zeros
        windows.append(complete.assign(window_days=days, as_of_date=as_of))
    metrics = pd.concat(windows, ignore_index=True)
    metrics["buyers"] = metrics.buyers.astype("int64")
    metrics["rate"] = (metrics.raw_numerator / metrics.raw_denominator).where(metrics.raw_denominator > 0)
    metrics["target"] = metrics.metric.map(scoring.targets).astype(float)
    higher = metrics.metric.isin([m[0] for m in METRICS if m[4]])
    meets = np.where(higher, metrics.rate >= metrics.target, metrics.rate <= metrics.target)
    metrics["status"] = np.where(metrics.rate.isna(), "no_evidence", np.where(
        metrics.target.isna(), None, np.where(meets, "meets", "misses")))
    return metrics, _median_days_late(outcomes, as_of, scoring.long_window_days)


def _median_days_late(outcomes: pd.DataFrame, as_of: dt.date, window_days: int) -> pd.DataFrame:
    late = _in_window(outcomes, "nd_due_on", as_of, window_days)
    late = late[late.days_late.notna()]
    return late.groupby("supplier_id").days_late.median().rename("median_days_late").reset_index()


def medians_file(peer_file: Path) -> Path:
    """Where the peer's median_days_late is written, next to its metrics file."""
    return Path(peer_file).with_name(Path(peer_file).stem + "_median_days_late.parquet")
