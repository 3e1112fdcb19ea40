"""Landing files: finding them, fingerprinting them, and reading them as text rows.

Every reader produces the same Arrow table: one row per record with its 1-based physical
`line_number` (header = line 1 for CSV), the original text of records that could not be
split into fields (`raw_record`, with the fields left null), and one string column per
header name. Typing happens later, in SQL, where a failure becomes a quarantine reason
instead of an exception.

Files are read by a private in-memory DuckDB connection into Arrow, never into temp
tables of the warehouse: a temp table per file cost three copies of every row and a
catalog commit per statement (about 85 ms of a 5,600-row file's 100 ms).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.contract import SOURCES, accepted_format
from pipelines.warehouse import literal, quote

IGNORED_NAMES = {".gitkeep"}
_READERS = threading.local()
# Windows separators and control characters have no business in a landing file's name:
# "..\\..\\x.csv" is a traversal attempt elsewhere, a newline forges lines in logs.
UNSAFE_NAME = re.compile(r"[\\\x00-\x1f\x7f]")


class FileRejected(Exception):
    """The whole file is refused; the message says what is wrong and what to do."""

    def __init__(self, message: str, rows_in: int = 0):
        super().__init__(message)
        self.rows_in = rows_in


@dataclass(frozen=True)
class LandingFile:
    """One file found under the landing folder, identified by the SHA-256 of its bytes."""

    path: Path
    relative: str
    source: str | None
    file_format: str | None
    sha256: str
    size: int
    problem: str | None = None  # why it is refused before reading, if it is
    modified_ns: int = 0

    @property
    def status_if_refused(self) -> str:
        """Unknown formats and stray files are skipped; unsafe or unreadable ones rejected."""
        return "skipped" if self.file_format is None or self.source is None else "rejected"


# relative path -> (bytes, modification time in ns, SHA-256) of a file when last hashed
Fingerprints = dict[str, tuple[int, int, str]]


def discover(landing: Path, max_file_mb: int, hashed: Fingerprints | None = None) -> list[LandingFile]:
    """Every file under `landing`, sorted by relative path so that load order is repeatable.

    A file whose size and modification time are those it had when last hashed (`hashed`)
    keeps that SHA-256 without being read again: an incremental run reads the new files,
    not the whole history of the landing zone (7 GB at 10 million orders). Every normal
    write changes the modification time; a file rewritten in place with its old size and
    time forged back is not noticed (as rsync and make would not notice it).
    """
    if not landing.is_dir():
        return []
    root = landing.resolve()
    found = []
    for path in sorted(landing.rglob("*"), key=lambda p: p.relative_to(landing).as_posix()):
        if path.name in IGNORED_NAMES or (path.is_dir() and not path.is_symlink()):
            continue
        found.append(_describe(path, landing, root, max_file_mb, hashed or {}))
    return found


def fingerprints(files: list[LandingFile]) -> pa.Table:
    """(file_path, file_bytes, modified_ns, file_sha256) of the hashed files, for discover's next call."""
    hashed = [f for f in files if f.sha256]
    return pa.table({"file_path": pa.array([f.relative for f in hashed], pa.string()),
                     "file_bytes": pa.array([f.size for f in hashed], pa.int64()),
                     "modified_ns": pa.array([f.modified_ns for f in hashed], pa.int64()),
                     "file_sha256": pa.array([f.sha256 for f in hashed], pa.string())})


