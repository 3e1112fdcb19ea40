"""Given daily facts, expect windowed metrics exactly: the window's edges, and the buyer cap
(the water level) against its closed form worked out by hand."""

from __future__ import annotations

import random

import pytest

from models.metrics import (BuyerCap, EvidenceSpan, buyer_evidence, evidence_change, evidence_correction,
                            median_days_late, water_level, windowed_metrics)
from tests.models.frames import day, table

FACT_SCHEMA = {"supplier_id": "string", "buyer_id": "string", "day": "date", "metric": "string",
               "order_id": "string", "numerator": "float64", "denominator": "float64"}
PER_BUYER_SCHEMA = {"supplier_id": "string", "metric": "string", "buyer_id": "string",
                    "numerator": "float64", "denominator": "float64"}
AS_OF = day("2024-03-31")


def fact(buyer_id, orders, defects=0.0, on="2024-03-31", metric="order_defect", supplier_id="S1", order_id=None):
    return {"supplier_id": supplier_id, "buyer_id": buyer_id, "day": day(on), "metric": metric,
            "order_id": order_id, "numerator": float(defects), "denominator": float(orders)}


def ring_supplier(supplier_id="S1"):
    """100 real buyers with one order each (10 of them defective) and a ring of 5 accounts
    with 60 orders each (6 defective each)."""
    real = [fact(f"B{i:03}", 1, 1 if i < 10 else 0, supplier_id=supplier_id) for i in range(100)]
    ring = [fact(f"R{i}", 60, 6, supplier_id=supplier_id) for i in range(5)]
    return real + ring


def windowed(rows, cap=BuyerCap(share=0.05, min_orders=2), as_of=AS_OF, window_days=365) -> dict:
    out = windowed_metrics(table(rows, FACT_SCHEMA), as_of, window_days, cap).to_pyarrow().to_pylist()
    return {(r["supplier_id"], r["metric"]): r for r in out}


def levels(rows, cap) -> dict:
    per_buyer = table([{k: r[k] for k in PER_BUYER_SCHEMA} for r in rows], PER_BUYER_SCHEMA)
    return {(r["supplier_id"], r["metric"]): r["level"] for r in water_level(per_buyer, cap).to_pyarrow().to_pylist()}


def test_the_water_level_of_a_ring_matches_the_closed_form():
    # Capping the 5 ring accounts at m: m = share x rest / (1 - share x k) = 0.05 x 100 / (1 - 0.25) = 6.67,
    # which lies between d_5 = 60 and d_6 = 1, so k = 5 is the right split.
    share, rest, k = 0.05, 100, 5
    level = share * rest / (1 - share * k)
    assert level == pytest.approx(20 / 3)
    assert levels(ring_supplier(), BuyerCap(share=0.05, min_orders=2)) == {("S1", "order_defect"): pytest.approx(level)}


def test_a_ring_is_capped_at_the_water_level_and_its_numerators_by_the_same_weight():
    row = windowed(ring_supplier())[("S1", "order_defect")]
    level = 20 / 3
    capped_denominator = 100 + 5 * level  # 133.33
    capped_numerator = 10 + 5 * 6 * (level / 60)  # each ring account keeps level/60 of its 6 defects
    assert (row["raw_denominator"], row["raw_numerator"]) == (400, 10 + 30)
    assert row["denominator"] == pytest.approx(capped_denominator) == pytest.approx(133.3333, abs=1e-4)
    assert row["numerator"] == pytest.approx(capped_numerator)
    assert level / row["denominator"] == pytest.approx(0.05)  # each ring account now holds exactly `share`
    assert (row["buyers"], row["top_buyer_share"]) == (105, pytest.approx(60 / 400))
    assert (row["window_days"], row["as_of_date"]) == (365, AS_OF)


