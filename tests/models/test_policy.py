"""Given scores, evidence and the previous decision, expect the protection status, since
when, the limit and the reason codes exactly, run after run."""

from __future__ import annotations

import ibis
import pytest

from models.policy import ProtectionRules, protection_decisions
from tests.models.frames import day, table

RULES = ProtectionRules(
    min_matured_orders=20, min_distinct_buyers=5, min_account_age_days=90, min_uncapped_order_share=0.5,
    eligible_bar=60, return_margin=5, grace_days=30, limit_base_usd=2000, limit_per_sqrt_order_usd=1500,
    limit_max_usd=250000, limit_risk_zero_at=0.30, watch_limit_share=0.5,
)
GOOD_BAR = 70
SCORE_SCHEMA = {"supplier_id": "string", "reliability_score": "float64", "reliability_score_lower": "float64",
                "reliability_score_upper": "float64", "tier": "string"}
EVIDENCE_SCHEMA = {"supplier_id": "string", "matured_orders": "float64", "distinct_buyers": "int64",
                   "account_age_days": "int64", "uncapped_order_share": "float64"}
RISK_SCHEMA = {"supplier_id": "string", "risk_probability": "float64"}
COMPONENT_SCHEMA = {"supplier_id": "string", "component": "string", "points": "float64"}
PREVIOUS_SCHEMA = {"supplier_id": "string", "protection_status": "string", "status_since": "date"}