def _describe(path: Path, landing: Path, root: Path, max_file_mb: int, hashed: Fingerprints) -> LandingFile:
    relative = path.relative_to(landing).as_posix()
    parts = relative.split("/")
    source = parts[0] if len(parts) > 1 and parts[0] in SOURCES else None
    file_format = accepted_format(path.name)
    problem = None
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(root):
            problem = f"symbolic link pointing outside the landing zone (to {target})"
        elif not target.is_file():
            problem = f"symbolic link to something that is not a file ({target})"
    if problem is None and UNSAFE_NAME.search(relative):
        problem = ("unsafe file name: a backslash or a control character (a path-traversal attempt, or a "
                   "name that breaks logs and reports); rename the file")
    if problem is None and source is None:
        problem = f"not inside a source folder ({', '.join(SOURCES)})"
    elif problem is None and file_format is None:
        problem = "not an accepted format (.csv, .csv.gz, .parquet, .jsonl)"
    if problem and path.is_symlink():
        return LandingFile(path, relative, source, file_format, "", 0, problem)
    stat = path.stat()
    size = stat.st_size
    if problem is None and size > max_file_mb * 1024 * 1024:
        problem = f"{size / 2**20:.0f} MB is over the limit ingest.max_file_mb = {max_file_mb}"
    known_size, known_time, known_sha = hashed.get(relative, (None, None, None))
    sha256 = known_sha if (known_size, known_time) == (size, stat.st_mtime_ns) else sha256_of(path)
    return LandingFile(path, relative, source, file_format, sha256, size, problem, stat.st_mtime_ns)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_rows(landing_file: LandingFile) -> tuple[list[str], pa.Table]:
    """The file's header, normalised, and its records as text (line_number, raw_record, header...)."""
    if landing_file.size == 0:
        raise FileRejected("the file is empty (0 bytes): no header, no rows")
    if landing_file.file_format == "parquet":
        return _read_parquet(landing_file.path)
    text_bytes = _decompressed(landing_file)
    if landing_file.file_format == "jsonl":
        return _table(*_parse_jsonl(_decode(text_bytes)))
    return _read_csv(landing_file, text_bytes)


def file_reader() -> duckdb.DuckDBPyConnection:
    """The thread's file reader: in memory, in UTC, keeping each file's records in order."""
    con = getattr(_READERS, "con", None)
    if con is None:
        con = _READERS.con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET preserve_insertion_order = true")  # line numbers are positions in the result
    return con


def _decompressed(landing_file: LandingFile) -> bytes:
    data = landing_file.path.read_bytes()
    if landing_file.file_format != "csv.gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected(f"not a readable gzip file ({exc}); re-export it compressed with gzip") from exc


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileRejected(
            f"not UTF-8 text: byte 0x{data[exc.start]:02X} at line {line} "
            f"(a Latin-1 or Windows export?); re-export the file as UTF-8"
        ) from exc


def normalise_header(names: list[str]) -> list[str]:
    """Header names trimmed and lower-cased; blanks named by position; duplicates refused."""
    header = [(n or "").strip().lower() or f"column_{i + 1}" for i, n in enumerate(names)]
    seen = set()
    for name in header:
        if name in seen:
            raise FileRejected(f"column '{name}' appears twice in the header")
        seen.add(name)
    return header


def _read_csv(landing_file: LandingFile, data: bytes) -> tuple[list[str], pa.Table]:
    text = _decode(data)
    if not text.strip():
        raise FileRejected("the file has no header line (only whitespace)")
    header = normalise_header(next(csv.reader(io.StringIO(text, newline=""))))
    fast = None if _has_blank_lines(text) else _read_csv_fast(landing_file, header)
    physical_records = text.count("\n") - (1 if text.endswith("\n") else 0)
    if fast is not None and fast.num_rows == physical_records:
        return header, fast
    # Malformed, or records spanning lines or blank lines: the careful reader decides.
    return _table(header, *_parse_csv_records(text, len(header)))


def _read_csv_fast(landing_file: LandingFile, header: list[str]) -> pa.Table | None:
    """DuckDB's parallel reader, or None where it refuses the file (then the careful reader
    decides); the caller accepts its rows only when one record is exactly one line."""
    columns = "{" + ", ".join(f"{literal(n)}: 'VARCHAR'" for n in header) + "}"
    selected = ", ".join(quote(n) for n in header)
    try:  # DuckDB reads the (possibly compressed) original file itself; text was only checked.
        rows = file_reader().sql(
            f"SELECT NULL::VARCHAR AS raw_record, {selected} FROM read_csv({literal(str(landing_file.path))}, "
            f"header = true, auto_detect = false, columns = {columns}, delim = ',', quote = '\"', "
            f"escape = '\"', strict_mode = true, null_padding = false, compression = 'auto')").to_arrow_table()
    except duckdb.Error:
        return None
    return rows.add_column(0, "line_number", pa.array(range(2, rows.num_rows + 2), pa.int64()))


