"""Windowed supplier metrics as of a date, with no buyer carrying more than its share.

Grain of `windowed_metrics`: one row per supplier x metric for one window (the days
`as_of - window_days + 1 .. as_of` of the daily facts), with the raw numerator and
denominator and the buyer-capped ones that every rate, score and decision uses. Grain of
`buyer_evidence`: one row per supplier x metric x buyer, its evidence in each window.

The buyer cap: within one supplier's metric, a buyer's evidence counts at most `cap`
orders, where the cap is the water level at which no buyer holds more than `share` of
the capped total (never below `min_orders`, so that a supplier with few, loyal buyers is
not cut to nothing). A ring of k fake accounts then carries at most about k x share of
the evidence however many orders it places.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import ibis
from ibis import _
from ibis.expr.types import Table

from models.relational import EXACT, exact_sum, left_join_on, ratio


LEVEL_SLACK = 1e-9
EVIDENCE_KEYS = ("supplier_id", "metric", "buyer_id")  # the grain of buyer evidence


@dataclass(frozen=True)
class BuyerCap:
    share: float
    min_orders: float


def in_window(facts: Table, as_of: dt.date, window_days: int) -> Table:
    """Facts of the window_days days ending on as_of (inclusive)."""
    return facts.filter((_.day >= _first_day(as_of, window_days)) & (_.day <= as_of))


def _first_day(as_of: dt.date, window_days: int) -> dt.date:
    return as_of - dt.timedelta(days=window_days - 1)


ONE_DAY = dt.timedelta(days=1)


def buyer_evidence(facts: Table, as_of: dt.date, windows: Iterable[int]) -> Table:
    """One row per supplier x metric x buyer with facts in the longest window: for each window
    of d days ending on as_of, the buyer's summed `numerator_<d>`, `denominator_<d>` (exact
    decimals) and its number of facts `facts_<d>` (0: not a buyer in that window).

    The windows nest, so one pass over the longest one's facts gives every window's sums: a
    window of its own would scan and group its facts again (most of the scorecard's cost)."""
    windows = sorted(set(windows))
    rows = in_window(facts, as_of, windows[-1]).filter(_.metric != "days_late")
    return _signed_sums(rows, {days: rows.day >= _first_day(as_of, days) for days in windows}, {})


@dataclass(frozen=True)
class EvidenceSpan:
    """What a table of buyer evidence sums: for each window, the facts of the window's days
    ending on `as_of`, up to the day `through` (<= as_of). `buyer_evidence(facts, as_of, ...)`
    is the span (as_of, as_of), the only one the warehouse keeps since late facts are
    corrected in place (`evidence_correction`); a shorter `through` is a span whose last days
    are not counted yet."""

    as_of: dt.date
    through: dt.date

    def days(self, window_days: int) -> tuple[dt.date, dt.date]:
        """The first and last day of a window whose facts the span counts."""
        return _first_day(self.as_of, window_days), min(self.as_of, self.through)


def evidence_change(facts: Table, old: EvidenceSpan, new: EvidenceSpan, windows: Iterable[int]) -> Table:
    """One row per supplier x metric x buyer whose `buyer_evidence` changes from the span `old`
    to the span `new` (windows ending on the same or a later day): the facts of the days `new`
    counts and `old` did not added, those of the days `old` counted and `new` does not
    subtracted, in the same columns.

    Facts of a day are final once it is over (models/facts.py), so evidence moved by this
    change is exactly the evidence of the new span, in decimals, for the price of the days
    that moved instead of the whole window, provided the facts of the days both spans count
    are those the old evidence summed. A late file that makes a run recompute facts of
    counted days breaks that: the caller corrects the evidence for the facts it replaced
    (`evidence_correction`) as it replaces them."""
    if new.as_of < old.as_of:
        raise ValueError(f"evidence windows only move forward, not from {old.as_of} back to {new.as_of}")
    windows = sorted(set(windows))
    added, subtracted = {}, {}
    for days in windows:
        (old_first, old_last), (new_first, new_last) = old.days(days), new.days(days)
        added[days] = [(max(new_first, old_last + ONE_DAY), new_last)]
        # the old days before the new window starts, and those after the new span ends
        subtracted[days] = [(old_first, min(old_last, new_first - ONE_DAY)),
                            (max(old_first, new_last + ONE_DAY), old_last)]

    def within(table, spans):
        return ibis.or_(*((table.day >= lo) & (table.day <= hi) for lo, hi in spans if lo <= hi), ibis.literal(False))

    rows = facts.filter(within(facts, [span for spans in [*added.values(), *subtracted.values()] for span in spans]))
    rows = rows.filter(_.metric != "days_late")

    return _nonzero(_signed_sums(rows, {d: within(rows, s) for d, s in added.items()},
                                 {d: within(rows, s) for d, s in subtracted.items()}))


def evidence_correction(replaced: Table, recomputed: Table, span: EvidenceSpan, windows: Iterable[int]) -> Table:
    """One row per supplier x metric x buyer whose evidence of `span` changes when the facts
    `replaced` are replaced by the facts `recomputed` (a late file's versions changed them):
    the recomputed facts of the days the span counts added, the replaced ones subtracted.
    The span stays what it was: moved by this, the evidence is that of the new facts."""
    windows = sorted(set(windows))
    rows = ibis.union(replaced.mutate(sign=ibis.literal(-1, type="int8")),
                      recomputed.mutate(sign=ibis.literal(1, type="int8")))
    first, last = span.days(windows[-1])
    rows = rows.filter((_.metric != "days_late") & (_.day >= first) & (_.day <= last))

    def counted(days, sign):
        return (rows.day >= span.days(days)[0]) & (rows.sign == sign)

    return _nonzero(_signed_sums(rows, {d: counted(d, 1) for d in windows}, {d: counted(d, -1) for d in windows}))


def _nonzero(change: Table) -> Table:
    """The rows of an evidence change that change something (facts replaced by equal ones,
    or a buyer's fact entering one window as another leaves it, cancel out)."""
    sums = [c for c in change.columns if c not in EVIDENCE_KEYS]
    return change.filter(ibis.or_(*(change[c] != 0 for c in sums)))


def _signed_sums(rows: Table, added: dict[int, ibis.Value], subtracted: dict[int, ibis.Value]) -> Table:
    """Per supplier x metric x buyer and window d: the decimal sums of numerator and denominator
    and the count of facts, of the rows `added[d]` selects minus those `subtracted[d]` selects."""
    def signed(value, days):
        branches = [(added[days], value)] + ([(subtracted[days], -value)] if days in subtracted else [])
        return ibis.cases(*branches, else_=ibis.literal(0, type=value.type()))

    sums = {}
    for days in added:
        sums |= {f"numerator_{days}": signed(rows.numerator.cast(EXACT), days).sum(),
                 f"denominator_{days}": signed(rows.denominator.cast(EXACT), days).sum(),
                 f"facts_{days}": signed(ibis.literal(1, type="int64"), days).sum()}
    return rows.group_by(list(EVIDENCE_KEYS)).aggregate(**sums)


def window_evidence(evidence: Table, window_days: int) -> Table:
    """One row per supplier x metric x buyer of one window of `buyer_evidence`: numerator, denominator."""
    inside = evidence.filter(evidence[f"facts_{window_days}"] > 0)
    return inside.select("supplier_id", "metric", "buyer_id",
                         numerator=inside[f"numerator_{window_days}"].cast("float64"),
                         denominator=inside[f"denominator_{window_days}"].cast("float64"))


def water_level(per_buyer: Table, cap: BuyerCap) -> Table:
    """One row per supplier x metric where a buyer is capped: the cap on one buyer's denominator.

    With buyers sorted by evidence d_1 >= d_2 >= ..., capping the top k at level m gives
    m = share * (rest of the evidence) / (1 - share * k); the right k is the one whose m
    falls between d_{k+1} and d_k.

    Only buyers above `min_orders` can be capped (the cap never falls below it), so only
    they are sorted: most buyers of a supplier have a few orders, and the sort was most of
    the cost. The rest count in the total. Without them the last sorted buyer's interval
    reaches down to 0, but an m found there is never below the true level (its line
    overstates the capped total), so the smallest valid m is still the level; a supplier
    none of whose buyers is above min_orders has no row.
    """
    keys, sort = ["supplier_id", "metric"], [ibis.desc("denominator"), "buyer_id"]
    totals = per_buyer.group_by(keys).aggregate(total=exact_sum(_.denominator))
    above = per_buyer.filter(_.denominator > cap.min_orders)
    order = ibis.window(group_by=keys, order_by=sort)
    ranked = left_join_on(above, totals, keys).mutate(
        k=ibis.row_number().over(order) + 1,
        taken=_.denominator.cast(EXACT).sum().over(
            ibis.cumulative_window(group_by=keys, order_by=sort)).cast("float64"),
        next_d=_.denominator.lead().over(order),
    )
    level = ranked.mutate(m=ratio(cap.share * (_.total - _.taken), 1 - cap.share * _.k))
    # Where the true level equals a buyer's evidence (say, exactly 1/share buyers), rounding
    # can put m a hair outside both neighbouring intervals, and the cap would fall to
    # min_orders; a relative slack far below a cent keeps that level.
    inside = (_.m <= _.denominator * (1 + LEVEL_SLACK)) & (_.m >= _.next_d.fill_null(0) * (1 - LEVEL_SLACK))
    valid = level.filter((cap.share * _.k < 1) & inside & (_.m > 0))
    top = ranked.filter(_.k == 1).select("supplier_id", "metric", top=_.denominator, total=_.total)
    no_cap_needed = top.filter(_.top <= cap.share * _.total).select("supplier_id", "metric")
    levels = valid.group_by(["supplier_id", "metric"]).aggregate(level=_.m.min())
    return (left_join_on(top.select("supplier_id", "metric"), levels, ["supplier_id", "metric"])
            .anti_join(no_cap_needed, ["supplier_id", "metric"])
            .mutate(level=ibis.greatest(_.level.fill_null(0.0), cap.min_orders)))


def windowed_metrics(facts: Table, as_of: dt.date, window_days: int, cap: BuyerCap,
                     evidence: Table | None = None) -> Table:
    """Per supplier x metric over the window: raw and buyer-capped numerator and denominator.
    `evidence`, a `buyer_evidence` of a set of windows including this one, saves the pass over `facts`."""
    if evidence is None:
        evidence = buyer_evidence(facts, as_of, [window_days])
    per_buyer = window_evidence(evidence, window_days)
    levels = water_level(per_buyer, cap)
    weighted = left_join_on(per_buyer, levels, ["supplier_id", "metric"]).mutate(
        weight=ibis.cases((_.level.isnull() | (_.denominator <= _.level), 1.0),
                          else_=_.level / _.denominator))
    return weighted.group_by(["supplier_id", "metric"]).aggregate(
        raw_numerator=exact_sum(_.numerator),
        raw_denominator=exact_sum(_.denominator),
        numerator=exact_sum(_.numerator * _.weight),
        denominator=exact_sum(_.denominator * _.weight),
        buyers=_.count(),  # per_buyer has one row per buyer: no distinct count needed
        top_buyer_share=ratio(_.denominator.max(), exact_sum(_.denominator)),
    ).mutate(window_days=ibis.literal(window_days, type="int32"), as_of_date=ibis.literal(as_of))


def median_days_late(facts: Table, as_of: dt.date, window_days: int) -> Table:
    """One row per supplier: the median days late of its late deliveries in the window."""
    late = in_window(facts, as_of, window_days).filter(_.metric == "days_late")
    return late.group_by("supplier_id").aggregate(median_days_late=_.numerator.median())
