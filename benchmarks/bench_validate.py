"""What validation costs per million rows, and its share of an ingest run.

    .venv/bin/python benchmarks/bench_validate.py [--rows 1000000] [--files 20] [--out FILE.json]

Writes `--files` CSV files of orders (about 0.2% of rows failing a rule: negative
amounts, bad statuses) plus one suppliers file into a temporary landing zone, imports
great-expectations once (not counted: a fixed cost per process), then ingests everything
and prints where the time went: reading, validation in SQL (typing, rules, duplicates,
references), validation in great-expectations (one run per chunk of `quality.chunk_rows`),
and committing file by file.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb

from pipelines.ingest import ingest
from pipelines.settings import DataPaths, load_config

ORDERS = """
COPY (SELECT 'O' || i AS order_id, 'S' || (i % 1000) AS supplier_id, 'B' || (i % 50000) AS buyer_id,
             'US' AS buyer_country_code, 'tools' AS category,
             strftime(TIMESTAMP '2024-01-01' + to_seconds(i % 31536000), '%Y-%m-%dT%H:%M:%SZ') AS placed_at,
             CASE WHEN i % 997 = 0 THEN '-1.00' ELSE printf('%.2f', (i % 100000) / 100.0) END AS order_amount_usd,
             '2025-01-05' AS promised_ship_by, '2025-01-20' AS promised_delivery_by, 'true' AS is_trade_assured,
             CASE WHEN i % 1009 = 0 THEN 'lost' ELSE 'paid' END AS status, NULL AS cancelled_by,
             strftime(TIMESTAMP '2024-01-01' + to_seconds(i % 31536000 + 3600), '%Y-%m-%dT%H:%M:%SZ') AS updated_at
      FROM range({start}, {stop}) t(i)) TO '{path}' (HEADER)
"""
SUPPLIERS = """
COPY (SELECT 'S' || i AS supplier_id, 'Supplier ' || i AS supplier_name, 'CN' AS country_code,
             'tools' AS main_category, '2023-01-01T00:00:00Z' AS registered_at, '2024-01-01T00:00:00Z' AS updated_at
      FROM range(1000) t(i)) TO '{path}' (HEADER)
"""


def write_landing(paths: DataPaths, rows: int, files: int) -> None:
    for source in ("suppliers", "orders"):
        (paths.landing / source).mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(SUPPLIERS.format(path=paths.landing / "suppliers" / "all.csv"))
    per_file = rows // files
    for n in range(files):
        path = paths.landing / "orders" / f"2024-{n + 1:04d}.csv"
        con.execute(ORDERS.format(start=n * per_file, stop=(n + 1) * per_file, path=path))
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="Also write the figures as JSON here.")
    args = parser.parse_args()
    config = load_config()
    with tempfile.TemporaryDirectory() as folder:
        paths = DataPaths(Path(folder) / "data")
        write_landing(paths, args.rows, args.files)
        clock = time.perf_counter()
        import great_expectations  # noqa: F401  (a fixed cost per process, not per row)
        import_seconds = time.perf_counter() - clock
        report = ingest(paths, config)
    figures = _figures(report, args.rows, import_seconds, config.quality.chunk_rows)
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))


def _figures(report, rows: int, import_seconds: float, chunk_rows: int) -> dict:
    seconds = report.seconds
    per_million = 1_000_000 / rows
    validation = seconds.get("validate_sql", 0) + seconds.get("validate_gx", 0)
    return {
        "rows": rows, "files": len(report.files), "chunk_rows": chunk_rows,
        "rows_quarantined": report.rows_quarantined, "passed": report.passed,
        "gx_import_seconds_once_per_process": round(import_seconds, 2),
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "validation_seconds_per_million_rows": {
            "sql": round(seconds.get("validate_sql", 0) * per_million, 2),
            "great_expectations": round(seconds.get("validate_gx", 0) * per_million, 2),
            "total": round(validation * per_million, 2),
        },
        "validation_share_of_ingest": round(validation / seconds["total"], 3),
    }


if __name__ == "__main__":
    main()
