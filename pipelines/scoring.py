"""Scoring in the warehouse: keep the daily facts current, then score one as-of date.

`features.supplier_day_facts` is maintained incrementally: a run computes the facts of
the days since the last run, plus the days a late file could have changed (from the
oldest `updated_at` among rows loaded since), and never the rest of history. Scores,
metrics and components of a date replace that date's previous ones in one transaction,
so a rerun of the same date on the same data gives the same rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass

import duckdb
import ibis
from ibis import _

from models.facts import supplier_day_facts
from models.outcomes import order_outcomes
from models.scorecard import ScoringPolicy, rankings, supplier_metrics, suppliers_as_of
from pipelines.settings import Config, DataPaths
from pipelines.warehouse import connect, transaction

log = logging.getLogger(__name__)

SCHEMA_DDL = (
    "CREATE SCHEMA IF NOT EXISTS features",
    "CREATE SCHEMA IF NOT EXISTS scores",
    """CREATE TABLE IF NOT EXISTS features.supplier_day_facts (
        supplier_id VARCHAR, buyer_id VARCHAR, day DATE, metric VARCHAR, order_id VARCHAR,
        numerator DOUBLE, denominator DOUBLE)""",
    "CREATE TABLE IF NOT EXISTS meta.facts_state (last_day DATE, load_seq BIGINT)",
)
STAGED_EVENTS = ("orders", "shipments", "disputes")


@dataclass(frozen=True)
class ScoreResult:
    as_of: dt.date
    run_id: str
    suppliers: int
    fact_days_computed: int


def policy_from(config: Config) -> ScoringPolicy:
    scoring = {f.name: getattr(config.scoring, f.name) for f in dataclasses.fields(config.scoring)}
    return ScoringPolicy(**scoring, protection=config.protection)


def ibis_backend(con: duckdb.DuckDBPyConnection):
    """Ibis on the pipeline's own connection, so its statements join the run's transaction."""
    # Ibis 12 writes array lambdas as `x -> ...`, which DuckDB 2 accepts only when asked.
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    return ibis.duckdb.from_connection(con)


def ensure_scoring_schema(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in SCHEMA_DDL:
        con.execute(ddl)


def score(paths: DataPaths, config: Config, as_of: dt.date, run_id: str,
          risk: ibis.Table | None = None, model_version: str = "none") -> ScoreResult:
    """Bring the facts up to as_of and store the rankings and metrics of as_of."""
    con = connect(paths, memory_limit=config.warehouse.memory_limit)
    try:
        ensure_scoring_schema(con)
        backend = ibis_backend(con)
        with transaction(con):
            days = update_facts(con, backend, as_of, config.warehouse.facts_batch_orders)
            suppliers = _store_scores(con, backend, config, as_of, run_id, risk, model_version)
        return ScoreResult(as_of, run_id, suppliers, days)
    finally:
        con.close()


def latest_data_day(paths: DataPaths) -> dt.date:
    """The newest day with any staged order version: the default as-of date."""
    con = connect(paths, read_only=True)
    try:
        day = con.execute("SELECT max(updated_at)::DATE FROM staging.orders").fetchall()[0][0]
    finally:
        con.close()
    if day is None:
        raise ValueError("no orders in the warehouse yet: run `suprel ingest` first")
    return day


def top_rankings(paths: DataPaths, as_of: dt.date, limit: int) -> list[dict]:
    """The best-ranked suppliers of a stored date, as dicts (for the terminal)."""
    con = connect(paths, read_only=True)
    try:
        cursor = con.execute("SELECT * FROM scores.supplier_rankings WHERE as_of_date = ? "
                             "ORDER BY rank_overall LIMIT ?", [as_of, limit])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def _staging(backend, name: str) -> ibis.Table:
    return backend.table(name, database="staging")


def update_facts(con: duckdb.DuckDBPyConnection, backend, as_of: dt.date, batch_orders: int = 0) -> int:
    """Compute the facts of the days not yet computed (or touched by late loads) up to as_of.

    A long stretch of days (a first run, a backfill) is computed in batches of consecutive
    days with at most `batch_orders` orders placed in them (0: one batch), so that memory is
    bounded by a batch, not by the history. Batches give the same facts as one pass: the
    facts of a day are the outcomes decided that day, final once the day is over.
    """
    last_day, covered_seq = con.execute("SELECT max(last_day), max(load_seq) FROM meta.facts_state").fetchall()[0]
    newest_seq = con.execute("SELECT coalesce(max(load_seq), 0) FROM meta.load_ledger").fetchall()[0][0]
    first = _first_stale_day(con, last_day, covered_seq or 0)
    if first is None:
        return 0
    through = max(as_of, last_day) if last_day else as_of
    if first > through:
        return 0
    for batch_first, batch_last in _day_batches(con, first, through, batch_orders):
        _file_facts(con, backend, batch_first, batch_last)
    con.execute("DELETE FROM meta.facts_state")
    con.execute("INSERT INTO meta.facts_state VALUES (?, ?)", [through, newest_seq])
    return (through - first).days + 1


def _file_facts(con, backend, first: dt.date, last: dt.date) -> None:
    """Replace the facts of the days first..last with those of the outcomes decided on them."""
    orders, shipments, disputes = (_staging(backend, n) for n in STAGED_EVENTS)
    relevant = _orders_with_events_from(orders, disputes, first)
    outcomes = order_outcomes(orders.semi_join(relevant, "order_id"), shipments.semi_join(relevant, "order_id"),
                              disputes.semi_join(relevant, "order_id"), last)
    # Materialised once: the facts read the outcomes once per metric, and as an expression
    # they would be computed again for each (twelve times the work).
    outcomes = backend.create_table("_order_outcomes", outcomes, temp=True, overwrite=True)
    con.execute("DELETE FROM features.supplier_day_facts WHERE day BETWEEN ? AND ?", [first, last])
    backend.insert("supplier_day_facts", supplier_day_facts(outcomes, first, last), database="features")
    con.execute("DROP TABLE _order_outcomes")
    log.info("facts computed for %s..%s", first, last)


def _day_batches(con, first: dt.date, last: dt.date, batch_orders: int) -> list[tuple[dt.date, dt.date]]:
    """first..last cut into runs of consecutive days, each with at most batch_orders orders
    placed (a day with more is a batch of its own); one batch when batch_orders is 0."""
    if batch_orders <= 0:
        return [(first, last)]
    per_day = dict(con.execute(
        "SELECT placed_at::DATE, count(DISTINCT order_id) FROM staging.orders "
        "WHERE placed_at::DATE BETWEEN ? AND ? GROUP BY 1", [first, last]).fetchall())
    batches, start, held = [], first, 0
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        placed = per_day.get(day, 0)
        if held and held + placed > batch_orders:
            batches.append((start, day - dt.timedelta(days=1)))
            start, held = day, 0
        held += placed
    return [*batches, (start, last)]


def _first_stale_day(con, last_day: dt.date | None, covered_seq: int) -> dt.date | None:
    """The first day whose facts must be (re)computed; None when there is no data at all."""
    union = " UNION ALL ".join(
        f"SELECT min(updated_at)::DATE AS d FROM staging.{n} WHERE load_seq > {int(covered_seq)}" for n in STAGED_EVENTS)
    touched = con.execute(f"SELECT min(d) FROM ({union})").fetchall()[0][0]
    if last_day is None:
        return touched
    following = last_day + dt.timedelta(days=1)
    return min(following, touched) if touched else following


def _orders_with_events_from(orders: ibis.Table, disputes: ibis.Table, first: dt.date) -> ibis.Table:
    """Order ids that can have an outcome decided on or after `first`: placed since, due
    to mature since (from the latest promised dates), or with a dispute updated since."""
    first_ts = ibis.literal(first).cast("timestamp")
    latest_due = ibis.coalesce(orders.promised_delivery_by, orders.promised_ship_by + ibis.interval(days=15))
    maturing = orders.filter((orders.placed_at >= first_ts) | (latest_due + ibis.interval(days=60) >= first))
    disputed = disputes.filter(_.updated_at >= first_ts).select("order_id")
    return ibis.union(maturing.select("order_id"), disputed, distinct=True)


def _previous_decisions(con, backend, as_of: dt.date) -> ibis.Table:
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'scores' "
                         "AND table_name = 'supplier_rankings'").fetchall()[0][0]
    if not exists:
        schema = ibis.schema({"supplier_id": "string", "protection_status": "string", "status_since": "date"})
        return ibis.memtable(schema.to_pyarrow().empty_table())
    ranked = backend.table("supplier_rankings", database="scores")
    latest = ranked.filter(_.as_of_date < as_of).as_of_date.max()
    return ranked.filter(_.as_of_date == latest).select("supplier_id", "protection_status", "status_since")


def _store_scores(con, backend, config: Config, as_of: dt.date, run_id: str, risk, model_version: str) -> int:
    """Store the metrics of as_of, then the rankings built on the stored metrics: computed
    once, not once per use (the expression inlined them several times: 2x the SQL and time)."""
    facts = backend.table("supplier_day_facts", database="features")
    suppliers, policy = _staging(backend, "suppliers"), policy_from(config)
    metrics = supplier_metrics(facts, suppliers_as_of(suppliers, as_of), as_of, policy)
    _replace_date(con, backend, "supplier_metrics", metrics.mutate(run_id=ibis.literal(run_id)), as_of)
    stored = backend.table("supplier_metrics", database="scores").filter(_.as_of_date == as_of).drop("run_id")
    previous = _previous_decisions(con, backend, as_of)
    ranked, _metrics = rankings(facts, suppliers, previous, risk, as_of, policy, metrics=stored)
    ranked = ranked.mutate(run_id=ibis.literal(run_id), model_version=ibis.literal(model_version),
                           config_hash=ibis.literal(config.config_hash))
    _replace_date(con, backend, "supplier_rankings", ranked, as_of)
    return con.execute("SELECT count(*) FROM scores.supplier_rankings WHERE as_of_date = ?", [as_of]).fetchall()[0][0]


def _replace_date(con, backend, name: str, table: ibis.Table, as_of: dt.date) -> None:
    """Replace the as_of date's rows of scores.<name> (creating the table the first time)."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'scores' AND table_name = ?",
                         [name]).fetchall()[0][0]
    if not exists:
        backend.create_table(name, table, database="scores")
        return
    con.execute(f"DELETE FROM scores.{name} WHERE as_of_date = ?", [as_of])
    columns = backend.table(name, database="scores").columns
    backend.insert(name, table.select(*columns), database="scores")
