"""Fraud rings: small dedicated buyer groups placing perfect fake orders for a mediocre supplier."""

from __future__ import annotations

import polars as pl


def test_only_ring_suppliers_have_fake_orders(generated):
    suppliers = generated.truth("suppliers")
    fakes = generated.truth("orders").filter("is_fake")
    rings = set(suppliers.filter("is_fraud_ring")["supplier_id"])
    assert len(rings) == round(generated.params.fraud_ring_share * generated.params.suppliers)
    assert set(fakes["supplier_id"]) == rings


def test_each_ring_is_three_to_six_buyers_loyal_to_one_supplier(generated):
    orders = generated.truth("orders")
    fakes = orders.filter("is_fake")
    ring_sizes = fakes.group_by("supplier_id").agg(pl.col("buyer_id").n_unique())["buyer_id"]
    assert ring_sizes.min() >= 3 and ring_sizes.max() <= 6
    ring_buyers = set(fakes["buyer_id"])
    assert orders.filter(pl.col("buyer_id").is_in(ring_buyers) & ~pl.col("is_fake")).height == 0


def test_fakes_are_many_small_orders(generated):
    orders = generated.truth("orders").filter(pl.col("supplier_id").is_in(
        generated.truth("suppliers").filter("is_fraud_ring")["supplier_id"].implode()))
    ring_start = orders.filter("is_fake").group_by("supplier_id").agg(start=pl.col("placed_at").min())
    after = orders.join(ring_start, on="supplier_id").filter(pl.col("placed_at") >= pl.col("start"))
    fake, real = after["is_fake"].sum(), (~after["is_fake"]).sum()
    assert fake >= 1.5 * real
    assert orders.filter("is_fake")["order_amount_usd"].median() < 0.2 * orders.filter(~pl.col("is_fake"))[
        "order_amount_usd"].median()


def test_fakes_look_perfect_in_the_landed_records(recomputed):
    fakes = recomputed.filter(pl.col("is_fake") & pl.col("is_settled"))
    assert fakes.height > 20
    assert (fakes["status"] == "completed").all()
    assert fakes["on_time_ship"].all() and fakes["disputes"].is_null().all()
    promised = fakes.filter(pl.col("promised_delivery_by").is_not_null())
    assert promised["on_time_delivery"].all()
    assert (fakes["true_defect_probability"] == 0).all() and not fakes["is_defect"].any()


def test_ring_suppliers_have_a_mediocre_or_bad_real_record(generated):
    suppliers = generated.truth("suppliers")
    cutoff = suppliers["latent_reliability_at_start"].quantile(0.6)
    assert (suppliers.filter("is_fraud_ring")["latent_reliability_at_start"] <= cutoff).all()
