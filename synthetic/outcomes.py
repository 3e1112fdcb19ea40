"""How each order ends, and when its order-level events happen.

The outcome is drawn from `is_defect` so that the records agree with CONTRACT.md section 2
once everything has happened: a defect is a supplier cancellation, a non-delivery (never
shipped, lost in transit, or delivered after the limit) or a lost dispute; everything else
is delivered within the limit, cancelled by the buyer or the platform, and any dispute on
it ends supplier_favored or withdrawn.
"""

from __future__ import annotations

import numpy as np

from synthetic.cohorts import NEVER, SECONDS_PER_DAY as DAY
from synthetic.suppliers import MEAN_DEFECT_LOGIT

OUTCOMES = ("delivered", "buyer_cancelled", "platform_cancelled", "supplier_cancelled",
            "never_shipped", "lost_in_transit", "delivered_too_late", "dispute_lost")
DELIVERED, BUYER_CANCELLED, PLATFORM_CANCELLED, SUPPLIER_CANCELLED = 0, 1, 2, 3
NEVER_SHIPPED, LOST_IN_TRANSIT, DELIVERED_TOO_LATE, DISPUTE_LOST = 4, 5, 6, 7
_HEALTHY_SHARE = np.array([0.962, 0.032, 0.006])                 # delivered, buyer, platform
_DEFECT_SHARE = np.array([0.30, 0.06, 0.12, 0.10, 0.42])         # codes 3..7
# Late shipment log-odds: worse suppliers and the holiday ship late more often.
LATE_SHIP_BASE, LATE_SHIP_PER_LOGIT, LATE_SHIP_HOLIDAY = -2.2, 0.8, 0.8
CANCELLED_BY_CODE = {BUYER_CANCELLED: 0, SUPPLIER_CANCELLED: 1, PLATFORM_CANCELLED: 2}  # contract order


def draw_outcomes(is_defect: np.ndarray, is_fake: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Outcome code (index into OUTCOMES) of each order; fakes are always delivered."""
    n = len(is_defect)
    healthy = rng.choice(3, n, p=_HEALTHY_SHARE)
    defect = 3 + rng.choice(5, n, p=_DEFECT_SHARE)
    outcome = np.where(is_defect, defect, healthy)
    return np.where(is_fake, DELIVERED, outcome).astype(np.int8)


def is_shipped(outcome: np.ndarray) -> np.ndarray:
    """Orders that leave the warehouse at least once."""
    return np.isin(outcome, (DELIVERED, LOST_IN_TRANSIT, DELIVERED_TOO_LATE, DISPUTE_LOST))


def non_delivery_limit(ship_by_day: np.ndarray, delivery_by_day: np.ndarray) -> np.ndarray:
    """Midnight after which an undelivered order is a non-delivery (also the claim window's end).

    End of promised_delivery_by + 30 days, or end of promised_ship_by + 45 days when no
    delivery date was promised. The generator keeps a day's margin on both sides of it.
    """
    limit_day = np.where(delivery_by_day >= 0, delivery_by_day + 31, ship_by_day + 46)
    return limit_day.astype(np.int64) * DAY


def order_timeline(book: dict, outcome: np.ndarray, baseline_logit: np.ndarray, rng) -> dict[str, np.ndarray]:
    """Paid, cancelled and first-shipped times of each order (NEVER where it does not happen)."""
    n = len(outcome)
    placed = book["placed_t"]
    paid = placed + np.minimum(rng.exponential(4 * 3600, n), 20 * 3600).astype(np.int64) + 60
    cancel_delay = np.select(
        [outcome == BUYER_CANCELLED, outcome == PLATFORM_CANCELLED, outcome == SUPPLIER_CANCELLED],
        [rng.uniform(3600, 3 * DAY, n), rng.uniform(600, DAY, n), rng.uniform(DAY, 8 * DAY, n)], -1.0)
    cancelled = np.where(cancel_delay > 0, paid + cancel_delay.astype(np.int64), NEVER)
    shipped = np.where(is_shipped(outcome), _first_ship_time(book, paid, baseline_logit, rng), NEVER)
    cancelled_by = np.array([CANCELLED_BY_CODE.get(code, -1) for code in range(len(OUTCOMES))])[outcome]
    return {"paid_t": paid, "cancelled_t": cancelled, "shipped_t": shipped, "cancelled_by": cancelled_by.astype(np.int8),
            "limit_t": non_delivery_limit(book["ship_by_day"], book["delivery_by_day"])}


def _first_ship_time(book: dict, paid: np.ndarray, baseline_logit: np.ndarray, rng) -> np.ndarray:
    """When the first parcel leaves: before the ship-by deadline, or 0-10 days after it."""
    n = len(paid)
    ship_by_end = (book["ship_by_day"].astype(np.int64) + 1) * DAY
    late_logit = (LATE_SHIP_BASE + LATE_SHIP_PER_LOGIT * (baseline_logit - MEAN_DEFECT_LOGIT)
                  + LATE_SHIP_HOLIDAY * book["is_holiday"])
    is_late = (rng.random(n) < 1 / (1 + np.exp(-late_logit))) & ~book["is_fake"]
    on_time = paid + (rng.uniform(0.05, 0.95, n) * (ship_by_end - paid)).astype(np.int64)
    days_late = np.minimum(rng.geometric(0.35, n) - 1, 9)
    late = ship_by_end + days_late * DAY + rng.integers(0, DAY, n)
    # a ring ships its fakes the day they are paid
    fake = paid + rng.integers(2 * 3600, 20 * 3600, n)
    return np.where(book["is_fake"], fake, np.where(is_late, late, on_time))
