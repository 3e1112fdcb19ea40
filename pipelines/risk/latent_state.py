"""The latent rates' filters kept from one scoring run to the next (models/latent_rate.FilterState).

Scoring asks for the latent rates of the last `drift_days` of orders and of each
supplier's typical order; filtering the whole history for them costs as much as the
history is long. So a run keeps the filters' state on two days (`keep_days`): the first
day it asks for, from which the next day's run resumes, filtering a month; and a month
before it, from which a run resumes when a late file changed the facts of the month
between. Grain of `features.latent_filter_state`: one row per kept day x stream x supplier
with evidence before that day, its distribution on the grid; `meta.latent_filter_state`,
one row per kept day: for which filters (the model's, as JSON), and the digest of the
stream evidence before that day (count and XOR of row hashes). A run resumes from the
latest kept day on or before the first day it asks for whose filters and digest are the
same: the state is then what filtering the history again gives, to the last bit
(models/latent_rate.py). Facts changed before both kept days (a file more than two months
late) change both digests, and the run filters the whole history again, as training
always does.

A run resumed from the nearer day cannot make a state a month before the first day it
asks for (it starts filtering after it): it keeps the farther state it found unchanged
instead, which ages until a run needs it and keeps a new one.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import NamedTuple

import duckdb
import numpy as np
import pyarrow as pa

from models.latent_rate import GRID, FilterState, LatentStream
from pipelines.risk.registry import latent_to_json
from pipelines.warehouse import table_exists

STATE_DDL = (
    f"CREATE TABLE IF NOT EXISTS features.latent_filter_state (day DATE, stream VARCHAR, supplier_id VARCHAR, "
    f"state DOUBLE[{len(GRID)}])",
    "CREATE TABLE IF NOT EXISTS meta.latent_filter_state (day DATE, streams VARCHAR, evidence_rows BIGINT, "
    "evidence_digest UBIGINT)",
)
# How long before the first day a run asks for its farther state is kept: facts changed up
# to a month before the nearer one (files arriving up to two months late) leave it usable.
FAR_DAYS_BEFORE = 30

Digest = tuple[int, int]  # the rows and XOR of row hashes of the stream evidence before a day
Kept = tuple[FilterState, Digest]  # a state and the digest of the evidence before its day


class Keeping(NamedTuple):
    """What a run leaves for the next: the states it `made` (to write), and the (day,
    digest) of states stored before and found unchanged that stay where they are."""

    made: list[Kept]
    carried: list[tuple[dt.date, Digest]]


def keep_days(first_asked: dt.date) -> tuple[dt.date, dt.date]:
    """The days on which a run asking from `first_asked` keeps the filters: (far, near)."""
    return first_asked - dt.timedelta(days=FAR_DAYS_BEFORE), first_asked


def to_keep(found: list[tuple[dt.date, Digest]], made: list[Kept], far: dt.date) -> Keeping:
    """What a run keeps: the states it `made`, and when it could not make the one on `far`
    (it resumed after it), the earliest state it `found` unchanged before its first made day."""
    if not made or made[0][0].day == far:
        return Keeping(made, [])
    return Keeping(made, [kept for kept in found if kept[0] < made[0][0].day][:1])


def streams_key(streams: dict[str, LatentStream | None]) -> str:
    """The filters' identity: their parameters as JSON."""
    return json.dumps(latent_to_json(streams), sort_keys=True)


def evidence_digests(con: duckdb.DuckDBPyConnection, evidence_sql: str,
                     days: list[dt.date]) -> dict[dt.date, tuple[int, int]]:
    """Per day of `days`: (rows, XOR of the rows' hashes) of the stream evidence (the SQL of
    `stream_evidence`: supplier_id, day, stream, x, n) of the days before it. One scan."""
    parts = ", ".join(f"count(*) FILTER (WHERE day < DATE '{d}'), "
                      f"coalesce(bit_xor(h) FILTER (WHERE day < DATE '{d}'), 0)" for d in days)
    row = con.execute(f"SELECT {parts} FROM (SELECT day, hash(supplier_id, day, stream, x, n) AS h "
                      f"FROM ({evidence_sql}))").fetchall()[0]
    return {d: (int(row[2 * i]), int(row[2 * i + 1])) for i, d in enumerate(days)}


