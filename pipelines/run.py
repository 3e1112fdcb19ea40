"""The steps of a pipeline run, as plain functions: ingest, check, score, publish.

`pipelines/flows.py` wraps each in a Prefect task and reads top to bottom as the run;
nothing here imports Prefect, so the same steps run in tests and notebooks. Every step
records what it did in `meta.runs`, `meta.publications` and `meta.protection_changes`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field

from pipelines.ingest import IngestReport, ingest
from pipelines.publish import check_gate, previous_snapshot, protection_changes, rankings_table, write_snapshot
from pipelines.publish_metrics import write_evidence_snapshot
from pipelines.scoring import latest_data_day
from pipelines.settings import Config, DataPaths
from pipelines.warehouse import connect, transaction

log = logging.getLogger(__name__)

RUN_TABLES = (
    """CREATE TABLE IF NOT EXISTS meta.runs (
        run_id VARCHAR, flow VARCHAR, as_of_date DATE, started_at TIMESTAMP, finished_at TIMESTAMP,
        status VARCHAR, message VARCHAR, forced_reason VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS meta.publications (
        as_of_date DATE, run_id VARCHAR, published_at TIMESTAMP, suppliers BIGINT,
        protection_changes BIGINT, compared BIGINT, forced_reason VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS meta.protection_changes (
        run_id VARCHAR, as_of_date DATE, supplier_id VARCHAR, was_protected BOOLEAN, is_protected BOOLEAN,
        previous_status VARCHAR, protection_status VARCHAR, reason_codes VARCHAR[])""",
)


class QualityGateFailed(RuntimeError):
    """A critical data-quality failure: the run stops before scoring and publishing."""


@dataclass
class RunOutcome:
    run_id: str
    as_of: dt.date | None = None
    status: str = "started"
    message: str = ""
    changes: list[dict] = field(default_factory=list)


def new_run_id(prefix: str = "run") -> str:
    return f"{prefix}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%fZ}"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def ingest_step(paths: DataPaths, config: Config, run_id: str) -> IngestReport:
    return ingest(paths, config, run_id=run_id)


def quality_gate(report: IngestReport) -> None:
    """Stop the run when the ingest found a critical failure."""
    if not report.passed:
        failures = "; ".join(f"{f['file_path'] or f['source']}: {f['expectation']}" for f in report.critical[:5])
        raise QualityGateFailed(f"data quality gate failed, nothing scored or published: {failures} "
                                f"(see `suprel quality` for details)")


def resolve_as_of(paths: DataPaths, as_of: dt.date | None) -> dt.date:
    """An explicit date, else the newest complete day: yesterday on a live feed, the
    newest day in the data when replaying an older one."""
    if as_of is not None:
        return as_of
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    return min(yesterday, latest_data_day(paths))


def score_step(paths: DataPaths, config: Config, as_of: dt.date, run_id: str):
    """Scores of as_of, with the registered risk model's per-supplier risk when there is one."""
    from pipelines.risk.predict import score_with_risk

    result, _predicted = score_with_risk(paths, config, as_of, run_id)
    return result


def train_step(paths: DataPaths, config: Config, as_of: dt.date) -> dict:
    """Train, backtest and register the risk model on the orders matured by as_of."""
    from pipelines.risk.train import train

    return train(paths, config, as_of)


def publish_step(paths: DataPaths, config: Config, as_of: dt.date, run_id: str,
                 force_reason: str | None = None) -> RunOutcome:
    """Gate, then write the snapshot aside and swap it in; record the publication and changes."""
    con = connect(paths)
    try:
        _ensure_run_tables(con)
        table = rankings_table(con, as_of)
        changed, compared, changes = protection_changes(table, previous_snapshot(paths, as_of))
        check_gate(changed, compared, config.publish.max_protection_change_share, force_reason)
        write_evidence_snapshot(paths, con, as_of)  # first: new rankings always find their evidence
        write_snapshot(paths, table)
        with transaction(con):
            con.execute("DELETE FROM meta.protection_changes WHERE run_id = ? AND as_of_date = ?", [run_id, as_of])
            for c in changes:
                con.execute("INSERT INTO meta.protection_changes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [run_id, as_of, c["supplier_id"], c["was_protected"], c["is_protected"],
                             c["previous_status"], c["protection_status"], c["reason_codes"]])
            con.execute("INSERT INTO meta.publications VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [as_of, run_id, now_utc(), table.num_rows, changed, compared, force_reason])
    finally:
        con.close()
    return RunOutcome(run_id, as_of, "published", f"published {table.num_rows} suppliers as of {as_of}", changes)


def record_run(paths: DataPaths, outcome: RunOutcome, flow: str, started_at: dt.datetime,
               forced_reason: str | None = None) -> None:
    con = connect(paths)
    try:
        _ensure_run_tables(con)
        con.execute("INSERT INTO meta.runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [outcome.run_id, flow, outcome.as_of, started_at, now_utc(), outcome.status,
                     outcome.message, forced_reason])
    finally:
        con.close()


def published_dates(paths: DataPaths) -> set[dt.date]:
    """As-of dates already published (a backfill skips them when it resumes)."""
    if not paths.warehouse.exists():
        return set()
    con = connect(paths)
    try:
        _ensure_run_tables(con)
        return {row[0] for row in con.execute("SELECT DISTINCT as_of_date FROM meta.publications").fetchall()}
    finally:
        con.close()


def change_report(changes: list[dict]) -> str:
    """One line per supplier that gained or lost protection, with its reasons (JSON lines)."""
    return "\n".join(json.dumps(c, default=str) for c in changes)


def _ensure_run_tables(con) -> None:
    for ddl in RUN_TABLES:
        con.execute(ddl)
