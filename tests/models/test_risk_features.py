"""Point-in-time order features (models/risk_features.py): given/expect on tiny tables, and
the leakage test on a small generated marketplace, all on real DuckDB."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path

import duckdb
import ibis
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from models.facts import supplier_day_facts
from models.latent_rate import LatentStream, latent_columns, stream_evidence, with_latent_rates
from models.outcomes import order_outcomes
from models.risk_features import (
    BUYER_HISTORY, MICRO, FeatureSettings, Sources, evidence_before, evidence_stream, feature_columns, month_starts,
    order_attributes, order_features, point_sums, snapshot_points, supplier_context, supplier_versions_before,
    typical_orders,
)
from models.shrinkage import PriorSettings
from synthetic import MarketplaceParams, write_marketplace
from tests.models.frames import DISPUTE_SCHEMA, ORDER_SCHEMA, day, dispute, order, table, ts

SETTINGS = FeatureSettings(short_window_days=90, long_window_days=365, recent_window_days=30,
                           priors=PriorSettings(5, 5, 2, 500, 1.2816), recent_prior_strength=20)
# the latent rates' filters are the model's (fitted when it is trained): fixed here
LATENT = {"defect": LatentStream(-3.0, 0.6, 0.03, 0.002), "late_shipment": LatentStream(-2.0, 0.5, 0.03, 0.002),
          "late_delivery": LatentStream(-2.0, 0.5, 0.03, 0.002)}
MARKET = MarketplaceParams(suppliers=25, days=150, seed=5, file_format="parquet", late_arrival_rate=0.05)
FIRST = MARKET.start
LAST = FIRST + dt.timedelta(days=MARKET.days - 1)
CUT = FIRST + dt.timedelta(days=100)  # orders placed on CUT see only what was known before it began
LATER = CUT + dt.timedelta(days=20)
_TEMP_IDS = itertools.count()

# Landing columns typed as staging types them (shared/CONTRACT.md).
TYPES = {
    "suppliers": {"registered_at": "TIMESTAMP", "updated_at": "TIMESTAMP"},
    "orders": {"placed_at": "TIMESTAMP", "order_amount_usd": "DECIMAL(18,2)", "promised_ship_by": "DATE",
               "promised_delivery_by": "DATE", "is_trade_assured": "BOOLEAN", "updated_at": "TIMESTAMP"},
    "shipments": {"shipped_at": "TIMESTAMP", "delivered_at": "TIMESTAMP", "has_valid_tracking": "BOOLEAN",
                  "updated_at": "TIMESTAMP"},
    "disputes": {"opened_at": "TIMESTAMP", "claim_amount_usd": "DECIMAL(18,2)", "refund_amount_usd": "DECIMAL(18,2)",
                 "resolved_at": "TIMESTAMP", "updated_at": "TIMESTAMP"},
}


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for setting in ("SET TimeZone = 'UTC'", "SET enable_progress_bar = false",
                    "SET lambda_syntax = 'ENABLE_SINGLE_ARROW'"):
        con.execute(setting)
    return con


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Path:
    """A small generated marketplace's landing files, typed into staging-like tables (every
    version, load_seq = file order, line_number = row in file)."""
    root = tmp_path_factory.mktemp("risk_market")
    write_marketplace(root, MARKET)
    con = _connect()
    for source, types in TYPES.items():
        files = sorted(str(p) for p in (root / "landing" / source).glob("*.parquet"))
        columns = duckdb.connect().execute(f"DESCRIBE SELECT * FROM read_parquet('{files[0]}')").fetchall()
        typed = ", ".join(f"CAST(CAST({c} AS TIMESTAMPTZ) AS TIMESTAMP) AS {c}" if types.get(c) == "TIMESTAMP"
                          else f"CAST({c} AS {types[c]}) AS {c}" if c in types else c
                          for c, *_ in columns)
        con.execute(f"CREATE TABLE {source} AS SELECT {typed}, "
                    f"dense_rank() OVER (ORDER BY filename) AS load_seq, "
                    f"row_number() OVER (PARTITION BY filename) AS line_number "
                    f"FROM read_parquet({files!r}, filename = true)")
    database = root / "staged.duckdb"
    con.execute(f"ATTACH '{database}' AS staged")
    for source in TYPES:
        con.execute(f"CREATE TABLE staged.{source} AS SELECT * FROM {source}")
    con.close()
    return database


def _features_of(con: duckdb.DuckDBPyConnection, last_placed: dt.date) -> pl.DataFrame:
    """Features of every order placed up to last_placed, from the tables on `con` (facts
    recomputed from them as of the end of the period, as the pipeline keeps them), the
    latent rates (models/latent_rate.py) included."""
    backend = ibis.duckdb.from_connection(con)
    orders, shipments, disputes, suppliers = (backend.table(n) for n in ("orders", "shipments", "disputes",
                                                                        "suppliers"))
    def cache(name: str, expression: ibis.Table) -> ibis.Table:
        temp = f"{name}_{next(_TEMP_IDS)}"
        backend.create_table(temp, expression, temp=True)
        return backend.table(temp)

    facts = cache("facts", supplier_day_facts(order_outcomes(orders, shipments, disputes, LAST), FIRST, LAST))
    attributes = cache("attributes", order_attributes(orders, disputes, LAST))
    points = snapshot_points(attributes, FIRST, last_placed)
    sources = Sources(facts, suppliers, orders, shipments, disputes)
    context = supplier_context(attributes, sources, points, month_starts(FIRST, last_placed), SETTINGS, cache)
    placed = attributes.filter(attributes.placed_on <= last_placed)
    frame = pl.from_arrow(backend.to_pyarrow(order_features(placed, context, SETTINGS)))
    evidence = pl.from_arrow(backend.to_pyarrow(stream_evidence(facts)))
    return with_latent_rates(frame, evidence, LATENT).sort("order_id")


def _copy(landed_db: Path) -> duckdb.DuckDBPyConnection:
    con = _connect()
    con.execute(f"ATTACH '{landed_db}' AS staged (READ_ONLY)")
    for source in TYPES:
        con.execute(f"CREATE TABLE {source} AS SELECT * FROM staged.{source}")
    return con


@pytest.fixture(scope="module")
def baseline(landed) -> pl.DataFrame:
    """Features of the orders placed up to 20 days after the cut, from the data as landed."""
    con = _copy(landed)
    try:
        return _features_of(con, LATER)
    finally:
        con.close()


def _up_to_cut(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("placed_on") <= CUT)


def test_features_cover_every_order_with_the_declared_columns(baseline):
    assert baseline.height > 500
    names = [*feature_columns(SETTINGS), *latent_columns()]
    assert baseline.columns == ["order_id", "supplier_id", "placed_on", *names]
    assert all(baseline.schema[c] == pl.Float64 for c in names)
    assert baseline["order_id"].is_unique().all()
    # evidence exists for most orders, but never for a supplier's very first day of orders
    assert baseline["rate_late_shipment_365"].null_count() < baseline.height / 2
    # latent rates for every order; they moved away from the priors on the evidence
    assert baseline.select(latent_columns()).null_count().sum_horizontal().item() == 0
    assert baseline["latent_late_shipment_log_odds"].n_unique() > baseline.height / 10


def test_later_events_do_not_change_earlier_features(landed, baseline):
    """Given: every kind of event after the cut (a later order version, a new and an updated
    shipment, a dispute opened and decided, a later supplier version). Expect: the features
    of every order placed up to the cut's day are exactly the same."""
    con = _copy(landed)
    try:
        _add_events_after(con, dt.datetime.combine(CUT, dt.time()))
        changed = _features_of(con, LATER)
    finally:
        con.close()
    assert_frame_equal(_up_to_cut(changed), _up_to_cut(baseline))
    # the additions did land: features of the orders placed after the cut moved
    after_cut = pl.col("placed_on") > CUT
    assert not changed.filter(after_cut).equals(baseline.filter(after_cut))


