"""Point-in-time features of orders for the risk model, and their labels.

Grain of `order_features`: one row per order (placed order, or a supplier's typical
order), with the features known when it was placed. Of `order_labels`: one row per order
matured by the outcomes' as-of date, with `is_defect`.

What an order placed at t, on day d, sees was known before day d began:

- supplier evidence: the daily facts of days <= d-1, summed over each window ending on
  d-1. Facts are final once their day is over (models/outcomes.py), so these sums are
  exactly what a run on day d would have had. Next to the facts, events filed on the day
  their record version became known (`updated_at`): disputes opened and lost, shipping
  and delivery times, first orders of new buyers, and stocks (orders overdue, disputes
  open) as +1/-1 flows. These lead the facts, which see an order's defect only at its
  maturity, weeks after the order;
- the sums come from one cumulative stream per supplier into which every lookup drops a
  marker row (zero-valued, sorted after the evidence of the days before it): the running
  total at a marker is the evidence before its day, and a window is the difference of two
  markers. The days between one marker and the next are summed first, so the stream holds
  a row per supplier and marker day. Window functions and equality joins (and one cross
  join of the distinct days with the distinct marker days): it runs on Spark as on DuckDB,
  in time linear in the rows, where an inequality join of lookups to cumulative rows grows
  with the square of a supplier's active days. The pipeline, on DuckDB, takes the running
  sums of that stream in polars instead (`point_sums`): the same bits, without the window
  functions' cost per value;
- supplier attributes (category, country, registration): the latest supplier version
  with `updated_at` before day d, an inequality join plus `row_number` (PySpark has no
  asof join, shared/STACK.md);
- shrunk rates: the supplier's window evidence under an empirical-Bayes prior
  (models/shrinkage.py) fitted on the first day of d's month from the evidence before it;
- buyer history: orders of the same buyer with the same supplier recorded before t; and
  the buyer's orders with every supplier, those its suppliers cancelled, its disputes
  opened and those decided for it, recorded before day d began (running counts per buyer
  read at marker rows, as the supplier's sums);
- the order itself: amount, category, days allowed, the buyer's country against the
  supplier's (known before d), trade assurance, its month and weekday.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import ibis
import ibis.expr.datatypes as dtypes
import numpy as np
import polars as pl
from ibis import _
from ibis.expr.types import Table

from models.facts import BY_NAME
from models.outcomes import (
    BUYER_FAVOURED, CONTRACT_RULES, DECIDED_STATUSES, PLACED_COLUMNS, OutcomeRules, orders_as_placed,
)
from models.shrinkage import COHORT_LEVELS, PriorSettings, beta_posterior, failures, fit_priors

RATE_METRICS = ("order_defect", "late_shipment", "on_time_delivery", "non_delivery", "supplier_cancellation",
                "dispute", "dispute_loss", "valid_tracking", "refund_share")
SHRUNK_METRICS = ("order_defect", "late_shipment", "on_time_delivery", "non_delivery", "supplier_cancellation",
                  "dispute")
TREND_METRICS = ("order_defect", "late_shipment", "on_time_delivery", "non_delivery")
# The recent window against the long one for the fastest signals (@ stands for the window).
RECENT_CHANGES = ("rate_late_shipment_@", "rate_on_time_delivery_@", "rate_supplier_cancellation_@",
                  "mean_handling_days_@", "mean_transit_days_@", "disputes_opened_per_order_@")
ALL_TIME_METRICS = ("order_defect", "late_shipment", "on_time_delivery", "non_delivery", "supplier_cancellation",
                    "dispute", "valid_tracking")
RECENT_METRICS = ("late_shipment", "on_time_delivery", "supplier_cancellation")
# Evidence summed per supplier and day: x = numerator, n = denominator, from the facts ...
FACT_EVIDENCE = ("orders", "gmv_usd", *RATE_METRICS, "days_late")
# ... and events filed on the day they became known (n = how many, x = the sum of their
# value): buyers placing their first order with the supplier, disputes opened, disputes
# decided for the buyer (the facts see disputes only when the order matures, weeks
# later), and per shipment the handling days (placed to shipped), the days to spare
# before the ship-by deadline and the transit days (shipped to delivered): measurements
# on every order where the facts only say late or not.
EVENTS = ("new_buyers", "disputes_opened", "disputes_lost", "handling_days", "ship_slack_days", "transit_days")
# Stocks, filed as +1 / -1 flows so that their sum before a day is the stock on that day:
# orders past their ship-by date not known shipped, orders past their delivery deadline
# not known delivered (neither cancelled), and disputes open. They lead non-delivery and
# lost disputes, which the facts record only at maturity.
STOCKS = ("overdue_unshipped", "overdue_undelivered", "open_disputes")
# The buyer's orders with every supplier, and how many of them its suppliers cancelled or
# it disputed, and won, as recorded before an order's placement.
BUYER_HISTORY = ("buyer_orders", "buyer_supplier_cancellations", "buyer_disputes_opened", "buyer_disputes_lost")
# The order's date: it moves with the calendar by nature, so its PSI is no sign of drift.
CALENDAR_FEATURES = ("placed_month", "placed_weekday")
ALL_TIME = 0  # the window label of evidence since the supplier's first fact
MICRO = 1_000_000
# Shrunk rates are failure rates: a success rate is named after its failure.
FAILURE_NAME = {"on_time_delivery": "late_delivery"}


Cache = Callable[[str, Table], Table]


def _failure(metric: str) -> str:
    return FAILURE_NAME.get(metric, metric)


@dataclass(frozen=True)
class FeatureSettings:
    """Windows (short, long) in days, the EB prior settings and the short-window strength."""

    short_window_days: int
    long_window_days: int
    priors: PriorSettings
    recent_prior_strength: float
    recent_window_days: int = 30
    outcome_rules: OutcomeRules = CONTRACT_RULES

    @property
    def windows(self) -> tuple[int, int, int]:
        return self.recent_window_days, self.short_window_days, self.long_window_days


@dataclass(frozen=True)
class Sources:
    """What the features read: the daily facts and the staged tables (every version)."""

    facts: Table
    suppliers: Table
    orders: Table
    shipments: Table
    disputes: Table


def _no_cache(name: str, table: Table) -> Table:
    return table


def _day_number(day) -> ibis.Value:
    return day.epoch_days().cast("int64")


def order_labels(outcomes: Table) -> Table:
    """One row per order matured by the outcomes' as-of date: order_id, is_defect (label)."""
    return outcomes.filter(_.is_matured).select("order_id", is_defect=_.is_defect.cast("boolean"))


