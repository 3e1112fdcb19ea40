"""The Prefect flows. Each reads top to bottom as the run; the work is in pipelines/run.py.

Only this module imports Prefect. Tasks take paths, never connections (a DuckDB
connection breaks Prefect's cache keys), cache nothing (stale results under
PREFECT_HOME would replay old runs), and retry only where the work is I/O that a second
try can fix: reading landing files and writing the published files, never a refusal by
a gate. One run per dataset at a time is the pipeline's own lock, not Prefect's.
"""

from __future__ import annotations

import datetime as dt

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from pipelines import run as steps
from pipelines.runlock import run_lock
from pipelines.settings import load_config, resolve_data_dir

def _retry_io_errors(task_, task_run, state) -> bool:
    """Retry on I/O trouble only; a gate's refusal or a data error will not change on retry."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - anything else is final
        return False
    return False


def _date(value: str | dt.date | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=_retry_io_errors)
def ingest_landing(data_dir: str | None, config_path: str | None, run_id: str):
    return steps.ingest_step(resolve_data_dir(data_dir), load_config(config_path), run_id)


@task(cache_policy=NO_CACHE)
def check_quality(report) -> None:
    steps.quality_gate(report)


@task(cache_policy=NO_CACHE)
def score_suppliers(data_dir: str | None, config_path: str | None, as_of: dt.date, run_id: str):
    return steps.score_step(resolve_data_dir(data_dir), load_config(config_path), as_of, run_id)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, retry_condition_fn=_retry_io_errors)
def publish_rankings(data_dir: str | None, config_path: str | None, as_of: dt.date, run_id: str,
                     force_reason: str | None):
    return steps.publish_step(resolve_data_dir(data_dir), load_config(config_path), as_of, run_id, force_reason)


def _recorded(flow_name: str, data_dir, body, force_reason: str | None = None, wait_seconds: float = 0):
    """Run `body(outcome)` under the dataset's run lock and record the run, failed or not."""
    paths = resolve_data_dir(data_dir)
    outcome = steps.RunOutcome(steps.new_run_id(flow_name))
    started = steps.now_utc()
    with run_lock(paths, wait_seconds):
        try:
            body(outcome)
        except Exception as exc:
            outcome.status, outcome.message = "failed", str(exc)
            steps.record_run(paths, outcome, flow_name, started, force_reason)
            raise
        steps.record_run(paths, outcome, flow_name, started, force_reason)
    return outcome


@flow(name="daily-refresh")
def daily_refresh(data_dir: str | None = None, config_path: str | None = None, as_of: str | None = None,
                  force_reason: str | None = None, wait_seconds: float = 0) -> steps.RunOutcome:
    """Ingest, validate, stage, score, predict and publish, as of a day (default: the newest)."""
    def body(outcome: steps.RunOutcome) -> None:
        report = ingest_landing(data_dir, config_path, outcome.run_id)
        check_quality(report)
        outcome.as_of = steps.resolve_as_of(resolve_data_dir(data_dir), _date(as_of))
        score_suppliers(data_dir, config_path, outcome.as_of, outcome.run_id)
        published = publish_rankings(data_dir, config_path, outcome.as_of, outcome.run_id, force_reason)
        outcome.status, outcome.message, outcome.changes = published.status, published.message, published.changes

    return _recorded("daily-refresh", data_dir, body, force_reason, wait_seconds)


@flow(name="ingest")
def ingest(data_dir: str | None = None, config_path: str | None = None, wait_seconds: float = 0):
    """Load new landing files and run the quality gate; nothing is scored."""
    def body(outcome: steps.RunOutcome) -> None:
        report = ingest_landing(data_dir, config_path, outcome.run_id)
        check_quality(report)
        outcome.status = "ingested"
        outcome.message = f"{len(report.files)} new files, {report.rows_loaded} rows loaded"

    return _recorded("ingest", data_dir, body, wait_seconds=wait_seconds)


@flow(name="score")
def score(data_dir: str | None = None, config_path: str | None = None, as_of: str | None = None):
    """Score one day from what is in the warehouse (no ingest, no publication)."""
    def body(outcome: steps.RunOutcome) -> None:
        outcome.as_of = steps.resolve_as_of(resolve_data_dir(data_dir), _date(as_of))
        score_suppliers(data_dir, config_path, outcome.as_of, outcome.run_id)
        outcome.status, outcome.message = "scored", f"scored as of {outcome.as_of}"

    return _recorded("score", data_dir, body)


@flow(name="publish")
def publish(data_dir: str | None = None, config_path: str | None = None, as_of: str | None = None,
            force_reason: str | None = None):
    """Publish a day already scored (the gate applies)."""
    def body(outcome: steps.RunOutcome) -> None:
        outcome.as_of = steps.resolve_as_of(resolve_data_dir(data_dir), _date(as_of))
        published = publish_rankings(data_dir, config_path, outcome.as_of, outcome.run_id, force_reason)
        outcome.status, outcome.message, outcome.changes = published.status, published.message, published.changes

    return _recorded("publish", data_dir, body, force_reason)


@task(cache_policy=NO_CACHE)
def train_risk_model(data_dir: str | None, config_path: str | None, as_of: dt.date) -> dict:
    return steps.train_step(resolve_data_dir(data_dir), load_config(config_path), as_of)


@flow(name="train")
def train(data_dir: str | None = None, config_path: str | None = None, as_of: str | None = None):
    """Retrain the risk model on everything matured by a day, backtest it, register it as current."""
    def body(outcome: steps.RunOutcome) -> None:
        outcome.as_of = steps.resolve_as_of(resolve_data_dir(data_dir), _date(as_of))
        metadata = train_risk_model(data_dir, config_path, outcome.as_of)
        outcome.status, outcome.message = "trained", f"registered risk model {metadata['model_version']}"

    return _recorded("train", data_dir, body)


@flow(name="backfill")
def backfill(first: str, last: str, data_dir: str | None = None, config_path: str | None = None,
             force_reason: str | None = None) -> steps.RunOutcome:
    """Ingest once, then score and publish every day first..last not yet published.

    Resumable: a second call skips the days the first one published.
    """
    def body(outcome: steps.RunOutcome) -> None:
        report = ingest_landing(data_dir, config_path, outcome.run_id)
        check_quality(report)
        done = steps.published_dates(resolve_data_dir(data_dir))
        days = _days(_date(first), _date(last))
        todo = [d for d in days if d not in done]
        for day in todo:
            score_suppliers(data_dir, config_path, day, outcome.run_id)
            publish_rankings(data_dir, config_path, day, outcome.run_id, force_reason)
            outcome.as_of = day
        outcome.status = "published"
        outcome.message = f"published {len(todo)} day(s); {len(days) - len(todo)} already published"

    return _recorded("backfill", data_dir, body, force_reason)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def serve_schedules(data_dir: str, config_path: str | None) -> None:
    """Serve the flows on the schedules of prefect.yaml from this process (`suprel serve`)."""
    from prefect import serve

    parameters = {"data_dir": data_dir, "config_path": config_path}
    serve(
        daily_refresh.to_deployment(name="daily-refresh", cron="0 2 * * *", parameters=parameters),
        train.to_deployment(name="weekly-retrain", cron="0 4 * * 0", parameters=parameters),
        ingest.to_deployment(name="hourly-ingest", cron="15 * * * *", parameters=parameters),
    )
