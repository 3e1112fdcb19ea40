"""The flows, run for real under the Prefect test harness on a small generated marketplace."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

from pipelines import flows
from pipelines.publish import CONTRACT_COLUMNS, PublicationRefused
from pipelines.run import QualityGateFailed
from pipelines.runlock import RunInProgress, run_lock
from pipelines.settings import DataPaths
from tests.conftest import copy_landing, land, query

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def last_day(marketplace: DataPaths) -> str:
    return max(p.name for p in (marketplace.landing / "orders").iterdir()).split(".")[0]


def published_rows(paths: DataPaths) -> list[dict]:
    """The current publication without its run_id, in rank order."""
    rows = pq.read_table(paths.published / "supplier_rankings.parquet").to_pylist()
    return [{k: v for k, v in r.items() if k != "run_id"} for r in rows]


@pytest.fixture(scope="module")
def refreshed_once(tmp_path_factory, small_marketplace, prefect_api_url):
    paths = copy_landing(small_marketplace, DataPaths(tmp_path_factory.mktemp("refreshed") / "data"))
    outcome = flows.daily_refresh(data_dir=str(paths.root), as_of=last_day(small_marketplace))
    return paths, outcome


@pytest.fixture
def refreshed(refreshed_once, tmp_path):
    """A copy of a dataset after one daily refresh (warehouse, published files and all)."""
    paths, outcome = refreshed_once
    copy = DataPaths(tmp_path / "data")
    shutil.copytree(paths.root, copy.root)
    return copy, outcome


def test_the_daily_refresh_publishes_the_contract(refreshed):
    paths, outcome = refreshed
    table = pq.read_table(paths.published / "supplier_rankings.parquet")
    assert tuple(table.column_names) == CONTRACT_COLUMNS
    assert table.num_rows == 60 and outcome.status == "published"
    assert str(table.schema.field("protection_limit_usd").type) == "decimal128(18, 2)"
    assert str(table.schema.field("rank_overall").type) == "int32"
    assert str(table.schema.field("reason_codes").type) == "list<element: string>"
    assert (paths.published / "history" / f"as_of={outcome.as_of}" / "supplier_rankings.parquet").exists()
    assert query(paths, "SELECT flow, status FROM meta.runs") == [("daily-refresh", "published")]
    assert query(paths, "SELECT suppliers, forced_reason FROM meta.publications") == [(60, None)]


def test_rerunning_the_same_day_on_the_same_inputs_publishes_the_same_rows(refreshed, tmp_path, small_marketplace):
    paths, first = refreshed
    before = published_rows(paths)
    again = flows.daily_refresh(data_dir=str(paths.root), as_of=str(first.as_of))
    assert again.run_id != first.run_id and published_rows(paths) == before
    elsewhere = copy_landing(small_marketplace, DataPaths(tmp_path / "elsewhere"))
    flows.daily_refresh(data_dir=str(elsewhere.root), as_of=str(first.as_of))
    assert published_rows(elsewhere) == before


def test_a_critical_quality_failure_stops_the_run_before_anything_is_published(tmp_path, small_marketplace,
                                                                              prefect_api_url):
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "data"))
    land(paths, "orders", "broken.csv", "order_id,supplier_id\nO1,S1\n")  # required columns missing
    with pytest.raises(QualityGateFailed, match="data quality gate failed"):
        flows.daily_refresh(data_dir=str(paths.root), as_of=last_day(small_marketplace))
    assert not (paths.published / "supplier_rankings.parquet").exists()
    assert query(paths, "SELECT status FROM meta.runs") == [("failed",)]
    assert query(paths, "SELECT count(*) FROM meta.publications") == [(0,)]


def test_the_gate_stops_a_run_that_flips_too_many_suppliers_unless_forced(refreshed, tmp_path):
    paths, first = refreshed
    before = published_rows(paths)
    strict = tmp_path / "strict.yaml"  # an evidence bar no supplier meets takes everyone's protection
    strict.write_text("protection:\n  min_distinct_buyers: 100000\n")
    next_day = str(first.as_of + dt.timedelta(days=1))
    with pytest.raises(PublicationRefused, match="would change is_protected"):
        flows.daily_refresh(data_dir=str(paths.root), config_path=str(strict), as_of=next_day)
    assert published_rows(paths) == before
    forced = flows.daily_refresh(data_dir=str(paths.root), config_path=str(strict), as_of=next_day,
                                 force_reason="new policy approved by risk committee")
    assert forced.changes and all(not c["is_protected"] for c in forced.changes)
    assert query(paths, "SELECT forced_reason FROM meta.publications ORDER BY published_at DESC LIMIT 1") == [
        ("new policy approved by risk committee",)]
    assert query(paths, "SELECT count(*) > 0 FROM meta.protection_changes") == [(True,)]


def test_a_second_run_refuses_while_one_is_in_progress(tmp_path, prefect_api_url):
    paths = DataPaths(tmp_path / "data")
    with run_lock(paths):
        with pytest.raises(RunInProgress, match=r"another pipeline run is in progress.*pid \d+"):
            flows.daily_refresh(data_dir=str(paths.root))


def test_a_lock_left_by_a_killed_run_is_recovered(tmp_path):
    paths = DataPaths(tmp_path / "data")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pipelines.runlock import run_lock; from pipelines.settings import DataPaths\n"
        f"with run_lock(DataPaths(__import__('pathlib').Path({str(paths.root)!r}))):\n"
        "    print('locked', flush=True); time.sleep(60)")], stdout=subprocess.PIPE, cwd=ROOT)
    assert holder.stdout.readline().strip() == b"locked"
    with pytest.raises(RunInProgress):
        with run_lock(paths):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_lock(paths):  # the kernel released the dead holder's lock
        pass


def test_backfill_resumes_where_it_stopped(tmp_path, small_marketplace, prefect_api_url):
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "data"))
    end = dt.date.fromisoformat(last_day(small_marketplace))
    first = flows.backfill(str(end - dt.timedelta(days=2)), str(end - dt.timedelta(days=1)), data_dir=str(paths.root))
    assert first.message == "published 2 day(s); 0 already published"
    second = flows.backfill(str(end - dt.timedelta(days=2)), str(end), data_dir=str(paths.root))
    assert second.message == "published 1 day(s); 2 already published"
    assert sorted(d.name for d in (paths.published / "history").iterdir()) == [
        f"as_of={end - dt.timedelta(days=i)}" for i in (2, 1, 0)]


def test_prefect_yaml_schedules_the_flows_that_exist():
    spec = yaml.safe_load(open(os.path.join(ROOT, "prefect.yaml"), encoding="utf-8"))
    schedules = {d["name"]: (d["schedules"][0]["cron"], d["work_pool"]["name"]) for d in spec["deployments"]}
    assert schedules == {"daily-refresh": ("0 2 * * *", "suprel-process"), "weekly-retrain": ("0 4 * * 0", "suprel-process"),
                         "hourly-ingest": ("15 * * * *", "suprel-process")}
    for deployment in spec["deployments"]:
        module, name = deployment["entrypoint"].split(":")
        flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name)
        assert hasattr(flow, "to_deployment") and set(deployment["parameters"]) <= set(flow.parameters.properties)
