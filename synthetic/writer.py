"""Landing files: <data_dir>/landing/<source>/<YYYY-MM-DD>.<ext>, one batch per source per day.

Rows are formatted a chunk of days at a time (about CHUNK_ROWS rows), so memory stays
bounded by the chunk, not by the dataset. A day with no rows for a source writes no file.
All writers are byte-deterministic: gzip carries no timestamp, parquet no creation time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from synthetic import cohorts
from synthetic.dirty import add_dirty, rule_labels
from synthetic.events import DIRTY, DUPLICATE, in_file_order, schedule, versions
from synthetic.formatting import RowFormatter
from synthetic.marketplace import Marketplace, stream

SOURCE_NAMES = ("suppliers", "orders", "shipments", "disputes")
CHUNK_ROWS = 250_000
Progress = Callable[[str, int, int], None]


def landed_rows(world: Marketplace, source: str) -> pl.DataFrame:
    """Rows of one source as they land; grain: one row per row in a landing file, in file order.

    Columns: key, step, updated_t, batch_day, is_late, copy, dirty_rule, dirty_pick,
    row_in_batch.
    """
    params = world.params
    rng = stream(params, "landing", SOURCE_NAMES.index(source))
    rows = versions(_step_times(world, source), world.horizon_t)
    rows = schedule(rows, params.days, params.late_arrival_rate, params.duplicate_rate, rng)
    return in_file_order(add_dirty(rows, source, params.dirty_rate, rng))


def _step_times(world: Marketplace, source: str) -> np.ndarray:
    """The (record, step) event-time matrix of a source, steps in time order."""
    if source == "suppliers":
        return world.supplier_times
    if source == "orders":
        return world.order_times
    if source == "shipments":
        return world.shipments.select("shipped_t", "delivered_t").to_numpy()
    return world.disputes.select("opened_t", "escalated_t", "decided_t").to_numpy()


def write_source(world: Marketplace, source: str, rows: pl.DataFrame, landing_dir: Path,
                 formatter: RowFormatter, progress: Progress) -> dict:
    """Writes one source's batch files; returns its counts (rows, files, late, duplicate, dirty)."""
    folder = landing_dir / source
    folder.mkdir(parents=True, exist_ok=True)
    days = world.params.days
    dates = cohorts.date_strings(world.params.start, 0, days - 1)
    files = 0
    for first, stop in _chunks(rows["batch_day"].to_numpy(), days):
        chunk = formatter.format(source, rows.slice(first, stop - first))
        for (day,), batch in chunk.partition_by("batch_day", as_dict=True, include_key=False).items():
            write_batch(batch, folder / f"{dates[day]}.{world.params.extension}", world.params.file_format)
            files += 1
        progress(f"write {source}", int(rows["batch_day"][stop - 1]) + 1, days)
    return {"rows": rows.height, "files": files, "late_rows": int(rows["is_late"].sum()),
            "duplicate_rows": int((rows["copy"] == DUPLICATE).sum()),
            "dirty_rows": int((rows["copy"] == DIRTY).sum())}


def _chunks(batch_day: np.ndarray, days: int) -> list[tuple[int, int]]:
    """Row ranges [first, stop) of whole batch days, about CHUNK_ROWS rows each."""
    ends = np.cumsum(np.bincount(batch_day, minlength=days))
    bounds, first = [], 0
    while first < len(batch_day):
        # the last day that still fits, but always at least one whole day
        day = int(batch_day[first])
        fit = int(np.searchsorted(ends, first + CHUNK_ROWS, side="right")) - 1
        stop = int(ends[max(day, fit)])
        bounds.append((first, stop))
        first = stop
    return bounds


def write_batch(batch: pl.DataFrame, path: Path, file_format: str) -> None:
    """One batch file in the contract's format: header, comma, RFC-4180 quoting, UTF-8."""
    if file_format == "csv":
        batch.write_csv(path, quote_style="necessary", null_value="")
    elif file_format == "csv.gz":
        batch.write_csv(path, quote_style="necessary", null_value="", compression="gzip", compression_level=6)
    elif file_format == "parquet":
        batch.write_parquet(path, compression="zstd", statistics=True)
    elif file_format == "jsonl":
        batch.write_ndjson(path)
    else:
        raise ValueError(f"file_format {file_format!r} is not one of csv, csv.gz, parquet, jsonl")


def dirty_truth(rows: pl.DataFrame, source: str, world: Marketplace) -> pl.DataFrame:
    """Where the dirty rows are; grain: one row per dirty row (source, file_name, line_number, kind)."""
    dates = pl.Series(cohorts.date_strings(world.params.start, 0, world.params.days - 1))
    header_lines = 1 if world.params.file_format in ("csv", "csv.gz") else 0
    dirty = rows.filter(pl.col("copy") == DIRTY)
    kinds, columns = rule_labels(source)
    return pl.DataFrame({
        "source": pl.Series([source] * dirty.height, dtype=pl.String),
        "file_name": dates.gather(dirty["batch_day"]) + f".{world.params.extension}",
        "line_number": (dirty["row_in_batch"].cast(pl.Int64) + 1 + header_lines),
        "kind": pl.Series(kinds, dtype=pl.String).gather(dirty["dirty_rule"]),
        "column_name": pl.Series(columns, dtype=pl.String).gather(dirty["dirty_rule"]),
    })
