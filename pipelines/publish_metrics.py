"""Publishing the evidence behind each ranking, beside the contract's files, atomically.

The contract (shared/CONTRACT.md section 3) publishes one row per supplier. Analysts also
need each metric's numerator, denominator, target and status over both windows (the
scorecard), and the per-supplier inputs of the protection decision (to re-decide it
under another policy: `pipelines/analyst`). Optional extra files, same folder, same
atomic swap as `pipelines.publish.write_snapshot`:

```
published/
  supplier_metrics.parquet                       one row per supplier x metric x window
  supplier_decisions.parquet                     one row per supplier: decision inputs
  history/as_of=YYYY-MM-DD/supplier_metrics.parquet, supplier_decisions.parquet
```

`publish_step` calls `write_evidence_snapshot` after the gate and before
`write_snapshot`, so that by the time a reader sees new rankings, the history folder of
their date already holds their evidence (readers look it up by the rankings' as_of).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.publish import _fsync, _fsync_dir
from pipelines.settings import DataPaths

METRICS_FILE = "supplier_metrics.parquet"
DECISIONS_FILE = "supplier_decisions.parquet"
METRICS_SQL = """
SELECT as_of_date, run_id, supplier_id, metric, window_days, raw_numerator, raw_denominator,
       numerator, denominator, CAST(buyers AS BIGINT) AS buyers, top_buyer_share, rate, target, status
FROM scores.supplier_metrics WHERE as_of_date = ? ORDER BY supplier_id, metric, window_days DESC
"""
# `previous_*`: the decision of the last scored day before as_of, the starting point of
# the hysteresis (grace period, return margin) that decided this one.
DECISIONS_SQL = """
WITH previous AS (
    SELECT supplier_id, protection_status AS previous_status, status_since AS previous_since
    FROM scores.supplier_rankings
    WHERE as_of_date = (SELECT max(as_of_date) FROM scores.supplier_rankings WHERE as_of_date < $as_of)
)
SELECT r.as_of_date, r.run_id, r.supplier_id, r.registered_at, CAST(r.account_age_days AS BIGINT) AS account_age_days,
       r.orders, r.matured_orders, r.uncapped_order_share, r.top_buyer_share, r.reliability_score_upper,
       r.min_points, r.weakest_component, r.median_days_late, r.decision_reason, r.status_since,
       p.previous_status, p.previous_since
FROM scores.supplier_rankings r LEFT JOIN previous p USING (supplier_id)
WHERE r.as_of_date = $as_of ORDER BY r.supplier_id
"""


def evidence_tables(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> dict[str, pa.Table]:
    """{file name: rows} of as_of, from the warehouse's scores tables."""
    metrics = con.sql(METRICS_SQL, params=[as_of]).to_arrow_table()
    decisions = con.sql(DECISIONS_SQL, params={"as_of": as_of}).to_arrow_table()
    if decisions.num_rows == 0:
        raise ValueError(f"no scores stored for {as_of}: no evidence to publish")
    return {METRICS_FILE: metrics, DECISIONS_FILE: decisions}


def write_evidence_snapshot(paths: DataPaths, con: duckdb.DuckDBPyConnection, as_of: dt.date) -> None:
    """History first, then the current files, each written aside and renamed into place.

    An older date (a backfill) adds its history and leaves newer current files alone.
    """
    tables = evidence_tables(con, as_of)
    published = paths.published
    published.mkdir(parents=True, exist_ok=True)
    newest = _current_as_of(published / DECISIONS_FILE)
    update_current = newest is None or as_of >= newest
    aside = Path(tempfile.mkdtemp(prefix=".publishing-evidence-", dir=published))
    try:
        for name, table in tables.items():
            pq.write_table(table, aside / f"history-{name}")
            pq.write_table(table, aside / name)
            _fsync(aside / f"history-{name}")
            _fsync(aside / name)
        history = published / "history" / f"as_of={as_of.isoformat()}"
        history.mkdir(parents=True, exist_ok=True)
        for name in tables:
            os.replace(aside / f"history-{name}", history / name)
        if update_current:
            for name in tables:
                os.replace(aside / name, published / name)
        _fsync_dir(published)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _current_as_of(path: Path) -> dt.date | None:
    if not path.exists():
        return None
    column = pq.read_table(path, columns=["as_of_date"]).column(0)
    return column[0].as_py() if len(column) else None
