"""The supplier population and each supplier's latent reliability path over the period.

Latent reliability at a date = 1 - P(a baseline order of that supplier placed that day
becomes an order defect); a baseline order has the category's median value, is in the
supplier's main category, is not a first order between buyer and supplier, and is placed
outside the holiday season. Paths live in log-odds: `base_logit + change_logit * ramp`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic import cohorts
from synthetic.names import draw_names
from synthetic.params import MarketplaceParams
from synthetic.text import record_id

MEAN_DEFECT_LOGIT = -3.9       # typical supplier: 2% baseline; ~6% of all orders end as defects
SUPPLIER_LOGIT_SD = 0.55       # spread of suppliers within a cohort
VOLUME_SIGMA = 1.1             # lognormal volume: top 10% of suppliers carry ~45% of orders
SHARE_REGISTERED_BEFORE = 0.78
MAX_RECORD_UPDATES = 3         # later versions of a supplier record (renames)
UPDATES_PER_YEAR = 0.3
# kind -> (start as a share of the supplier's active span, ramp length days, log-odds change, base shift)
_DYNAMICS_SHAPES = {
    "stable": ((0.0, 0.0), (1, 1), (0.0, 0.0), 0.0),
    "drift": ((0.0, 0.5), (120, 400), (0.8, 2.0), 0.0),       # slow decline, may run past the end
    "collapse": ((0.35, 0.85), (2, 10), (1.8, 3.2), -0.6),    # good record, then a sudden fall
    "improve": ((0.0, 0.5), (60, 240), (-1.8, -0.8), 0.7),    # starts poor, gets better
}


def draw_suppliers(params: MarketplaceParams, rng: np.random.Generator) -> pl.DataFrame:
    """Supplier population; grain: one row per supplier.

    Columns: supplier_idx, supplier_id, supplier_name, category, country (code indexes),
    volume (mean 1), dynamics (index into cohorts.DYNAMICS), base_logit, change_start_day,
    change_length_days, change_logit, registered_day (negative = before start),
    registered_t (seconds since start), is_fraud_ring.
    """
    n = params.suppliers
    category = rng.choice(len(cohorts.CATEGORIES), n, p=cohorts.CATEGORY_SHARE).astype(np.int8)
    country = rng.choice(len(cohorts.COUNTRIES), n, p=cohorts.SUPPLIER_COUNTRY_SHARE).astype(np.int8)
    registered_day = _registration_days(n, params.days, rng)
    frame = pl.DataFrame({
        "supplier_idx": np.arange(n, dtype=np.int32),
        "supplier_name": draw_names(country, rng),
        "category": category,
        "country": country,
        "volume": rng.lognormal(-VOLUME_SIGMA**2 / 2, VOLUME_SIGMA, n),
        "registered_day": registered_day,
        "registered_t": registered_day.astype(np.int64) * cohorts.SECONDS_PER_DAY
        + rng.integers(0, cohorts.SECONDS_PER_DAY, n),
    })
    frame = frame.with_columns(supplier_id=record_id("supplier", pl.col("supplier_idx")))
    frame = frame.with_columns(**_dynamics(category, country, registered_day, params.days, rng))
    return frame.with_columns(is_fraud_ring=_pick_fraud_rings(frame, params, rng))


def _registration_days(n: int, days: int, rng: np.random.Generator) -> np.ndarray:
    """Day index of each account opening: most before the start, some joining during the period."""
    before = rng.random(n) < SHARE_REGISTERED_BEFORE
    old = -rng.integers(30, 1500, n)
    new = rng.integers(0, max(1, int(days * 0.85)), n)
    return np.where(before, old, new).astype(np.int32)


def _dynamics(category, country, registered_day, days, rng) -> dict[str, np.ndarray]:
    """Each supplier's kind of path and its shape (start, ramp length, size of the change)."""
    n = len(category)
    kind = rng.choice(len(cohorts.DYNAMICS), n, p=cohorts.DYNAMICS_SHARE).astype(np.int8)
    base = (MEAN_DEFECT_LOGIT + cohorts.CATEGORY_RISK[category] + cohorts.COUNTRY_RISK[country]
            + rng.normal(0.0, SUPPLIER_LOGIT_SD, n))
    first_active = np.maximum(registered_day, 0)
    start, length, change = np.zeros(n), np.ones(n), np.zeros(n)
    for code, name in enumerate(cohorts.DYNAMICS):  # four kinds, not one step per supplier
        (f_lo, f_hi), (l_lo, l_hi), (c_lo, c_hi), shift = _DYNAMICS_SHAPES[name]
        is_kind = kind == code
        span = days - first_active
        start = np.where(is_kind, first_active + rng.uniform(f_lo, f_hi, n) * span, start)
        length = np.where(is_kind, rng.uniform(l_lo, l_hi, n), length)
        change = np.where(is_kind, rng.uniform(c_lo, c_hi, n), change)
        base = np.where(is_kind, base + shift, base)
    return {"dynamics": kind, "base_logit": base, "change_start_day": start.astype(np.int32),
            "change_length_days": np.maximum(length, 1).astype(np.int32), "change_logit": change}


