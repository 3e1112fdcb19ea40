"""Given order outcomes, expect each order's facts exactly: right day, right numerator and
denominator, nothing undecided, nothing outside the days asked for."""

from __future__ import annotations

from decimal import Decimal

import pytest

from models.facts import METRIC_NAMES, supplier_day_facts
from models.outcomes import order_outcomes
from tests.models.frames import day, order, shipment, staging, table

OUTCOME_SCHEMA = {
    "order_id": "string", "supplier_id": "string", "buyer_id": "string", "order_amount_usd": "decimal(18,2)",
    "placed_on": "date", "ship_due_on": "date", "delivery_due_on": "date", "non_delivery_due_on": "date",
    "matured_on": "date", "is_shipped_late": "boolean", "is_delivered_on_time": "boolean",
    "has_valid_tracking": "boolean", "days_late": "float64", "is_matured": "boolean",
    "is_supplier_cancellation": "boolean", "is_non_delivery": "boolean", "has_dispute": "boolean",
    "has_decided_dispute": "boolean", "is_dispute_lost": "boolean", "refund_usd": "decimal(38,2)",
    "is_defect": "boolean",
}
PLACED, SHIP_DUE, DELIVERY_DUE, ND_DUE, MATURED = "2024-01-01", "2024-01-05", "2024-01-20", "2024-02-19", "2024-02-26"


def outcome(order_id="O1", buyer_id="B1", amount="100.00", **overrides) -> dict:
    """A $100 order of S1 placed 01-01, every outcome decided and good."""
    row = {
        "order_id": order_id, "supplier_id": "S1", "buyer_id": buyer_id, "order_amount_usd": Decimal(amount),
        "placed_on": day(PLACED), "ship_due_on": day(SHIP_DUE), "delivery_due_on": day(DELIVERY_DUE),
        "non_delivery_due_on": day(ND_DUE), "matured_on": day(MATURED),
        "is_shipped_late": False, "is_delivered_on_time": True, "has_valid_tracking": True, "days_late": None,
        "is_matured": True, "is_supplier_cancellation": False, "is_non_delivery": False, "has_dispute": False,
        "has_decided_dispute": False, "is_dispute_lost": False, "refund_usd": Decimal("0.00"), "is_defect": False,
    }
    row.update(overrides)
    return row


UNDECIDED = {  # placed, but nothing else due yet
    "matured_on": None, "is_shipped_late": None, "is_delivered_on_time": None, "has_valid_tracking": None,
    "is_matured": False, "is_supplier_cancellation": None, "is_non_delivery": None, "has_dispute": None,
    "has_decided_dispute": None, "is_dispute_lost": None, "refund_usd": None, "is_defect": None,
}


def fact_rows(rows, first="2024-01-01", last="2024-12-31") -> list[dict]:
    out = supplier_day_facts(table(rows, OUTCOME_SCHEMA), day(first), day(last)).to_pyarrow().to_pylist()
    assert all(r["supplier_id"] == "S1" for r in out)
    return out


def facts(rows, first="2024-01-01", last="2024-12-31") -> dict:
    """(buyer, day, metric, order) -> (numerator, denominator), summed as every reader sums them."""
    summed: dict = {}
    for r in fact_rows(rows, first, last):
        key = (r["buyer_id"], str(r["day"]), r["metric"], r["order_id"])
        numerator, denominator = summed.get(key, (0, 0))
        summed[key] = (numerator + r["numerator"], denominator + r["denominator"])
    return summed


def test_a_good_order_files_each_metric_on_the_day_its_outcome_was_decided():
    assert facts([outcome()]) == {
        ("B1", PLACED, "orders", None): (1, 1),
        ("B1", PLACED, "gmv_usd", None): (100, 1),
        ("B1", SHIP_DUE, "late_shipment", None): (0, 1),
        ("B1", DELIVERY_DUE, "on_time_delivery", None): (1, 1),
        ("B1", ND_DUE, "valid_tracking", None): (1, 1),
        ("B1", MATURED, "non_delivery", None): (0, 1),
        ("B1", MATURED, "supplier_cancellation", None): (0, 1),
        ("B1", MATURED, "dispute", None): (0, 1),
        ("B1", MATURED, "dispute_loss", None): (0, 0),  # no decided dispute: no trial
        ("B1", MATURED, "refund_share", None): (0, 100),
        ("B1", MATURED, "order_defect", None): (0, 1),
    }


def test_failures_count_in_the_numerator_and_every_decided_order_in_the_denominator():
    bad = outcome("O2", is_shipped_late=True, is_delivered_on_time=False, has_valid_tracking=False,
                  days_late=3.5, is_non_delivery=False, has_dispute=True, has_decided_dispute=True,
                  is_dispute_lost=True, refund_usd=Decimal("40.00"), is_defect=True)
    got = facts([outcome(), bad])
    assert {metric: got[("B1", d, metric, None)] for (_b, d, metric, o) in got if o is None} == {
        "orders": (2, 2), "gmv_usd": (200, 2), "late_shipment": (1, 2), "on_time_delivery": (1, 2),
        "valid_tracking": (1, 2), "non_delivery": (0, 2), "supplier_cancellation": (0, 2), "dispute": (1, 2),
        "dispute_loss": (1, 1), "refund_share": (40, 200), "order_defect": (1, 2),
    }


