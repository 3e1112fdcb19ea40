"""Latent rates (models/latent_rate.py): given daily evidence, expect the filtered log-odds."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from models.latent_rate import (
    MAX_PRIOR_SD, LatentRateSettings, LatentStream, _fit_prior, fit_latent_streams, latent_columns, latent_rates,
    resumed_latent_rates, stream_evidence, with_latent_rates,
)

SETTINGS = LatentRateSettings(drift_sd_per_day=(0.01, 0.03, 0.1), return_per_day=(0.0, 0.002),
                              prior_window_days=365, prior_min_trials=30)
START = dt.date(2024, 1, 1)
TRIALS = 20  # trials per supplier and day
STREAMS = {"defect": LatentStream(-3.0, 0.5, drift_sd_per_day=0.03, return_per_day=0.002),
           "late_shipment": LatentStream(-2.0, 0.5, drift_sd_per_day=0.03, return_per_day=0.002),
           "late_delivery": None}


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def _days(first: int, last: int) -> list[dt.date]:
    return [START + dt.timedelta(days=d) for d in range(first, last)]


def _daily(supplier: str, rates: list[float], first: int = 0, stream: str = "defect") -> list[dict]:
    """`rates[i]` of TRIALS failed on day first + i (expected counts: the tests are exact)."""
    return [{"supplier_id": supplier, "day": day, "stream": stream, "x": rate * TRIALS, "n": float(TRIALS)}
            for day, rate in zip(_days(first, first + len(rates)), rates)]


def _market(days: int) -> list[dict]:
    """Forty suppliers with steady rates from 2% to 11.75%: a marketplace to fit a prior on."""
    return [row for i in range(40) for row in _daily(f"M{i:02d}", [0.02 + 0.0025 * i] * days)]


def _evidence(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"supplier_id": pl.String, "day": pl.Date, "stream": pl.String,
                                      "x": pl.Float64, "n": pl.Float64})


def _rates(rows: list[dict], points: list[tuple[str, int]]) -> pl.DataFrame:
    asked = pl.DataFrame({"supplier_id": [s for s, _ in points],
                          "point_on": [START + dt.timedelta(days=d) for _, d in points]})
    return latent_rates(_evidence(rows), asked, STREAMS)


def _at(frame: pl.DataFrame, supplier: str, day: int, column: str = "latent_defect_log_odds") -> float:
    row = frame.filter((pl.col("supplier_id") == supplier) & (pl.col("point_on") == START + dt.timedelta(days=day)))
    return row[column].item()


def test_a_steady_supplier_is_found_at_its_rate():
    rows = _market(200) + _daily("S", [0.05] * 200)
    got = _rates(rows, [("S", 200)])
    assert got.columns == ["supplier_id", "point_on", *latent_columns()]
    assert _at(got, "S", 200) == pytest.approx(_logit(0.05), abs=0.1)
    assert _at(got, "S", 200, "latent_defect_log_odds_sd") < 0.2
    # no late-shipment evidence: the prior; no late-delivery filter: unknown
    assert _at(got, "S", 200, "latent_late_shipment_log_odds") == pytest.approx(-2.0, abs=1e-6)
    assert _at(got, "S", 200, "latent_late_delivery_log_odds") is None


def test_a_point_sees_only_the_days_before_it():
    rows = _market(120) + _daily("S", [0.05] * 120)
    changed = [dict(r, x=r["x"] * 3) if r["supplier_id"] == "S" and r["day"] >= START + dt.timedelta(days=100)
               else r for r in rows]
    points = [("S", d) for d in (90, 100, 101)] + [("M00", 100)]
    before, after = _rates(rows, points), _rates(changed, points)
    assert before.filter(pl.col("point_on") <= START + dt.timedelta(days=100)).equals(
        after.filter(pl.col("point_on") <= START + dt.timedelta(days=100)))
    assert _at(after, "S", 101) > _at(before, "S", 101)


def test_filters_resumed_from_a_kept_state_give_the_numbers_of_the_whole_history():
    """Given: a run asks for days 40..60 and keeps the filters on days 45 and 50; a later
    run resumes from either for days 80..119 (one supplier's rate changes on day 60,
    another's evidence starts on day 70, one has none; the late-shipment stream has
    evidence of a few). Expect: exactly the numbers of one filter over every day."""
    rows = (_market(120) + _daily("S", [0.05] * 60 + [0.3] * 60) + _daily("LATE", [0.1] * 50, first=70)
            + _daily("M03", [0.2] * 120, stream="late_shipment"))
    suppliers = ["S", "LATE", "NEW", "M00", "M03", "M39"]
    asked = lambda days: pl.DataFrame({"supplier_id": [s for s in suppliers for _ in days],  # noqa: E731
                                       "point_on": [START + dt.timedelta(days=d) for _ in suppliers for d in days]})
    whole = latent_rates(_evidence(rows), asked(range(80, 120)), STREAMS)
    first, states = resumed_latent_rates(_evidence(rows), asked(range(40, 61)), STREAMS,
                                         keep_on=(START + dt.timedelta(days=50), START + dt.timedelta(days=45)))
    assert [kept.day for kept in states] == [START + dt.timedelta(days=50), START + dt.timedelta(days=45)]
    kept = states[0]
    assert set(kept.supplier_ids["defect"]) == {f"M{i:02d}" for i in range(40)} | {"S"}
    assert list(kept.supplier_ids["late_shipment"]) == ["M03"] and "late_delivery" not in kept.state
    for state in states:
        resumed, _ = resumed_latent_rates(_evidence(rows), asked(range(80, 120)), STREAMS, resume=state)
        assert resumed.equals(whole)
    assert not np.array_equal(states[0].state["defect"], states[1].state["defect"])
    assert first.equals(latent_rates(_evidence(rows), asked(range(40, 61)), STREAMS))
    with pytest.raises(ValueError, match="cannot resume"):
        resumed_latent_rates(_evidence(rows), asked(range(49, 60)), STREAMS, resume=kept)
    with pytest.raises(ValueError, match="cannot keep"):
        resumed_latent_rates(_evidence(rows), asked(range(80, 90)), STREAMS, resume=kept,
                             keep_on=(START + dt.timedelta(days=95),))


def test_a_sudden_change_shows_sooner_than_in_a_window():
    """Given: 2% for 300 days, then 20%. Expect: 30 days into the change, the filtered rate
    is nearer 20% than the 90-day window's rate is, and near it after 60 days."""
    rows = _market(360) + _daily("S", [0.02] * 300 + [0.20] * 60)
    got = _rates(rows, [("S", 330), ("S", 360)])
    window_rate = (60 * 0.02 + 30 * 0.20) / 90
    filtered = 1 / (1 + np.exp(-_at(got, "S", 330)))
    assert abs(filtered - 0.20) < abs(window_rate - 0.20) / 2
    assert _at(got, "S", 360) == pytest.approx(_logit(0.20), abs=0.15)


