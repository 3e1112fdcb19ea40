"""The risk features' order attributes and daily evidence, kept from one scoring run to the next.

Scoring asks for the features of the last month's orders and of each supplier's typical
order, and both read every order as placed, every buyer's history and every day's
evidence (models/risk_features.py): computed afresh, a daily run cost as much as the
history is long. They are kept here as of a day (`through`) and of the versions staged
by then (`load_seq`), and brought up to date by the next run (`refresh`) from the first
day that can have changed. That day is the earliest of the day after the kept one; the
earliest `updated_at` of the versions staged or released from pending since (every event
is filed on the day a version became known, or on a deadline of the order as placed);
and, for an order whose row as placed changed or is new, its first version's day and its
shipments' and disputes' earliest `updated_at` (they are filed on their own days, which
may come before the order's). Then:

- the orders as placed are recomputed for the orders with a version staged or released
  since, or that the newer day lets in (a version or a placement after the kept day), and
  replaced where they changed; the buyer histories are recomputed for those and for the
  orders placed from the first day on (every event a history counts was recorded since);
- the daily evidence is recomputed from the first day on, from the orders that can have
  evidence then (`models.risk_features.daily_evidence_from`), each source read from the
  oldest load_seq of their versions (`features.order_spans`);
- each supplier's evidence before the longest window of the first month a run asks for
  (`opened`) is moved by the days between the old and the new, or summed again when the
  first day comes before it. The window sums read the days since and it as one day.

Grain: `features.risk_order_attributes` one row per order (`order_attributes`);
`features.risk_daily_evidence` one row per supplier x day number (`daily_evidence`);
`features.risk_evidence_opening` one row per supplier with evidence before `opened`;
`meta.risk_feature_store` one row: through, load_seq, rules (the outcome rules the
evidence was computed under, as JSON: others rebuild it), opened. A run for a day before
the kept one (a backfill) computes its own and leaves the store alone. Every sum is an
integer (millionths) and every recomputed row is the row a computation from scratch
gives (tests/pipelines/test_risk_feature_store.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import NamedTuple

import duckdb
import ibis
from ibis import _

from models.outcomes import OutcomeRules
from models.risk_features import (
    daily_evidence, daily_evidence_from, evidence_opening, evidence_orders_from, order_attributes, orders_placed,
)
from pipelines.engines import drop_checkpoints, duckdb_checkpoint
from pipelines.scoring import STAGED_EVENTS, first_seq_staged_since, first_stale_day, oldest_seqs
from pipelines.warehouse import table_exists

log = logging.getLogger(__name__)
STATE_DDL = ("CREATE TABLE IF NOT EXISTS meta.risk_feature_store (through DATE, load_seq BIGINT, rules VARCHAR, "
             "opened DATE)")
ATTRIBUTES, DAILY, OPENING = "risk_order_attributes", "risk_daily_evidence", "risk_evidence_opening"
# A build computes the daily evidence by chunks of whole suppliers of about this many
# orders: in one pass at 10M orders its groupings and outer join (14.6M supplier-days x 44
# sums) ran out of DuckDB's 6GB (benchmarks/RESULTS.md, fourteenth session).
ORDERS_PER_BUILD_CHUNK = 2_500_000


@dataclass(frozen=True)
class Kept:
    """What the store holds: the order attributes by the end of `through` and the daily
    evidence, from the versions staged up to `load_seq`, under the outcome rules `rules`;
    and each supplier's evidence of the days before `opened`."""

    through: dt.date
    load_seq: int
    rules: str
    opened: dt.date


def rules_key(rules: OutcomeRules) -> str:
    return json.dumps(dataclasses.asdict(rules), sort_keys=True)


def kept(con: duckdb.DuckDBPyConnection) -> Kept | None:
    """The store's state; None when nothing is kept."""
    if not all(table_exists(con, schema, name) for schema, name in
               (("meta", "risk_feature_store"), ("features", ATTRIBUTES), ("features", DAILY),
                ("features", OPENING))):
        return None
    rows = con.execute("SELECT through, load_seq, rules, opened FROM meta.risk_feature_store").fetchall()
    return Kept(*rows[0]) if rows else None


def usable(con: duckdb.DuckDBPyConnection, through: dt.date, rules: OutcomeRules) -> Kept | None:
    """The store's state when it holds what a run through `through` under `rules` would compute."""
    state = kept(con)
    if state is not None and state.through == through and state.rules == rules_key(rules) and \
            state.load_seq == _newest_seq(con):
        return state
    return None


