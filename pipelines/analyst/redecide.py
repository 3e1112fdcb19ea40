"""Re-deciding scores, tiers and protection from the published evidence, under any policy.

The same models as the scoring run (models/shrinkage, models/score, models/policy), on
Ibis memtables built from published/ and executed by an in-memory DuckDB: the warehouse
is never opened and nothing is written. Under the policy that produced a publication it
gives that publication's decisions back (tests/pipelines/test_analyst.py checks it).

The inputs, all published: per supplier x metric x window the buyer-capped evidence
(`supplier_metrics`), per supplier its cohort (rankings), account age and the previous
decision that hysteresis starts from (`supplier_decisions`), and its risk (rankings).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import ibis
import polars as pl
from ibis import _

from models.facts import BY_NAME
from models.policy import protection_decisions
from models.relational import left_join_on
from models.score import component_scores, recent_rates, supplier_scores
from models.scorecard import ScoringPolicy
from models.shrinkage import shrunk_rates

EVIDENCE_COLUMNS = ("supplier_id", "metric", "window_days", "raw_numerator", "raw_denominator", "numerator",
                    "denominator", "buyers", "top_buyer_share", "rate")


@dataclass(frozen=True)
class Redecided:
    decisions: pl.DataFrame    # one row per supplier: scores, tier, status, limit, reason codes
    components: pl.DataFrame   # one row per supplier x component: shrunk rate, bound, points


def redecide(rankings: pl.DataFrame, metrics: pl.DataFrame, decisions: pl.DataFrame,
             policy: ScoringPolicy, as_of: dt.date) -> Redecided:
    """Scores and protection decisions of as_of under `policy`, from the published evidence."""
    scored = score(rankings, metrics, decisions, policy)
    return Redecided(decide(rankings, decisions, scored, policy, as_of), scored.components)


@dataclass(frozen=True)
class Scored:
    scores: pl.DataFrame       # one row per supplier: score, bounds, weakest component, tier
    components: pl.DataFrame   # one row per supplier x component
    evidence: pl.DataFrame     # one row per supplier: the long window's evidence the decision needs


def score(rankings: pl.DataFrame, metrics: pl.DataFrame, decisions: pl.DataFrame,
          policy: ScoringPolicy) -> Scored:
    """Shrunk rates, component points, scores and tiers under the policy's scoring settings.

    Depends on neither the protection rules nor the as-of date: a sweep over protection
    rules scores once and decides many times.
    """
    windows = set(metrics["window_days"].unique().to_list())
    if not {policy.long_window_days, policy.short_window_days} <= windows:
        raise ValueError(f"the policy's windows ({policy.long_window_days}, {policy.short_window_days} days) are "
                         f"not among the published ones ({', '.join(map(str, sorted(windows)))} days)")
    backend = _backend()
    known = ibis.memtable(rankings.select("supplier_id", "main_category", "country_code").join(
        decisions.select("supplier_id", "account_age_days"), on="supplier_id", how="left"))
    evidence = ibis.memtable(metrics.select(EVIDENCE_COLUMNS))
    directions = {c.metric: BY_NAME[c.metric].higher_is_better for c in policy.components}

    def shrunk(days: int):
        return shrunk_rates(evidence.filter(_.window_days == days), known, directions, policy.priors)

    long_rates = shrunk(policy.long_window_days)
    rates = {"long": long_rates, "short": recent_rates(shrunk(policy.short_window_days), long_rates,
                                                       policy.recent_prior_strength, policy.priors.bound_z)}
    components = component_scores(rates, policy.components)
    # Scored in the same query as the components, as the run does: a round trip through
    # a frame can move a sum's twelfth decimal, and a decision at a bar with it.
    scores = _collect(backend, supplier_scores(components, policy.tier_bars))
    components = _collect(backend, components)
    wide = _collect(backend, _evidence(known, evidence, policy.long_window_days))
    return Scored(scores.sort("supplier_id"), components.sort("supplier_id", "component"), wide.sort("supplier_id"))


def decide(rankings: pl.DataFrame, decisions: pl.DataFrame, scored: Scored, policy: ScoringPolicy,
           as_of: dt.date) -> pl.DataFrame:
    """Per supplier: tier, protection status, limit and reason codes under the policy's rules."""
    risk = ibis.memtable(rankings.select("supplier_id", "risk_probability"))
    previous = ibis.memtable(decisions.filter(pl.col("previous_status").is_not_null()).select(
        "supplier_id", protection_status="previous_status", status_since="previous_since"))
    decided = protection_decisions(ibis.memtable(scored.scores), ibis.memtable(scored.evidence),
                                   ibis.memtable(scored.components), previous, risk, as_of, policy.protection,
                                   policy.tier_bars["good"])
    return _collect(_backend(), decided).sort("supplier_id")


def _evidence(known, metrics, days: int):
    """One row per supplier: the long window's evidence the decision needs (as models/scorecard)."""
    w = metrics.filter(_.window_days == days)

    def pick(metric, value):
        return (w.metric == metric).ifelse(w[value], None).max()

    wide = w.group_by("supplier_id").aggregate(
        orders=pick("orders", "raw_denominator"), gmv_usd=pick("gmv_usd", "raw_numerator"),
        uncapped_order_share=pick("orders", "denominator") / pick("orders", "raw_denominator"),
        distinct_buyers=pick("orders", "buyers"), top_buyer_share=pick("orders", "top_buyer_share"),
        matured_orders=pick("order_defect", "denominator"),
    )
    return left_join_on(known.select("supplier_id", "account_age_days"), wide, "supplier_id").mutate(
        matured_orders=_.matured_orders.fill_null(0.0), distinct_buyers=_.distinct_buyers.fill_null(0),
        orders=_.orders.fill_null(0.0), gmv_usd=_.gmv_usd.fill_null(0.0),
        uncapped_order_share=_.uncapped_order_share.fill_null(1.0))


def _backend():
    con = duckdb.connect()
    # Ibis 12 writes array lambdas as `x -> ...`, which DuckDB 2 accepts only when asked.
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    return ibis.duckdb.from_connection(con)


def _collect(backend, table) -> pl.DataFrame:
    return pl.from_arrow(backend.to_pyarrow(table))