def test_a_supplier_without_evidence_sits_at_the_prior():
    got = _rates(_market(100), [("NEW", 0), ("NEW", 100)])
    for day in (0, 100):
        assert _at(got, "NEW", day) == pytest.approx(-3.0, abs=1e-6)
        assert _at(got, "NEW", day, "latent_defect_log_odds_sd") == pytest.approx(0.5, abs=1e-3)


def test_the_priors_are_the_marketplace_of_the_window_up_to_the_day():
    """Given: 40 suppliers at 2% to 11.75% for 100 days, then all at 50% (after the day).
    Expect: the pooled rate's logit and the spread of the suppliers' logits, before."""
    rows = _market(100) + [r for i in range(40) for r in _daily(f"M{i:02d}", [0.5] * 10, first=100)]
    fitted = fit_latent_streams(_evidence(rows), START + dt.timedelta(days=99), SETTINGS)
    pooled = sum(0.02 + 0.0025 * i for i in range(40)) / 40
    assert fitted["defect"].mean == pytest.approx(_logit(pooled), abs=0.01)
    assert fitted["defect"].sd == pytest.approx(np.std([_logit(0.02 + 0.0025 * i) for i in range(40)]), rel=0.05)
    assert fitted["late_shipment"] is None and fitted["late_delivery"] is None
    # a window of 10 days sees only the last ten
    short = fit_latent_streams(_evidence(rows), START + dt.timedelta(days=109),
                               LatentRateSettings((0.03,), (0.002,), prior_window_days=10, prior_min_trials=30))
    assert short["defect"].mean == pytest.approx(0.0, abs=0.01)


