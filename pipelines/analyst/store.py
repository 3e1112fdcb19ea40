"""Reading what is published under <data-dir>/published/ (never the warehouse).

A run swaps each published file in with an atomic rename, so every read sees one whole
snapshot. The evidence files (pipelines/publish_metrics.py) are looked up in the history
folder of the rankings' own as_of date, so that the rankings and their evidence always
come from the same run even while a new publication is landing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from pipelines.publish_metrics import DECISIONS_FILE, METRICS_FILE
from pipelines.settings import DataPaths

RANKINGS_FILE = "supplier_rankings.parquet"
FRAMES = ("polars", "pandas")


class NothingPublished(FileNotFoundError):
    """No publication (or not the file asked for) under published/; the message says what to run."""


def as_frame(frame: pl.DataFrame, kind: str):
    """The frame as the caller asked: polars (as is) or pandas."""
    if kind not in FRAMES:
        raise ValueError(f"frame={kind!r}: ask for one of {', '.join(FRAMES)}")
    return frame if kind == "polars" else frame.to_pandas()


def read_rankings(paths: DataPaths) -> pl.DataFrame:
    """The current snapshot of the contract, in rank order."""
    current = paths.published / RANKINGS_FILE
    if not current.exists():
        raise NothingPublished(f"nothing published under {paths.published}: run `suprel run --data-dir "
                               f"{paths.root}` (or `suprel demo`) first")
    return pl.read_parquet(current)


def snapshot_dates(paths: DataPaths) -> list[dt.date]:
    """Every as_of date with a published rankings snapshot, oldest first."""
    folders = (paths.published / "history").glob("as_of=*")
    return sorted(dt.date.fromisoformat(f.name.split("=", 1)[1]) for f in folders if (f / RANKINGS_FILE).exists())


def history_file(paths: DataPaths, as_of: dt.date, name: str) -> Path:
    return paths.published / "history" / f"as_of={as_of.isoformat()}" / name


def read_history(paths: DataPaths, name: str = RANKINGS_FILE, supplier_ids: list[str] | None = None) -> pl.DataFrame:
    """Every published snapshot of one file, stacked (as_of_date tells them apart); only
    the rows of `supplier_ids` when given (read with a pushed-down filter: cheap at scale)."""
    files = [history_file(paths, d, name) for d in snapshot_dates(paths)]
    files = [f for f in files if f.exists()]
    if not files:
        raise NothingPublished(f"no published history of {name} under {paths.published / 'history'}")
    frames = [pl.scan_parquet(f) for f in files]
    if supplier_ids is not None:
        frames = [f.filter(pl.col("supplier_id").is_in(list(supplier_ids))) for f in frames]
    return pl.concat(frames, how="diagonal_relaxed").collect()


def read_evidence(paths: DataPaths, as_of: dt.date, name: str) -> pl.DataFrame:
    """The evidence file `name` (metrics or decisions) published with the rankings of as_of."""
    for candidate in (history_file(paths, as_of, name), paths.published / name):
        if candidate.exists():
            table = pl.read_parquet(candidate)
            if table.height and table["as_of_date"][0] == as_of:
                return table
    raise NothingPublished(
        f"no {name} published for {as_of} under {paths.published}: the per-metric evidence is written by "
        f"pipelines.publish_metrics.write_evidence_snapshot with each publication; rerun `suprel run` to publish it")


def read_metrics(paths: DataPaths, as_of: dt.date) -> pl.DataFrame:
    return read_evidence(paths, as_of, METRICS_FILE)


def read_decisions(paths: DataPaths, as_of: dt.date) -> pl.DataFrame:
    return read_evidence(paths, as_of, DECISIONS_FILE)


def previous_snapshot(paths: DataPaths, as_of: dt.date) -> pl.DataFrame | None:
    """The last published rankings before as_of, if any."""
    earlier = [d for d in snapshot_dates(paths) if d < as_of]
    return pl.read_parquet(history_file(paths, earlier[-1], RANKINGS_FILE)) if earlier else None
