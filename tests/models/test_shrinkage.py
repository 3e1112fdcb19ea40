"""Given failures and trials per supplier, expect the empirical-Bayes prior and posterior
exactly as a hand calculation gives them, and the cohort -> category -> all fallback."""

from __future__ import annotations

import math

import pytest

from models.shrinkage import PriorSettings, failures, fit_priors, shrunk_rates
from tests.models.frames import table

METRIC_SCHEMA = {"supplier_id": "string", "metric": "string", "numerator": "float64", "denominator": "float64"}
SUPPLIER_SCHEMA = {"supplier_id": "string", "main_category": "string", "country_code": "string"}
TRIAL_SCHEMA = {"supplier_id": "string", "metric": "string", "x": "float64", "n": "float64"}
SETTINGS = PriorSettings(min_suppliers=3, min_trials=5, min_strength=2, max_strength=500, bound_z=1.2816)
DEFECTS = {"order_defect": False}


def metric(supplier_id, x, n, name="order_defect"):
    return {"supplier_id": supplier_id, "metric": name, "numerator": float(x), "denominator": float(n)}


def supplier(supplier_id, category="tools", country="US"):
    return {"supplier_id": supplier_id, "main_category": category, "country_code": country}


def shrunk(metrics, suppliers, directions=DEFECTS, settings=SETTINGS) -> dict:
    out = shrunk_rates(table(metrics, METRIC_SCHEMA), table(suppliers, SUPPLIER_SCHEMA), directions, settings)
    return {(r["supplier_id"], r["metric"]): r for r in out.to_pyarrow().to_pylist()}


def prior(trials, settings=SETTINGS) -> dict:
    rows = fit_priors(table(trials, TRIAL_SCHEMA), (), settings).to_pyarrow().to_pylist()
    assert len(rows) == 1
    return rows[0]


def beta(mean, strength, x, n, z=SETTINGS.bound_z):
    a, b = mean * strength + x, (1 - mean) * strength + n - x
    post = a / (a + b)
    sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    return post, min(post + z * sd, 1.0)


def test_the_method_of_moments_prior_and_posterior_match_a_hand_calculation():
    # Cohort: 1/10, 4/10 and 10/20 failures. S4 has no evidence; S5 has 3 trials (< min_trials),
    # so it is shrunk by the prior but takes no part in fitting it.
    given = [metric("S1", 1, 10), metric("S2", 4, 10), metric("S3", 10, 20), metric("S5", 3, 3)]
    got = shrunk(given, [supplier(s) for s in ("S1", "S2", "S3", "S4", "S5")])

    mean = 15 / 40                                                           # 0.375
    observed = (10 * (0.1 - mean) ** 2 + 10 * (0.4 - mean) ** 2 + 20 * (0.5 - mean) ** 2) / 40  # 0.026875
    binomial = mean * (1 - mean) * 3 / 40                                    # 0.017578125
    between = observed - binomial                                            # 0.009296875
    strength = mean * (1 - mean) / between - 1                               # 24.2101
    assert (observed, binomial, between) == pytest.approx((0.026875, 0.017578125, 0.009296875))
    assert strength == pytest.approx(24.2101, abs=1e-4)

    for s in ("S1", "S2", "S3", "S4", "S5"):
        row = got[(s, "order_defect")]
        assert (row["prior_level"], row["prior_mean"], row["prior_strength"]) == (
            "cohort", pytest.approx(mean), pytest.approx(strength))
    s1 = got[("S1", "order_defect")]
    a, b = mean * strength + 1, (1 - mean) * strength + 9                    # 10.0788, 24.1313
    post = a / (a + b)                                                       # 0.29462
    upper = post + 1.2816 * math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))  # 0.39307
    assert (s1["x"], s1["n"]) == (1, 10)
    assert (s1["shrunk_rate"], s1["shrunk_rate_upper"]) == (pytest.approx(post), pytest.approx(upper))
    assert (post, upper) == (pytest.approx(0.29462, abs=1e-5), pytest.approx(0.39307, abs=1e-5))
    s5 = got[("S5", "order_defect")]
    assert (s5["shrunk_rate"], s5["shrunk_rate_upper"]) == pytest.approx(beta(mean, strength, 3, 3))