def _simulated(drift_sd: float, seed: int) -> list[dict]:
    """80 suppliers over 365 days, 20 trials a day, their log-odds a random walk of
    `drift_sd` a day from N(-2, 0.5) (0: each keeps its own rate)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(-2.0, 0.5, 80)[:, None] + np.cumsum(rng.normal(0, drift_sd, (80, 365)), axis=1)
    failures = rng.binomial(TRIALS, 1 / (1 + np.exp(-logits)))
    return [{"supplier_id": f"S{s:02d}", "day": START + dt.timedelta(days=d), "stream": "defect",
             "x": float(failures[s, d]), "n": float(TRIALS)} for s in range(80) for d in range(365)]


@pytest.mark.parametrize("drift_sd", [0.0, 0.1])
def test_the_fit_finds_how_fast_suppliers_change(drift_sd):
    """Given suppliers whose rates stand still, or drift fast: the fit picks the slowest,
    or the fastest, drift of its candidates (by the evidence's one-day-ahead likelihood)."""
    fitted = fit_latent_streams(_evidence(_simulated(drift_sd, seed=4)), START + dt.timedelta(days=364), SETTINGS)
    expected = min(SETTINGS.drift_sd_per_day) if drift_sd == 0 else max(SETTINGS.drift_sd_per_day)
    assert fitted["defect"].drift_sd_per_day == expected


def test_latent_rates_join_each_order_to_its_supplier_and_day_in_order():
    rows = _market(50)
    orders = pl.DataFrame({"order_id": ["b", "a", "c"], "supplier_id": ["M39", "M00", "M00"],
                           "placed_on": [START + dt.timedelta(days=d) for d in (40, 40, 10)]})
    got = with_latent_rates(orders, _evidence(rows), STREAMS)
    assert got["order_id"].to_list() == ["b", "a", "c"]
    assert got.columns == ["order_id", "supplier_id", "placed_on", *latent_columns()]
    high, low, early = got["latent_defect_log_odds"].to_list()
    assert high > low and abs(early - low) > 0.01


def test_the_prior_spread_is_the_suppliers_spread_net_of_sampling_noise():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(-3.0, 0.5, size=4000)
    trials = rng.integers(50, 500, size=4000).astype(float)
    failures = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-true_logits))).astype(float)
    mean, sd = _fit_prior(failures, trials, min_trials=30)
    assert sd == pytest.approx(0.5, abs=0.05)
    assert mean == pytest.approx(_logit(failures.sum() / trials.sum()), abs=0.01)
    # too few suppliers with enough trials to measure a spread: the widest prior
    assert _fit_prior(np.array([1.0, 2.0]), np.array([10.0, 40.0]), min_trials=30)[1] == MAX_PRIOR_SD
    assert _fit_prior(np.zeros(3), np.zeros(3), min_trials=30) is None


def test_stream_evidence_counts_failures_per_supplier_day_and_stream():
    facts = pa.table({
        "supplier_id": ["S", "S", "S", "S", "S"],
        "day": [START] * 5,
        "metric": ["order_defect", "order_defect", "on_time_delivery", "on_time_delivery", "valid_tracking"],
        "numerator": [1.0, 0.0, 1.0, 0.0, 1.0],
        "denominator": [1.0, 1.0, 1.0, 1.0, 1.0],
    })
    con = ibis.duckdb.connect()
    got = pl.from_arrow(con.to_pyarrow(stream_evidence(ibis.memtable(facts)))).sort("stream")
    # a late delivery is an on-time delivery's failure; metrics without a stream are left out
    assert got.select("stream", "x", "n").rows() == [("defect", 1.0, 2.0), ("late_delivery", 1.0, 2.0)]
