"""Point-in-time features of orders for the risk model, and their labels.

Grain of `order_features`: one row per order (placed order, or a supplier's typical
order), with the features known when it was placed. Of `order_labels`: one row per order
matured by the outcomes' as-of date, with `is_defect`.

What an order placed at t, on day d, sees was known before day d began:

- supplier evidence: the daily facts of days <= d-1, summed over each window ending on
  d-1. Facts are final once their day is over (models/outcomes.py), so these sums are
  exactly what a run on day d would have had. The sums come from one cumulative stream
  per supplier into which every lookup drops a marker row (zero-valued, sorted before the
  facts of its day): the running total at a marker is the evidence before its day, and a
  window is the difference of two markers. Window functions and equality joins only: it
  runs on Spark as on DuckDB, in time linear in the rows, where an inequality join of
  lookups to cumulative rows grows with the square of a supplier's active days;
- supplier attributes (category, country, registration): the latest supplier version
  with `updated_at` before day d, an inequality join plus `row_number` (PySpark has no
  asof join, shared/STACK.md);
- shrunk rates: the supplier's window evidence under an empirical-Bayes prior
  (models/shrinkage.py) fitted on the first day of d's month from the evidence before it;
- buyer history: orders of the same buyer with the same supplier placed before t.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import ibis
from ibis import _
from ibis.expr.types import Table

from models.facts import BY_NAME
from models.outcomes import BUYER_FAVOURED, DECIDED_STATUSES
from models.shrinkage import COHORT_LEVELS, PriorSettings, beta_posterior, failures, fit_priors

RATE_METRICS = ("order_defect", "late_shipment", "on_time_delivery", "non_delivery", "supplier_cancellation",
                "dispute", "dispute_loss", "valid_tracking", "refund_share")
SHRUNK_METRICS = ("order_defect", "late_shipment", "on_time_delivery", "non_delivery", "supplier_cancellation",
                  "dispute")
TREND_METRICS = ("order_defect", "late_shipment", "on_time_delivery", "non_delivery")
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
ALL_TIME = 0  # the window label of evidence since the supplier's first fact
# Shrunk rates are failure rates: a success rate is named after its failure.
FAILURE_NAME = {"on_time_delivery": "late_delivery"}


def _failure(metric: str) -> str:
    return FAILURE_NAME.get(metric, metric)

Cache = Callable[[str, Table], Table]


@dataclass(frozen=True)
class FeatureSettings:
    """Windows (short, long) in days, the EB prior settings and the short-window strength."""

    short_window_days: int
    long_window_days: int
    priors: PriorSettings
    recent_prior_strength: float
    recent_window_days: int = 30

    @property
    def windows(self) -> tuple[int, int, int]:
        return self.recent_window_days, self.short_window_days, self.long_window_days


def _no_cache(name: str, table: Table) -> Table:
    return table


def _day_number(day) -> ibis.Value:
    return day.epoch_days().cast("int64")


def order_labels(outcomes: Table) -> Table:
    """One row per order matured by the outcomes' as-of date: order_id, is_defect (label)."""
    return outcomes.filter(_.is_matured).select("order_id", is_defect=_.is_defect.cast("boolean"))


def order_attributes(placed: Table) -> Table:
    """One row per order as placed: placed_on, the days allowed to ship and to deliver, and
    how many orders the same buyer had placed with the same supplier strictly before it
    (orders placed at the same instant do not count as before)."""
    before = ibis.rank().over(group_by=["supplier_id", "buyer_id"], order_by="placed_at")
    placed_on = placed.placed_at.date()
    return placed.select(
        "order_id", "supplier_id", "buyer_id", "category", "placed_at", "order_amount_usd", placed_on=placed_on,
        days_to_ship=placed.promised_ship_by.delta(placed_on, unit="day"),
        days_to_deliver=placed.promised_delivery_by.delta(placed_on, unit="day"),
        buyer_prior_orders=before.cast("int64"),
    )


def dispute_events(disputes: Table, attributes: Table) -> Table:
    """One row per dispute of a known order: its supplier, the day it became known (its
    first version) and the day it was first known decided for the buyer (NULL if never)."""
    lost = _.status.isin(DECIDED_STATUSES) & _.outcome.isin(BUYER_FAVOURED)
    per_dispute = disputes.group_by(["dispute_id", "order_id"]).aggregate(
        known_at=_.updated_at.min(), lost_at=lost.ifelse(_.updated_at, None).min())
    return per_dispute.join(attributes.select("order_id", "supplier_id"), "order_id").select(
        "supplier_id", opened_on=_.known_at.date(), lost_on=_.lost_at.date())