def _has_days(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the kept state has the kept day per row (a warehouse from before two days were kept has not)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'features' "
                            "AND table_name = 'latent_filter_state' AND column_name = 'day'").fetchall()[0][0])


def kept_days(con: duckdb.DuckDBPyConnection, key: str) -> list[tuple[dt.date, Digest]]:
    """(day, digest) of the states kept for the filters `key` names, by day; none when none
    is kept for them."""
    if not table_exists(con, "meta", "latent_filter_state") or not _has_days(con):
        return []
    rows = con.execute("SELECT day, evidence_rows, evidence_digest FROM meta.latent_filter_state "
                       "WHERE streams = ? ORDER BY day", [key]).fetchall()
    return [(day, (int(count), int(digest))) for day, count, digest in rows]


def load(con: duckdb.DuckDBPyConnection, day: dt.date) -> FilterState:
    """The state kept on `day` (one of `kept_days`)."""
    table = con.sql("SELECT stream, supplier_id, state FROM features.latent_filter_state WHERE day = ? "
                    "ORDER BY stream, supplier_id", params=[day]).to_arrow_table()
    ids, states = {}, {}
    for stream in sorted(set(table["stream"].to_pylist())):
        part = table.filter(pa.compute.equal(table["stream"], stream))
        ids[stream] = np.asarray(part["supplier_id"].to_pylist(), dtype=object)
        states[stream] = part["state"].combine_chunks().values.to_numpy().reshape(-1, len(GRID))
    return FilterState(day, ids, states)


def save(con: duckdb.DuckDBPyConnection, keeping: Keeping, key: str) -> None:
    """Replace the kept states by those of `keeping` (of the filters `key` names). A state
    stored for the same filters, day and digest is the same state: it stays (over 100 MB at
    20k suppliers, rewritten every run for nothing)."""
    if table_exists(con, "features", "latent_filter_state") and not _has_days(con):
        con.execute("DROP TABLE features.latent_filter_state")
        con.execute("DROP TABLE IF EXISTS meta.latent_filter_state")
    for ddl in STATE_DDL:
        con.execute(ddl)
    stored = con.execute("SELECT day, streams, evidence_rows, evidence_digest FROM meta.latent_filter_state").fetchall()
    same = {(day, (int(rows), int(digest))) for day, streams, rows, digest in stored if streams == key}
    if len(same) < len(stored):  # another model's filters: none of it stays
        same = set()
    staying = {day for day, digest in [*keeping.carried, *((s.day, d) for s, d in keeping.made)]
               if (day, digest) in same}
    for table in ("features.latent_filter_state", "meta.latent_filter_state"):
        con.execute(f"DELETE FROM {table} WHERE day NOT IN (SELECT unnest(?::DATE[]))", [sorted(staying)])
    for state, digest in keeping.made:
        if state.day in staying:
            continue
        streams = sorted(state.state)
        flat = np.concatenate([state.state[s].ravel() for s in streams]) if streams else np.zeros(0)
        rows = pa.table({
            "stream": pa.array([s for s in streams for _ in state.supplier_ids[s]], pa.string()),
            "supplier_id": pa.array([i for s in streams for i in state.supplier_ids[s]], pa.string()),
            "state": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float64()), len(GRID)),
        })
        con.register("_kept_filters", rows)
        try:
            con.execute("INSERT INTO features.latent_filter_state SELECT ?, * FROM _kept_filters", [state.day])
        finally:
            con.unregister("_kept_filters")
        con.execute("INSERT INTO meta.latent_filter_state VALUES (?, ?, ?, ?)", [state.day, key, *digest])
