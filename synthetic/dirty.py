"""Dirty rows: extra corrupted copies of real rows, each one sure to fail the contract's typing.

A dirty row copies a real version into the same batch and breaks one typed column: a
wrong type, an impossible timestamp or date, a value outside the enum, a negative amount,
or a missing required field. Because it cannot be typed it is quarantined, so it can
never become the current version of the record it copies. Values that a lenient caster
might accept (`1`, `yes`, `SHIPPED`) are avoided on purpose.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic.events import DIRTY, ORIGINAL

BAD_VALUES: dict[str, tuple[str | None, ...]] = {
    "bad_decimal": ("abc", "N/A", "1.2.3", "twelve"),
    "bad_timestamp": ("31/02/2024", "2024-02-31T10:00:00Z", "yesterday", "2024-13-01T08:00:00Z"),
    "bad_date": ("31/02/2024", "2024-02-30", "next week", "2024/13/01"),
    "bad_enum": ("lost", "pending_review", "n/a", "unknown"),
    "bad_boolean": ("maybe", "unknown", "yes please", "TRUE-ish"),
    "negative_amount": ("-0.01", "-12.50", "-199.99", "-4500.00"),
    "missing_required": (None,),
}
# (kind, column) a dirty row of each source may break; every column is typed or required,
# and never null in the rows the generator copies.
RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "suppliers": (("bad_timestamp", "registered_at"), ("bad_timestamp", "updated_at"),
                  ("missing_required", "supplier_id"), ("missing_required", "registered_at")),
    "orders": (("bad_decimal", "order_amount_usd"), ("negative_amount", "order_amount_usd"),
               ("bad_enum", "status"), ("bad_timestamp", "placed_at"), ("bad_date", "promised_ship_by"),
               ("bad_boolean", "is_trade_assured"), ("missing_required", "buyer_id"),
               ("missing_required", "updated_at")),
    "shipments": (("bad_timestamp", "shipped_at"), ("bad_timestamp", "updated_at"),
                  ("bad_boolean", "has_valid_tracking"), ("missing_required", "order_id")),
    "disputes": (("bad_enum", "reason"), ("bad_enum", "status"), ("negative_amount", "claim_amount_usd"),
                 ("bad_decimal", "claim_amount_usd"), ("bad_timestamp", "opened_at"),
                 ("missing_required", "dispute_id")),
}


CLEAN = -1  # dirty_rule of a clean row


def add_dirty(rows: pl.DataFrame, source: str, dirty_rate: float, rng: np.random.Generator) -> pl.DataFrame:
    """`rows` plus dirty copies; grain: one row per landed row.

    Adds dirty_rule (index into RULES[source], CLEAN = -1) and dirty_pick (which bad value):
    small int codes rather than strings, because every landed row carries them.
    """
    clean = rows.with_columns(dirty_rule=pl.lit(CLEAN, pl.Int8), dirty_pick=pl.lit(0, pl.Int8))
    chosen = np.flatnonzero((rows["copy"].to_numpy() == ORIGINAL) & (rng.random(rows.height) < dirty_rate))
    if len(chosen) == 0:
        return clean
    dirty = clean[chosen].with_columns(
        copy=pl.lit(DIRTY, pl.Int8),
        dirty_rule=pl.Series(rng.integers(0, len(RULES[source]), len(chosen)), dtype=pl.Int8),
        dirty_pick=pl.Series(rng.integers(0, 4, len(chosen)), dtype=pl.Int8),
    )
    return pl.concat([clean, dirty])


def corrupt(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """Contract-shaped string `frame` (with dirty_rule, dirty_pick) with broken columns replaced.

    Only the dirty rows are touched (scatter), so clean chunks cost nothing.
    """
    rule = frame["dirty_rule"].to_numpy()
    if not (rule != CLEAN).any():
        return frame
    pick = frame["dirty_pick"].to_numpy()
    columns = {column: frame[column].clone() for _, column in RULES[source]}
    for code, (kind, column) in enumerate(RULES[source]):
        values = BAD_VALUES[kind]
        for choice, value in enumerate(values):
            rows = np.flatnonzero((rule == code) & (pick % len(values) == choice))
            if len(rows):
                columns[column] = columns[column].scatter(rows, value)
    return frame.with_columns(*columns.values())


def rule_labels(source: str) -> tuple[list[str], list[str]]:
    """(kind, column) of every rule of a source, as two lists in rule order."""
    return [kind for kind, _ in RULES[source]], [column for _, column in RULES[source]]