def shipment_events(shipments: Table, attributes: Table) -> Table:
    """One row per shipment of a known order: its supplier, the days its shipping and its
    delivery became known (the first version saying so), handling days (placed to
    shipped), slack days (shipped to the end of the ship-by day) and transit days."""
    shipped, delivered = _.shipped_at.notnull(), _.delivered_at.notnull()
    per_shipment = shipments.group_by(["shipment_id", "order_id"]).aggregate(
        shipped_known_at=shipped.ifelse(_.updated_at, None).min(),
        shipped_at=_.shipped_at.argmin(_.updated_at, where=shipped),
        delivered_known_at=delivered.ifelse(_.updated_at, None).min(),
        delivered_at=_.delivered_at.argmin(_.updated_at, where=delivered))
    t = per_shipment.join(attributes.select("order_id", "supplier_id", "placed_at", "placed_on", "days_to_ship"),
                          "order_id")
    shipped_s = t.shipped_at.epoch_seconds()
    deadline_s = (t.placed_on.epoch_days() + t.days_to_ship + 1) * 86400
    return t.select("supplier_id", shipped_on=t.shipped_known_at.date(), delivered_on=t.delivered_known_at.date(),
                    handling_days=(shipped_s - t.placed_at.epoch_seconds()) / 86400.0,
                    slack_days=(deadline_s - shipped_s) / 86400.0,
                    transit_days=(t.delivered_at.epoch_seconds() - shipped_s) / 86400.0)


def _event_sums(events: Table, day_column: str, name: str, value, columns: list[str]) -> Table:
    """Per supplier x day: n_<name> = how many events, x_<name> = the sum of their value."""
    known = events.mutate(value=value).filter(events[day_column].notnull() & _.value.notnull())
    summed = known.group_by("supplier_id", day=known[day_column]).aggregate(
        x=_.value.cast("float64").sum(), n=_.count().cast("float64"))
    return summed.select("supplier_id", "day", **{
        c: summed.x if c == f"x_{name}" else summed.n if c == f"n_{name}" else ibis.literal(0.0) for c in columns})


def daily_evidence(facts: Table, attributes: Table, shipments: Table, disputes: Table) -> Table:
    """One row per supplier x day with any evidence: x_<m>, n_<m> for each metric of
    FACT_EVIDENCE and each event of EVENTS."""
    sums = {}
    for m in FACT_EVIDENCE:
        hit = facts.metric == m
        sums[f"x_{m}"] = hit.ifelse(facts.numerator, 0.0).sum()
        sums[f"n_{m}"] = hit.ifelse(facts.denominator, 0.0).sum()
    columns = [*sums, *(f"{p}_{e}" for e in EVENTS for p in ("x", "n"))]
    from_facts = facts.group_by(["supplier_id", "day"]).aggregate(**sums).mutate(
        **{c: ibis.literal(0.0) for c in columns if c not in sums})
    firsts = attributes.filter(_.buyer_prior_orders == 0)
    disputed = dispute_events(disputes, attributes)
    shipped = shipment_events(shipments, attributes)
    one = ibis.literal(1.0)
    parts = [from_facts.select("supplier_id", "day", *columns),
             _event_sums(firsts, "placed_on", "new_buyers", one, columns),
             _event_sums(disputed, "opened_on", "disputes_opened", one, columns),
             _event_sums(disputed, "lost_on", "disputes_lost", one, columns),
             _event_sums(shipped, "shipped_on", "handling_days", shipped.handling_days, columns),
             _event_sums(shipped, "shipped_on", "ship_slack_days", shipped.slack_days, columns),
             _event_sums(shipped, "delivered_on", "transit_days", shipped.transit_days, columns)]
    both = ibis.union(*parts)
    return both.group_by(["supplier_id", "day"]).aggregate(**{c: both[c].sum() for c in columns})