def orders_placed(orders: Table, through: dt.date) -> Table:
    """One row per order known by the end of `through`, as placed (its first version):
    supplier_id, buyer_id, category, placed_at, order_amount_usd, buyer_country_code,
    is_trade_assured, known_at (its first version's updated_at), placed_on, and the days
    allowed to ship and to deliver."""
    end = ibis.literal(through + dt.timedelta(days=1)).cast("timestamp")
    # the first version's updated_at is the order's first: when it became known
    placed = orders_as_placed(orders, end, (*PLACED_COLUMNS, "buyer_country_code", "is_trade_assured", "updated_at"))
    placed = placed.filter(_.placed_at < end)
    placed_on = placed.placed_at.date()
    return placed.select(
        "order_id", "supplier_id", "buyer_id", "category", "placed_at", "order_amount_usd",
        "buyer_country_code", "is_trade_assured", known_at=placed.updated_at,
        placed_on=placed_on, days_to_ship=placed.promised_ship_by.delta(placed_on, unit="day"),
        days_to_deliver=placed.promised_delivery_by.delta(placed_on, unit="day"))


def order_attributes(orders: Table, disputes: Table, through: dt.date, cache: Cache = _no_cache,
                     placed: Table | None = None, asked: Table | None = None) -> Table:
    """One row per order known by the end of `through` (of `asked`, when given: some rows
    of `placed`): `orders_placed` (or `placed`, when given: the same rows, kept),
    buyer_prior_orders: how many orders of the same buyer with the same supplier had been
    recorded (first version) strictly before this one was placed, and the buyer's history
    with every supplier as recorded before the day it was placed began (BUYER_HISTORY).
    `cache(name, table)` may materialise the orders as placed, which the buyer histories
    read four times."""
    end = ibis.literal(through + dt.timedelta(days=1)).cast("timestamp")
    placed = cache("risk_orders_placed", orders_placed(orders, through)) if placed is None else placed
    pairs, buyers = placed, placed
    if asked is not None:  # only the histories of the asked orders' pairs and buyers are read
        pairs = placed.semi_join(asked.select("supplier_id", "buyer_id").distinct(), ["supplier_id", "buyer_id"])
        buyers = placed.semi_join(asked.select("buyer_id").distinct(), "buyer_id")
    attributes = placed if asked is None else asked
    history = _history_before(attributes, _supplier_buyer_flows(pairs), ["supplier_id", "buyer_id"],
                              attributes.placed_at)
    # as the supplier's evidence: what was recorded before the order's day began
    buyer = _history_before(attributes, _buyer_flows(orders, buyers, disputes, end), ["buyer_id"],
                            attributes.placed_on.cast("timestamp"))
    return attributes.join(history, "order_id").join(buyer, "order_id")


def _supplier_buyer_flows(attributes: Table) -> Table:
    """Per order recorded: +1 buyer_prior_orders for its supplier x buyer, at its recording."""
    return attributes.select("supplier_id", "buyer_id", at=_.known_at, buyer_prior_orders=ibis.literal(1, "int64"))


def _buyer_flows(orders: Table, attributes: Table, disputes: Table, end) -> Table:
    """Per buyer, events at the moment they were recorded: each order (buyer_orders), each
    order first known cancelled by its supplier, each dispute first known opened and first
    known decided for the buyer. A buyer's past with other suppliers tells how often its
    orders go wrong (what it buys, where, how it complains), whoever the supplier is."""
    def flows(t: Table, at, column: str) -> Table:
        return t.select("buyer_id", at=at, **{c: ibis.literal(1 if c == column else 0, "int64") for c in BUYER_HISTORY})

    buyers = attributes.select("order_id", "buyer_id")
    cancelled = orders.filter((_.status == "cancelled") & (_.cancelled_by == "supplier") & (_.updated_at < end))
    cancelled = cancelled.group_by("order_id").aggregate(at=_.updated_at.min()).join(buyers, "order_id")
    decided = _.status.isin(DECIDED_STATUSES)
    per_dispute = disputes.filter(_.updated_at < end).group_by(["dispute_id", "order_id"]).aggregate(
        opened=_.updated_at.min(),
        lost=(decided & _.outcome.isin(BUYER_FAVOURED)).ifelse(_.updated_at, None).min()).join(buyers, "order_id")
    return ibis.union(flows(attributes, attributes.known_at, "buyer_orders"),
                      flows(cancelled, cancelled.at, "buyer_supplier_cancellations"),
                      flows(per_dispute, per_dispute.opened, "buyer_disputes_opened"),
                      flows(per_dispute.filter(_.lost.notnull()), per_dispute.lost, "buyer_disputes_lost"))


def _history_before(attributes: Table, flows: Table, keys: list[str], asked_at) -> Table:
    """order_id and, for each count column of `flows` (events at `at`, per `keys`), how many
    were recorded strictly before the order's `asked_at`: a running sum per key, read at a
    marker row per order (a recording at that very instant sorts after the marker).
    Integer counts: exact whatever the order of addition."""
    counts = [c for c in flows.columns if c not in (*keys, "at")]
    recorded = flows.select(*keys, at=_.at.cast("timestamp"), kind=ibis.literal(1, "int32"), order_id=ibis.null("string"),
                            **{c: flows[c].cast("int64") for c in counts})
    asked = attributes.select(*keys, at=asked_at.cast("timestamp"), kind=ibis.literal(0, "int32"), order_id=_.order_id,
                              **{c: ibis.literal(0, "int64") for c in counts})
    stream = ibis.union(recorded, asked)
    running = ibis.cumulative_window(group_by=keys, order_by=["at", "kind"])
    return stream.mutate(**{c: stream[c].sum().over(running) for c in counts}).filter(_.kind == 0).select(
        "order_id", **{c: _[c].cast("int64") for c in counts})