def test_forgetting_everything_recorded_after_the_cut_changes_nothing_before_it(landed, baseline):
    """The strongest form: drop every record version updated after the cut's day (the
    orders placed on it stay: they are recorded during it)."""
    con = _copy(landed)
    try:
        for source in TYPES:
            con.execute(f"DELETE FROM {source} WHERE updated_at >= ?",
                        [dt.datetime.combine(CUT + dt.timedelta(days=1), dt.time())])
        truncated = _features_of(con, CUT)
    finally:
        con.close()
    assert_frame_equal(truncated, _up_to_cut(baseline))


def test_features_are_the_same_bits_on_one_thread_as_on_many(landed, baseline):
    """Every sum is taken in integers (millionths) or decimals: a parallel engine adds rows
    in whatever order its threads finish, and doubles would then differ in the last bit."""
    con = _copy(landed)
    try:
        con.execute("SET threads = 1")
        single = _features_of(con, LATER)
    finally:
        con.close()
    assert_frame_equal(single, baseline, check_exact=True)


def _add_events_after(con: duckdb.DuckDBPyConnection, after: dt.datetime) -> None:
    hour = dt.timedelta(hours=1)
    day_ = dt.timedelta(days=1)
    seq = con.execute("SELECT max(load_seq) + 1 FROM orders").fetchall()[0][0]
    victims = [r[0] for r in con.execute(
        "SELECT order_id FROM orders WHERE placed_at < ? - INTERVAL 20 DAY GROUP BY order_id "
        "HAVING bool_and(status <> 'cancelled') ORDER BY order_id DESC LIMIT 40", [after]).fetchall()]
    assert len(victims) == 40
    for i, order_id in enumerate(victims):
        con.execute("INSERT INTO orders SELECT * REPLACE ('cancelled' AS status, 'supplier' AS cancelled_by, "
                    "? AS updated_at, 9999 AS order_amount_usd, 'other' AS category, ? AS load_seq) "
                    "FROM orders WHERE order_id = ? ORDER BY updated_at DESC LIMIT 1", [after + hour, seq, order_id])
        con.execute("INSERT INTO shipments VALUES (?, ?, ?, ?, 'DHL', false, ?, ?, 1)",
                    [f"SHX{i}", order_id, after + 2 * hour, after + 3 * day_, after + 3 * day_, seq])
        con.execute("INSERT INTO disputes VALUES (?, ?, ?, 'not_received', 10, 'resolved', 'buyer_full_refund', 10, "
                    "?, ?, ?, 1)", [f"DPX{i}", order_id, after + 3 * hour, after + 9 * day_, after + 9 * day_, seq])
    con.execute("INSERT INTO shipments SELECT * REPLACE (? AS delivered_at, ? AS updated_at, ? AS load_seq) "
                "FROM shipments WHERE delivered_at IS NULL AND shipped_at < ?", [after + day_, after + day_, seq, after])
    con.execute("INSERT INTO suppliers SELECT * REPLACE ('other' AS main_category, TIMESTAMP '2000-01-01' AS "
                "registered_at, ? AS updated_at, ? AS load_seq) FROM suppliers", [after + hour, seq])


