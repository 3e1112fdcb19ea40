"""Fraud rings: a few suppliers with a mediocre real record buy themselves a perfect one.

Each ring is 3-6 dedicated buyer accounts that, from some day on, place a multiple of the
supplier's real volume as small orders that are always shipped and delivered on time and
never disputed. The buyer accounts order from nobody else, which is what gives them away.
"""

from __future__ import annotations

import numpy as np

from synthetic.orders import expand_counts, promises

RING_SIZE = (3, 6)
FAKE_VOLUME_MULTIPLE = (2.0, 4.0)
FAKE_MEDIAN_USD = 45.0


def ring_buyers(suppliers, first_buyer_id: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Ring members: (start offset into members, size) per supplier, 0-sized for honest ones."""
    is_ring = suppliers["is_fraud_ring"].to_numpy()
    size = np.where(is_ring, rng.integers(RING_SIZE[0], RING_SIZE[1] + 1, len(is_ring)), 0)
    start = first_buyer_id + np.concatenate([[0], np.cumsum(size)[:-1]])
    return start.astype(np.int64), size.astype(np.int64)


def fake_orders(suppliers, rates: np.ndarray, first_buyer_id: int, rng) -> dict[str, np.ndarray]:
    """Fake orders of every ring; grain: one row per fake order (columns as for real orders)."""
    ring_start, ring_size = ring_buyers(suppliers, first_buyer_id, rng)
    rings = np.flatnonzero(ring_size > 0)
    days = rates.shape[1]
    first_active = np.maximum(suppliers["registered_day"].to_numpy()[rings], 0)
    # the ring starts some time after the supplier's first day, and runs to the end
    start_day = first_active + rng.uniform(0.0, 0.3, len(rings)) * (days - first_active)
    multiple = rng.uniform(*FAKE_VOLUME_MULTIPLE, len(rings))
    ring_rates = np.where(np.arange(days)[None, :] >= start_day[:, None], rates[rings], 0.0) * multiple[:, None]
    counts = np.zeros(rates.shape, dtype=np.int64)
    counts[rings] = rng.poisson(ring_rates)
    orders = expand_counts(counts, rng)
    sup = orders["supplier_idx"]
    n = len(sup)
    orders["buyer_idx"] = (ring_start[sup] + (rng.random(n) * ring_size[sup]).astype(np.int64)).astype(np.int32)
    category = suppliers["category"].to_numpy()[sup]
    country = suppliers["country"].to_numpy()[sup]
    orders.update(
        category=category, is_off_category=np.zeros(n, dtype=bool), buyer_country=country,
        amount_cents=np.round(FAKE_MEDIAN_USD * 100 * rng.lognormal(0.0, 0.4, n)).astype(np.int64),
        is_trade_assured=np.ones(n, dtype=bool),
        **promises(orders["day"], category, country, country, rng),
    )
    return orders

