"""The analysts' API (pipelines/analyst) and the evidence it reads (pipelines/publish_metrics.py),
on one published marketplace shared by the session (tests/published_marketplace.py)."""

from __future__ import annotations

import hashlib
import io
import math
import shutil
import subprocess
import sys
import textwrap

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from rich.console import Console

from pipelines import analyst, cli
from pipelines.analyst import store
from pipelines.analyst.reasons import explain
from pipelines.publish_metrics import DECISIONS_FILE, METRICS_FILE, write_evidence_snapshot
from pipelines.settings import DataPaths
from pipelines.warehouse import connect
from tests.published_marketplace import published_marketplace

CONTRACT_RATES = ("on_time_delivery", "late_shipment", "order_defect", "dispute_loss")


@pytest.fixture(scope="module")
def market(small_marketplace, tmp_path_factory) -> DataPaths:
    return published_marketplace(small_marketplace, tmp_path_factory)


@pytest.fixture(scope="module")
def pub(market) -> analyst.Published:
    return analyst.open(market.root)


def same(a, b) -> bool:
    """Equal, NaN and None alike counting as missing."""
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in (a, b)]
    return all(missing) or (not any(missing) and a == b)


def test_the_evidence_is_published_beside_the_contract_for_every_snapshot(market, pub):
    dates = store.snapshot_dates(market)
    assert len(dates) == 2
    for day in dates:
        folder = market.published / "history" / f"as_of={day}"
        assert {METRICS_FILE, DECISIONS_FILE} <= {p.name for p in folder.iterdir()}
    metrics = pub.metrics()
    assert metrics["as_of_date"].unique().to_list() == [pub.as_of]
    assert metrics.group_by("supplier_id").len()["len"].unique().to_list() == [22]  # 11 metrics x 2 windows
    assert sorted(metrics["window_days"].unique().to_list()) == [90, 365]
    assert not list(market.published.glob(".publishing*"))


def test_an_older_date_adds_history_and_leaves_the_current_evidence_alone(market, tmp_path):
    copy = DataPaths(tmp_path / "data")
    shutil.copytree(market.root, copy.root, ignore=shutil.ignore_patterns("landing", "truth"))
    older = store.snapshot_dates(copy)[0]
    current = {name: (copy.published / name).read_bytes() for name in (METRICS_FILE, DECISIONS_FILE)}
    con = connect(copy)
    try:
        write_evidence_snapshot(copy, con, older)
    finally:
        con.close()
    assert {name: (copy.published / name).read_bytes() for name in current} == current
    assert pq.read_table(copy.published / "history" / f"as_of={older}" / METRICS_FILE).column(
        "as_of_date")[0].as_py() == older


