"""Ingestion: every new landing file into raw, quarantine and staging, one transaction each.

A file is identified by its bytes' SHA-256. Seen before under the same path: nothing to
do. Seen before under another path: recorded as a duplicate, nothing loaded. New: its
rows go to raw; each row is typed against the contract and lands in staging or, with
the reason, in quarantine; the ledger records the counts. All of that commits together
or not at all, so a crash part-way leaves no trace and the next run loads the file whole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import duckdb

from pipelines.contract import SOURCES, Source
from pipelines.landing import INCOMING, FileRejected, LandingFile, discover, read_incoming
from pipelines.settings import Config, DataPaths
from pipelines.typing_rules import typing_select
from pipelines.warehouse import connect, literal, quote, transaction

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass
class IngestReport:
    """What one ingest run did, file by file."""

    run_id: str
    files: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f["status"] == status)

    @property
    def rows_loaded(self) -> int:
        return sum(f["rows_loaded"] for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f["rows_quarantined"] for f in self.files)


def ingest(paths: DataPaths, config: Config, run_id: str | None = None,
           progress: Progress | None = None) -> IngestReport:
    """Load every landing file not yet in the ledger; return what happened to each."""
    run_id = run_id or "ingest-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    report = IngestReport(run_id)
    con = connect(paths)
    try:
        files = discover(paths.landing, config.ingest.max_file_mb)
        seen = set(con.execute("SELECT file_path, file_sha256 FROM meta.load_ledger").fetchall())
        first_load = dict(con.execute(
            "SELECT file_sha256, min_by(load_id, load_seq) FROM meta.load_ledger "
            "WHERE status IN ('loaded', 'rejected') GROUP BY 1").fetchall())
        new_files = [f for f in files if (f.relative, f.sha256) not in seen]
        for done, landing_file in enumerate(new_files):
            if progress:
                progress("ingest", done, len(new_files))
            entry = _ingest_file(con, landing_file, config, run_id, first_load)
            if entry["status"] in ("loaded", "rejected"):
                first_load.setdefault(landing_file.sha256, entry["load_id"])
            report.files.append(entry)
            _log_entry(entry)
        if progress:
            progress("ingest", len(new_files), len(new_files))
    finally:
        con.close()
    return report


def _ingest_file(con, landing_file: LandingFile, config: Config, run_id: str, first_load: dict) -> dict:
    started = datetime.now(timezone.utc).replace(tzinfo=None)
    clock = time.perf_counter()
    seq = con.execute("SELECT coalesce(max(load_seq), 0) + 1 FROM meta.load_ledger").fetchone()[0]
    entry = {
        "load_id": f"L{seq:07d}", "load_seq": seq, "run_id": run_id, "source": landing_file.source,
        "file_path": landing_file.relative, "file_sha256": landing_file.sha256,
        "file_format": landing_file.file_format, "file_bytes": landing_file.size,
        "status": "loaded", "rows_in": 0, "rows_loaded": 0, "rows_quarantined": 0,
        "error": None, "duplicate_of": None, "started_at": started,
    }
    if landing_file.problem:
        entry.update(status=landing_file.status_if_refused, error=landing_file.problem)
    elif landing_file.sha256 in first_load:
        entry.update(status="duplicate", duplicate_of=first_load[landing_file.sha256],
                     error="same bytes as an earlier file; nothing loaded")
    header = None
    if entry["status"] == "loaded":
        # Reading fills a temp table and may fail over to a slower reader: it stays outside
        # the transaction, because any error inside one aborts it.
        try:
            header = read_incoming(con, landing_file)
        except FileRejected as exc:
            entry.update(status="rejected", error=str(exc))
    with transaction(con):
        if header is not None:
            try:
                entry.update(_load_rows(con, landing_file, header, config, entry))
            except FileRejected as exc:
                entry.update(status="rejected", error=str(exc), rows_in=exc.rows_in,
                             rows_quarantined=exc.rows_in, rows_loaded=0)
        entry.update(finished_at=datetime.now(timezone.utc).replace(tzinfo=None),
                     seconds=time.perf_counter() - clock)
        _write_ledger(con, entry)
        con.execute(f"DROP TABLE IF EXISTS {INCOMING}")
    return entry


def _load_rows(con, landing_file: LandingFile, header: list[str], config: Config, entry: dict) -> dict:
    """raw <- every row; staging <- rows that type; quarantine <- the others, with reasons."""
    source = SOURCES[landing_file.source]
    rows_in = con.execute(f"SELECT count(*) FROM {INCOMING}").fetchone()[0]
    lineage = (f"{literal(entry['load_id'])} AS load_id, {entry['load_seq']} AS load_seq, "
               f"{literal(landing_file.sha256)} AS file_sha256, line_number")
    _insert_raw(con, source, header, lineage)
    missing = [c for c in source.required_names if c not in header]
    if missing:
        message = (f"missing required column{'s' if len(missing) > 1 else ''} "
                   f"{', '.join(missing)} (the header has: {', '.join(header)})")
        _quarantine_all(con, source, header, lineage, landing_file.relative, "file_rejected", message)
        raise FileRejected(message, rows_in=rows_in)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS "
                f"{typing_select(source, set(header), config.ingest.null_tokens, INCOMING)}")
    names = ", ".join(quote(c) for c in source.column_names)
    con.execute(f"INSERT INTO staging.{source.name} SELECT {names}, {lineage} FROM _typed WHERE __reason IS NULL")
    con.execute(
        f"INSERT INTO quarantine.{source.name} SELECT {_text_columns(source, header)}, "
        f"{_extra_columns(source, header)}, i.raw_record, {lineage.replace('line_number', 'i.line_number')}, "
        f"{literal(landing_file.relative)}, t.__column, t.__reason, t.__detail, now()::TIMESTAMP "
        f"FROM {INCOMING} i JOIN (SELECT line_number, __column, __reason, __detail FROM _typed "
        f"WHERE __reason IS NOT NULL) t USING (line_number)"
    )
    quarantined = con.execute("SELECT count(*) FROM _typed WHERE __reason IS NOT NULL").fetchone()[0]
    con.execute("DROP TABLE _typed")
    return {"rows_in": rows_in, "rows_loaded": rows_in - quarantined, "rows_quarantined": quarantined}


def _insert_raw(con, source: Source, header: list[str], lineage: str) -> None:
    con.execute(
        f"INSERT INTO raw.{source.name} SELECT {_text_columns(source, header)}, "
        f"{_extra_columns(source, header)}, raw_record, {lineage} FROM {INCOMING}"
    )


def _quarantine_all(con, source, header, lineage, file_path, reason, detail) -> None:
    """A rejected file's rows, every one, so that rows in = rows quarantined."""
    con.execute(
        f"INSERT INTO quarantine.{source.name} SELECT {_text_columns(source, header)}, "
        f"{_extra_columns(source, header)}, raw_record, {lineage}, {literal(file_path)}, NULL, "
        f"{literal(reason)}, {literal(detail)}, now()::TIMESTAMP FROM {INCOMING}"
    )


