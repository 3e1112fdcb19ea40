"""write_marketplace: simulate the marketplace, then write its landing files and its truth."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import polars as pl

from synthetic.formatting import RowFormatter
from synthetic.marketplace import simulate
from synthetic.params import MarketplaceParams
from synthetic.truth import write_truth
from synthetic.writer import SOURCE_NAMES, Progress, dirty_truth, landed_rows, write_source

log = logging.getLogger(__name__)


def write_marketplace(data_dir: Path, params: MarketplaceParams, progress: Progress | None = None) -> dict:
    """Writes <data_dir>/landing/<source>/<YYYY-MM-DD>.<ext> and <data_dir>/truth/*.parquet.

    One batch file per source per day (suppliers, orders, shipments, disputes); a day with
    no rows for a source writes no file. Refuses to write into a landing folder or truth
    folder that already holds files, so two runs never mix. Returns a summary: orders,
    rows per source, dirty rows, files, seconds. `progress(stage, done, total)` is called
    as work advances.
    """
    if not isinstance(params, MarketplaceParams):
        raise ValueError(f"params must be a MarketplaceParams, got {type(params).__name__}")
    started = time.perf_counter()
    data_dir = Path(data_dir)
    _refuse_existing(data_dir)
    report = progress or (lambda stage, done, total: None)
    report("simulate", 0, 1)
    world = simulate(params)
    report("simulate", 1, 1)
    formatter = RowFormatter(world)
    per_source, dirty = {}, []
    for source in SOURCE_NAMES:
        rows = landed_rows(world, source)
        per_source[source] = write_source(world, source, rows, data_dir / "landing", formatter, report)
        dirty.append(dirty_truth(rows, source, world))
        del rows
    report("truth", 0, 1)
    truth_rows = write_truth(world, pl.concat(dirty), data_dir / "truth")
    report("truth", 1, 1)
    summary = _summary(world, per_source, truth_rows, time.perf_counter() - started)
    log.info("wrote %s orders in %s files to %s (%.1f s)", summary["orders"], summary["files"], data_dir,
             summary["seconds"])
    return summary


def _refuse_existing(data_dir: Path) -> None:
    folders = [data_dir / "landing" / source for source in SOURCE_NAMES] + [data_dir / "truth"]
    for folder in folders:
        if folder.is_dir() and any(p.name != ".gitkeep" for p in folder.iterdir()):
            raise FileExistsError(f"{folder} already holds files; generate into an empty data directory "
                                  f"or remove its landing/ and truth/ folders first")


def _summary(world, per_source: dict, truth_rows: dict, seconds: float) -> dict:
    orders = world.orders
    return {
        "orders": orders.height,
        "fake_orders": int(orders["is_fake"].sum()),
        "defect_orders": int(orders["is_defect"].sum()),
        "suppliers": world.suppliers.height,
        "rows": {source: counts["rows"] for source, counts in per_source.items()},
        "dirty_rows": sum(counts["dirty_rows"] for counts in per_source.values()),
        "duplicate_rows": sum(counts["duplicate_rows"] for counts in per_source.values()),
        "late_rows": sum(counts["late_rows"] for counts in per_source.values()),
        "files": sum(counts["files"] for counts in per_source.values()),
        "truth_rows": truth_rows,
        "seconds": round(seconds, 3),
        "params": world.params.as_dict(),
    }
