"""The risk features' store (pipelines/risk/feature_store.py): the order attributes, the daily
evidence and the evidence before the windows it keeps from run to run, brought up to date
by files of new days with late rows, orders released from pending, a shipment recorded
before its order and a dispute recorded late, equal those computed from scratch; a run for
an earlier day leaves it alone, other outcome rules rebuild it, and the features read
through it are those computed without it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import duckdb
import ibis
import polars as pl

from models.outcomes import CONTRACT_RULES, OutcomeRules
from models.risk_features import daily_evidence, evidence_opening, order_attributes
from pipelines.ingest import ingest
from pipelines.risk import feature_store
from pipelines.risk.dataset import RiskData, refresh_facts, refresh_feature_store
from pipelines.scoring import ibis_backend, latest_data_day
from pipelines.settings import DataPaths
from pipelines.warehouse import connect, transaction
from tests.conftest import copy_landing, withhold_a_supplier


def hold_days_after(paths: DataPaths, day: dt.date, held: Path) -> None:
    """Move the landing files of the days after `day` to `held`."""
    for path in paths.landing.glob("*/*.csv"):
        if dt.date.fromisoformat(path.stem[:10]) > day:
            (held / path.parent.name).mkdir(parents=True, exist_ok=True)
            path.rename(held / path.parent.name / path.name)


def land_through(paths: DataPaths, held: Path, day: dt.date) -> None:
    for path in held.glob("*/*.csv"):
        if dt.date.fromisoformat(path.stem[:10]) <= day:
            path.rename(paths.landing / path.parent.name / path.name)


def run(paths: DataPaths, config, through: dt.date) -> feature_store.Refreshed:
    """A scoring run's first steps: ingest what landed, the facts, then the store."""
    assert ingest(paths, config).passed
    refresh_facts(paths, config, through)
    return refresh_feature_store(paths, config, through)


def kept_and_scratch(paths: DataPaths, through: dt.date, rules: OutcomeRules = CONTRACT_RULES,
                     ) -> dict[str, tuple[list, list]]:
    """Per kept table, (its rows, the rows computed from scratch under `rules`), sorted."""
    con = connect(paths, read_only=True)
    try:
        backend = ibis_backend(con)
        staged = [backend.table(n, database="staging") for n in ("orders", "shipments", "disputes")]
        attributes = order_attributes(staged[0], staged[2], through)
        facts = backend.table("supplier_day_facts", database="features")
        daily = daily_evidence(facts, attributes, *staged, rules)
        scratch = {feature_store.ATTRIBUTES: attributes, feature_store.DAILY: daily,
                   feature_store.OPENING: evidence_opening(daily, feature_store.kept(con).opened)}

        def rows(sql: str) -> list[tuple]:
            return con.execute(f"SELECT * FROM ({sql}) ORDER BY ALL").fetchall()

        return {name: (rows(f"SELECT {', '.join(table.columns)} FROM features.{name}"),
                       rows(ibis.to_sql(table, dialect="duckdb"))) for name, table in scratch.items()}
    finally:
        con.close()


def assert_store_is_scratch(paths: DataPaths, through: dt.date, rules: OutcomeRules = CONTRACT_RULES) -> None:
    for name, (kept, scratch) in kept_and_scratch(paths, through, rules).items():
        assert name == feature_store.OPENING or len(kept) > 100, name  # the opening may hold no day yet
        assert kept == scratch, f"{name}: {len(set(kept) ^ set(scratch))} rows differ"


