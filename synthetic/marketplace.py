"""The whole simulated marketplace in memory: who, what happened and when (no I/O here).

Each stage draws from its own random stream (seed, stage), so changing one stage's
draws leaves the others' unchanged and the same seed always gives the same world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from synthetic.cohorts import NEVER, SECONDS_PER_DAY as DAY
from synthetic.disputes import draw_disputes
from synthetic.orderbook import build_order_book
from synthetic.outcomes import NEVER_SHIPPED, LOST_IN_TRANSIT, draw_outcomes, order_timeline
from synthetic.params import MarketplaceParams
from synthetic.shipments import draw_shipments, order_arrivals
from synthetic.suppliers import (defect_logit_paths, draw_suppliers, supplier_record_names,
                                 supplier_record_times)

ORDER_STEPS = ("placed", "paid", "cancelled", "shipped", "delivered", "completed")  # in time order
_STREAMS = {"suppliers": 1, "orders": 2, "outcomes": 3, "timeline": 4, "shipments": 5, "disputes": 6,
            "completion": 7, "landing": 8}


@dataclass(frozen=True)
class Marketplace:
    """Everything that happened. Times are integer seconds since the start (NEVER = -1)."""

    params: MarketplaceParams
    suppliers: pl.DataFrame          # one row per supplier (see suppliers.draw_suppliers)
    defect_logit: np.ndarray         # (supplier, day) baseline defect log-odds
    supplier_times: np.ndarray       # (supplier, version) record change times
    supplier_names: list[str]        # name per (supplier, version), row-major
    orders: pl.DataFrame             # one row per order (see orderbook.build_order_book) + outcome
    order_times: np.ndarray          # (order, ORDER_STEPS) event times, int32
    shipments: pl.DataFrame          # one row per shipment
    disputes: pl.DataFrame           # one row per dispute

    @property
    def horizon_t(self) -> int:
        """End of the last day: nothing at or after it is ever exported."""
        return self.params.days * DAY


def stream(params: MarketplaceParams, name: str, part: int = 0) -> np.random.Generator:
    """The random stream of one stage (and part of it, e.g. one landing source)."""
    return np.random.default_rng([params.seed, _STREAMS[name], part])


def simulate(params: MarketplaceParams) -> Marketplace:
    """Draw the marketplace: suppliers, orders and every event of every order."""
    rng = stream(params, "suppliers")
    suppliers = draw_suppliers(params, rng)
    logit = defect_logit_paths(suppliers, params.days)
    record_times = supplier_record_times(suppliers, params.days, rng)
    names = supplier_record_names(suppliers, rng)
    book_frame = build_order_book(suppliers, logit, params, stream(params, "orders"))
    book = {name: book_frame[name].to_numpy() for name in book_frame.columns}
    baseline = logit[book["supplier_idx"], book["day"]]
    outcome = draw_outcomes(book["is_defect"], book["is_fake"], stream(params, "outcomes"))
    timeline = order_timeline(book, outcome, baseline, stream(params, "timeline"))
    shipments = draw_shipments(book, outcome, timeline, baseline, stream(params, "shipments"))
    delivered = order_arrivals(shipments, len(outcome))
    disputes = draw_disputes(book, outcome, timeline, delivered, stream(params, "disputes"))
    # the buyer confirms receipt, or the platform auto-confirms, 3-14 days after arrival
    confirm_delay = stream(params, "completion").integers(3 * DAY, 14 * DAY, len(outcome))
    completed = np.where(delivered >= 0, delivered + confirm_delay, NEVER)
    order_times = _stack_times([book["placed_t"], timeline["paid_t"], timeline["cancelled_t"],
                                timeline["shipped_t"], delivered, completed])
    orders = book_frame.with_columns(
        outcome=outcome, cancelled_by=timeline["cancelled_by"], limit_t=timeline["limit_t"],
        settled_t=_settled_times(order_times, outcome, timeline["limit_t"], shipments, disputes))
    return Marketplace(params, suppliers, logit, record_times, names, orders, order_times, shipments, disputes)


def _stack_times(columns: list[np.ndarray]) -> np.ndarray:
    """(record, step) int32 matrix: seconds since the start fit int32 for 68 years, at half the memory."""
    stacked = np.empty((len(columns[0]), len(columns)), dtype=np.int32)
    for step, column in enumerate(columns):
        stacked[:, step] = column
    return stacked


def _settled_times(order_times, outcome, limit_t, shipments: pl.DataFrame, disputes: pl.DataFrame) -> np.ndarray:
    """When each order's outcome is final: its last event, or the non-delivery limit if later.

    An order that never arrives becomes a defect only when the limit passes, so that
    moment counts as an event.
    """
    settled = order_times.max(axis=1).astype(np.int64)
    for frame, column in ((shipments, "shipped_t"), (disputes, "decided_t")):
        if frame.height:
            np.maximum.at(settled, frame["order_idx"].to_numpy(), frame[column].to_numpy())
    undelivered = (order_times[:, 4] < 0) & np.isin(outcome, (NEVER_SHIPPED, LOST_IN_TRANSIT))
    return np.where(undelivered, np.maximum(settled, limit_t), settled)


def active_supplier_days(world: Marketplace) -> tuple[np.ndarray, np.ndarray]:
    """(supplier, day) index pairs from each supplier's registration day (or the start) on."""
    first = np.maximum(world.suppliers["registered_day"].to_numpy(), 0)
    mask = np.arange(world.params.days)[None, :] >= first[:, None]
    supplier, day = np.nonzero(mask)
    return supplier.astype(np.int32), day.astype(np.int32)

