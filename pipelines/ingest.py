"""Ingestion: new landing files into raw, quarantine, pending and staging, validated on the way.

A file is identified by its bytes' SHA-256. Seen before under the same path: nothing to
do. Seen before under another path: recorded as a duplicate, nothing loaded. New files
are read source by source, in dependency order (suppliers, orders, shipments, disputes,
so that references landed together resolve in one run), into chunks of about
`quality.chunk_rows` rows; each chunk is typed and validated at once (validate.py:
great-expectations runs once per chunk, never once per file, on a worker thread while the
chunk's rows are written). Then each file commits on its own: its raw rows, its staged,
pending and quarantined rows, its validation results and its ledger entry, all or nothing,
so a crash part-way leaves no trace of the file and the next run loads it whole. The run
ends by re-checking pending rows (pending.py) and each source's freshness (batch_checks.py)
and records its verdict in meta.validation_runs: after a critical failure nothing may be
scored or published from the run.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Callable

import duckdb
import pyarrow as pa

from pipelines import batch_checks
from pipelines.chunk import drop_chunk, read_file, rows_per_file, seal_chunk, start_chunk, type_chunk
from pipelines.contract import SOURCES, Source
from pipelines.expectations import CRITICAL, WARNING
from pipelines.ingest_report import IngestReport, log_entry, new_entry, refusal, utcnow
from pipelines.landing import FileRejected, LandingFile, discover, fingerprints
from pipelines.layers import insert_quarantine, insert_raw, insert_typed
from pipelines.pending import recheck_pending
from pipelines.results import result, write_results, write_run
from pipelines.settings import Config, DataPaths
from pipelines.validate import ChunkCheck, ChunkResult, check_chunk
from pipelines.warehouse import connect, transaction

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
SOURCE_ORDER = {name: rank for rank, name in enumerate(SOURCES)}  # the contract lists them in dependency order
# How far the background reader may run ahead of the loader, in bytes of landing files: a few
# daily files, so that one is always ready, while memory stays bounded by the chunk plus this.
READ_AHEAD_BYTES = 64 * 2**20


def ingest(paths: DataPaths, config: Config, run_id: str | None = None,
           progress: Progress | None = None, now: datetime | None = None) -> IngestReport:
    """Load and validate every landing file not yet in the ledger; return what happened."""
    started = utcnow()
    run_id = run_id or "ingest-" + started.strftime("%Y%m%dT%H%M%S%fZ")
    report = IngestReport(run_id, now or started)
    con = connect(paths, memory_limit=config.warehouse.memory_limit)
    # No reader of the layers depends on the order rows went in (versions are ordered by
    # updated_at, load_seq and line_number), and keeping that order held each insert to one
    # thread: at 1M orders the raw inserts took 10.0 s, 5.5 s without it (benchmarks/RESULTS.md).
    con.execute("SET preserve_insertion_order = false")
    gx_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="suprel-gx")
    try:
        new_files = _new_files(con, paths, config)
        loader = _Loader(con, config, report, progress, len(new_files), gx_pool)
        planned = loader.plan(new_files)
        with _ReadAhead([(f, entry) for f, entry, read in planned if read], READ_AHEAD_BYTES) as reads:
            for landing_file, entry, read in planned:
                loader.add(landing_file, entry, reads.next(landing_file) if read else None)
        loader.flush()
        _finish_run(con, config, report, started, len(new_files))
    finally:
        gx_pool.shutdown(wait=True, cancel_futures=True)
        drop_chunk(con)
        con.close()
    report.files.sort(key=lambda entry: entry["load_seq"])
    report.add_seconds("total", (utcnow() - started).total_seconds())
    return report


def _new_files(con, paths: DataPaths, config: Config) -> list[LandingFile]:
    seen = set(con.execute("SELECT file_path, file_sha256 FROM meta.load_ledger").fetchall())
    hashed = {path: (size, modified, sha) for path, size, modified, sha in
              con.execute("SELECT * FROM meta.landing_fingerprints").fetchall()}
    found = discover(paths.landing, config.ingest.max_file_mb, hashed)
    with transaction(con):  # a cache of hashes: right whether or not the files load
        con.execute("DELETE FROM meta.landing_fingerprints")
        hashes = fingerprints(found)  # noqa: F841  (an Arrow table DuckDB reads by name)
        con.execute("INSERT INTO meta.landing_fingerprints SELECT * FROM hashes")
    files = [f for f in found if (f.relative, f.sha256) not in seen]
    return sorted(files, key=lambda f: (SOURCE_ORDER.get(f.source, -1), f.relative))


class _Loader:
    """Reads new files into chunks of one source; validates a chunk, then commits its files one by one."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, report: IngestReport,
                 progress: Progress | None, total: int, gx_pool: Executor):
        self.con, self.quality, self.report, self.gx_pool = con, config.quality, report, gx_pool
        self.null_tokens, self.progress, self.total = config.ingest.null_tokens, progress, total
        self.future_limit = report.batch_clock + timedelta(hours=config.quality.future_tolerance_hours)
        self.first_load = dict(con.execute(
            "SELECT file_sha256, min_by(load_id, load_seq) FROM meta.load_ledger "
            "WHERE status IN ('loaded', 'rejected') GROUP BY 1").fetchall())
        self.next_seq = con.execute("SELECT coalesce(max(load_seq), 0) + 1 FROM meta.load_ledger").fetchall()[0][0]
        self.chunk: list[tuple[LandingFile, dict]] = []
        self.rows: list = []  # the chunk's files' rows, Arrow tables in _chunk_raw's shape

    def plan(self, files: list[LandingFile]) -> list[tuple[LandingFile, dict, bool]]:
        """Each file's ledger entry, in load order, and whether its rows are to be read (False:
        refused on sight, being unsafe, of an unknown format, or bytes already loaded)."""
        planned = []
        for landing_file in files:
            entry = new_entry(landing_file, self.next_seq, self.report.run_id)
            self.next_seq += 1
            if landing_file.problem or landing_file.sha256 in self.first_load:
                entry["duplicate_of"] = None if landing_file.problem else self.first_load[landing_file.sha256]
                planned.append((landing_file, entry, False))
            else:
                self.first_load[landing_file.sha256] = entry["load_id"]
                planned.append((landing_file, entry, True))
        return planned

    def add(self, landing_file: LandingFile, entry: dict, rows: Future | None) -> None:
        """A planned file: committed alone when refused (no rows), else added to the chunk."""
        if rows is None:
            return self._commit_alone(entry, *refusal(landing_file))
        if self.chunk and self.chunk[0][0].source != landing_file.source:
            self.flush()  # a chunk holds one source; the next source's references need this one committed
        if self._read(landing_file, entry, rows) and self._chunk_rows() >= self.quality.chunk_rows:
            self.flush()

    def _read(self, landing_file: LandingFile, entry: dict, rows: Future) -> bool:
        """Add the file's rows to the chunk; False when it cannot be read at all (then it is committed alone)."""
        clock = time.perf_counter()
        try:
            table, problem = rows.result()
        except FileRejected as exc:
            self._commit_alone(entry, "rejected", str(exc), "file_readable")
            return False
        finally:
            self.report.add_seconds("read_wait", time.perf_counter() - clock)
        entry.update(status="rejected" if problem else "loaded", error=problem)
        self.report.add_seconds("read", entry["seconds"])
        self.chunk.append((landing_file, entry))
        self.rows.append(table)
        return True

    def _chunk_rows(self) -> int:
        return sum(rows.num_rows for rows in self.rows)

    def flush(self) -> None:
        """Validate the chunk, judge each file whole, commit the chunk's files in one transaction."""
        if not self.chunk:
            return
        source = SOURCES[self.chunk[0][0].source]
        typed = {e["load_id"]: f.relative for f, e in self.chunk if e["status"] == "loaded"}
        start_chunk(self.con)
        seal_chunk(self.con, self.rows, {e["load_id"]: e["error"] for _, e in self.chunk if e["status"] == "rejected"})
        type_chunk(self.con, source, self.null_tokens)
        check = check_chunk(self.con, source, self.future_limit, typed, self.gx_pool)
        self.report.add_seconds("validate_sql", check.sql_seconds)
        counts = rows_per_file(self.con, [e["load_id"] for _, e in self.chunk])
        history = batch_checks.volume_history(self.con, source.name, self.quality)
        judged = [(entry, self._judge_file(source, entry, counts, history)) for _landing_file, entry in self.chunk]
        outcome = self._commit(source, check, judged, counts)
        if outcome.mismatches:
            self._record([result(source.name, None, None, "gx_agrees_with_sql", CRITICAL, 1, 1,
                                 {"mismatches": outcome.mismatches}, "; ".join(outcome.mismatches))])
        self.chunk, self.rows = [], []
        drop_chunk(self.con)

    def _judge_file(self, source: Source, entry: dict, counts: dict, history: list[int]) -> list[dict]:
        """Batch-level checks; a failing file is rejected whole (its rows quarantined)."""
        load_id, path, mine, recent = entry["load_id"], entry["file_path"], counts[entry["load_id"]], list(history)
        if entry["status"] == "rejected":
            return [batch_checks.batch_result(source.name, load_id, path, "required_columns_present", entry["error"], {})]
        share = batch_checks.failing_share_problem(mine["rows_in"], mine["quarantined"], self.quality)
        volume = None if share else batch_checks.volume_problem(mine["rows_in"], history, source.name, self.quality)
        if share or volume:
            self.con.execute("UPDATE _verdict SET outcome = 'quarantined', reason = 'batch_rejected', column_name = NULL, "
                             "detail = ? WHERE load_id = ? AND outcome <> 'quarantined'", [share or volume, load_id])
            counts[load_id] = rows_per_file(self.con, [load_id])[load_id]
            entry.update(status="rejected", error=share or volume)
        else:
            history[:] = (history + [mine["rows_in"]])[-self.quality.volume_history_files:]
        return [batch_checks.batch_result(source.name, load_id, path, "failing_share_within_limit", share, {}),
                batch_checks.batch_result(source.name, load_id, path, "row_count_in_range", volume,
                                          {"recent_row_counts": recent})]

    def _commit(self, source: Source, check: ChunkCheck, judged: list[tuple[dict, list[dict]]],
                counts: dict) -> ChunkResult:
        """Every file of the chunk in one transaction: each file is all in or all out, and one
        commit per chunk instead of per file saves ~20 ms a file (thousands of daily files).
        The rows are written while GX checks them; its results join them in the transaction."""
        # Rows are stamped with the run's batch clock (first seen, quarantined), the same clock
        # that ages pending rows, so a replay with ingest(now=...) ages them consistently.
        clock, now = time.perf_counter(), self.report.batch_clock
        with transaction(self.con):
            insert_raw(self.con, source, None)
            insert_typed(self.con, source, None, self.report.run_id, now)
            insert_quarantine(self.con, source, "_chunk_raw", None, self.report.run_id, now)
            gx_asked = time.perf_counter()
            outcome = check.result()
            waited = time.perf_counter() - gx_asked
            own: dict[str, list[dict]] = {}
            for r in outcome.results:
                own.setdefault(r["load_id"], []).append(r)
            decided = [(entry, own.get(entry["load_id"], []) + results) for entry, results in judged]
            write_results(self.con, self.report.run_id, [r for _, results in decided for r in results], now)
            for entry, _results in decided:
                mine = counts[entry["load_id"]]
                entry.update(rows_in=mine["rows_in"], rows_loaded=mine["staged"], rows_quarantined=mine["quarantined"],
                             rows_pending=mine["pending"], finished_at=utcnow())
            _write_ledger(self.con, [entry for entry, _results in decided])
        spent = time.perf_counter() - clock
        self.report.add_seconds("validate_gx", outcome.gx_seconds)  # on the worker, beside the inserts
        self.report.add_seconds("gx_wait", waited)
        self.report.add_seconds("commit", spent - waited)
        for entry, results in decided:
            entry["seconds"] += spent / len(decided)
            self._done(entry, results)
        return outcome

    def _commit_alone(self, entry: dict, status: str, error: str, check: str | None) -> None:
        """A file refused before any of its rows were read: its ledger entry and result only."""
        entry.update(status=status, error=error)
        severity = WARNING if status == "skipped" else CRITICAL
        results = [result(entry["source"], entry["load_id"], entry["file_path"], check, severity, 1, 1, {}, error)] if check else []
        with transaction(self.con):
            write_results(self.con, self.report.run_id, results, utcnow())
            entry.update(finished_at=utcnow())
            _write_ledger(self.con, [entry])
        self._done(entry, results)

    def _record(self, results: list[dict]) -> None:
        with transaction(self.con):
            write_results(self.con, self.report.run_id, results, utcnow())
        self.report.results += results

    def _done(self, entry: dict, results: list[dict]) -> None:
        self.report.files.append(entry)
        self.report.results += results
        log_entry(entry)
        if self.progress:
            self.progress("ingest", len(self.report.files), self.total)


