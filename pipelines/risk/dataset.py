"""Order feature and label frames for the risk model, read from the warehouse.

Grain of every frame here: one row per order (placed, or a supplier's typical order).
The warehouse's daily facts are brought up to date first (`refresh_facts`, the one write);
everything else reads through a read-only connection, whose temporary tables hold the
intermediate steps of the feature computation.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from pathlib import Path

import duckdb
import ibis
import polars as pl
from ibis import _

from models.latent_rate import (
    LatentStream, first_filtered_day, fit_latent_streams, latent_columns, stream_evidence,
    with_latent_rates, with_resumed_latent_rates,
)
from models.outcomes import order_outcomes
from models.risk_features import (
    FeatureSettings, Sources, evidence_stream, feature_columns, month_starts, opened_daily_evidence, order_attributes,
    order_features, order_labels, point_sums, snapshot_points, supplier_context, supplier_versions_before,
    typical_orders,
)
from pipelines.risk import feature_store, latent_state
from pipelines.scoring import ensure_scoring_schema, ibis_backend, update_facts
from pipelines.settings import Config, DataPaths
from pipelines.warehouse import connect, transaction

log = logging.getLogger(__name__)
STAGED = ("orders", "shipments", "disputes", "suppliers")
# Rows of the evidence stream summed in polars at a time (whole suppliers): about 0.5 GB
# with the 52 columns of the daily evidence, and as much again for the sort.
STREAM_ROWS_PER_CHUNK = 1_000_000


def feature_settings(config: Config) -> FeatureSettings:
    s = config.scoring
    return FeatureSettings(s.short_window_days, s.long_window_days, s.priors, s.recent_prior_strength)


def refresh_facts(paths: DataPaths, config: Config, through: dt.date) -> None:
    """Bring features.supplier_day_facts up to `through` (a no-op when they are)."""
    con = connect(paths, memory_limit=config.warehouse.memory_limit)
    try:
        ensure_scoring_schema(con)
        with transaction(con):
            update_facts(con, ibis_backend(con), through, config.warehouse.facts_batch_orders)
    finally:
        con.close()


def refresh_feature_store(paths: DataPaths, config: Config, through: dt.date) -> feature_store.Refreshed:
    """Bring the kept order attributes and daily evidence up to `through`, with the evidence
    before the longest window of the first month a scoring run through it asks for summed
    per supplier (pipelines/risk/feature_store.py)."""
    first_month = (through - dt.timedelta(days=config.risk.drift_days - 1)).replace(day=1)
    settings = feature_settings(config)
    con = connect(paths, memory_limit=config.warehouse.memory_limit)
    try:
        with transaction(con):
            return feature_store.refresh(con, ibis_backend(con), through, settings.outcome_rules,
                                         first_month - dt.timedelta(days=max(settings.windows)))
    finally:
        con.close()


class RiskData:
    """A read-only session on the warehouse that computes feature and label frames."""

    _ids = itertools.count()

    def __init__(self, paths: DataPaths, config: Config | None):
        self.paths, self.config = paths, config
        self.con: duckdb.DuckDBPyConnection | None = None
        self._evidence: pl.DataFrame | None = None

    def __enter__(self) -> "RiskData":
        memory_limit = self.config.warehouse.memory_limit if self.config else ""
        self.con = connect(self.paths, read_only=True, memory_limit=memory_limit)
        self.con.execute("SET enable_progress_bar = false")
        self.backend = ibis_backend(self.con)
        self.tables = {n: self.backend.table(n, database="staging") for n in STAGED}
        facts = self.backend.table("supplier_day_facts", database="features")
        self.sources = Sources(facts, *(self.tables[n] for n in ("suppliers", "orders", "shipments", "disputes")))
        return self

    def __exit__(self, *exc) -> None:
        self.con.close()

    @property
    def settings(self) -> FeatureSettings:
        return feature_settings(self.config)

    def _cache(self, name: str, table: ibis.Table) -> ibis.Table:
        temp = f"{name}_{next(self._ids)}"
        self.backend.create_table(temp, table, temp=True)
        return self.backend.table(temp)

    def _kept(self, through: dt.date) -> feature_store.Kept | None:
        """The feature store's state when it holds the order attributes and daily evidence through `through`."""
        return feature_store.usable(self.con, through, self.settings.outcome_rules)

    def _daily(self, through: dt.date, months: list[dt.date]) -> ibis.Table | None:
        """The kept daily evidence through `through` (None when not kept), from the kept
        opening on when the longest window of every point (in one of `months`) starts after it."""
        kept = self._kept(through)
        if kept is None:
            return None
        daily = self.backend.table(feature_store.DAILY, database="features")
        if kept.opened > min(months) - dt.timedelta(days=max(self.settings.windows)):
            return daily
        return opened_daily_evidence(daily, self.backend.table(feature_store.OPENING, database="features"),
                                     kept.opened)

    def _attributes(self, through: dt.date) -> ibis.Table:
        """Every order known by the end of `through`, as placed, with its buyer history."""
        if self._kept(through):
            return self.backend.table(feature_store.ATTRIBUTES, database="features")
        return self._cache("risk_attributes", order_attributes(self.tables["orders"], self.tables["disputes"],
                                                             through, self._cache))

    def order_features(self, first: dt.date, last: dt.date) -> pl.DataFrame:
        """Features of the orders placed from first to last, each as known when placed, but
        the latent rates (`with_latent`: they depend on the model's fitted filters)."""
        return self._features(last, placed_from=first)["placed"]

    def scoring_features(self, as_of: dt.date, lookback_days: int,
                         recent_days: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(typical, recent), but the latent rates (`with_latent`): the features of each
        known supplier's typical order, placed the day after as_of (`typical_orders` over
        the `lookback_days` up to as_of), and of the orders placed in the `recent_days` up
        to as_of, each as known when placed. One pass over the history serves both: the
        order attributes, the daily evidence and its running sums are computed once."""
        frames = self._features(as_of, placed_from=as_of - dt.timedelta(days=recent_days - 1),
                                typical_lookback_days=lookback_days)
        return frames["typical"], frames["placed"]

    def _features(self, through: dt.date, placed_from: dt.date | None = None,
                  typical_lookback_days: int | None = None) -> dict[str, pl.DataFrame]:
        """Order features as known at each order's placement: "placed", the orders placed
        placed_from..through (when placed_from is given); "typical", one typical order per
        known supplier, placed the day after through (when typical_lookback_days is given).
        The supplier context is computed once, at the points of both."""
        attributes = self._attributes(through)
        orders, points, months = {}, [], set()
        if placed_from is not None:
            orders["placed"] = attributes.filter((_.placed_on >= placed_from) & (_.placed_on <= through))
            points.append(snapshot_points(attributes, placed_from, through))
            months.update(month_starts(placed_from, through))
        if typical_lookback_days is not None:
            day = through + dt.timedelta(days=1)
            ids = self.tables["suppliers"].select("supplier_id").distinct().mutate(point_on=ibis.literal(day))
            known = self._cache("risk_known", supplier_versions_before(self.tables["suppliers"], ids))
            orders["typical"] = typical_orders(attributes, known, through, typical_lookback_days)
            points.append(known.select("supplier_id", "point_on"))
            months.add(day.replace(day=1))
        context = supplier_context(attributes, self.sources, ibis.union(*points), sorted(months), self.settings,
                                   self._cache, self._daily(through, sorted(months)), self._evidence_before)
        frames = {name: self._collect(order_features(t, context, self.settings)) for name, t in orders.items()}
        if "placed" in frames:
            log.info("features of %s orders placed %s..%s", frames["placed"].height, placed_from, through)
            frames["placed"] = frames["placed"].sort("placed_on", "order_id")
        if "typical" in frames:
            frames["typical"] = frames["typical"].sort("supplier_id")
        return frames

    def _evidence_before(self, daily: ibis.Table, points: ibis.Table, windows: tuple[int, ...]) -> ibis.Table:
        """`evidence_before`, its running sums taken in polars (`point_sums`) by chunks of
        suppliers: the same numbers, in a fraction of DuckDB's window functions' time."""
        stream = self._cache("risk_evidence_stream", evidence_stream(daily, points, windows))
        chunks = -(-self.con.execute(f"SELECT count(*) FROM {stream.get_name()}").fetchall()[0][0]
                   // STREAM_ROWS_PER_CHUNK)
        if chunks <= 1:
            return ibis.memtable(point_sums(self._collect(stream), windows).to_arrow())
        chunk = (stream.supplier_id.hash() % chunks + chunks) % chunks  # the hash is signed
        parts = [point_sums(self._collect(stream.filter(chunk == i)), windows) for i in range(chunks)]
        return ibis.memtable(pl.concat(parts).to_arrow())

    def fit_latent(self, through: dt.date) -> dict[str, LatentStream | None]:
        """The latent rates' filters fitted on what was known at the end of `through`."""
        return fit_latent_streams(self._stream_evidence(), through, self.config.risk.latent_rate)

    def with_latent(self, frame: pl.DataFrame, streams: dict[str, LatentStream | None]) -> pl.DataFrame:
        """Order features with the latent rates of each order's supplier on its day."""
        return with_latent_rates(frame, self._stream_evidence(), streams)

    def with_latent_resumed(self, frame: pl.DataFrame, streams: dict[str, LatentStream | None],
                            keep_on: tuple[dt.date, dt.date]) -> tuple[pl.DataFrame, latent_state.Keeping]:
        """`with_latent`, the filters resumed from the latest state the last scoring run kept
        on or before the first day asked for, when kept for the same filters from the same
        evidence (pipelines/risk/latent_state.py), else over the whole history; and what the
        next run is to resume from: the filters' states on the days of `keep_on` (far, near)
        that this run filters, with the digests of the evidence before them."""
        if frame.height == 0:
            return self.with_latent(frame, streams), latent_state.Keeping([], [])
        first_asked = frame["placed_on"].min()
        kept = latent_state.kept_days(self.con, latent_state.streams_key(streams))
        evidence_sql = self.backend.compile(stream_evidence(self.sources.facts))
        digests = latent_state.evidence_digests(self.con, evidence_sql, sorted({*keep_on, *(day for day, _ in kept)}))
        unchanged = [(day, digest) for day, digest in kept if digests[day] == digest]
        # only the state resumed from is read: the other stays where it is
        resume_day = max((day for day, _ in unchanged if day <= first_asked), default=None)
        resume = None if resume_day is None else latent_state.load(self.con, resume_day)
        if resume is None:
            evidence = self._stream_evidence()
        else:
            evidence = self._collect(stream_evidence(self.sources.facts.filter(_.day >= resume.day)))
        log.info("latent rates: filters %s", f"resumed on {resume.day}" if resume else "over the whole history")
        first = first_filtered_day(first_asked, evidence, resume)
        days = tuple(day for day in keep_on if day >= first)  # nothing filtered before `first` to keep
        with_latent, states = with_resumed_latent_rates(frame, evidence, streams, resume, days)
        made = [(state, digests[state.day]) for state in states]
        return with_latent, latent_state.to_keep(unchanged, made, keep_on[0])

    def _stream_evidence(self) -> pl.DataFrame:
        if self._evidence is None:
            self._evidence = self._collect(stream_evidence(self.sources.facts))
        return self._evidence

    def labels(self, as_of: dt.date, first: dt.date, last: dt.date) -> pl.DataFrame:
        """order_id, is_defect of the orders placed first..last that had matured by as_of,
        from the record versions known at as_of."""
        start = ibis.literal(first).cast("timestamp")
        end = ibis.literal(last + dt.timedelta(days=1)).cast("timestamp")
        orders, shipments, disputes = (self.tables[n] for n in ("orders", "shipments", "disputes"))
        ids = orders.filter((_.placed_at >= start) & (_.placed_at < end)).select("order_id").distinct()
        outcomes = order_outcomes(orders.semi_join(ids, "order_id"), shipments.semi_join(ids, "order_id"),
                                  disputes.semi_join(ids, "order_id"), as_of)
        return self._collect(order_labels(outcomes.filter(_.placed_on >= first)))

    def _collect(self, table: ibis.Table) -> pl.DataFrame:
        return pl.from_arrow(self.backend.to_pyarrow(table))


def feature_names(config: Config) -> list[str]:
    """The model's features: those of the query (models/risk_features.py), then the
    latent rates (models/latent_rate.py, added by `RiskData.with_latent`)."""
    return feature_columns(feature_settings(config)) + latent_columns()


def truth_probabilities(paths: DataPaths) -> pl.DataFrame | None:
    """order_id, true_defect_probability from a generated marketplace's truth (None if absent)."""
    path: Path = paths.truth / "orders.parquet"
    if not path.exists():
        return None
    return pl.read_parquet(path, columns=["order_id", "true_defect_probability"])
