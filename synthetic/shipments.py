"""Parcels: when each leaves and arrives. About 10% of shipped orders go in 2-3 parcels.

Healthy orders (and those whose defect is a lost dispute) arrive at least a day before
the non-delivery limit; a lost order has one parcel that never arrives; a too-late order
has one parcel that arrives 2-30 days after the limit.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic import cohorts
from synthetic.cohorts import NEVER, SECONDS_PER_DAY as DAY
from synthetic.outcomes import DELIVERED_TOO_LATE, LOST_IN_TRANSIT
from synthetic.suppliers import MEAN_DEFECT_LOGIT

_PARCELS_SHARE = np.array([0.90, 0.07, 0.03])   # 1, 2 or 3 parcels
HOLIDAY_EXTRA_TRANSIT_DAYS = (2.0, 6.0)


def draw_shipments(book: dict, outcome, timeline: dict, baseline_logit, rng) -> pl.DataFrame:
    """Parcels; grain: one row per shipment, ordered by order then parcel number.

    Columns: shipment_idx, order_idx, shipped_t, delivered_t (NEVER = never arrives),
    carrier (index into cohorts.CARRIERS), has_valid_tracking.
    """
    shipped_orders = np.flatnonzero(timeline["shipped_t"] >= 0)
    parcels = np.where(book["is_fake"][shipped_orders], 1, 1 + rng.choice(3, len(shipped_orders), p=_PARCELS_SHARE))
    order = np.repeat(shipped_orders, parcels).astype(np.int32)
    first_row = np.repeat(np.cumsum(parcels) - parcels, parcels)
    parcel = np.arange(len(order)) - first_row
    is_last = parcel == parcels[np.repeat(np.arange(len(parcels)), parcels)] - 1
    n = len(order)
    shipped = timeline["shipped_t"][order] + np.where(parcel > 0, rng.uniform(0.5, 5.0, n) * DAY, 0).astype(np.int64)
    delivered = _arrivals(book, order, shipped, timeline["limit_t"][order], baseline_logit[order], rng)
    kind = outcome[order]
    delivered = np.where(is_last & (kind == LOST_IN_TRANSIT), NEVER, delivered)
    too_late = timeline["limit_t"][order] + (rng.uniform(2.0, 30.0, n) * DAY).astype(np.int64)
    delivered = np.where(is_last & (kind == DELIVERED_TOO_LATE), too_late, delivered)
    tracking_share = np.where(kind == LOST_IN_TRANSIT, 0.35, np.where(book["is_fake"][order], 1.0, 0.96))
    return pl.DataFrame({
        "shipment_idx": np.arange(n, dtype=np.int32), "order_idx": order,
        "shipped_t": shipped, "delivered_t": delivered,
        "carrier": rng.choice(len(cohorts.CARRIERS), n, p=cohorts.CARRIER_SHARE).astype(np.int8),
        "has_valid_tracking": rng.random(n) < tracking_share,
    })


def _arrivals(book, order, shipped, limit, baseline_logit, rng) -> np.ndarray:
    """Arrival of each parcel, capped a day before the limit (the caller breaks the cap on purpose)."""
    n = len(order)
    slowness = 1 + 0.1 * np.maximum(baseline_logit - MEAN_DEFECT_LOGIT, 0)
    holiday = book["is_holiday"][order] * rng.uniform(*HOLIDAY_EXTRA_TRANSIT_DAYS, n)
    transit_days = np.maximum(book["route_days"][order] * rng.lognormal(0.0, 0.3, n) * slowness + holiday, 0.3)
    arrival = shipped + (transit_days * DAY).astype(np.int64)
    arrival = np.minimum(arrival, limit - DAY - rng.integers(0, DAY // 2, n))
    fake = shipped + (rng.uniform(1.0, 2.5, n) * DAY).astype(np.int64)
    return np.where(book["is_fake"][order], fake, arrival)


def order_arrivals(shipments: pl.DataFrame, n_orders: int) -> np.ndarray:
    """When each order is fully delivered (its last parcel arrives); NEVER if any never does."""
    order = shipments["order_idx"].to_numpy()
    delivered = shipments["delivered_t"].to_numpy()
    result = np.full(n_orders, NEVER, dtype=np.int64)
    if len(order) == 0:
        return result
    starts = np.flatnonzero(np.r_[True, order[1:] != order[:-1]])
    latest = np.maximum.reduceat(delivered, starts)
    earliest = np.minimum.reduceat(delivered, starts)
    result[order[starts]] = np.where(earliest >= 0, latest, NEVER)
    return result
