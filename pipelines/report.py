"""The run report: one self-contained HTML page on how the last run went (`suprel report`).

Gathers the last run and its ingestion counts and data-quality summary (the warehouse,
opened read-only: a run in progress makes this refuse clearly, via WarehouseBusy), the
current publication and the one before it (published/), and the risk model's backtest
(artifacts/, when a model is registered); `pipelines/report_page.py` renders it. The page
is written aside and renamed into place, by default as <data-dir>/artifacts/report.html:
it is for whoever runs the pipeline, not part of the published contract.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl

from pipelines import report_page
from pipelines.analyst import Published, risk, store
from pipelines.quality import quality_summary
from pipelines.settings import DataPaths
from pipelines.warehouse import connect

LEDGER_SQL = """
SELECT source, count(*) FILTER (status = 'loaded') AS files_loaded,
       count(*) FILTER (status = 'rejected') AS files_rejected, count(*) FILTER (status = 'skipped') AS files_skipped,
       count(*) FILTER (status = 'duplicate') AS files_duplicate, coalesce(sum(rows_in), 0) AS rows_in,
       coalesce(sum(rows_loaded), 0) AS rows_loaded, coalesce(sum(rows_quarantined), 0) AS rows_quarantined,
       coalesce(sum(rows_pending), 0) AS rows_pending
FROM meta.load_ledger {where} GROUP BY source ORDER BY source
"""
MOVERS = 10


def gather(pub: Published, progress=None) -> dict:
    """Everything the page shows, as plain values and polars frames."""
    report = progress or (lambda stage, done, total: None)
    report("report", 0, 4)
    figures = {"data_dir": str(pub.paths.root), "generated_at": dt.datetime.now(dt.timezone.utc)}
    figures |= _warehouse_figures(pub.paths)
    report("report", 1, 4)
    current = pub.rankings()
    try:
        decisions = pub.decisions()
    except store.NothingPublished:
        decisions = None
    previous = store.previous_snapshot(pub.paths, pub.as_of)
    figures |= {"current": current, "decisions": decisions, "previous": previous, "policy": pub.policy,
                "history_dates": store.snapshot_dates(pub.paths)}
    report("report", 2, 4)
    figures["changes"] = eligibility_changes(current, previous)
    figures["movers"] = top_movers(current, previous, MOVERS)
    report("report", 3, 4)
    model = risk.model_info(pub.paths)
    figures |= {"model": model, "calibration": risk.calibration_bins(model)}
    report("report", 4, 4)
    return figures


def _warehouse_figures(paths: DataPaths) -> dict:
    """The last run (meta.runs), its ingestion counts (meta.load_ledger) and the quality summary."""
    if not paths.warehouse.exists():
        return {"last_run": None, "ingestion": [], "ingestion_scope": "no warehouse yet", "quality": None}
    con = connect(paths, read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()}
        last = None
        if "meta.runs" in tables:
            cursor = con.execute("SELECT * FROM meta.runs ORDER BY started_at DESC LIMIT 1")
            row = cursor.fetchone()
            last = dict(zip([d[0] for d in cursor.description], row)) if row else None
        ingestion, scope = _ingestion(con, last)
    finally:
        con.close()
    return {"last_run": last, "ingestion": ingestion, "ingestion_scope": scope, "quality": quality_summary(paths)}


def _ingestion(con, last: dict | None) -> tuple[list[dict], str]:
    """Per source: files by status and rows in = loaded + quarantined + pending, for the last run."""
    def read(where: str, params: list) -> list[dict]:
        cursor = con.execute(LEDGER_SQL.format(where=where), params)
        return [dict(zip([d[0] for d in cursor.description], r)) for r in cursor.fetchall()]

    if last is not None:
        found = read("WHERE run_id = ?", [last["run_id"]])
        if found:
            return found, f"files ingested by run {last['run_id']}"
        return read("", []), f"run {last['run_id']} found no new landing file; all runs so far"
    return read("", []), "all runs so far"


def eligibility_changes(current: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """Suppliers whose is_protected differs from the previous publication, gains first."""
    if previous is None:
        return current.head(0).with_columns(previous_status=pl.lit(None, pl.String), was_protected=pl.lit(None, pl.Boolean))
    before = previous.select("supplier_id", previous_status="protection_status", was_protected="is_protected")
    joined = current.join(before, on="supplier_id", how="inner")
    return joined.filter(pl.col("is_protected") != pl.col("was_protected")).sort(
        pl.col("is_protected"), "supplier_id", descending=[True, False])


def top_movers(current: pl.DataFrame, previous: pl.DataFrame | None, limit: int) -> pl.DataFrame:
    """The largest score changes against the previous publication, up and down."""
    if previous is None:
        return current.head(0).with_columns(score_change=pl.lit(None, pl.Float64), rank_change=pl.lit(None, pl.Int64))
    before = previous.select("supplier_id", previous_score="reliability_score", previous_rank="rank_overall",
                             previous_status="protection_status")
    moved = current.join(before, on="supplier_id", how="inner").with_columns(
        score_change=pl.col("reliability_score") - pl.col("previous_score"),
        rank_change=pl.col("previous_rank").cast(pl.Int64) - pl.col("rank_overall").cast(pl.Int64))
    moved = moved.filter(pl.col("score_change").abs() > 1e-9)
    up = moved.sort("score_change", descending=True).head(limit).filter(pl.col("score_change") > 0)
    down = moved.sort("score_change").head(limit).filter(pl.col("score_change") < 0)
    return pl.concat([up, down])


def write_report(pub: Published, output: Path | None = None, progress=None) -> Path:
    """Write the page aside, then rename it into place; returns its path."""
    target = Path(output) if output else pub.paths.artifacts / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    page = report_page.render(gather(pub, progress))
    aside = target.with_name(f".{target.name}.tmp")
    aside.write_text(page, encoding="utf-8")
    os.replace(aside, target)
    return target
