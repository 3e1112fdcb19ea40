"""Each supplier's failure rates as they move, filtered day by day from its evidence.

Grain of `stream_evidence`: one row per supplier x day x stream with any trial: `x`
failures out of `n` trials decided that day (the daily facts, models/facts.py). Of
`fit_latent_streams`: one fitted filter per stream. Of `latent_rates`: one row per point asked for
(supplier_id, point_on): for each stream, the mean and the standard deviation of the
supplier's log-odds of failing given the evidence of the days before point_on. A day's
facts are final once it is over (models/risk_features.py), so that is what a run on
point_on could have known. Of `FilterState`: per stream, one row per supplier with
evidence before its day: the filter's distribution there, from which a later run resumes
instead of filtering the whole history again (`resumed_latent_rates`).

Why a filter next to the windowed rates: a window weighs its days alike and forgets what
lies before it, so a supplier whose quality changed shows it only as fast as the window
turns over, diluted by the old days still inside. Here the log-odds of failing are a
hidden state that drifts (a random walk, `drift_sd_per_day`) and that, with probability
`return_per_day` each day, is drawn afresh from the marketplace's prior (new owners, a
new factory, a new carrier). Its posterior weighs recent evidence most, follows a sudden
change as soon as the evidence shows it, and keeps a supplier with little evidence near
the prior. It is held on a grid of log-odds: exact for this model whatever its shape (just
after a change it has two modes, which a normal approximation would average away).

The filter's parameters are parameters of the risk model, fitted with it on what was
known at its training date and kept with it (as a scaler's mean would be), on the
`prior_window_days` up to that date. The prior is normal on the log-odds: its mean the
logit of the marketplace's pooled rate, its sd the spread of the suppliers' log-odds by
the method of moments (the variance of their empirical logits less their mean sampling
variance), among suppliers with `prior_min_trials` or more. The drift and the return rate
are those of the candidates that predict the window's evidence best, one day ahead (the
likelihood of each supplier-day's failures given the days before): a marketplace whose
suppliers change faster gets a faster filter. Fitted afresh each day instead, the prior
would move the features' meaning under the model: early in a marketplace's history the facts hold only
the orders that ended early (mostly defects), and the backtest ranked worse (README:
pooled AUC 0.7402 against 0.7423; its first fold, trained on the earliest year, 0.7020
against 0.7071).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from ibis import _
from ibis.expr.types import Table
from scipy.ndimage import convolve1d

# stream -> (metric of the facts, whether the metric counts successes)
STREAMS = {"defect": ("order_defect", False), "late_shipment": ("late_shipment", False),
           "late_delivery": ("on_time_delivery", True)}
GRID = np.linspace(-9.0, 9.0, 361)  # log-odds of failing: rates from 1e-4 to 1 - 1e-4
GRID_STEP = GRID[1] - GRID[0]
LOG_FAIL, LOG_PASS = -np.logaddexp(0.0, -GRID), -np.logaddexp(0.0, GRID)
# The method-of-moments spread is clipped: below, a prior that would pin every supplier
# to the marketplace's rate; above, one that says nothing (and a grid's edge).
MIN_PRIOR_SD, MAX_PRIOR_SD = 0.1, 2.0
# A drift step spreads at most this share of a grid point's mass to each neighbour (the
# three-point stencil stays positive); a larger daily drift takes several steps.
MAX_STENCIL_SHARE = 0.4


@dataclass(frozen=True)
class LatentRateSettings:
    """What the fit tries for the daily drift and return to the prior, and its window."""

    drift_sd_per_day: tuple[float, ...]
    return_per_day: tuple[float, ...]
    prior_window_days: int
    prior_min_trials: int


@dataclass(frozen=True)
class LatentStream:
    """A stream's fitted filter: the prior on the log-odds of failing, normal (mean, sd),
    and the daily drift (sd of the random walk) and return to the prior."""

    mean: float
    sd: float
    drift_sd_per_day: float
    return_per_day: float


@dataclass(frozen=True)
class FilterState:
    """The filters at the start of `day`, the evidence of the days before it read: per
    stream, the suppliers that had evidence by then (`supplier_ids`) and their
    distributions on GRID (`state`, one row each). A supplier without evidence yet sits at
    the prior, so it needs no row."""

    day: dt.date
    supplier_ids: dict[str, np.ndarray]
    state: dict[str, np.ndarray]


def latent_columns() -> list[str]:
    """The columns `latent_rates` adds per point, in order."""
    return [f"latent_{stream}_{stat}" for stream in STREAMS for stat in ("log_odds", "log_odds_sd")]


def stream_evidence(facts: Table) -> Table:
    """One row per supplier x day x stream with trials: supplier_id, day, stream, x, n."""
    metrics = {metric: stream for stream, (metric, _success) in STREAMS.items()}
    successes = [metric for metric, success in STREAMS.values() if success]
    picked = facts.filter(facts.metric.isin(list(metrics))).mutate(
        stream=_.metric.substitute(metrics),
        failures=_.metric.isin(successes).ifelse(_.denominator - _.numerator, _.numerator))
    sums = picked.group_by(["supplier_id", "day", "stream"]).aggregate(
        x=_.failures.cast("float64").sum(), n=_.denominator.cast("float64").sum())
    return sums.filter(_.n > 0)


def fit_latent_streams(evidence: pl.DataFrame, through: dt.date,
                       settings: LatentRateSettings) -> dict[str, LatentStream | None]:
    """Each stream's filter fitted on the evidence of the `prior_window_days` up to
    `through` (None for a stream without any there): the prior, then of every drift x
    return candidate the one whose one-day-ahead likelihood of that evidence is highest
    (the first listed among equals)."""
    first = through - dt.timedelta(days=settings.prior_window_days - 1)
    evidence = evidence.with_columns(pl.col("day").cast(pl.Date))
    index = _supplier_index(evidence.filter(pl.col("day").is_between(first, through))["supplier_id"])
    fitted = {}
    for stream in STREAMS:
        rows = _stream_rows(evidence, stream, index, first, settings.prior_window_days)
        _day, s, x, n = rows
        prior = _fit_prior(np.bincount(s, x, len(index)), np.bincount(s, n, len(index)), settings.prior_min_trials)
        if prior is None:
            fitted[stream] = None
            continue
        nothing_asked = np.zeros(0, np.int64)
        candidates = [LatentStream(*prior, drift, back) for drift in settings.drift_sd_per_day
                      for back in settings.return_per_day]
        fits = [_filter(*rows, nothing_asked, nothing_asked, len(index), settings.prior_window_days, candidate)[2]
                for candidate in candidates]
        fitted[stream] = candidates[int(np.argmax(fits))]
    return fitted


def latent_rates(evidence: pl.DataFrame, points: pl.DataFrame,
                 streams: dict[str, LatentStream | None]) -> pl.DataFrame:
    """One row per distinct point (supplier_id, point_on) of `points`, with `latent_columns()`
    from the rows of `evidence` (`stream_evidence`) of the days before point_on, filtered
    as `streams` (`fit_latent_streams`) say. A supplier without evidence yet sits at the
    prior; a stream not fitted is NULL."""
    return resumed_latent_rates(evidence, points, streams)[0]


def resumed_latent_rates(evidence: pl.DataFrame, points: pl.DataFrame, streams: dict[str, LatentStream | None],
                         resume: FilterState | None = None,
                         keep_on: tuple[dt.date, ...] = ()) -> tuple[pl.DataFrame, list[FilterState]]:
    """`latent_rates`, the filters resumed from `resume` (kept with the same `streams` from
    the same evidence before its day: `evidence` before it is not read, and no point may
    come before it), and their state at the start of each day of `keep_on` (days from the
    first one filtered to the last point's), in that order. Per supplier, the same
    operations in the same order as a filter of the whole history: the same numbers."""
    points = points.select("supplier_id", pl.col("point_on").cast(pl.Date)).unique().sort("supplier_id", "point_on")
    if points.height == 0:
        return points.with_columns(**{c: pl.lit(None, pl.Float64) for c in latent_columns()}), []
    evidence = evidence.with_columns(pl.col("day").cast(pl.Date))
    if resume is not None:
        if points["point_on"].min() < resume.day:
            raise ValueError(f"points from {points['point_on'].min()} cannot resume filters kept at {resume.day}")
        evidence = evidence.filter(pl.col("day") >= resume.day)
    first = first_filtered_day(points["point_on"].min(), evidence, resume)
    kept_ids = [pl.Series(ids, dtype=pl.String) for ids in (resume.supplier_ids.values() if resume else ())]
    index = _supplier_index(pl.concat([points["supplier_id"], evidence["supplier_id"], *kept_ids]))
    asked = points.join(index, on="supplier_id", maintain_order="left").select(
        "s", d=(pl.col("point_on") - pl.lit(first)).dt.total_days())
    days = int(asked["d"].max()) + 1
    keep_at = tuple((day - first).days for day in keep_on)
    for day, at in zip(keep_on, keep_at):
        if not 0 <= at < days:
            raise ValueError(f"cannot keep the filters on {day}: this run filters {first}.."
                             f"{first + dt.timedelta(days=days - 1)}")
    columns, kept = {}, [FilterState(day, {}, {}) for day in keep_on]
    for stream in STREAMS:
        fitted = streams.get(stream)
        mean = sd = np.full(points.height, np.nan)
        if fitted is not None:
            resumed = None
            if resume is not None and stream in resume.state:
                ids = pl.DataFrame({"supplier_id": pl.Series(resume.supplier_ids[stream], dtype=pl.String)})
                resumed = (ids.join(index, on="supplier_id", maintain_order="left")["s"].to_numpy(),
                           resume.state[stream])
            mean, sd, _likelihood, at_keep = _filter(
                *_stream_rows(evidence, stream, index, first, days), asked["d"].to_numpy(), asked["s"].to_numpy(),
                len(index), days, fitted, resumed, keep_at)
            for state, at in zip(kept, keep_at):
                rows, state.state[stream] = at_keep[at]
                state.supplier_ids[stream] = index["supplier_id"].to_numpy()[rows]
        columns[f"latent_{stream}_log_odds"], columns[f"latent_{stream}_log_odds_sd"] = mean, sd
    return points.with_columns(**{c: pl.Series(columns[c], dtype=pl.Float64, nan_to_null=True)
                                  for c in latent_columns()}), kept


def first_filtered_day(first_point: dt.date, evidence: pl.DataFrame, resume: FilterState | None = None) -> dt.date:
    """The day `resumed_latent_rates` starts filtering on: the kept state's day when resumed,
    else the earlier of the first point and the first evidence."""
    if resume is not None:
        return resume.day
    first_evidence = evidence["day"].cast(pl.Date).min()
    return first_point if first_evidence is None else min(first_point, first_evidence)


def with_latent_rates(frame: pl.DataFrame, evidence: pl.DataFrame,
                      streams: dict[str, LatentStream | None]) -> pl.DataFrame:
    """`frame` (one row per order: supplier_id, placed_on, ...) with `latent_columns()` of
    its supplier on the day it was placed, rows in the same order."""
    return with_resumed_latent_rates(frame, evidence, streams)[0]


def with_resumed_latent_rates(frame: pl.DataFrame, evidence: pl.DataFrame, streams: dict[str, LatentStream | None],
                              resume: FilterState | None = None,
                              keep_on: tuple[dt.date, ...] = ()) -> tuple[pl.DataFrame, list[FilterState]]:
    """`with_latent_rates` by `resumed_latent_rates`: the filters resumed from `resume`, and
    their state on `keep_on`."""
    latent, kept = resumed_latent_rates(evidence, frame.select("supplier_id", point_on="placed_on"), streams,
                                        resume, keep_on)
    return frame.drop(latent_columns(), strict=False).join(
        latent.rename({"point_on": "placed_on"}), on=["supplier_id", "placed_on"], how="left",
        maintain_order="left"), kept


def _supplier_index(ids: pl.Series) -> pl.DataFrame:
    """supplier_id -> s, the supplier's row in the filter's state (sorted ids)."""
    ids = ids.unique().sort()
    return pl.DataFrame({"supplier_id": ids, "s": np.arange(len(ids))})


def _stream_rows(evidence: pl.DataFrame, stream: str, index: pl.DataFrame, first: dt.date,
                 days: int) -> tuple[np.ndarray, ...]:
    """(day number from `first`, s, x, n) of the stream's evidence in the `days` days from
    `first`, sorted by day: what `_filter` reads."""
    rows = (evidence.filter(pl.col("stream") == stream).join(index, on="supplier_id")
            .select("s", "x", "n", d=(pl.col("day") - pl.lit(first)).dt.total_days())
            .filter(pl.col("d").is_between(0, days - 1)).sort("d", "s"))
    return tuple(rows[c].to_numpy() for c in ("d", "s", "x", "n"))


def _filter(day: np.ndarray, sup: np.ndarray, x: np.ndarray, n: np.ndarray, asked_day: np.ndarray,
            asked_sup: np.ndarray, suppliers: int, days: int, stream: LatentStream,
            resumed: tuple[np.ndarray, np.ndarray] | None = None, keep_at: tuple[int, ...] = ()):
    """(mean, sd) of the log-odds at the start of each asked day, for each asked supplier;
    the log-likelihood of the evidence, each row given the days before it (less the
    binomial coefficients, which no setting changes); and per day of `keep_at`, (rows of
    the suppliers seen, their state) at its start. Evidence rows are
    sorted by day (one row per supplier and day); a day's evidence is added after the
    day's points are read. `resumed` (rows, state) starts those suppliers seen, in a state
    kept at the start of day 0."""
    mean, sd = np.full(len(asked_day), np.nan), np.full(len(asked_day), np.nan)
    order = np.argsort(asked_day, kind="stable")
    asked_at = np.searchsorted(asked_day[order], np.arange(days + 1))
    evidence_at = np.searchsorted(day, np.arange(days + 1))
    start = _normal_on_grid(stream.mean, stream.sd)
    likelihood = 0.0
    # a supplier is drawn from the prior when its first evidence comes (until then its
    # row drifts unread)
    state, seen = np.tile(start, (suppliers, 1)), np.zeros(suppliers, bool)
    if resumed is not None:
        state[resumed[0]], seen[resumed[0]] = resumed[1], True
    kept = {}
    kernel, steps = _drift_stencil(stream.drift_sd_per_day)
    # in place, into a second buffer: every supplier's row is rewritten every night, and new
    # arrays each time cost about 40% of the filter's time at 20k suppliers (the same numbers)
    spare, returning = np.empty_like(state), stream.return_per_day * start
    for d in range(days):
        if d > 0:  # the night before day d: drift, and a return to the prior for a few
            for _step in range(steps):
                convolve1d(state, kernel, axis=1, mode="reflect", output=spare)
                state, spare = spare, state
            state *= 1.0 - stream.return_per_day
            state += returning
        if d in keep_at:
            kept[d] = (np.flatnonzero(seen), state[seen])
        rows = order[asked_at[d]:asked_at[d + 1]]
        if len(rows):
            current = np.where(seen[asked_sup[rows], None], state[asked_sup[rows]], start)
            mean[rows] = current @ GRID
            sd[rows] = np.sqrt(np.maximum(current @ GRID ** 2 - mean[rows] ** 2, 0.0))
        a, b = evidence_at[d], evidence_at[d + 1]
        if b > a:
            s = sup[a:b]
            log_post = (np.log(np.maximum(np.where(seen[s, None], state[s], start), 1e-300))
                        + x[a:b, None] * LOG_FAIL + (n[a:b] - x[a:b])[:, None] * LOG_PASS)
            top = log_post.max(axis=1, keepdims=True)
            post = np.exp(log_post - top)
            total = post.sum(axis=1, keepdims=True)
            likelihood += float((np.log(total) + top).sum())
            state[s] = post / total
            seen[s] = True
    return mean, sd, likelihood, kept


def _fit_prior(x: np.ndarray, n: np.ndarray, min_trials: int) -> tuple[float, float] | None:
    """(mean, sd) of the prior on the log-odds from per-supplier evidence; None when there
    is none."""
    total = n.sum()
    if total <= 0:
        return None
    mean = float(_logit((x.sum() + 0.5) / (total + 1.0)))
    enough = n >= min_trials
    if enough.sum() < 2:
        return mean, MAX_PRIOR_SD
    rate = (x[enough] + 0.5) / (n[enough] + 1.0)
    sampling = np.mean(1.0 / ((n[enough] + 1.0) * rate * (1.0 - rate)))
    spread = np.sqrt(max(_logit(rate).var() - sampling, 0.0))
    return mean, float(np.clip(spread, MIN_PRIOR_SD, MAX_PRIOR_SD))


def _logit(p):
    return np.log(p / (1.0 - p))


def _normal_on_grid(mean: float, sd: float) -> np.ndarray:
    density = np.exp(-0.5 * ((GRID - mean) / sd) ** 2)
    return density / density.sum()


def _drift_stencil(drift_sd: float) -> tuple[np.ndarray, int]:
    """(three-point kernel, steps) whose repeated application has variance drift_sd**2."""
    share = drift_sd ** 2 / (2 * GRID_STEP ** 2)
    steps = int(np.ceil(share / MAX_STENCIL_SHARE)) if share > 0 else 0
    q = share / steps if steps else 0.0
    return np.array([q, 1.0 - 2.0 * q, q]), steps

