"""The warehouse's daily facts: computed in batches of days, they are the facts of one pass;
computed only for the orders that can be decided in their days, from those orders' versions
only, the facts of every order; orders released from pending after a run get theirs. The
order spans and the buyer evidence kept from run to run equal those computed from scratch."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import ibis

from models.metrics import buyer_evidence
from models.scorecard import evidence_windows
from pipelines.ingest import ingest
from pipelines.scoring import (STAGED_EVENTS, _day_batches, _oldest_seqs_decidable_from, _orders_with_events_from,
                               ensure_scoring_schema, facts_between, ibis_backend, latest_data_day, order_spans,
                               policy_from, score, update_facts)
from pipelines.settings import DataPaths
from pipelines.warehouse import connect, transaction
from tests.conftest import copy_landing, query, withhold_a_supplier


def facts_after_update(paths: DataPaths, batch_orders: int) -> tuple[list[tuple], list[tuple]]:
    """(the facts, the batches of days) of a first update up to the newest day of the data."""
    as_of = latest_data_day(paths)
    con = connect(paths)
    try:
        ensure_scoring_schema(con)
        first = con.execute("SELECT min(updated_at)::DATE FROM staging.orders").fetchall()[0][0]
        batches = _day_batches(con, first, as_of, batch_orders)
        with transaction(con):
            update_facts(con, ibis_backend(con), as_of, batch_orders)
        return con.execute("SELECT * FROM features.supplier_day_facts ORDER BY ALL").fetchall(), batches
    finally:
        con.close()


def rows_of(con, table: ibis.Table) -> list[tuple]:
    return con.execute(f"SELECT * FROM ({ibis.to_sql(table, dialect='duckdb')}) ORDER BY ALL").fetchall()


def test_facts_computed_in_batches_of_days_equal_the_facts_of_one_pass(small_marketplace, tmp_path, config):
    one_pass = copy_landing(small_marketplace, DataPaths(tmp_path / "one_pass"))
    ingest(one_pass, config)
    batched = DataPaths(tmp_path / "batched")
    shutil.copytree(one_pass.warehouse_dir, batched.warehouse_dir)

    whole, single = facts_after_update(one_pass, batch_orders=0)
    in_batches, batches = facts_after_update(batched, batch_orders=800)

    assert len(single) == 1 and len(batches) >= 3
    assert all(later[0] == earlier[1].fromordinal(earlier[1].toordinal() + 1)
               for earlier, later in zip(batches, batches[1:]))  # consecutive, no day twice or missed
    assert len(whole) > 10_000
    assert in_batches == whole


def test_facts_of_days_computed_only_for_the_orders_that_can_be_decided_in_them_are_the_same(small_marketplace,
                                                                                            tmp_path, config):
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "restricted"))
    ingest(paths, config)
    last = latest_data_day(paths)
    first, through = last - dt.timedelta(days=20), last - dt.timedelta(days=5)
    con = connect(paths, read_only=True)
    try:
        backend = ibis_backend(con)
        staged = {name: backend.table(name, database="staging") for name in STAGED_EVENTS}
        facts = {restrict: rows_of(con, facts_between(staged, first, through, restrict=restrict))
                 for restrict in (True, False)}
        relevant = _orders_with_events_from(staged["orders"], staged["disputes"], first).count().to_pyarrow().as_py()
        orders = staged["orders"].order_id.nunique().to_pyarrow().as_py()
        # And reading each source's versions only from the oldest load_seq of the orders decidable then.
        oldest = _oldest_seqs_decidable_from(con, order_spans(**staged), first)
        recent = {name: table.filter(table.load_seq >= oldest[name]) for name, table in staged.items()}
        facts["recent versions"] = rows_of(con, facts_between(recent, first, through))
        left_out = {name: table.filter(table.load_seq < oldest[name]).count().to_pyarrow().as_py()
                    for name, table in staged.items()}
    finally:
        con.close()

    assert relevant < 0.8 * orders  # the restriction leaves orders out...
    assert len(facts[True]) > 1000 and facts[True] == facts[False]  # ...and no fact of those days
    assert min(left_out.values()) > 0  # the bounds leave old versions of every source out...
    assert facts["recent versions"] == facts[False]  # ...none that the facts of those days read


def test_an_orders_span_starts_at_its_oldest_version_of_each_source():
    # O1's shipment was staged with an older file than O1 itself (released from pending after
    # O1 came), and a later version moved its delivery date; O2 has only its order version.
    ts = dt.datetime.fromisoformat
    orders = ibis.memtable({"order_id": ["O1", "O1", "O2"], "load_seq": [5, 8, 6],
                            "placed_at": [ts("2024-01-02 10:00"), ts("2024-01-02 10:00"), ts("2024-01-03 09:00")],
                            "promised_ship_by": [dt.date(2024, 1, 5), dt.date(2024, 1, 5), dt.date(2024, 1, 6)],
                            "promised_delivery_by": [dt.date(2024, 1, 12), dt.date(2024, 2, 1), None]})
    shipments = ibis.memtable({"order_id": ["O1"], "load_seq": [3]})
    disputes = ibis.memtable({"order_id": ["O1", "O1"], "load_seq": [9, 11],
                              "updated_at": [ts("2024-01-20 08:00"), ts("2024-02-03 08:00")]})
    spans = order_spans(orders, shipments, disputes).order_by("order_id").to_pyarrow().to_pylist()
    assert spans == [
        {"order_id": "O1", "orders_from_seq": 5, "shipments_from_seq": 3, "disputes_from_seq": 9,
         "last_placed_at": ts("2024-01-02 10:00"), "last_due": ts("2024-02-01 00:00"),
         "last_disputed_at": ts("2024-02-03 08:00")},
        {"order_id": "O2", "orders_from_seq": 6, "shipments_from_seq": None, "disputes_from_seq": None,
         "last_placed_at": ts("2024-01-03 09:00"),
         "last_due": ts("2024-01-21 00:00"), "last_disputed_at": None},  # ship-by + 15 days: no delivery date promised
    ]


def spans_kept_and_rebuilt(paths: DataPaths) -> tuple[list[tuple], list[tuple]]:
    """features.order_spans as the runs kept it, and as built from every staged version."""
    con = connect(paths, read_only=True)
    try:
        backend = ibis_backend(con)
        rebuilt = rows_of(con, order_spans(**{name: backend.table(name, database="staging") for name in STAGED_EVENTS}))
        return con.execute("SELECT * FROM features.order_spans ORDER BY ALL").fetchall(), rebuilt
    finally:
        con.close()


def kept_and_recomputed_evidence(paths: DataPaths, config) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """(features.buyer_evidence, the same computed from the facts for the span it holds,
    meta.buyer_evidence_state)."""
    con = connect(paths, read_only=True)
    try:
        state = con.execute("SELECT * FROM meta.buyer_evidence_state").fetchall()
        (as_of, through, _windows), = state
        facts = ibis_backend(con).table("supplier_day_facts", database="features")
        recomputed = buyer_evidence(facts.filter(facts.day <= through), as_of, evidence_windows(policy_from(config)))
        kept = con.execute("SELECT * FROM features.buyer_evidence ORDER BY ALL").fetchall()
        fresh = rows_of(con, recomputed)
        return kept, fresh, state
    finally:
        con.close()


def stored_scores(paths: DataPaths, as_of: dt.date) -> list[list[tuple]]:
    return [query(paths, f"SELECT * EXCLUDE (run_id) FROM scores.{name} WHERE as_of_date = DATE '{as_of}' "
                         "ORDER BY ALL") for name in ("supplier_metrics", "supplier_rankings")]


def test_buyer_evidence_kept_from_day_to_day_equals_the_evidence_computed_from_scratch(small_marketplace, tmp_path,
                                                                                        config):
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "kept"))
    ingest(paths, config)
    last = latest_data_day(paths)
    days = [last - dt.timedelta(days=d) for d in (40, 39, 5, 0)]  # moved by 1, 34 and 5 days

    for as_of in days:
        score(paths, config, as_of, f"run-{as_of}")
        kept, fresh, state = kept_and_recomputed_evidence(paths, config)
        assert state == [(as_of, as_of, "90,365")]
        assert len(kept) > 1000 and kept == fresh

    # Scoring an earlier date again computes its evidence aside: the kept one stays on the latest date.
    score(paths, config, days[0], f"run-{days[0]}")
    assert kept_and_recomputed_evidence(paths, config)[2] == [(last, last, "90,365")]

    # The scores stored with evidence moved from day to day equal those of a warehouse that scores
    # the same dates with the evidence rebuilt from the facts each time (the state forgotten).
    rebuilt = copy_landing(small_marketplace, DataPaths(tmp_path / "rebuilt"))
    ingest(rebuilt, config)
    for as_of in days:
        con = connect(rebuilt)
        try:
            ensure_scoring_schema(con)
            con.execute("DELETE FROM meta.buyer_evidence_state")
        finally:
            con.close()
        score(rebuilt, config, as_of, f"run-{as_of}")
        assert stored_scores(paths, as_of) == stored_scores(rebuilt, as_of)


def facts_updated(paths: DataPaths, as_of: dt.date) -> dt.date | None:
    """update_facts up to as_of on its own; the first day it recomputed (None: none)."""
    con = connect(paths)
    try:
        with transaction(con):
            days = update_facts(con, ibis_backend(con), as_of)
        return as_of - dt.timedelta(days=days - 1) if days else None
    finally:
        con.close()


def facts_of_days(paths: DataPaths, last: dt.date) -> list[tuple]:
    return query(paths, f"SELECT * FROM features.supplier_day_facts WHERE day <= DATE '{last}' ORDER BY ALL")


def ingest_then_score(paths: DataPaths, config, as_of: dt.date | None = None) -> DataPaths:
    ingest(paths, config)
    score(paths, config, as_of or latest_data_day(paths), "run")
    return paths


def test_facts_a_late_file_changes_are_replaced_and_the_evidence_corrected_for_them(small_marketplace, tmp_path,
                                                                                    config):
    # The landing files of the last 10 days arrive after a run on the day before them; the
    # generated files carry versions of earlier days, so the facts of days the kept evidence
    # counts are recomputed.
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "late"))
    last = max(dt.date.fromisoformat(path.stem) for path in paths.landing.glob("orders/*.csv"))
    before = last - dt.timedelta(days=10)
    held = tmp_path / "held"
    for path in paths.landing.glob("*/*.csv"):
        if dt.date.fromisoformat(path.stem) > before:
            (held / path.parent.name).mkdir(parents=True, exist_ok=True)
            path.rename(held / path.parent.name / path.name)
    ingest_then_score(paths, config, before)
    for path in held.glob("*/*.csv"):
        path.rename(paths.landing / path.parent.name / path.name)
    ingest(paths, config)

    replaced = facts_of_days(paths, before)
    first = facts_updated(paths, last)
    assert first < before  # a late version changed a day the evidence counts
    # The facts are those of one pass over every file, of which the late versions changed a few
    # (so the correction has something to correct); the kept evidence, corrected for them, is
    # the evidence of the new facts.
    kept, fresh, state = kept_and_recomputed_evidence(paths, config)
    assert state == [(before, before, "90,365")] and kept == fresh
    one_pass = copy_landing(small_marketplace, DataPaths(tmp_path / "one pass"))
    ingest(one_pass, config)
    assert facts_of_days(paths, last) == facts_after_update(one_pass, batch_orders=0)[0]
    changed = len(set(facts_of_days(paths, before)) ^ set(replaced))
    assert 0 < changed < len(replaced) / 10
    kept, rebuilt = spans_kept_and_rebuilt(paths)
    assert len(kept) > 1000 and kept == rebuilt

    assert latest_data_day(paths) == last
    score(paths, config, last, "after")  # moves the corrected evidence to the new day
    kept, fresh, state = kept_and_recomputed_evidence(paths, config)
    assert state == [(last, last, "90,365")] and len(kept) > 1000 and kept == fresh


def test_facts_of_orders_released_from_pending_after_a_run_are_computed(small_marketplace, tmp_path, config):
    # One supplier's record comes after a run: its orders (and their shipments and disputes)
    # wait in pending meanwhile, then are staged with their own files' load_seq, which the
    # facts had already covered.
    paths = copy_landing(small_marketplace, DataPaths(tmp_path / "late supplier"))
    supplier, land_its_record = withhold_a_supplier(paths)
    last = latest_data_day(ingest_then_score(paths, config))
    waiting = query(paths, "SELECT count(*) FROM pending.orders")[0][0]
    land_its_record()
    ingest_then_score(paths, config, last)

    one_pass = copy_landing(small_marketplace, DataPaths(tmp_path / "one pass"))
    ingest(one_pass, config)
    assert waiting > 10 and query(paths, "SELECT count(*) FROM pending.orders") == [(0,)]
    assert query(paths, f"SELECT count(*) FROM features.supplier_day_facts WHERE supplier_id = '{supplier}'")[0][0] > 10
    assert facts_of_days(paths, last) == facts_after_update(one_pass, batch_orders=0)[0]
    kept, rebuilt = spans_kept_and_rebuilt(paths)
    assert kept == rebuilt
    kept, fresh, _state = kept_and_recomputed_evidence(paths, config)  # the scores count them too
    assert any(row[0] == supplier for row in kept) and kept == fresh


def test_facts_recomputed_over_all_history_stay_the_same_and_so_does_the_kept_evidence(small_marketplace, tmp_path,
                                                                                       config):
    short = dataclasses.replace(config, scoring=dataclasses.replace(config.scoring, long_window_days=20,
                                                                    short_window_days=5))
    paths = ingest_then_score(copy_landing(small_marketplace, DataPaths(tmp_path / "far")), short)
    last = latest_data_day(paths)
    facts = facts_of_days(paths, last)
    con = connect(paths)
    try:
        con.execute("UPDATE meta.facts_state SET load_seq = 0")  # as if every file had just been loaded
        con.execute("DELETE FROM features.order_spans")  # and the warehouse were older than the spans
    finally:
        con.close()
    assert facts_updated(paths, last) < last - dt.timedelta(days=20)
    assert facts_of_days(paths, last) == facts
    kept, rebuilt = spans_kept_and_rebuilt(paths)
    assert len(kept) > 1000 and kept == rebuilt
    kept, fresh, state = kept_and_recomputed_evidence(paths, short)
    assert state == [(last, last, "5,20")] and len(kept) > 100 and kept == fresh

    # Other windows in the config: the evidence kept for the old ones is rebuilt for the new.
    score(paths, config, last, "other windows")
    kept, fresh, state = kept_and_recomputed_evidence(paths, config)
    assert state == [(last, last, "90,365")] and len(kept) > 1000 and kept == fresh
