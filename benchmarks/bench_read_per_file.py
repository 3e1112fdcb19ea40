"""Per-file cost of reading landing files into a chunk: the old temp-table sequence against
the pipeline's read (pipelines.chunk.read_file: DuckDB into Arrow, no temp table per file).

    .venv/bin/python -m benchmarks.bench_read_per_file "DATA/landing/orders/2025-0*.csv" --files 150

Both read the same files into a chunk of one source, in this process. The old sequence,
kept here only for comparison, copied every row three times (read_csv into a temp table,
a second temp table with line numbers, then the chunk table) and paid a catalog commit for
each CREATE and DROP. Prints milliseconds per file and per thousand rows, and CPU seconds.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.chunk import read_file  # noqa: E402
from pipelines.contract import SOURCES  # noqa: E402
from pipelines.landing import LandingFile  # noqa: E402


def old_sequence(paths: list[Path]) -> int:
    """The statements of chunk.add_file before the fix, into a temp chunk table."""
    con = duckdb.connect()
    header = paths[0].open(encoding="utf-8").readline().strip().split(",")
    columns = "{" + ", ".join(f"'{name}': 'VARCHAR'" for name in header) + "}"
    selected = ", ".join(header)

    def read_csv(path: Path) -> str:
        return (f"read_csv('{path}', header = true, auto_detect = false, columns = {columns}, delim = ',', "
                f"quote = '\"', escape = '\"', strict_mode = true, null_padding = false)")

    con.execute(f"CREATE TEMP TABLE chunk AS SELECT {selected}, 0::BIGINT AS line_number, '' AS load_id "
                f"FROM {read_csv(paths[0])} LIMIT 0")
    for index, path in enumerate(paths):
        con.execute(f"CREATE TEMP TABLE incoming_rows AS SELECT * FROM {read_csv(path)}")
        con.execute("SELECT count(*) FROM incoming_rows").fetchall()
        con.execute(f"CREATE TEMP TABLE incoming AS SELECT rowid + 2 AS line_number, {selected} FROM incoming_rows")
        con.execute("DROP TABLE incoming_rows")
        con.execute(f"INSERT INTO chunk SELECT {selected}, line_number, 'L{index}' FROM incoming")
        con.execute("DROP TABLE incoming")
    return con.execute("SELECT count(*) FROM chunk").fetchall()[0][0]


def pipeline_read(paths: list[Path]) -> int:
    """pipelines.chunk.read_file per file, the chunk held as Arrow, as the ingest does."""
    source = SOURCES[paths[0].parent.name]
    tables = []
    for index, path in enumerate(paths):
        landing_file = LandingFile(path, f"{source.name}/{path.name}", source.name, "csv", "0" * 64,
                                   path.stat().st_size)
        rows, _problem = read_file(source, landing_file, {"load_id": f"L{index}", "load_seq": index})
        tables.append(rows)
    return pa.concat_tables(tables).num_rows


def measure(name: str, read, paths: list[Path]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    rows = read(paths)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{name:<40} {wall / len(paths) * 1000:7.1f} ms/file {wall / rows * 1e6:6.1f} ms/1k rows "
          f"{cpu:6.1f} CPU s  ({len(paths)} files, {rows:,} rows)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("glob", help="landing files of one source, e.g. DATA/landing/orders/2025-0*.csv")
    parser.add_argument("--files", type=int, default=150)
    args = parser.parse_args(argv)
    paths = [Path(p) for p in sorted(glob.glob(args.glob))[: args.files]]
    if not paths:
        parser.error(f"no file matches {args.glob}")
    measure("old: temp tables per file", old_sequence, paths)
    measure("pipeline: read_file into Arrow", pipeline_read, paths)


if __name__ == "__main__":
    main()