# Given/expect on tiny tables ---------------------------------------------------------

def _memtable(rows: list[dict], schema: dict) -> ibis.Table:
    return ibis.memtable(pa.Table.from_pylist(rows, schema=ibis.schema(schema).to_pyarrow()))


def _run(expression: ibis.Table) -> list[dict]:
    con = _connect()
    try:
        return ibis.duckdb.from_connection(con).to_pyarrow(expression).to_pylist()
    finally:
        con.close()


def _sums_in_polars(daily: ibis.Table, points: ibis.Table, windows: tuple[int, ...]) -> ibis.Table:
    stream = pl.from_arrow(pa.Table.from_pylist(_run(evidence_stream(daily, points, windows))))
    return ibis.memtable(point_sums(stream, windows).to_arrow())


# the window sums by DuckDB's window functions (engine-agnostic) and by polars (the pipeline's)
SUMS = pytest.mark.parametrize("sums", [evidence_before, _sums_in_polars], ids=["window functions", "polars"])


@SUMS
def test_window_sums_take_the_days_before_the_point_only(sums):
    """Given evidence on days 10, 11 and 12 (day numbers) and a lookup on day 12: the
    1-day window holds day 11, the 2-day window days 10-11, all time days 10-11."""
    d10 = dt.date(1970, 1, 11)
    daily = _memtable([{"supplier_id": "S1", "day_number": 10 + i, "x_orders": 10 ** i * MICRO,
                        "n_orders": MICRO} for i in range(3)],  # daily evidence is in millionths
                      {"supplier_id": "string", "day_number": "int64", "x_orders": "int64", "n_orders": "int64"})
    points = _memtable([{"supplier_id": "S1", "point_on": d10 + dt.timedelta(days=2)}],
                       {"supplier_id": "string", "point_on": "date"})
    (row,) = _run(sums(daily, points, (1, 2)))
    assert (row["x_orders_1"], row["x_orders_2"], row["x_orders_0"], row["n_orders_0"]) == (10.0, 11.0, 11.0, 2.0)


