"""Real orders: when and by whom they are placed, their terms, and their true defect probability.

Defect log-odds of an order = the supplier's baseline log-odds that day
  + VALUE_EFFECT * ln(amount / category median)   bigger orders fail more
  + FIRST_ORDER_EFFECT if first order between this buyer and this supplier
  + OFF_CATEGORY_EFFECT if outside the supplier's main category
  + HOLIDAY_EFFECT during the year-end holiday.
"""

from __future__ import annotations

import numpy as np

from synthetic import cohorts
from synthetic.params import MarketplaceParams

VALUE_EFFECT = 0.22
FIRST_ORDER_EFFECT = 0.40
OFF_CATEGORY_EFFECT = 0.50
HOLIDAY_EFFECT = 0.45
HOLIDAY_VOLUME = 0.8           # buyers order less over the year-end holiday
AMOUNT_SIGMA = 0.9
SHARE_OFF_CATEGORY = 0.15
SHARE_NO_DELIVERY_PROMISE = 0.15
SHARE_TRADE_ASSURED = 0.88
BUYERS_PER_SUPPLIER = 40
SHARE_OF_BUYERS_REPEAT = 0.4   # a supplier's buyer pool ~ 0.4 * orders^0.85: repeat business


def daily_rates(suppliers, params: MarketplaceParams) -> np.ndarray:
    """Expected real orders; grain: (supplier, day) matrix, 0 until the day after registration."""
    day_factor = cohorts.weekday_factor(params.start, params.days) * np.where(
        cohorts.holiday_mask(params.start, params.days), HOLIDAY_VOLUME, 1.0)
    day_factor = day_factor / day_factor.mean()
    active = np.arange(params.days)[None, :] > suppliers["registered_day"].to_numpy()[:, None]
    volume = suppliers["volume"].to_numpy()[:, None]
    return params.orders_per_supplier_day * volume * day_factor[None, :] * active


def expand_counts(counts: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Orders from a (supplier, day) count matrix; grain: one row per order, in supplier-day order."""
    days = counts.shape[1]
    cell = np.repeat(np.arange(counts.size, dtype=np.int64), counts.ravel())
    day = (cell % days).astype(np.int32)
    placed_t = day.astype(np.int64) * cohorts.SECONDS_PER_DAY + rng.integers(0, cohorts.SECONDS_PER_DAY, len(cell))
    return {"supplier_idx": (cell // days).astype(np.int32), "day": day, "placed_t": placed_t}


def draw_buyers(supplier_idx, expected, n_buyers, rng) -> np.ndarray:
    """Buyer of each order, from a per-supplier pool where the first members order most."""
    pool_size = np.clip(np.round(2 + SHARE_OF_BUYERS_REPEAT * expected**0.85), 2, n_buyers).astype(np.int64)
    pool_start = np.concatenate([[0], np.cumsum(pool_size)[:-1]])
    pool = rng.integers(0, n_buyers, int(pool_size.sum()), dtype=np.int32)
    # u**2 skews picks toward the pool's head: a few loyal buyers, a long tail of one-offs
    pick = (pool_size[supplier_idx] * rng.random(len(supplier_idx)) ** 2).astype(np.int64)
    return pool[pool_start[supplier_idx] + pick]


def order_terms(orders: dict, suppliers, buyer_country, rng) -> dict[str, np.ndarray]:
    """Category, amount and promises of each order (same grain as `orders`)."""
    n = len(orders["day"])
    main = suppliers["category"].to_numpy()[orders["supplier_idx"]]
    other = rng.integers(0, len(cohorts.CATEGORIES), n).astype(np.int8)
    category = np.where(rng.random(n) < SHARE_OFF_CATEGORY, other, main)
    amount = cohorts.CATEGORY_MEDIAN_USD[category] * rng.lognormal(0.0, AMOUNT_SIGMA, n)
    country = suppliers["country"].to_numpy()[orders["supplier_idx"]]
    b_country = buyer_country[orders["buyer_idx"]]
    return {
        "category": category, "is_off_category": category != main, "buyer_country": b_country,
        "amount_cents": np.maximum(np.round(amount * 100), 500).astype(np.int64),
        "is_trade_assured": rng.random(n) < SHARE_TRADE_ASSURED,
        **promises(orders["day"], category, country, b_country, rng),
    }


def promises(day, category, supplier_country, buyer_country, rng) -> dict[str, np.ndarray]:
    """Ship-by and deliver-by day indexes, plus the route's typical transit days."""
    n = len(day)
    route_days = np.where(supplier_country == buyer_country, cohorts.DOMESTIC_TRANSIT_DAYS,
                          cohorts.EXPORT_TRANSIT_DAYS[supplier_country])
    ship_by = day + 2 + rng.integers(0, 5, n) + cohorts.CATEGORY_EXTRA_HANDLING_DAYS[category]
    promised_transit = np.ceil(route_days * rng.uniform(1.0, 1.5, n)).astype(np.int32) + 2
    delivery_by = np.where(rng.random(n) < SHARE_NO_DELIVERY_PROMISE, cohorts.NEVER, ship_by + promised_transit)
    return {"ship_by_day": ship_by.astype(np.int32), "delivery_by_day": delivery_by.astype(np.int32),
            "route_days": route_days.astype(np.float32)}


def first_orders(supplier_idx, buyer_idx, placed_t) -> np.ndarray:
    """True for the earliest order of each (buyer, supplier) pair."""
    pair = supplier_idx.astype(np.int64) << 32 | buyer_idx.astype(np.int64)
    order = np.lexsort((placed_t, pair))
    sorted_pair = pair[order]
    first = np.ones(len(pair), dtype=bool)
    first[order[1:]] = sorted_pair[1:] != sorted_pair[:-1]
    return first


def defect_probability(orders: dict, defect_logit: np.ndarray) -> np.ndarray:
    """True probability that each order becomes an order defect (see module docstring)."""
    median = cohorts.CATEGORY_MEDIAN_USD[orders["category"]]
    logit = (defect_logit[orders["supplier_idx"], orders["day"]]
             + VALUE_EFFECT * np.log(orders["amount_cents"] / 100 / median)
             + FIRST_ORDER_EFFECT * orders["is_first_order"]
             + OFF_CATEGORY_EFFECT * orders["is_off_category"]
             + HOLIDAY_EFFECT * orders["is_holiday"])
    return 1.0 / (1.0 + np.exp(-logit))
