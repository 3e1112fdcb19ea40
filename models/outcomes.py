"""Order outcomes (shared/CONTRACT.md section 2), each decided at the moment it becomes due.

Grain of `order_outcomes`: one row per order placed by the as-of date.

Each outcome has a due moment and is decided from the record versions known then
(`updated_at` before it), never from later ones:

- late shipment: due at the end of `promised_ship_by`;
- on-time delivery: due at the end of `promised_delivery_by` (orders without one have
  no on-time delivery outcome);
- non-delivery: due 30 days after the delivery deadline (the deadline being the end of
  `promised_delivery_by`, or of `promised_ship_by` + 15 days when none was promised, so
  that the contract's "ship-by + 45 days" holds); a `not_received` dispute decided for
  the buyer also counts;
- maturity: 37 days after the delivery deadline, later if a dispute opened before then is
  still undecided, or at the cancellation for a cancelled order. The order defect
  (supplier cancellation, non-delivery or dispute lost) is read at maturity.

Because a decided outcome never looks at later versions, the outcome of an event due on
day d is the same in a run on day d and in any later run (unless a late file brings a
version dated before d): metrics can be kept as append-only daily facts, and features
for an order placed at t see exactly what was known at t. An outcome not yet due at the
as-of date is NULL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
from ibis import _
from ibis.expr.types import Table

from models.relational import exact_sum, left_join_on

BUYER_FAVOURED = ("buyer_full_refund", "buyer_partial_refund", "replacement")
DECIDED_STATUSES = ("resolved", "withdrawn")


@dataclass(frozen=True)
class OutcomeRules:
    """The contract's clocks, in days (config `outcomes:`)."""

    non_delivery_days: int
    undated_delivery_days: int
    maturity_days: int


def _day_end(day) -> ibis.Value:
    """The first instant after `day` (a date column): deadlines run to the end of their day."""
    return (day + ibis.interval(days=1)).cast("timestamp")


PLACED_COLUMNS = ("supplier_id", "buyer_id", "category", "placed_at", "order_amount_usd",
                  "promised_ship_by", "promised_delivery_by")


def orders_as_placed(orders: Table, as_of_end, columns: tuple[str, ...] = PLACED_COLUMNS) -> Table:
    """One row per order: `columns` of its first known version (the order as placed), known
    before as_of_end."""
    known = orders.filter(_.updated_at < as_of_end)
    # The earliest version by (updated_at, load_seq, line_number), a unique key: an aggregate
    # picking it costs a third less than numbering every version in a window.
    earliest = ibis.struct({"updated_at": known.updated_at, "load_seq": known.load_seq,
                            "line_number": known.line_number})
    first = known.group_by("order_id").aggregate(placed=ibis.struct({c: known[c] for c in columns}).argmin(earliest))
    return first.select("order_id", *(first.placed[c].name(c) for c in columns))


def with_deadlines(placed: Table, rules: OutcomeRules) -> Table:
    """Adds each outcome's due moment (timestamps at day boundaries)."""
    delivery_due = ibis.coalesce(
        _day_end(placed.promised_delivery_by),
        _day_end(placed.promised_ship_by) + ibis.interval(days=rules.undated_delivery_days),
    )
    return placed.mutate(
        ship_due_at=_day_end(placed.promised_ship_by),
        delivery_due_at=delivery_due,
        non_delivery_due_at=delivery_due + ibis.interval(days=rules.non_delivery_days),
        maturity_due_at=delivery_due + ibis.interval(days=rules.maturity_days),
    )


def cancellations(orders: Table, as_of_end) -> Table:
    """One row per order cancelled before as_of_end: when, and by whom (first cancelled version)."""
    cancelled = orders.filter((_.status == "cancelled") & (_.updated_at < as_of_end))
    rank = ibis.row_number().over(group_by=_.order_id, order_by=[_.updated_at, _.load_seq])
    return (cancelled.mutate(r=rank).filter(_.r == 0)
            .select("order_id", cancelled_at=_.updated_at, cancelled_by=_.cancelled_by))


