"""Small relational helpers shared by the models (portable Ibis, no backend specifics)."""

from __future__ import annotations

import ibis
from ibis.expr.types import Table


def left_join_on(left: Table, right: Table, keys: list[str] | str) -> Table:
    """Left join on same-named keys, keeping the left's keys once and the right's other columns."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    joined = left.left_join(right, keys)
    return joined.select(*left.columns, *(joined[c] for c in right.columns if c not in keys))


EXACT = "decimal(38, 12)"


def exact_sum(value: ibis.Value) -> ibis.Value:
    """A sum that is the same on every run: added as decimals, returned as a double.

    Floating-point addition is not associative, and a parallel engine adds a group's rows
    in whatever order its threads finish, so a plain SUM of doubles can differ in the last
    bit from one run to the next, and flip a rank or a decision at a threshold. Twelve
    decimals are far below every rate, amount and count the models use.
    """
    return value.cast(EXACT).sum().cast("float64")


def ratio(numerator: ibis.Value, denominator: ibis.Value) -> ibis.Value:
    """numerator / denominator, NULL where the denominator is 0.

    Engines disagree on x / 0: DuckDB gives inf or NaN, Spark (ANSI mode, its default)
    stops the query. Every division whose divisor can be 0 goes through here.
    """
    return ibis.cases((denominator != 0, numerator / denominator), else_=ibis.null("float64"))
