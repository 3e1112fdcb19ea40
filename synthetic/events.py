"""From event times to the record versions upstream exports, and the batch each lands in.

A record's history is a (record, step) matrix of event times, steps in the order they
happen (NEVER where a step does not happen). Upstream exports, once a day, the state at
the end of the day of every record that changed that day: one version per record per
day, stamped with the time of its last change. Nothing after the period is exported.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic.cohorts import SECONDS_PER_DAY

MAX_DELAY_DAYS = 10
ORIGINAL, DUPLICATE, DIRTY = 0, 1, 2   # the `copy` column


def versions(step_times: np.ndarray, horizon_t: int) -> pl.DataFrame:
    """Record versions; grain: one row per (record, day with a change), by record then time.

    Columns: key (row of `step_times`), step (the day's last step), updated_t.
    """
    n_steps = step_times.shape[1]
    happened = (step_times >= 0) & (step_times < horizon_t)
    flat = np.flatnonzero(happened)
    key = (flat // n_steps).astype(np.int32)
    step = (flat % n_steps).astype(np.int8)
    updated = step_times.ravel()[flat]
    same_key_next = key[1:] == key[:-1]
    if np.any(same_key_next & (updated[1:] < updated[:-1])):
        raise AssertionError("event steps out of time order: the step columns are misordered")
    day = updated // SECONDS_PER_DAY
    # keep a step unless the next one changes the same record on the same day
    last_of_day = np.ones(len(key), dtype=bool)
    last_of_day[:-1] = ~(same_key_next & (day[1:] == day[:-1]))
    return pl.DataFrame({"key": key[last_of_day], "step": step[last_of_day], "updated_t": updated[last_of_day]})


def schedule(versions_: pl.DataFrame, days: int, late_rate: float, duplicate_rate: float,
             rng: np.random.Generator) -> pl.DataFrame:
    """Rows to land; grain: one row per landed row (versions, late ones moved, duplicates added).

    Adds batch_day (the file the row lands in), is_late and copy (ORIGINAL or DUPLICATE).
    A delay that would land after the last day is cut to the last day: the row is then
    no later than the batches allow, and every version made in the period does land.
    """
    n = versions_.height
    day = (versions_["updated_t"].to_numpy() // SECONDS_PER_DAY).astype(np.int32)
    delay = np.where(rng.random(n) < late_rate, rng.integers(1, MAX_DELAY_DAYS + 1, n), 0)
    batch_day = np.minimum(day + delay, days - 1).astype(np.int32)
    originals = versions_.with_columns(batch_day=batch_day, is_late=batch_day > day, copy=pl.lit(ORIGINAL, pl.Int8))
    # a resend goes in a later batch, so only rows landing before the last day can have one
    resent = (rng.random(n) < duplicate_rate) & (batch_day < days - 1)
    resend_day = np.minimum(batch_day + rng.integers(1, MAX_DELAY_DAYS + 1, n), days - 1).astype(np.int32)
    duplicates = originals.filter(resent).with_columns(batch_day=resend_day[resent], copy=pl.lit(DUPLICATE, pl.Int8))
    return pl.concat([originals, duplicates])


def in_file_order(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows sorted as they sit in the files: by batch, then record, time and copy.

    Adds row_in_batch, the 0-based position of the row in its batch file.
    """
    rows = rows.sort("batch_day", "key", "updated_t", "copy", maintain_order=True)
    return rows.with_columns(row_in_batch=pl.int_range(pl.len(), dtype=pl.Int32).over("batch_day"))
