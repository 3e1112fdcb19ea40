"""CPU seconds of each step of ingestion, measured inside one real ingest run.

    .venv/bin/python -m benchmarks.bench_ingest_steps DATA_DIR [--out steps.json]

Ingests DATA_DIR's landing zone (as `benchmarks.stages ingest` does) with each step of the
chunk's path wrapped: reading a file, typing, each validation step, GX, each insert, the
commit. For every step it records the process's CPU seconds (user + system, all threads:
DuckDB's included) and wall seconds. CPU seconds are what a shared machine barely moves, so
before/after pairs of a change can be compared even while other work runs on it.
`read_file` runs in ingest's reader thread and `_run_gx` in its GX thread, alongside the
other steps (GX beside the chunk's inserts): their seconds are their own work, and overlap
the others' (the process's CPU clock counts every thread).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STEPS = {
    "pipelines.ingest": ("read_file", "seal_chunk", "type_chunk", "check_chunk", "rows_per_file",
                         "insert_raw", "insert_typed", "insert_quarantine", "write_results", "_write_ledger",
                         "recheck_pending", "transaction"),
    # run_suite wrapped under validate's name for it: validate.py imports it, so wrapping gx_validation's never ran
    "pipelines.validate": ("_set_aside_repeats", "_build_checked", "_referenced_current", "_decide", "_count_per_file",
                           "_run_gx", "run_suite"),
}


def cpu_seconds() -> float:
    """CPU seconds of this process, all threads (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


each: dict = defaultdict(list)  # step -> CPU seconds of each call, in call order


def _timed(name: str, function, totals: dict):
    def wrapper(*args, **kwargs):
        cpu, wall = cpu_seconds(), time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[name]["cpu"] += cpu_seconds() - cpu
            totals[name]["wall"] += time.perf_counter() - wall
            totals[name]["calls"] += 1
            each[name].append(round(cpu_seconds() - cpu, 2))
    return wrapper


def _timed_context(name: str, manager, totals: dict):
    @contextlib.contextmanager
    def wrapper(*args, **kwargs):
        inner = manager(*args, **kwargs)
        value = inner.__enter__()
        try:
            yield value
        except BaseException:
            if not inner.__exit__(*sys.exc_info()):
                raise
            return
        cpu, wall = cpu_seconds(), time.perf_counter()  # only the COMMIT, as the block exits
        inner.__exit__(None, None, None)
        totals[name]["cpu"] += cpu_seconds() - cpu
        totals[name]["wall"] += time.perf_counter() - wall
        totals[name]["calls"] += 1
    return wrapper


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import importlib

    from pipelines.run import ingest_step
    from pipelines.settings import DataPaths, load_config

    import great_expectations  # noqa: F401  (imported lazily by validation; not counted)

    totals: dict = defaultdict(lambda: {"cpu": 0.0, "wall": 0.0, "calls": 0})
    for module_name, names in STEPS.items():
        module = importlib.import_module(module_name)
        for name in names:
            wrap = _timed_context if name == "transaction" else _timed
            setattr(module, name, wrap("commit" if name == "transaction" else name, getattr(module, name), totals))
    cpu, wall = cpu_seconds(), time.perf_counter()
    report = ingest_step(DataPaths(args.data_dir), load_config(), "bench-ingest-steps")
    result = {"cpu": cpu_seconds() - cpu, "wall": time.perf_counter() - wall, "rows_loaded": report.rows_loaded,
              "steps": {k: {m: round(v, 2) for m, v in t.items()} for k, t in sorted(totals.items())},
              "each_call": {k: v for k, v in each.items() if len(v) < 200}}
    print(f"{'step':<22}{'calls':>7}{'cpu s':>9}{'wall s':>9}")
    for name, t in sorted(totals.items(), key=lambda item: -item[1]["cpu"]):
        print(f"{name:<22}{t['calls']:>7}{t['cpu']:>9.2f}{t['wall']:>9.2f}")
    print(f"{'ingest (whole)':<22}{'':>7}{result['cpu']:>9.2f}{result['wall']:>9.2f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
