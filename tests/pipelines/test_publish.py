"""Publishing: the contract's files, atomically swapped, behind the protection-change gate."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.publish import (CONTRACT_COLUMNS, PublicationRefused, check_gate, current_as_of,
                               protection_changes, write_snapshot)


def snapshot(as_of: str, run_id: str, protected: list[bool]) -> pa.Table:
    """A minimal table with the contract's key columns (enough for the publication mechanics)."""
    n = len(protected)
    return pa.table({
        "as_of_date": [dt.date.fromisoformat(as_of)] * n, "run_id": [run_id] * n,
        "supplier_id": [f"S{i:03d}" for i in range(n)], "is_protected": protected,
        "protection_status": ["eligible" if p else "suspended" for p in protected],
        "reason_codes": [["meets_bar"] if p else ["confidently_below_bar"] for p in protected],
    })


def test_a_snapshot_lands_as_current_parquet_duckdb_and_history(paths):
    write_snapshot(paths, snapshot("2024-03-01", "r1", [True, False]))
    current = pq.read_table(paths.published / "supplier_rankings.parquet")
    history = pq.read_table(paths.published / "history" / "as_of=2024-03-01" / "supplier_rankings.parquet")
    assert current.equals(history) and current.num_rows == 2
    con = duckdb.connect(str(paths.published / "supplier_rankings.duckdb"), read_only=True)
    assert con.execute("SELECT count(*), min(run_id) FROM supplier_rankings").fetchall() == [(2, "r1")]
    con.close()
    assert not list(paths.published.glob(".publishing-*"))  # nothing left aside


def test_backfilling_an_older_date_adds_history_but_keeps_the_newer_current(paths):
    write_snapshot(paths, snapshot("2024-03-05", "new", [True]))
    write_snapshot(paths, snapshot("2024-03-01", "old", [True]))
    assert current_as_of(paths) == dt.date(2024, 3, 5)
    assert sorted(d.name for d in (paths.published / "history").iterdir()) == ["as_of=2024-03-01", "as_of=2024-03-05"]


def test_protection_changes_are_listed_against_the_last_publication(paths):
    write_snapshot(paths, snapshot("2024-03-01", "r1", [True, True, False, True]))
    changed, compared, changes = protection_changes(snapshot("2024-03-02", "r2", [True, False, True, True]),
                                                    paths.published / "supplier_rankings.parquet")
    assert (changed, compared) == (2, 4)
    assert [(c["supplier_id"], c["was_protected"], c["is_protected"]) for c in changes] == [
        ("S001", True, False), ("S002", False, True)]


def test_the_gate_refuses_above_the_share_and_says_how_to_force():
    check_gate(changed=5, compared=100, max_share=0.05, force_reason=None)  # at the limit: allowed
    with pytest.raises(PublicationRefused, match=r"6 of 100 suppliers \(6.0%\).*--force-reason"):
        check_gate(changed=6, compared=100, max_share=0.05, force_reason=None)
    check_gate(changed=60, compared=100, max_share=0.05, force_reason="policy change approved")


def test_the_published_columns_are_the_contracts():
    assert CONTRACT_COLUMNS[:3] == ("as_of_date", "run_id", "supplier_id")
    assert len(CONTRACT_COLUMNS) == len(set(CONTRACT_COLUMNS)) == 25


READER = textwrap.dedent("""
    import json, sys, time
    import pyarrow.parquet as pq, duckdb
    published, seconds = sys.argv[1], float(sys.argv[2])
    seen, bad, deadline = set(), [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        for reader in ("parquet", "duckdb"):
            try:
                if reader == "parquet":  # one open file: a path opened twice may meet two files
                    with open(published + "/supplier_rankings.parquet", "rb") as handle:
                        t = pq.read_table(handle)
                    run_ids, n = set(t.column("run_id").to_pylist()), t.num_rows
                else:
                    con = duckdb.connect(published + "/supplier_rankings.duckdb", read_only=True)
                    rows = con.execute("SELECT run_id FROM supplier_rankings").fetchall()
                    con.close()
                    run_ids, n = {r[0] for r in rows}, len(rows)
            except FileNotFoundError:
                continue
            seen |= run_ids
            if len(run_ids) != 1 or n != int(next(iter(run_ids)).split("-")[1]):
                bad.append([reader, sorted(run_ids), n])
    print(json.dumps({"seen": sorted(seen), "bad": bad[:5]}))
""")


def test_a_reader_polling_during_repeated_publishes_never_sees_a_partial_or_mixed_snapshot(paths):
    # Each snapshot's run_id encodes its row count, so a partial or mixed read is detectable.
    sizes = [3000, 5000, 1000, 8000]
    write_snapshot(paths, snapshot("2024-03-01", f"run-{sizes[0]}", [True] * sizes[0]))
    reader = subprocess.Popen([sys.executable, "-c", READER, str(paths.published), "6"], stdout=subprocess.PIPE)
    for i in range(40):
        n = sizes[i % len(sizes)]
        write_snapshot(paths, snapshot("2024-03-01", f"run-{n}", [i % 2 == 0] * n))
    result = json.loads(reader.communicate(timeout=60)[0])
    assert result["bad"] == []
    assert len(result["seen"]) >= 2  # the reader really saw the snapshots change under it
