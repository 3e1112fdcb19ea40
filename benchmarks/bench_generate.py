"""Benchmark the synthetic marketplace generator end to end (simulate + write every file).

    .venv/bin/python benchmarks/bench_generate.py --suppliers 2000 --days 730
    .venv/bin/python benchmarks/bench_generate.py --suppliers 5000 --days 730 --orders-per-supplier-day 1.5

Generates into a temporary directory (removed afterwards), prints the figures and writes
them as JSON to --out (default benchmarks/results/generate.json, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from synthetic import FILE_FORMATS, MarketplaceParams, write_marketplace  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "generate.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suppliers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--orders-per-supplier-day", type=float, default=0.6)
    parser.add_argument("--format", dest="file_format", choices=FILE_FORMATS, default="csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the temporary data folder goes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def folder_bytes(folder: Path) -> int:
    return sum(entry.stat().st_size for entry in folder.rglob("*") if entry.is_file())


def run(args: argparse.Namespace) -> dict:
    """Generate once into a temporary folder; return the measurements."""
    params = MarketplaceParams(suppliers=args.suppliers, days=args.days, seed=args.seed,
                               orders_per_supplier_day=args.orders_per_supplier_day,
                               file_format=args.file_format)
    with tempfile.TemporaryDirectory(dir=args.tmp_dir, prefix="bench_generate_") as tmp:
        started = time.perf_counter()
        summary = write_marketplace(Path(tmp), params)
        seconds = time.perf_counter() - started
        landing_bytes = folder_bytes(Path(tmp) / "landing")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {
        "benchmark": "generate",
        "params": params.as_dict(),
        "orders": summary["orders"],
        "rows": summary["rows"],
        "files": summary["files"],
        "landing_mb": round(landing_bytes / 1e6, 1),
        "seconds": round(seconds, 2),
        "orders_per_minute": round(summary["orders"] / seconds * 60),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