def test_an_outcome_not_decided_yet_files_no_fact():
    assert facts([outcome(**UNDECIDED)]) == {
        ("B1", PLACED, "orders", None): (1, 1),
        ("B1", PLACED, "gmv_usd", None): (100, 1),
    }


def test_a_cancelled_order_files_its_defects_at_cancellation_and_no_timeliness():
    cancelled = outcome(**UNDECIDED | {"matured_on": day("2024-01-02"), "is_matured": True,
                                       "is_supplier_cancellation": True, "is_non_delivery": False,
                                       "has_dispute": False, "has_decided_dispute": False,
                                       "is_dispute_lost": False, "refund_usd": Decimal("0"), "is_defect": True})
    got = facts([cancelled])
    assert {k[2] for k in got} == {"orders", "gmv_usd", "non_delivery", "supplier_cancellation", "dispute",
                                  "dispute_loss", "refund_share", "order_defect"}
    assert got[("B1", "2024-01-02", "supplier_cancellation", None)] == (1, 1)
    assert got[("B1", "2024-01-02", "order_defect", None)] == (1, 1)


@pytest.mark.parametrize("first, last, expected_metrics", [
    (SHIP_DUE, DELIVERY_DUE, {"late_shipment", "on_time_delivery"}),  # both ends are inclusive
    ("2024-01-06", "2024-01-19", set()),
    ("2024-01-02", "2024-02-25", {"late_shipment", "on_time_delivery", "valid_tracking"}),
    (MATURED, MATURED, {"non_delivery", "supplier_cancellation", "dispute", "dispute_loss", "refund_share",
                        "order_defect"}),
])
def test_only_the_days_first_to_last_are_filed(first, last, expected_metrics):
    assert {k[2] for k in facts([outcome()], first, last)} == expected_metrics


def test_each_order_files_one_row_per_metric_decided():
    two = fact_rows([outcome("O1"), outcome("O2", days_late=2.0)])
    per_metric = {m: sum(r["metric"] == m for r in two) for m in METRIC_NAMES}
    assert per_metric == {m: 1 if m == "days_late" else 2 for m in METRIC_NAMES}
    assert {r["order_id"] for r in two} == {None, "O2"}  # the id only where the median needs it


def test_orders_of_one_buyer_on_one_day_sum_and_buyers_stay_apart():
    got = facts([outcome("O1"), outcome("O2", amount="50.00"), outcome("O3", buyer_id="B2", is_defect=True)])
    assert got[("B1", PLACED, "gmv_usd", None)] == (150, 2)
    assert got[("B2", PLACED, "gmv_usd", None)] == (100, 1)
    assert got[("B1", MATURED, "order_defect", None)] == (0, 2)
    assert got[("B2", MATURED, "order_defect", None)] == (1, 1)


def test_days_late_is_kept_per_order_for_the_median():
    got = facts([outcome("O1", days_late=2.0), outcome("O2", days_late=5.5), outcome("O3")])
    assert {k: v for k, v in got.items() if k[2] == "days_late"} == {
        ("B1", ND_DUE, "days_late", "O1"): (2.0, 1),
        ("B1", ND_DUE, "days_late", "O2"): (5.5, 1),
    }


def test_every_metric_of_facts_py_is_filed_by_a_late_but_delivered_order():
    assert set(METRIC_NAMES) == {k[2] for k in facts([outcome(days_late=1.0)])}


def test_facts_from_real_outcomes_a_late_shipped_order_delivered_three_days_late():
    versions = [order(), order(updated_at="2024-01-07 09:00", status="shipped")]
    shipments = [shipment(updated_at="2024-01-07 09:00", shipped_at="2024-01-07 09:00"),
                 shipment(updated_at="2024-01-23 12:00", shipped_at="2024-01-07 09:00",
                          delivered_at="2024-01-23 12:00")]
    outcomes = order_outcomes(*staging(versions, shipments), day("2024-03-31"))
    out = supplier_day_facts(outcomes, day("2024-01-01"), day("2024-03-31")).to_pyarrow().to_pylist()
    got = {(str(r["day"]), r["metric"]): (r["numerator"], r["denominator"]) for r in out}
    assert got[(SHIP_DUE, "late_shipment")] == (1, 1)
    assert got[(DELIVERY_DUE, "on_time_delivery")] == (0, 1)
    assert got[(ND_DUE, "days_late")] == (pytest.approx(2.5), 1)  # due end of 01-20, delivered 01-23 12:00
    assert got[(MATURED, "order_defect")] == (0, 1)
