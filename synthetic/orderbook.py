"""The order book: real and fake orders together, in placement order, with drawn defects."""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic import cohorts
from synthetic.fraud import fake_orders
from synthetic.orders import (BUYERS_PER_SUPPLIER, daily_rates, defect_probability, draw_buyers,
                              expand_counts, first_orders, order_terms)
from synthetic.params import MarketplaceParams


def build_order_book(suppliers: pl.DataFrame, defect_logit: np.ndarray, params: MarketplaceParams,
                     rng: np.random.Generator) -> pl.DataFrame:
    """All orders; grain: one row per order, order_idx = rank by placed_t (the id order).

    Columns: order_idx, supplier_idx, buyer_idx, day, placed_t, category, is_off_category,
    buyer_country, amount_cents, is_trade_assured, ship_by_day, delivery_by_day (NEVER =
    no promise), route_days, is_fake, is_first_order, is_holiday,
    true_defect_probability, is_defect.
    """
    rates = daily_rates(suppliers, params)
    n_buyers = max(200, BUYERS_PER_SUPPLIER * params.suppliers)
    buyer_country = rng.choice(len(cohorts.COUNTRIES), n_buyers, p=cohorts.BUYER_COUNTRY_SHARE).astype(np.int8)
    real = expand_counts(rng.poisson(rates), rng)
    real["buyer_idx"] = draw_buyers(real["supplier_idx"], rates.sum(axis=1), n_buyers, rng)
    real.update(order_terms(real, suppliers, buyer_country, rng))
    fake = fake_orders(suppliers, rates, n_buyers, rng)
    book = _concat_in_placement_order(real, fake)
    book["is_first_order"] = first_orders(book["supplier_idx"], book["buyer_idx"], book["placed_t"])
    book["is_holiday"] = cohorts.holiday_mask(params.start, params.days)[book["day"]]
    # fakes are staged to look perfect: nothing can go wrong with them
    probability = np.where(book["is_fake"], 0.0, defect_probability(book, defect_logit))
    book["true_defect_probability"] = probability
    book["is_defect"] = rng.random(len(probability)) < probability
    return pl.DataFrame({"order_idx": np.arange(len(probability), dtype=np.int32), **book})


def _concat_in_placement_order(real: dict, fake: dict) -> dict[str, np.ndarray]:
    """Real then fake orders, re-sorted by placement time so ids do not reveal the fakes."""
    is_fake = np.concatenate([np.zeros(len(real["day"]), bool), np.ones(len(fake["day"]), bool)])
    merged = {name: np.concatenate([real[name], fake[name].astype(real[name].dtype)]) for name in real}
    order = np.argsort(merged["placed_t"], kind="stable")
    merged = {name: values[order] for name, values in merged.items()}
    merged["is_fake"] = is_fake[order]
    return merged
