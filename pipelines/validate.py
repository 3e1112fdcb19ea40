"""Validating a chunk of typed rows: each row's outcome, and one result per file and expectation.

Reads `_chunk_typed` (chunk.py); appends to `_verdict` one row per typed row:
- typing failures (typing_rules.py) are quarantined with their reason;
- an exact repeat of an earlier line of the same file (every contract column equal after
  typing) is quarantined as `duplicate_row`: the first line is kept, so staging holds each
  version once and rows in = loaded + quarantined + pending still holds;
- the others are checked against the source's expectations (expectations.py) in SQL; the
  first failing rule's reason quarantines the row;
- a row that passes but refers to an unknown record (expectations.REFERENCES) is pending;
- the rest are staged.
GX then runs the same suite once over the checked rows and must count what SQL counted. It
may run on a worker thread (`check_chunk`) while the caller writes the decided rows: GX is
Python and DuckDB's inserts release the GIL, so the two share the machine's cores.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from pipelines.contract import SOURCES, Source
from pipelines.expectations import FUTURE_LIMIT, REFERENCES, ROW, SUITES, Expectation, Reference
from pipelines.gx_validation import run_suite
from pipelines.results import result
from pipelines.warehouse import literal, quote


@dataclass
class ChunkResult:
    """Per-file results for meta.validation_results, and where the time went."""

    results: list[dict] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)  # rules where GX and SQL disagree
    sql_seconds: float = 0.0
    gx_seconds: float = 0.0


@dataclass
class ChunkCheck:
    """A chunk whose rows are decided (in `_verdict`), and GX's run over them, maybe still going."""

    source: Source
    suite: tuple[Expectation, ...]
    files: dict[str, str]
    counts: dict[str, dict]
    sql_seconds: float
    gx: Future  # (GX's results or None, seconds GX took)

    def result(self) -> ChunkResult:
        """Waits for GX; then one result per file and rule, and the rules where GX and SQL disagree."""
        gx, gx_seconds = self.gx.result()
        outcome = ChunkResult(sql_seconds=self.sql_seconds, gx_seconds=gx_seconds)
        for load_id, path in self.files.items():
            outcome.results += _file_results(self.source, load_id, path, self.suite, self.counts.get(load_id), gx)
        outcome.mismatches = _mismatches(self.suite, self.counts, gx)
        return outcome


def validate_chunk(con: duckdb.DuckDBPyConnection, source: Source, future_limit: datetime,
                   files: dict[str, str]) -> ChunkResult:
    """Decide every row of `_chunk_typed`; `files` maps the chunk's typed load_ids to paths."""
    return check_chunk(con, source, future_limit, files).result()


def check_chunk(con: duckdb.DuckDBPyConnection, source: Source, future_limit: datetime,
                files: dict[str, str], gx_pool: Executor | None = None) -> ChunkCheck:
    """validate_chunk with GX submitted to `gx_pool` (run here without one): the rows' verdicts
    are in `_verdict` on return, GX's results come with ChunkCheck.result()."""
    clock = time.perf_counter()
    suite = tuple(_bind(e, future_limit) for e in SUITES[source.name])
    con.execute("INSERT INTO _verdict SELECT load_id, line_number, 'quarantined', __reason, __column, __detail "
                "FROM _chunk_typed WHERE __reason IS NOT NULL")
    _set_aside_repeats(con, source)
    _build_checked(con, source, suite)
    _decide(con, source, suite)
    counts = _count_per_file(con, suite)
    frame = _frame(con, _gx_columns(suite))  # read on this thread: the worker never touches the connection
    sql_seconds = time.perf_counter() - clock
    if gx_pool is None:
        gx = Future()
        gx.set_result(_run_gx(source, frame, suite, future_limit))
    else:
        gx = gx_pool.submit(_run_gx, source, frame, suite, future_limit)
    return ChunkCheck(source, suite, files, counts, sql_seconds, gx)


def _bind(expectation: Expectation, future_limit: datetime) -> Expectation:
    """The expectation with the batch clock's limit written into its SQL."""
    limit = f"TIMESTAMP {literal(future_limit.isoformat(sep=' '))}"
    return dataclasses.replace(expectation, fails=expectation.fails.replace(FUTURE_LIMIT, limit),
                               detail=expectation.detail.replace(FUTURE_LIMIT, limit))


