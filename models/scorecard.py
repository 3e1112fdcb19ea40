"""Everything decided about suppliers on one as-of date, from their daily facts.

Grain of `supplier_metrics`: one row per supplier x metric x window; of `rankings`: one
row per supplier known at the as-of date (the published contract's columns and more).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import ibis
from ibis import _
from ibis.expr.types import Table

from models.facts import BY_NAME, METRICS
from models.metrics import BuyerCap, buyer_evidence, median_days_late, windowed_metrics
from models.policy import ProtectionRules, protection_decisions
from models.relational import left_join_on, ratio
from models.score import Component, component_scores, recent_rates, supplier_scores
from models.shrinkage import PriorSettings, shrunk_rates


@dataclass(frozen=True)
class ScoringSettings:
    """The config's `scoring:` section (config/suprel.yaml documents each setting)."""

    long_window_days: int
    short_window_days: int
    buyer_cap: BuyerCap
    priors: PriorSettings
    recent_prior_strength: float
    components: tuple[Component, ...]
    tier_bars: dict[str, float]
    targets: dict[str, float]


@dataclass(frozen=True)
class ScoringPolicy(ScoringSettings):
    """Everything the scorecard decides with: `scoring:` plus `protection:`."""

    protection: ProtectionRules


def suppliers_as_of(suppliers: Table, as_of: dt.date) -> Table:
    """One row per supplier known at as_of: its latest version's attributes and account age."""
    as_of_end = ibis.literal(as_of + dt.timedelta(days=1)).cast("timestamp")
    known = suppliers.filter(_.updated_at < as_of_end)
    latest = ibis.window(group_by="supplier_id", order_by=[ibis.desc("updated_at"), ibis.desc("load_seq"),
                                                             ibis.desc("line_number")])
    current = known.mutate(r=ibis.row_number().over(latest)).filter(_.r == 0)
    return current.select(
        "supplier_id", "supplier_name", "country_code", "main_category", "registered_at",
        account_age_days=ibis.literal(as_of).delta(current.registered_at.date(), unit="day"),
    )


Checkpoint = Callable[[Table, str], Table]


def _as_is(table: Table, _name: str) -> Table:
    return table


def supplier_metrics(facts: Table, suppliers: Table, as_of: dt.date, policy: ScoringPolicy,
                     checkpoint: Checkpoint = _as_is, evidence: Table | None = None) -> Table:
    """Per supplier x metric x window, for every known supplier: raw and capped evidence,
    raw rate, target and status (`no_evidence` where the supplier has none).

    `evidence`, the `buyer_evidence` of as_of over `evidence_windows(policy)` if the caller
    keeps one, saves grouping the facts of the long window."""
    days_of_windows = evidence_windows(policy)
    if evidence is None:
        evidence = checkpoint(buyer_evidence(facts, as_of, days_of_windows), "buyer_evidence")
    windows = []
    for days in days_of_windows:
        found = windowed_metrics(facts, as_of, days, policy.buyer_cap, evidence)
        grid = ibis.union(*(suppliers.select("supplier_id", metric=ibis.literal(m.name))
                            for m in METRICS if m.name != "days_late"))
        complete = left_join_on(grid, found.drop("window_days", "as_of_date"), ["supplier_id", "metric"])
        windows.append(complete.mutate(
            window_days=ibis.literal(days, type="int32"), as_of_date=ibis.literal(as_of),
            **{c: _[c].fill_null(0.0) for c in ("raw_numerator", "raw_denominator", "numerator", "denominator")},
            buyers=_.buyers.fill_null(0)))
    metrics = ibis.union(*windows)
    targets = policy.targets.items()
    rate = ibis.cases((_.raw_denominator > 0, _.raw_numerator / _.raw_denominator), else_=ibis.null("float64"))
    metrics = metrics.mutate(
        rate=rate,
        target=ibis.cases(*((_.metric == name, float(value)) for name, value in targets), else_=ibis.null("float64")),
        higher_is_better=_.metric.isin([m.name for m in METRICS if m.higher_is_better]),
    )
    meets = ibis.cases((_.higher_is_better, _.rate >= _.target), else_=_.rate <= _.target)
    status = ibis.cases((_.rate.isnull(), "no_evidence"), (_.target.isnull(), ibis.null("string")),
                        (meets, "meets"), else_="misses")
    return metrics.mutate(status=status).drop("higher_is_better")


def evidence_windows(policy: ScoringSettings) -> tuple[int, ...]:
    """The window lengths, in days, of every supplier metric: the long one and the short one."""
    return (policy.long_window_days, policy.short_window_days)