def test_exactly_one_over_share_buyers_are_capped_at_the_smallest_not_at_min_orders():
    # 20 buyers at a 5% share: the level is the smallest buyer's evidence, where m meets
    # d_20 exactly and rounding used to push it out of every interval (the cap then fell to
    # min_orders, 10 per buyer). The amounts are a generated supplier's 365-day order values.
    amounts = [35183.74, 28380.72, 16150.76, 12978.71, 12621.64, 11046.89, 8449.86, 6981.7, 5636.9, 5456.77,
               4850.5, 3399.79, 3236.15, 2819.36, 2584.09, 2466.87, 1559.31, 1511.68, 1254.56, 1091.42]
    rows = [fact(f"B{i:02}", amount, metric="gmv_usd") for i, amount in enumerate(amounts)]
    assert levels(rows, BuyerCap(share=0.05, min_orders=10)) == {("S1", "gmv_usd"): pytest.approx(1091.42)}


def test_no_cap_when_no_buyer_exceeds_the_share():
    rows = [fact(f"B{i:02}", 4, 1 if i == 0 else 0) for i in range(25)]  # each buyer holds 4%
    assert levels(rows, BuyerCap(share=0.05, min_orders=2)) == {}
    row = windowed(rows)[("S1", "order_defect")]
    assert (row["numerator"], row["denominator"]) == (row["raw_numerator"], row["raw_denominator"]) == (1, 100)


def test_the_level_never_falls_below_min_orders():
    row = windowed(ring_supplier(), BuyerCap(share=0.05, min_orders=10))[("S1", "order_defect")]
    # the water level 6.67 is raised to 10: each ring account counts 10 orders and 6 x 10/60 defects
    assert (row["denominator"], row["numerator"]) == (pytest.approx(100 + 5 * 10), pytest.approx(10 + 5 * 1))


def test_a_supplier_with_a_few_loyal_buyers_keeps_min_orders_of_each():
    # with 3 buyers no level can bring one buyer under 5%: the cap is min_orders
    rows = [fact("B1", 30, 3), fact("B2", 5, 0), fact("B3", 5, 1)]
    assert levels(rows, BuyerCap(share=0.05, min_orders=10)) == {("S1", "order_defect"): 10}
    row = windowed(rows, BuyerCap(share=0.05, min_orders=10))[("S1", "order_defect")]
    assert (row["denominator"], row["numerator"]) == (pytest.approx(20), pytest.approx(1 + 0 + 1))


def test_the_cap_is_computed_per_supplier_and_per_metric():
    honest = [fact(f"B{i:02}", 4, supplier_id="S2") for i in range(25)]
    ring_orders = [fact(r["buyer_id"], r["denominator"], r["denominator"], metric="orders") for r in ring_supplier()]
    got = windowed(ring_supplier() + honest + ring_orders)
    assert {key: round(r["denominator"], 2) for key, r in got.items()} == {
        ("S1", "order_defect"): 133.33, ("S1", "orders"): 133.33, ("S2", "order_defect"): 100}


@pytest.mark.parametrize("on, counted", [
    ("2024-04-01", False),  # after as_of
    ("2024-03-31", True),   # as_of itself
    ("2024-01-02", True),   # as_of - 90 + 1: the window's first day
    ("2024-01-01", False),  # one day before the window
])
def test_the_window_holds_the_days_from_as_of_minus_window_plus_one_to_as_of(on, counted):
    rows = [fact("B1", 1, on="2024-02-15"), fact("B2", 10, 3, on=on)]
    row = windowed(rows, window_days=90)[("S1", "order_defect")]
    assert (row["raw_denominator"], row["raw_numerator"]) == ((11, 3) if counted else (1, 0))


def test_days_late_facts_are_not_windowed_as_a_rate_but_give_the_median():
    rows = [fact("B1", 1, d, on=on, metric="days_late", order_id=o) for o, d, on in
            [("O1", 1.0, "2024-03-01"), ("O2", 2.0, "2024-03-02"), ("O3", 9.0, "2024-03-31"),
             ("O4", 50.0, "2023-12-01"), ("O5", 50.0, "2024-04-01")]]
    assert windowed(rows + [fact("B1", 1)]).keys() == {("S1", "order_defect")}
    median = median_days_late(table(rows, FACT_SCHEMA), AS_OF, 90).to_pyarrow().to_pylist()
    assert median == [{"supplier_id": "S1", "median_days_late": 2.0}]


