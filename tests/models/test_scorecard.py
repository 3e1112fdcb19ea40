"""Given a few suppliers' daily facts, expect the whole day's rankings: ranks, tiers,
decisions, and a supplier without evidence at the prior, never on top."""

from __future__ import annotations

import dataclasses
import datetime as dt

import ibis
import pytest

from models.metrics import BuyerCap
from models.policy import ProtectionRules
from models.score import Component
from models.scorecard import ScoringPolicy, rankings, supplier_metrics, suppliers_as_of
from models.shrinkage import PriorSettings
from tests.models.frames import day, table, ts

AS_OF = day("2024-06-30")
FACT_SCHEMA = {"supplier_id": "string", "buyer_id": "string", "day": "date", "metric": "string",
               "order_id": "string", "numerator": "float64", "denominator": "float64"}
SUPPLIER_SCHEMA = {"supplier_id": "string", "supplier_name": "string", "country_code": "string",
                   "main_category": "string", "registered_at": "timestamp", "updated_at": "timestamp",
                   "load_seq": "int64", "line_number": "int64"}
PREVIOUS_SCHEMA = {"supplier_id": "string", "protection_status": "string", "status_since": "date"}
COMPONENTS = (  # name, metric, window, weight, the rate that scores 50
    Component("order_defect", "order_defect", "long", 0.45, 0.10),
    Component("recent_order_defect", "order_defect", "short", 0.20, 0.10),
    Component("late_shipment", "late_shipment", "long", 0.15, 0.20),
    Component("late_delivery", "on_time_delivery", "long", 0.20, 0.20),
)
POLICY = ScoringPolicy(
    long_window_days=365, short_window_days=90, buyer_cap=BuyerCap(share=0.05, min_orders=10),
    priors=PriorSettings(min_suppliers=2, min_trials=5, min_strength=2, max_strength=500, bound_z=1.2816),
    recent_prior_strength=20, components=COMPONENTS, tier_bars={"excellent": 85, "good": 70, "fair": 50},
    targets={"order_defect": 0.02, "on_time_delivery": 0.90, "late_shipment": 0.04},
    protection=ProtectionRules(
        min_matured_orders=20, min_distinct_buyers=5, min_account_age_days=90, min_uncapped_order_share=0.5,
        eligible_bar=60, return_margin=5, grace_days=30, limit_base_usd=2000, limit_per_sqrt_order_usd=1500,
        limit_max_usd=250000, limit_risk_zero_at=0.30, watch_limit_share=0.5),
)
# supplier: (category, orders from 40 buyers, defects, late shipments, late deliveries)
RECORDS = {"GOOD": ("tools", 0, 0, 0), "OK": ("tools", 4, 2, 3), "BAD": ("toys", 12, 10, 12)}


