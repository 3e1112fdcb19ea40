"""Wall and CPU seconds of each batch of a first run's facts, on a copy of an ingested data dir.

    .venv/bin/python -m benchmarks.bench_facts SOURCE_DIR COPY_DIR [--batch-orders N]

Copies SOURCE_DIR (ingested, facts not computed) to COPY_DIR, then computes every day's
facts up to the newest staged day as `suprel score` does, in batches of at most N placed
orders (the config's `warehouse.facts_batch_orders` when not given), and prints each
batch's seconds as it ends and the totals. CPU seconds are the process's (DuckDB's threads
included), which a shared machine barely moves: compare batch sizes or commits on them.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_ingest_steps import cpu_seconds  # noqa: E402


class _BatchClock(logging.Handler):
    """Prints the seconds since the previous batch each time update_facts logs one."""

    def __init__(self):
        super().__init__()
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()

    def emit(self, record: logging.LogRecord) -> None:
        wall, cpu = time.perf_counter(), cpu_seconds()
        print(f"{wall - self.wall:8.2f} s wall {cpu - self.cpu:8.2f} CPU s  {record.getMessage()}", flush=True)
        self.wall, self.cpu = wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_dir", type=Path)
    parser.add_argument("copy_dir", type=Path, help="replaced by a copy of source_dir")
    parser.add_argument("--batch-orders", type=int, default=None)
    args = parser.parse_args()

    from pipelines.scoring import connect, ensure_scoring_schema, ibis_backend, latest_data_day, update_facts
    from pipelines.settings import DataPaths, load_config
    from pipelines.warehouse import transaction

    shutil.rmtree(args.copy_dir, ignore_errors=True)
    shutil.copytree(args.source_dir, args.copy_dir)
    paths, config = DataPaths(args.copy_dir), load_config()
    batch_orders = config.warehouse.facts_batch_orders if args.batch_orders is None else args.batch_orders
    as_of = latest_data_day(paths)
    con = connect(paths, memory_limit=config.warehouse.memory_limit)
    try:
        con.execute("SET enable_progress_bar = false")
        ensure_scoring_schema(con)
        scoring_log = logging.getLogger("pipelines.scoring")
        scoring_log.addHandler(_BatchClock())
        scoring_log.setLevel(logging.INFO)
        wall, cpu = time.perf_counter(), cpu_seconds()
        with transaction(con):
            days = update_facts(con, ibis_backend(con), as_of, batch_orders)
        rows = con.execute("SELECT count(*) FROM features.supplier_day_facts").fetchall()[0][0]
    finally:
        con.close()
    print(f"facts of {days} days, {rows:,} rows, batches of {batch_orders:,} orders: "
          f"{time.perf_counter() - wall:.2f} s wall, {cpu_seconds() - cpu:.2f} CPU s")


if __name__ == "__main__":
    main()