def _shrunk(metrics: Table, suppliers: Table, days: int, policy: ScoringPolicy) -> Table:
    in_window = metrics.filter(_.window_days == days)
    directions = {c.metric: BY_NAME[c.metric].higher_is_better for c in policy.components}
    return shrunk_rates(in_window, suppliers, directions, policy.priors)


def _wide(metrics: Table, days: int) -> Table:
    """The published evidence and raw rates of one window, one row per supplier."""
    w = metrics.filter(_.window_days == days)

    def pick(metric, value):
        return (w.metric == metric).ifelse(w[value], None).max()

    return w.group_by("supplier_id").aggregate(
        orders=pick("orders", "raw_denominator"), gmv_usd=pick("gmv_usd", "raw_numerator"),
        uncapped_order_share=ratio(pick("orders", "denominator"), pick("orders", "raw_denominator")),
        distinct_buyers=pick("orders", "buyers"), top_buyer_share=pick("orders", "top_buyer_share"),
        matured_orders=pick("order_defect", "denominator"),
        on_time_delivery_rate=pick("on_time_delivery", "rate"), late_shipment_rate=pick("late_shipment", "rate"),
        order_defect_rate=pick("order_defect", "rate"), dispute_loss_rate=pick("dispute_loss", "rate"),
    )


def rankings(facts: Table, suppliers: Table, previous: Table, risk: Table | None, as_of: dt.date,
             policy: ScoringPolicy, checkpoint: Checkpoint | None = None,
             evidence: Table | None = None) -> tuple[Table, Table]:
    """(rankings, supplier_metrics) for as_of. `risk` (supplier_id, risk_probability) may be
    None, in which case the shrunk 365-day order-defect rate stands in for it.

    `checkpoint(table, name)` may materialise an intermediate table that later steps read
    several times; it must return the same rows. Without one the whole scorecard is one
    expression, which inlines the metrics several times; both engines cut it into stages
    (pipelines/engines.py: temp tables on DuckDB, Parquet on Spark). `evidence`: see
    `supplier_metrics`.
    """
    checkpoint = checkpoint or _as_is
    known = checkpoint(suppliers_as_of(suppliers, as_of), "suppliers_known")
    metrics = checkpoint(supplier_metrics(facts, known, as_of, policy, checkpoint, evidence), "supplier_metrics")
    long_rates = checkpoint(_shrunk(metrics, known, policy.long_window_days, policy), "long_rates")
    short_trials = _shrunk(metrics, known, policy.short_window_days, policy)
    rates = {"long": long_rates, "short": checkpoint(recent_rates(
        short_trials, long_rates, policy.recent_prior_strength, policy.priors.bound_z), "short_rates")}
    components = checkpoint(component_scores(rates, policy.components), "components")
    scores = supplier_scores(components, policy.tier_bars)
    shrunk_defect = long_rates.filter(_.metric == "order_defect").select("supplier_id", fallback=_.shrunk_rate)
    if risk is not None:  # a supplier the model could not score falls back to its shrunk defect rate
        shrunk_defect = left_join_on(shrunk_defect, risk.select("supplier_id", "risk_probability"), "supplier_id")
        risk = shrunk_defect.select("supplier_id", risk_probability=ibis.coalesce(_.risk_probability, _.fallback))
    else:
        risk = shrunk_defect.select("supplier_id", risk_probability=_.fallback)
    evidence = left_join_on(known.select("supplier_id", "account_age_days"), _wide(metrics, policy.long_window_days),
                            "supplier_id").mutate(
        matured_orders=_.matured_orders.fill_null(0.0), distinct_buyers=_.distinct_buyers.fill_null(0),
        orders=_.orders.fill_null(0.0), gmv_usd=_.gmv_usd.fill_null(0.0),
        uncapped_order_share=_.uncapped_order_share.fill_null(1.0))
    decided = protection_decisions(scores, evidence, components, previous, risk, as_of, policy.protection,
                                   policy.tier_bars["good"])
    ranked = decided.join(known.drop("account_age_days"), "supplier_id")
    # Search ranks on the conservative bound: a supplier must earn its place with evidence,
    # and one with little evidence sits below an equally scored one with much.
    by_score = [ibis.desc("reliability_score_lower"), ibis.desc("reliability_score"), "supplier_id"]
    ranked = ranked.mutate(
        rank_overall=ibis.row_number().over(order_by=by_score) + 1,
        rank_in_category=ibis.row_number().over(group_by="main_category", order_by=by_score) + 1,
    )
    ranked = left_join_on(ranked, median_days_late(facts, as_of, policy.long_window_days), "supplier_id")
    return ranked.mutate(as_of_date=ibis.literal(as_of)), metrics
