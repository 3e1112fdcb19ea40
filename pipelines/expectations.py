"""Row-level expectations of each landing source, defined once, in code, versioned with it.

Each expectation is one rule said twice, on purpose:
- `fails`: a SQL condition over the temp table `_checked` (validate.py: one row per typed,
  de-duplicated landing row, plus context columns) that picks the failing rows quickly in
  DuckDB, so that each can be quarantined with its own reason and sentence;
- `gx_type` + `gx_kwargs`: the same rule as a great-expectations expectation, run once per
  chunk on a pandas frame of the same rows; its result is what meta.validation_results
  stores. validate.py checks that both count the same failing rows.

A NULL from `fails` means "passes": a rule over a column that is empty says nothing, as
GX ignores missing values. Order matters: a row failing several rules is quarantined with
the first one's reason. The last rule of every suite, version_unique_in_file, judges
only the rows that passed all the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.contract import SOURCES, Column, Source
from pipelines.warehouse import literal, quote

ROW, CRITICAL, WARNING = "row", "critical", "warning"  # what a failure does (see config/suprel.yaml)

# Replaced by the batch clock plus tolerance: a SQL literal in `fails`, a datetime for GX.
FUTURE_LIMIT = "{future_limit}"
# Replaced, for GX, by the condition "passes_row_rules is true" (see version_unique).
PASSING_ROWS = "{passing_rows}"


@dataclass(frozen=True)
class Expectation:
    """One row-level rule: its name, the quarantine reason, the blamed column, SQL and GX forms."""

    name: str
    reason: str
    column: str
    fails: str
    detail: str  # SQL giving the sentence stored with a quarantined row
    gx_type: str
    gx_kwargs: dict = field(default_factory=dict)
    severity: str = ROW


@dataclass(frozen=True)
class Reference:
    """A row of the source is held pending until `column`'s value is a key of `target`.

    `context` names columns of the target's current version joined onto the row
    (alias -> target column), for rules that need them (shipped after the order was placed).
    """

    column: str
    target: str
    context: dict = field(default_factory=dict)


REFERENCES: dict[str, Reference] = {
    "orders": Reference("supplier_id", "suppliers"),
    "shipments": Reference("order_id", "orders", {"order_placed_at": "placed_at"}),
    "disputes": Reference("order_id", "orders", {"order_amount_usd": "order_amount_usd"}),
}


def _text(column: str) -> str:
    return f"left({quote(column)}::VARCHAR, 80)"


def in_set(column: Column) -> Expectation:
    sentence = f"{column.name} = \"%s\" is not one of {', '.join(column.values)}"
    allowed = ", ".join(literal(v) for v in column.values)
    return Expectation(
        f"{column.name}_in_set", "bad_enum", column.name, f"{quote(column.name)} NOT IN ({allowed})",
        f"printf({literal(sentence)}, {_text(column.name)})",
        "ExpectColumnValuesToBeInSet", {"column": column.name, "value_set": list(column.values)})


def not_negative(column: Column) -> Expectation:
    return Expectation(
        f"{column.name}_not_negative", "negative_amount", column.name, f"{quote(column.name)} < 0",
        f"printf({literal(column.name + ' = %s is negative')}, {_text(column.name)})",
        "ExpectColumnValuesToBeBetween", {"column": column.name, "min_value": 0})


def not_in_future(column: Column) -> Expectation:
    sentence = f"{column.name} = %s is later than the batch clock plus tolerance (%s)"
    return Expectation(
        f"{column.name}_not_in_future", "future_timestamp", column.name,
        f"{quote(column.name)} > {FUTURE_LIMIT}",
        f"printf({literal(sentence)}, {_text(column.name)}, {FUTURE_LIMIT}::VARCHAR)",
        "ExpectColumnValuesToBeBetween", {"column": column.name, "max_value": FUTURE_LIMIT})


def not_before(later: str, earlier: str, reason: str) -> Expectation:
    """`later` may equal `earlier` (same-second events), never precede it."""
    return Expectation(
        f"{later}_not_before_{earlier}", reason, later, f"{quote(later)} < {quote(earlier)}",
        f"printf({literal(f'{later} %s is before {earlier} %s')}, {_text(later)}, {_text(earlier)})",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": later, "column_B": earlier, "or_equal": True, "ignore_row_if": "either_value_is_missing"})


def not_above(smaller: str, larger: str, reason: str) -> Expectation:
    return Expectation(
        f"{smaller}_not_above_{larger}", reason, smaller, f"{quote(smaller)} > {quote(larger)}",
        f"printf({literal(f'{smaller} %s is above {larger} %s')}, {_text(smaller)}, {_text(larger)})",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": larger, "column_B": smaller, "or_equal": True, "ignore_row_if": "either_value_is_missing"})


def version_unique(source: Source) -> Expectation:
    """Two different rows with one key and one updated_at in a file: which is the truth? Neither.

    Only rows that pass every other rule count (validate.py computes `passes_row_rules` and
    `__versions` from them): a corrupted copy of a record (a negative amount, a bad enum)
    is quarantined for what is wrong with it and does not take the good row down with it.
    Exact repeats were set aside before (validate.py), so rows counted here all differ.
    """
    key = source.key
    sentence = f"%d rows of this file have {key} %s and updated_at %s but differ"
    return Expectation(
        "version_unique_in_file", "ambiguous_version", key, "passes_row_rules AND __versions > 1",
        f"printf({literal(sentence)}, __versions, {_text(key)}, {_text('updated_at')})",
        "ExpectCompoundColumnsToBeUnique", {"column_list": ["load_id", key, "updated_at"], "row_condition": PASSING_ROWS})


def _column_rules(source: Source) -> list[Expectation]:
    rules = [in_set(c) for c in source.columns if c.kind == "enum"]
    rules += [not_negative(c) for c in source.columns if c.kind == "decimal"]
    return rules + [not_in_future(c) for c in source.columns if c.kind == "timestamp"]


_PAIR_RULES = {
    "suppliers": [],
    "orders": [],
    "shipments": [
        not_before("delivered_at", "shipped_at", "delivered_before_shipped"),
        not_before("shipped_at", "order_placed_at", "shipped_before_placed"),
    ],
    "disputes": [
        not_before("resolved_at", "opened_at", "resolved_before_opened"),
        not_above("refund_amount_usd", "claim_amount_usd", "refund_above_claim"),
        not_above("refund_amount_usd", "order_amount_usd", "refund_above_order_amount"),
    ],
}

SUITES: dict[str, tuple[Expectation, ...]] = {
    name: tuple(_column_rules(source) + _PAIR_RULES[name] + [version_unique(source)])
    for name, source in SOURCES.items()
}
