"""Writing decided rows into the layers: raw, staging, pending, quarantine, and the ledger.

Rows come from the chunk's temp tables (chunk.py): `_chunk_typed` for typed values,
`_verdict` for each row's outcome, and a text table (`_chunk_raw`, or raw.<source> for
rows decided after they were first loaded) for the original content that quarantine keeps.
Callers run these inside one transaction per chunk of files (load_id None: the whole chunk).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from pipelines.chunk import LINEAGE
from pipelines.contract import Source
from pipelines.warehouse import quote

QUARANTINE_COLUMNS = ("extra_columns", "raw_record", *LINEAGE, "file_path", "quarantine_column",
                      "quarantine_reason", "quarantine_detail", "quarantined_at", "quarantine_run_id")


# The rows of the chunk that staging takes: every row not decided otherwise (an anti-join
# against the few others, not a join of the chunk with its whole verdict).
STAGED_ROWS = ("_chunk_typed t ANTI JOIN (SELECT load_id, line_number FROM _verdict WHERE outcome <> 'staged') v "
               "USING (load_id, line_number)")


def _only(load_id: str | None, alias: str) -> str:
    return "" if load_id is None else f" AND {alias}.load_id = $load_id"


def _params(load_id: str | None, **more) -> dict:
    return ({} if load_id is None else {"load_id": load_id}) | more


def insert_raw(con: duckdb.DuckDBPyConnection, source: Source, load_id: str | None) -> None:
    con.execute(f"INSERT INTO raw.{source.name} SELECT * EXCLUDE (file_path) FROM _chunk_raw r WHERE true"
                f"{_only(load_id, 'r')}", _params(load_id))


def insert_typed(con, source: Source, load_id: str | None, run_id: str, now: datetime) -> None:
    """Staged rows into staging.<source>, pending rows into pending.<source>.

    Every row of _chunk_typed has a verdict, and nearly all are staged: staging takes the
    rows not decided otherwise (an anti-join against the few others), not a join of the
    chunk with its whole verdict.
    """
    names = ", ".join(quote(c) for c in (*source.column_names, *LINEAGE))
    picked = ", ".join(f"t.{quote(c)}" for c in (*source.column_names, *LINEAGE))
    con.execute(f"INSERT INTO staging.{source.name} ({names}) SELECT {picked} FROM {STAGED_ROWS} "
                f"WHERE true{_only(load_id, 't')}", _params(load_id))
    con.execute(
        f"INSERT INTO pending.{source.name} ({names}, file_path, pending_reason, first_seen_at, first_seen_run_id) "
        f"SELECT {picked}, t.file_path, v.detail, $now, $run_id FROM _chunk_typed t JOIN "
        f"(SELECT load_id, line_number, detail FROM _verdict WHERE outcome = 'pending') v USING (load_id, line_number) "
        f"WHERE true{_only(load_id, 't')}",
        _params(load_id, now=now, run_id=run_id))


def insert_quarantine(con, source: Source, text_table: str, load_id: str | None, run_id: str, now: datetime) -> None:
    """Quarantined rows with their original text, position and reason."""
    text = ", ".join(quote(c) for c in source.column_names)
    picked = ", ".join(f"r.{quote(c)}" for c in (*source.column_names, "extra_columns", "raw_record", *LINEAGE, "file_path"))
    con.execute(
        f"INSERT INTO quarantine.{source.name} ({text}, {', '.join(QUARANTINE_COLUMNS)}) "
        f"SELECT {picked}, v.column_name, v.reason, v.detail, $now, $run_id FROM {text_table} r "
        f"JOIN _verdict v USING (load_id, line_number) WHERE v.outcome = 'quarantined'{_only(load_id, 'r')}",
        _params(load_id, now=now, run_id=run_id))


def raw_text_of_verdict(source: Source) -> str:
    """raw.<source> rows named in _verdict, with their file path: the text of rows decided late."""
    return (f"(SELECT r.*, l.file_path FROM raw.{source.name} r JOIN meta.load_ledger l USING (load_id) "
            f"WHERE r.load_id IN (SELECT load_id FROM _verdict))")


def resolve_pending(con, source: Source) -> None:
    """Rows of pending.<source> decided in _verdict leave it; their files' ledger counts move."""
    con.execute(f"DELETE FROM pending.{source.name} p USING _verdict v "
                f"WHERE p.load_id = v.load_id AND p.line_number = v.line_number AND v.outcome <> 'pending'")
    con.execute(
        "UPDATE meta.load_ledger l SET rows_pending = l.rows_pending - c.decided, "
        "rows_loaded = l.rows_loaded + c.staged, rows_quarantined = l.rows_quarantined + c.quarantined "
        "FROM (SELECT load_id, count_if(outcome <> 'pending') AS decided, count_if(outcome = 'staged') AS staged, "
        "count_if(outcome = 'quarantined') AS quarantined FROM _verdict GROUP BY 1) c WHERE l.load_id = c.load_id"
    )