class _ReadAhead:
    """Files read in a background thread, in load order, at most `budget` bytes of files ahead of
    the loader, so that reading overlaps validating and committing: DuckDB's CSV reader and
    Arrow release the GIL, and GX, mostly Python, leaves the second core idle otherwise."""

    def __init__(self, files: list[tuple[LandingFile, dict]], budget: int):
        self.todo, self.ahead, self.held, self.budget = deque(files), deque(), 0, budget
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="suprel-read")

    def __enter__(self) -> "_ReadAhead":
        self._fill()
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)  # a failed run stops reading at once

    def next(self, landing_file: LandingFile) -> Future:
        """The file's rows: (Arrow table, problem) when done, or FileRejected."""
        queued, rows = self.ahead.popleft()
        assert queued is landing_file, "files are consumed in the order they were planned"
        self.held -= queued.size
        self._fill()
        return rows

    def _fill(self) -> None:
        while self.todo and (not self.ahead or self.held + self.todo[0][0].size <= self.budget):
            landing_file, entry = self.todo.popleft()
            self.ahead.append((landing_file, self.pool.submit(_read_file_timed, landing_file, entry)))
            self.held += landing_file.size


def _read_file_timed(landing_file: LandingFile, entry: dict) -> tuple[pa.Table, str | None]:
    """read_file, stamping the entry with when its reading started and how long it took."""
    entry["started_at"], clock = utcnow(), time.perf_counter()
    try:
        return read_file(SOURCES[landing_file.source], landing_file, entry)
    finally:
        entry["seconds"] = time.perf_counter() - clock