def test_the_store_brought_up_to_date_day_by_day_and_by_late_files_equals_it_computed_from_scratch(
        small_marketplace, tmp_path, config, monkeypatch):
    # The generated files carry versions of earlier days (late rows): a day's file moves the
    # evidence of days before it, which the store must recompute. The build computes the
    # daily evidence by chunks of suppliers (of 500 orders here).
    monkeypatch.setattr(feature_store, "ORDERS_PER_BUILD_CHUNK", 500)
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "data"))
    last = max(dt.date.fromisoformat(p.stem) for p in paths.landing.glob("orders/*.csv"))
    first_run = last - dt.timedelta(days=12)
    held = tmp_path / "held"
    hold_days_after(paths, first_run, held)
    assert run(paths, config, first_run) == feature_store.Refreshed("built")
    assert len(kept_and_scratch(paths, first_run)[feature_store.ATTRIBUTES][0]) > 3 * 500  # chunks
    assert_store_is_scratch(paths, first_run)
    recomputed_from = []
    for day in (first_run + dt.timedelta(days=1), first_run + dt.timedelta(days=2), last):
        land_through(paths, held, day)
        done = run(paths, config, day)
        assert done.action == "updated"
        recomputed_from.append(done.first)
        assert_store_is_scratch(paths, day)
    # late rows pulled the first recomputed day back before the day after the last run's
    assert recomputed_from[0] < first_run + dt.timedelta(days=1)
    assert recomputed_from[-1] < first_run + dt.timedelta(days=3)
    assert run(paths, config, last) == feature_store.Refreshed("current")


def test_orders_released_from_pending_after_a_run_enter_the_store(small_marketplace, tmp_path, config):
    # One supplier's record comes after a run: its orders (and their shipments and disputes)
    # wait in pending, then are staged with their own files' load_seq, older than the store's.
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "late supplier"))
    supplier, land_its_record = withhold_a_supplier(paths)
    assert ingest(paths, config).passed
    last = latest_data_day(paths)
    assert run(paths, config, last).action == "built"
    land_its_record()
    done = run(paths, config, last)
    assert done.action == "updated" and done.first < last - dt.timedelta(days=100)
    assert_store_is_scratch(paths, last)
    kept, _ = kept_and_scratch(paths, last)[feature_store.ATTRIBUTES]
    assert sum(row[1] == supplier for row in kept) > 10


def test_a_run_for_an_earlier_day_leaves_the_store_and_other_rules_rebuild_it(small_marketplace, tmp_path, config):
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "data"))
    assert ingest(paths, config).passed
    last = latest_data_day(paths)
    run(paths, config, last)
    earlier = last - dt.timedelta(days=30)
    assert refresh_feature_store(paths, config, earlier) == feature_store.Refreshed("aside")
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert feature_store.kept(con).through == last
        assert feature_store.usable(con, last, CONTRACT_RULES)
        assert not feature_store.usable(con, earlier, CONTRACT_RULES)
    other = dataclasses.replace(CONTRACT_RULES, non_delivery_days=CONTRACT_RULES.non_delivery_days + 5)
    con = connect(paths)
    try:
        with transaction(con):
            done = feature_store.refresh(con, ibis_backend(con), last, other, feature_store.kept(con).opened)
            assert done == feature_store.Refreshed("built")
    finally:
        con.close()
    assert_store_is_scratch(paths, last, other)


def test_features_read_through_the_store_are_those_computed_without_it(small_marketplace, tmp_path, config):
    # Windows short enough that the evidence before the longest window of the first month
    # asked for (summed per supplier in the store) holds some of the 150 days.
    config = dataclasses.replace(config, scoring=dataclasses.replace(config.scoring, long_window_days=60,
                                                                     short_window_days=30))
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "data"))
    last = max(dt.date.fromisoformat(p.stem) for p in paths.landing.glob("orders/*.csv"))
    held = tmp_path / "held"
    hold_days_after(paths, last - dt.timedelta(days=40), held)
    run(paths, config, last - dt.timedelta(days=40))
    land_through(paths, held, last)
    assert run(paths, config, last).action == "updated"  # the opening moved by a month
    assert_store_is_scratch(paths, last)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM features.{feature_store.OPENING}").fetchall()[0][0] > 30

    def features() -> tuple[pl.DataFrame, pl.DataFrame]:
        with RiskData(paths, config) as data:
            assert (data._kept(last) is not None) == kept
            return data.scoring_features(last, config.risk.typical_order_days, config.risk.drift_days)

    kept = True
    through_store = features()
    with duckdb.connect(str(paths.warehouse)) as con:
        con.execute("DELETE FROM meta.risk_feature_store")
    kept = False
    without = features()
    for a, b in zip(through_store, without):
        assert a.height > 50 and a.equals(b)


