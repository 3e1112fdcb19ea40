"""The pandas peer's outputs against the pipeline's: scores.supplier_metrics and the
median_days_late of scores.supplier_rankings, on the pipeline's latest as-of date.

Grain of the comparison: one row per supplier x metric x window (metrics) and one row per
supplier (medians) in either side. A row on one side only differs; numbers are equal
within a relative tolerance (absolute below 1), two NULLs are equal; strings exactly.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from benchmarks.pandas_peer import medians_file

KEYS = ["supplier_id", "metric", "window_days"]
NUMBERS = ("raw_numerator", "raw_denominator", "numerator", "denominator", "buyers", "top_buyer_share", "rate",
           "target")
STRINGS = ("status",)


def _pipeline(warehouse: Path) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        as_of = con.execute("SELECT max(as_of_date) FROM scores.supplier_metrics").fetchall()[0][0]
        metrics = con.execute("SELECT * FROM scores.supplier_metrics WHERE as_of_date = ?", [as_of]).df()
        medians = con.execute("SELECT supplier_id, median_days_late FROM scores.supplier_rankings "
                              "WHERE as_of_date = ? AND median_days_late IS NOT NULL", [as_of]).df()
    finally:
        con.close()
    return as_of, metrics, medians


def differences(pipeline: pd.DataFrame, peer: pd.DataFrame, keys: list[str], numbers, strings,
                tolerance: float) -> pd.DataFrame:
    """Rows on one side only, or where a column differs; `differing` names the columns."""
    both = pipeline.merge(peer, on=keys, how="outer", suffixes=("_pipeline", "_peer"), indicator=True)
    only = {"left_only": "pipeline_only", "right_only": "peer_only"}
    differing = pd.Series([[only[s]] if s in only else [] for s in both["_merge"]], index=both.index)
    for c in (*numbers, *strings):
        a, b = both[f"{c}_pipeline"], both[f"{c}_peer"]
        if c in numbers:
            a, b = a.astype(float).to_numpy(), b.astype(float).to_numpy()
            close = np.abs(a - b) <= tolerance * np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
            same = close | (np.isnan(a) & np.isnan(b))
        else:
            same = ((a == b) | (a.isna() & b.isna())).to_numpy()
        for i in np.flatnonzero(~same & (both["_merge"] == "both").to_numpy()):
            differing.iat[i].append(c)
    both["differing"] = differing.map(", ".join)
    return both[differing.map(bool).to_numpy(dtype=bool)].drop(columns="_merge")


def _summary(diff: pd.DataFrame, by: str | None) -> dict:
    columns = diff.differing.str.split(", ").explode().value_counts().to_dict() if len(diff) else {}
    out = {"rows_differing": len(diff), "differing_columns": columns}
    if by:
        out["differing_per_metric"] = diff.groupby(by).size().to_dict() if len(diff) else {}
    return out


def check(data_dir: Path, peer_file: Path, tolerance: float) -> dict:
    """Whether the peer equals the pipeline within tolerance; the differing rows, summarised."""
    as_of, pipeline, pipeline_medians = _pipeline(Path(data_dir) / "warehouse" / "suprel.duckdb")
    peer, peer_medians = pd.read_parquet(peer_file), pd.read_parquet(medians_file(peer_file))
    metrics = differences(pipeline, peer, KEYS, NUMBERS, STRINGS, tolerance)
    medians = differences(pipeline_medians, peer_medians, ["supplier_id"], ("median_days_late",), (), tolerance)
    peer_as_of = sorted({str(d) for d in peer.as_of_date})
    equal = metrics.empty and medians.empty and peer_as_of == [str(as_of)]
    return {"as_of": str(as_of), "peer_as_of": peer_as_of, "tolerance": tolerance,
            "windows": sorted(int(w) for w in pipeline.window_days.unique()),
            "columns_compared": [*NUMBERS, *STRINGS, "median_days_late"],
            "columns_not_compared": sorted(set(pipeline.columns) - {*KEYS, "as_of_date"} - set(NUMBERS) - set(STRINGS)),
            "rows_pipeline": len(pipeline), "rows_peer": len(peer),
            "medians_pipeline": len(pipeline_medians), "medians_peer": len(peer_medians),
            "metrics": _summary(metrics, "metric"), "medians": _summary(medians, None),
            "verdict": "equal" if equal else f"{len(metrics)} metric rows and {len(medians)} medians differ "
                                              f"(as of {', '.join(peer_as_of)} against {as_of})",
            "examples": [*metrics.head(10).to_dict("records"), *medians.head(5).to_dict("records")]}