def _has_blank_lines(text: str) -> bool:
    return "\n\n" in text or "\n\r\n" in text


def _parse_csv_records(text: str, width: int) -> tuple[list[int], list[str | None], list[list[str | None]]]:
    """The careful reader: each record's starting line; records of the wrong width kept whole."""
    csv.field_size_limit(1 << 30)
    lines = text.split("\n")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line_numbers, raw_records, fields = [], [], []
    previous_end = 0
    try:
        next(reader)  # header
        previous_end = reader.line_num
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not record:  # a blank line is not a record
                continue
            line_numbers.append(start)
            if len(record) == width:
                raw_records.append(None)
                fields.append(record)
            else:
                raw_records.append("\n".join(lines[start - 1 : previous_end]))
                fields.append([None] * width)
    except csv.Error:
        start = previous_end + 1
        line_numbers.append(start)
        raw_records.append("\n".join(lines[start - 1 :]))
        fields.append([None] * width)
    return line_numbers, raw_records, fields


def _parse_jsonl(text: str) -> tuple[list[str], list[int], list[str | None], list[list[str | None]]]:
    """One JSON object per line; a line that is not one is kept whole as a malformed record."""
    objects: list[tuple[int, dict | None, str]] = []
    header: dict[str, None] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            value = {str(k).strip().lower(): v for k, v in value.items()}
            header.update(dict.fromkeys(value))
        else:
            value = None
        objects.append((number, value, line))
    names = list(header)
    line_numbers = [n for n, _, _ in objects]
    raw_records = [None if v is not None else line for _, v, line in objects]
    fields = [[_json_text(v.get(name)) for name in names] if v is not None else [None] * len(names) for _, v, _ in objects]
    return names, line_numbers, raw_records, fields


def _json_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _table(header: list[str], line_numbers, raw_records, fields) -> tuple[list[str], pa.Table]:
    if not header:
        raise FileRejected("no record in the file is a JSON object: there are no columns to read")
    columns = {"line_number": pa.array(line_numbers, pa.int64()), "raw_record": pa.array(raw_records, pa.string())}
    for index, name in enumerate(header):
        columns[name] = pa.array([row[index] for row in fields], pa.string())
    return header, pa.table(columns)


def _read_parquet(path: Path) -> tuple[list[str], pa.Table]:
    """A Parquet file's columns, whatever their physical types, read back as text."""
    try:
        described = file_reader().execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})").fetchall()
    except duckdb.Error as exc:
        raise FileRejected(f"not a readable Parquet file ({str(exc).splitlines()[0]})") from exc
    names = [row[0] for row in described]
    header = normalise_header(names)
    selected = ", ".join(f"{_parquet_text(quote(n), t)} AS {quote(h)}" for n, h, t in zip(names, header, (r[1] for r in described)))
    rows = file_reader().sql(
        f"SELECT file_row_number + 1 AS line_number, NULL::VARCHAR AS raw_record, {selected} "
        f"FROM read_parquet({literal(str(path))}, file_row_number = true)").to_arrow_table()
    return header, rows


def _parquet_text(column: str, duckdb_type: str) -> str:
    if duckdb_type.startswith(("STRUCT", "MAP")) or duckdb_type.endswith("[]"):
        return f"to_json({column})::VARCHAR"
    if duckdb_type.startswith("TIMESTAMP"):  # ISO-8601; the session is in UTC
        zone = "Z" if "TIME ZONE" in duckdb_type else ""
        return f"strftime({column}, '%Y-%m-%dT%H:%M:%S.%f{zone}')"
    return f"{column}::VARCHAR"