@pytest.fixture(autouse=True, scope="module")
def arrow_lambdas():
    """Ibis 12 writes array lambdas as `x -> ...`, which DuckDB 2 accepts only when asked (as
    pipelines/scoring.py asks); models/policy.py needs it."""
    backend = ibis.get_backend()
    backend.raw_sql("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    yield
    backend.raw_sql("RESET lambda_syntax")


def supplier(supplier_id, category, registered="2022-01-01", updated="2022-01-01", load_seq=1, country="US"):
    return {"supplier_id": supplier_id, "supplier_name": supplier_id.title(), "country_code": country,
            "main_category": category, "registered_at": ts(registered), "updated_at": ts(updated),
            "load_seq": load_seq, "line_number": 1}


def facts_of(supplier_id, defects, late_shipments, late_deliveries, buyers=40) -> list[dict]:
    """One order per buyer, half of them 30 days ago (in both windows), half 200 days ago."""
    rows = []
    for i in range(buyers):
        on = AS_OF - dt.timedelta(days=30 if i % 2 else 200)

        def fact(metric, numerator, denominator=1.0):
            rows.append({"supplier_id": supplier_id, "buyer_id": f"{supplier_id}-B{i:02}", "day": on,
                         "metric": metric, "order_id": None, "numerator": float(numerator),
                         "denominator": float(denominator)})

        fact("orders", 1)
        fact("gmv_usd", 100)
        fact("order_defect", i < defects)
        fact("late_shipment", i < late_shipments)
        fact("on_time_delivery", not i < late_deliveries)
    return rows


SUPPLIERS = [supplier("GOOD", "tools"), supplier("OK", "tools"), supplier("BAD", "toys"), supplier("NEW", "toys"),
             supplier("LATER", "toys", registered="2024-07-01", updated="2024-07-01")]  # not known on AS_OF
FACTS = [row for s, (_c, *record) in RECORDS.items() for row in facts_of(s, *record)]


def rank(facts=FACTS, suppliers=SUPPLIERS, as_of=AS_OF, previous=()) -> dict:
    previous = table(list(previous), PREVIOUS_SCHEMA)
    ranked, _metrics = rankings(table(facts, FACT_SCHEMA), table(suppliers, SUPPLIER_SCHEMA), previous, None,
                                as_of, POLICY)
    return {r["supplier_id"]: r for r in ranked.to_pyarrow().to_pylist()}


PREVIOUS = [{"supplier_id": "GOOD", "protection_status": "eligible", "status_since": day("2024-01-01")},
            {"supplier_id": "OK", "protection_status": "suspended", "status_since": day("2024-06-01")}]


@pytest.fixture(scope="module")
def ranked() -> dict:
    return rank(previous=PREVIOUS[:1])


def test_every_known_supplier_is_ranked_once_from_1_to_n_best_first(ranked):
    assert {s: (r["rank_overall"], r["rank_in_category"]) for s, r in ranked.items()} == {
        "GOOD": (1, 1), "OK": (2, 2), "NEW": (3, 1), "BAD": (4, 2)}
    scores = [ranked[s]["reliability_score"] for s in ("GOOD", "OK", "NEW", "BAD")]
    assert scores == sorted(scores, reverse=True)
    assert all(r["as_of_date"] == AS_OF for r in ranked.values())


def test_a_supplier_without_any_fact_sits_at_the_prior_with_insufficient_history(ranked):
    new = ranked["NEW"]
    # toys has one supplier with evidence (< min_suppliers 2): NEW falls back to the prior of all suppliers,
    # the pooled failure rates of GOOD, OK and BAD (no buyer holds more than 5%, so nothing is capped).
    defect, late_shipment, late_delivery = 16 / 120, 12 / 120, 15 / 120

    def points(rate, half_at):
        return 100 * 0.5 ** (rate / half_at)

    prior_score = (0.45 * points(defect, 0.10) + 0.20 * points(defect, 0.10) + 0.15 * points(late_shipment, 0.2)
                   + 0.20 * points(late_delivery, 0.2))
    assert new["reliability_score"] == pytest.approx(prior_score)
    assert new["reliability_score_lower"] < new["reliability_score"] - 10  # a wide bound
    assert (new["tier"], new["protection_status"], new["is_protected"], new["protection_limit_usd"]) == (
        "insufficient_history", "insufficient_history", False, 0)
    assert new["reason_codes"][:2] == ["insufficient_matured_orders", "insufficient_distinct_buyers"]
    assert (new["orders"], new["matured_orders"], new["distinct_buyers"], new["order_defect_rate"]) == (0, 0, 0, None)
    assert new["uncapped_order_share"] == 1.0  # no orders, none capped (not 0/0)
    assert new["rank_overall"] != 1


def test_a_supplier_without_evidence_is_never_ranked_first_even_among_mediocre_ones():
    facts = [row for s, rec in {"OK": (4, 2, 3), "BAD": (12, 10, 12)}.items() for row in facts_of(s, *rec)]
    got = rank(facts, [supplier("OK", "tools"), supplier("BAD", "tools"), supplier("NEW", "tools")])
    assert got["NEW"]["rank_overall"] != 1


def test_the_good_supplier_is_protected_and_the_bad_one_is_not(ranked):
    good, bad = ranked["GOOD"], ranked["BAD"]
    assert (good["protection_status"], good["reason_codes"][0], good["is_protected"], str(good["status_since"])) == (
        "eligible", "meets_bar", True, "2024-01-01")
    # without a risk model, the shrunk 365-day order-defect rate is the risk
    assert 0 < good["risk_probability"] < 16 / 120  # no defect of its own: between 0 and the prior
    limit = (2000 + 1500 * 40 ** 0.5) * (1 - good["risk_probability"] / 0.30)
    assert good["protection_limit_usd"] == pytest.approx(limit, abs=0.01)
    assert good["tier"] in ("excellent", "good")
    assert (bad["tier"], bad["is_protected"], bad["protection_limit_usd"]) == ("poor", False, 0)
    assert "weak_order_defect" in bad["reason_codes"]


def test_a_suspended_supplier_above_the_bar_but_below_the_return_bar_stays_suspended(ranked):
    lower = ranked["OK"]["reliability_score_lower"]
    # the bar set 2 points under OK's bound: OK clears the bar, not the bar + 5 a suspended supplier needs
    policy = dataclasses.replace(POLICY, protection=dataclasses.replace(POLICY.protection, eligible_bar=lower - 2))
    previous = table(PREVIOUS, PREVIOUS_SCHEMA)
    again, _metrics = rankings(table(FACTS, FACT_SCHEMA), table(SUPPLIERS, SUPPLIER_SCHEMA), previous, None, AS_OF,
                               policy)
    ok = {r["supplier_id"]: r for r in again.to_pyarrow().to_pylist()}["OK"]
    assert ok["reliability_score_lower"] == pytest.approx(lower)
    assert (ok["protection_status"], ok["reason_codes"][0], str(ok["status_since"]), ok["protection_limit_usd"]) == (
        "suspended", "below_return_bar", "2024-06-01", 0)


def test_only_suppliers_known_on_the_as_of_date_are_ranked_with_their_latest_version():
    versions = SUPPLIERS + [supplier("OK", "toys", updated="2024-06-30 23:00", load_seq=2),
                            supplier("GOOD", "garden", updated="2024-07-01", load_seq=3)]
    got = suppliers_as_of(table(versions, SUPPLIER_SCHEMA), AS_OF).to_pyarrow().to_pylist()
    assert {r["supplier_id"]: (r["main_category"], r["account_age_days"]) for r in got} == {
        "GOOD": ("tools", 911), "OK": ("toys", 911), "BAD": ("toys", 911), "NEW": ("toys", 911)}


def test_each_metric_comes_with_its_raw_rate_target_and_status():
    known = suppliers_as_of(table(SUPPLIERS, SUPPLIER_SCHEMA), AS_OF)
    out = supplier_metrics(table(FACTS, FACT_SCHEMA), known, AS_OF, POLICY).to_pyarrow().to_pylist()
    got = {(r["supplier_id"], r["metric"], r["window_days"]): (r["rate"], r["target"], r["status"]) for r in out}
    assert got[("GOOD", "order_defect", 365)] == (0, 0.02, "meets")
    assert got[("OK", "order_defect", 365)] == (pytest.approx(0.1), 0.02, "misses")
    assert got[("OK", "order_defect", 90)] == (pytest.approx(2 / 20), 0.02, "misses")  # buyers 1 and 3 are recent
    assert got[("OK", "on_time_delivery", 365)] == (pytest.approx(37 / 40), 0.9, "meets")
    assert got[("BAD", "on_time_delivery", 365)] == (pytest.approx(28 / 40), 0.9, "misses")
    assert got[("GOOD", "orders", 365)] == (1, None, None)


def test_a_known_supplier_without_evidence_gets_every_metric_with_status_no_evidence():
    known = suppliers_as_of(table(SUPPLIERS, SUPPLIER_SCHEMA), AS_OF)
    out = supplier_metrics(table(FACTS, FACT_SCHEMA), known, AS_OF, POLICY).to_pyarrow().to_pylist()
    new = {(r["metric"], r["window_days"]): r["status"] for r in out if r["supplier_id"] == "NEW"}
    assert new[("order_defect", 365)] == "no_evidence"


def test_rankings_with_every_stage_materialised_equal_rankings_as_one_expression(ranked):
    """Engines cut the scorecard at its checkpoints (pipelines/engines.py): the rows must not change."""
    materialised = []

    def checkpoint(table, name):
        materialised.append(name)
        return ibis.memtable(table.to_pyarrow())

    staged, _metrics = rankings(table(FACTS, FACT_SCHEMA), table(SUPPLIERS, SUPPLIER_SCHEMA),
                                table(PREVIOUS[:1], PREVIOUS_SCHEMA), None, AS_OF, POLICY, checkpoint)
    assert {r["supplier_id"]: r for r in staged.to_pyarrow().to_pylist()} == ranked
    assert "supplier_metrics" in materialised