def _set_aside_repeats(con, source: Source) -> None:
    """_repeats: typed lines equal, in every contract column, to an earlier line of their file.

    Equal lines share load_id, key and updated_at (both required, so never NULL in typed
    rows): only lines whose (load_id, key, updated_at) occurs more than once are compared
    column by column, instead of partitioning every row of the chunk by all its columns.
    """
    columns = ", ".join(quote(c) for c in source.column_names)
    version = _version(source)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _shared_versions AS SELECT {version} FROM _chunk_typed "
                f"WHERE __reason IS NULL GROUP BY {version} HAVING count(*) > 1")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _repeats AS SELECT load_id, line_number, __first_line FROM ("
                f"SELECT load_id, line_number, min(line_number) OVER (PARTITION BY load_id, {columns}) AS __first_line "
                f"FROM _chunk_typed SEMI JOIN _shared_versions USING ({version}) WHERE __reason IS NULL) "
                f"WHERE __first_line < line_number")
    con.execute("INSERT INTO _verdict SELECT load_id, line_number, 'quarantined', 'duplicate_row', NULL, "
                "printf('identical to line %d of the same file', __first_line) FROM _repeats")


def _version(source: Source) -> str:
    """The columns naming one version of a record within a file: load_id, key, updated_at."""
    return f"load_id, {quote(source.key)}, updated_at"


def _read_columns(source: Source, suite: tuple[Expectation, ...]) -> list[str]:
    """The source's columns that the rules, their sentences, GX or the reference read."""
    ref = REFERENCES.get(source.name)
    named = {source.key, "updated_at", *([ref.column] if ref else []), *_gx_columns(suite)}
    for e in suite:
        text = e.fails + " " + e.detail
        named |= {c for c in source.column_names if quote(c) in text}
    return [c for c in source.column_names if c in named]


def _build_checked(con, source: Source, suite: tuple[Expectation, ...]) -> None:
    """_checked: one row per kept line (the columns the rules read), its referenced record's context,
    whether it passes the row rules, and the version counts. One statement, no wide copies."""
    kept = ", ".join(f"p.{quote(c)}" for c in ("load_id", "line_number", *_read_columns(source, suite)))
    lines = "_chunk_typed p ANTI JOIN _repeats USING (load_id, line_number)"
    ref = REFERENCES.get(source.name)
    if ref is None:
        base = f"SELECT {kept}, true AS __ref_found FROM {lines} WHERE p.__reason IS NULL"
    else:
        current = _referenced_current(con, source, ref)
        context = "".join(f"ref.{quote(alias)}, " for alias in ref.context)
        base = (f"SELECT {kept}, {context}ref.__ref_key IS NOT NULL AS __ref_found FROM {lines} "
                f"LEFT JOIN ({current}) ref ON ref.__ref_key = p.{quote(ref.column)} WHERE p.__reason IS NULL")
    others = " OR ".join(f"coalesce({e.fails}, false)" for e in suite[:-1])
    # __versions: passing rows sharing the row's load_id, key and updated_at. Only the versions
    # found more than once among the typed rows (_shared_versions, few) need counting; any
    # other row is alone in its version.
    version = _version(source)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS "
                f"WITH c AS MATERIALIZED (SELECT *, NOT ({others}) AS passes_row_rules FROM ({base})), "
                f"v AS (SELECT {version}, sum(passes_row_rules::INTEGER) AS __versions FROM c "
                f"SEMI JOIN _shared_versions USING ({version}) GROUP BY ALL) "
                f"SELECT c.*, coalesce(v.__versions, c.passes_row_rules::INTEGER) AS __versions "
                f"FROM c LEFT JOIN v USING ({version})")


# The referenced record's current version: greatest updated_at, ties to the last load, then line.
# One HUGEINT orders versions as that triple does (a file's line numbers stay below 2^32: files
# are capped at ingest.max_file_mb = 2 GB) at half the CPU of comparing structs. An aggregate,
# not a window: arg_max_null keeps a NULL value where the version has one.
LATEST = "(epoch_us(updated_at)::HUGEINT << 64) + (load_seq::HUGEINT << 32) + line_number"
REF_CACHE = "_ref_current"  # temp, kept across chunks of a run (not a chunk table: chunk.py)
REF_CACHE_AFTER = 2  # lookups of one state of the target before a chunk builds its whole table