def _finish_run(con, config: Config, report: IngestReport, started: datetime, files_new: int) -> None:
    clock = time.perf_counter()
    future_limit = report.batch_clock + timedelta(hours=config.quality.future_tolerance_hours)
    pending, mismatches = recheck_pending(con, config.quality.pending_reference_days, report.run_id,
                                          future_limit, report.batch_clock)
    report.add_seconds("pending", time.perf_counter() - clock)
    source_level = batch_checks.source_results(con, config.quality)
    if mismatches:
        source_level.append(result(None, None, None, "gx_agrees_with_sql", CRITICAL, 1, 1,
                                   {"mismatches": mismatches}, "; ".join(mismatches)))
    with transaction(con):
        write_results(con, report.run_id, source_level, utcnow())
        write_run(con, report.run_id, started, utcnow(), report.batch_clock, files_new)
    report.results += pending + source_level
    for failure in report.critical:
        log.error("critical: %s %s: %s", failure["file_path"] or failure["source"], failure["expectation"],
                  failure["observed_value"])


LEDGER_SCHEMA = pa.schema([
    ("load_id", pa.string()), ("load_seq", pa.int64()), ("run_id", pa.string()), ("source", pa.string()),
    ("file_path", pa.string()), ("file_sha256", pa.string()), ("file_format", pa.string()),
    ("file_bytes", pa.int64()), ("status", pa.string()), ("rows_in", pa.int64()), ("rows_loaded", pa.int64()),
    ("rows_quarantined", pa.int64()), ("rows_pending", pa.int64()), ("error", pa.string()),
    ("duplicate_of", pa.string()), ("started_at", pa.timestamp("us")), ("finished_at", pa.timestamp("us")),
    ("seconds", pa.float64()),
])


def _write_ledger(con: duckdb.DuckDBPyConnection, entries: list[dict]) -> None:
    """One insert from an Arrow table for a chunk's files (an INSERT per file cost ~1.5 ms each)."""
    rows = pa.Table.from_pylist([{c: entry[c] for c in LEDGER_SCHEMA.names} for entry in entries],  # noqa: F841
                                schema=LEDGER_SCHEMA)
    columns = ", ".join(LEDGER_SCHEMA.names)
    con.execute(f"INSERT INTO meta.load_ledger ({columns}) SELECT {columns} FROM rows")
