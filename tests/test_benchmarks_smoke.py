"""The benchmark harness end to end at a tiny scale: every stage recorded, JSON, table and chart written."""

from __future__ import annotations

import json

from benchmarks import harness


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
    assert scale["peer_check"]["verdict"] == "equal", scale["peer_check"]
    assert result["machine"]["cores"] and result["machine"]["libraries"]["duckdb"]
    table = next(tmp_path.glob("bench_*.md")).read_text()
    assert "| full | ingest |" in table and "| day | publish |" in table
    assert next(tmp_path.glob("bench_*.svg")).read_text().startswith("<svg")
