"""Given the small generated marketplace, expect the same scores from Spark as from DuckDB.

The marketplace (60 suppliers x 150 days) is ingested once, then its warehouse is copied
and scored on each engine for two dates 30 days apart, the second with a risk table that
leaves some suppliers out. The second date exercises what a daily run carries over: the
previous decisions (hysteresis, watch and grace), DuckDB's incremental facts against
Spark's recomputed window, and the fallback of unscored suppliers to their shrunk rate.

Compared, per date and supplier:
- every column of the published contract, as `pipelines.publish` reads it for publication
  (CONTRACT.md section 3): scores to 1e-9, and exactly the tier, protection status,
  is_protected, limit (rounded to cents), ranks, reason codes, evidence, run, model and
  config hash, because these are what search and the protection program act on;
- every other column of scores.supplier_rankings (the decision's evidence, the score's
  upper bound, status_since) and every row and column of scores.supplier_metrics, which
  the evidence files publish: doubles to 1e-9, the rest exactly.

One Spark session (local[2], 2 shuffle partitions) serves the module.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import shutil

import pytest

if os.environ.get("SUPREL_REQUIRE_SPARK") != "1":  # CI sets it: there a missing pyspark or Java fails
    pytest.importorskip("pyspark", reason="pyspark is the optional extra: pip install '.[spark]'")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17 on the PATH", allow_module_level=True)

import ibis
import pyarrow as pa

from pipelines.engines import stop_spark
from pipelines.ingest import ingest
from pipelines.publish import CONTRACT_COLUMNS, rankings_table
from pipelines.scoring import latest_data_day, score
from pipelines.settings import DataPaths
from pipelines.warehouse import connect
from tests.conftest import copy_landing

TOLERANCE = 1e-9
RUN_ID = "parity"
ENGINES = ("duckdb", "spark")


def on_engine(config, name: str):
    spark = dataclasses.replace(config.engine.spark, master="local[2]",
                                conf={**config.engine.spark.conf, "spark.sql.shuffle.partitions": "2"})
    return dataclasses.replace(config, engine=dataclasses.replace(config.engine, name=name, spark=spark))


def some_risk(paths: DataPaths) -> ibis.Table:
    """A risk for every supplier but each seventh, which falls back to its shrunk defect rate."""
    con = connect(paths, read_only=True)
    try:
        ids = sorted(row[0] for row in con.execute("SELECT DISTINCT supplier_id FROM staging.suppliers").fetchall())
    finally:
        con.close()
    scored = [s for i, s in enumerate(ids) if i % 7]
    return ibis.memtable(pa.table({"supplier_id": scored,
                                   "risk_probability": [0.01 + (i % 23) / 100 for i in range(len(scored))]}))


def stored(paths: DataPaths, as_of: dt.date) -> dict:
    """The published rows, and every stored ranking and metric row, of as_of."""
    con = connect(paths, read_only=True)
    try:
        tables = {"published": rankings_table(con, as_of)}
        for name in ("supplier_rankings", "supplier_metrics"):
            tables[name] = con.sql(f"SELECT * FROM scores.{name} WHERE as_of_date = ?", params=[as_of]).to_arrow_table()
        return tables
    finally:
        con.close()


@pytest.fixture(scope="module")
def scored(small_marketplace, config, tmp_path_factory) -> dict:
    """{engine: {as_of: stored tables}}, both engines from copies of one ingested warehouse."""
    source = copy_landing(small_marketplace, DataPaths(tmp_path_factory.mktemp("parity") / "data"))
    assert ingest(source, config, run_id="parity-ingest").passed
    last = latest_data_day(source)
    dates = (last - dt.timedelta(days=30), last)
    results = {}
    try:
        for engine in ENGINES:
            paths = DataPaths(tmp_path_factory.mktemp(engine) / "data")
            shutil.copytree(source.warehouse_dir, paths.warehouse_dir)
            settings = on_engine(config, engine)
            score(paths, settings, dates[0], RUN_ID)
            score(paths, settings, dates[1], RUN_ID, risk=some_risk(paths), model_version="parity-model")
            results[engine] = {as_of: stored(paths, as_of) for as_of in dates}
            results[f"{engine}_paths"] = paths
    finally:
        stop_spark()
    return results


def by_key(table: pa.Table, keys: tuple[str, ...]) -> dict:
    return {tuple(row[k] for k in keys): row for row in table.to_pylist()}


def differences(duck: pa.Table, spark: pa.Table, keys: tuple[str, ...]) -> list[str]:
    """Where the two engines' rows differ: doubles beyond TOLERANCE, anything else at all."""
    assert duck.schema == spark.schema
    left, right = by_key(duck, keys), by_key(spark, keys)
    assert left.keys() == right.keys() and len(left) == duck.num_rows
    found = []
    for key, row in left.items():
        for column, value in row.items():
            other = right[key][column]
            if isinstance(value, float) and isinstance(other, float):
                same = math.isclose(value, other, rel_tol=0, abs_tol=TOLERANCE) or (math.isnan(value) and math.isnan(other))
            else:
                same = value == other
            if not same:
                found.append(f"{key} {column}: duckdb {value!r}, spark {other!r}")
    return found


@pytest.mark.parametrize("which", [0, 1], ids=["first-date", "thirty-days-later"])
def test_the_published_rankings_are_the_same_on_both_engines(scored, which):
    as_of = sorted(scored["duckdb"])[which]
    duck, spark = (scored[e][as_of]["published"] for e in ENGINES)
    assert tuple(duck.column_names) == CONTRACT_COLUMNS and duck.num_rows >= 55  # suppliers known by then
    assert differences(duck, spark, ("supplier_id",)) == []


@pytest.mark.parametrize("table, keys", [
    ("supplier_rankings", ("supplier_id",)),
    ("supplier_metrics", ("supplier_id", "metric", "window_days")),
])
def test_every_stored_score_and_metric_is_the_same_on_both_engines(scored, table, keys):
    for as_of in scored["duckdb"]:
        duck, spark = (scored[e][as_of][table] for e in ENGINES)
        assert differences(duck, spark, keys) == [], as_of


def test_the_comparison_covers_varied_decisions(scored):
    # A parity over uniform rows would prove little: the data must reach several tiers and
    # statuses, watch and grace included, and the risk fallback.
    later = scored["duckdb"][max(scored["duckdb"])]["supplier_rankings"].to_pylist()
    assert len({r["tier"] for r in later}) >= 3
    assert len({r["protection_status"] for r in later}) >= 3
    assert {r["model_version"] for r in later} == {"parity-model"}
    assert any(code != "insufficient_history" for r in later for code in r["reason_codes"][:1])


def test_a_successful_spark_run_leaves_no_handoff_files(scored):
    handoff = scored["spark_paths"].artifacts / "spark"
    assert not handoff.exists() or not any(handoff.rglob("*.parquet"))
