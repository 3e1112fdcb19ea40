"""A chunk: new files of one source read into temp tables, typed, ready to validate together.

great-expectations costs a fixed ~0.05 s per validation and the landing zone holds one
file per source per day, so files are validated in chunks, never one by one. Every row
keeps its file and line. The temp tables (gone with the connection, never committed):

  _chunk_raw    every row of the chunk's files as text, in raw.<source>'s shape + file_path
  _chunk_typed  rows of the files that have every required column, typed (typing_rules.py)
  _verdict      each row's outcome: staged | quarantined | pending, with reason (validate.py)
"""

from __future__ import annotations

import duckdb

from pipelines.contract import Source
from pipelines.landing import INCOMING, LandingFile, read_incoming
from pipelines.typing_rules import typing_select
from pipelines.warehouse import literal, quote

LINEAGE = ("load_id", "load_seq", "file_sha256", "line_number")
CHUNK_TABLES = ("_chunk_raw", "_chunk_typed", "_verdict", "_parsed", "_checked_base", "_checked")


def start_chunk(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    """Empty chunk tables for `source`."""
    drop_chunk(con)
    con.execute(f"CREATE TEMP TABLE _chunk_raw AS SELECT *, NULL::VARCHAR AS file_path FROM raw.{source.name} LIMIT 0")
    con.execute("CREATE TEMP TABLE _verdict (load_id VARCHAR, line_number BIGINT, outcome VARCHAR, "
                "reason VARCHAR, column_name VARCHAR, detail VARCHAR)")


def drop_chunk(con: duckdb.DuckDBPyConnection) -> None:
    existing = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    for table in existing & {*CHUNK_TABLES, INCOMING}:
        con.execute(f"DROP TABLE {table}")


def add_file(con: duckdb.DuckDBPyConnection, source: Source, landing_file: LandingFile, entry: dict) -> str | None:
    """Read one file into _chunk_raw; return why it is rejected whole, if its header is wrong.

    Raises FileRejected when the file cannot be read at all (then nothing was added).
    """
    header = read_incoming(con, landing_file)
    con.execute(
        f"INSERT INTO _chunk_raw SELECT {text_columns(source, header)}, {extra_columns(source, header)}, "
        f"raw_record, {literal(entry['load_id'])}, {entry['load_seq']}, {literal(landing_file.sha256)}, "
        f"line_number, {literal(landing_file.relative)} FROM {INCOMING}"
    )
    con.execute(f"DROP TABLE {INCOMING}")
    missing = [c for c in source.required_names if c not in header]
    if not missing:
        return None
    message = (f"missing required column{'s' if len(missing) > 1 else ''} "
               f"{', '.join(missing)} (the header has: {', '.join(header)}){_delimiter_hint(header)}")
    con.execute(f"INSERT INTO _verdict SELECT load_id, line_number, 'quarantined', 'file_rejected', NULL, "
                f"{literal(message)} FROM _chunk_raw WHERE load_id = ?", [entry["load_id"]])
    return message


def _delimiter_hint(header: list[str]) -> str:
    """A one-column header full of another delimiter: say so, it is the likely mistake."""
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
        if len(header) == 1 and delimiter in header[0]:
            return f"; it is one column holding {name}: the contract's delimiter is a comma"
    return ""


def type_chunk(con: duckdb.DuckDBPyConnection, source: Source, null_tokens: tuple[str, ...]) -> None:
    """_chunk_typed from the rows of _chunk_raw not already decided (files rejected whole)."""
    undecided = "(SELECT * FROM _chunk_raw ANTI JOIN _verdict USING (load_id, line_number))"
    select = typing_select(source, set(source.column_names), null_tokens, undecided, (*LINEAGE, "file_path"))
    con.execute(f"CREATE OR REPLACE TEMP TABLE _chunk_typed AS {select}")


def rows_per_file(con: duckdb.DuckDBPyConnection, load_ids: list[str]) -> dict[str, dict[str, int]]:
    """load_id -> {rows_in, staged, quarantined, pending} from _chunk_raw and _verdict (0 for empty files)."""
    counts = {load_id: {"rows_in": 0, "staged": 0, "quarantined": 0, "pending": 0} for load_id in load_ids}
    wanted = "WHERE load_id IN (SELECT unnest(?::VARCHAR[]))"
    for load_id, n in con.execute(f"SELECT load_id, count(*) FROM _chunk_raw {wanted} GROUP BY 1", [load_ids]).fetchall():
        counts[load_id]["rows_in"] = n
    for load_id, outcome, n in con.execute(
            f"SELECT load_id, outcome, count(*) FROM _verdict {wanted} GROUP BY 1, 2", [load_ids]).fetchall():
        counts[load_id][outcome] = n
    return counts


def text_columns(source: Source, header: list[str]) -> str:
    return ", ".join(quote(c) if c in header else "NULL" for c in source.column_names)


def extra_columns(source: Source, header: list[str]) -> str:
    """Unknown columns, kept as a JSON object (ignored downstream)."""
    extra = [h for h in header if h not in source.column_names]
    if not extra:
        return "NULL"
    return "json_object(" + ", ".join(f"{literal(h)}, {quote(h)}" for h in extra) + ")::VARCHAR"