def _pick_fraud_rings(frame: pl.DataFrame, params: MarketplaceParams, rng: np.random.Generator) -> np.ndarray:
    """Fraud-ring suppliers: small ones from the worse half by real record (fakes hide a mediocre one)."""
    count = int(round(params.fraud_ring_share * params.suppliers))
    flags = np.zeros(params.suppliers, dtype=bool)
    if count == 0:
        return flags
    base = frame["base_logit"].to_numpy()
    volume = frame["volume"].to_numpy()
    worse_half = base >= np.median(base)
    small_and_worse = np.flatnonzero(worse_half & (volume <= np.median(volume)))
    # fall back to the worse half, then to everyone, when the share asks for more suppliers
    pool = next(p for p in (small_and_worse, np.flatnonzero(worse_half), np.arange(params.suppliers))
                if count <= len(p))
    flags[rng.choice(pool, count, replace=False)] = True
    return flags


def defect_logit_paths(suppliers: pl.DataFrame, days: int) -> np.ndarray:
    """Baseline defect log-odds; grain: a (supplier, day) float32 matrix over the whole period."""
    day = np.arange(days, dtype=np.float32)[None, :]
    start = suppliers["change_start_day"].to_numpy()[:, None]
    length = suppliers["change_length_days"].to_numpy()[:, None]
    ramp = np.clip((day - start + 1) / length, 0.0, 1.0)
    base = suppliers["base_logit"].to_numpy()[:, None]
    change = suppliers["change_logit"].to_numpy()[:, None]
    return (base + change * ramp).astype(np.float32)


def reliability(defect_logit: np.ndarray) -> np.ndarray:
    """Latent reliability from baseline defect log-odds: 1 - sigmoid(logit)."""
    return 1.0 / (1.0 + np.exp(defect_logit))


def supplier_record_times(suppliers: pl.DataFrame, days: int, rng: np.random.Generator) -> np.ndarray:
    """When each supplier record changes; grain: (supplier, version) matrix of times, NEVER if none.

    Version 0 is written at registration, or during the first day for accounts opened
    before the period; later versions (renames) fall anywhere after it.
    """
    n = suppliers.height
    registered_t = suppliers["registered_t"].to_numpy()
    first = np.where(registered_t >= 0, registered_t, rng.integers(0, cohorts.SECONDS_PER_DAY, n))
    horizon = days * cohorts.SECONDS_PER_DAY
    count = np.minimum(rng.poisson(UPDATES_PER_YEAR * days / 365, n), MAX_RECORD_UPDATES)
    later = np.sort(rng.uniform(first[:, None] + 1, horizon, (n, MAX_RECORD_UPDATES)).astype(np.int64), axis=1)
    later = np.where(np.arange(MAX_RECORD_UPDATES)[None, :] < count[:, None], later, cohorts.NEVER)
    return np.column_stack([first, later])


def supplier_record_names(suppliers: pl.DataFrame, rng: np.random.Generator) -> list[str]:
    """Name of each (supplier, version), flattened row-major; version 0 is the current name."""
    country = suppliers["country"].to_numpy()
    renames = draw_names(np.repeat(country, MAX_RECORD_UPDATES), rng)
    names: list[str] = []
    for s, name in enumerate(suppliers["supplier_name"].to_list()):
        names.append(name)
        names.extend(renames[s * MAX_RECORD_UPDATES:(s + 1) * MAX_RECORD_UPDATES])
    return names