def _referenced_current(con, source: Source, ref: Reference) -> str:
    """SQL of the current version of each record the chunk's rows refer to: __ref_key and the context.

    Each chunk looking its keys up in staging.<target> scans every version of the target (40M at
    10M orders) for ~50k keys: the cost of a run grew with chunks x history. Within a run the target
    does not change between chunks of its dependents (sources load in dependency order), so from
    the third chunk that sees the same state of the target, the current version of every target key
    is built once into REF_CACHE (3-4 lookups' cost at 3M orders) and later chunks join only that. Staging is
    append-only, so its row count tells whether the target changed since (pending rows released).
    An incremental day's one or two chunks per source still look up only their keys.
    """
    target = SOURCES[ref.target]
    key = quote(target.key)
    picked = "".join(f", arg_max_null({quote(column)}, {LATEST}) AS {quote(alias)}" for alias, column in ref.context.items())
    wanted = f"IN (SELECT {quote(ref.column)} FROM _chunk_typed WHERE __reason IS NULL)"
    versions = con.execute(f"SELECT count(*) FROM staging.{target.name}").fetchall()[0][0]
    state = f"{source.name}:{versions}"
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _ref_current_state (state VARCHAR, lookups INTEGER, built BOOLEAN)")
    seen = con.execute("SELECT lookups, built FROM _ref_current_state WHERE state = ?", [state]).fetchall()
    lookups, built = seen[0] if seen else (0, False)
    if not seen:
        con.execute(f"DROP TABLE IF EXISTS {REF_CACHE}")
        con.execute("DELETE FROM _ref_current_state")
        con.execute("INSERT INTO _ref_current_state VALUES (?, 0, false)", [state])
    if not built and lookups >= REF_CACHE_AFTER:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {REF_CACHE} AS SELECT {key} AS __ref_key{picked} "
                    f"FROM staging.{target.name} GROUP BY {key}")
        con.execute("UPDATE _ref_current_state SET built = true")
        built = True
    con.execute("UPDATE _ref_current_state SET lookups = lookups + 1")
    if built:
        return f"SELECT * FROM {REF_CACHE} WHERE __ref_key {wanted}"
    return f"SELECT {key} AS __ref_key{picked} FROM staging.{target.name} WHERE {key} {wanted} GROUP BY {key}"


def _decide(con, source: Source, suite: tuple[Expectation, ...]) -> None:
    """Each kept row: quarantined at its first failing rule, else pending or staged."""
    reason = " ".join(f"WHEN {e.fails} THEN {literal(e.reason)}" for e in suite)
    column = " ".join(f"WHEN {e.fails} THEN {literal(e.column)}" for e in suite)
    detail = " ".join(f"WHEN {e.fails} THEN {e.detail}" for e in suite)
    ref = REFERENCES.get(source.name)
    if ref:
        waiting = f"printf('%s %s is not in {ref.target} yet', {literal(ref.column)}, {quote(ref.column)})"
        reason += " WHEN NOT __ref_found THEN 'awaiting_reference'"
        column += f" WHEN NOT __ref_found THEN {literal(ref.column)}"
        detail += f" WHEN NOT __ref_found THEN {waiting}"
    con.execute(
        "INSERT INTO _verdict SELECT load_id, line_number, CASE WHEN reason IS NULL THEN 'staged' "
        "WHEN reason = 'awaiting_reference' THEN 'pending' ELSE 'quarantined' END, reason, column_name, detail "
        f"FROM (SELECT load_id, line_number, CASE {reason} END AS reason, CASE {column} END AS column_name, "
        f"CASE {detail} END AS detail FROM _checked)"
    )


