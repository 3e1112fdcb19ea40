"""Protection decisions: who the buyer-protection program covers, up to how much, and why.

Grain of `protection_decisions`: one row per supplier.

- Minimum evidence first: too few matured orders, distinct buyers or days since
  registration -> `insufficient_history`, whatever the score.
- Evidence concentrated in a few buyers (less than `min_uncapped_order_share` of the
  orders survive the buyer cap: the signature of a ring of fake accounts, or of a
  supplier living off one customer) -> at best `watch`, never `eligible`.
- Decided on the score's credible bounds, never the point estimate: eligible when the
  lower bound clears the bar; confidently below when even the upper bound is under it;
  uncertain in between, where the supplier is on `watch` (protected, with a reduced
  limit) until the evidence settles either way.
- Hysteresis: an eligible supplier confidently below the bar goes to `watch` for
  `grace_days`, then to `suspended`; leaving watch or suspension needs the bar plus
  `return_margin`, so a supplier near the bar does not flap.
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
    min_uncapped_order_share: float
    eligible_bar: float
    return_margin: float
    grace_days: int
    limit_base_usd: float
    limit_per_sqrt_order_usd: float
    limit_max_usd: float
    limit_risk_zero_at: float
    watch_limit_share: float


NO_CODES = ibis.literal([], type="array<string>")


def _codes_where(*pairs: tuple[ibis.Value, str]) -> ibis.Value:
    """The codes whose condition holds, in order (no array lambdas: they are not portable)."""
    arrays = [cond.ifelse(ibis.array([ibis.literal(code)]), NO_CODES) for cond, code in pairs]
    result = arrays[0]
    for array in arrays[1:]:
        result = result.concat(array)
    return result


def _evidence_codes(t: Table, rules: ProtectionRules) -> ibis.Value:
    return _codes_where(
        (t.matured_orders < rules.min_matured_orders, "insufficient_matured_orders"),
        (t.distinct_buyers < rules.min_distinct_buyers, "insufficient_distinct_buyers"),
        (t.account_age_days < rules.min_account_age_days, "account_too_new"),
    )


def _status(t: Table, as_of: dt.date, rules: ProtectionRules) -> tuple[ibis.Value, ibis.Value]:
    """The new status and the reason for it, from the score's bounds and the previous status."""
    prev = t.previous_status.fill_null("none")
    returning = prev.isin(("watch", "suspended"))
    clears = t.reliability_score_lower >= ibis.cases((returning, rules.eligible_bar + rules.return_margin),
                                                      else_=rules.eligible_bar)
    confidently_below = t.reliability_score_upper < rules.eligible_bar
    grace_over = ibis.literal(as_of).delta(t.previous_since.fill_null(as_of), unit="day") >= rules.grace_days
    concentrated = t.uncapped_order_share < rules.min_uncapped_order_share
    cases = [
        (t.evidence_codes.length() > 0, "insufficient_history", "insufficient_history"),
        (concentrated & (prev == "suspended"), "suspended", "buyer_concentration"),
        (concentrated & ~confidently_below, "watch", "buyer_concentration"),
        (clears & returning, "eligible", "cleared_return_bar"),
        (clears, "eligible", "meets_bar"),
        (prev == "suspended", "suspended", "below_return_bar"),
        (confidently_below & (prev == "eligible"), "watch", "slipped_below_bar"),
        (confidently_below & (prev == "watch") & ~grace_over, "watch", "grace_period"),
        (confidently_below & (prev == "watch"), "suspended", "grace_period_expired"),
        (confidently_below, "suspended", "confidently_below_bar"),
    ]
    status = ibis.cases(*((cond, s) for cond, s, _r in cases), else_="watch")
    reason = ibis.cases(*((cond, r) for cond, _s, r in cases), else_="uncertain_evidence")
    return status, reason


def _limit(t: Table, rules: ProtectionRules) -> ibis.Value:
    grows = rules.limit_base_usd + rules.limit_per_sqrt_order_usd * t.matured_orders.sqrt()
    # A supplier the risk model could not score gets no cover: unknown risk is not low risk.
    risk = t.risk_probability.fill_null(rules.limit_risk_zero_at)
    shrinks = ibis.greatest(1.0 - risk / rules.limit_risk_zero_at, 0.0)
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
    t = scores.join(evidence, "supplier_id")
    for right in (risk.select("supplier_id", "risk_probability"), prev, weak_component_codes(components, good_tier_bar)):
        t = left_join_on(t, right, "supplier_id")
    t = t.mutate(evidence_codes=_evidence_codes(t, rules))
    status, reason = _status(t, as_of, rules)
    t = t.mutate(protection_status=status, decision_reason=reason)
    t = t.mutate(
        status_since=ibis.cases((_.protection_status == _.previous_status, _.previous_since), else_=ibis.literal(as_of)),
        tier=ibis.cases((_.protection_status == "insufficient_history", "insufficient_history"), else_=_.tier),
        is_protected=_.protection_status.isin(PROTECTED),
    )
    # With too little evidence the components are mostly the prior: they explain nothing.
    codes = ibis.cases((t.evidence_codes.length() > 0, t.evidence_codes),
                       else_=ibis.array([t.decision_reason]).concat(t.component_codes.fill_null(NO_CODES)))
    return t.mutate(protection_limit_usd=_limit(t, rules), reason_codes=codes).drop(
        "evidence_codes", "component_codes", "previous_status", "previous_since")
