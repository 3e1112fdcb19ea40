"""Benchmark the risk model's backtest on an ingested dataset: time per stage and the figures.

    .venv/bin/python benchmarks/bench_backtest.py --data-dir /tmp/eval-2000
    .venv/bin/python benchmarks/bench_backtest.py --data-dir /tmp/eval-2000 --folds 2 --as-of 2025-12-30

Reads the warehouse (and <data-dir>/truth when present), refreshes the daily facts if they
lag, never writes a report or a model. Prints the pooled figures of every system and
writes them as JSON to --out (default benchmarks/results/backtest.json, git-ignored).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from pipelines.risk.backtest import backtest, plan_folds, summarise  # noqa: E402
from pipelines.risk.dataset import RiskData, feature_names, refresh_facts, truth_probabilities  # noqa: E402
from pipelines.scoring import latest_data_day  # noqa: E402
from pipelines.settings import DataPaths, load_config  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "backtest.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="an ingested dataset")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=None, help="evaluation day")
    parser.add_argument("--folds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    paths, config = DataPaths(args.data_dir.resolve()), load_config(args.config)
    seconds = {}
    started = time.perf_counter()
    evaluation_day = args.as_of or latest_data_day(paths)
    refresh_facts(paths, config, evaluation_day)
    seconds["facts"] = time.perf_counter() - started
    plan = plan_folds(evaluation_day, config.risk, args.folds)
    with RiskData(paths, config) as data:
        mark = time.perf_counter()
        features = data.order_features(plan[0].train_first, plan[-1].test_last)
        seconds["features"] = time.perf_counter() - mark
        mark = time.perf_counter()
        results = backtest(data, features, config, evaluation_day, plan, truth_probabilities(paths))
        seconds["folds"] = time.perf_counter() - mark
    figures = summarise(results, config, evaluation_day)
    seconds["total"] = time.perf_counter() - started
    return {
        "benchmark": "backtest", "data_dir": str(paths.root), "evaluation_date": str(evaluation_day),
        "feature_rows": features.height, "features": len(feature_names(config)),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "model": figures["model"], "targets": figures["targets"],
        "pooled": {name: {k: v for k, v in f.items() if k != "calibration"} for name, f in figures["pooled"].items()},
        "folds": [{k: v for k, v in f.items() if k != "systems"} for f in figures["folds"]],
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"{result['feature_rows']:,} orders x {result['features']} features; seconds {result['seconds']}; "
          f"peak RSS {result['peak_rss_mb']} MB")
    for name, f in result["pooled"].items():
        print(f"  {name:34s} AUC {f['auc']:.4f}  Brier {f['brier']:.5f}  log loss {f['log_loss']:.4f}  "
              f"ECE {f['ece']:.4f}")
    print(f"targets: {result['targets']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
