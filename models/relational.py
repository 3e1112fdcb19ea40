"""Small relational helpers shared by the models (portable Ibis, no backend specifics)."""

from __future__ import annotations

from ibis.expr.types import Table


def left_join_on(left: Table, right: Table, keys: list[str] | str) -> Table:
    """Left join on same-named keys, keeping the left's keys once and the right's other columns."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    joined = left.left_join(right, keys)
    return joined.select(*left.columns, *(joined[c] for c in right.columns if c not in keys))