def test_an_order_placed_after_the_kept_day_files_its_earlier_shipment_on_the_shipment_day(small_marketplace,
                                                                                            tmp_path, config):
    # Dirty data: a shipment recorded before the kept day, of an order placed after it. The
    # kept day's orders as placed leave the order out, so its shipment's events were not
    # filed; the next run files them on the shipment's day, before the kept day.
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "data"))
    assert ingest(paths, config).passed
    last = latest_data_day(paths)
    kept_day = last - dt.timedelta(days=20)
    shipped_on = kept_day - dt.timedelta(days=5)
    with duckdb.connect(str(paths.warehouse)) as con:
        shipment, recorded = con.execute(
            "SELECT s.shipment_id, min(s.updated_at) FROM staging.shipments AS s JOIN staging.orders AS o "
            "USING (order_id) WHERE o.placed_at >= ? AND s.shipped_at IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT 1",
            [kept_day + dt.timedelta(days=1)]).fetchall()[0]
        back = recorded - dt.datetime.combine(shipped_on, dt.time(12))
        con.execute("UPDATE staging.shipments SET updated_at = updated_at - ?, shipped_at = shipped_at - ?, "
                    "delivered_at = delivered_at - ? WHERE shipment_id = ?", [back, back, back, shipment])
    refresh_facts(paths, config, kept_day)
    assert refresh_feature_store(paths, config, kept_day) == feature_store.Refreshed("built")
    refresh_facts(paths, config, last)
    assert refresh_feature_store(paths, config, last) == feature_store.Refreshed("updated", shipped_on)
    assert_store_is_scratch(paths, last)


def test_a_dispute_recorded_late_moves_the_buyer_history_of_the_orders_placed_after_it(small_marketplace, tmp_path,
                                                                                        config):
    # A late file brings a dispute on a buyer's order, recorded before the buyer's next order
    # was placed and before the kept day: that next order's history (disputes opened before
    # it) changes, though the order itself did not.
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "data"))
    assert ingest(paths, config).passed
    last = latest_data_day(paths)
    kept_day = last - dt.timedelta(days=20)
    refresh_facts(paths, config, kept_day)
    refresh_feature_store(paths, config, kept_day)
    with duckdb.connect(str(paths.warehouse)) as con:
        earlier, later, placed = con.execute(
            "SELECT a.order_id, b.order_id, a.placed_at FROM features.risk_order_attributes AS a "
            "JOIN features.risk_order_attributes AS b USING (buyer_id) WHERE b.placed_on < ? "
            "AND b.placed_at > a.placed_at + INTERVAL 3 DAY ORDER BY b.placed_at DESC LIMIT 1",
            [kept_day - dt.timedelta(days=5)]).fetchall()[0]
        seq = con.execute("SELECT max(load_seq) FROM meta.load_ledger").fetchall()[0][0] + 1
        con.execute("INSERT INTO meta.load_ledger SELECT * REPLACE (? AS load_seq, 'late-dispute' AS load_id) "
                    "FROM meta.load_ledger WHERE source = 'disputes' LIMIT 1", [seq])
        con.execute("INSERT INTO staging.disputes SELECT * REPLACE ('late-dispute' AS dispute_id, ? AS order_id, "
                    "? AS opened_at, 'open' AS status, NULL AS outcome, ? AS updated_at, ? AS load_seq, "
                    "'late-dispute' AS load_id) FROM staging.disputes LIMIT 1",
                    [earlier, placed + dt.timedelta(days=1), placed + dt.timedelta(days=1), seq])
        before = con.execute("SELECT buyer_disputes_opened FROM features.risk_order_attributes WHERE order_id = ?",
                             [later]).fetchall()[0][0]
    refresh_facts(paths, config, last)
    done = refresh_feature_store(paths, config, last)
    assert done == feature_store.Refreshed("updated", (placed + dt.timedelta(days=1)).date())
    assert_store_is_scratch(paths, last)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT buyer_disputes_opened FROM features.risk_order_attributes WHERE order_id = ?",
                           [later]).fetchall()[0][0] == before + 1