def test_each_cohort_keeps_its_own_mean_and_the_strength_is_pooled_over_the_cohorts_of_a_level():
    cohorts = {"tools": [(1, 10), (4, 10), (10, 20)], "toys": [(2, 20), (6, 20)]}
    trials = [{"supplier_id": f"{c}{i}", "metric": "order_defect", "x": float(x), "n": float(n), "main_category": c}
              for c, rows in cohorts.items() for i, (x, n) in enumerate(rows)]
    schema = TRIAL_SCHEMA | {"main_category": "string"}
    out = fit_priors(table(trials, schema), ("main_category",), SETTINGS).to_pyarrow().to_pylist()
    got = {r["main_category"]: (r["suppliers"], r["mean"], r["strength"]) for r in out}

    # tools: mean 0.375, observed 0.026875, binomial 0.017578125 over 40 trials
    # toys: mean 0.2, observed (20 x 0.1^2 + 20 x 0.1^2) / 40 = 0.01, binomial 0.2 x 0.8 x 2 / 40 = 0.008 over 40
    scale = 0.375 * 0.625 * 40 + 0.2 * 0.8 * 40                              # 15.775
    between = (0.026875 - 0.017578125) * 40 + (0.01 - 0.008) * 40            # 0.451875
    strength = scale / between - 1                                            # 33.91
    assert strength == pytest.approx(33.9101, abs=1e-4)
    assert got == {"tools": (3, pytest.approx(0.375), pytest.approx(strength)),
                   "toys": (2, pytest.approx(0.2), pytest.approx(strength))}


def test_a_cohort_of_one_supplier_does_not_shape_the_pooled_strength():
    def strength(cohorts):
        trials = [{"supplier_id": f"{c}{i}", "metric": "order_defect", "x": float(x), "n": float(n),
                   "main_category": c} for c, rows in cohorts.items() for i, (x, n) in enumerate(rows)]
        out = fit_priors(table(trials, TRIAL_SCHEMA | {"main_category": "string"}), ("main_category",), SETTINGS)
        return {r["main_category"]: r["strength"] for r in out.to_pyarrow().to_pylist()}["tools"]

    cohorts = {"tools": [(1, 10), (4, 10), (10, 20)], "toys": [(2, 20), (6, 20)]}
    alone = {"garden": [(6, 20)], "books": [(2, 20)], "games": [(9, 20)]}  # one supplier each: no spread to see
    assert strength(cohorts | alone) == pytest.approx(strength(cohorts))  # 33.91; 500 (max_strength) as it is


def test_a_supplier_without_evidence_sits_exactly_at_the_prior_mean_with_a_wide_bound():
    given = [metric("S1", 0, 20), metric("S2", 12, 20), metric("S3", 2, 20), metric("S9", 60, 160)]
    got = shrunk(given, [supplier(s) for s in ("S1", "S2", "S3", "S4", "S9")])
    new, big = got[("S4", "order_defect")], got[("S9", "order_defect")]
    assert (new["x"], new["n"]) == (0, 0)
    assert new["shrunk_rate"] == new["prior_mean"]
    spread = math.sqrt(new["prior_mean"] * (1 - new["prior_mean"]) / (new["prior_strength"] + 1))
    assert new["shrunk_rate_upper"] == pytest.approx(new["prior_mean"] + 1.2816 * spread)
    # a supplier with many orders has a much tighter bound
    assert new["shrunk_rate_upper"] - new["shrunk_rate"] > 2 * (big["shrunk_rate_upper"] - big["shrunk_rate"])