def _known_day(timestamp) -> ibis.Value:
    """The day number on which a record version became known (its updated_at's day)."""
    return _day_number(timestamp.date())


def dispute_events(disputes: Table, attributes: Table) -> Table:
    """One row per dispute of a known order: its supplier and the day numbers on which it
    became known (its first version), was first known decided, and first known decided
    for the buyer (NULL when not yet)."""
    decided = _.status.isin(DECIDED_STATUSES)
    per_dispute = disputes.group_by(["dispute_id", "order_id"]).aggregate(
        known_at=_.updated_at.min(), decided_at=decided.ifelse(_.updated_at, None).min(),
        lost_at=(decided & _.outcome.isin(BUYER_FAVOURED)).ifelse(_.updated_at, None).min())
    return per_dispute.join(attributes.select("order_id", "supplier_id"), "order_id").select(
        "supplier_id", opened_day=_known_day(_.known_at), decided_day=_known_day(_.decided_at),
        lost_day=_known_day(_.lost_at))


def shipment_events(shipments: Table, attributes: Table) -> Table:
    """One row per shipment of a known order: its supplier, the day numbers on which its
    shipping and its delivery became known (the first version saying so), handling days
    (placed to shipped), slack days (shipped to the end of the ship-by day), transit days."""
    shipped, delivered = _.shipped_at.notnull(), _.delivered_at.notnull()
    per_shipment = shipments.group_by(["shipment_id", "order_id"]).aggregate(
        shipped_known_at=shipped.ifelse(_.updated_at, None).min(),
        shipped_at=_.shipped_at.argmin(_.updated_at, where=shipped),
        delivered_known_at=delivered.ifelse(_.updated_at, None).min(),
        delivered_at=_.delivered_at.argmin(_.updated_at, where=delivered))
    t = per_shipment.join(attributes.select("order_id", "supplier_id", "placed_at", "placed_on", "days_to_ship"),
                          "order_id")
    shipped_s = t.shipped_at.epoch_seconds()
    deadline_s = (_day_number(t.placed_on) + t.days_to_ship + 1) * 86400
    return t.select("supplier_id", "order_id", shipped_day=_known_day(t.shipped_known_at),
                    delivered_day=_known_day(t.delivered_known_at),
                    handling_days=(shipped_s - t.placed_at.epoch_seconds()) / 86400.0,
                    slack_days=(deadline_s - shipped_s) / 86400.0,
                    transit_days=(t.delivered_at.epoch_seconds() - shipped_s) / 86400.0)


def overdue_events(orders: Table, attributes: Table, shipped: Table, rules: OutcomeRules) -> Table:
    """One row per known order: its supplier; the ship-by, delivery-deadline and
    non-delivery day numbers; and the day numbers on which it was first known shipped,
    delivered (any shipment) and cancelled. An order is overdue from the day after a
    deadline it has not met (as known then) until it is known shipped, delivered or
    cancelled, or its non-delivery is decided (the facts take it over from there)."""
    cancelled = orders.filter(_.status == "cancelled").group_by("order_id").aggregate(
        cancelled_day=_known_day(_.updated_at.min()))
    firsts = shipped.group_by("order_id").aggregate(shipped_day=_.shipped_day.min(),
                                                    delivered_day=_.delivered_day.min())
    t = attributes.select("order_id", "supplier_id", known_day=_known_day(attributes.known_at),
                          **_deadline_days(attributes, rules))
    t = t.left_join(cancelled, "order_id").select(*t.columns, "cancelled_day")
    return t.left_join(firsts, "order_id").select(*t.columns, "shipped_day", "delivered_day")


def _deadline_days(attributes: Table, rules: OutcomeRules) -> dict[str, ibis.Value]:
    """An order's ship-by, delivery-deadline and non-delivery day numbers (as placed)."""
    placed = _day_number(attributes.placed_on)
    delivery_by = placed + ibis.coalesce(attributes.days_to_deliver,
                                         attributes.days_to_ship + rules.undated_delivery_days)
    return {"ship_by_day": placed + attributes.days_to_ship, "delivery_by_day": delivery_by,
            "decided_day": delivery_by + rules.non_delivery_days}


def _overdue_flows(events: Table, deadline: str, done: str) -> Table:
    """+1 on the deadline day (or the day the order became known, if later) of an order not
    done (nor cancelled) by then, -1 on the day it is known done or cancelled or its
    non-delivery is decided: summed up to a day, the orders overdue after it."""
    ended = ibis.least(events[done].fill_null(events.decided_day), events.cancelled_day.fill_null(events.decided_day),
                       events.decided_day)
    start = ibis.greatest(events[deadline], events.known_day)
    late = events.mutate(start=start, ended=ended).filter(_.ended > _.start)
    opened = late.select("supplier_id", day_number=late.start, value=ibis.literal(1.0))
    closed = late.select("supplier_id", day_number=late.ended, value=ibis.literal(-1.0))
    return ibis.union(opened, closed)


# DuckDB sums BIGINT into HUGEINT, twice as slow to sum again and compare: sums of millionths
# are cast back (exact: a supplier's sums stay far below 2^63). A not-null BIGINT is not the
# type ibis gives a sum, so ibis keeps the cast.
_BIGINT = dtypes.Int64(nullable=False)
_ZERO = ibis.literal(0, "int64").cast(_BIGINT)


def _micro(value) -> ibis.Value:
    """A value in integer millionths: sums of these are exact, so they do not depend on the
    order a parallel engine adds rows in, and the features are the same run after run."""
    return (value.cast("float64") * MICRO).round().cast("int64")


def _event_sums(events: Table, name: str, columns: list[str], day=None, value=None) -> Table:
    """Per supplier x day number: n_<name> = how many events, x_<name> = the sum of their
    value (1 when none is given), in millionths. Day and value default to the columns of
    those names."""
    if "value" in events.columns and value is None:
        value = events.value
    known = events.mutate(day_number=day if day is not None else events.day_number,
                          value=ibis.literal(1.0) if value is None else value)
    known = known.filter(_.day_number.notnull() & _.value.notnull())
    summed = known.group_by(["supplier_id", "day_number"]).aggregate(
        x=_micro(_.value).sum().cast(_BIGINT), n=(_.count() * MICRO).cast(_BIGINT))
    return summed.select("supplier_id", "day_number", **{
        c: summed.x if c == f"x_{name}" else summed.n if c == f"n_{name}" else _ZERO for c in columns})