class Refreshed(NamedTuple):
    """What `refresh` did ("built", "updated", "current", "aside": left for a run on an
    earlier day) and, when it updated, the first day whose daily evidence it recomputed."""

    action: str
    first: dt.date | None = None


def refresh(con: duckdb.DuckDBPyConnection, backend, through: dt.date, rules: OutcomeRules,
            opening: dt.date) -> Refreshed:
    """Bring the store up to `through` and every staged version, with the evidence before
    `opening` summed per supplier (the caller's transaction; the daily facts must be up to
    date)."""
    con.execute(STATE_DDL)
    state, newest = kept(con), _newest_seq(con)
    if state is not None and state.rules == rules_key(rules):
        if through < state.through:
            log.info("risk feature store kept through %s: a run for %s computes its own", state.through, through)
            return Refreshed("aside")
        if through == state.through and newest == state.load_seq and opening == state.opened:
            return Refreshed("current")
    staged = {n: backend.table(n, database="staging") for n in STAGED_EVENTS}
    facts = backend.table("supplier_day_facts", database="features")
    checkpoint = duckdb_checkpoint(backend)
    if state is None or state.rules != rules_key(rules):
        backend.create_table(ATTRIBUTES, order_attributes(staged["orders"], staged["disputes"], through,
                                                          lambda name, table: checkpoint(table, name)),
                             database="features", overwrite=True)
        _build_daily(con, backend, facts, backend.table(ATTRIBUTES, database="features"), staged, rules)
        done = Refreshed("built")
    else:
        first = _update_attributes(con, backend, staged, state, through, checkpoint)
        attributes = backend.table(ATTRIBUTES, database="features")
        relevant = checkpoint(evidence_orders_from(first, attributes, *staged.values(), rules), "evidence_orders")
        # their versions only, from the oldest of them on (staged in load order: DuckDB skips the rest)
        oldest = _oldest_seqs(con, backend, relevant)
        bounded = {n: t.filter(t.load_seq >= oldest[n]) for n, t in staged.items()}
        recomputed = checkpoint(daily_evidence_from(first, facts, attributes, *bounded.values(), rules, relevant),
                                "daily_from")
        con.execute(f"DELETE FROM features.{DAILY} WHERE day_number >= ?", [_day(first)])
        backend.insert(DAILY, recomputed, database="features")
        done = Refreshed("updated", first)
    if done.action == "built" or done.first < state.opened:
        backend.create_table(OPENING, evidence_opening(backend.table(DAILY, database="features"), opening),
                             database="features", overwrite=True)
    elif opening != state.opened:
        _move_opening(con, backend, state.opened, opening, checkpoint)
    drop_checkpoints(con)
    con.execute("DELETE FROM meta.risk_feature_store")
    con.execute("INSERT INTO meta.risk_feature_store VALUES (?, ?, ?, ?)", [through, newest, rules_key(rules), opening])
    log.info("risk feature store %s through %s%s", done.action, through,
             f", the daily evidence from {done.first}" if done.first else "")
    return done


def _move_opening(con, backend, opened: dt.date, opening: dt.date, checkpoint) -> None:
    """Move the kept evidence before `opened` to the evidence before `opening`: add the days
    between them (or take them out, when `opening` is earlier). Integer sums: exact."""
    daily = backend.table(DAILY, database="features")
    low, high = sorted((_day(opened), _day(opening)))
    sign = 1 if opening > opened else -1
    days = daily.filter((_.day_number >= low) & (_.day_number < high))
    values = [c for c in daily.columns if c not in ("supplier_id", "day_number")]
    change = checkpoint(days.group_by("supplier_id").aggregate(
        **{c: (days[c].sum() * sign).cast("int64") for c in values}), "opening_change")
    name = change.get_name()
    con.execute(f"UPDATE features.{OPENING} AS o SET {', '.join(f'{c} = o.{c} + c.{c}' for c in values)} "
                f"FROM {name} AS c WHERE o.supplier_id = c.supplier_id")
    con.execute(f"INSERT INTO features.{OPENING} BY NAME SELECT c.* FROM {name} AS c "
                f"ANTI JOIN features.{OPENING} AS o USING (supplier_id)")


def _oldest_seqs(con, backend, orders: ibis.Table) -> dict[str, int]:
    """Per source, the oldest load_seq among the versions of `orders` (order_id), from
    features.order_spans, brought up to every staged version with the facts."""
    return oldest_seqs(con, backend.table("order_spans", database="features").semi_join(orders, "order_id"))


def _day(day: dt.date) -> int:
    """A date's day number, as the daily evidence numbers days."""
    return (day - dt.date(1970, 1, 1)).days


