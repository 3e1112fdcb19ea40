"""One benchmark stage, run in its own process so that its peak memory is its own.

    .venv/bin/python -m benchmarks.stages STAGE --data-dir DIR --out FILE.json [options]

The harness (benchmarks/harness.py) starts one process per stage and reads its CPU time
and peak RSS from the kernel (wait4); this module does the work and writes what it
learned (seconds spent after imports, rows, the ingest report's split) to --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

STAGES = ("generate", "floor", "ingest", "score", "train", "predict", "publish", "pandas_peer")
LANDING_SOURCES = ("suppliers", "orders", "shipments", "disputes")


def _paths(args):
    from pipelines.settings import DataPaths

    return DataPaths(Path(args.data_dir))


def _as_of(paths) -> dt.date:
    from pipelines.scoring import latest_data_day

    return latest_data_day(paths)


def stage_generate(args) -> dict:
    from synthetic import MarketplaceParams, write_marketplace

    params = MarketplaceParams(suppliers=args.suppliers, days=args.days, seed=args.seed,
                               orders_per_supplier_day=args.orders_per_supplier_day)
    summary = write_marketplace(Path(args.data_dir), params)
    return {"orders": summary["orders"], "rows": summary["rows"], "files": summary["files"],
            "params": summary["params"]}


def stage_floor(args) -> dict:
    """DuckDB reading every landing file once: count(*), and every column as text into memory."""
    import duckdb

    landing = Path(args.data_dir) / "landing"
    con = duckdb.connect()
    counted, rows, seconds = {}, 0, {}
    sources = [s for s in LANDING_SOURCES if any((landing / s).glob("*.csv"))]
    clock = time.perf_counter()
    for source in sources:
        glob = str(landing / source / "*.csv")
        counted[source] = con.execute(
            f"SELECT count(*) FROM read_csv('{glob}', all_varchar=true)").fetchall()[0][0]
        rows += counted[source]
    seconds["count_star"] = time.perf_counter() - clock
    clock = time.perf_counter()
    for source in sources:
        glob = str(landing / source / "*.csv")
        con.execute(f"CREATE TEMP TABLE t_{source} AS SELECT * FROM read_csv('{glob}', "
                    f"all_varchar=true)")
    seconds["materialise_text"] = time.perf_counter() - clock
    landing_bytes = sum(p.stat().st_size for p in landing.rglob("*.csv"))
    return {"rows": rows, "rows_per_source": counted, "landing_mb": round(landing_bytes / 1e6, 1),
            "seconds_split": seconds}


def stage_ingest(args) -> dict:
    from pipelines.run import ingest_step
    from pipelines.settings import load_config

    clock = time.perf_counter()
    import great_expectations  # noqa: F401  (imported lazily by validation; counted apart)
    gx_import = time.perf_counter() - clock
    report = ingest_step(_paths(args), load_config(), "bench-ingest")
    return {"files": len(report.files), "rows_loaded": report.rows_loaded,
            "rows_quarantined": report.rows_quarantined, "rows_pending": report.rows_pending,
            "passed": report.passed, "gx_import_seconds": gx_import,
            "seconds_split": {k: v for k, v in report.seconds.items()}}


def stage_score(args) -> dict:
    """Facts update plus rankings with the plain scorer (no risk model), split in two."""
    from pipelines.scoring import (_store_scores, connect, ensure_scoring_schema, ibis_backend, transaction,
                                   update_facts)
    from pipelines.settings import load_config

    paths, config = _paths(args), load_config()
    as_of = _as_of(paths)
    con = connect(paths, memory_limit=config.warehouse.memory_limit)
    split = {}
    try:
        ensure_scoring_schema(con)
        backend = ibis_backend(con)
        with transaction(con):
            clock = time.perf_counter()
            days = update_facts(con, backend, as_of, config.warehouse.facts_batch_orders)
            split["facts"] = time.perf_counter() - clock
            clock = time.perf_counter()
            suppliers = _store_scores(con, backend, config, as_of, "bench-score", None, "none")
            split["rankings"] = time.perf_counter() - clock
        facts_rows = con.execute("SELECT count(*) FROM features.supplier_day_facts").fetchall()[0][0]
    finally:
        con.close()
    return {"as_of": str(as_of), "suppliers": suppliers, "fact_days_computed": days, "facts_rows": facts_rows,
            "seconds_split": split}


def stage_train(args) -> dict:
    from pipelines.run import train_step
    from pipelines.settings import load_config

    paths = _paths(args)
    metadata = train_step(paths, load_config(), _as_of(paths))
    return {"model_version": metadata.get("model_version"), "training_orders": metadata.get("training_orders")}


def stage_predict(args) -> dict:
    """score_step: the registered model's risk per supplier, then the scores with it."""
    from pipelines.run import score_step
    from pipelines.settings import load_config

    paths = _paths(args)
    result = score_step(paths, load_config(), _as_of(paths), "bench-predict")
    return {"as_of": str(result.as_of), "suppliers": result.suppliers, "fact_days_computed": result.fact_days_computed}


def stage_publish(args) -> dict:
    from pipelines.run import new_run_id, publish_step
    from pipelines.settings import load_config

    paths = _paths(args)
    outcome = publish_step(paths, load_config(), _as_of(paths), new_run_id("bench"), force_reason="benchmark")
    return {"status": outcome.status, "message": outcome.message}


def stage_pandas_peer(args) -> dict:
    from benchmarks import pandas_peer
    from pipelines.settings import load_config

    paths = _paths(args)
    as_of = _as_of(paths)
    split = {}
    clock = time.perf_counter()
    staged = pandas_peer.read_staged(paths.warehouse)
    split["read"] = time.perf_counter() - clock
    clock = time.perf_counter()
    metrics, medians = pandas_peer.supplier_metrics(staged, as_of, load_config().scoring)
    split["compute"] = time.perf_counter() - clock
    if args.peer_out:
        metrics.to_parquet(args.peer_out, index=False)
        medians.to_parquet(pandas_peer.medians_file(args.peer_out), index=False)
    return {"as_of": str(as_of), "rows": len(metrics), "seconds_split": split}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--suppliers", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--orders-per-supplier-day", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer-out", default=None)
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of the stage here")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    run = globals()[f"stage_{args.stage}"]
    clock = time.perf_counter()
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        details = profiler.runcall(run, args)
        profiler.dump_stats(str(args.profile))
    else:
        details = run(args)
    details["work_seconds"] = time.perf_counter() - clock
    args.out.write_text(json.dumps(details, default=str, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