def daily_evidence(facts: Table, attributes: Table, orders: Table, shipments: Table, disputes: Table,
                   rules: OutcomeRules = CONTRACT_RULES) -> Table:
    """One row per supplier x day number with any evidence: x_<m>, n_<m> for each metric
    of FACT_EVIDENCE, each event of EVENTS and each stock of STOCKS, in integer millionths.
    `attributes`: `orders_placed` or `order_attributes`."""
    return _daily_evidence(facts, attributes, attributes, orders, shipments, disputes, rules)


def evidence_orders_from(first: dt.date, placed: Table, orders: Table, shipments: Table, disputes: Table,
                         rules: OutcomeRules = CONTRACT_RULES) -> Table:
    """order_id of the orders that can have evidence on or after `first`: those with a
    version of any of the three updated since `first` began (every event is filed on the day
    a version became known), and those with a deadline, or their first version, on or after
    it (the overdue stocks move on deadlines)."""
    start = ibis.literal(first).cast("timestamp")
    first_day = _day_number(ibis.literal(first))
    touched = ibis.union(*(t.filter(t.updated_at >= start).select("order_id") for t in (orders, shipments, disputes)),
                         distinct=True)
    deadlines = _deadline_days(placed, rules)
    due = placed.filter((placed.known_at >= start) | ibis.or_(*(d >= first_day for d in deadlines.values())))
    return placed.select("order_id").semi_join(ibis.union(touched, due.select("order_id"), distinct=True), "order_id")


def daily_evidence_from(first: dt.date, facts: Table, placed: Table, orders: Table, shipments: Table,
                        disputes: Table, rules: OutcomeRules = CONTRACT_RULES, relevant: Table | None = None) -> Table:
    """The rows of `daily_evidence` of the days from `first` on, reading the facts of those
    days and only the orders that can have evidence on them (`evidence_orders_from`, or
    `relevant` when the caller has them), each with all its versions, shipments and
    disputes (the caller may leave out versions of other orders). A new buyer is filed on
    its first order with the supplier: the pairs with an order known since `first` read all
    their orders. What `first` misses is the caller's: an order whose first version changed
    files its shipments and disputes on their own days (pipelines/risk/feature_store.py)."""
    start = ibis.literal(first).cast("timestamp")
    if relevant is None:
        relevant = evidence_orders_from(first, placed, orders, shipments, disputes, rules)
    relevant = placed.semi_join(relevant, "order_id")
    pairs = placed.filter(_.known_at >= start).select("supplier_id", "buyer_id").distinct()
    pair_orders = placed.semi_join(pairs, ["supplier_id", "buyer_id"])
    daily = _daily_evidence(facts.filter(_.day >= first), relevant, pair_orders,
                            *(t.semi_join(relevant, "order_id") for t in (orders, shipments, disputes)), rules)
    return daily.filter(_.day_number >= _day_number(ibis.literal(first)))


def _daily_evidence(facts: Table, attributes: Table, pair_orders: Table, orders: Table, shipments: Table,
                    disputes: Table, rules: OutcomeRules) -> Table:
    """`daily_evidence`, the new buyers counted over `pair_orders` (every order of each
    supplier x buyer pair it files)."""
    sums = {}
    for m in FACT_EVIDENCE:
        hit = facts.metric == m
        sums[f"x_{m}"] = hit.ifelse(_micro(facts.numerator), 0).sum().cast(_BIGINT)
        sums[f"n_{m}"] = hit.ifelse(_micro(facts.denominator), 0).sum().cast(_BIGINT)
    from_facts = facts.group_by(["supplier_id", "day"]).aggregate(**sums)
    from_facts = from_facts.select("supplier_id", *sums, day_number=_day_number(from_facts.day))
    firsts = pair_orders.group_by(["supplier_id", "buyer_id"]).aggregate(first_known_at=_.known_at.min())
    disputed = dispute_events(disputes, attributes)
    shipped = shipment_events(shipments, attributes)
    overdue = overdue_events(orders, attributes, shipped, rules)
    columns = [f"{p}_{e}" for e in (*EVENTS, *STOCKS) for p in ("x", "n")]
    parts = [_event_sums(firsts, "new_buyers", columns, day=_known_day(firsts.first_known_at)),
             _event_sums(disputed, "disputes_opened", columns, day=disputed.opened_day),
             _event_sums(disputed, "disputes_lost", columns, day=disputed.lost_day),
             _event_sums(shipped, "handling_days", columns, day=shipped.shipped_day, value=shipped.handling_days),
             _event_sums(shipped, "ship_slack_days", columns, day=shipped.shipped_day, value=shipped.slack_days),
             _event_sums(shipped, "transit_days", columns, day=shipped.delivered_day, value=shipped.transit_days),
             _event_sums(_overdue_flows(overdue, "ship_by_day", "shipped_day"), "overdue_unshipped", columns),
             _event_sums(_overdue_flows(overdue, "delivery_by_day", "delivered_day"), "overdue_undelivered",
                         columns),
             _event_sums(_dispute_flows(disputed), "open_disputes", columns)]
    events = ibis.union(*parts)
    events = events.group_by(["supplier_id", "day_number"]).aggregate(
        **{c: events[c].sum().cast(_BIGINT) for c in columns})
    # the facts' days and the events' days, each summed apart: one grouping of every row
    # with every column cost twice as much
    both = from_facts.outer_join(events, ["supplier_id", "day_number"])
    return both.select(supplier_id=ibis.coalesce(both.supplier_id, both.supplier_id_right),
                       day_number=ibis.coalesce(both.day_number, both.day_number_right),
                       **{c: both[c].fill_null(0) for c in (*sums, *columns)})