def _count_per_file(con, suite: tuple[Expectation, ...]) -> dict[str, dict]:
    """load_id -> typed rows, typing failures by reason, repeats, checked rows, failures per rule."""
    counts: dict[str, dict] = {}
    # Ordered: by_reason's keys are stored in this order, and a hash aggregate's order varies run to run.
    typed = "SELECT load_id, __reason, count(*) FROM _chunk_typed GROUP BY ALL ORDER BY ALL"
    for load_id, reason, n in con.execute(typed).fetchall():
        entry = counts.setdefault(load_id, {"typed": 0, "untyped": {}, "repeats": 0, "checked": 0, "failing": [0] * len(suite)})
        entry["typed"] += n
        if reason is not None:
            entry["untyped"][reason] = n
    for load_id, repeats in con.execute("SELECT load_id, count(*) FROM _repeats GROUP BY 1").fetchall():
        counts[load_id]["repeats"] = repeats
    failing = ", ".join(f"count_if(coalesce({e.fails}, false))" for e in suite)
    for load_id, checked, *per_rule in con.execute(f"SELECT load_id, count(*), {failing} FROM _checked GROUP BY 1").fetchall():
        counts[load_id].update(checked=checked, failing=per_rule)
    return counts


def _run_gx(source: Source, frame, suite: tuple[Expectation, ...],
            future_limit: datetime) -> tuple[dict[str, dict] | None, float]:
    """GX over the checked rows' frame (None when there are none: GX has nothing to say), and its seconds."""
    clock = time.perf_counter()
    found = None if frame.empty else run_suite(source.name, frame, suite, future_limit)
    return found, time.perf_counter() - clock


def _frame(con, columns: list[str]):
    """The checked rows' `columns` in file order as pandas, through Arrow: half the CPU of .df().

    Decimals become doubles in SQL, as .df() makes them (Arrow would give Python Decimals).
    """
    relation = con.sql(f"SELECT {', '.join(quote(c) for c in columns)} FROM _checked")
    picked = ", ".join(f"CAST({quote(c)} AS DOUBLE) AS {quote(c)}" if str(t).startswith("DECIMAL") else quote(c)
                       for c, t in zip(relation.columns, relation.types))
    ordered = con.sql(f"SELECT {picked} FROM _checked ORDER BY load_id, line_number")
    return ordered.to_arrow_table().to_pandas(date_as_object=False)


def _gx_columns(suite: tuple[Expectation, ...]) -> list[str]:
    """The columns GX reads (its frame holds no others: converting unread text to pandas was a third of its time)."""
    named = {"passes_row_rules": None}
    for e in suite:
        kwargs = e.gx_kwargs
        named |= dict.fromkeys([kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs])
        named |= dict.fromkeys(kwargs.get("column_list", ()))
    return list(named)


def _file_results(source: Source, load_id: str, path: str, suite, counts: dict | None, gx) -> list[dict]:
    """The file's row-level results: contract typing, repeats, then one per expectation."""
    counts = counts or {"typed": 0, "untyped": {}, "repeats": 0, "checked": 0, "failing": [0] * len(suite)}
    untyped = sum(counts["untyped"].values())
    rows = [
        result(source.name, load_id, path, "contract_typing", ROW, untyped, counts["typed"], {"by_reason": counts["untyped"]}),
        result(source.name, load_id, path, "no_repeated_rows", ROW, counts["repeats"], counts["typed"] - untyped, {}),
    ]
    for expectation, failing in zip(suite, counts["failing"]):
        details = {"rule": expectation.gx_type, "gx_chunk": (gx or {}).get(expectation.name, "no rows to validate")}
        rows.append(result(source.name, load_id, path, expectation.name, ROW, failing, counts["checked"], details))
    return rows


def _mismatches(suite, counts: dict[str, dict], gx: dict[str, dict] | None) -> list[str]:
    """Rules whose GX count differs from the SQL count over the chunk: the gate is not to be trusted."""
    found = []
    for index, expectation in enumerate(suite):
        in_sql = sum(c["failing"][index] for c in counts.values())
        in_gx = 0 if gx is None else gx.get(expectation.name, {}).get("unexpected_count")
        if in_sql != in_gx:
            problem = (gx or {}).get(expectation.name, {}).get("exception", "")
            found.append(f"{expectation.name}: SQL counted {in_sql} failing rows, great-expectations "
                         f"{in_gx}{' (' + problem + ')' if problem else ''}")
    return found
