"""Scoring on DuckDB against scoring on local Spark, at several sizes: where Spark catches up.

    .venv/bin/python -m benchmarks.bench_spark_crossover --scales 5k,100k,1m [--tmp-dir DIR] [--keep]

Each scale (orders over 730 days) is generated and ingested once with the command line
(`suprel generate --suppliers N --days 730 --orders-per-supplier-day 0.75`, then
`suprel ingest`); these steps are not timed. Then, for each engine, a fresh copy of the
warehouse is scored twice for the newest day, in one child process (wall, CPU and peak
RSS of the whole process from wait4, the JVM included since it is a child of it):

- first run: DuckDB computes every daily fact and the rankings; Spark starts its session,
  hands the staged tables over as Parquet, recomputes the long window's facts and ranks;
- second run: DuckDB's facts are current, so it ranks only (its daily steady state); Spark
  recomputes the same on a warm session (its steady state: it keeps no facts).

Writes the figures as JSON and a Markdown table to --out (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.harness import DEFAULT_OUT, ROOT, _wait, machine, parse_scale, sizing  # noqa: E402

ENGINES = ("duckdb", "spark")
SUPREL = str(Path(sys.executable).with_name("suprel"))


def prepare(orders: int, data_dir: Path) -> dict:
    """Generate and ingest a marketplace of about `orders` orders (once; reused when present)."""
    size = sizing(orders, 730, 0.75)
    if not (data_dir / "warehouse" / "suprel.duckdb").exists():
        common = ["--data-dir", str(data_dir)]
        subprocess.run([SUPREL, "generate", *common, "--suppliers", str(size["suppliers"]), "--days", "730",
                        "--orders-per-supplier-day", "0.75"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([SUPREL, "ingest", *common], check=True, stdout=subprocess.DEVNULL)
    return size


def bench_engine(engine: str, data_dir: Path, work: Path, timeout: float) -> dict:
    """Score a fresh copy of the warehouse twice in one child process; its wall, CPU and RSS."""
    copy = work / f"{engine}-{time.monotonic_ns()}"
    shutil.copytree(data_dir / "warehouse", copy / "warehouse")
    out = copy / "result.json"
    load = os.getloadavg()
    clock = time.perf_counter()
    with open(copy / "child.log", "w", encoding="utf-8") as log:
        child = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_spark_crossover", "--child", engine,
                                  "--data-dir", str(copy), "--out", str(out)], cwd=ROOT, stdout=log,
                                 stderr=subprocess.STDOUT)
        status, usage, timed_out = _wait(child, timeout)
    record = {"engine": engine, "process_wall_seconds": round(time.perf_counter() - clock, 2),
              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024),
              "load_average_1m_at_start": round(load[0], 2), "load_average_1m_at_end": round(os.getloadavg()[0], 2),
              "ok": status == 0 and not timed_out}
    if out.exists():
        record |= json.loads(out.read_text(encoding="utf-8"))
    elif not record["ok"]:
        tail = (copy / "child.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
        record["error"] = f"timed out after {timeout:.0f} s" if timed_out else " ".join(tail)
    shutil.rmtree(copy, ignore_errors=True)
    return record


def child(engine: str, data_dir: Path, out: Path) -> None:
    """In the child: score the newest day twice on `engine`, timing each run."""
    import dataclasses

    from pipelines.engines import stop_spark
    from pipelines.scoring import latest_data_day, score
    from pipelines.settings import DataPaths, load_config

    base = load_config()
    config = dataclasses.replace(base, engine=dataclasses.replace(base.engine, name=engine))
    paths = DataPaths(data_dir)
    as_of = latest_data_day(paths)
    runs = []
    for attempt in ("first", "second"):
        clock = time.perf_counter()
        result = score(paths, config, as_of, f"bench-{engine}-{attempt}")
        runs.append(round(time.perf_counter() - clock, 2))
    jvm = _jvm_usage()
    stop_spark()
    out.write_text(json.dumps({"as_of": str(as_of), "suppliers": result.suppliers, "first_run_seconds": runs[0],
                               "second_run_seconds": runs[1], **jvm}), encoding="utf-8")


def _jvm_usage() -> dict:
    """CPU and peak RSS of the Spark JVM, read from /proc before it stops (it is not waited
    for like a child process, so wait4 does not count it)."""
    from pipelines.engines import _session

    if _session["spark"] is None:
        return {}
    pid = _session["spark"].sparkContext._gateway.proc.pid
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"jvm_cpu_seconds": round((int(fields[11]) + int(fields[12])) / ticks, 2),
            "jvm_peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024)}


def _orders(data_dir: Path) -> int:
    import duckdb

    con = duckdb.connect(str(data_dir / "warehouse" / "suprel.duckdb"), read_only=True)
    try:
        return con.execute("SELECT count(DISTINCT order_id) FROM staging.orders").fetchall()[0][0]
    finally:
        con.close()


def markdown(results: list[dict]) -> str:
    lines = ["| orders | suppliers | engine | first run s | second run s | CPU s (python + JVM) | "
             "peak RSS MB (python / JVM) | load 1m start-end |", "|---:|---:|---|---:|---:|---:|---:|---:|"]
    for scale in results:
        for r in scale["engines"]:
            first, second = r.get("first_run_seconds", r.get("error", "failed")), r.get("second_run_seconds", "")
            cpu = round(r["cpu_seconds"] + r.get("jvm_cpu_seconds", 0), 1)
            rss = f"{r['peak_rss_mb']} / {r['jvm_peak_rss_mb']}" if "jvm_peak_rss_mb" in r else str(r["peak_rss_mb"])
            lines.append(f"| {scale['orders']:,} | {scale['suppliers']:,} | {r['engine']} | {first} | {second} | "
                         f"{cpu} | {rss} | {r['load_average_1m_at_start']}-{r['load_average_1m_at_end']} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="5k,100k,1m")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the data dirs live (kept with --keep)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600, help="per engine and scale, seconds")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.data_dir, args.out)
    work = args.tmp_dir or Path(tempfile.mkdtemp(prefix="suprel-crossover-"))
    results = []
    try:
        for text in args.scales.split(","):
            data_dir = work / text.strip()
            size = prepare(parse_scale(text), data_dir)
            orders = _orders(data_dir)
            engines = [bench_engine(engine, data_dir, work, args.timeout) for engine in ENGINES]
            results.append({"scale": text, "orders": orders, "suppliers": size["suppliers"], "engines": engines})
            print(markdown(results[-1:]), flush=True)
    finally:
        if not args.keep and args.tmp_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "results": results}
    (args.out / f"spark_crossover_{stamp}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (args.out / f"spark_crossover_{stamp}.md").write_text(markdown(results) + "\n", encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