def _dispute_flows(disputed: Table) -> Table:
    """+1 on the day a dispute became known, -1 on the day it was known decided."""
    opened = disputed.select("supplier_id", day_number=_.opened_day, value=ibis.literal(1.0))
    closed = disputed.filter(_.decided_day.notnull()).select("supplier_id", day_number=_.decided_day,
                                                            value=ibis.literal(-1.0))
    return ibis.union(opened, closed)


def evidence_stream(daily: Table, points: Table, windows: tuple[int, ...]) -> Table:
    """The rows whose running sums per supplier, in the order (key, kind), give
    `evidence_before` (unordered): per supplier, a bucket of its daily evidence (integer
    millionths) per key asked for (kind 0), and a zero-valued lookup per distinct point and
    lag (kind 1: point_on, lag, key = point_on's day number - lag).

    A lookup at a key sums the days before it. The days are first summed into buckets, one
    per distinct key asked for, each holding the days from the key before it to the day
    before it (`_next_keys`); the running sums then run over suppliers x keys: a few dozen
    keys when scoring (a month of days at four lags), where they ran over every supplier's
    every day of the history. A bucket sorts before the lookups at its key: they count its
    days. Days after the last key count for no lookup."""
    values = [c for c in daily.columns if c[:2] in ("x_", "n_")]
    points = points.select("supplier_id", "point_on").distinct()
    markers = ibis.union(*(points.select("supplier_id", key=_day_number(points.point_on) - lag,
                                         kind=ibis.literal(1, "int32"), point_on=points.point_on,
                                         lag=ibis.literal(lag, "int32"), **{c: _ZERO for c in values})
                           for lag in _lags(windows)))
    buckets = _next_keys(daily.select("day_number").distinct(), markers.select("key").distinct())
    bucketed = daily.join(buckets, "day_number")
    summed = bucketed.group_by(["supplier_id", "key"]).aggregate(
        **{c: bucketed[c].cast("int64").sum().cast(_BIGINT) for c in values})
    return ibis.union(summed.select("supplier_id", "key", kind=ibis.literal(0, "int32"), point_on=ibis.null("date"),
                                    lag=ibis.literal(-1, "int32"), **{c: summed[c] for c in values}), markers)


def evidence_before(daily: Table, points: Table, windows: tuple[int, ...]) -> Table:
    """One row per point (supplier_id, point_on): x_<m>_<w>, n_<m>_<w> summed over the daily
    evidence (integer millionths) of the w days before point_on (w = ALL_TIME: every day
    before it), as float64 units: the running sums of `evidence_stream` read at its
    lookups, a window function per column. Integer running sums are exact, whatever the
    engine's order of addition. `point_sums` gives the same numbers from the stream in polars."""
    stream = evidence_stream(daily, points, windows)
    values, lags = [c for c in stream.columns if c[:2] in ("x_", "n_")], _lags(windows)
    running = ibis.cumulative_window(group_by="supplier_id", order_by=["key", "kind"])
    totals = stream.mutate(**{c: stream[c].sum().over(running).cast(_BIGINT) for c in values}).filter(_.kind == 1)
    at = {f"{c}@{lag}": (totals.lag == lag).ifelse(totals[c], None).max() for c in values for lag in lags}
    wide = totals.group_by(["supplier_id", "point_on"]).aggregate(**at)
    sums = {f"{c}_{w}": (wide[f"{c}@{ALL_TIME}"] - (wide[f"{c}@{w}"] if w != ALL_TIME else 0)).cast("float64") / MICRO
            for c in values for w in lags}
    return wide.select("supplier_id", "point_on", **sums)


def point_sums(stream: pl.DataFrame, windows: tuple[int, ...]) -> pl.DataFrame:
    """`evidence_before` from `evidence_stream`'s rows of whole suppliers (any row order),
    the running sums taken in polars: the same integers, subtracted and divided the same
    way, so the same float64 bits. One row per point, sorted by supplier_id and point_on.
    DuckDB's window function costs ~150 ns per value summed (52 columns), polars' cum_sum
    a few."""
    values, lags = [c for c in stream.columns if c[:2] in ("x_", "n_")], _lags(windows)
    totals = (stream.sort("supplier_id", "key", "kind")
              .with_columns(pl.col(values).cum_sum().over("supplier_id"))
              .filter(pl.col("kind") == 1)
              .sort("supplier_id", "point_on", "lag"))
    # every point has one lookup per lag, in the order of `lags` (ALL_TIME first)
    columns = {"supplier_id": totals["supplier_id"].gather_every(len(lags)),
               "point_on": totals["point_on"].gather_every(len(lags))}
    for c in values:
        at = totals[c].to_numpy().reshape(-1, len(lags))
        for j, w in enumerate(lags):
            columns[f"{c}_{w}"] = (at[:, 0] - (at[:, j] if w != ALL_TIME else 0)).astype(np.float64) / MICRO
    return pl.DataFrame(columns)


def _lags(windows: tuple[int, ...]) -> list[int]:
    """The lookups' lags of a point: ALL_TIME (every day before it) first, then the windows."""
    return sorted({ALL_TIME, *windows})


def evidence_opening(daily: Table, opened: dt.date) -> Table:
    """One row per supplier with daily evidence before `opened`: its sums over those days."""
    before = daily.filter(_.day_number < _day_number(ibis.literal(opened)))
    return before.group_by("supplier_id").aggregate(
        **{c: before[c].sum().cast(_BIGINT) for c in daily.columns if c not in ("supplier_id", "day_number")})


def opened_daily_evidence(daily: Table, opening: Table, opened: dt.date) -> Table:
    """The daily evidence from `opened` on, and the `evidence_opening` before it as one day
    (the day before `opened`): `evidence_before` gives the same sums from it at points whose
    longest window starts on or after `opened`, reading the days since instead of the history."""
    opened_day = _day_number(ibis.literal(opened))
    values = [c for c in daily.columns if c not in ("supplier_id", "day_number")]
    since = daily.filter(_.day_number >= opened_day).select("supplier_id", "day_number", *values)
    return ibis.union(since, opening.select("supplier_id", day_number=opened_day - 1,
                                            **{c: opening[c].cast("int64") for c in values}))


