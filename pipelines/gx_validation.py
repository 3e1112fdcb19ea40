"""great-expectations: run a source's suite once over a chunk's pandas frame.

GX is imported on first use (about 3 s), and one ephemeral context serves the process:
only pandas batches are validated (the SQL datasource over DuckDB fails silently, GX
issue 10738). SUMMARY results only: COMPLETE lists every failing row and costs seconds
when many fail; the failing rows are picked in SQL instead (expectations.py).
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache

import pandas as pd

from pipelines.expectations import FUTURE_LIMIT, PASSING_ROWS, Expectation

log = logging.getLogger(__name__)

SAMPLE_VALUES = 5  # failing values kept in the stored details, as text
NS_RANGE = (pd.Timestamp.min, pd.Timestamp.max)


@lru_cache(maxsize=None)
def _batch_definition(source: str):
    """The whole-dataframe batch definition of `source` in the process's ephemeral context."""
    context = _context()
    return context.data_sources.get("suprel").add_dataframe_asset(source).add_batch_definition_whole_dataframe("chunk")


@lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch under 1 GB (an MD5 of pd.util.hash_pandas_object, a
    # marker nothing here reads), and batch.validate builds the batch a second time: two hashes
    # of the frame were 2/3 of GX's time. Its own threshold for "too large to hash" switches it
    # off; with another GX version that lacks it, validation is slower, never different.
    pandas_execution_engine.HASH_THRESHOLD = 0
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # its INFO lines are about its own setup
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    context.data_sources.add_pandas("suprel")
    return context


def run_suite(source: str, frame: pd.DataFrame, expectations: tuple[Expectation, ...],
              future_limit: datetime) -> dict[str, dict]:
    """Each expectation's GX result on `frame`, keyed by expectation name."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=f"suprel_{source}", expectations=[
        _gx_expectation(gxe, e, future_limit) for e in expectations])
    batch = _batch_definition(source).get_batch(batch_parameters={"dataframe": _nanosecond_times(frame)})
    outcome = batch.validate(suite, result_format="SUMMARY")
    return {r.expectation_config.meta["name"]: _summary(r) for r in outcome.results}


def _nanosecond_times(frame: pd.DataFrame) -> pd.DataFrame:
    """DuckDB gives datetime64[us]; GX compares only datetime64[ns] vectorised (else ~4 s per 500k rows).

    A column holding a year outside 1677-2262 (ns range) stays in us: slower, still right.
    """
    times = {c: "datetime64[ns]" for c in frame.columns if pd.api.types.is_datetime64_dtype(frame[c].dtype)
             and (frame[c].isna().all() or (NS_RANGE[0] <= frame[c].min() and frame[c].max() <= NS_RANGE[1]))}
    return frame.astype(times) if times else frame


def _gx_expectation(gxe, expectation: Expectation, future_limit: datetime):
    from great_expectations.expectations.row_conditions import Column

    placeholders = {FUTURE_LIMIT: future_limit, PASSING_ROWS: Column("passes_row_rules") == True}  # noqa: E712
    kwargs = {k: placeholders.get(v, v) if isinstance(v, str) else v for k, v in expectation.gx_kwargs.items()}
    return getattr(gxe, expectation.gx_type)(**kwargs, meta={"name": expectation.name})


def _summary(result) -> dict:
    """What is stored of one GX result: counts, a few failing values, any exception."""
    detail = result.result or {}
    summary = {
        "success": bool(result.success),
        "unexpected_count": detail.get("unexpected_count"),
        "element_count": detail.get("element_count"),
        "missing_count": detail.get("missing_count"),
        "partial_unexpected_list": [str(v) for v in (detail.get("partial_unexpected_list") or [])[:SAMPLE_VALUES]],
    }
    info = result.exception_info or {}
    if info.get("raised_exception"):
        summary["exception"] = info.get("exception_message")
        log.error("great-expectations raised on %s: %s", result.expectation_config.type, summary["exception"])
    return summary
