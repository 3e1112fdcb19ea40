"""What if the protection policy were different? Re-decide on the published evidence and compare.

Grain of `WhatIf.suppliers`: one row per supplier of the publication, with its published
decision (`*_now`) beside the one the other policy gives (`*_what_if`), and `change`:
`gains` or `loses` protection, or `same`. Covered GMV is the 365-day GMV of the protected
suppliers: the order flow the program stands behind. Nothing is written anywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import polars as pl

from models.policy import ProtectionRules
from models.scorecard import ScoringPolicy
from pipelines.analyst.store import as_frame

RULES = tuple(f.name for f in dataclasses.fields(ProtectionRules))
COMPARED = ("reliability_score", "reliability_score_lower", "tier", "protection_status", "is_protected",
            "protection_limit_usd", "reason_codes")


@dataclass
class WhatIf:
    overrides: dict          # what was changed against the published policy
    summary: dict            # counts and covered GMV, now and under the other policy
    suppliers: object        # frame, see the module docstring
    gained: object           # the suppliers that would gain protection
    lost: object             # the suppliers that would lose it


def with_overrides(policy: ScoringPolicy, weights: dict | None = None, half_at: dict | None = None,
                   tier_bars: dict | None = None, **rules) -> ScoringPolicy:
    """The policy with other protection rules, component weights or half-rates, or tier bars."""
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise ValueError(f"unknown protection rule(s) {', '.join(unknown)}; the rules are {', '.join(RULES)}")
    names = {c.name for c in policy.components}
    for option, given in (("weights", weights or {}), ("half_at", half_at or {})):
        if set(given) - names:
            raise ValueError(f"{option}: no component named {', '.join(sorted(set(given) - names))}; "
                             f"the components are {', '.join(sorted(names))}")
    if set(tier_bars or {}) - set(policy.tier_bars):
        raise ValueError(f"tier_bars: the tiers are {', '.join(policy.tier_bars)}")
    components = tuple(dataclasses.replace(c, weight=float((weights or {}).get(c.name, c.weight)),
                                           half_at=float((half_at or {}).get(c.name, c.half_at)))
                       for c in policy.components)
    if any(c.weight < 0 for c in components) or sum(c.weight for c in components) <= 0:
        raise ValueError("weights must be >= 0 and not all 0")
    if any(not 0 < c.half_at <= 1 for c in components):
        raise ValueError("half_at must be in (0, 1]")
    typed = {k: type(getattr(policy.protection, k))(v) for k, v in rules.items()}
    return dataclasses.replace(policy, components=components, tier_bars={**policy.tier_bars, **(tier_bars or {})},
                               protection=dataclasses.replace(policy.protection, **typed))


def compare(rankings: pl.DataFrame, decided: pl.DataFrame, overrides: dict, frame: str) -> WhatIf:
    """The published decisions against the re-decided ones, with who gains or loses protection."""
    now = rankings.select("supplier_id", "supplier_name", "main_category", "gmv_usd_365d", "risk_probability",
                          *COMPARED).with_columns(pl.col("protection_limit_usd").cast(pl.Float64),
                                                  pl.col("gmv_usd_365d").cast(pl.Float64))
    joined = now.rename({c: f"{c}_now" for c in COMPARED}).join(
        decided.select("supplier_id", "decision_reason", *COMPARED).rename({c: f"{c}_what_if" for c in COMPARED}),
        on="supplier_id", how="left")
    joined = joined.with_columns(change=pl.when(pl.col("is_protected_what_if") & ~pl.col("is_protected_now"))
                                 .then(pl.lit("gains")).when(~pl.col("is_protected_what_if") & pl.col("is_protected_now"))
                                 .then(pl.lit("loses")).otherwise(pl.lit("same")))
    return WhatIf(overrides, _summary(joined), as_frame(joined, frame),
                  as_frame(joined.filter(pl.col("change") == "gains"), frame),
                  as_frame(joined.filter(pl.col("change") == "loses"), frame))


def _summary(joined: pl.DataFrame) -> dict:
    def covered(column: str) -> float:
        return round(float(joined.filter(pl.col(column))["gmv_usd_365d"].sum()), 2)

    return {
        "suppliers": joined.height,
        "protected_now": int(joined["is_protected_now"].sum()),
        "protected_what_if": int(joined["is_protected_what_if"].sum()),
        "gains": int((joined["change"] == "gains").sum()),
        "loses": int((joined["change"] == "loses").sum()),
        "status_changes": int((joined["protection_status_now"] != joined["protection_status_what_if"]).sum()),
        "covered_gmv_usd_now": covered("is_protected_now"),
        "covered_gmv_usd_what_if": covered("is_protected_what_if"),
        "total_limit_usd_now": round(float(joined["protection_limit_usd_now"].sum()), 2),
        "total_limit_usd_what_if": round(float(joined["protection_limit_usd_what_if"].sum()), 2),
    }
