"""Cost of finding the new landing files, on a first run and on a run with nothing new.

    .venv/bin/python -m benchmarks.bench_discover DATA_DIR

The first call hashes every file of DATA_DIR/landing; the second finds each file's size
and modification time unchanged in meta.landing_fingerprints and reads none of them
(nothing is loaded in between, so both list every file as still to load). Run it on a
data dir without a warehouse (it creates one); drop the page cache first
(`echo 1 > /proc/sys/vm/drop_caches`) to see the cost of reading the files from disk.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.ingest import _new_files  # noqa: E402
from pipelines.settings import DataPaths, load_config  # noqa: E402
from pipelines.warehouse import connect  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    paths, config = DataPaths(args.data_dir), load_config()
    landing_mb = sum(p.stat().st_size for p in paths.landing.rglob("*") if p.is_file()) / 1e6
    con = connect(paths)
    try:
        for label in ("first run (hashes every file)", "second run (nothing new)"):
            wall, cpu = time.perf_counter(), time.process_time()
            files = _new_files(con, paths, config)
            print(f"{label:<32} {len(files):6,} files to load, {landing_mb:,.0f} MB: "
                  f"{time.perf_counter() - wall:6.2f} s wall, {time.process_time() - cpu:5.2f} CPU s")
    finally:
        con.close()


if __name__ == "__main__":
    main()
