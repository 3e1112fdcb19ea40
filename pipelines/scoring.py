"""Scoring in the warehouse: keep the daily facts current, then score one as-of date.

`features.supplier_day_facts` is maintained incrementally: a run computes the facts of
the days since the last run, plus the days a late file could have changed (from the
oldest `updated_at` among rows loaded since), of which it replaces only the facts that
changed, and never the rest of history. So is
`features.buyer_evidence`, the facts of the metric windows summed per supplier x metric x
buyer: a run moves it by the days that entered and left its windows. Scores, metrics and
components of a date replace that date's previous ones in one transaction, so a rerun of
the same date on the same data gives the same rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from dataclasses import dataclass

import duckdb
import ibis
from ibis import _

from models.facts import supplier_day_facts
from models.outcomes import order_outcomes
from models.metrics import EVIDENCE_KEYS, EvidenceSpan, buyer_evidence, evidence_change, evidence_correction
from models.scorecard import Checkpoint, ScoringPolicy, evidence_windows, rankings
from pipelines.engines import drop_checkpoints, duckdb_backend, duckdb_checkpoint
from pipelines.settings import Config, DataPaths
from pipelines.warehouse import PENDING_RELEASES_DDL, connect, table_exists, transaction

log = logging.getLogger(__name__)

SCHEMA_DDL = (
    "CREATE SCHEMA IF NOT EXISTS features",
    "CREATE SCHEMA IF NOT EXISTS scores",
    """CREATE TABLE IF NOT EXISTS features.supplier_day_facts (
        supplier_id VARCHAR, buyer_id VARCHAR, day DATE, metric VARCHAR, order_id VARCHAR,
        numerator DOUBLE, denominator DOUBLE)""",
    # One row per order with any version staged: the oldest load_seq among its versions of each
    # source, and the latest dates that say until when it can have an outcome decided
    # (order_spans). A stretch of days reads each source's versions from the oldest load_seq
    # of the orders it can decide, not every version ever staged.
    """CREATE TABLE IF NOT EXISTS features.order_spans (
        order_id VARCHAR, orders_from_seq BIGINT, shipments_from_seq BIGINT, disputes_from_seq BIGINT,
        last_placed_at TIMESTAMP, last_due TIMESTAMP, last_disputed_at TIMESTAMP)""",
    "CREATE TABLE IF NOT EXISTS meta.facts_state (last_day DATE, load_seq BIGINT)",
    PENDING_RELEASES_DDL,  # read by first_stale_day; ingest writes it (a warehouse from before it has none)
    # The span (models/metrics.EvidenceSpan) and windows (comma-separated days) that
    # features.buyer_evidence sums.
    "CREATE TABLE IF NOT EXISTS meta.buyer_evidence_state (as_of DATE, through DATE, windows VARCHAR)",
)
FACT_GROUP = ("supplier_id", "buyer_id", "day", "metric")  # facts replaced together when recomputed
STAGED_EVENTS = ("orders", "shipments", "disputes")
SPAN_SEQS = {source: f"{source}_from_seq" for source in STAGED_EVENTS}  # features.order_spans' columns...
SPAN_DATES = ("last_placed_at", "last_due", "last_disputed_at")  # ...and the rest but order_id


@dataclass(frozen=True)
class ScoreResult:
    as_of: dt.date
    run_id: str
    suppliers: int
    fact_days_computed: int


def policy_from(config: Config) -> ScoringPolicy:
    scoring = {f.name: getattr(config.scoring, f.name) for f in dataclasses.fields(config.scoring)}
    return ScoringPolicy(**scoring, protection=config.protection)


# The DuckDB backend's setup is engine-specific: pipelines/engines.py owns it.
ibis_backend = duckdb_backend


def ensure_scoring_schema(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in SCHEMA_DDL:
        con.execute(ddl)


def score(paths: DataPaths, config: Config, as_of: dt.date, run_id: str,
          risk: ibis.Table | None = None, model_version: str = "none") -> ScoreResult:
    """Bring the facts up to as_of and store the rankings and metrics of as_of, computed
    on the engine the config names (`engine.name`)."""
    if config.engine.name == "spark":
        from pipelines.spark_scoring import score_on_spark

        return score_on_spark(paths, config, as_of, run_id, risk, model_version)
    con = connect(paths, memory_limit=config.warehouse.memory_limit)
    try:
        ensure_scoring_schema(con)
        backend = ibis_backend(con)
        with transaction(con):
            days = update_facts(con, backend, as_of, config.warehouse.facts_batch_orders)
            suppliers = _store_scores(con, backend, config, as_of, run_id, risk, model_version)
        return ScoreResult(as_of, run_id, suppliers, days)
    finally:
        con.close()


def latest_data_day(paths: DataPaths) -> dt.date:
    """The newest day with any staged order version: the default as-of date."""
    con = connect(paths, read_only=True)
    try:
        day = con.execute("SELECT max(updated_at)::DATE FROM staging.orders").fetchall()[0][0]
    finally:
        con.close()
    if day is None:
        raise ValueError("no orders in the warehouse yet: run `suprel ingest` first")
    return day


def top_rankings(paths: DataPaths, as_of: dt.date, limit: int) -> list[dict]:
    """The best-ranked suppliers of a stored date, as dicts (for the terminal)."""
    con = connect(paths, read_only=True)
    try:
        cursor = con.execute("SELECT * FROM scores.supplier_rankings WHERE as_of_date = ? "
                             "ORDER BY rank_overall LIMIT ?", [as_of, limit])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def _staging(backend, name: str) -> ibis.Table:
    return backend.table(name, database="staging")


def update_facts(con: duckdb.DuckDBPyConnection, backend, as_of: dt.date, batch_orders: int = 0) -> int:
    """Compute the facts of the days not yet computed (or touched by late loads) up to as_of.

    A long stretch of days (a first run, a backfill) is computed in batches of consecutive
    days with at most `batch_orders` orders placed in them (0: one batch), so that memory is
    bounded by a batch, not by the history. Batches give the same facts as one pass: the
    facts of a day are the outcomes decided that day, final once the day is over.

    Days computed before (a late file touched them) are recomputed, but only the facts that
    changed are replaced (`_replace_changed_facts`). A batch reads each source's versions only
    from the oldest load_seq among the orders it can decide (features.order_spans), so a
    day's run reads the versions of the orders still in flight, not the whole history.
    """
    last_day, covered_seq = con.execute("SELECT max(last_day), max(load_seq) FROM meta.facts_state").fetchall()[0]
    newest_seq = con.execute("SELECT coalesce(max(load_seq), 0) FROM meta.load_ledger").fetchall()[0][0]
    first = first_stale_day(con, last_day, covered_seq or 0)
    if first is None:
        return 0
    through = max(as_of, last_day) if last_day else as_of
    if first > through:
        return 0
    checkpoint = duckdb_checkpoint(backend)
    _update_order_spans(con, backend, covered_seq or 0, checkpoint)
    for batch_first, batch_last in _day_batches(con, first, through, batch_orders):
        # A first run's first batch starts with the history: nearly every order can be decided
        # in it, and finding which cost more than it saved (benchmarks/RESULTS.md).
        start_of_history = last_day is None and batch_first == first
        staged = {n: _staging(backend, n) for n in STAGED_EVENTS}
        if not start_of_history:
            oldest = _oldest_seqs_decidable_from(con, backend.table("order_spans", database="features"), batch_first)
            staged = {n: t.filter(t.load_seq >= oldest[n]) for n, t in staged.items()}
        facts = facts_between(staged, batch_first, batch_last, checkpoint, restrict=not start_of_history)
        if last_day is not None and batch_first <= last_day:
            _replace_changed_facts(con, backend, checkpoint(facts, "recomputed_facts"), batch_first, batch_last,
                                   checkpoint)
        else:  # days never computed: nothing to replace
            backend.insert("supplier_day_facts", facts, database="features")
        drop_checkpoints(con)  # the batch's outcomes: their memory goes back before the next batch
        log.info("facts computed for %s..%s", batch_first, batch_last)
    con.execute("DELETE FROM meta.facts_state")
    con.execute("INSERT INTO meta.facts_state VALUES (?, ?)", [through, newest_seq])
    return (through - first).days + 1


def _replace_changed_facts(con, backend, recomputed: ibis.Table, first: dt.date, last: dt.date,
                           checkpoint: Checkpoint) -> None:
    """Replace the stored facts of first..last by `recomputed` (materialised) where they differ,
    and correct the kept buyer evidence by the same rows.

    A late file's versions change a few orders of the days they touch (at 3M orders, 861 of
    the 889,625 facts of 19 recomputed days); deleting and inserting every fact of those days
    cost a pass over the facts, a commit of all of them, and their evidence taken out and
    added back. Facts carry no order id, so a changed fact is replaced with its group
    (supplier, buyer, day, metric): the multiset of the group's rows is what the readers sum.
    """
    facts = backend.table("supplier_day_facts", database="features")
    stored = checkpoint(facts.filter((facts.day >= first) & (facts.day <= last)), "stored_facts")
    # A row whose copies the two sides do not hold equally often: one grouping of both, where two
    # EXCEPT ALLs built a hash table of each side.
    signed = ibis.union(stored.mutate(side=ibis.literal(-1, type="int64")),
                        recomputed.mutate(side=ibis.literal(1, type="int64")))
    rows = signed.group_by(stored.columns).aggregate(balance=_.side.sum())
    groups = checkpoint(rows.filter(_.balance != 0).select(*FACT_GROUP).distinct(), "changed_fact_groups")
    replaced = checkpoint(stored.semi_join(groups, list(FACT_GROUP)), "replaced_facts")
    changed = recomputed.semi_join(groups, list(FACT_GROUP))
    kept = _kept_evidence(con)
    if kept is not None:
        span, windows = kept
        _move_evidence(con, checkpoint(evidence_correction(replaced, changed, span, windows), "evidence_correction"),
                       windows)
    matched = " AND ".join(f"f.{k} = g.{k}" for k in FACT_GROUP)
    con.execute(f"DELETE FROM features.supplier_day_facts AS f USING {groups.get_name()} AS g "
                f"WHERE f.day BETWEEN ? AND ? AND {matched}", [first, last])
    backend.insert("supplier_day_facts", changed, database="features")


def _day_batches(con, first: dt.date, last: dt.date, batch_orders: int) -> list[tuple[dt.date, dt.date]]:
    """first..last cut into runs of consecutive days, each with at most batch_orders orders
    placed (a day with more is a batch of its own); one batch when batch_orders is 0."""
    if batch_orders <= 0:
        return [(first, last)]
    per_day = dict(con.execute(
        "SELECT placed_at::DATE, count(DISTINCT order_id) FROM staging.orders "
        "WHERE placed_at::DATE BETWEEN ? AND ? GROUP BY 1", [first, last]).fetchall())
    batches, start, held = [], first, 0
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        placed = per_day.get(day, 0)
        if held and held + placed > batch_orders:
            batches.append((start, day - dt.timedelta(days=1)))
            start, held = day, 0
        held += placed
    return [*batches, (start, last)]


def facts_between(staged: dict[str, ibis.Table], first: dt.date, through: dt.date,
                  checkpoint: Checkpoint | None = None, restrict: bool = True) -> ibis.Table:
    """The daily facts of first..through from the staged order, shipment and dispute versions
    (on any engine; `checkpoint` may materialise the outcomes, which every metric reads).

    `restrict` computes outcomes only for the orders that can have one decided in those days:
    the facts are the same either way (the others have no outcome decided in those days), and
    it is worth it when much history precedes `first`."""
    # Versions recorded after `through` cannot decide anything by then: leaving them out
    # first keeps a batch's cost to its own stretch of history, not to all that follows it.
    through_end = ibis.literal(through + dt.timedelta(days=1)).cast("timestamp")
    orders, shipments, disputes = (staged[n].filter(_.updated_at < through_end) for n in STAGED_EVENTS)
    if restrict:
        relevant = _orders_with_events_from(orders, disputes, first)
        if checkpoint:
            # Materialised, its size is known: without that DuckDB built the semi-joins' hash table
            # on every staged order version instead of on these ids (2.3x the memory, 1.5x the CPU
            # of a late batch at 3M orders: benchmarks/RESULTS.md).
            relevant = checkpoint(relevant, "relevant_orders")
        orders, shipments, disputes = (t.semi_join(relevant, "order_id") for t in (orders, shipments, disputes))
    outcomes = order_outcomes(orders, shipments, disputes, through)
    if checkpoint:
        # In the order placed, each metric's facts come out nearly in the order of their days, so
        # the facts table is clustered by day and a day's reads (a late file's days, the days
        # leaving the evidence windows) skip most row groups: every row group spanned all 730
        # days before. 3M orders: first run 54.8 CPU s against 57.3, the next day's score 14.5 /
        # 15.3 against 18.8 / 20.9 (benchmarks/RESULTS.md).
        outcomes = checkpoint(outcomes.order_by("placed_on"), "outcomes")
    return supplier_day_facts(outcomes, first, through)


def first_stale_day(con, last_day: dt.date | None, covered_seq: int) -> dt.date | None:
    """The first day whose facts must be (re)computed; None when there is no data at all.

    Versions staged since the facts covered `covered_seq`: those of newer files, and those
    released from pending since (they keep their older file's load_seq)."""
    union = " UNION ALL ".join(
        [f"SELECT min(updated_at)::DATE AS d FROM staging.{n} WHERE load_seq > {int(covered_seq)}"
         for n in STAGED_EVENTS]
        + [f"SELECT min(earliest_updated_at)::DATE FROM meta.pending_releases WHERE released_seq > {int(covered_seq)}"])
    touched = con.execute(f"SELECT min(d) FROM ({union})").fetchall()[0][0]
    if last_day is None:
        return touched
    following = last_day + dt.timedelta(days=1)
    return min(following, touched) if touched else following


def _latest_due(orders: ibis.Table) -> ibis.Value:
    """An order version's delivery deadline: the promised day, or ship-by + 15 days when none
    was promised (models/outcomes.py)."""
    return ibis.coalesce(orders.promised_delivery_by, orders.promised_ship_by + ibis.interval(days=15))


def _placed_or_maturing_since(placed_at: ibis.Value, latest_due: ibis.Value, first: dt.date) -> ibis.Value:
    """Placed on or after `first`, or due to mature since: every outcome but a dispute's is
    decided within 60 days of the delivery deadline (maturity comes 37 days after it)."""
    return (placed_at >= ibis.literal(first).cast("timestamp")) | (latest_due + ibis.interval(days=60) >= first)


def _orders_with_events_from(orders: ibis.Table, disputes: ibis.Table, first: dt.date) -> ibis.Table:
    """Order ids that can have an outcome decided on or after `first`: placed since, due
    to mature since (from the latest promised dates), or with a dispute updated since."""
    maturing = orders.filter(_placed_or_maturing_since(orders.placed_at, _latest_due(orders), first))
    disputed = disputes.filter(_.updated_at >= ibis.literal(first).cast("timestamp")).select("order_id")
    return ibis.union(maturing.select("order_id"), disputed, distinct=True)


def order_spans(orders: ibis.Table, shipments: ibis.Table, disputes: ibis.Table) -> ibis.Table:
    """One row per order with any of these versions: the oldest load_seq among its versions of
    each source (`SPAN_SEQS`), and the latest placed_at, delivery deadline (`_latest_due`) and
    dispute update among them (`SPAN_DATES`)."""
    types = {"order_id": "string", **dict.fromkeys(SPAN_SEQS.values(), "int64"),
             **dict.fromkeys(SPAN_DATES, "timestamp")}

    def as_spans(part: ibis.Table, source: str) -> ibis.Table:
        """A source's (order_id, seq, some of the dates) in the spans' columns."""
        return part.select(
            "order_id",
            **{column: part.seq if name == source else ibis.null("int64") for name, column in SPAN_SEQS.items()},
            **{date: part[date] if date in part.columns else ibis.null("timestamp") for date in SPAN_DATES},
        ).cast(types)

    dated = orders.mutate(latest_due=_latest_due(orders))
    spans = ibis.union(
        as_spans(dated.group_by("order_id").aggregate(seq=_.load_seq.min(), last_placed_at=_.placed_at.max(),
                                                      last_due=_.latest_due.max()), "orders"),
        as_spans(shipments.group_by("order_id").aggregate(seq=_.load_seq.min()), "shipments"),
        as_spans(disputes.group_by("order_id").aggregate(seq=_.load_seq.min(), last_disputed_at=_.updated_at.max()),
                 "disputes"))
    return spans.group_by("order_id").aggregate(**{c: spans[c].min() for c in SPAN_SEQS.values()},
                                                **{c: spans[c].max() for c in SPAN_DATES})


def _update_order_spans(con, backend, covered_seq: int, checkpoint: Checkpoint) -> None:
    """Bring features.order_spans up to every staged version, reading only those staged since
    the facts covered `covered_seq`: the newer files' and those released from pending since
    (which keep their own, older, load_seq). The whole history the first time."""
    staged = {n: _staging(backend, n) for n in STAGED_EVENTS}
    if not con.execute("SELECT count(*) FROM (SELECT 1 FROM features.order_spans LIMIT 1)").fetchall()[0][0]:
        backend.insert("order_spans", order_spans(**staged), database="features")
        return
    since = first_seq_staged_since(con, covered_seq)
    changed = checkpoint(order_spans(**{n: t.filter(t.load_seq >= since) for n, t in staged.items()}), "span_changes")
    oldest = ", ".join(f"{c} = least(s.{c}, c.{c})" for c in SPAN_SEQS.values())
    latest = ", ".join(f"{c} = greatest(s.{c}, c.{c})" for c in SPAN_DATES)
    con.execute(f"MERGE INTO features.order_spans AS s USING {changed.get_name()} AS c ON s.order_id = c.order_id "
                f"WHEN MATCHED THEN UPDATE SET {oldest}, {latest} WHEN NOT MATCHED THEN INSERT BY NAME")


def first_seq_staged_since(con, covered_seq: int) -> int:
    """The first load_seq to read for the versions staged since `covered_seq` was covered:
    the newer files' and those released from pending since (which keep their own, older,
    load_seq)."""
    released = con.execute("SELECT min(earliest_load_seq) FROM meta.pending_releases WHERE released_seq > ?",
                           [covered_seq]).fetchall()[0][0]
    return covered_seq + 1 if released is None else min(covered_seq + 1, released)


def _oldest_seqs_decidable_from(con, spans: ibis.Table, first: dt.date) -> dict[str, int]:
    """`oldest_seqs` of the orders that can have an outcome decided on or after `first`: a
    bound on the versions the facts from `first` read."""
    return oldest_seqs(con, spans.filter(_placed_or_maturing_since(spans.last_placed_at, spans.last_due, first)
                                         | (spans.last_disputed_at >= ibis.literal(first).cast("timestamp"))))


def oldest_seqs(con, spans: ibis.Table) -> dict[str, int]:
    """Per source, the oldest load_seq among the versions of the orders of `spans` (rows of
    features.order_spans). Each source's versions are staged in load order, so DuckDB skips
    the row groups before it (a backfill loads every orders file before any shipments file,
    so one bound for all three would skip no shipment)."""
    oldest = spans.aggregate(**{source: spans[column].min() for source, column in SPAN_SEQS.items()})
    found = dict(zip(oldest.columns, con.execute(ibis.to_sql(oldest, dialect="duckdb")).fetchall()[0]))
    # A source none of those orders has versions in: a bound past every version.
    past = con.execute("SELECT coalesce(max(load_seq), 0) + 1 FROM meta.load_ledger").fetchall()[0][0]
    return {source: past if seq is None else seq for source, seq in found.items()}


def _previous_decisions(con, backend, as_of: dt.date) -> ibis.Table:
    """The latest stored decision before as_of of every supplier (empty the first time)."""
    if not table_exists(con, "scores", "supplier_rankings"):
        schema = ibis.schema({"supplier_id": "string", "protection_status": "string", "status_since": "date"})
        return ibis.memtable(schema.to_pyarrow().empty_table())
    ranked = backend.table("supplier_rankings", database="scores")
    latest = ranked.filter(_.as_of_date < as_of).as_of_date.max()
    return ranked.filter(_.as_of_date == latest).select("supplier_id", "protection_status", "status_since")


def scored_tables(facts: ibis.Table, suppliers: ibis.Table, previous: ibis.Table, risk: ibis.Table | None,
                  config: Config, as_of: dt.date, run_id: str, model_version: str,
                  checkpoint: Checkpoint | None = None, evidence: ibis.Table | None = None) -> dict[str, ibis.Table]:
    """The rows of as_of for scores.supplier_rankings and scores.supplier_metrics, on any engine."""
    ranked, metrics = rankings(facts, suppliers, previous, risk, as_of, policy_from(config), checkpoint, evidence)
    ranked = ranked.mutate(run_id=ibis.literal(run_id), model_version=ibis.literal(model_version),
                           config_hash=ibis.literal(config.config_hash))
    return {"supplier_rankings": ranked, "supplier_metrics": metrics.mutate(run_id=ibis.literal(run_id))}


def store_scores(con, backend, tables: dict[str, ibis.Table], as_of: dt.date) -> int:
    """Replace as_of's rows of each scores.<name> with `tables`; returns the suppliers stored."""
    for name, table in tables.items():
        _replace_date(con, backend, name, table, as_of)
    return con.execute("SELECT count(*) FROM scores.supplier_rankings WHERE as_of_date = ?", [as_of]).fetchall()[0][0]


def _store_scores(con, backend, config: Config, as_of: dt.date, run_id: str, risk, model_version: str) -> int:
    """The scorecard of as_of, each stage materialised once (duckdb_checkpoint), stored."""
    facts = backend.table("supplier_day_facts", database="features")
    previous = _previous_decisions(con, backend, as_of)
    checkpoint = duckdb_checkpoint(backend)
    evidence = kept_buyer_evidence(con, backend, as_of, evidence_windows(policy_from(config)), checkpoint)
    tables = scored_tables(facts, _staging(backend, "suppliers"), previous, risk, config, as_of, run_id,
                           model_version, checkpoint, evidence)
    suppliers = store_scores(con, backend, tables, as_of)
    drop_checkpoints(con)
    return suppliers


def kept_buyer_evidence(con, backend, as_of: dt.date, windows: tuple[int, ...], checkpoint: Checkpoint) -> ibis.Table:
    """The `buyer_evidence` of as_of (models/metrics.py), kept in features.buyer_evidence from
    one run to the next and moved by the facts that entered and left its windows since the
    span it holds: a daily run groups a few days of facts per window instead of the whole
    long window, which was most of a day's scorecard.

    Rebuilt from the facts when what is kept cannot be moved: the first run, other windows,
    or more days to add than the longest window. A date before the kept one is computed
    aside and leaves the kept evidence alone. The sums are decimals, so moved or rebuilt, the
    rows are the same.
    """
    facts = backend.table("supplier_day_facts", database="features")
    windows = tuple(sorted(set(windows)))
    kept = _kept_evidence(con)
    span = kept[0] if kept and kept[1] == windows else None
    wanted = EvidenceSpan(as_of, as_of)
    if span is not None and as_of < span.as_of:
        return checkpoint(buyer_evidence(facts, as_of, windows), "buyer_evidence")
    if span is None or (as_of - span.through).days >= max(windows):
        backend.create_table("buyer_evidence", buyer_evidence(facts, as_of, windows), database="features",
                             overwrite=True)
    elif span != wanted:
        _move_evidence(con, checkpoint(evidence_change(facts, span, wanted, windows), "evidence_change"), windows)
    _keep_evidence_state(con, wanted, windows)
    return backend.table("buyer_evidence", database="features")


def _kept_evidence(con) -> tuple[EvidenceSpan, tuple[int, ...]] | None:
    """The span and windows (ascending) features.buyer_evidence sums; None when nothing is kept."""
    kept = con.execute("SELECT as_of, through, windows FROM meta.buyer_evidence_state").fetchall()
    if not kept:
        return None
    as_of, through, windows = kept[0]
    return EvidenceSpan(as_of, through), tuple(int(days) for days in windows.split(","))


def _keep_evidence_state(con, span: EvidenceSpan, windows: tuple[int, ...]) -> None:
    """Record what features.buyer_evidence now sums (windows ascending, as _kept_evidence reads them)."""
    con.execute("DELETE FROM meta.buyer_evidence_state")
    con.execute("INSERT INTO meta.buyer_evidence_state VALUES (?, ?, ?)",
                [span.as_of, span.through, ",".join(str(days) for days in windows)])


def _move_evidence(con, change: ibis.Table, windows: tuple[int, ...]) -> None:
    """Add `change` (an `evidence_change` or `evidence_correction`, materialised) to
    features.buyer_evidence: sums of the buyers it has, new rows for the others; buyers left
    with no facts in any window go."""
    name = change.get_name()
    sums = [f"{kind}_{days}" for days in windows for kind in ("numerator", "denominator", "facts")]
    matched = " AND ".join(f"e.{k} = c.{k}" for k in EVIDENCE_KEYS)
    con.execute(f"UPDATE features.buyer_evidence AS e SET {', '.join(f'{c} = e.{c} + c.{c}' for c in sums)} "
                f"FROM {name} AS c WHERE {matched}")
    con.execute(f"INSERT INTO features.buyer_evidence BY NAME SELECT c.* FROM {name} AS c "
                f"ANTI JOIN features.buyer_evidence AS e USING ({', '.join(EVIDENCE_KEYS)})")
    con.execute(f"DELETE FROM features.buyer_evidence WHERE facts_{max(windows)} = 0")


def _replace_date(con, backend, name: str, table: ibis.Table, as_of: dt.date) -> None:
    """Replace the as_of date's rows of scores.<name> (creating the table the first time)."""
    if not table_exists(con, "scores", name):
        backend.create_table(name, table, database="scores")
        return
    con.execute(f"DELETE FROM scores.{name} WHERE as_of_date = ?", [as_of])
    columns = backend.table(name, database="scores").columns
    backend.insert(name, table.select(*columns), database="scores")