def evidence_before(daily: Table, points: Table, windows: tuple[int, ...]) -> Table:
    """One row per point (supplier_id, point_on): x_<m>_<w>, n_<m>_<w> summed over the facts
    of the w days before point_on (w = ALL_TIME: every day before it)."""
    values = [c for c in daily.columns if c[:2] in ("x_", "n_")]
    facts = daily.select("supplier_id", key=_day_number(daily.day), kind=ibis.literal(1, "int32"),
                         point_on=ibis.null("date"), lag=ibis.literal(-1, "int32"), **{c: daily[c] for c in values})
    lags = sorted({ALL_TIME, *windows})
    markers = [points.select("supplier_id", key=_day_number(points.point_on) - lag, kind=ibis.literal(0, "int32"),
                             point_on=points.point_on, lag=ibis.literal(lag, "int32"),
                             **{c: ibis.literal(0.0) for c in values}) for lag in lags]
    stream = ibis.union(facts, *markers)
    running = ibis.cumulative_window(group_by="supplier_id", order_by=["key", "kind"])
    totals = stream.mutate(**{c: stream[c].sum().over(running) for c in values}).filter(_.kind == 0)
    at = {f"{c}@{lag}": (totals.lag == lag).ifelse(totals[c], None).max() for c in values for lag in lags}
    wide = totals.group_by(["supplier_id", "point_on"]).aggregate(**at)
    sums = {f"{c}_{w}": wide[f"{c}@{ALL_TIME}"] - (wide[f"{c}@{w}"] if w != ALL_TIME else 0.0)
            for c in values for w in sorted({ALL_TIME, *windows})}
    return wide.select("supplier_id", "point_on", **sums)


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
                prior_mean=_.mean, prior_strength=_.strength.cast("float64")))
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
             "tenure_days", "orders_to_date_log", "orders_per_buyer_to_date", "volume_trend"]
    names += [f"orders_{r}_log"] + [f"rate_{m}_{r}" for m in RECENT_METRICS]
    for w in (s, l):
        names += [f"orders_{w}_log", f"matured_orders_{w}_log", f"mean_days_late_{w}"]
        names += [f"rate_{m}_{w}" for m in RATE_METRICS]
    names += [f"matured_orders_all_log"] + [f"rate_{m}_all" for m in ALL_TIME_METRICS]
    names += [f"{e}_per_order_{w}" for e in ("disputes_opened", "disputes_lost") for w in (*settings.windows, "all")]
    names += [f"mean_{e}_{w}" for e in EVENTS[3:] for w in settings.windows] + [f"shipments_per_order_{l}"]
    names += [f"shrunk_{_failure(m)}_{w}" for w in (l, s) for m in SHRUNK_METRICS]
    names += [f"trend_{_failure(m)}" for m in TREND_METRICS] + ["prior_order_defect"]
    return names


def supplier_context(attributes: Table, facts: Table, suppliers: Table, shipments: Table, disputes: Table,
                     points: Table, months: list[dt.date], settings: FeatureSettings,
                     cache: Cache = _no_cache) -> Table:
    """One row per point (supplier_id, point_on): attributes, window evidence and shrunk
    rates of the supplier as known before point_on. `months` must hold the first day of
    every point's month (`month_starts`). `cache(name, table)` may materialise an
    intermediate table (the pipeline's choice; the identity by default)."""
    month_points = ibis.union(*(suppliers.select("supplier_id").distinct().mutate(point_on=ibis.literal(m))
                                for m in months))
    points = points.select("supplier_id", "point_on").distinct()
    all_points = cache("risk_points", ibis.union(points, month_points, distinct=True))
    daily = cache("risk_daily_evidence", daily_evidence(facts, attributes, shipments, disputes))
    evidence = cache("risk_evidence", evidence_before(daily, all_points, settings.windows))
    versions = cache("risk_versions", supplier_versions_before(suppliers, all_points))
    priors = cache("risk_priors", cohort_priors(evidence.filter(_.point_on.isin(months)),
                                                versions.filter(_.point_on.isin(months)), months, settings))
    at_points = evidence.join(points, ["supplier_id", "point_on"])
    shrunk = shrunk_evidence(at_points, versions, priors, settings)
    joined = at_points.left_join(versions, ["supplier_id", "point_on"]).select(
        *at_points.columns, "main_category", "registered_at")
    return joined.left_join(shrunk, ["supplier_id", "point_on"]).select(
        *joined.columns, *(c for c in shrunk.columns if c not in ("supplier_id", "point_on")))


