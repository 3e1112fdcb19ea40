"""Publishing the rankings (shared/CONTRACT.md section 3): written aside, swapped in atomically.

Consumers never open the warehouse (DuckDB locks it against every other process while
the pipeline writes). Each publication writes its files into a temporary folder beside
`published/`, flushes them to disk, then renames each into place: a rename within one
file system is atomic, so a reader sees the old file or the new one, never a partial
one. The history snapshot lands before the current files, so the current files never
point at a date the history lacks.

A gate stands in front: when more than `publish.max_protection_change_share` of the
suppliers would change `is_protected` against the last publication, nothing is written
unless the run is forced with a reason, which is recorded with the publication.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.settings import DataPaths

CONTRACT_COLUMNS = (
    "as_of_date", "run_id", "supplier_id", "supplier_name", "country_code", "main_category",
    "reliability_score", "reliability_score_lower", "tier", "protection_status", "is_protected",
    "protection_limit_usd", "risk_probability", "rank_overall", "rank_in_category", "reason_codes",
    "orders_365d", "gmv_usd_365d", "distinct_buyers_365d", "on_time_delivery_rate_365d",
    "late_shipment_rate_365d", "order_defect_rate_365d", "dispute_loss_rate_365d",
    "model_version", "config_hash",
)
RANKINGS_SQL = """
SELECT as_of_date, run_id, supplier_id, supplier_name, country_code, main_category,
       reliability_score, reliability_score_lower, tier, protection_status, is_protected,
       CAST(protection_limit_usd AS DECIMAL(18,2)) AS protection_limit_usd, risk_probability,
       CAST(rank_overall AS INTEGER) AS rank_overall, CAST(rank_in_category AS INTEGER) AS rank_in_category,
       reason_codes, CAST(orders AS BIGINT) AS orders_365d, CAST(gmv_usd AS DECIMAL(18,2)) AS gmv_usd_365d,
       CAST(distinct_buyers AS BIGINT) AS distinct_buyers_365d,
       on_time_delivery_rate AS on_time_delivery_rate_365d, late_shipment_rate AS late_shipment_rate_365d,
       order_defect_rate AS order_defect_rate_365d, dispute_loss_rate AS dispute_loss_rate_365d,
       model_version, config_hash
FROM scores.supplier_rankings WHERE as_of_date = ? ORDER BY rank_overall
"""


class PublicationRefused(RuntimeError):
    """The gate stopped the publication; the message says why and how to force it."""


@dataclass(frozen=True)
class PublishResult:
    as_of: dt.date
    run_id: str
    suppliers: int
    protection_changes: int
    forced_reason: str | None


def rankings_table(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> pa.Table:
    """The contract's rows for as_of, from the warehouse, in rank order."""
    table = con.sql(RANKINGS_SQL, params=[as_of]).to_arrow_table()
    if table.num_rows == 0:
        raise ValueError(f"no scores stored for {as_of}: nothing to publish")
    return table


def protection_changes(current: pa.Table, published_file: Path) -> tuple[int, int, list[dict]]:
    """(changed, compared, changes): suppliers whose is_protected differs from the last publication."""
    if not published_file.exists():
        return 0, 0, []
    con = duckdb.connect()
    try:
        con.register("current_rows", current)
        rows = con.execute(
            "SELECT c.supplier_id, p.is_protected, c.is_protected, p.protection_status, c.protection_status, "
            "c.reason_codes FROM current_rows c JOIN read_parquet(?) p USING (supplier_id) "
            "WHERE c.is_protected IS DISTINCT FROM p.is_protected ORDER BY 1", [str(published_file)]).fetchall()
        compared = con.execute("SELECT count(*) FROM current_rows c JOIN read_parquet(?) p USING (supplier_id)",
                               [str(published_file)]).fetchall()[0][0]
    finally:
        con.close()
    keys = ("supplier_id", "was_protected", "is_protected", "previous_status", "protection_status", "reason_codes")
    return len(rows), compared, [dict(zip(keys, r)) for r in rows]


def check_gate(changed: int, compared: int, max_share: float, force_reason: str | None) -> None:
    """Refuse when too many suppliers would change protection, unless forced with a reason."""
    if compared == 0 or changed / compared <= max_share or force_reason:
        return
    raise PublicationRefused(
        f"{changed} of {compared} suppliers ({changed / compared:.1%}) would change is_protected against the "
        f"last publication, above the limit publish.max_protection_change_share = {max_share:.0%}; nothing was "
        f"published. Check the eligibility change report, then rerun with --force-reason \"...\" to publish anyway."
    )


def previous_snapshot(paths: DataPaths, as_of: dt.date) -> Path:
    """The last publication before as_of (its history file; may not exist)."""
    history = paths.published / "history"
    earlier = sorted(d.name for d in history.glob("as_of=*") if d.name < f"as_of={as_of.isoformat()}")
    return history / (earlier[-1] if earlier else "none") / "supplier_rankings.parquet"


def current_as_of(paths: DataPaths) -> dt.date | None:
    """The as-of date of the current snapshot, if there is one."""
    current = paths.published / "supplier_rankings.parquet"
    if not current.exists():
        return None
    return pq.read_table(current, columns=["as_of_date"]).column(0)[0].as_py()


def write_snapshot(paths: DataPaths, table: pa.Table) -> None:
    """History first, then the current Parquet and DuckDB files, each renamed into place.

    Backfilling an older date adds its history snapshot and leaves a newer current one alone.
    """
    as_of = table.column("as_of_date")[0].as_py()
    newest = current_as_of(paths)
    update_current = newest is None or as_of >= newest
    published = paths.published
    published.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=".publishing-", dir=published))
    try:
        pq.write_table(table, aside / "history.parquet")
        pq.write_table(table, aside / "supplier_rankings.parquet")
        _write_duckdb(aside / "supplier_rankings.duckdb", table)
        for name in ("history.parquet", "supplier_rankings.parquet", "supplier_rankings.duckdb"):
            _fsync(aside / name)
        history = published / "history" / f"as_of={as_of.isoformat()}"
        history.mkdir(parents=True, exist_ok=True)
        os.replace(aside / "history.parquet", history / "supplier_rankings.parquet")
        if update_current:
            os.replace(aside / "supplier_rankings.parquet", published / "supplier_rankings.parquet")
            os.replace(aside / "supplier_rankings.duckdb", published / "supplier_rankings.duckdb")
        _fsync_dir(published)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _write_duckdb(path: Path, table: pa.Table) -> None:
    con = duckdb.connect(str(path))
    try:
        con.register("rows_to_publish", table)
        con.execute("CREATE TABLE supplier_rankings AS SELECT * FROM rows_to_publish")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