@SUMS
def test_window_sums_at_points_far_apart_equal_sums_over_the_days(sums):
    """Scoring asks at a few days far apart, so the days between markers are summed in
    buckets first: every window at every point equals the plain sum of its days, whether a
    day falls on a marker's day, just before it, before every marker or after every marker,
    and for a supplier asked before its first evidence or with none."""
    days = [d for d in range(100, 260) if d % 7 not in (3, 5)]  # gaps, as suppliers have
    rows = [{"supplier_id": s, "day_number": d, "x_orders": (d * 37 + i) % 11 * MICRO, "n_orders": MICRO}
            for i, s in enumerate(("S1", "S2")) for d in days if s == "S1" or d >= 180]
    daily = _memtable(rows, {"supplier_id": "string", "day_number": "int64", "x_orders": "int64", "n_orders": "int64"})
    epoch = dt.date(1970, 1, 1)
    # markers from day 110 (170 - 60) to day 250: days 100-109 and 250-259 fall outside them
    asked = [("S1", 170), ("S1", 171), ("S1", 230), ("S1", 250), ("S2", 175), ("S2", 200), ("S3", 200)]
    points = _memtable([{"supplier_id": s, "point_on": epoch + dt.timedelta(days=d)} for s, d in asked],
                       {"supplier_id": "string", "point_on": "date"})
    windows = (1, 7, 60)
    got = {(r["supplier_id"], (r["point_on"] - epoch).days): r for r in _run(sums(daily, points, windows))}

    def summed(supplier, first, last, column):  # the days first..last-1
        return sum(r[column] for r in rows if r["supplier_id"] == supplier and first <= r["day_number"] < last) / MICRO

    expected = {(s, d): {f"{c}_{w}": summed(s, d - w if w else 0, d, c) for c in ("x_orders", "n_orders")
                         for w in (0, *windows)} for s, d in asked}
    assert {k: {c: v[c] for c in expected[k]} for k, v in got.items()} == expected


