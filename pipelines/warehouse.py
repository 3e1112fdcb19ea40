"""The DuckDB warehouse: opening it, and the layers' tables.

Layers (shared/DESIGN.md): raw.<source> (every landed row, as text), quarantine.<source>
(rows refused, with the reason), pending.<source> (typed rows waiting for the record they
refer to), staging.<source> (typed, every version kept) and the view
staging.<source>_current (the winning version per key), plus meta.* bookkeeping.
The pipeline is the warehouse's only writer; DuckDB locks the file against every other
process while a read-write connection is open.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

import duckdb

from pipelines.contract import SOURCES, Column, Source
from pipelines.settings import DataPaths

SQL_TYPES = {
    "string": "VARCHAR", "enum": "VARCHAR", "timestamp": "TIMESTAMP", "date": "DATE",
    "decimal": "DECIMAL(18,2)", "boolean": "BOOLEAN",
}

LAYER_SCHEMAS = ("raw", "quarantine", "pending", "staging", "meta")

# Where each row came from; carried by raw, quarantine and staging rows alike.
LINEAGE_COLUMNS = "load_id VARCHAR, load_seq BIGINT, file_sha256 VARCHAR, line_number BIGINT"


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse open for writing."""


def connect(paths: DataPaths, read_only: bool = False, memory_limit: str = "") -> duckdb.DuckDBPyConnection:
    """A connection to the warehouse file, in UTC, with the layers' schema in place; a run's
    heavy work passes config.warehouse.memory_limit (DuckDB spills past it)."""
    paths.warehouse_dir.mkdir(parents=True, exist_ok=True)
    if read_only and not paths.warehouse.exists():
        raise FileNotFoundError(
            f"no warehouse at {paths.warehouse}: run `suprel ingest --data-dir {paths.root}` first"
        )
    try:
        con = duckdb.connect(str(paths.warehouse), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusy(
                f"the warehouse {paths.warehouse} is open in another process "
                f"(a pipeline run in progress?); try again when it has finished"
            ) from exc
        raise
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute(f"SET memory_limit = {literal(memory_limit)}")
    if not read_only:
        ensure_schema(con)
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit when the block ends, roll back if it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every schema, table and view that does not exist yet (idempotent).

    One transaction: one commit instead of one per statement (a third of a small ingest's time).
    """
    with transaction(con):
        _create_layers(con)


def _create_layers(con: duckdb.DuckDBPyConnection) -> None:
    for schema in LAYER_SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for ddl in (LOAD_LEDGER_DDL, LANDING_FINGERPRINTS_DDL, VALIDATION_RESULTS_DDL, VALIDATION_RUNS_DDL,
                PENDING_RELEASES_DDL):
        con.execute(ddl)
    # Warehouses created before the quality gate get its columns (existing rows: 0 / NULL).
    con.execute("ALTER TABLE meta.load_ledger ADD COLUMN IF NOT EXISTS rows_pending BIGINT DEFAULT 0")
    for source in SOURCES.values():
        text_columns = ", ".join(f"{quote(c.name)} VARCHAR" for c in source.columns)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS raw.{source.name} ({text_columns}, "
            f"extra_columns VARCHAR, raw_record VARCHAR, {LINEAGE_COLUMNS})"
        )
        con.execute(
            f"CREATE TABLE IF NOT EXISTS quarantine.{source.name} ({text_columns}, "
            f"extra_columns VARCHAR, raw_record VARCHAR, {LINEAGE_COLUMNS}, "
            f"file_path VARCHAR, quarantine_column VARCHAR, quarantine_reason VARCHAR, "
            f"quarantine_detail VARCHAR, "
            f"quarantined_at TIMESTAMP)"
        )
        con.execute(f"ALTER TABLE quarantine.{source.name} ADD COLUMN IF NOT EXISTS quarantine_run_id VARCHAR")
        typed_columns = ", ".join(_typed_column(c) for c in source.columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS staging.{source.name} ({typed_columns}, {LINEAGE_COLUMNS})")
        con.execute(
            f"CREATE TABLE IF NOT EXISTS pending.{source.name} ({typed_columns}, {LINEAGE_COLUMNS}, "
            f"file_path VARCHAR, pending_reason VARCHAR, first_seen_at TIMESTAMP, first_seen_run_id VARCHAR)"
        )
        con.execute(current_view_sql(source))


LOAD_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS meta.load_ledger (
    load_id VARCHAR,            -- one per file seen; raw/staging rows carry it
    load_seq BIGINT,            -- ingestion order: breaks updated_at ties (last ingested wins)
    run_id VARCHAR,
    source VARCHAR,
    file_path VARCHAR,          -- relative to the landing folder
    file_sha256 VARCHAR,        -- the file's identity
    file_format VARCHAR,
    file_bytes BIGINT,
    status VARCHAR,             -- loaded | rejected | skipped | duplicate (rejected fails the run)
    rows_in BIGINT,
    rows_loaded BIGINT,
    rows_quarantined BIGINT,
    rows_pending BIGINT DEFAULT 0,  -- held in pending.<source>; rows_in = loaded + quarantined + pending
    error VARCHAR,
    duplicate_of VARCHAR,       -- load_id of the earlier file with the same bytes
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    seconds DOUBLE
)
"""

# The SHA-256 of each landing file as last hashed, with the size and modification time it
# had then: discovery hashes only files that are new or changed (landing.discover).
LANDING_FINGERPRINTS_DDL = """
CREATE TABLE IF NOT EXISTS meta.landing_fingerprints (
    file_path VARCHAR, file_bytes BIGINT, modified_ns BIGINT, file_sha256 VARCHAR
)
"""

# Rows released from pending.<source> into staging keep the load_seq of the file they came
# in, which the facts may already have covered: the score recomputes from the earliest day a
# release brought in since (pipelines/scoring.first_stale_day), and reads its order spans
# again from the earliest load_seq (_update_order_spans).
PENDING_RELEASES_DDL = """
CREATE TABLE IF NOT EXISTS meta.pending_releases (
    released_seq BIGINT,        -- the newest load_seq in the ledger when the rows were staged
    source VARCHAR,
    earliest_updated_at TIMESTAMP,  -- of the rows staged
    earliest_load_seq BIGINT,       -- of the rows staged
    rows_staged BIGINT,
    run_id VARCHAR,
    released_at TIMESTAMP
)
"""

VALIDATION_RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS meta.validation_results (
    run_id VARCHAR,
    source VARCHAR,
    load_id VARCHAR,            -- the file (batch) judged; NULL for a source-level check
    file_path VARCHAR,
    expectation VARCHAR,        -- pipelines/expectations.py names row-level ones
    severity VARCHAR,           -- row (failing rows quarantined) | critical (fails the run) | warning
    success BOOLEAN,
    unexpected_count BIGINT,
    element_count BIGINT,
    observed_value VARCHAR,
    details VARCHAR,            -- JSON; for row-level checks, the great-expectations result of the chunk
    validated_at TIMESTAMP
)
"""

VALIDATION_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS meta.validation_runs (
    run_id VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    batch_clock TIMESTAMP,      -- 'now' for the future-timestamp check
    files_new BIGINT,
    passed BOOLEAN,             -- false: a critical failure; nothing may be scored or published from this run
    critical_failures BIGINT,
    warnings BIGINT
)
"""


def current_view_sql(source: Source) -> str:
    """The view of the winning version per key: greatest updated_at, ties to the last load."""
    return (
        f"CREATE OR REPLACE VIEW staging.{source.name}_current AS "
        f"SELECT * EXCLUDE (version_rank) FROM ("
        f"  SELECT *, row_number() OVER (PARTITION BY {source.key} "
        f"    ORDER BY updated_at DESC, load_seq DESC, line_number DESC) AS version_rank "
        f"  FROM staging.{source.name}) WHERE version_rank = 1"
    )


def _typed_column(column: Column) -> str:
    return f"{quote(column.name)} {SQL_TYPES[column.kind]}"


def quote(identifier: str) -> str:
    """A DuckDB identifier, quoted so that any upstream column name is safe in SQL."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A DuckDB string literal."""
    return "'" + value.replace("'", "''") + "'"


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether schema.table exists (a warehouse from before it, or a read-only session, may lack it)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                            [schema, table]).fetchall()[0][0])


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every table in the layers, keyed schema.table."""
    rows = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        f"WHERE schema_name IN ({', '.join(literal(s) for s in LAYER_SCHEMAS)}) ORDER BY 1, 2"
    ).fetchall()
    return {
        f"{schema}.{table}": con.execute(f"SELECT count(*) FROM {schema}.{quote(table)}").fetchall()[0][0]
        for schema, table in rows
        if re.fullmatch(r"\w+", table)
    }
