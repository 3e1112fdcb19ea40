"""Reading generated landing files back, independently of the generator's own code.

Only pipelines/contract.py (the contract as data) is shared with the generator: the
checks here re-derive formats and definitions from CONTRACT.md, not from synthetic/.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.contract import SOURCES, accepted_format

TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
MONEY_PATTERN = r"^\d+\.\d{2}$"   # non-negative, exactly 2 decimals


def read_file(path: Path) -> pl.DataFrame:
    """One landing file, every column as text, plus line_number (CSV: header is line 1)."""
    kind = accepted_format(path.name)
    if kind in ("csv", "csv.gz"):
        frame = pl.read_csv(path, infer_schema=False)
        first_line = 2
    elif kind == "parquet":
        frame = pl.read_parquet(path)
        first_line = 1
    elif kind == "jsonl":
        frame = pl.read_ndjson(path, infer_schema_length=None)
        first_line = 1
    else:
        raise AssertionError(f"unexpected landing file {path}")
    frame = frame.with_columns(pl.all().cast(pl.String))
    return frame.with_columns(
        file_name=pl.lit(path.name),
        line_number=pl.int_range(pl.len(), dtype=pl.Int64) + first_line,
    )


def read_source(data_dir: Path, source: str) -> pl.DataFrame:
    """Every row of every batch file of a source, in batch order, with file_name and line_number."""
    files = sorted((data_dir / "landing" / source).iterdir())
    return pl.concat([read_file(path) for path in files], how="diagonal_relaxed")


def violations(frame: pl.DataFrame, source: str) -> pl.Series:
    """True for each row that breaks the contract's typing (CONTRACT.md section 1)."""
    broken = pl.lit(False)
    for column in SOURCES[source].columns:
        value = pl.col(column.name)
        missing = value.is_null() | (value == "")
        broken = broken | (missing & column.required) | (~missing & ~_well_typed(value, column))
    return frame.select(broken.alias("broken"))["broken"]


def _well_typed(value: pl.Expr, column) -> pl.Expr:
    if column.kind == "timestamp":
        parsed = value.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False)
        return value.str.contains(TIMESTAMP_PATTERN) & parsed.is_not_null()
    if column.kind == "date":
        return value.str.contains(DATE_PATTERN) & value.str.to_date("%Y-%m-%d", strict=False).is_not_null()
    if column.kind == "decimal":
        return value.str.contains(MONEY_PATTERN)
    if column.kind == "boolean":
        return value.is_in(["true", "false"])
    if column.kind == "enum":
        return value.is_in(list(column.values))
    return pl.lit(True)


def latest_versions(rows: pl.DataFrame, source: str) -> pl.DataFrame:
    """The current version of each record: greatest updated_at, ties to the later batch."""
    key = SOURCES[source].key
    valid = rows.filter(~violations(rows, source))
    return (valid.sort("updated_at", "file_name", "line_number")
            .group_by(key, maintain_order=True).last())


def timestamp(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")


def end_of_day(column: str, plus_days: int = 0) -> pl.Expr:
    """Midnight (UTC) ending the given date + plus_days."""
    day = pl.col(column).str.to_date("%Y-%m-%d") + pl.duration(days=plus_days + 1)
    return day.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