def order_features(orders: Table, context: Table, settings: FeatureSettings) -> Table:
    """One row per order: order_id, supplier_id, placed_on and the features of
    `feature_columns(settings)` (float64; NULL where unknown), from order attributes
    (`order_attributes` or `typical_orders`) and the supplier context of their day."""
    r, s, l = settings.windows
    t = orders.join(context, [orders.supplier_id == context.supplier_id, orders.placed_on == context.point_on])
    amount = t.order_amount_usd.cast("float64")
    mean_amount = _rate(t[f"x_gmv_usd_{l}"], t[f"n_orders_{l}"])
    f = {
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
    }
    f[f"orders_{r}_log"] = _log1p(t[f"n_orders_{r}"])
    f |= {f"rate_{m}_{r}": _rate(t[f"x_{m}_{r}"], t[f"n_{m}_{r}"]) for m in RECENT_METRICS}
    f["matured_orders_all_log"] = _log1p(t[f"n_order_defect_{ALL_TIME}"])
    f |= {f"rate_{m}_all": _rate(t[f"x_{m}_{ALL_TIME}"], t[f"n_{m}_{ALL_TIME}"]) for m in ALL_TIME_METRICS}
    for e in EVENTS[3:]:
        f |= {f"mean_{e}_{w}": _rate(t[f"x_{e}_{w}"], t[f"n_{e}_{w}"]) for w in settings.windows}
    f[f"shipments_per_order_{l}"] = _rate(t[f"n_handling_days_{l}"], t[f"n_orders_{l}"])
    for e in ("disputes_opened", "disputes_lost"):
        for w in settings.windows:
            f[f"{e}_per_order_{w}"] = _rate(t[f"x_{e}_{w}"], t[f"n_orders_{w}"])
        f[f"{e}_per_order_all"] = _rate(t[f"x_{e}_{ALL_TIME}"], t[f"n_orders_{ALL_TIME}"])
    for w in (s, l):
        f[f"orders_{w}_log"] = _log1p(t[f"n_orders_{w}"])
        f[f"matured_orders_{w}_log"] = _log1p(t[f"n_order_defect_{w}"])
        f[f"mean_days_late_{w}"] = _rate(t[f"x_days_late_{w}"], t[f"n_days_late_{w}"])
        f |= {f"rate_{m}_{w}": _rate(t[f"x_{m}_{w}"], t[f"n_{m}_{w}"]) for m in RATE_METRICS}
    shrunk = [f"shrunk_{_failure(m)}" for m in SHRUNK_METRICS]
    f |= {f"{c}_{w}": t[f"{c}_{w}"] for c in shrunk for w in (l, s)}
    f |= {f"trend_{_failure(m)}": t[f"shrunk_{_failure(m)}_{s}"] - t[f"shrunk_{_failure(m)}_{l}"]
          for m in TREND_METRICS}
    f["prior_order_defect"] = t.prior_order_defect
    names = feature_columns(settings)
    return t.select("order_id", "supplier_id", "placed_on", **{n: f[n].cast("float64") for n in names})


def snapshot_points(attributes: Table, first: dt.date, last: dt.date) -> Table:
    """One row per supplier x day on which an order was placed, between first and last."""
    return attributes.filter((_.placed_on >= first) & (_.placed_on <= last)).select(
        "supplier_id", point_on=_.placed_on).distinct()


def typical_orders(attributes: Table, known: Table, as_of: dt.date, lookback_days: int) -> Table:
    """One row per supplier of `known` (supplier_id, main_category): an order typical of it,
    placed on the day after as_of. Its median amount, days to ship and days to deliver
    over its orders placed in the lookback_days up to as_of (all suppliers' medians where
    it has none), its main category, a returning buyer with its repeat buyers' median
    history, and a promised delivery date if most of its orders had one."""
    recent = attributes.filter((_.placed_on > as_of - dt.timedelta(days=lookback_days)) & (_.placed_on <= as_of))

    def stats(t: Table, prefix: str) -> dict:
        return {f"{prefix}amount": t.order_amount_usd.cast("float64").median(),
                f"{prefix}ship": t.days_to_ship.median(),
                f"{prefix}deliver": t.days_to_deliver.median(),
                f"{prefix}promised": t.days_to_deliver.notnull().cast("float64").mean(),
                f"{prefix}history": (t.buyer_prior_orders > 0).ifelse(t.buyer_prior_orders, None).median()}

    own = recent.group_by("supplier_id").aggregate(**stats(recent, "own_"))
    market = recent.aggregate(**stats(recent, "all_"))
    t = known.select("supplier_id", "main_category").left_join(own, "supplier_id").cross_join(market)

    def typical(name: str) -> ibis.Value:
        return ibis.coalesce(t[f"own_{name}"], t[f"all_{name}"])

    return t.select(
        order_id="typical:" + t.supplier_id, supplier_id=t.supplier_id, category=t.main_category,
        placed_on=ibis.literal(as_of + dt.timedelta(days=1)), order_amount_usd=typical("amount"),
        days_to_ship=typical("ship").round().cast("int64"),
        days_to_deliver=(typical("promised") >= 0.5).ifelse(typical("deliver").round().cast("int64"), None),
        buyer_prior_orders=ibis.greatest(typical("history").round().fill_null(1), 1).cast("int64"),
    )