def fixed_point(ds: list[float], share: float) -> float:
    """The water level by bisection: share x sum(min(d, m)) - m is positive below it."""
    lo, hi = 0.0, max(ds)
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share * sum(min(d, mid) for d in ds) > mid else (lo, mid)
    return lo


@pytest.mark.parametrize("min_orders", [1.5, 6.0, 15.0])
def test_the_level_is_the_fixed_point_m_equals_share_times_the_capped_total_on_assorted_suppliers(min_orders):
    # 40 seeded suppliers with uneven buyers; each level must solve m = share x sum(min(d_i, m)), raised
    # to min_orders, and exist exactly when the top buyer holds more than share of the total and is
    # above min_orders (a cap at min_orders that binds no buyer is no cap). At 6 and 15 most buyers
    # are at or below min_orders, so the level is often found with them left out of the sort.
    rng, share, cap = random.Random(7), 0.1, BuyerCap(share=0.1, min_orders=min_orders)
    evidence = {f"S{i:02}": [float(rng.choice([1, 1, 2, 3, 5, 6, 8, 20, 60])) for _ in range(rng.randint(1, 30))]
                for i in range(40)}
    rows = [fact(f"B{j:02}", d, supplier_id=s) for s, ds in evidence.items() for j, d in enumerate(ds)]
    got = levels(rows, cap)
    expected = {(s, "order_defect"): pytest.approx(max(fixed_point(ds, share), min_orders), abs=1e-6)
                for s, ds in evidence.items() if max(ds) > share * sum(ds) and max(ds) > min_orders}
    assert len(expected) > 10 and got == expected
    above_the_floor = sum(1 for s, ds in evidence.items() if (s, "order_defect") in expected
                          and fixed_point(ds, share) > min_orders)
    assert above_the_floor > 5  # levels found among the buyers above min_orders, not just the floor


def test_capped_metrics_do_not_depend_on_whether_buyers_at_min_orders_are_sorted():
    # Buyers at or below min_orders are left out of the water level's sort; the capped sums must
    # equal the definition: each buyer counts min(d, level) with level from the fixed point.
    rng, cap = random.Random(11), BuyerCap(share=0.05, min_orders=4)
    rows, expected, capped = [], {}, 0
    for i in range(30):
        ds = [float(rng.choice([1, 1, 1, 2, 3, 4, 4, 5, 9, 40])) for _ in range(rng.randint(1, 60))]
        rows += [fact(f"B{j:02}", d, d / 2, supplier_id=f"S{i:02}") for j, d in enumerate(ds)]
        level = max(fixed_point(ds, cap.share), cap.min_orders) if max(ds) > cap.share * sum(ds) else max(ds)
        capped += level < max(ds)
        expected[(f"S{i:02}", "order_defect")] = (pytest.approx(sum(min(d, level) / 2 for d in ds), abs=1e-6),
                                                  pytest.approx(sum(min(d, level) for d in ds), abs=1e-6))
    got = {key: (r["numerator"], r["denominator"]) for key, r in windowed(rows, cap).items()}
    assert capped > 10 and got == expected


def keyed_evidence(table) -> dict:
    """buyer_evidence or evidence_change rows as {(supplier, metric, buyer): {column: value}}."""
    return {(r.pop("supplier_id"), r.pop("metric"), r.pop("buyer_id")): r for r in table.to_pyarrow().to_pylist()}


def span_evidence(facts, span: EvidenceSpan, windows) -> dict:
    """The evidence a span counts, from the facts: the windows ending on as_of, days up to through."""
    return keyed_evidence(buyer_evidence(facts.filter(facts.day <= span.through), span.as_of, windows))


def moved_by(evidence: dict, change) -> dict:
    """Keyed evidence with an evidence change added, as features.buyer_evidence is moved: sums
    added, new buyers inserted, buyers left with no facts in the longest window (30 days) gone."""
    moved = {key: dict(sums) for key, sums in evidence.items()}
    for key, delta in keyed_evidence(change).items():
        kept = moved.setdefault(key, {column: 0 for column in delta})
        for column, value in delta.items():
            kept[column] += value
    return {key: sums for key, sums in moved.items() if sums["facts_30"] != 0}


