"""Given shrunk failure rates, expect each component's points, the weighted score, its
conservative bound and the weakest-link tier exactly."""

from __future__ import annotations

import math

import pytest

from models.score import Component, component_scores, recent_rates, supplier_scores
from tests.models.frames import table

RATE_SCHEMA = {"supplier_id": "string", "metric": "string", "x": "float64", "n": "float64",
               "shrunk_rate": "float64", "shrunk_rate_upper": "float64", "shrunk_rate_lower": "float64"}
TRIAL_SCHEMA = {"supplier_id": "string", "metric": "string", "x": "float64", "n": "float64"}
COMPONENT_SCHEMA = {"supplier_id": "string", "component": "string", "weight": "float64", "points": "float64",
                    "points_lower": "float64", "points_upper": "float64"}
COMPONENTS = (  # name, metric, window, weight, the rate that scores 50
    Component("order_defect", "order_defect", "long", 0.45, 0.10),
    Component("recent_order_defect", "order_defect", "short", 0.20, 0.10),
    Component("late_shipment", "late_shipment", "long", 0.15, 0.20),
    Component("late_delivery", "on_time_delivery", "long", 0.20, 0.20),
)
BARS = {"excellent": 85, "good": 70, "fair": 50}


def rate(supplier_id, metric, shrunk, upper=None, lower=None, x=0.0, n=0.0):
    return {"supplier_id": supplier_id, "metric": metric, "x": x, "n": n, "shrunk_rate": shrunk,
            "shrunk_rate_upper": shrunk if upper is None else upper,
            "shrunk_rate_lower": shrunk if lower is None else lower}


def components(long_rows, short_rows, comps=COMPONENTS) -> dict:
    rates = {"long": table(long_rows, RATE_SCHEMA), "short": table(short_rows, RATE_SCHEMA)}
    out = component_scores(rates, comps).to_pyarrow().to_pylist()
    return {(r["supplier_id"], r["component"]): r for r in out}


def scores(points_by_supplier: dict[str, list[float]], weights=(0.45, 0.20, 0.15, 0.20)) -> dict:
    rows = [{"supplier_id": s, "component": c.name, "weight": w, "points": p, "points_lower": p - 10,
             "points_upper": p + 5} for s, points in points_by_supplier.items()
            for c, w, p in zip(COMPONENTS, weights, points)]
    out = supplier_scores(table(rows, COMPONENT_SCHEMA), BARS).to_pyarrow().to_pylist()
    return {r["supplier_id"]: r for r in out}


def points(rate, half_at):
    return 100 * 0.5 ** (rate / half_at)


@pytest.mark.parametrize("shrunk, expected", [
    (0.0, 100), (0.05, 70.7107), (0.10, 50), (0.20, 25), (0.30, 12.5),
    (1.0, 0.0977),  # never clipped to 0: a very bad rate still ranks below a bad one
])
def test_a_rate_maps_to_100_at_zero_halving_every_half_at(shrunk, expected):
    got = components([rate("S1", "order_defect", shrunk)], [], (COMPONENTS[0],))[("S1", "order_defect")]
    assert got["points"] == pytest.approx(expected, abs=1e-4)


def test_the_conservative_points_come_from_the_upper_rate_and_the_optimistic_from_the_lower():
    got = components([rate("S1", "order_defect", 0.05, upper=0.20, lower=0.02, x=1, n=20)], [],
                     (COMPONENTS[0],))[("S1", "order_defect")]
    keys = ("weight", "rate", "rate_upper", "x", "n", "points", "points_lower", "points_upper")
    assert {k: got[k] for k in keys} == {
        "weight": 0.45, "rate": 0.05, "rate_upper": 0.20, "x": 1, "n": 20,
        "points": pytest.approx(70.7107, abs=1e-4), "points_lower": pytest.approx(25),
        "points_upper": pytest.approx(87.0551, abs=1e-4)}