@pytest.fixture(autouse=True, scope="module")
def arrow_lambdas():
    """Ibis 12 writes array lambdas as `x -> ...`, which DuckDB 2 accepts only when asked (as
    pipelines/scoring.py asks); see test_decisions_run_on_a_plain_duckdb_session."""
    backend = ibis.get_backend()
    backend.raw_sql("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    yield
    backend.raw_sql("RESET lambda_syntax")


def supplier(supplier_id="S1", lower=70.0, upper=None, score=None, tier="good", matured_orders=100.0,
             distinct_buyers=20, account_age_days=400, risk=0.03, uncapped_order_share=1.0) -> dict:
    """A supplier with ample evidence whose score's bounds are [lower, upper]."""
    upper = lower + 20 if upper is None else upper
    return {"supplier_id": supplier_id, "reliability_score": (lower + upper) / 2 if score is None else score,
            "reliability_score_lower": lower, "reliability_score_upper": upper, "tier": tier,
            "matured_orders": matured_orders, "distinct_buyers": distinct_buyers,
            "account_age_days": account_age_days, "risk_probability": risk,
            "uncapped_order_share": uncapped_order_share}


def decisions(suppliers, previous=(), as_of="2024-06-30", components=(), rules=RULES) -> ibis.Table:
    return protection_decisions(
        table(suppliers, SCORE_SCHEMA), table(suppliers, EVIDENCE_SCHEMA), table(list(components), COMPONENT_SCHEMA),
        table(list(previous), PREVIOUS_SCHEMA), table(suppliers, RISK_SCHEMA), day(as_of), rules, GOOD_BAR)


def decide(*args, **kwargs) -> dict:
    return {r["supplier_id"]: r for r in decisions(*args, **kwargs).to_pyarrow().to_pylist()}


def was(status, since, supplier_id="S1") -> dict:
    return {"supplier_id": supplier_id, "protection_status": status, "status_since": day(since)}


def brief(row) -> tuple:
    return row["protection_status"], row["reason_codes"][0], str(row["status_since"])


@pytest.mark.parametrize("overrides, codes", [
    ({"matured_orders": 19.9}, ["insufficient_matured_orders"]),
    ({"distinct_buyers": 4}, ["insufficient_distinct_buyers"]),
    ({"account_age_days": 89}, ["account_too_new"]),
    ({"matured_orders": 0.0, "distinct_buyers": 0, "account_age_days": 0},
     ["insufficient_matured_orders", "insufficient_distinct_buyers", "account_too_new"]),
])
def test_too_little_evidence_is_insufficient_history_whatever_the_score(overrides, codes):
    got = decide([supplier(lower=95, tier="excellent", **overrides)], previous=[was("eligible", "2024-01-01")])["S1"]
    assert (got["protection_status"], got["tier"], got["is_protected"], got["protection_limit_usd"]) == (
        "insufficient_history", "insufficient_history", False, 0)
    assert got["reason_codes"] == codes


def test_the_minimum_evidence_itself_is_enough():
    got = decide([supplier(matured_orders=20.0, distinct_buyers=5, account_age_days=90)])["S1"]
    assert (got["protection_status"], got["reason_codes"], got["tier"]) == ("eligible", ["meets_bar"], "good")


def test_the_decision_reads_the_lower_bound_not_the_point_score():
    got = decide([supplier("HIGH_BUT_UNSURE", lower=55, upper=95, score=80),
                  supplier("LOWER_BUT_SURE", lower=61, upper=66, score=63)])
    # the point score clears the bar, the lower bound does not: on watch at most, never eligible
    assert (got["HIGH_BUT_UNSURE"]["protection_status"], got["HIGH_BUT_UNSURE"]["reason_codes"]) == (
        "watch", ["uncertain_evidence"])
    assert (got["LOWER_BUT_SURE"]["protection_status"], got["LOWER_BUT_SURE"]["reason_codes"]) == (
        "eligible", ["meets_bar"])


@pytest.mark.parametrize("previous, lower, upper, expected", [
    # previous status (since 2024-06-10, 20 days before the run: within the grace period), the score's bounds
    (None, 60, 80, ("eligible", "meets_bar", "2024-06-30")),                   # the bar itself
    (None, 40, 59, ("suspended", "confidently_below_bar", "2024-06-30")),
    (None, 55, 75, ("watch", "uncertain_evidence", "2024-06-30")),             # the bar between the bounds
    ("eligible", 55, 75, ("watch", "uncertain_evidence", "2024-06-30")),
    ("eligible", 60, 80, ("eligible", "meets_bar", "2024-06-10")),
    ("eligible", 50, 59.9, ("watch", "slipped_below_bar", "2024-06-30")),
    ("watch", 50, 59.9, ("watch", "grace_period", "2024-06-10")),
    ("watch", 62, 80, ("watch", "uncertain_evidence", "2024-06-10")),          # above the bar, below bar + margin
    ("watch", 65, 80, ("eligible", "cleared_return_bar", "2024-06-30")),
    ("suspended", 64.9, 80, ("suspended", "below_return_bar", "2024-06-10")),
    ("suspended", 65, 80, ("eligible", "cleared_return_bar", "2024-06-30")),
])
def test_one_run_moves_between_statuses_by_the_bounds_and_the_previous_status(previous, lower, upper, expected):
    prev = [was(previous, "2024-06-10")] if previous else []
    assert brief(decide([supplier(lower=lower, upper=upper)], prev)["S1"]) == expected


def test_hysteresis_across_consecutive_runs():
    runs = [  # as_of, lower, upper -> status, reason, since
        ("2024-01-01", 70, 90, ("eligible", "meets_bar", "2024-01-01")),
        ("2024-01-02", 50, 58, ("watch", "slipped_below_bar", "2024-01-02")),
        ("2024-01-31", 50, 58, ("watch", "grace_period", "2024-01-02")),         # 29 days on watch
        ("2024-02-01", 50, 58, ("suspended", "grace_period_expired", "2024-02-01")),  # 30 days: grace is over
        ("2024-02-02", 62, 80, ("suspended", "below_return_bar", "2024-02-01")),  # above the bar, not the return bar
        ("2024-02-03", 65, 85, ("eligible", "cleared_return_bar", "2024-02-03")),
        ("2024-02-04", 61, 81, ("eligible", "meets_bar", "2024-02-03")),           # eligible again: the bar suffices
    ]
    previous, seen = [], []
    for as_of, lower, upper, _expected in runs:
        row = decide([supplier(lower=lower, upper=upper)], previous, as_of)["S1"]
        seen.append(brief(row))
        previous = [{"supplier_id": "S1", "protection_status": row["protection_status"],
                     "status_since": row["status_since"]}]
    assert seen == [expected for *_x, expected in runs]


def test_a_watch_supplier_back_above_the_bar_but_below_the_return_bar_stays_on_watch():
    previous, seen = [was("eligible", "2024-01-01")], []
    for as_of, lower in [("2024-01-02", 50), ("2024-01-05", 62), ("2024-01-10", 64.9), ("2024-01-11", 65)]:
        row = decide([supplier(lower=lower, upper=lower + 9)], previous, as_of)["S1"]
        seen.append((row["protection_status"], str(row["status_since"]), row["is_protected"]))
        previous = [{"supplier_id": "S1", "protection_status": row["protection_status"],
                     "status_since": row["status_since"]}]
    assert seen == [("watch", "2024-01-02", True), ("watch", "2024-01-02", True), ("watch", "2024-01-02", True),
                    ("eligible", "2024-01-11", True)]


@pytest.mark.parametrize("status, protected", [("eligible", True), ("watch", True), ("suspended", False),
                                               ("insufficient_history", False)])
def test_only_eligible_and_watch_are_protected(status, protected):
    given = {"eligible": ([], 80), "watch": ([was("eligible", "2024-06-01")], 50),
             "suspended": ([was("suspended", "2024-06-01")], 40), "insufficient_history": ([], 80)}
    previous, lower = given[status]
    young = {"account_age_days": 10} if status == "insufficient_history" else {}
    row = decide([supplier(lower=lower, upper=lower + 5, **young)], previous)["S1"]
    assert (row["protection_status"], row["is_protected"], row["protection_limit_usd"] > 0) == (
        status, protected, protected)


def test_the_limit_grows_with_the_square_root_of_matured_orders_shrinks_with_risk_and_halves_on_watch():
    got = decide([
        supplier("E100", matured_orders=100.0, risk=0.03),     # (2000 + 1500 x 10) x (1 - 0.1)
        supplier("E25", matured_orders=25.0, risk=0.03),       # (2000 + 1500 x 5) x 0.9
        supplier("E100_SAFE", matured_orders=100.0, risk=0.0),
        supplier("HUGE", matured_orders=40000.0, risk=0.0),    # 2000 + 1500 x 200 > the 250,000 maximum
        supplier("RISKY", matured_orders=100.0, risk=0.30),    # risk at limit_risk_zero_at: nothing covered
        supplier("RISKIER", matured_orders=100.0, risk=0.45),
        supplier("WATCH", matured_orders=100.0, risk=0.03, lower=50, upper=55),
    ], previous=[was("eligible", "2024-06-01", "WATCH")])
    assert {s: r["protection_limit_usd"] for s, r in got.items()} == {
        "E100": pytest.approx(15300), "E25": pytest.approx(8550), "E100_SAFE": pytest.approx(17000),
        "HUGE": pytest.approx(250000), "RISKY": 0, "RISKIER": 0, "WATCH": pytest.approx(7650)}
    assert got["WATCH"]["protection_status"] == "watch"


def test_reason_codes_give_the_decision_then_each_component_under_the_good_bar_weakest_first():
    components = [{"supplier_id": "S1", "component": c, "points": p} for c, p in
                  [("order_defect", 90), ("recent_order_defect", 65), ("late_shipment", 40),
                   ("late_delivery", 69.9), ("dispute", 70)]]
    components += [{"supplier_id": "NEW", "component": "late_shipment", "points": 10}]
    got = decide([supplier("S1"), supplier("NEW", distinct_buyers=2), supplier("CLEAN")], components=components)
    assert {s: r["reason_codes"] for s, r in got.items()} == {
        "S1": ["meets_bar", "weak_late_shipment", "weak_recent_order_defect", "weak_late_delivery"],
        "NEW": ["insufficient_distinct_buyers"],  # with too little evidence, components are the prior
        "CLEAN": ["meets_bar"],
    }


def test_status_since_is_kept_while_the_status_holds_and_reset_when_it_changes():
    previous = [was("eligible", "2024-01-01", "KEPT"), was("eligible", "2024-01-01", "CHANGED"),
                was("suspended", "2024-03-01", "STILL_OUT")]
    got = decide([supplier("KEPT"), supplier("CHANGED", lower=30, upper=50), supplier("STILL_OUT", lower=30, upper=50),
                  supplier("FIRST_RUN")], previous, as_of="2024-06-30")
    assert {s: str(r["status_since"]) for s, r in got.items()} == {
        "KEPT": "2024-01-01", "CHANGED": "2024-06-30", "STILL_OUT": "2024-03-01", "FIRST_RUN": "2024-06-30"}


def test_evidence_concentrated_in_a_few_buyers_is_never_eligible():
    got = decide([supplier("RING", lower=90, upper=95, uncapped_order_share=0.3)])["RING"]
    assert (got["protection_status"], got["reason_codes"][0]) == ("watch", "buyer_concentration")


def test_buyer_concentration_never_lifts_a_suspended_supplier_back_to_protection():
    previous = [was("suspended", "2024-05-01", "RING"), was("suspended", "2024-05-01", "SPREAD")]
    got = decide([supplier("RING", lower=40, upper=75, uncapped_order_share=0.3),
                  supplier("SPREAD", lower=40, upper=75)], previous)
    assert got["SPREAD"]["protection_status"] == "suspended"
    assert got["RING"]["protection_status"] == "suspended"


def test_decisions_run_on_a_plain_duckdb_session():
    plain = ibis.duckdb.connect()
    rows = plain.to_pyarrow(decisions([supplier()])).to_pylist()
    assert [(r["protection_status"], r["reason_codes"]) for r in rows] == [("eligible", ["meets_bar"])]


def test_a_supplier_missing_from_the_risk_table_is_still_decided():
    suppliers = [supplier("S1"), supplier("S2")]
    out = protection_decisions(
        table(suppliers, SCORE_SCHEMA), table(suppliers, EVIDENCE_SCHEMA), table([], COMPONENT_SCHEMA),
        table([], PREVIOUS_SCHEMA), table(suppliers[:1], RISK_SCHEMA), day("2024-06-30"), RULES, GOOD_BAR)
    assert sorted(r["supplier_id"] for r in out.to_pyarrow().to_pylist()) == ["S1", "S2"]