def shipments_at(deadlines: Table, shipments: Table, cuts: dict[str, str]) -> Table:
    """Per order, for each cut (prefix -> a moment column of `deadlines`): the shipments known
    before that moment, and how many of them were shipped and delivered before it.

    One join and one pass over the shipment versions for every cut: a version counts for a
    cut only if it was recorded (`updated_at`) before it. An order with no shipment known
    at a cut has 0 shipments there (NULL when it has no shipment at all)."""
    moments = deadlines.select("order_id", *cuts.values())
    versions = shipments.join(moments, "order_id")
    per_shipment = {}
    for prefix, cut in cuts.items():
        moment = versions[cut]
        known = (versions.updated_at < moment).fill_null(False)
        per_shipment |= {
            f"{prefix}_known": known.any(),
            f"{prefix}_shipped": (known & (versions.shipped_at < moment).fill_null(False)).any(),
            f"{prefix}_delivered": (known & (versions.delivered_at < moment).fill_null(False)).any(),
            f"{prefix}_tracking_valid": known.ifelse(versions.has_valid_tracking.fill_null(False).cast("int64"),
                                                     None).min(),
            f"{prefix}_delivered_at": known.ifelse(versions.delivered_at, None).min(),
        }
    shipped = versions.group_by(["order_id", "shipment_id"]).aggregate(**per_shipment)
    per_order = {}
    for prefix in cuts:
        per_order |= {
            f"{prefix}_shipments": shipped[f"{prefix}_known"].cast("int64").sum(),
            f"{prefix}_shipped": shipped[f"{prefix}_shipped"].cast("int64").sum(),
            f"{prefix}_delivered": shipped[f"{prefix}_delivered"].cast("int64").sum(),
            f"{prefix}_tracked": shipped[f"{prefix}_tracking_valid"].sum(),
            f"{prefix}_last_delivered_at": shipped[f"{prefix}_delivered_at"].max(),
        }
    return shipped.group_by("order_id").aggregate(**per_order)


def dispute_decisions(disputes: Table, deadlines: Table, as_of_end) -> Table:
    """Per order, its disputes opened before maturity was due, as known before as_of_end:
    how many, how many still undecided, the last decision time, and what was lost."""
    known = disputes.filter(_.updated_at < as_of_end).join(
        deadlines.select("order_id", "maturity_due_at"), "order_id")
    per_dispute = known.group_by(["order_id", "dispute_id"]).aggregate(
        opened_at=_.opened_at.min(),
        decided_at=(_.status.isin(DECIDED_STATUSES)).ifelse(_.updated_at, None).min(),
        lost=_.outcome.isin(BUYER_FAVOURED).fill_null(False).any(),
        lost_not_received=(_.outcome.isin(BUYER_FAVOURED) & (_.reason == "not_received")).fill_null(False).any(),
        decided_for_either=(_.outcome.notnull() & (_.outcome != "withdrawn")).fill_null(False).any(),
        refund_usd=_.outcome.isin(BUYER_FAVOURED).ifelse(_.refund_amount_usd, 0).max(),
        maturity_due_at=_.maturity_due_at.max(),
    ).filter(_.opened_at < _.maturity_due_at)
    return per_dispute.group_by("order_id").aggregate(
        disputes=_.count(),
        disputes_undecided=_.decided_at.isnull().cast("int64").sum(),
        last_decided_at=_.decided_at.max(),
        any_lost=_.lost.any(),
        lost_not_received=_.lost_not_received.any(),
        any_decided=_.decided_for_either.any(),
        refund_usd=exact_sum(_.refund_usd),
    )


CONTRACT_RULES = OutcomeRules(non_delivery_days=30, undated_delivery_days=15, maturity_days=37)


def order_outcomes(orders: Table, shipments: Table, disputes: Table, as_of: dt.date,
                   rules: OutcomeRules = CONTRACT_RULES) -> Table:
    """One row per order placed by `as_of`: its due days and the outcomes decided by then."""
    as_of_end = ibis.literal(as_of + dt.timedelta(days=1)).cast("timestamp")
    placed = orders_as_placed(orders, as_of_end).filter(_.placed_at < as_of_end)
    base = with_deadlines(placed, rules)
    joined = base
    for right in (cancellations(orders, as_of_end),
                  shipments_at(base, shipments, {"at_ship_due": "ship_due_at", "at_delivery_due": "delivery_due_at",
                                                 "at_nd": "non_delivery_due_at"}),
                  dispute_decisions(disputes, base, as_of_end)):
        joined = left_join_on(joined, right, "order_id")
    return _decide(joined, as_of_end)


