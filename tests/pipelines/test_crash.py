"""Kill the run with SIGKILL at random points, rerun, and compare with a clean run.

Each trial starts `suprel run` in its own process against the session's Prefect test
server, kills it after a random delay, the trials' delays spread over the whole run
(ingest, scoring and publishing), then runs the refresh again to completion. The
published rows (all but run_id) and the staged rows must equal those of a run that was
never interrupted.
SUPREL_CRASH_TRIALS sets the number of trials (20; CI may set fewer to save time);
benchmarks/crash_trials.py runs many more.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from pipelines import flows
from pipelines.settings import DataPaths
from synthetic import MarketplaceParams, write_marketplace
from tests.conftest import copy_landing, layer_snapshot, query
from tests.pipelines.test_flows import ROOT, published_rows

TRIALS = int(os.environ.get("SUPREL_CRASH_TRIALS", "20"))
AS_OF = "2024-02-14"


@pytest.fixture(scope="module")
def crash_marketplace(tmp_path_factory) -> DataPaths:
    root = tmp_path_factory.mktemp("crash_marketplace")
    write_marketplace(root, MarketplaceParams(suppliers=20, days=45, seed=5, dirty_rate=0.002))
    return DataPaths(root)


def start_run(paths: DataPaths, api_url: str) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_API_URL": api_url, "SUPREL_DATA_DIR": str(paths.root)}
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--as-of", AS_OF], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def phase_reached(paths: DataPaths, files: int) -> str:
    """Where the killed run was, judged from what it left committed."""
    if not paths.warehouse.exists():
        return "starting"
    loaded = query(paths, "SELECT count(*) FROM meta.load_ledger")[0][0]
    if loaded < files:
        return "ingest"
    tables = {t for (t,) in query(paths, "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'scores'")}
    if "supplier_rankings" not in tables:
        return "score"
    published = (paths.published / "supplier_rankings.parquet").exists()
    return "finished" if published else "publish"


@pytest.fixture(scope="module")
def clean_run(crash_marketplace, tmp_path_factory, prefect_api_url):
    """A run never interrupted: its result, and when (seconds after start) its work began and ended."""
    paths = copy_landing(crash_marketplace, DataPaths(tmp_path_factory.mktemp("clean") / "data"))
    started = time.monotonic()
    process = start_run(paths, prefect_api_url)
    while process.poll() is None and not paths.warehouse.exists():
        time.sleep(0.05)
    working = time.monotonic() - started  # before this the process is only importing
    assert process.wait(timeout=300) == 0
    return paths, working, time.monotonic() - started


def test_killed_runs_rerun_to_the_clean_result(crash_marketplace, clean_run, tmp_path, prefect_api_url):
    clean, working, seconds = clean_run
    expected_rows, expected_layers = published_rows(clean), layer_snapshot(clean)
    files = len(list(crash_marketplace.landing.rglob("*.csv")))
    rng = random.Random(20261126)
    phases = []
    for trial in range(TRIALS):
        paths = copy_landing(crash_marketplace, DataPaths(tmp_path / f"trial{trial}"))
        process = start_run(paths, prefect_api_url)
        # Publishing takes the last moments of a run: every third kill aims there. The others
        # are spread over the run, trial i at a random moment of the i-th of TRIALS equal
        # slices of it: uniform delays could all land in one phase (they once all hit score).
        tail = (max(working, seconds - 3.0), seconds - 0.5)
        spread = working + (trial + rng.random()) * (seconds - working) / TRIALS
        time.sleep(rng.uniform(*tail) if trial % 3 == 2 else spread)
        process.send_signal(signal.SIGKILL)
        process.wait()
        phases.append(phase_reached(paths, files))
        flows.daily_refresh(data_dir=str(paths.root), as_of=AS_OF)
        assert published_rows(paths) == expected_rows, f"trial {trial} killed during {phases[-1]}"
        assert layer_snapshot(paths) == expected_layers, f"trial {trial} killed during {phases[-1]}"
    print(f"kills by phase: { {p: phases.count(p) for p in set(phases)} }")
    if TRIALS >= 10:  # enough trials to expect kills spread over the run (a check on this test itself)
        assert len(set(phases) & {"ingest", "score", "publish"}) >= 2, phases