@pytest.mark.parametrize("frame", ["polars", "pandas"])
def test_the_scorecard_of_a_supplier_matches_its_published_row(pub, frame):
    rankings = pub.rankings()
    for row in (rankings.row(0, named=True), rankings.row(rankings.height // 2, named=True)):
        card = pub.scorecard(row["supplier_id"], frame=frame)
        assert card.published == row and card.as_of_date == row["as_of_date"]
        assert {k: card.decision[k] for k in ("tier", "protection_status", "is_protected", "protection_limit_usd")} \
            == {k: row[k] for k in ("tier", "protection_status", "is_protected", "protection_limit_usd")}
        metrics = pl.from_pandas(card.metrics) if frame == "pandas" else card.metrics
        assert isinstance(card.metrics, pd.DataFrame if frame == "pandas" else pl.DataFrame)
        assert metrics.height == 22 and set(metrics["window_days"]) == {90, 365}
        long = {r["metric"]: r for r in metrics.filter(pl.col("window_days") == 365).iter_rows(named=True)}
        for metric in CONTRACT_RATES:
            assert same(long[metric]["rate"], row[f"{metric}_rate_365d"]), metric
        assert long["orders"]["raw_denominator"] == row["orders_365d"]
        assert round(long["gmv_usd"]["raw_numerator"], 2) == float(row["gmv_usd_365d"])
        assert long["orders"]["buyers"] == row["distinct_buyers_365d"]
        assert {"meets", "misses", "no_evidence"} >= set(metrics["status"].drop_nulls())
        assert [r["code"] for r in card.reasons] == row["reason_codes"]
        assert all("no explanation" not in r["explanation"] for r in card.reasons)
        assert card.risk["probability"] == row["risk_probability"] and card.risk["drivers"]
        history = pl.from_pandas(card.history) if frame == "pandas" else card.history
        assert history.height == 2 and history["reliability_score"][-1] == row["reliability_score"]
        assert not card.notes


def test_every_published_reason_code_reads_as_a_sentence_with_the_suppliers_figures(pub):
    policy, components = pub.policy, {c.name: c for c in pub.policy.components}
    decisions = {r["supplier_id"]: r for r in pub.decisions().iter_rows(named=True)}
    for row in pub.rankings().iter_rows(named=True):
        facts = {**row, **decisions[row["supplier_id"]], "distinct_buyers": row["distinct_buyers_365d"]}
        for code in row["reason_codes"]:
            text = explain(code, facts, policy.protection, components, policy.tier_bars["good"])
            assert "no explanation" not in text and "{" not in text and text.endswith("."), (code, text)


def test_compare_puts_suppliers_side_by_side_in_the_order_asked(pub):
    ids = pub.rankings()["supplier_id"].to_list()[:3][::-1]
    side = pub.compare(ids, frame="pandas")
    assert list(side["supplier_id"]) == ids
    assert {"order_defect_rate_90d", "order_defect_rate_365d", "late_shipment_rate_90d"} <= set(side.columns)
    with pytest.raises(ValueError, match="not in the publication"):
        pub.compare(["NOPE"])


def test_the_what_if_under_the_published_policy_reproduces_the_publication(pub):
    result = pub.what_if()
    assert result.summary["gains"] == result.summary["loses"] == result.summary["status_changes"] == 0
    s = result.suppliers
    for column in ("reliability_score", "reliability_score_lower", "tier", "protection_status", "is_protected"):
        assert (s[f"{column}_now"] == s[f"{column}_what_if"]).all(), column
    assert ((s["protection_limit_usd_now"] - s["protection_limit_usd_what_if"]).abs() < 0.005).all()
    assert s["reason_codes_now"].to_list() == s["reason_codes_what_if"].to_list()


def test_a_stricter_policy_shows_who_loses_protection_and_the_covered_gmv(pub):
    rankings = pub.rankings()
    protected = rankings.filter(pl.col("is_protected"))
    assert protected.height > 0
    result = pub.what_if(min_matured_orders=10_000)
    assert result.summary["loses"] == protected.height and result.summary["gains"] == 0
    assert result.summary["covered_gmv_usd_what_if"] == 0
    assert result.summary["covered_gmv_usd_now"] == pytest.approx(float(protected["gmv_usd_365d"].cast(float).sum()))
    assert set(result.lost["supplier_id"]) == set(protected["supplier_id"])
    assert set(result.lost["protection_status_what_if"]) == {"insufficient_history"}
    heavier = pub.what_if(weights={"late_delivery": 0.05}, frame="pandas")
    assert (heavier.suppliers["reliability_score_what_if"] != heavier.suppliers["reliability_score_now"]).any()


def test_bad_overrides_and_unknown_suppliers_are_refused_with_the_valid_names(pub):
    with pytest.raises(ValueError, match="unknown protection rule.*eligible_bar"):
        pub.what_if(eligible_barr=65)
    with pytest.raises(ValueError, match="no component named nope.*late_delivery"):
        pub.what_if(weights={"nope": 1.0})
    with pytest.raises(ValueError, match="is not in the publication"):
        pub.scorecard("S999999")
    with pytest.raises(ValueError, match="frame="):
        pub.rankings(frame="arrow")


def _tree(root) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


HOLD_WAREHOUSE = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])        # read-write: locks the file against every other process
    print("holding", flush=True)
    sys.stdin.read()
""")


def test_the_api_changes_nothing_on_disk_and_needs_no_warehouse(market):
    """While another process holds the warehouse (as a run does), the API reads and
    re-decides from published/ alone, and not one file of the dataset changes."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WAREHOUSE, str(market.warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        before = _tree(market.root)
        pub = analyst.open(market.root)
        pub.history(frame="pandas")
        ids = pub.rankings()["supplier_id"].to_list()
        pub.scorecard(ids[0])
        pub.compare(ids[:2])
        stricter = pub.what_if(eligible_bar=75, min_matured_orders=40, weights={"order_defect": 0.6},
                               tier_bars={"good": 75})
        assert stricter.summary["status_changes"] > 0
        assert _tree(market.root) == before
    finally:
        holder.communicate("", timeout=30)


def test_explain_prints_the_scorecard_with_upstream_strings_as_text(market, pub, monkeypatch):
    supplier = pub.rankings().filter(pl.col("supplier_name").str.contains("[bold red]", literal=True)).row(0, named=True)
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=250, color_system=None))
    result = CliRunner().invoke(cli.main, ["explain", supplier["supplier_id"], "--data-dir", str(market.root)])
    assert result.exit_code == 0, result.output
    shown = buffer.getvalue()
    assert supplier["supplier_name"] in shown  # the markup shows as typed, not as a style
    assert "Why: reason codes" in shown and "numerator / denominator" in shown and "History" in shown
    first = pub.scorecard(supplier["supplier_id"]).reasons[0]["explanation"]
    assert first[:40] in shown
    missing = CliRunner().invoke(cli.main, ["explain", "S999999", "--data-dir", str(market.root)])
    assert missing.exit_code == 2 and "not in the publication" in missing.output