def _cancelled_before(t: Table, moment) -> ibis.Value:
    return t.cancelled_at.notnull() & (t.cancelled_at < moment)


def _all_delivered(t: Table, prefix: str) -> ibis.Value:
    return (t[f"{prefix}_shipments"].fill_null(0) > 0) & (t[f"{prefix}_delivered"] == t[f"{prefix}_shipments"])


def _matured_at(t: Table) -> ibis.Value:
    """At the cancellation; else at the maturity cut, or at the last decision if later; NULL
    while a dispute opened before the cut is undecided."""
    return ibis.cases(
        (_cancelled_before(t, t.maturity_due_at), t.cancelled_at),
        (t.disputes_undecided.fill_null(0) > 0, ibis.null("timestamp")),
        else_=ibis.greatest(t.maturity_due_at, t.last_decided_at.fill_null(t.maturity_due_at)),
    )


def _decide(t: Table, as_of_end) -> Table:
    """The flags, each NULL until its due moment has passed by as_of_end."""
    t = t.mutate(matured_at=_matured_at(t))
    ship_due = (t.ship_due_at <= as_of_end) & ~_cancelled_before(t, t.ship_due_at)
    delivery_due = (t.promised_delivery_by.notnull() & (t.delivery_due_at <= as_of_end)
                    & ~_cancelled_before(t, t.delivery_due_at))
    nd_due = (t.non_delivery_due_at <= as_of_end) & ~_cancelled_before(t, t.non_delivery_due_at)
    matured = t.matured_at.notnull() & (t.matured_at <= as_of_end)
    is_cancelled = _cancelled_before(t, t.maturity_due_at)
    supplier_cancelled = is_cancelled & (t.cancelled_by == "supplier")
    non_delivery = ~is_cancelled & (~_all_delivered(t, "at_nd") | t.lost_not_received.fill_null(False))
    lost = t.any_lost.fill_null(False)
    days_late = (t.at_nd_last_delivered_at.epoch_seconds() - t.delivery_due_at.epoch_seconds()) / 86400.0
    return t.select(
        "order_id", "supplier_id", "buyer_id", "category", "placed_at", "order_amount_usd",
        "promised_ship_by", "promised_delivery_by",
        placed_on=t.placed_at.date(),
        ship_due_on=t.promised_ship_by,
        delivery_due_on=t.promised_delivery_by,
        non_delivery_due_on=(t.non_delivery_due_at - ibis.interval(days=1)).date(),
        matured_on=matured.ifelse((t.matured_at - ibis.interval(microseconds=1)).date(), None),
        is_shipped_late=ship_due.ifelse(~(t.at_ship_due_shipped.fill_null(0) > 0), None),
        is_delivered_on_time=delivery_due.ifelse(_all_delivered(t, "at_delivery_due"), None),
        has_valid_tracking=(nd_due & (t.at_nd_shipments.fill_null(0) > 0)).ifelse(
            t.at_nd_tracked == t.at_nd_shipments, None),
        days_late=(nd_due & _all_delivered(t, "at_nd") & (days_late > 0)).ifelse(days_late, None),
        is_matured=matured,
        is_supplier_cancellation=matured.ifelse(supplier_cancelled, None),
        is_non_delivery=matured.ifelse(non_delivery, None),
        has_dispute=matured.ifelse(t.disputes.fill_null(0) > 0, None),
        has_decided_dispute=matured.ifelse(t.any_decided.fill_null(False), None),
        is_dispute_lost=matured.ifelse(lost, None),
        refund_usd=matured.ifelse(t.refund_usd.fill_null(0), None),
        is_defect=matured.ifelse(supplier_cancelled | non_delivery | lost, None),
    )
