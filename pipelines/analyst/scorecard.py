"""One supplier's scorecard, from the publication: what the program decided about it and why.

Grain of `Scorecard.metrics`: one row per metric x window (90 and 365 days), with the
raw numerator and denominator behind the published rate, the buyer-capped ones the score
uses, the target and the status. `components`: one row per score component. `history`:
one row per published snapshot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from pipelines.analyst import reasons, risk
from pipelines.analyst.store import as_frame

METRIC_ORDER = ("orders", "gmv_usd", "order_defect", "late_shipment", "on_time_delivery", "valid_tracking",
                "non_delivery", "supplier_cancellation", "dispute", "dispute_loss", "refund_share")
HISTORY_COLUMNS = ("as_of_date", "reliability_score", "reliability_score_lower", "tier", "protection_status",
                   "is_protected", "protection_limit_usd", "risk_probability", "rank_overall", "reason_codes")


@dataclass
class Scorecard:
    supplier_id: str
    as_of_date: object
    published: dict                     # the supplier's row of the published rankings, as is
    decision: dict                      # tier, status, limit, decision reason, since when, previous status
    reasons: list[dict]                 # [{code, explanation}], most important first
    risk: dict                          # probability, percentile, source, drivers
    metrics: object = None              # frame, see the module docstring (None: evidence not published)
    components: object = None
    history: object = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain values (frames as lists of rows), e.g. for JSON."""
        def rows(frame):
            return None if frame is None else (frame.to_dicts() if isinstance(frame, pl.DataFrame)
                                               else frame.to_dict("records"))
        return _no_nan({"supplier_id": self.supplier_id, "as_of_date": self.as_of_date, "published": self.published,
                        "decision": self.decision, "reasons": self.reasons, "risk": self.risk,
                        "metrics": rows(self.metrics), "components": rows(self.components),
                        "history": rows(self.history), "notes": self.notes})


def _no_nan(value):
    """NaN (a share of nothing) as None, so that the dict is valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def build(supplier_id: str, row: dict, decision_row: dict | None, metrics: pl.DataFrame | None,
          components: pl.DataFrame | None, history: pl.DataFrame, risk_column: pl.Series, policy,
          frame: str) -> Scorecard:
    """Assemble the scorecard of one supplier from frames already read from published/."""
    facts = {**row, **(decision_row or {}), "distinct_buyers": row["distinct_buyers_365d"]}
    own = (components.filter(pl.col("supplier_id") == supplier_id) if components is not None else None)
    points = dict(zip(own["component"], own["points"])) if own is not None else {}
    by_name = {c.name: c for c in policy.components}
    explained = [{"code": code, "explanation": reasons.explain(code, facts, policy.protection, by_name,
                                                               policy.tier_bars["good"], points)}
                 for code in row["reason_codes"] or []]
    decision = {k: facts.get(k) for k in ("tier", "protection_status", "is_protected", "protection_limit_usd",
                                          "decision_reason", "status_since", "previous_status",
                                          "reliability_score", "reliability_score_lower",
                                          "reliability_score_upper", "rank_overall", "rank_in_category")}
    own_risk = row["risk_probability"]
    risk_view = {"probability": own_risk, "model_version": row["model_version"],
                 "source": risk.source(row["model_version"]),
                 "percentile": None if own_risk is None else float((risk_column < own_risk).mean()),
                 "drivers": risk.drivers(supplier_id, components, policy.components, row["model_version"])
                 if components is not None else []}
    notes = [] if metrics is not None else ["the per-metric evidence of this date is not published"]
    return Scorecard(
        supplier_id, row["as_of_date"], row, decision, explained, risk_view,
        metrics=None if metrics is None else as_frame(_metrics_view(metrics, supplier_id), frame),
        components=None if own is None else as_frame(_components_view(own, policy), frame),
        history=as_frame(history.filter(pl.col("supplier_id") == supplier_id).select(HISTORY_COLUMNS)
                         .sort("as_of_date"), frame),
        notes=notes)


def _metrics_view(metrics: pl.DataFrame, supplier_id: str) -> pl.DataFrame:
    order = {name: i for i, name in enumerate(METRIC_ORDER)}
    own = metrics.filter(pl.col("supplier_id") == supplier_id)
    return own.with_columns(
        label=pl.col("metric").replace_strict(reasons.METRIC_LABELS, default=pl.col("metric")),
        meaning=pl.col("metric").replace_strict(reasons.METRIC_MEANINGS, default=pl.lit("")),
        _order=pl.col("metric").replace_strict(order, default=len(order)),
    ).sort("_order", "window_days").select(
        "metric", "label", "window_days", "raw_numerator", "raw_denominator", "rate", "target", "status",
        "numerator", "denominator", "buyers", "top_buyer_share", "meaning")


def _components_view(own: pl.DataFrame, policy) -> pl.DataFrame:
    by_name = {c.name: c for c in policy.components}
    return own.with_columns(
        label=pl.col("component").replace_strict({n: reasons.component_label(c) for n, c in by_name.items()},
                                                 default=pl.col("component")),
    ).select("component", "label", "weight", "x", "n", "rate", "rate_upper", "points", "points_lower",
             "points_upper").sort("points")