def test_each_component_reads_its_own_metric_and_window():
    long_rows = [rate("S1", "order_defect", 0.025), rate("S1", "late_shipment", 0.10),
                 rate("S1", "on_time_delivery", 0.15), rate("S1", "dispute", 0.9)]
    short_rows = [rate("S1", "order_defect", 0.05), rate("S1", "late_shipment", 0.9)]
    got = components(long_rows, short_rows)
    assert {c: r["points"] for (_s, c), r in got.items()} == {
        "order_defect": pytest.approx(points(0.025, 0.10)), "recent_order_defect": pytest.approx(points(0.05, 0.10)),
        "late_shipment": pytest.approx(points(0.10, 0.20)), "late_delivery": pytest.approx(points(0.15, 0.20))}


def test_the_score_is_the_weighted_mean_of_the_points_and_its_bound_of_the_conservative_points():
    got = scores({"S1": [90, 80, 80, 70]})["S1"]
    assert got["reliability_score"] == pytest.approx(0.45 * 90 + 0.20 * 80 + 0.15 * 80 + 0.20 * 70)  # 82.5
    assert got["reliability_score_lower"] == pytest.approx(72.5)  # every component 10 points lower
    assert got["reliability_score_upper"] == pytest.approx(87.5)  # every component 5 points higher
    assert got["weakest_component"] == "late_delivery"


def test_weights_need_not_sum_to_one():
    got = scores({"S1": [90, 80, 80, 70]}, weights=(9, 4, 3, 4))["S1"]
    assert got["reliability_score"] == pytest.approx(82.5)


@pytest.mark.parametrize("points, tier", [
    ([100, 100, 100, 85], "excellent"),   # the bar itself is enough
    ([100, 100, 100, 84.9], "good"),
    ([100, 100, 100, 70], "good"),
    ([90, 90, 90, 69], "fair"),
    ([100, 100, 100, 50], "fair"),
    ([100, 100, 100, 40], "poor"),        # the mean is 88, but one component is poor
    ([49, 100, 100, 100], "poor"),
])
def test_a_tier_needs_every_component_at_or_above_its_bar(points, tier):
    assert scores({"S1": points})["S1"]["tier"] == tier


def test_one_weak_component_drops_the_tier_of_a_supplier_with_the_better_mean():
    got = scores({"S1": [100, 100, 100, 40], "S2": [75, 75, 75, 75]})
    assert got["S1"]["reliability_score"] > got["S2"]["reliability_score"]
    assert (got["S1"]["tier"], got["S1"]["weakest_component"]) == ("poor", "late_delivery")
    assert got["S2"]["tier"] == "good"


def test_recent_rates_shrink_the_short_window_toward_the_suppliers_own_long_run_rate():
    long_rows = [rate(s, "order_defect", 0.1) for s in ("QUIET", "COLLAPSE", "BUSY")]
    short = [{"supplier_id": "COLLAPSE", "metric": "order_defect", "x": 3.0, "n": 10.0},
             {"supplier_id": "BUSY", "metric": "order_defect", "x": 100.0, "n": 400.0}]
    out = recent_rates(table(short, TRIAL_SCHEMA), table(long_rows, RATE_SCHEMA), 20, 1.2816)
    got = {r["supplier_id"]: r for r in out.to_pyarrow().to_pylist()}
    # QUIET: no recent orders, Beta(2, 18): keeps its long-run 0.1
    assert (got["QUIET"]["x"], got["QUIET"]["n"], got["QUIET"]["shrunk_rate"]) == (0, 0, pytest.approx(0.1))
    assert got["QUIET"]["shrunk_rate_upper"] == pytest.approx(0.1 + 1.2816 * math.sqrt(2 * 18 / (20 ** 2 * 21)))
    # COLLAPSE: Beta(2 + 3, 18 + 7) -> 5 / 30
    assert got["COLLAPSE"]["shrunk_rate"] == pytest.approx(5 / 30)
    assert got["COLLAPSE"]["shrunk_rate_upper"] == pytest.approx(5 / 30 + 1.2816 * math.sqrt(5 * 25 / (30 ** 2 * 31)))
    # BUSY: plenty of recent evidence outweighs the 20 pseudo-orders: (2 + 100) / 420
    assert got["BUSY"]["shrunk_rate"] == pytest.approx(102 / 420)
