"""Do two warehouses hold the same rows? For checking that a change to ingestion changed no result.

    .venv/bin/python -m benchmarks.compare_warehouses A/warehouse/suprel.duckdb B/warehouse/suprel.duckdb

Ingest the same landing files into two fresh data dirs, once per version of the code, then
compare. Every table of raw, staging, pending, quarantine and meta (but the fingerprint
cache and the run records) is compared as a multiset of rows, with run ids, timestamps
and seconds left out. In meta.validation_results, GX's few sample failing values
(`partial_unexpected_list`) are left out too: which failing values GX lists first depends
on the order of its frame's rows, not on what it counted. Its counts are compared.
Prints one line per table and per expectation; the last line is EQUAL or names the
number of tables that differ.
"""

from __future__ import annotations

import argparse

import duckdb

IGNORED_COLUMNS = {"run_id", "started_at", "finished_at", "seconds", "quarantined_at", "quarantine_run_id",
                   "first_seen_at", "first_seen_run_id", "validated_at"}
IGNORED_TABLES = {"landing_fingerprints", "validation_runs", "runs"}
SAMPLES = ("""regexp_replace(details, '"partial_unexpected_list": \\[[^\\]]*\\]', """
           """'"partial_unexpected_list": (not compared)', 'g') AS details""")


def _columns(con, schema: str, table: str) -> str:
    names = con.execute("SELECT column_name FROM duckdb_columns() WHERE database_name = 'a' AND schema_name = ? "
                        "AND table_name = ? ORDER BY column_index", [schema, table]).fetchall()
    return ", ".join(SAMPLES if name == "details" else f'"{name}"' for (name,) in names if name not in IGNORED_COLUMNS)


def _compare_table(con, schema: str, table: str) -> bool:
    picked = _columns(con, schema, table)
    a, b = f"SELECT {picked} FROM a.{schema}.{table}", f"SELECT {picked} FROM b.{schema}.{table}"
    rows_a, rows_b = (con.execute(f"SELECT count(*) FROM {db}.{schema}.{table}").fetchall()[0][0] for db in "ab")
    only_a = con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchall()[0][0]
    only_b = con.execute(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})").fetchall()[0][0]
    same = rows_a == rows_b and only_a == only_b == 0
    print(f"{'OK  ' if same else 'DIFF'} {schema}.{table}: {rows_a} vs {rows_b} rows, "
          f"only in A {only_a}, only in B {only_b}")
    if not same:
        for label, query in (("A", f"{a} EXCEPT ALL {b}"), ("B", f"{b} EXCEPT ALL {a}")):
            for row in con.execute(f"{query} LIMIT 3").fetchall():
                print(f"   {label}: {row}")
    return same


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args(argv)
    con = duckdb.connect()
    con.execute("ATTACH ? AS a (READ_ONLY)", [args.a])
    con.execute("ATTACH ? AS b (READ_ONLY)", [args.b])
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'a' AND "
                         "schema_name IN ('raw', 'staging', 'pending', 'quarantine', 'meta') ORDER BY 1, 2").fetchall()
    differ = sum(not _compare_table(con, schema, table) for schema, table in tables if table not in IGNORED_TABLES)
    per_rule = ("SELECT expectation, sum(unexpected_count) AS n FROM {}.meta.validation_results GROUP BY 1")
    for rule, in_a, in_b in con.execute(f"SELECT expectation, x.n, y.n FROM ({per_rule.format('a')}) x "
                                        f"FULL JOIN ({per_rule.format('b')}) y USING (expectation) ORDER BY 1").fetchall():
        print(f"  {rule}: {in_a} vs {in_b}{'' if in_a == in_b else '  <-- differs'}")
    print("EQUAL" if not differ else f"{differ} TABLES DIFFER")


if __name__ == "__main__":
    main()
