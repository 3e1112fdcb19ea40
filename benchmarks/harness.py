"""The pipeline at several scales: per stage wall time, CPU time and peak memory.

    .venv/bin/python -m benchmarks.harness --scales 100k,1m [--days 365] [--out benchmarks/results/]

For each scale (orders, e.g. 5k, 100k, 1m, 10m), in a fresh data dir:

1. generate a marketplace of D days, and move the last day's landing files aside;
2. full refresh of the first D-1 days: floor (DuckDB reading every landing file once),
   ingest (split: read, validate SQL vs great-expectations, commit, pending), score
   (facts + rankings), train (time-boxed; skipped when it fails), predict (score_step with
   the registered model), publish, and the pandas peer on the same staged tables;
3. incremental day: land the last day's files and run ingest, score, predict, publish.

The summary compares the day (ingest + score + publish) with the full refresh, and, when a
model was registered, the day as the daily refresh runs it then (ingest + predict +
publish, and the facts update, which the plain score run before predict did). Training
is hours at 10M orders: `--model-from` registers a model trained on another marketplace
(the same features) instead, to measure predict at that scale.

Every stage runs in its own process: wall time from the harness, CPU time (user + system,
the stage and its children) and peak RSS from the kernel (wait4). Writes
<out>/bench_<stamp>.json, .md and .svg (time against orders). The sizing: suppliers =
orders / (days x orders_per_supplier_day x 0.9), the generator's ~0.9 ratio of placed orders.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import chart, compare  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results"
FULL_STAGES = ("floor", "ingest", "score", "train", "predict", "publish", "pandas_peer")
DAY_STAGES = ("ingest", "score", "predict", "publish")
PIPELINE = ("ingest", "score", "publish")  # the refresh total the incremental day is compared with
# The daily refresh once a risk model is registered: its score step (the predict stage)
# computes the model's features and risk before it scores, in place of the plain score.
# The day runs the plain score first, so predict finds the facts current: the summary adds
# the score stage's facts update, which the daily refresh does inside predict.
DAY_WITH_MODEL = ("ingest", "predict", "publish")
LIBRARIES = ("duckdb", "ibis-framework", "great-expectations", "pandas", "polars", "pyarrow", "scikit-learn",
             "prefect", "sqlglot")


def parse_scale(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "libraries": {}}
    for name in LIBRARIES:
        try:
            info["libraries"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info["libraries"][name] = None
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        info["memory_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return info


IN_PROCESS = False  # --in-process: stages share this process (the smoke test); peak RSS is then the process's


def run_stage(stage: str, data_dir: Path, extra: list[str], timeout: float | None, work: Path,
              profile: Path | None = None, memory_gb: float | None = None) -> dict:
    """Run one stage in a child process; its wall, CPU and peak RSS, and what it reported.

    memory_gb caps the child's address space: past it, allocations fail (MemoryError) and
    the stage is recorded as out of memory instead of the kernel's OOM killer picking a victim."""
    out = work / f"{stage}-{time.monotonic_ns()}.json"
    arguments = [stage, "--data-dir", str(data_dir), "--out", str(out), *extra,
                 *(["--profile", str(profile)] if profile else [])]
    load = os.getloadavg()
    clock = time.perf_counter()
    if IN_PROCESS:
        status, usage, timed_out, stderr = *_run_inline(arguments), False, ""
    else:
        log_path = out.with_suffix(".log")  # a file, not a pipe: a chatty stage must not block on a full pipe
        with open(log_path, "w", encoding="utf-8") as log_file:
            child = subprocess.Popen([sys.executable, "-m", "benchmarks.stages", *arguments], cwd=ROOT,
                                     stdout=log_file, stderr=subprocess.STDOUT,
                                     preexec_fn=_address_space_cap(memory_gb) if memory_gb else None)
            status, usage, timed_out = _wait(child, timeout)
        stderr = log_path.read_text(encoding="utf-8", errors="replace")
    wall = time.perf_counter() - clock
    record = {"stage": stage, "wall_seconds": round(wall, 3),
              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
              "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
              "load_average_1m_at_start": round(load[0], 2), "load_average_1m_at_end": round(os.getloadavg()[0], 2),
              "ok": status == 0 and not timed_out}
    if timed_out:
        record["error"] = f"timed out after {timeout:.0f} s"
    elif status != 0:
        record["error"] = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {status}"
    if out.exists():
        record["details"] = json.loads(out.read_text(encoding="utf-8"))
    return record


