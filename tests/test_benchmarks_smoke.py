"""The benchmark harness end to end at a tiny scale, and the pandas peer against the pipeline."""

from __future__ import annotations

import json

import duckdb
import pytest

from benchmarks import compare, harness, pandas_peer
from pipelines.settings import load_config
from tests.published_marketplace import published_marketplace

SUPPLIER_METRICS = 11  # every metric of models/facts.py but days_late


def _assert_full_comparison(check: dict) -> None:
    assert check["verdict"] == "equal", check
    assert check["windows"] == [90, 365]
    assert check["rows_peer"] == check["rows_pipeline"] > 0
    assert check["rows_pipeline"] % (2 * SUPPLIER_METRICS) == 0
    assert set(check["columns_compared"]) == {
        "raw_numerator", "raw_denominator", "numerator", "denominator", "buyers", "top_buyer_share", "rate",
        "target", "status", "median_days_late"}
    assert check["columns_not_compared"] == ["run_id"]


def test_harness_writes_every_stage_at_a_tiny_scale(tmp_path):
    harness.main(["--scales", "2k", "--days", "20", "--orders-per-supplier-day", "5", "--skip", "train",
                  "--in-process", "--out", str(tmp_path)])

    [result_file] = tmp_path.glob("bench_*.json")
    result = json.loads(result_file.read_text())
    [scale] = result["scales"]
    assert set(scale["full_refresh"]) == set(harness.FULL_STAGES)
    assert set(scale["incremental_day"]) == set(harness.DAY_STAGES)
    for stage in ("floor", "ingest", "score", "publish", "pandas_peer"):
        record = scale["full_refresh"][stage]
        assert record["ok"], record
        assert record["wall_seconds"] > 0 and record["peak_rss_mb"] > 0
    assert {"read", "validate_sql", "validate_gx", "commit", "pending"} <= set(
        scale["full_refresh"]["ingest"]["details"]["seconds_split"])
    assert all(scale["incremental_day"][s]["ok"] for s in ("ingest", "score", "publish"))
    _assert_full_comparison(scale["peer_check"])
    assert result["machine"]["cores"] and result["machine"]["libraries"]["duckdb"]
    table = next(tmp_path.glob("bench_*.md")).read_text()
    assert "| full | ingest |" in table and "| day | publish |" in table
    assert next(tmp_path.glob("bench_*.svg")).read_text().startswith("<svg")


def _ran(wall: float) -> dict:
    """A stage record as the harness writes it, of a stage that ran `wall` seconds."""
    return {"ok": True, "wall_seconds": wall, "cpu_seconds": wall, "peak_rss_mb": 100,
            "load_average_1m_at_start": 0.5, "details": {"work_seconds": wall - 1}}


def test_the_summary_gives_the_day_as_the_daily_refresh_runs_it_once_a_model_is_registered():
    full = {"floor": {"ok": False}, "ingest": _ran(50), "score": _ran(10), "train": _ran(700), "predict": _ran(60),
            "publish": _ran(2), "pandas_peer": {"ok": False}}
    day = {"ingest": _ran(5), "score": _ran(4), "predict": _ran(30), "publish": _ran(1)}
    day["score"]["details"]["seconds_split"] = {"facts": 2.5, "rankings": 0.5}
    summary = harness._summary(full, day, {})
    assert summary["full_refresh_wall_seconds"] == 62 and summary["incremental_day_wall_seconds"] == 10
    # predict runs after score and finds the facts current: the daily refresh updates them in predict
    assert summary["incremental_day_with_model_wall_seconds"] == 36 + 2.5
    assert summary["incremental_day_with_model_work_seconds"] == 33 + 2.5
    assert summary["incremental_day_with_model_share_of_full"] == round(38.5 / 62, 4)
    day["predict"] = {"ok": False, "skipped": "no trained model"}
    assert "incremental_day_with_model_wall_seconds" not in harness._summary(full, day, {})


def test_the_table_leaves_blank_what_was_skipped_rather_than_print_zero_seconds():
    skipped = {"ok": False, "skipped": "--skip"}
    full = {"floor": skipped, "ingest": _ran(50), "score": _ran(10), "train": skipped, "predict": skipped,
            "publish": _ran(2), "pandas_peer": skipped}
    day = {"ingest": _ran(5), "score": _ran(4), "predict": skipped, "publish": _ran(1)}
    scale = {"orders": 1000, "target_orders": 1000, "generate": _ran(3), "full_refresh": full, "incremental_day": day,
             "summary": harness._summary(full, day, {}), "peer_check": None}
    result = {"started_at": "now", "command": "harness", "scales": [scale],
              "machine": {"cores": 2, "memory_gb": 8, "python": "3", "libraries": {}}}
    [summary_row] = [line for line in harness.markdown(result).splitlines() if line.startswith("| 1,000 | 62.0 |")]
    assert summary_row == "| 1,000 | 62.0 | 10.0 | 0.1613 |  |  |  |  |  |  | not run |"


@pytest.fixture(scope="module")
def market(small_marketplace, tmp_path_factory):
    return published_marketplace(small_marketplace, tmp_path_factory)


@pytest.fixture(scope="module")
def peer(market):
    """The peer's (metrics, medians) on the pipeline's latest scored date."""
    con = duckdb.connect(str(market.warehouse), read_only=True)
    try:
        [as_of] = con.execute("SELECT max(as_of_date) FROM scores.supplier_metrics").fetchall()[0]
    finally:
        con.close()
    return pandas_peer.supplier_metrics(pandas_peer.read_staged(market.warehouse), as_of, load_config().scoring)


def _write(metrics, medians, peer_file):
    metrics.to_parquet(peer_file, index=False)
    medians.to_parquet(pandas_peer.medians_file(peer_file), index=False)
    return peer_file


def test_the_peer_equals_the_pipeline_on_matured_orders_scored_incrementally(market, peer, tmp_path):
    # 150 days: both windows hold matured orders, disputes and late deliveries, and the
    # pipeline's facts of the last date were brought up incrementally from a week before.
    metrics, medians = peer

    check = compare.check(market.root, _write(metrics, medians, tmp_path / "peer.parquet"), 1e-9)

    _assert_full_comparison(check)
    assert check["rows_pipeline"] == metrics.supplier_id.nunique() * 2 * SUPPLIER_METRICS
    assert check["medians_pipeline"] == check["medians_peer"] > 0
    assert (metrics.numerator < metrics.raw_numerator).any()  # the buyer cap binds somewhere
    assert set(metrics.status.dropna()) == {"meets", "misses", "no_evidence"}


def test_the_comparison_names_what_differs(market, peer, tmp_path):
    metrics, medians = (frame.copy() for frame in peer)
    metrics.loc[0, "numerator"] *= 1.001
    metrics.loc[1, "status"] = "meets" if metrics.loc[1, "status"] != "meets" else "misses"
    medians["median_days_late"] += 0.5

    check = compare.check(market.root, _write(metrics.drop(index=2), medians, tmp_path / "peer.parquet"), 1e-9)

    assert check["metrics"]["differing_columns"] == {"numerator": 1, "status": 1, "pipeline_only": 1}
    assert check["medians"]["rows_differing"] == len(medians)
    assert check["verdict"] != "equal"
