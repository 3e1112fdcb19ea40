"""Rows waiting for the record they refer to: released when it arrives, quarantined when it never does.

An order whose supplier is unknown, or a shipment or dispute whose order is unknown, is
held in pending.<source> (expectations.REFERENCES) instead of staging. At the end of
every ingest, in dependency order (orders before shipments and disputes, so an order
released now frees its shipments now):
- a row whose reference now exists is validated again, with the reference's context
  (shipped after the order was placed; refund not above the order amount), and staged or
  quarantined;
- a row still waiting is quarantined as `orphan_reference` once both clocks say it is
  late by `quality.pending_reference_days` days: the data's (the referenced source's
  newest updated_at is that far past the row's own updated_at: a stalled orders feed
  stops this clock, so its shipments wait for the feed) and the wall's (the row was first
  seen that long before this ingest: files arrive in any order, and a month of history
  landed in one go, newest first, must not expire rows whose orders are a file away).
Either way the row's original file keeps its ledger balanced: rows_pending goes down,
rows_loaded or rows_quarantined up, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from pipelines.chunk import drop_chunk, start_chunk
from pipelines.contract import SOURCES, Source
from pipelines.expectations import REFERENCES, ROW
from pipelines.layers import STAGED_ROWS, insert_quarantine, insert_typed, raw_text_of_verdict, resolve_pending
from pipelines.results import result, write_results
from pipelines.validate import validate_chunk
from pipelines.warehouse import literal, quote, transaction

PENDING_ONLY = ("pending_reason", "first_seen_at", "first_seen_run_id")
FOUND = "_pending_references_found"  # temp: the references of pending.<source> that staging has


def recheck_pending(con: duckdb.DuckDBPyConnection, days: int, run_id: str, future_limit: datetime,
                    now: datetime) -> tuple[list[dict], list[str]]:
    """Release or expire pending rows of every source; return the results and any GX/SQL mismatches."""
    results, mismatches = [], []
    waiting = dict(con.execute(" UNION ALL ".join(
        f"SELECT '{name}', count(*) FROM pending.{name}" for name in REFERENCES)).fetchall())
    for source in SOURCES.values():
        if not waiting.get(source.name):
            continue
        _find_references(con, source)
        released = _release(con, source, run_id, future_limit, now)
        results += released.results if released else []
        mismatches += released.mismatches if released else []
        results += _expire(con, source, days, run_id, now)
    con.execute(f"DROP TABLE IF EXISTS {FOUND}")
    return results, mismatches


def _waiting(source: Source, found: bool) -> str:
    """pending.<source> rows whose reference exists (found) or does not exist yet, as found
    by the latest `_find_references`."""
    test = "IN" if found else "NOT IN"
    return f"FROM pending.{source.name} WHERE {quote(REFERENCES[source.name].column)} {test} (SELECT key FROM {FOUND})"


def _find_references(con, source: Source) -> None:
    """The references of the rows waiting in pending.<source> that the target now has; the
    rows still waiting after the release are those whose reference is not among them.

    One scan of the target's versions (40M at 10M orders) with the few waiting keys as the
    hash table, where `IN` and `NOT IN (SELECT key FROM staging.<target>)` scanned it twice."""
    ref = REFERENCES[source.name]
    target = SOURCES[ref.target]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {FOUND} AS SELECT DISTINCT {quote(target.key)} AS key "
                f"FROM staging.{target.name} WHERE {quote(target.key)} IN "
                f"(SELECT {quote(ref.column)} FROM pending.{source.name})")


def _release(con, source: Source, run_id: str, future_limit: datetime, now: datetime):
    start_chunk(con)
    con.execute(f"CREATE TEMP TABLE _chunk_typed AS SELECT * EXCLUDE ({', '.join(PENDING_ONLY)}), "
                f"NULL::VARCHAR AS __reason, NULL::VARCHAR AS __column, NULL::VARCHAR AS __detail "
                f"{_waiting(source, found=True)}")
    files = dict(con.execute("SELECT DISTINCT load_id, file_path FROM _chunk_typed").fetchall())
    if not files:
        drop_chunk(con)
        return None
    outcome = validate_chunk(con, source, future_limit, files)
    with transaction(con):
        insert_typed(con, source, None, run_id, now)
        _record_release(con, source, run_id, now)
        insert_quarantine(con, source, raw_text_of_verdict(source), None, run_id, now)
        resolve_pending(con, source)
        write_results(con, run_id, outcome.results, now)
    drop_chunk(con)
    return outcome


def _record_release(con, source: Source, run_id: str, now: datetime) -> None:
    """Note the rows of the chunk just staged in meta.pending_releases: they carry their own
    file's load_seq, older than the files the facts last covered, so the score could not
    tell from load_seq alone that they are new to staging."""
    con.execute("INSERT INTO meta.pending_releases SELECT (SELECT max(load_seq) FROM meta.load_ledger), "
                f"$source, min(updated_at), min(load_seq), count(*), $run_id, $now FROM {STAGED_ROWS} "
                "HAVING count(*) > 0", {"source": source.name, "run_id": run_id, "now": now})


def _expire(con, source: Source, days: int, run_id: str, now: datetime) -> list[dict]:
    """Quarantine rows whose reference has not come in `days` days of the referenced source's data."""
    ref = REFERENCES[source.name]
    clock = con.execute(f"SELECT max(updated_at) FROM staging.{ref.target}").fetchall()[0][0]
    if clock is None:  # the referenced source has no data at all: nothing can be judged late
        return []
    sentence = (f"%s %s is still not in {ref.target}: {ref.target}' newest updated_at ({clock:%Y-%m-%d %H:%M}) "
                f"is more than {days} days (quality.pending_reference_days) past this row's updated_at (%s)")
    start_chunk(con)
    con.execute(f"INSERT INTO _verdict SELECT load_id, line_number, 'quarantined', 'orphan_reference', "
                f"{literal(ref.column)}, printf({literal(sentence)}, {literal(ref.column)}, {quote(ref.column)}, "
                f"updated_at::VARCHAR) {_waiting(source, found=False)} "
                f"AND updated_at < $clock - INTERVAL {int(days)} DAY "
                f"AND first_seen_at <= $now - INTERVAL {int(days)} DAY", {"clock": clock, "now": now})
    expired = con.execute("SELECT load_id, file_path, count(*) FROM _verdict JOIN meta.load_ledger USING (load_id) "
                          "GROUP BY ALL ORDER BY 1").fetchall()
    results = [result(source.name, load_id, path, "reference_found_in_time", ROW, n, n, {"clock": clock})
               for load_id, path, n in expired]
    if expired:
        with transaction(con):
            insert_quarantine(con, source, raw_text_of_verdict(source), None, run_id, now)
            resolve_pending(con, source)
            write_results(con, run_id, results, now)
    drop_chunk(con)
    return results