def test_a_sparse_cohort_falls_back_to_its_category_then_to_all_suppliers():
    suppliers = [supplier("US1"), supplier("US2"), supplier("US3"),
                 supplier("DE1", country="DE"), supplier("DE2", country="DE"), supplier("DE3", country="DE"),
                 supplier("TOY", "toys", "CN"), supplier("NEW", "toys", "CN")]
    given = [metric("US1", 1, 10), metric("US2", 2, 10), metric("US3", 3, 10),
             metric("DE1", 8, 20),  # DE2 and DE3 have too few trials to count toward a DE prior
             metric("DE2", 1, 2), metric("DE3", 0, 4),
             metric("TOY", 1, 50)]
    got = shrunk(given, suppliers)
    cohort_mean, category_mean, all_mean = 6 / 30, 14 / 50, 15 / 100
    expected = {"US1": ("cohort", cohort_mean), "DE1": ("category", category_mean),
                "DE2": ("category", category_mean), "TOY": ("all", all_mean), "NEW": ("all", all_mean)}
    assert {s: (got[(s, "order_defect")]["prior_level"], got[(s, "order_defect")]["prior_mean"])
            for s in expected} == {s: (level, pytest.approx(m)) for s, (level, m) in expected.items()}
    assert got[("NEW", "order_defect")]["shrunk_rate"] == pytest.approx(all_mean)


@pytest.mark.parametrize("trials, mean, strength", [
    ([(2, 20), (2, 20), (2, 20)], 0.1, 500),           # no spread beyond binomial noise: max_strength
    ([(0, 20), (20, 20), (0, 20), (20, 20)], 0.5, 2),  # spread beyond any beta: min_strength
    ([(0, 20), (0, 30), (0, 10)], 0.001, 500),         # no failure at all: the mean is kept off 0
])
def test_the_prior_strength_and_mean_are_clipped(trials, mean, strength):
    rows = [{"supplier_id": f"S{i}", "metric": "order_defect", "x": float(x), "n": float(n)}
            for i, (x, n) in enumerate(trials)]
    got = prior(rows)
    assert (got["suppliers"], got["mean"], got["strength"]) == (len(trials), pytest.approx(mean), strength)


def test_a_success_rate_is_turned_into_its_failures_and_other_metrics_are_left_out():
    given = [metric("S1", 8, 10, "on_time_delivery"), metric("S1", 3, 10, "late_shipment"),
             metric("S1", 1, 10, "dispute")]
    out = failures(table(given, METRIC_SCHEMA), {"on_time_delivery": True, "late_shipment": False})
    got = {r["metric"]: (r["x"], r["n"]) for r in out.to_pyarrow().to_pylist()}
    assert got == {"on_time_delivery": (2, 10), "late_shipment": (3, 10)}


def test_every_supplier_gets_every_metric_even_without_any_evidence():
    directions = {"order_defect": False, "on_time_delivery": True}
    given = [metric(s, x, 10) for s, x in (("S1", 1), ("S2", 2), ("S3", 3))]
    given += [metric(s, 9, 10, "on_time_delivery") for s in ("S1", "S2", "S3")]
    got = shrunk(given, [supplier(s) for s in ("S1", "S2", "S3", "S4")], directions)
    assert set(got) == {(s, m) for s in ("S1", "S2", "S3", "S4") for m in directions}
    assert got[("S4", "on_time_delivery")]["shrunk_rate"] == pytest.approx(0.1)  # late deliveries, at the prior


def test_there_is_always_a_prior_even_when_no_supplier_has_min_trials():
    got = shrunk([metric("S1", 1, 3), metric("S2", 0, 2)], [supplier(s) for s in ("S1", "S2", "S3")])
    for row in got.values():
        assert row["prior_mean"] is not None and row["shrunk_rate"] is not None
        assert 0 < row["shrunk_rate"] <= row["shrunk_rate_upper"] <= 1