def _text_columns(source: Source, header: list[str]) -> str:
    return ", ".join(quote(c) if c in header else "NULL" for c in source.column_names)


def _extra_columns(source: Source, header: list[str]) -> str:
    """Unknown columns, kept as a JSON object (ignored downstream)."""
    extra = [h for h in header if h not in source.column_names]
    if not extra:
        return "NULL"
    return "json_object(" + ", ".join(f"{literal(h)}, {quote(h)}" for h in extra) + ")::VARCHAR"


LEDGER_COLUMNS = (
    "load_id", "load_seq", "run_id", "source", "file_path", "file_sha256", "file_format",
    "file_bytes", "status", "rows_in", "rows_loaded", "rows_quarantined", "error",
    "duplicate_of", "started_at", "finished_at", "seconds",
)


def _write_ledger(con: duckdb.DuckDBPyConnection, entry: dict) -> None:
    placeholders = ", ".join("?" for _ in LEDGER_COLUMNS)
    con.execute(f"INSERT INTO meta.load_ledger ({', '.join(LEDGER_COLUMNS)}) VALUES ({placeholders})",
                [entry[c] for c in LEDGER_COLUMNS])


def _log_entry(entry: dict) -> None:
    if entry["status"] == "loaded":
        log.info("%s: %d rows loaded, %d quarantined", entry["file_path"], entry["rows_loaded"],
                 entry["rows_quarantined"])
    else:
        log.warning("%s: %s: %s", entry["file_path"], entry["status"], entry["error"])
