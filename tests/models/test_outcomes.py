"""Given record versions, expect each order outcome exactly, at the edges of its clock."""

from __future__ import annotations

import pytest

from models.outcomes import order_outcomes
from tests.models.frames import day, dispute, order, shipment, staging

FLAGS = ("is_shipped_late", "is_delivered_on_time", "is_matured", "is_non_delivery",
         "is_supplier_cancellation", "is_dispute_lost", "is_defect")


def outcome(as_of: str, orders, shipments=(), disputes=()) -> dict:
    rows = order_outcomes(*staging(orders, shipments, disputes), day(as_of)).to_pyarrow().to_pylist()
    assert len(rows) == 1
    return rows[0]


def flags(row: dict) -> dict:
    return {k: row[k] for k in FLAGS}


DELIVERED_ON_TIME = [
    order(), order(updated_at="2024-01-03 09:00", status="shipped"),
    order(updated_at="2024-01-10 12:00", status="delivered"),
]
SHIPPED_DELIVERED = [
    shipment(), shipment(updated_at="2024-01-10 12:00", delivered_at="2024-01-10 12:00"),
]


def test_a_good_order_is_on_time_and_matures_37_days_after_its_delivery_deadline():
    not_yet = outcome("2024-02-25", DELIVERED_ON_TIME, SHIPPED_DELIVERED)
    assert flags(not_yet) == {"is_shipped_late": False, "is_delivered_on_time": True, "is_matured": False,
                              "is_non_delivery": None, "is_supplier_cancellation": None,
                              "is_dispute_lost": None, "is_defect": None}
    matured = outcome("2024-02-26", DELIVERED_ON_TIME, SHIPPED_DELIVERED)  # 2024-01-20 + 37 days
    assert matured["is_matured"] and matured["is_defect"] is False
    assert matured["matured_on"] == day("2024-02-26")


@pytest.mark.parametrize("shipped_at, late", [
    ("2024-01-05 23:59:59", False),  # the deadline day itself is on time
    ("2024-01-06 00:00:00", True),
])
def test_shipping_on_the_deadline_day_is_on_time_and_the_next_day_is_late(shipped_at, late):
    row = outcome("2024-01-10", [order()], [shipment(updated_at=shipped_at, shipped_at=shipped_at)])
    assert row["is_shipped_late"] is late


def test_timeliness_is_unknown_until_the_deadline_passes_then_unshipped_is_late():
    assert outcome("2024-01-04", [order()])["is_shipped_late"] is None
    assert outcome("2024-01-05", [order()])["is_shipped_late"] is True
    assert outcome("2024-01-20", [order()])["is_delivered_on_time"] is False  # not "no data"


def test_a_partial_shipment_undelivered_at_the_deadline_makes_the_order_late():
    shipments = SHIPPED_DELIVERED + [shipment("H2", updated_at="2024-01-04 09:00", shipped_at="2024-01-04 09:00")]
    assert outcome("2024-01-31", DELIVERED_ON_TIME, shipments)["is_delivered_on_time"] is False


def test_not_delivered_30_days_after_the_deadline_is_a_non_delivery_defect():
    row = outcome("2024-03-01", [order()], [shipment()])
    assert flags(row) | {"is_delivered_on_time": None} == {
        "is_shipped_late": False, "is_delivered_on_time": None, "is_matured": True,
        "is_non_delivery": True, "is_supplier_cancellation": False, "is_dispute_lost": False,
        "is_defect": True}


def test_delivery_after_the_non_delivery_cut_is_still_a_non_delivery():
    late = [shipment(), shipment(updated_at="2024-02-21 08:00", delivered_at="2024-02-21 08:00")]
    assert outcome("2024-03-01", [order()], late)["is_non_delivery"] is True
    in_time = [shipment(), shipment(updated_at="2024-02-19 08:00", delivered_at="2024-02-19 08:00")]
    row = outcome("2024-03-01", [order()], in_time)
    assert (row["is_non_delivery"], row["is_delivered_on_time"], row["days_late"]) == (False, False, pytest.approx(29 + 8 / 24))


def test_without_a_promised_delivery_date_non_delivery_is_45_days_after_ship_by():
    undated = [order(promised_delivery_by=None)]
    row = outcome("2024-03-30", undated, [shipment()])
    assert row["non_delivery_due_on"] == day("2024-02-19")  # 2024-01-05 + 45 days
    assert row["is_delivered_on_time"] is None  # no contract date: no on-time outcome


def test_a_dispute_undecided_at_the_maturity_cut_delays_maturity_until_it_is_decided():
    opened = dispute(updated_at="2024-02-01 00:00", opened_at="2024-02-01 00:00")
    lost = dispute(updated_at="2024-03-10 09:00", opened_at="2024-02-01 00:00", status="resolved",
                   outcome="buyer_partial_refund", refund="40.00")
    assert outcome("2024-03-05", DELIVERED_ON_TIME, SHIPPED_DELIVERED, [opened])["is_matured"] is False
    row = outcome("2024-03-10", DELIVERED_ON_TIME, SHIPPED_DELIVERED, [opened, lost])
    assert (row["is_matured"], row["matured_on"], row["is_dispute_lost"], row["is_defect"], row["refund_usd"]) == (
        True, day("2024-03-10"), True, True, 40)


@pytest.mark.parametrize("outcome_value, defect", [("supplier_favored", False), ("withdrawn", False),
                                                   ("replacement", True), ("buyer_full_refund", True)])
def test_only_disputes_decided_for_the_buyer_are_defects(outcome_value, defect):
    status = "withdrawn" if outcome_value == "withdrawn" else "resolved"
    decided = dispute(updated_at="2024-02-05 00:00", opened_at="2024-01-25 00:00", status=status, outcome=outcome_value)
    assert outcome("2024-03-01", DELIVERED_ON_TIME, SHIPPED_DELIVERED, [decided])["is_defect"] is defect


def test_a_not_received_dispute_lost_is_a_non_delivery_even_if_delivery_was_recorded():
    lost = dispute(updated_at="2024-02-05 00:00", status="resolved", outcome="buyer_full_refund", reason="not_received")
    assert outcome("2024-03-01", DELIVERED_ON_TIME, SHIPPED_DELIVERED, [lost])["is_non_delivery"] is True


@pytest.mark.parametrize("cancelled_by, defect", [("supplier", True), ("buyer", False), ("platform", False)])
def test_a_cancelled_order_matures_at_its_cancellation(cancelled_by, defect):
    versions = [order(), order(updated_at="2024-01-02 08:00", status="cancelled", cancelled_by=cancelled_by)]
    row = outcome("2024-01-02", versions)
    assert (row["is_matured"], row["matured_on"], row["is_defect"], row["is_supplier_cancellation"]) == (
        True, day("2024-01-02"), defect, defect)
    assert row["is_shipped_late"] is None  # cancelled before the deadline: no timeliness outcome


def test_a_version_known_after_the_deadline_does_not_rewrite_a_decided_outcome():
    backdated = [shipment(updated_at="2024-01-08 09:00", shipped_at="2024-01-04 09:00")]
    assert outcome("2024-01-31", [order()], backdated)["is_shipped_late"] is True


def test_versions_after_the_as_of_date_are_invisible():
    versions = [order(), order(updated_at="2024-01-02 08:00", status="cancelled", cancelled_by="supplier")]
    assert outcome("2024-01-01", versions)["is_matured"] is False
