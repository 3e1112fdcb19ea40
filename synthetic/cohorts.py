"""Cohort tables: categories, countries, carriers and the season, as small numpy arrays.

Codes everywhere in the generator are indexes into these tuples, so that a million rows
carry int8 codes rather than strings; the writer turns codes into text at the very end.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

CATEGORIES = (
    "electronics", "apparel", "machinery", "home_garden",
    "packaging", "chemicals", "auto_parts", "beauty",
)
CATEGORY_SHARE = np.array([0.20, 0.16, 0.10, 0.14, 0.10, 0.08, 0.12, 0.10])
# Added to a supplier's defect log-odds: consumer goods fail more than packaging.
CATEGORY_RISK = np.array([0.35, 0.20, -0.10, 0.00, -0.35, 0.10, -0.05, 0.25])
CATEGORY_MEDIAN_USD = np.array([1800.0, 900.0, 12000.0, 1100.0, 700.0, 4000.0, 2500.0, 600.0])
# Machinery is built to order: longer handling before the ship-by deadline.
CATEGORY_EXTRA_HANDLING_DAYS = np.array([0, 0, 4, 0, 0, 1, 1, 0])

COUNTRIES = ("CN", "IN", "VN", "TR", "US", "DE", "MX", "BR")
SUPPLIER_COUNTRY_SHARE = np.array([0.42, 0.14, 0.10, 0.08, 0.08, 0.06, 0.06, 0.06])
BUYER_COUNTRY_SHARE = np.array([0.07, 0.08, 0.07, 0.08, 0.35, 0.15, 0.10, 0.10])
COUNTRY_RISK = np.array([0.00, 0.25, 0.15, 0.10, -0.30, -0.40, 0.20, 0.30])
# Typical door-to-door days from a supplier country to a foreign buyer.
EXPORT_TRANSIT_DAYS = np.array([10.0, 12.0, 11.0, 8.0, 5.0, 5.0, 7.0, 10.0])
DOMESTIC_TRANSIT_DAYS = 3.0

CARRIERS = ("DHL", "FedEx", "UPS", "Maersk", "SF Express", "Cainiao", "Blue Dart", "Correios")
CARRIER_SHARE = np.array([0.22, 0.16, 0.14, 0.08, 0.14, 0.12, 0.07, 0.07])

DYNAMICS = ("stable", "drift", "collapse", "improve")
DYNAMICS_SHARE = np.array([0.55, 0.20, 0.10, 0.15])

SECONDS_PER_DAY = 86_400
NEVER = -1  # event time of something that never happens


def holiday_mask(start: date, days: int) -> np.ndarray:
    """One bool per day: the year-end holiday (15 Dec - 5 Jan), with slow carriers and more defects."""
    dates = [start + timedelta(days=i) for i in range(days)]
    return np.array([(d.month == 12 and d.day >= 15) or (d.month == 1 and d.day <= 5) for d in dates])


def weekday_factor(start: date, days: int) -> np.ndarray:
    """One volume factor per day: B2B buyers order less at weekends (mean 1 over a week)."""
    weekday = (np.arange(days) + start.weekday()) % 7
    return np.where(weekday >= 5, 0.6, 1.16)


def date_strings(start: date, first_day: int, last_day: int) -> list[str]:
    """YYYY-MM-DD for every day index in [first_day, last_day] (index 0 = start)."""
    origin = start + timedelta(days=first_day)
    return [(origin + timedelta(days=i)).isoformat() for i in range(last_day - first_day + 1)]
