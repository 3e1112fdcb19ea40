"""Disputes: opened on real problems and on unfounded ones, sometimes escalated, decided weeks later.

- a lost-dispute defect: opened after delivery, decided for the buyer (refund or replacement);
- a never-shipped or lost order: 60% of buyers open `not_received`, decided for the buyer;
- a healthy delivered order: an unfounded dispute (more likely when it arrived late) ends
  supplier_favored or withdrawn, so it never makes the order a defect.
Every dispute opens inside the claim window (before the non-delivery limit).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.contract import DISPUTE_OUTCOMES, DISPUTE_REASONS
from synthetic.cohorts import NEVER, SECONDS_PER_DAY as DAY
from synthetic.outcomes import DELIVERED, DISPUTE_LOST, LOST_IN_TRANSIT, NEVER_SHIPPED

REASON = {name: code for code, name in enumerate(DISPUTE_REASONS)}
OUTCOME = {name: code for code, name in enumerate(DISPUTE_OUTCOMES)}
# reasons of a founded quality dispute, in DISPUTE_REASONS order (not_received excluded)
_QUALITY_REASON_SHARE = np.array([0.0, 0.10, 0.30, 0.30, 0.12, 0.13, 0.05])
_LOST_OUTCOME_SHARE = np.array([0.45, 0.35, 0.20, 0.0, 0.0])      # full, partial, replacement
_UNFOUNDED_OUTCOME_SHARE = np.array([0.0, 0.0, 0.0, 0.55, 0.45])  # supplier_favored, withdrawn
NOT_RECEIVED_CLAIM_SHARE = 0.6
UNFOUNDED_RATE, UNFOUNDED_RATE_IF_LATE = 0.02, 0.07
ESCALATION_RATE = 0.3


def draw_disputes(book: dict, outcome, timeline: dict, delivered_t, rng) -> pl.DataFrame:
    """Disputes; grain: one row per dispute (at most one per order), ordered by opened_t.

    Columns: dispute_idx, order_idx, opened_t, escalated_t (NEVER if not), decided_t,
    reason, outcome (code indexes into the contract enums), claim_cents, refund_cents
    (NEVER = null: a withdrawn dispute refunds nothing).
    """
    n = len(outcome)
    limit = timeline["limit_t"]
    deadline_end = limit - 30 * DAY
    is_late = (book["delivery_by_day"] >= 0) & (delivered_t > deadline_end)
    unfounded_rate = np.where(is_late, UNFOUNDED_RATE_IF_LATE, UNFOUNDED_RATE)
    unfounded = (outcome == DELIVERED) & ~book["is_fake"] & (rng.random(n) < unfounded_rate)
    not_received = np.isin(outcome, (NEVER_SHIPPED, LOST_IN_TRANSIT)) & (rng.random(n) < NOT_RECEIVED_CLAIM_SHARE)
    order = np.flatnonzero(unfounded | not_received | (outcome == DISPUTE_LOST)).astype(np.int32)
    kind = outcome[order]
    after_delivery = delivered_t[order] + (rng.uniform(0.5, 20.0, len(order)) * DAY).astype(np.int64)
    opened = np.where(np.isin(kind, (NEVER_SHIPPED, LOST_IN_TRANSIT)),
                      deadline_end[order] + (rng.uniform(1.0, 25.0, len(order)) * DAY).astype(np.int64),
                      np.minimum(after_delivery, limit[order] - 3 * 3600))
    reason, decision = _reasons_and_decisions(kind, is_late[order], rng)
    frame = pl.DataFrame({"order_idx": order, "opened_t": opened, "reason": reason, "outcome": decision,
                          **_decision_times(opened, rng),
                          **_amounts(book["amount_cents"][order], decision, rng)})
    frame = frame.sort("opened_t", "order_idx")
    return frame.with_columns(dispute_idx=pl.int_range(frame.height, dtype=pl.Int32)).select(
        "dispute_idx", "order_idx", "opened_t", "escalated_t", "decided_t", "reason", "outcome",
        "claim_cents", "refund_cents")


def _reasons_and_decisions(kind, is_late, rng) -> tuple[np.ndarray, np.ndarray]:
    """Reason and final outcome of each dispute, from the order's outcome."""
    n = len(kind)
    quality_reason = rng.choice(len(DISPUTE_REASONS), n, p=_QUALITY_REASON_SHARE)
    any_reason = np.where(is_late, REASON["late_delivery"], rng.integers(0, len(DISPUTE_REASONS), n))
    is_not_received = np.isin(kind, (NEVER_SHIPPED, LOST_IN_TRANSIT))
    reason = np.select([is_not_received, kind == DISPUTE_LOST], [REASON["not_received"], quality_reason], any_reason)
    decision = np.select(
        [is_not_received, kind == DISPUTE_LOST],
        [OUTCOME["buyer_full_refund"], rng.choice(len(DISPUTE_OUTCOMES), n, p=_LOST_OUTCOME_SHARE)],
        rng.choice(len(DISPUTE_OUTCOMES), n, p=_UNFOUNDED_OUTCOME_SHARE))
    return reason.astype(np.int8), decision.astype(np.int8)


def _decision_times(opened, rng) -> dict[str, np.ndarray]:
    """Escalation (30%, 2-7 days in) and decision (1-4 weeks, longer when escalated)."""
    n = len(opened)
    escalated = rng.random(n) < ESCALATION_RATE
    escalated_t = np.where(escalated, opened + (rng.uniform(2.0, 7.0, n) * DAY).astype(np.int64), NEVER)
    wait_days = rng.uniform(7.0, 30.0, n) + escalated * rng.uniform(7.0, 20.0, n)
    return {"escalated_t": escalated_t, "decided_t": opened + (wait_days * DAY).astype(np.int64)}


def _amounts(order_cents, decision, rng) -> dict[str, np.ndarray]:
    """Claimed amount (the order, or part of it) and the refund the decision grants."""
    n = len(order_cents)
    claim = np.where(rng.random(n) < 0.75, order_cents, np.round(order_cents * rng.uniform(0.2, 0.9, n)))
    claim = np.maximum(claim, 100).astype(np.int64)
    refund = np.select(
        [decision == OUTCOME["buyer_full_refund"], decision == OUTCOME["buyer_partial_refund"],
         decision == OUTCOME["withdrawn"]],
        [claim, np.round(claim * rng.uniform(0.2, 0.7, n)), NEVER], 0)
    return {"claim_cents": claim, "refund_cents": refund.astype(np.int64)}