def _address_space_cap(memory_gb: float):
    def cap() -> None:
        import resource

        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return cap


def _run_inline(arguments: list[str]):
    """(exit status, rusage delta): CPU is this process's since the start, ru_maxrss its peak so far."""
    import resource
    from types import SimpleNamespace

    from benchmarks import stages

    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        stages.main(arguments)
        status = 0
    except Exception as exc:  # noqa: BLE001  (recorded like a failed child)
        status = 1
        print(f"stage {arguments[0]} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return status, SimpleNamespace(ru_utime=after.ru_utime - before.ru_utime, ru_stime=after.ru_stime - before.ru_stime,
                                   ru_maxrss=after.ru_maxrss)


def _wait(child: subprocess.Popen, timeout: float | None):
    """wait4 with a deadline: (exit status, rusage, timed out)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            return child.returncode, usage, False
        if deadline is not None and time.monotonic() > deadline:
            child.kill()
            _pid, status, usage = os.wait4(child.pid, 0)
            child.returncode = -9
            return -9, usage, True
        time.sleep(0.05)


def sizing(orders: int, days: int, rate: float) -> dict:
    return {"suppliers": max(3, round(orders / (days * rate * 0.9))), "days": days, "orders_per_supplier_day": rate}


def _last_day_files(landing: Path) -> list[Path]:
    newest = max(p.name.split(".")[0] for p in landing.glob("*/*.*"))
    return sorted(p for p in landing.glob(f"*/{newest}.*"))


def bench_scale(target: int, args: argparse.Namespace, work: Path) -> dict:
    size = sizing(target, args.days, args.orders_per_supplier_day)
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench_{target}_", dir=args.tmp_dir))
    log = lambda msg: print(f"[{target:,} orders] {msg}", flush=True)  # noqa: E731  (the CLI's progress)
    try:
        generated = run_stage("generate", data_dir, ["--suppliers", str(size["suppliers"]), "--days", str(args.days),
                                                      "--orders-per-supplier-day", str(args.orders_per_supplier_day),
                                                      "--seed", str(args.seed)], None, work)
        log(f"generate {generated['wall_seconds']:.1f} s")
        aside = data_dir / "aside"
        moved = []
        for path in _last_day_files(data_dir / "landing"):
            target_path = aside / path.parent.name / path.name
            target_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target_path)
            moved.append((target_path, path))
        full = {}
        for stage in FULL_STAGES:
            if stage in args.skip:
                full[stage] = {"stage": stage, "ok": False, "skipped": "--skip"}
                continue
            if stage == "train" and args.model_from:
                full[stage] = _register_copy(args.model_from, data_dir)
                continue
            if stage == "predict" and not full.get("train", {}).get("ok"):
                full[stage] = {"stage": stage, "ok": False, "skipped": "no trained model"}
                continue
            if stage == "pandas_peer" and target > args.peer_max_orders:
                full[stage] = {"stage": stage, "ok": False, "skipped": f"above --peer-max-orders {args.peer_max_orders}"}
                continue
            extra = ["--peer-out", str(work / f"peer_{target}.parquet")] if stage == "pandas_peer" else []
            timeout = {"train": args.train_timeout, "pandas_peer": args.peer_timeout}.get(stage)
            profile = work / f"profile_{target}_{stage}.prof" if stage in args.profile else None
            memory = args.peer_memory_gb if stage == "pandas_peer" else None
            full[stage] = run_stage(stage, data_dir, extra, timeout, work, profile, memory)
            log(f"full {stage} {full[stage]['wall_seconds']:.1f} s{'' if full[stage]['ok'] else ' FAILED'}")
        check = None
        if full["pandas_peer"].get("ok") and full["score"].get("ok"):
            check = compare.check(data_dir, work / f"peer_{target}.parquet", args.tolerance)
        if args.keep_before_day:
            _snapshot(data_dir, data_dir.with_name(data_dir.name + "-before-day"))
        for stored, landed in moved:
            shutil.move(stored, landed)
        day = {}
        for stage in DAY_STAGES:
            if stage in args.skip:
                day[stage] = {"stage": stage, "ok": False, "skipped": "--skip"}
                continue
            if stage == "predict" and not full["train"].get("ok"):
                day[stage] = {"stage": stage, "ok": False, "skipped": "no trained model"}
                continue
            day[stage] = run_stage(stage, data_dir, [], None, work)
            log(f"day {stage} {day[stage]['wall_seconds']:.1f} s")
        return {"target_orders": target, "orders": generated.get("details", {}).get("orders"), "sizing": size,
                "generate": generated, "full_refresh": full, "incremental_day": day,
                "incremental_files": len(moved), "peer_check": check, "summary": _summary(full, day, generated)}
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def _snapshot(data_dir: Path, copy: Path) -> None:
    """Copy the data dir as the full refresh left it, the landing files (and the day's, aside)
    hard-linked: a day can then be run again on copies of it, to profile the incremental day."""
    copy.mkdir()
    for part in data_dir.iterdir():
        if part.is_dir():
            link = part.name in ("landing", "aside")
            shutil.copytree(part, copy / part.name, copy_function=os.link if link else shutil.copy2)
        else:
            shutil.copy2(part, copy / part.name)


def _register_copy(model_dir: Path, data_dir: Path) -> dict:
    """The train stage's record when --model-from registers a model trained elsewhere."""
    from pipelines.risk import registry
    from pipelines.settings import DataPaths

    paths = DataPaths(data_dir)
    shutil.copytree(model_dir, registry.models_dir(paths) / model_dir.name)
    registry.set_current(paths, model_dir.name)
    return {"stage": "train", "ok": True, "skipped": f"model {model_dir.name} copied from {model_dir.parent}"}


def _wall(stages: dict, names) -> float:
    return round(sum(stages[n].get("wall_seconds", 0) for n in names if stages.get(n, {}).get("ok")), 3)


def _work(stages: dict, names) -> float:
    return round(sum(stages[n].get("details", {}).get("work_seconds", 0) for n in names if stages.get(n, {}).get("ok")), 3)


def _summary(full: dict, day: dict, generated: dict) -> dict:
    refresh, incremental = _wall(full, PIPELINE), _wall(day, PIPELINE)
    floor = full["floor"].get("details", {}).get("seconds_split", {}).get("count_star")
    peer, score = full["pandas_peer"], full["score"]
    summary = {"full_refresh_wall_seconds": refresh, "full_refresh_work_seconds": _work(full, PIPELINE),
               "incremental_day_wall_seconds": incremental, "incremental_day_work_seconds": _work(day, PIPELINE),
               "incremental_share_of_full": round(incremental / refresh, 4) if refresh else None,
               "floor_seconds": floor,
               "full_refresh_multiple_of_floor": round(_work(full, PIPELINE) / floor, 1) if floor else None,
               "peak_rss_mb": max((s.get("peak_rss_mb", 0) for s in full.values()), default=0)}
    if peer.get("ok") and score.get("ok"):
        summary["peer_over_score_wall"] = round(peer["wall_seconds"] / score["wall_seconds"], 2)
        summary["peer_over_score_work"] = round(peer["details"]["work_seconds"] / score["details"]["work_seconds"], 2)
        summary["peer_over_score_peak_rss"] = round(peer["peak_rss_mb"] / score["peak_rss_mb"], 2)
    if day.get("predict", {}).get("ok"):
        facts = day.get("score", {}).get("details", {}).get("seconds_split", {}).get("facts", 0)
        with_model = round(_wall(day, DAY_WITH_MODEL) + facts, 3)
        summary |= {"incremental_day_with_model_wall_seconds": with_model,
                    "incremental_day_with_model_work_seconds": round(_work(day, DAY_WITH_MODEL) + facts, 3),
                    "incremental_day_with_model_share_of_full": round(with_model / refresh, 4) if refresh else None}
    return summary


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# Benchmark {result['started_at']}", "",
             f"{m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
             + ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if v), "",
             f"Command: `{result['command']}`", "",
             "| orders | phase | stage | wall s | work s | CPU s | peak RSS MB | load 1m | note |",
             "|---:|---|---|---:|---:|---:|---:|---:|---|"]
    for scale in result["scales"]:
        rows = [("generate", "generate", scale["generate"])]
        rows += [("full", n, s) for n, s in scale["full_refresh"].items()]
        rows += [("day", n, s) for n, s in scale["incremental_day"].items()]
        for phase, name, s in rows:
            if not s.get("wall_seconds"):
                lines.append(f"| {scale['orders'] or scale['target_orders']:,} | {phase} | {name} | | | | | | "
                             f"{s.get('skipped', s.get('error', ''))} |")
                continue
            d = s.get("details", {})
            note = s.get("error") or ", ".join(f"{k} {v:.1f}" for k, v in d.get("seconds_split", {}).items())
            lines.append(f"| {scale['orders'] or scale['target_orders']:,} | {phase} | {name} | {s['wall_seconds']:.1f} "
                         f"| {d.get('work_seconds', 0):.1f} | {s['cpu_seconds']:.1f} | {s['peak_rss_mb']:.0f} "
                         f"| {s['load_average_1m_at_start']:.1f} | {note} |")
    lines += ["", "| orders | full refresh s | incremental day s | day / full | day with model s | with model / full "
              "| floor s | full / floor | peer / score (work) | peer / score (RSS) | peer check |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for scale in result["scales"]:
        s, c = scale["summary"], scale.get("peer_check") or {}
        lines.append(f"| {scale['orders']:,} | {s['full_refresh_wall_seconds']:.1f} | {s['incremental_day_wall_seconds']:.1f} "
                     f"| {s['incremental_share_of_full']} | {_seconds(s.get('incremental_day_with_model_wall_seconds'))} "
                     f"| {s.get('incremental_day_with_model_share_of_full', '')} "
                     f"| {_seconds(s['floor_seconds'], 2)} | {s['full_refresh_multiple_of_floor'] or ''} "
                     f"| {s.get('peer_over_score_work', '')} | {s.get('peer_over_score_peak_rss', '')} "
                     f"| {c.get('verdict', 'not run')} |")
    lines += ["", "wall s: the stage's process, interpreter and imports included; work s: inside the stage, "
              "after the interpreter started. Full refresh and incremental day: ingest + score + publish; "
              "day with model: ingest + predict + publish + the score stage's facts update (predict, run after "
              "score, finds the facts current), the daily refresh once a risk model is registered."]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None, digits: int = 1) -> str:
    """A figure for the markdown table; blank when the stage did not run (never a false 0)."""
    return "" if value is None else f"{value:.{digits}f}"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="100k,1m", help="orders per scale, comma separated (5k, 100k, 1m, 10m)")
    parser.add_argument("--days", type=int, default=730, help="730: the risk model's training year, "
                        "maturity and backtest folds need about two years")
    parser.add_argument("--orders-per-supplier-day", type=float, default=0.75)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where the data dirs go")
    parser.add_argument("--train-timeout", type=float, default=300.0, help="seconds before train is stopped")
    parser.add_argument("--model-from", type=Path, default=None,
                        help="a registered model's folder (artifacts/models/<version>) to use instead of training")
    parser.add_argument("--peer-timeout", type=float, default=1200.0)
    parser.add_argument("--peer-max-orders", type=float, default=20e6)
    parser.add_argument("--peer-memory-gb", type=float, default=12.0,
                        help="address-space cap of the pandas peer (MemoryError past it, not the OOM killer)")
    parser.add_argument("--tolerance", type=float, default=1e-6, help="relative tolerance of the peer check")
    parser.add_argument("--profile", default="", help="stages to cProfile, comma separated (into --out)")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    parser.add_argument("--keep-before-day", action="store_true",
                        help="also keep a copy of each data dir before its incremental day (<dir>-before-day)")
    parser.add_argument("--skip", default="", help="stages not to run, comma separated (e.g. train)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the stages in this process (quick; peak RSS is then the process's, not the stage's)")
    args = parser.parse_args(argv)
    args.profile = {s for s in args.profile.split(",") if s}
    args.skip = {s for s in args.skip.split(",") if s}
    return args


def main(argv=None) -> dict:
    global IN_PROCESS
    args = parse_args(argv)
    IN_PROCESS = args.in_process
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    result = {"started_at": stamp, "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.harness",
                                                        *(argv if argv is not None else sys.argv[1:])]),
              "machine": machine(), "load_average_at_start": os.getloadavg(), "scales": []}
    work = args.out / f"work_{stamp}"
    work.mkdir(parents=True, exist_ok=True)
    for text in args.scales.split(","):
        result["scales"].append(bench_scale(parse_scale(text), args, work))
        result["load_average_at_end"] = os.getloadavg()
        _write(result, args.out, stamp)  # after each scale: a long run leaves what it measured
    return result


def _write(result: dict, out: Path, stamp: str) -> None:
    (out / f"bench_{stamp}.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    (out / f"bench_{stamp}.md").write_text(markdown(result), encoding="utf-8")
    (out / f"bench_{stamp}.svg").write_text(chart.svg(result), encoding="utf-8")


if __name__ == "__main__":
    main()