def _next_keys(days: Table, keys: Table) -> Table:
    """day_number, key: each day number with the first key after it (days after the last
    key have none and are left out). Both sides are small: the distinct days and keys."""
    pairs = days.cross_join(keys).filter(_.key > _.day_number)
    return pairs.group_by("day_number").aggregate(key=_.key.min())


def supplier_versions_before(suppliers: Table, points: Table) -> Table:
    """One row per point known to the supplier table: the supplier's latest version with
    updated_at before point_on began (main_category, country_code, registered_at)."""
    start = points.point_on.cast("timestamp")
    versions = suppliers.select("supplier_id", "main_category", "country_code", "registered_at",
                                v_updated_at=_.updated_at, v_load_seq=_.load_seq, v_line=_.line_number)
    known = points.join(versions, [points.supplier_id == versions.supplier_id,
                                   versions.v_updated_at < start])
    latest = ibis.row_number().over(group_by=["supplier_id", "point_on"], order_by=[
        ibis.desc("v_updated_at"), ibis.desc("v_load_seq"), ibis.desc("v_line")])
    return (known.mutate(r=latest).filter(_.r == 0)
            .select("supplier_id", "point_on", "main_category", "country_code", "registered_at"))


def month_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    """The first day of every month whose start lies in first's month .. last."""
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(day)
        day = (day + dt.timedelta(days=32)).replace(day=1)
    return months


def _trials(evidence: Table, metrics: tuple[str, ...], window: int) -> Table:
    """Long trials (one row per point x metric): failures x out of n over the window."""
    rows = [evidence.select("supplier_id", "point_on", metric=ibis.literal(m),
                            numerator=evidence[f"x_{m}_{window}"], denominator=evidence[f"n_{m}_{window}"])
            for m in metrics]
    directions = {m: BY_NAME[m].higher_is_better for m in metrics}
    return failures(ibis.union(*rows), directions)


def cohort_priors(evidence_at_months: Table, versions_at_months: Table, months: list[dt.date],
                  settings: FeatureSettings) -> Table:
    """One row per month x metric x cohort level x key: the EB prior (mean, strength) fitted
    on the first day of the month from the long-window evidence before it."""
    trials = _trials(evidence_at_months, SHRUNK_METRICS, settings.long_window_days).join(
        versions_at_months, ["supplier_id", "point_on"])
    parts = []
    for month in months:
        in_month = trials.filter(_.point_on == month)
        for level, keys in COHORT_LEVELS:
            fitted = fit_priors(in_month, keys, settings.priors)
            if level != "all":
                fitted = fitted.filter(_.suppliers >= settings.priors.min_suppliers)
            parts.append(fitted.select(
                prior_on=ibis.literal(month), metric=_.metric, level=ibis.literal(level),
                main_category=fitted.main_category if "main_category" in keys else ibis.null("string"),
                country_code=fitted.country_code if "country_code" in keys else ibis.null("string"),
                # rounded far below any meaning: the fit sums floats in no fixed order
                prior_mean=_.mean.round(9), prior_strength=_.strength.cast("float64").round(6)))
    return ibis.union(*parts)


def _prior_for(trials: Table, priors: Table) -> Table:
    """Trials with the prior of the narrowest level that has one (cohort, category, all)."""
    joined = trials
    for level, keys in COHORT_LEVELS:
        p = priors.filter(_.level == level)
        on = ["prior_on", "metric", *keys]
        p = p.select(*on, **{f"{level}_mean": p.prior_mean, f"{level}_strength": p.prior_strength})
        joined = joined.left_join(p, on).select(*joined.columns, f"{level}_mean", f"{level}_strength")
    return joined.mutate(prior_mean=ibis.coalesce(_.cohort_mean, _.category_mean, _.all_mean),
                         prior_strength=ibis.coalesce(_.cohort_strength, _.category_strength, _.all_strength))


def shrunk_evidence(evidence: Table, versions: Table, priors: Table, settings: FeatureSettings) -> Table:
    """One row per point: shrunk_<m>_<long> under its cohort prior, shrunk_<m>_<short>
    toward that long-window estimate, and the cohort's order-defect prior mean."""
    long_days, short_days = settings.long_window_days, settings.short_window_days
    z = settings.priors.bound_z
    trials = _trials(evidence, SHRUNK_METRICS, long_days).select("supplier_id", "point_on", "metric", "x", "n")
    short = _trials(evidence, SHRUNK_METRICS, short_days).select(
        "supplier_id", "point_on", "metric", x_short=_.x, n_short=_.n)
    trials = trials.join(short, ["supplier_id", "point_on", "metric"]).join(versions, ["supplier_id", "point_on"])
    trials = trials.mutate(prior_on=_.point_on.truncate("M").cast("date"))
    with_prior = _prior_for(trials, priors)
    long_post = beta_posterior(with_prior, with_prior.prior_mean, with_prior.prior_strength, z)
    long_post = long_post.select("supplier_id", "point_on", "metric", "prior_mean", "x_short", "n_short",
                                 shrunk_long=_.shrunk_rate)
    short_post = beta_posterior(long_post.mutate(x=_.x_short, n=_.n_short), long_post.shrunk_long,
                                settings.recent_prior_strength, z)

    def pick(metric: str, column: str) -> ibis.Value:
        return (short_post.metric == metric).ifelse(short_post[column], None).max()

    wide = {f"shrunk_{_failure(m)}_{long_days}": pick(m, "shrunk_long") for m in SHRUNK_METRICS}
    wide |= {f"shrunk_{_failure(m)}_{short_days}": pick(m, "shrunk_rate") for m in SHRUNK_METRICS}
    wide["prior_order_defect"] = pick("order_defect", "prior_mean")
    return short_post.group_by(["supplier_id", "point_on"]).aggregate(**wide)


def _rate(x, n) -> ibis.Value:
    return (n > 0).ifelse(x / n, ibis.null("float64"))


def _log1p(value) -> ibis.Value:
    return (value.cast("float64") + 1.0).ln()