def _newest_seq(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT coalesce(max(load_seq), 0) FROM meta.load_ledger").fetchall()[0][0]


def _build_daily(con, backend, facts: ibis.Table, attributes: ibis.Table, staged: dict[str, ibis.Table],
                 rules: OutcomeRules) -> None:
    """`features.risk_daily_evidence` from scratch, by chunks of whole suppliers (every
    evidence row, fact or event, is one supplier's: a chunk's rows are those its suppliers'
    facts, orders, shipments and disputes give)."""
    orders = con.execute(f"SELECT count(*) FROM features.{ATTRIBUTES}").fetchall()[0][0]
    chunks = max(1, -(-orders // ORDERS_PER_BUILD_CHUNK))
    for i in range(chunks):
        def part(t: ibis.Table) -> ibis.Table:
            return t if chunks == 1 else t.filter((t.supplier_id.hash() % chunks + chunks) % chunks == i)

        ordered = part(attributes)
        rows = daily_evidence(part(facts), ordered, *(t.semi_join(ordered, "order_id") for t in staged.values()),
                              rules)
        if i == 0:
            backend.create_table(DAILY, rows, database="features", overwrite=True)
        else:
            backend.insert(DAILY, rows, database="features")
        log.info("risk feature store: daily evidence of supplier chunk %s/%s", i + 1, chunks)


def _update_attributes(con, backend, staged: dict[str, ibis.Table], state: Kept, through: dt.date,
                       checkpoint) -> dt.date:
    """Bring the kept order attributes up to `through`; returns the first day whose daily
    evidence can have changed (see the module's docstring). The orders as placed are
    replaced where they changed; the buyer histories are recomputed for those orders and
    the orders placed from that day on: every event they count was recorded since."""
    since = first_seq_staged_since(con, state.load_seq)
    kept_end = ibis.literal(state.through + dt.timedelta(days=1)).cast("timestamp")
    orders = staged["orders"]
    candidates = orders.filter((_.load_seq >= since) | (_.updated_at >= kept_end) | (_.placed_at >= kept_end))
    candidates = checkpoint(candidates.select("order_id").distinct(), "placed_candidates")
    since_oldest = orders.filter(_.load_seq >= _oldest_seqs(con, backend, candidates)["orders"])
    fresh = checkpoint(orders_placed(since_oldest.semi_join(candidates, "order_id"), through), "placed_fresh")
    kept_rows = backend.table(ATTRIBUTES, database="features")
    placed = kept_rows.select(*fresh.columns)
    old = placed.semi_join(candidates, "order_id")
    changed = checkpoint(ibis.union(fresh.difference(old), old.difference(fresh)).select("order_id").distinct(),
                         "placed_changed")
    name = changed.get_name()
    oldest = _oldest_seqs(con, backend, changed)
    own = " UNION ALL ".join([f"SELECT min(known_at)::DATE AS d FROM features.{ATTRIBUTES} "
                              f"WHERE order_id IN (SELECT order_id FROM {name})",
                              f"SELECT min(known_at)::DATE FROM {fresh.get_name()} "
                              f"WHERE order_id IN (SELECT order_id FROM {name})"] + [
        f"SELECT min(updated_at)::DATE FROM staging.{n} WHERE load_seq >= {oldest[n]} "
        f"AND order_id IN (SELECT order_id FROM {name})" for n in ("shipments", "disputes")])
    changed_from = con.execute(f"SELECT min(d) FROM ({own})").fetchall()[0][0]
    first = first_stale_day(con, state.through, state.load_seq)
    first = first if changed_from is None else min(first, changed_from)
    # the changed orders as placed first, their histories to come with the others'
    con.execute(f"DELETE FROM features.{ATTRIBUTES} WHERE order_id IN (SELECT order_id FROM {name})")
    history = {c: ibis.null(kept_rows[c].type()) for c in kept_rows.columns if c not in fresh.columns}
    backend.insert(ATTRIBUTES, fresh.semi_join(changed, "order_id").mutate(**history).select(*kept_rows.columns),
                   database="features")
    asked = checkpoint(placed.filter((_.placed_on >= first) | _.order_id.isin(changed.order_id)), "asked")
    recomputed = checkpoint(order_attributes(orders, staged["disputes"], through, placed=placed, asked=asked),
                            "attributes_from")
    con.execute(f"DELETE FROM features.{ATTRIBUTES} WHERE order_id IN (SELECT order_id FROM {asked.get_name()})")
    backend.insert(ATTRIBUTES, recomputed.select(*kept_rows.columns), database="features")
    return first
