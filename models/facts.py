"""Supplier daily facts: each order outcome filed under the day it was decided.

Grain of `supplier_day_facts`: one row per order x metric, filed under the day the order's
outcome for that metric was decided, with its supplier and buyer; `numerator` and
`denominator` are that order's. Only `days_late` keeps the order's id (its median needs the
individual values): every reader sums the others by supplier, buyer and day. Summing them
here would buy nothing: a buyer rarely has two outcomes of one supplier decided the same
day (1% fewer rows on the generated 1M-order marketplace), and that sum over ten rows per
order cost a fifth of computing the facts (benchmarks/RESULTS.md).

Because an outcome decided on day d never changes afterwards (models/outcomes.py), the
facts of a day are final once the day is over: a new day adds rows and recomputes no
history, and a window of facts ending on day t is exactly what was known at t.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
from ibis.expr.types import Table


@dataclass(frozen=True)
class Metric:
    """A rate over orders: numerator / denominator, filed on `day_column`.

    `higher_is_better` says which way the supplier wants it to move.
    """

    name: str
    day_column: str
    numerator: str
    denominator: str
    higher_is_better: bool = False


# A boolean outcome counts 1 in the numerator when true; every order whose outcome was
# decided that day counts 1 in the denominator ("one").
METRICS: tuple[Metric, ...] = (
    Metric("orders", "placed_on", "one", "one"),
    Metric("gmv_usd", "placed_on", "order_amount_usd", "one"),
    Metric("late_shipment", "ship_due_on", "is_shipped_late", "one"),
    Metric("on_time_delivery", "delivery_due_on", "is_delivered_on_time", "one", True),
    Metric("valid_tracking", "non_delivery_due_on", "has_valid_tracking", "one", True),
    Metric("non_delivery", "matured_on", "is_non_delivery", "one"),
    Metric("supplier_cancellation", "matured_on", "is_supplier_cancellation", "one"),
    Metric("dispute", "matured_on", "has_dispute", "one"),
    Metric("dispute_loss", "matured_on", "is_dispute_lost", "has_decided_dispute"),
    Metric("refund_share", "matured_on", "refund_usd", "order_amount_usd"),
    Metric("order_defect", "matured_on", "is_defect", "one"),
    Metric("days_late", "non_delivery_due_on", "days_late", "one"),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
BY_NAME = {m.name: m for m in METRICS}


def _amount(outcomes: Table, column: str) -> ibis.Value:
    """A numerator or denominator column as a double; booleans count 1, NULL counts 0."""
    if column == "one":
        return ibis.literal(1.0)
    value = outcomes[column]
    if value.type().is_boolean():
        return value.fill_null(False).cast("float64")
    return value.cast("float64").fill_null(0.0)


def _metric_rows(outcomes: Table, metric: Metric, first_day: dt.date, last_day: dt.date) -> Table:
    day = outcomes[metric.day_column]
    decided = day.notnull() & (day >= first_day) & (day <= last_day)
    if metric.numerator != "one":  # an outcome not decided yet is NULL
        decided &= outcomes[metric.numerator].notnull()
    rows = outcomes.filter(decided)
    return rows.select(
        "supplier_id", "buyer_id", day=rows[metric.day_column].cast("date"),
        metric=ibis.literal(metric.name),
        order_id=rows.order_id if metric.name == "days_late" else ibis.null("string"),
        numerator=_amount(rows, metric.numerator),
        denominator=_amount(rows, metric.denominator),
    )


def supplier_day_facts(outcomes: Table, first_day: dt.date, last_day: dt.date) -> Table:
    """Facts for the days first_day..last_day (inclusive) from order outcomes as of last_day."""
    return ibis.union(*(_metric_rows(outcomes, m, first_day, last_day) for m in METRICS))