def feature_columns(settings: FeatureSettings) -> list[str]:
    """The model's features, in order (all float64)."""
    r, s, l = settings.windows
    names = ["log_amount_usd", "amount_vs_supplier_mean_log", "is_main_category", "days_to_ship",
             "days_to_deliver", "has_promised_delivery", "is_first_buyer_order", "buyer_prior_orders_log",
             "tenure_days", "orders_to_date_log", "orders_per_buyer_to_date", "volume_trend",
             "is_cross_border", "is_trade_assured", "placed_month", "placed_weekday", "buyer_orders_log"]
    names += [f"{c}_per_order" for c in BUYER_HISTORY[1:]]
    names += [f"orders_{r}_log"] + [f"rate_{m}_{r}" for m in RECENT_METRICS]
    for w in (s, l):
        names += [f"orders_{w}_log", f"matured_orders_{w}_log", f"mean_days_late_{w}"]
        names += [f"rate_{m}_{w}" for m in RATE_METRICS]
    names += [f"matured_orders_all_log"] + [f"rate_{m}_all" for m in ALL_TIME_METRICS]
    names += [f"{e}_per_order_{w}" for e in ("disputes_opened", "disputes_lost") for w in (*settings.windows, "all")]
    names += [f"mean_{e}_{w}" for e in ("handling_days", "ship_slack_days", "transit_days")
              for w in settings.windows] + [f"shipments_per_order_{l}"]
    names += [f"{stock}_per_order" for stock in STOCKS]
    names += [f"shrunk_{_failure(m)}_{w}" for w in (l, s) for m in SHRUNK_METRICS]
    names += [f"trend_{_failure(m)}" for m in TREND_METRICS] + ["prior_order_defect"]
    names += [f"{name.removesuffix('_@')}_change" for name in RECENT_CHANGES]
    return names


def supplier_context(attributes: Table, sources: Sources, points: Table, months: list[dt.date],
                     settings: FeatureSettings, cache: Cache = _no_cache, daily: Table | None = None,
                     sums: Callable[[Table, Table, tuple[int, ...]], Table] = evidence_before) -> Table:
    """One row per point (supplier_id, point_on): attributes, window evidence and shrunk
    rates of the supplier as known before point_on. `months` must hold the first day of
    every point's month (`month_starts`). `cache(name, table)` may materialise an
    intermediate table (the pipeline's choice; the identity by default). `daily`: the
    `daily_evidence` of these sources when the caller keeps it (computed otherwise).
    `sums(daily, points, windows)`: `evidence_before`, or the same numbers another way."""
    suppliers = sources.suppliers
    month_points = ibis.union(*(suppliers.select("supplier_id").distinct().mutate(point_on=ibis.literal(m))
                                for m in months))
    points = points.select("supplier_id", "point_on").distinct()
    all_points = cache("risk_points", ibis.union(points, month_points, distinct=True))
    if daily is None:
        daily = cache("risk_daily_evidence", daily_evidence(
            sources.facts, attributes, sources.orders, sources.shipments, sources.disputes, settings.outcome_rules))
    evidence = cache("risk_evidence", sums(daily, all_points, settings.windows))
    versions = cache("risk_versions", supplier_versions_before(suppliers, all_points))
    priors = cache("risk_priors", cohort_priors(evidence.filter(_.point_on.isin(months)),
                                                versions.filter(_.point_on.isin(months)), months, settings))
    at_points = evidence.join(points, ["supplier_id", "point_on"])
    shrunk = shrunk_evidence(at_points, versions, priors, settings)
    joined = at_points.left_join(versions, ["supplier_id", "point_on"]).select(
        *at_points.columns, "main_category", "country_code", "registered_at")
    return joined.left_join(shrunk, ["supplier_id", "point_on"]).select(
        *joined.columns, *(c for c in shrunk.columns if c not in ("supplier_id", "point_on")))


def order_features(orders: Table, context: Table, settings: FeatureSettings) -> Table:
    """One row per order: order_id, supplier_id, placed_on and the features of
    `feature_columns(settings)` (float64; NULL where unknown), from order attributes
    (`order_attributes` or `typical_orders`) and the supplier context of their day."""
    # a view: typical orders share their ancestor tables with the context
    t = orders.view().join(context.rename(placed_on="point_on"), ["supplier_id", "placed_on"])
    f = _order_level(t, settings) | _window_evidence(t, settings) | _leading_signals(t, settings)
    r, s, l = settings.windows
    f |= {f"{c}_{w}": t[f"{c}_{w}"] for c in (f"shrunk_{_failure(m)}" for m in SHRUNK_METRICS) for w in (l, s)}
    f |= {f"trend_{_failure(m)}": t[f"shrunk_{_failure(m)}_{s}"] - t[f"shrunk_{_failure(m)}_{l}"]
          for m in TREND_METRICS}
    f |= {f"{name.removesuffix('_@')}_change": f[name.replace("@", str(r))] - f[name.replace("@", str(l))]
          for name in RECENT_CHANGES}
    f["prior_order_defect"] = t.prior_order_defect
    return t.select("order_id", "supplier_id", "placed_on",
                    **{n: f[n].cast("float64") for n in feature_columns(settings)})


def _order_level(t: Table, settings: FeatureSettings) -> dict:
    """The order itself, and the supplier's tenure, volume and buyers."""
    r, s, l = settings.windows
    amount = t.order_amount_usd.cast("float64")
    mean_amount = _rate(t[f"x_gmv_usd_{l}"], t[f"n_orders_{l}"])
    return {
        "log_amount_usd": (amount + 1.0).ln(),
        "amount_vs_supplier_mean_log": ((amount + 1.0) / (mean_amount + 1.0)).ln(),
        "is_main_category": (t.category == t.main_category).cast("float64"),
        "days_to_ship": t.days_to_ship,
        "days_to_deliver": t.days_to_deliver,
        "has_promised_delivery": t.days_to_deliver.notnull().cast("float64"),
        "is_first_buyer_order": (t.buyer_prior_orders == 0).cast("float64"),
        "buyer_prior_orders_log": _log1p(t.buyer_prior_orders),
        "tenure_days": t.placed_on.delta(t.registered_at.date(), unit="day"),
        "orders_to_date_log": _log1p(t[f"n_orders_{ALL_TIME}"]),
        "orders_per_buyer_to_date": _rate(t[f"n_orders_{ALL_TIME}"], t[f"x_new_buyers_{ALL_TIME}"]),
        "volume_trend": _rate(t[f"n_orders_{s}"] * (l / s), t[f"n_orders_{l}"]),
        "is_cross_border": (t.buyer_country_code != t.country_code).cast("float64"),
        "is_trade_assured": t.is_trade_assured.cast("float64"),
        # the season: holidays and year-end peaks slow shipping and carriers everywhere
        "placed_month": t.placed_on.month(),
        "placed_weekday": t.placed_on.day_of_week.index(),
        "buyer_orders_log": _log1p(t.buyer_orders),
        **{f"{c}_per_order": _rate(t[c], t.buyer_orders) for c in BUYER_HISTORY[1:]},
    }


