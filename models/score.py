"""The 0-100 reliability score, its conservative bound, and weakest-link tiers.

Grain of `component_scores`: one row per supplier x score component; of
`supplier_scores`: one row per supplier.

A component is one shrunk failure rate (e.g. the 365-day order-defect rate) mapped to
0-100: 100 at a zero rate, 50 at the component's `half_at` rate, 25 at twice it. The point
score uses the posterior mean, the lower bound uses the rate's upper credible bound. The
score is the weighted mean of the components; a tier needs *every* component at or above
its bar (Alibaba's weakest link), so one bad dimension cannot hide behind good ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
from ibis import _
from ibis.expr.types import Table

from models.relational import exact_sum, left_join_on
from models.shrinkage import beta_posterior

TIER_ORDER = ("excellent", "good", "fair")


@dataclass(frozen=True)
class Component:
    name: str
    metric: str
    window: str        # "long" or "short"
    weight: float
    half_at: float     # the failure rate that scores 50 (points halve every half_at)


def recent_rates(short_trials: Table, long_shrunk: Table, strength: float, z: float) -> Table:
    """Short-window failure rates shrunk toward the supplier's own long-window estimate.

    Grain: supplier x metric. A supplier with a quiet recent window keeps its long-run
    rate; a sudden collapse shows here months before the 365-day window moves.
    """
    prior = long_shrunk.select("supplier_id", "metric", prior_mean=_.shrunk_rate)
    joined = left_join_on(prior, short_trials.select("supplier_id", "metric", "x", "n"), ["supplier_id", "metric"])
    joined = joined.mutate(x=_.x.fill_null(0.0), n=_.n.fill_null(0.0))
    return beta_posterior(joined, joined.prior_mean, strength, z)


def _to_points(rate, half_at: float) -> ibis.Value:
    """100 at a zero rate, halving every `half_at`: strictly decreasing, so no two
    different rates tie, however bad (a linear scale clipped at 0 would rank every very
    bad supplier equal)."""
    return 100.0 * (-0.6931471805599453 * rate / half_at).exp()


def component_scores(rates: dict[str, Table], components: tuple[Component, ...]) -> Table:
    """Per supplier x component: the rate used, and its points and conservative points.

    `rates` maps a window ("long", "short") to shrunk rates (supplier x metric).
    """
    parts = []
    for c in components:
        r = rates[c.window].filter(_.metric == c.metric)
        parts.append(r.select(
            "supplier_id", component=ibis.literal(c.name), weight=ibis.literal(c.weight),
            rate=_.shrunk_rate, rate_upper=_.shrunk_rate_upper, x=_.x, n=_.n,
            points=_to_points(_.shrunk_rate, c.half_at), points_lower=_to_points(_.shrunk_rate_upper, c.half_at),
            points_upper=_to_points(_.shrunk_rate_lower, c.half_at),
        ))
    return ibis.union(*parts)


def supplier_scores(components: Table, tier_bars: dict[str, float]) -> Table:
    """Per supplier: score, its credible bounds, the weakest component and the weakest-link tier."""
    weakest_first = ibis.window(group_by="supplier_id", order_by=["points", "component"])
    ranked = components.mutate(weak_rank=ibis.row_number().over(weakest_first))
    weakest = ranked.filter(_.weak_rank == 0).select("supplier_id", weakest_component=_.component)
    totals = components.group_by("supplier_id").aggregate(
        reliability_score=exact_sum(_.points * _.weight) / exact_sum(_.weight),
        reliability_score_lower=exact_sum(_.points_lower * _.weight) / exact_sum(_.weight),
        reliability_score_upper=exact_sum(_.points_upper * _.weight) / exact_sum(_.weight),
        min_points=_.points.min(),
    )
    tier = ibis.cases(*((_.min_points >= tier_bars[t], t) for t in TIER_ORDER), else_="poor")
    return totals.join(weakest, "supplier_id").mutate(tier=tier)
