"""Batch- and source-level checks: is a whole file believable, is a source alive?

A file (batch) is rejected whole, a critical failure, when
- the share of its rows that failed is above `quality.max_failing_share` (once it has at
  least `quality.failing_share_min_rows` rows): a broken export, not a few bad records;
- its row count is far outside its source's recent range (robust: median and MAD of the
  last `volume_history_files` loaded files; only once there are
  `volume_min_history_files` of them).
Per source, every run: a source whose data trails the others' by more than
`quality.freshness_days[source]` raises a freshness warning; a source that never had data
is reported (a warning: the pipeline scores from the sources it has).
"""

from __future__ import annotations

import math
import statistics

import duckdb

from pipelines.contract import SOURCES
from pipelines.settings import QualityConfig
from pipelines.expectations import CRITICAL, WARNING
from pipelines.results import result

MAD_TO_SIGMA = 1.4826  # MAD x this estimates the standard deviation of a normal distribution


def failing_share_problem(rows_in: int, failing: int, quality: QualityConfig) -> str | None:
    """Why the file is rejected for its share of failing rows, or None."""
    if rows_in < quality.failing_share_min_rows or failing / rows_in <= quality.max_failing_share:
        return None
    return (f"{failing} of {rows_in} rows ({failing / rows_in:.0%}) failed validation, above "
            f"quality.max_failing_share = {quality.max_failing_share:.0%}: the whole file is rejected")


def volume_range(history: list[int], quality: QualityConfig) -> tuple[float, float] | None:
    """The accepted row counts given the recent history, or None until there is enough of it."""
    if len(history) < quality.volume_min_history_files:
        return None
    median = statistics.median(history)
    mad = statistics.median(abs(n - median) for n in history)
    spread = max(MAD_TO_SIGMA * mad, math.sqrt(median), 1.0)
    return max(0.0, median - quality.volume_spread_limit * spread), median + quality.volume_spread_limit * spread


def volume_problem(rows_in: int, history: list[int], source: str, quality: QualityConfig) -> str | None:
    """Why the file is rejected for its row count, with the figures, or None."""
    accepted = volume_range(history, quality)
    if accepted is None or accepted[0] <= rows_in <= accepted[1]:
        return None
    return (f"{rows_in} rows is outside the expected range {accepted[0]:.0f}-{accepted[1]:.0f} for {source} "
            f"(median {statistics.median(history):g} rows over its last {len(history)} loaded files; "
            f"limit quality.volume_spread_limit = {quality.volume_spread_limit:g}): the whole file is rejected")


def volume_history(con: duckdb.DuckDBPyConnection, source: str, quality: QualityConfig) -> list[int]:
    """Row counts of the source's last loaded files, oldest first."""
    rows = con.execute("SELECT rows_in FROM meta.load_ledger WHERE source = ? AND status = 'loaded' "
                       "ORDER BY load_seq DESC LIMIT ?", [source, quality.volume_history_files]).fetchall()
    return [n for (n,) in reversed(rows)]


def source_results(con: duckdb.DuckDBPyConnection, quality: QualityConfig) -> list[dict]:
    """Per source: has it ever had data, and does it keep up with the others (data clock)."""
    newest = dict(con.execute(" UNION ALL ".join(
        f"SELECT '{name}', max(updated_at) FROM staging.{name}" for name in SOURCES)).fetchall())
    clock = max((t for t in newest.values() if t is not None), default=None)
    rows_in = dict(con.execute("SELECT source, sum(rows_in) FROM meta.load_ledger GROUP BY 1").fetchall())
    found = []
    for name in SOURCES:
        if newest[name] is None:
            why = (f"{name} has never had data" if not rows_in.get(name) else
                   f"{name} has no staged rows yet ({rows_in[name]} came in: see quarantine and pending)")
            found.append(result(name, None, None, "source_has_data", WARNING, 1, 1, {},
                                f"{why}: scoring goes on from the other sources"))
            continue
        lag = (clock - newest[name]).total_seconds() / 86400
        limit = quality.freshness_days.get(name)
        stale = limit is not None and lag > limit
        observed = (f"newest updated_at {newest[name]:%Y-%m-%d %H:%M}, {lag:.1f} days behind the newest of all "
                    f"sources ({clock:%Y-%m-%d %H:%M}); limit {limit} days")
        found.append(result(name, None, None, "source_is_fresh", WARNING, int(stale), 1,
                            {"lag_days": round(lag, 3), "limit_days": limit}, observed))
    return found


def batch_result(source: str, load_id: str, path: str, name: str, problem: str | None, details: dict) -> dict:
    """A critical, file-level result: failing with `problem` as its observed value, or passing."""
    return result(source, load_id, path, name, CRITICAL, int(problem is not None), 1, details, problem or "ok")
