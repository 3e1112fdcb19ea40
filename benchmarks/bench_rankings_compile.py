"""Proposed fix 2 tried without editing the pipeline: rankings compiled over the stored metrics table.

    .venv/bin/python benchmarks/bench_rankings_compile.py DATA_DIR   # an ingested and scored data dir
"""
import sys, time
from pathlib import Path
import ibis
from pipelines.settings import DataPaths, load_config
from pipelines import scoring
import models.scorecard as sc
paths, config = DataPaths(Path(sys.argv[1])), load_config()
con = scoring.connect(paths); be = scoring.ibis_backend(con)
as_of = con.execute("SELECT max(updated_at)::DATE FROM staging.orders").fetchall()[0][0]
facts = be.table("supplier_day_facts", database="features")
policy = scoring.policy_from(config)
prev = scoring._previous_decisions(con, be, as_of)
sup = be.table("suppliers", database="staging")
t = time.perf_counter(); ranked, metrics = sc.rankings(facts, sup, prev, None, as_of, policy); sql = be.compile(ranked)
print(f"as is: rankings build+compile {time.perf_counter() - t:.2f} s, {len(sql)} chars")
t = time.perf_counter()
be.create_table("_metrics", metrics, temp=True)
print(f"fix: metrics build+compile+store {time.perf_counter() - t:.2f} s")
stored = be.table("_metrics")
original = sc.supplier_metrics
sc.supplier_metrics = lambda *a, **k: stored
t = time.perf_counter(); ranked2, _m = sc.rankings(facts, sup, prev, None, as_of, policy); sql2 = be.compile(ranked2)
print(f"fix: rankings on the stored metrics build+compile {time.perf_counter() - t:.2f} s, {len(sql2)} chars")
a = be.to_pyarrow(ranked).sort_by("supplier_id"); b = be.to_pyarrow(ranked2).sort_by("supplier_id")
print("same rankings:", a.drop_columns([]).equals(b))