def seeded_facts(seed: str, count: int = 3000) -> list[dict]:
    """Facts over the 120 days from 2024-01-01: ten buyers of four suppliers, three metrics."""
    rng = random.Random(seed)
    return [fact(f"B{rng.randint(0, 9)}", rng.choice([1, 1, 2.5, 130.25]), rng.choice([0, 0, 1, 0.125]),
                 on=str(day("2024-01-01").fromordinal(day("2024-01-01").toordinal() + rng.randint(0, 119))),
                 metric=rng.choice(["orders", "refund_share", "days_late"]), supplier_id=f"S{rng.randint(0, 3)}")
            for _ in range(count)]


@pytest.mark.parametrize("old, new", [
    (("2024-03-01", "2024-03-01"), ("2024-03-02", "2024-03-02")),  # a day later
    (("2024-03-01", "2024-03-01"), ("2024-03-04", "2024-03-04")),
    (("2024-03-01", "2024-03-01"), ("2024-03-13", "2024-03-13")),  # past the short window
    (("2024-03-01", "2024-03-01"), ("2024-04-10", "2024-04-10")),  # past the long window
    (("2024-03-01", "2024-03-01"), ("2024-03-01", "2024-02-20")),  # days from 02-21 taken out (late facts)
    (("2024-03-01", "2024-02-20"), ("2024-03-02", "2024-03-02")),  # and added back, a day later
    (("2024-03-01", "2024-01-20"), ("2024-03-03", "2024-03-03")),  # taken out past both windows, added back
])
def test_the_evidence_of_a_span_moved_by_its_change_is_the_evidence_of_the_new_span(old, new):
    # Windows of 10 and 30 days. Decimal sums: the match is exact.
    windows, facts = (10, 30), table(seeded_facts(str(old + new)), FACT_SCHEMA)
    old, new = (EvidenceSpan(day(as_of), day(through)) for as_of, through in (old, new))

    moved = moved_by(span_evidence(facts, old, windows), evidence_change(facts, old, new, windows))

    expected = span_evidence(facts, new, windows)
    assert len(expected) > 20 and moved == expected
    assert all(value >= 0 for sums in moved.values() for value in sums.values())


def test_facts_replaced_correct_the_evidence_of_the_buyers_whose_evidence_changed():
    # A late version changes one fact of 2024-02-25 (a day both windows count) and one of
    # 2024-01-10 (a day neither counts); the recomputed days from 01-05 replace the stored ones.
    windows, rows = (10, 30), seeded_facts("late")
    span = EvidenceSpan(day("2024-03-01"), day("2024-03-01"))
    stored = table(rows, FACT_SCHEMA)
    late = [next(i for i, r in enumerate(rows) if r["day"] == day(on) and r["metric"] == "orders")
            for on in ("2024-02-25", "2024-01-10")]
    for i in late:
        rows[i] = {**rows[i], "numerator": rows[i]["numerator"] + 1}
    recomputed = table(rows, FACT_SCHEMA)

    def days_from(facts, first):
        return facts.filter(facts.day >= day(first))

    correction = evidence_correction(days_from(stored, "2024-01-05"), days_from(recomputed, "2024-01-05"), span, windows)

    before, after = span_evidence(stored, span, windows), span_evidence(recomputed, span, windows)
    assert moved_by(before, correction) == after
    counted = (rows[late[0]]["supplier_id"], "orders", rows[late[0]]["buyer_id"])
    assert set(keyed_evidence(correction)) == {counted}  # facts replaced by equal ones cancel out


def test_evidence_windows_do_not_move_back():
    with pytest.raises(ValueError, match="only move forward"):
        evidence_change(table([fact("B1", 1)], FACT_SCHEMA), EvidenceSpan(AS_OF, AS_OF),
                        EvidenceSpan(day("2024-03-30"), day("2024-03-30")), (90,))