def test_supplier_attributes_are_those_of_the_latest_version_before_the_day():
    schema = {"supplier_id": "string", "main_category": "string", "country_code": "string",
              "registered_at": "timestamp", "updated_at": "timestamp", "load_seq": "int64", "line_number": "int64"}
    versions = _memtable([
        {"supplier_id": "S1", "main_category": "tools", "country_code": "CN", "registered_at": ts("2023-01-01 00:00"),
         "updated_at": ts("2024-01-01 08:00"), "load_seq": 1, "line_number": 1},
        {"supplier_id": "S1", "main_category": "toys", "country_code": "CN", "registered_at": ts("2023-01-01 00:00"),
         "updated_at": ts("2024-01-05 08:00"), "load_seq": 2, "line_number": 1},
    ], schema)
    points = _memtable([{"supplier_id": "S1", "point_on": day("2024-01-05")},
                        {"supplier_id": "S1", "point_on": day("2024-01-06")},
                        {"supplier_id": "S1", "point_on": day("2024-01-01")}],
                       {"supplier_id": "string", "point_on": "date"})
    rows = sorted(_run(supplier_versions_before(versions, points)), key=lambda r: r["point_on"])
    assert [(r["point_on"], r["main_category"]) for r in rows] == [
        (day("2024-01-05"), "tools"), (day("2024-01-06"), "toys")]  # nothing known before 01-01 began


def test_buyer_history_counts_orders_recorded_before_the_placement():
    """O4 was placed before O3 but recorded only after it: O3 does not count it."""
    orders = table([
        order("O1", placed_at=ts("2024-01-01 10:00"), updated_at="2024-01-01 10:00"),
        order("O2", placed_at=ts("2024-01-02 08:00"), updated_at="2024-01-02 08:00"),
        order("O4", placed_at=ts("2024-01-02 09:00"), updated_at="2024-01-04 00:00"),
        order("O3", placed_at=ts("2024-01-03 10:00"), updated_at="2024-01-03 10:00"),
        order("O5", placed_at=ts("2024-01-03 10:00"), updated_at="2024-01-03 10:00", buyer_id="B2"),
        order("O1", placed_at=ts("2024-01-01 10:00"), updated_at="2024-01-09 10:00", status="cancelled"),
    ], ORDER_SCHEMA)
    rows = {r["order_id"]: r for r in _run(order_attributes(orders, table([], DISPUTE_SCHEMA), day("2024-01-10")))}
    assert {k: v["buyer_prior_orders"] for k, v in rows.items()} == {"O1": 0, "O2": 1, "O4": 2, "O3": 2, "O5": 0}
    assert (rows["O1"]["days_to_ship"], rows["O1"]["days_to_deliver"]) == (4, 19)
    assert rows["O4"]["known_at"] == ts("2024-01-04 00:00")


def test_buyer_history_with_every_supplier_counts_what_was_recorded_before_the_placement():
    """B1 buys from S1, S2 and S3. Its S2 order is cancelled by S2 on 01-03 and its S1 order
    is disputed on 01-04 and lost on 01-08: O3 (01-05) sees two orders, the cancellation
    and the dispute opened; O4 (01-09) sees O3 and the lost dispute too, but not O6, placed
    the same day before it; B2 sees nothing of B1's. Only days that had ended count."""
    orders = table([
        order("O1", placed_at=ts("2024-01-01 10:00"), updated_at="2024-01-01 10:00"),
        order("O2", supplier_id="S2", placed_at=ts("2024-01-02 10:00"), updated_at="2024-01-02 10:00"),
        order("O2", supplier_id="S2", placed_at=ts("2024-01-02 10:00"), updated_at="2024-01-03 10:00",
              status="cancelled", cancelled_by="supplier"),
        order("O3", supplier_id="S3", placed_at=ts("2024-01-05 10:00"), updated_at="2024-01-05 10:00"),
        order("O4", supplier_id="S3", placed_at=ts("2024-01-09 10:00"), updated_at="2024-01-09 10:00"),
        order("O6", supplier_id="S4", placed_at=ts("2024-01-09 08:00"), updated_at="2024-01-09 08:00"),
        order("O5", buyer_id="B2", placed_at=ts("2024-01-09 10:00"), updated_at="2024-01-09 10:00",
              buyer_country_code="FR", is_trade_assured=False),
        order("O5", buyer_id="B2", placed_at=ts("2024-01-09 10:00"), updated_at="2024-01-09 11:00",
              buyer_country_code="US"),
    ], ORDER_SCHEMA)
    disputes = table([dispute("D1", "O1", updated_at="2024-01-04 00:00", opened_at="2024-01-04 00:00"),
                      dispute("D1", "O1", updated_at="2024-01-08 00:00", opened_at="2024-01-04 00:00",
                              status="resolved", outcome="buyer_full_refund")], DISPUTE_SCHEMA)
    rows = {r["order_id"]: r for r in _run(order_attributes(orders, disputes, day("2024-01-10")))}
    history = {k: tuple(v[c] for c in BUYER_HISTORY) for k, v in rows.items()}
    assert history == {"O1": (0, 0, 0, 0), "O2": (1, 0, 0, 0), "O3": (2, 1, 1, 0), "O4": (3, 1, 1, 1),
                       "O6": (3, 1, 1, 1), "O5": (0, 0, 0, 0)}
    assert (rows["O5"]["buyer_country_code"], rows["O5"]["is_trade_assured"]) == ("FR", False)  # as placed


