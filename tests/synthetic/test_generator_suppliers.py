"""Suppliers: cohorts, heavy-tailed volume, registrations, record versions and reliability paths."""

from __future__ import annotations

import polars as pl
import pytest

from tests.synthetic.generator_landing import read_source, timestamp, violations


@pytest.fixture(scope="module")
def paths(generated) -> pl.DataFrame:
    """Per supplier: dynamics kind, first and last reliability, and the biggest moves."""
    days = generated.truth("supplier_days").sort("supplier_id", "date")
    moves = days.with_columns(
        step=pl.col("latent_reliability").diff().over("supplier_id"),
        ten_day=(pl.col("latent_reliability") - pl.col("latent_reliability").shift(10)).over("supplier_id"))
    summary = moves.group_by("supplier_id").agg(
        first=pl.col("latent_reliability").first(), last=pl.col("latent_reliability").last(),
        biggest_daily_fall=-pl.col("step").min(), biggest_daily_rise=pl.col("step").max(),
        biggest_ten_day_fall=-pl.col("ten_day").min(), days=pl.len())
    return summary.join(generated.truth("suppliers"), on="supplier_id")


def test_every_kind_of_path_is_present(paths):
    counts = dict(paths.group_by("dynamics").len().iter_rows())
    assert set(counts) == {"stable", "drift", "collapse", "improve"}
    assert counts["stable"] > max(counts["drift"], counts["collapse"], counts["improve"])


def test_stable_suppliers_stay_put(paths):
    stable = paths.filter(pl.col("dynamics") == "stable")
    assert (stable["last"] - stable["first"]).abs().max() < 1e-12


def test_collapse_is_a_sudden_fall_after_a_good_record(paths):
    collapse = paths.filter(pl.col("dynamics") == "collapse")
    fall = collapse["first"] - collapse["last"]
    assert (fall > 0.02).all()
    assert (collapse["biggest_ten_day_fall"] >= 0.8 * fall).all()
    assert collapse["first"].median() > paths.filter(pl.col("dynamics") == "stable")["first"].median()


def test_drift_is_a_gradual_decline(paths):
    drift = paths.filter(pl.col("dynamics") == "drift")
    fall = drift["first"] - drift["last"]
    assert (fall > 0).all() and (drift["biggest_daily_rise"] <= 1e-12).all()
    assert (drift["biggest_daily_fall"] <= 0.25 * fall).all()


def test_improvers_get_better(paths):
    improve = paths.filter(pl.col("dynamics") == "improve")
    assert (improve["last"] > improve["first"]).all()
    assert (improve["biggest_daily_fall"] <= 1e-12).all()


def test_truth_end_reliability_is_the_last_day(paths):
    assert (paths["latent_reliability"] - paths["last"]).abs().max() < 1e-12


def test_volume_is_heavy_tailed(generated):
    real = generated.truth("orders").filter(~pl.col("is_fake"))
    per_supplier = real.group_by("supplier_id").len().sort("len", descending=True)["len"]
    top = per_supplier.head(max(1, len(per_supplier) // 10)).sum()
    assert top / per_supplier.sum() > 0.3


def test_cohorts_are_categories_by_iso_countries(generated):
    suppliers = generated.truth("suppliers")
    assert suppliers["category"].n_unique() >= 6 and suppliers["country_code"].n_unique() >= 6
    assert suppliers["country_code"].str.contains(r"^[A-Z]{2}$").all()


def test_joiners_register_in_the_period_and_sell_only_afterwards(generated):
    start = pl.lit(generated.params.start).cast(pl.Datetime("us", "UTC"))
    suppliers = generated.truth("suppliers").with_columns(joined=pl.col("registered_at") >= start)
    assert 0 < suppliers["joined"].sum() < suppliers.height / 2
    orders = generated.truth("orders").join(suppliers, on="supplier_id")
    assert orders.filter(pl.col("placed_at") <= pl.col("registered_at")).height == 0


def test_supplier_records_start_at_registration_and_get_renamed(generated):
    rows = read_source(generated.data_dir, "suppliers")
    rows = rows.filter(~violations(rows, "suppliers")).with_columns(
        updated=timestamp("updated_at"), registered=timestamp("registered_at"))
    first = rows.sort("updated").group_by("supplier_id").first()
    start = pl.lit(generated.params.start).cast(pl.Datetime("us", "UTC"))
    joiners = first.filter(pl.col("registered") >= start)
    assert joiners.height > 0 and (joiners["updated"] == joiners["registered"]).all()
    old = first.filter(pl.col("registered") < start)
    assert (old["updated"].dt.date() == generated.params.start).all()
    assert set(first["supplier_id"]) == set(generated.truth("suppliers")["supplier_id"])
    names = rows.group_by("supplier_id").agg(pl.col("supplier_name").n_unique())
    assert names.filter(pl.col("supplier_name") > 1).height > 0