def _window_evidence(t: Table, settings: FeatureSettings) -> dict:
    """Raw rates and volumes of the facts, per window."""
    r, s, l = settings.windows
    f = {f"orders_{r}_log": _log1p(t[f"n_orders_{r}"])}
    f |= {f"rate_{m}_{r}": _rate(t[f"x_{m}_{r}"], t[f"n_{m}_{r}"]) for m in RECENT_METRICS}
    for w in (s, l):
        f[f"orders_{w}_log"] = _log1p(t[f"n_orders_{w}"])
        f[f"matured_orders_{w}_log"] = _log1p(t[f"n_order_defect_{w}"])
        f[f"mean_days_late_{w}"] = _rate(t[f"x_days_late_{w}"], t[f"n_days_late_{w}"])
        f |= {f"rate_{m}_{w}": _rate(t[f"x_{m}_{w}"], t[f"n_{m}_{w}"]) for m in RATE_METRICS}
    f["matured_orders_all_log"] = _log1p(t[f"n_order_defect_{ALL_TIME}"])
    f |= {f"rate_{m}_all": _rate(t[f"x_{m}_{ALL_TIME}"], t[f"n_{m}_{ALL_TIME}"]) for m in ALL_TIME_METRICS}
    return f


def _leading_signals(t: Table, settings: FeatureSettings) -> dict:
    """Disputes per order, shipping times, and the stocks per order of the short window."""
    r, s, l = settings.windows
    f = {}
    for e in ("disputes_opened", "disputes_lost"):
        f |= {f"{e}_per_order_{w}": _rate(t[f"x_{e}_{w}"], t[f"n_orders_{w}"]) for w in settings.windows}
        f[f"{e}_per_order_all"] = _rate(t[f"x_{e}_{ALL_TIME}"], t[f"n_orders_{ALL_TIME}"])
    for e in ("handling_days", "ship_slack_days", "transit_days"):
        f |= {f"mean_{e}_{w}": _rate(t[f"x_{e}_{w}"], t[f"n_{e}_{w}"]) for w in settings.windows}
    f[f"shipments_per_order_{l}"] = _rate(t[f"n_handling_days_{l}"], t[f"n_orders_{l}"])
    f |= {f"{stock}_per_order": _rate(t[f"x_{stock}_{ALL_TIME}"], t[f"n_orders_{s}"]) for stock in STOCKS}
    return f


def snapshot_points(attributes: Table, first: dt.date, last: dt.date) -> Table:
    """One row per supplier x day on which an order was placed, between first and last."""
    return attributes.filter((_.placed_on >= first) & (_.placed_on <= last)).select(
        "supplier_id", point_on=_.placed_on).distinct()


def typical_orders(attributes: Table, known: Table, as_of: dt.date, lookback_days: int) -> Table:
    """One row per supplier of `known` (supplier_id, main_category): an order typical of it,
    placed on the day after as_of, by a returning buyer placing a second order. Its amount,
    days to ship and days to deliver are the medians over one order per buyer (each
    buyer's first in the lookback_days up to as_of; all suppliers' where it has none), a
    promised delivery date if most of those had one, and its main category. One order per
    buyer, and a short buyer history, because a ring of fake accounts (dozens of orders
    each, never a defect) would otherwise make the typical order one of its own."""
    window = attributes.filter((_.placed_on > as_of - dt.timedelta(days=lookback_days)) & (_.placed_on <= as_of))
    first = ibis.row_number().over(group_by=["supplier_id", "buyer_id"], order_by=["placed_on", "order_id"])
    recent = window.mutate(nth=first).filter(_.nth == 0).left_join(
        known.select("supplier_id", supplier_country=_.country_code), "supplier_id")

    def share(flag) -> ibis.Value:
        return flag.fill_null(False).cast("float64").mean()

    def stats(t: Table, prefix: str) -> dict:
        return {f"{prefix}amount": t.order_amount_usd.cast("float64").median(),
                f"{prefix}ship": t.days_to_ship.median(),
                f"{prefix}deliver": t.days_to_deliver.median(),
                f"{prefix}promised": share(t.days_to_deliver.notnull()),
                f"{prefix}abroad": share(t.buyer_country_code != t.supplier_country),
                f"{prefix}assured": share(t.is_trade_assured),
                **{f"{prefix}{c}": t[c].median() for c in BUYER_HISTORY}}

    own = recent.group_by("supplier_id").aggregate(**stats(recent, "own_"))
    market = recent.aggregate(**stats(recent, "all_"))
    t = known.select("supplier_id", "main_category", "country_code").left_join(own, "supplier_id").cross_join(market)

    def typical(name: str) -> ibis.Value:
        return ibis.coalesce(t[f"own_{name}"], t[f"all_{name}"])

    return t.select(
        order_id="typical:" + t.supplier_id, supplier_id=t.supplier_id, category=t.main_category,
        placed_on=ibis.literal(as_of + dt.timedelta(days=1)), order_amount_usd=typical("amount"),
        days_to_ship=typical("ship").round().cast("int64"),
        days_to_deliver=(typical("promised") >= 0.5).ifelse(typical("deliver").round().cast("int64"), None),
        buyer_prior_orders=ibis.literal(1, "int64"),
        # a buyer abroad, or at home, as most of its buyers are (a code no country has, or its own)
        buyer_country_code=(typical("abroad") >= 0.5).ifelse(ibis.literal("--"), t.country_code),
        is_trade_assured=typical("assured") >= 0.5,
        **{c: typical(c).round().cast("int64") for c in BUYER_HISTORY},
    )
