"""Scoring on Apache Spark: the same `models/` functions, computed by Ibis's PySpark backend.

What runs where (README, "Choosing the engine"): ingest, validation, the risk model and
publication stay on DuckDB; with `engine.name: spark` a scoring run

1. writes the inputs as Parquet into the run's hand-off folder,
   `<engine.spark.handoff_dir>/<run_id>/<as_of>/`: the staged order, shipment, dispute
   and supplier versions (DuckDB COPY, no trip through Python), the previous decisions
   and the risk model's per-supplier risk;
2. computes on Spark the daily facts of the long window from those versions
   (`models.outcomes`, `models.facts`), then the scorecard (`models.scorecard`), each
   stage written back to the hand-off folder (pipelines/engines.spark_checkpoint);
3. brings the rankings and metrics back as Arrow and replaces as_of's rows of
   scores.supplier_rankings and scores.supplier_metrics in one DuckDB transaction, exactly
   as a DuckDB run does, so publication is unchanged.

The facts are recomputed for the long window on every run rather than kept incrementally
as DuckDB's `features.supplier_day_facts` are: a fact of day d depends only on the record
versions known by d's due moments, so recomputing gives the same rows (the parity test
compares the two), and it keeps the Spark side stateless: nothing but the hand-off folder,
which a successful run deletes when it is a local folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
from pathlib import Path

import ibis

from pipelines.engines import duckdb_backend, spark_backend, spark_checkpoint
from pipelines.scoring import (STAGED_EVENTS, ScoreResult, _previous_decisions, ensure_scoring_schema,
                               facts_between, scored_tables, store_scores)
from pipelines.settings import Config, DataPaths
from pipelines.warehouse import connect, transaction

log = logging.getLogger(__name__)

STAGED = (*STAGED_EVENTS, "suppliers")
# Lineage the models never read; the other staged columns all go to Spark.
NOT_HANDED_OVER = ("load_id", "file_sha256")


def handoff_dirs(paths: DataPaths, config: Config, run_id: str, as_of: dt.date) -> tuple[str, str]:
    """The run's hand-off folder as the pipeline writes it and as Spark reads it."""
    spark = config.engine.spark
    written = spark.handoff_dir or str(paths.artifacts / "spark")
    read = spark.handoff_read_as or written
    leaf = f"{run_id}/as_of={as_of}"
    return f"{written.rstrip('/')}/{leaf}", f"{read.rstrip('/')}/{leaf}"


def score_on_spark(paths: DataPaths, config: Config, as_of: dt.date, run_id: str,
                   risk: ibis.Table | None = None, model_version: str = "none") -> ScoreResult:
    """`pipelines.scoring.score` with the facts and scores computed on Spark."""
    written, read = handoff_dirs(paths, config, run_id, as_of)
    con = connect(paths)
    try:
        ensure_scoring_schema(con)
        duck = duckdb_backend(con)
        _hand_over(con, duck, written, as_of, risk)
        spark = spark_backend(config.engine.spark)
        inputs = {name: spark.read_parquet(f"{read}/{name}.parquet", table_name=f"suprel_{name}")
                  for name in (*STAGED, "previous", *(("risk",) if risk is not None else ()))}
        checkpoint = spark_checkpoint(spark, f"{read}/stages")
        first = as_of - dt.timedelta(days=config.scoring.long_window_days - 1)
        facts = checkpoint(facts_between(inputs, first, as_of, checkpoint), "facts")
        tables = scored_tables(facts, inputs["suppliers"], inputs["previous"], inputs.get("risk"), config,
                               as_of, run_id, model_version, checkpoint)
        results = {name: ibis.memtable(table.to_pyarrow()) for name, table in tables.items()}
        with transaction(con):
            suppliers = store_scores(con, duck, results, as_of)
    finally:
        con.close()
    _clean_up(written)
    return ScoreResult(as_of, run_id, suppliers, config.scoring.long_window_days)


def _hand_over(con, duck, folder: str, as_of: dt.date, risk: ibis.Table | None) -> None:
    """Write the run's inputs as Parquet files into `folder` (local, or a URL DuckDB can write)."""
    if "://" not in folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
    for name in STAGED:
        con.execute(f"COPY (SELECT * EXCLUDE ({', '.join(NOT_HANDED_OVER)}) FROM staging.{name}) "
                    f"TO '{folder}/{name}.parquet' (FORMAT parquet)")
    tables = {"previous": _previous_decisions(con, duck, as_of), "risk": risk}
    for name, table in tables.items():
        if table is not None:
            con.register("_handoff", duck.to_pyarrow(table))
            try:
                con.execute(f"COPY _handoff TO '{folder}/{name}.parquet' (FORMAT parquet)")
            finally:
                con.unregister("_handoff")


def _clean_up(folder: str) -> None:
    """A successful run's hand-off files are no longer needed; a failed run keeps them.
    (A hand-off URL is left to the store's own expiry rules.)"""
    if "://" not in folder:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            Path(folder).parent.rmdir()  # the run's folder, once its last date is done
