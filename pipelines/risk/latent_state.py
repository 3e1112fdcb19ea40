"""The latent rates' filters kept from one scoring run to the next (models/latent_rate.FilterState).

Scoring asks for the latent rates of the last `drift_days` of orders and of each
supplier's typical order; filtering the whole history for them costs as much as the
history is long. So a run keeps the filters' state on a day a month before the first
day it asks for, and the next run resumes there. Grain of `features.latent_filter_state`:
one row per stream x supplier with evidence before that day, its distribution on the
grid; `meta.latent_filter_state` says of which day, for which filters (the model's, as
JSON), and the digest of the stream evidence before that day (count and XOR of row
hashes). A run resumes only when its filters and that digest are the same: the state is
then what filtering the history again gives, to the last bit (models/latent_rate.py).
Facts changed before the kept day (a late file) change the digest, and the run filters
the whole history again, as training always does.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import numpy as np
import pyarrow as pa

from models.latent_rate import GRID, FilterState, LatentStream
from pipelines.risk.registry import latent_to_json
from pipelines.warehouse import table_exists

STATE_DDL = (
    f"CREATE TABLE IF NOT EXISTS features.latent_filter_state (stream VARCHAR, supplier_id VARCHAR, "
    f"state DOUBLE[{len(GRID)}])",
    "CREATE TABLE IF NOT EXISTS meta.latent_filter_state (day DATE, streams VARCHAR, evidence_rows BIGINT, "
    "evidence_digest UBIGINT)",
)
# How long before the first day a run asks for its state is kept: files arriving up to a
# month late (their facts' days) leave it usable.
KEEP_DAYS_BEFORE = 30


def keep_day(first_asked: dt.date) -> dt.date:
    """The day on which a run asking from `first_asked` keeps the filters."""
    return first_asked - dt.timedelta(days=KEEP_DAYS_BEFORE)


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


def load(con: duckdb.DuckDBPyConnection, key: str) -> tuple[FilterState, tuple[int, int]] | None:
    """The kept state of the filters `key` names and its evidence digest; None when none is kept for them."""
    if not table_exists(con, "meta", "latent_filter_state"):
        return None
    meta = con.execute("SELECT day, evidence_rows, evidence_digest FROM meta.latent_filter_state "
                       "WHERE streams = ?", [key]).fetchall()
    if not meta:
        return None
    [(day, rows, digest)] = meta
    table = con.sql("SELECT stream, supplier_id, state FROM features.latent_filter_state "
                    "ORDER BY stream, supplier_id").to_arrow_table()
    ids, states = {}, {}
    for stream in sorted(set(table["stream"].to_pylist())):
        part = table.filter(pa.compute.equal(table["stream"], stream))
        ids[stream] = np.asarray(part["supplier_id"].to_pylist(), dtype=object)
        states[stream] = part["state"].combine_chunks().values.to_numpy().reshape(-1, len(GRID))
    return FilterState(day, ids, states), (int(rows), int(digest))


def save(con: duckdb.DuckDBPyConnection, state: FilterState, key: str, digest: tuple[int, int]) -> None:
    """Replace the kept state by `state` (of the filters `key` names, from evidence of `digest`)."""
    for ddl in STATE_DDL:
        con.execute(ddl)
    streams = sorted(state.state)
    flat = np.concatenate([state.state[s].ravel() for s in streams]) if streams else np.zeros(0)
    rows = pa.table({
        "stream": pa.array([s for s in streams for _ in state.supplier_ids[s]], pa.string()),
        "supplier_id": pa.array([i for s in streams for i in state.supplier_ids[s]], pa.string()),
        "state": pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float64()), len(GRID)),
    })
    con.execute("DELETE FROM features.latent_filter_state")
    con.execute("DELETE FROM meta.latent_filter_state")
    con.register("_kept_filters", rows)
    try:
        con.execute("INSERT INTO features.latent_filter_state SELECT * FROM _kept_filters")
    finally:
        con.unregister("_kept_filters")
    con.execute("INSERT INTO meta.latent_filter_state VALUES (?, ?, ?, ?)", [state.day, key, *digest])
