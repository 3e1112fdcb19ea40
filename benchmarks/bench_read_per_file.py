"""Per-file cost of chunk.add_file's statement sequence vs the proposed one (micro-benchmark, RESULTS.md fix 1).

    .venv/bin/python benchmarks/bench_read_per_file.py "DATA/landing/orders/2025-0*.csv" 150 1

Arguments: a glob of orders CSV files, how many of them, how many passes.
"""
import time, glob, duckdb, sys
files = sorted(glob.glob(sys.argv[1]))[:int(sys.argv[2])] * int(sys.argv[3])
header = open(files[0]).readline().strip().split(',')
cols = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in header) + "}"
sel = ", ".join(header)
def rc(p): return (f"read_csv('{p}', header=true, auto_detect=false, columns={cols}, delim=',', quote='\"', "
                   f"escape='\"', strict_mode=true, null_padding=false, compression='auto')")
def setup():
    con = duckdb.connect(); con.execute(f"CREATE TEMP TABLE _chunk_raw AS SELECT {sel}, 0::BIGINT AS line_number, '' AS load_id FROM {rc(files[0])} LIMIT 0"); return con
def current(con, p, i):
    con.execute("DROP TABLE IF EXISTS _incoming")
    con.execute(f"CREATE TEMP TABLE _incoming_rows AS SELECT * FROM {rc(p)}")
    con.execute("SELECT count(*) FROM _incoming_rows").fetchone()
    con.execute(f"CREATE TEMP TABLE _incoming AS SELECT rowid + 2 AS line_number, {sel} FROM _incoming_rows")
    con.execute("DROP TABLE _incoming_rows")
    con.execute(f"INSERT INTO _chunk_raw SELECT {sel}, line_number, 'L{i}' FROM _incoming")
    con.execute("DROP TABLE _incoming")
def one_table(con, p, i):
    con.execute(f"CREATE TEMP TABLE _incoming_rows AS SELECT * FROM {rc(p)}")
    n = con.execute(f"INSERT INTO _chunk_raw SELECT {sel}, rowid + 2, 'L{i}' FROM _incoming_rows").fetchone()[0]
    con.execute("DROP TABLE _incoming_rows")
for name, fn, tx in (("current (autocommit)", current, False), ("current in one transaction", current, True),
                     ("one temp table, one transaction", one_table, True)):
    con = setup(); t = time.perf_counter()
    if tx: con.execute("BEGIN")
    for i, p in enumerate(files): fn(con, p, i)
    if tx: con.execute("COMMIT")
    dt = time.perf_counter() - t
    print(f"{name}: {dt / len(files) * 1000:.1f} ms per file ({len(files)} files, {con.execute('select count(*) from _chunk_raw').fetchone()[0]} rows)")
