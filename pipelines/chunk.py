"""A chunk: new files of one source read as text rows, typed, ready to validate together.

great-expectations costs a fixed ~0.05 s per validation and the landing zone holds one
file per source per day, so files are validated in chunks, never one by one. Every row
keeps its file and line. The chunk's tables (gone with the connection, never committed):

  _chunk_raw    every row of the chunk's files as text, in raw.<source>'s shape + file_path:
                an Arrow table registered as a view, so rows are not copied into DuckDB
                until they are committed to raw.<source>
  _chunk_typed  rows of the files that have every required column, typed (typing_rules.py)
  _verdict      each row's outcome: staged | quarantined | pending, with reason (validate.py)
  _repeats      lines identical to an earlier line of their file (validate.py)
  _checked      the other typed lines, narrowed to the columns the rules read (validate.py)

_ref_current (validate.py) outlives the chunk: the current versions of a referenced source,
built once for a run's many chunks of a dependent source.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipelines.contract import Source
from pipelines.landing import LandingFile, file_reader, read_rows
from pipelines.typing_rules import typing_select
from pipelines.warehouse import literal, quote

LINEAGE = ("load_id", "load_seq", "file_sha256", "line_number")
CHUNK_VIEW = "_chunk_raw"
CHUNK_TABLES = ("_chunk_typed", "_verdict", "_shared_versions", "_repeats", "_checked")


def start_chunk(con: duckdb.DuckDBPyConnection) -> None:
    """An empty _verdict, and no chunk rows yet."""
    drop_chunk(con)
    con.execute("CREATE TEMP TABLE _verdict (load_id VARCHAR, line_number BIGINT, outcome VARCHAR, "
                "reason VARCHAR, column_name VARCHAR, detail VARCHAR)")


def drop_chunk(con: duckdb.DuckDBPyConnection) -> None:
    con.unregister(CHUNK_VIEW)
    existing = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    for table in existing & set(CHUNK_TABLES):
        con.execute(f"DROP TABLE {table}")


def read_file(source: Source, landing_file: LandingFile, entry: dict) -> tuple[pa.Table, str | None]:
    """One file's rows in _chunk_raw's shape, and why the file is rejected whole, if its header is wrong.

    Raises FileRejected when the file cannot be read at all.
    """
    header, rows = read_rows(landing_file)
    shaped = (_shaped_by_duckdb if any(h not in source.column_names for h in header) else _shaped)(
        source, header, rows, entry, landing_file).cast(chunk_schema(source))
    missing = [c for c in source.required_names if c not in header]
    if not missing:
        return shaped, None
    return shaped, (f"missing required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (the header has: {', '.join(header)}){_delimiter_hint(header)}")


def chunk_schema(source: Source) -> pa.Schema:
    """_chunk_raw's columns: raw.<source>'s, then file_path."""
    text = [pa.field(name, pa.string()) for name in (*source.column_names, "extra_columns", "raw_record")]
    return pa.schema([*text, pa.field("load_id", pa.string()), pa.field("load_seq", pa.int64()),
                      pa.field("file_sha256", pa.string()), pa.field("line_number", pa.int64()),
                      pa.field("file_path", pa.string())])


def _shaped(source: Source, header: list[str], rows: pa.Table, entry: dict, landing_file: LandingFile) -> pa.Table:
    """A file without unknown columns, shaped in Arrow: the columns picked, the file's constants added
    (a second DuckDB query per file cost more than reading the file)."""
    n = rows.num_rows
    missing = pa.nulls(n, pa.string())
    columns = [rows.column(c) if c in header else missing for c in source.column_names]
    constants = [pa.repeat(pa.scalar(v, t), n) for v, t in (
        (entry["load_id"], pa.string()), (int(entry["load_seq"]), pa.int64()), (landing_file.sha256, pa.string()))]
    columns += [missing, rows.column("raw_record"), *constants, rows.column("line_number"),
                pa.repeat(pa.scalar(landing_file.relative, pa.string()), n)]
    return pa.Table.from_arrays(columns, schema=chunk_schema(source))


def _shaped_by_duckdb(source: Source, header: list[str], rows: pa.Table, entry: dict,
                      landing_file: LandingFile) -> pa.Table:
    """A file with unknown columns: they are kept as one JSON object (extra_columns)."""
    lineage = (f"{literal(entry['load_id'])} AS load_id, {int(entry['load_seq'])}::BIGINT AS load_seq, "
               f"{literal(landing_file.sha256)} AS file_sha256, line_number, {literal(landing_file.relative)} AS file_path")
    reader = file_reader()
    reader.register("_file_rows", rows)
    try:
        return reader.sql(f"SELECT {text_columns(source, header)}, {extra_columns(source, header)} AS extra_columns, "
                          f"raw_record, {lineage} FROM _file_rows").to_arrow_table()
    finally:
        reader.unregister("_file_rows")


def seal_chunk(con: duckdb.DuckDBPyConnection, files: list[pa.Table], rejected: dict[str, str]) -> None:
    """The files' rows become _chunk_raw; the rows of files rejected whole (load_id -> why) are quarantined."""
    con.register(CHUNK_VIEW, pa.concat_tables(files))
    for load_id, message in rejected.items():
        con.execute(f"INSERT INTO _verdict SELECT load_id, line_number, 'quarantined', 'file_rejected', NULL, ? "
                    f"FROM {CHUNK_VIEW} WHERE load_id = ?", [message, load_id])


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
    return ", ".join(quote(c) if c in header else f"NULL::VARCHAR AS {quote(c)}" for c in source.column_names)


def extra_columns(source: Source, header: list[str]) -> str:
    """Unknown columns, kept as a JSON object (ignored downstream)."""
    extra = [h for h in header if h not in source.column_names]
    if not extra:
        return "NULL::VARCHAR"
    return "json_object(" + ", ".join(f"{literal(h)}, {quote(h)}" for h in extra) + ")::VARCHAR"
