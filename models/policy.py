"""Protection decisions: who the buyer-protection program covers, up to how much, and why.

Grain of `protection_decisions`: one row per supplier.

- Minimum evidence first: too few matured orders, distinct buyers or days since
  registration -> `insufficient_history`, whatever the score.
- Decided on the score's conservative lower bound, never the point estimate.
- Hysteresis: a protected supplier whose bound slips below the bar goes to `watch`
  (still protected) for `grace_days`, then to `suspended`; leaving watch or suspension
  needs the bar plus `return_margin`, so a supplier near the bar does not flap.
- The exposure cap grows with the square root of the evidence and shrinks linearly with
  the risk, reaching 0 at `limit_risk_zero_at`; a supplier on watch gets `watch_limit_share`
  of it.
- Reason codes, most important first: the decision's own reason, then each score
  component below the good-tier bar, weakest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
from ibis import _
from ibis.expr.types import Table

from models.relational import left_join_on

PROTECTED = ("eligible", "watch")


@dataclass(frozen=True)
class ProtectionRules:
    min_matured_orders: float
    min_distinct_buyers: int
    min_account_age_days: int
    eligible_bar: float
    return_margin: float
    grace_days: int
    limit_base_usd: float
    limit_per_sqrt_order_usd: float
    limit_max_usd: float
    limit_risk_zero_at: float
    watch_limit_share: float


def _evidence_codes(t: Table, rules: ProtectionRules) -> ibis.Value:
    return ibis.array([
        (t.matured_orders < rules.min_matured_orders).ifelse("insufficient_matured_orders", None),
        (t.distinct_buyers < rules.min_distinct_buyers).ifelse("insufficient_distinct_buyers", None),
        (t.account_age_days < rules.min_account_age_days).ifelse("account_too_new", None),
    ]).filter(lambda code: code.notnull())


def _status(t: Table, as_of: dt.date, rules: ProtectionRules) -> tuple[ibis.Value, ibis.Value]:
    """The new status and the reason for it, from the bound and the previous status."""
    bar, return_bar = rules.eligible_bar, rules.eligible_bar + rules.return_margin
    grace_over = ibis.literal(as_of).delta(t.previous_since.fill_null(as_of), unit="day") >= rules.grace_days
    prev = t.previous_status.fill_null("none")
    clears = ibis.cases((prev.isin(("watch", "suspended")), t.reliability_score_lower >= return_bar),
                        else_=t.reliability_score_lower >= bar)
    cases = [
        (t.evidence_codes.length() > 0, ("insufficient_history", "insufficient_history")),
        (clears, ("eligible", ibis.cases((prev.isin(("watch", "suspended")), "cleared_return_bar"),
                                         else_="meets_bar"))),
        (prev == "eligible", ("watch", "slipped_below_bar")),
        ((prev == "watch") & ~grace_over, ("watch", "grace_period")),
        (prev == "watch", ("suspended", "grace_period_expired")),
        (prev == "suspended", ("suspended", "below_return_bar")),
    ]
    status = ibis.cases(*((cond, s) for cond, (s, _r) in cases), else_="suspended")
    reason = ibis.cases(*((cond, r) for cond, (_s, r) in cases), else_="score_below_bar")
    return status, reason


def _limit(t: Table, rules: ProtectionRules) -> ibis.Value:
    grows = rules.limit_base_usd + rules.limit_per_sqrt_order_usd * t.matured_orders.sqrt()
    shrinks = ibis.greatest(1.0 - t.risk_probability / rules.limit_risk_zero_at, 0.0)
    share = ibis.cases((t.protection_status == "eligible", 1.0), (t.protection_status == "watch", rules.watch_limit_share),
                       else_=0.0)
    return (ibis.least(grows, rules.limit_max_usd) * shrinks * share).round(2)


def weak_component_codes(components: Table, good_tier_bar: float) -> Table:
    """Per supplier: `weak_<component>` for each component under the good-tier bar, weakest first."""
    weak = components.filter(_.points < good_tier_bar).mutate(code="weak_" + _.component)
    return weak.group_by("supplier_id").aggregate(component_codes=_.code.collect(order_by=[_.points, _.component]))


def protection_decisions(scores: Table, evidence: Table, components: Table, previous: Table,
                         risk: Table, as_of: dt.date, rules: ProtectionRules, good_tier_bar: float) -> Table:
    """Per supplier: tier, protection status (and since when), limit and reason codes.

    `previous` holds the last decisions (supplier_id, protection_status, status_since);
    empty on the first run.
    """
    prev = previous.select("supplier_id", previous_status=_.protection_status, previous_since=_.status_since)
    t = scores.join(evidence, "supplier_id").join(risk, "supplier_id")
    t = left_join_on(left_join_on(t, prev, "supplier_id"), weak_component_codes(components, good_tier_bar),
                     "supplier_id")
    t = t.mutate(evidence_codes=_evidence_codes(t, rules))
    status, reason = _status(t, as_of, rules)
    t = t.mutate(protection_status=status, decision_reason=reason)
    t = t.mutate(
        status_since=ibis.cases((_.protection_status == _.previous_status, _.previous_since), else_=ibis.literal(as_of)),
        tier=ibis.cases((_.protection_status == "insufficient_history", "insufficient_history"), else_=_.tier),
        is_protected=_.protection_status.isin(PROTECTED),
    )
    first_codes = ibis.cases((t.evidence_codes.length() > 0, t.evidence_codes),
                             else_=ibis.array([t.decision_reason]))
    return t.mutate(
        protection_limit_usd=_limit(t, rules),
        reason_codes=first_codes.concat(t.component_codes.fill_null(ibis.literal([], type="array<string>"))),
    ).drop("evidence_codes", "component_codes", "previous_status", "previous_since")
