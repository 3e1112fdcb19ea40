"""Reason codes (models/policy.py) and metrics in plain English, with the supplier's own figures.

`explain(code, facts, rules, ...)` turns one code into a sentence. `facts` is one
supplier's decision inputs and results (published rankings row + supplier_decisions row);
a figure missing from it is left out of the sentence rather than guessed.
"""

from __future__ import annotations

from models.policy import ProtectionRules
from models.score import Component

METRIC_LABELS = {
    "orders": "orders placed", "gmv_usd": "GMV (USD)", "late_shipment": "late shipments",
    "on_time_delivery": "on-time deliveries", "valid_tracking": "shipments with valid tracking",
    "non_delivery": "non-deliveries", "supplier_cancellation": "cancellations by the supplier",
    "dispute": "orders disputed", "dispute_loss": "decided disputes lost",
    "refund_share": "share of order value refunded", "order_defect": "order defects",
}
METRIC_MEANINGS = {
    "orders": "orders placed in the window (count; no target)",
    "gmv_usd": "order value placed in the window (USD) over orders placed: the rate is the mean order value",
    "late_shipment": "orders first shipped after the promised ship-by date, of orders due to ship",
    "on_time_delivery": "orders fully delivered by the promised date, of orders due for delivery",
    "valid_tracking": "orders shipped with valid tracking, of orders due for delivery",
    "non_delivery": "orders never delivered (30 days past due, or a not-received dispute lost), of matured orders",
    "supplier_cancellation": "orders the supplier cancelled, of matured orders",
    "dispute": "orders with a dispute, of matured orders",
    "dispute_loss": "disputes decided for the buyer (refund or replacement), of decided disputes",
    "refund_share": "USD refunded, of USD ordered (matured orders)",
    "order_defect": "orders that became a defect (supplier cancellation, non-delivery or dispute lost), "
                    "of matured orders",
}
TEMPLATES = {
    "insufficient_matured_orders": "Only {matured_orders:.0f} matured orders in the last 365 days (buyer-capped); "
                                   "protection needs at least {min_matured_orders:.0f}.",
    "insufficient_distinct_buyers": "Only {distinct_buyers} distinct buyers in the last 365 days; protection needs "
                                    "at least {min_distinct_buyers}.",
    "account_too_new": "The account is {account_age_days} days old; protection needs at least "
                       "{min_account_age_days} days.",
    "insufficient_history": "Too little evidence to decide on protection yet.",
    "buyer_concentration": "Only {uncapped_order_share:.0%} of its orders survive the per-buyer cap (at least "
                           "{min_uncapped_order_share:.0%} needed): its record rests on a few buyers, so it can "
                           "be on watch at most.",
    "meets_bar": "Its conservative score {reliability_score_lower:.1f} clears the eligibility bar {eligible_bar:g}.",
    "cleared_return_bar": "Back from {previous_status}: its conservative score {reliability_score_lower:.1f} clears "
                          "the return bar {return_bar:g} (bar + margin).",
    "below_return_bar": "Suspended, and its conservative score {reliability_score_lower:.1f} is still under the "
                        "return bar {return_bar:g} (bar + margin).",
    "slipped_below_bar": "Was eligible, but even its optimistic score {reliability_score_upper:.1f} is now under "
                         "the bar {eligible_bar:g}: on watch (still protected) for up to {grace_days} days.",
    "grace_period": "On watch since {status_since}: confidently below the bar {eligible_bar:g}, within the "
                    "{grace_days}-day grace period.",
    "grace_period_expired": "Its {grace_days}-day grace period on watch ran out while its score stayed "
                            "confidently below the bar {eligible_bar:g}: suspended.",
    "confidently_below_bar": "Even its optimistic score {reliability_score_upper:.1f} is under the eligibility "
                             "bar {eligible_bar:g}.",
    "uncertain_evidence": "The bar {eligible_bar:g} lies between its conservative score "
                          "{reliability_score_lower:.1f} and its optimistic score {reliability_score_upper:.1f}: "
                          "on watch (protected, reduced limit) until the evidence settles.",
}

def component_label(component: Component) -> str:
    window = "last 90 days" if component.window == "short" else "365 days"
    failure = "late deliveries" if component.metric == "on_time_delivery" else METRIC_LABELS.get(
        component.metric, component.metric.replace("_", " "))
    return f"{failure} ({window})"


def explain(code: str, facts: dict, rules: ProtectionRules, components: dict[str, Component],
            good_tier_bar: float, points: dict[str, float] | None = None) -> str:
    """One reason code in words, with the supplier's figures where they are known."""
    if code.startswith("weak_"):
        name = code[len("weak_"):]
        label = component_label(components[name]) if name in components else name.replace("_", " ")
        score = (points or {}).get(name)
        figure = f" scores {score:.0f} points," if score is not None else " is"
        return f"Weak component: {label}{figure} under the good-tier bar {good_tier_bar:g}."
    template = TEMPLATES.get(code)
    if template is None:
        return f"{code.replace('_', ' ')} (no explanation on file for this code)."
    values = {**vars(rules), **facts, "return_bar": rules.eligible_bar + rules.return_margin}
    try:
        return template.format(**values)
    except (KeyError, TypeError, ValueError):  # a figure is missing: say it without numbers
        return code.replace("_", " ").capitalize() + "."