def test_a_typical_order_takes_the_medians_of_one_order_per_buyer_and_a_returning_buyer():
    """B9 places ten orders with S1 (a ring account, say): only its first one counts. Three
    of S1's five buyers are abroad and four have trade assurance: so has the typical one."""
    rows = [("B1", "100", 2, 10, "US", 3), ("B2", "300", 4, None, "CN", 5), ("B3", "200", 3, 12, "US", 1),
            ("B4", "900", 9, 20, "DE", 9)]
    rows += [("B9", "7", 1, 5, "CN", 0)] + [("B9", "8", 1, 5, "CN", 0)] * 9
    history = {c: "int64" for c in BUYER_HISTORY}
    attributes = _memtable([
        {"order_id": f"O{i}", "supplier_id": "S1", "buyer_id": buyer, "placed_on": day("2024-03-01") + dt.timedelta(i),
         "order_amount_usd": Decimal(a), "days_to_ship": s, "days_to_deliver": d, "buyer_prior_orders": 0,
         "buyer_country_code": country, "is_trade_assured": buyer != "B9",
         **{c: n if c == "buyer_orders" else 0 for c in BUYER_HISTORY}}
        for i, (buyer, a, s, d, country, n) in enumerate(rows)
    ] + [{"order_id": "OX", "supplier_id": "S2", "buyer_id": "B1", "placed_on": day("2023-01-01"),
          "order_amount_usd": Decimal("5"), "days_to_ship": 1, "days_to_deliver": None, "buyer_prior_orders": 0,
          "buyer_country_code": "US", "is_trade_assured": False, **{c: 0 for c in BUYER_HISTORY}}],
        {"order_id": "string", "supplier_id": "string", "buyer_id": "string", "placed_on": "date",
         "order_amount_usd": "decimal(18,2)", "days_to_ship": "int64", "days_to_deliver": "int64",
         "buyer_prior_orders": "int64", "buyer_country_code": "string", "is_trade_assured": "boolean", **history})
    known = _memtable([{"supplier_id": "S1", "main_category": "tools", "country_code": "CN"},
                       {"supplier_id": "S2", "main_category": "toys", "country_code": "US"}],
                      {"supplier_id": "string", "main_category": "string", "country_code": "string"})
    rows = {r["supplier_id"]: r for r in _run(typical_orders(attributes, known, day("2024-03-31"), 365))}
    s1, s2 = rows["S1"], rows["S2"]
    assert (s1["order_amount_usd"], s1["days_to_ship"], s1["days_to_deliver"], s1["buyer_prior_orders"]) == (
        200.0, 3, 11, 1)
    assert (s1["category"], s1["placed_on"]) == ("tools", day("2024-04-01"))
    assert (s1["buyer_country_code"] != "CN", s1["is_trade_assured"], s1["buyer_orders"]) == (True, True, 3)
    assert (s2["order_amount_usd"], s2["days_to_ship"], s2["category"]) == (200.0, 3, "toys")
