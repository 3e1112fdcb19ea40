"""The pandas peer's metrics against the pipeline's scores.supplier_metrics (raw, one window).

Grain of the comparison: one row per supplier x metric in either side; a side without the
row counts zero evidence (the pipeline lists every known supplier, the peer only those
with orders in the window).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from benchmarks.pandas_peer import METRICS

COLUMNS = ("raw_numerator", "raw_denominator", "buyers")


def pipeline_metrics(warehouse: Path, as_of: dt.date, window_days: int) -> pd.DataFrame:
    names = [m[0] for m in METRICS]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "SELECT supplier_id, metric, raw_numerator, raw_denominator, buyers::DOUBLE AS buyers "
            "FROM scores.supplier_metrics WHERE as_of_date = ? AND window_days = ? AND metric IN "
            f"({', '.join('?' for _ in names)})", [as_of, window_days, *names]).df()
    finally:
        con.close()


def differences(pipeline: pd.DataFrame, peer: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Rows where any column differs by more than tolerance (relative, absolute below 1)."""
    both = pipeline.merge(peer, on=["supplier_id", "metric"], how="outer", suffixes=("_pipeline", "_peer"))
    mask = np.zeros(len(both), dtype=bool)
    for c in COLUMNS:
        a, b = both[f"{c}_pipeline"].fillna(0.0).astype(float), both[f"{c}_peer"].fillna(0.0).astype(float)
        mask |= (a - b).abs().to_numpy() > tolerance * np.maximum(1.0, np.maximum(a.abs(), b.abs())).to_numpy()
    return both[mask]


def check(data_dir: Path, peer_file: Path, tolerance: float, window_days: int = 365) -> dict:
    """Whether the peer equals the pipeline within tolerance; the differing rows, summarised."""
    peer = pd.read_parquet(peer_file)
    con = duckdb.connect(str(Path(data_dir) / "warehouse" / "suprel.duckdb"), read_only=True)
    try:
        as_of = con.execute("SELECT max(as_of_date) FROM scores.supplier_metrics").fetchall()[0][0]
    finally:
        con.close()
    pipeline = pipeline_metrics(Path(data_dir) / "warehouse" / "suprel.duckdb", as_of, window_days)
    diff = differences(pipeline, peer, tolerance)
    per_metric = diff.groupby("metric").size().to_dict() if len(diff) else {}
    return {"as_of": str(as_of), "window_days": window_days, "tolerance": tolerance,
            "rows_pipeline": len(pipeline), "rows_peer": len(peer), "rows_differing": len(diff),
            "differing_per_metric": per_metric, "verdict": "equal" if diff.empty else f"{len(diff)} rows differ",
            "examples": diff.head(10).to_dict("records")}
