"""The engines the scores are computed on, and everything about them that is not portable.

`models/` is plain Ibis and runs unchanged on both engines; what differs between them
lives here and nowhere else (README, "Choosing the engine"):

- DuckDB: Ibis 12 writes array lambdas as `x -> ...`, which DuckDB 2 accepts only with
  `SET lambda_syntax = 'ENABLE_SINGLE_ARROW'`.
- Spark: the session is started from the config's `engine.spark` section, with the
  session time zone forced to UTC (the warehouse's timestamps are UTC and naive, and
  Spark would otherwise read them in the JVM's zone), the UI off and a throw-away SQL
  warehouse directory.
- Spark: Ibis 12's PySpark compiler refuses an ordered `collect` (array_agg ... ORDER BY),
  which `models/policy.py` uses to list the weak components weakest first. Spark's own
  idiom is compiled instead: collect structs of (sort keys..., value), sort the array,
  keep the values. Ascending, non-null keys only, which is what the models use.
"""

from __future__ import annotations

import atexit
import logging
import tempfile
from dataclasses import dataclass

import duckdb
import ibis

log = logging.getLogger(__name__)

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class SparkSettings:
    """The config's `engine.spark` section (config/suprel.yaml documents each setting)."""

    master: str
    conf: dict[str, str]
    handoff_dir: str
    handoff_read_as: str


@dataclass(frozen=True)
class EngineSettings:
    """The config's `engine` section: where the facts and scores are computed."""

    name: str
    spark: SparkSettings


def duckdb_backend(con: duckdb.DuckDBPyConnection):
    """Ibis on the pipeline's own connection, so its statements join the run's transaction."""
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    return ibis.duckdb.from_connection(con)


CHECKPOINT_PREFIX = "_checkpoint_"


def duckdb_checkpoint(backend):
    """A `models.scorecard.Checkpoint` for DuckDB: each stage a temp table of the run's
    connection. As one expression the scorecard inlines the metrics several times (111 kB
    of SQL, rankings twice as slow at 1M orders: benchmarks/RESULTS.md) and the facts
    compute the outcomes once per metric; materialised, each stage is computed once."""
    def checkpoint(table: ibis.Table, name: str) -> ibis.Table:
        return backend.create_table(f"{CHECKPOINT_PREFIX}{name}", table, temp=True, overwrite=True)

    return checkpoint


def drop_checkpoints(con: duckdb.DuckDBPyConnection) -> None:
    """Free the memory of the stages duckdb_checkpoint materialised."""
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary AND starts_with(table_name, ?)",
                               [CHECKPOINT_PREFIX]).fetchall():
        con.execute(f"DROP TABLE {name}")


# Settings the pipeline needs whatever the config says: results must not depend on the
# machine's time zone.
FORCED_SPARK_CONF = {"spark.sql.session.timeZone": "UTC"}


def spark_conf(settings: SparkSettings) -> dict[str, str]:
    """The Spark session's settings: defaults, then the config's, then the forced ones."""
    defaults = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                "spark.sql.execution.arrow.pyspark.enabled": "true",
                "spark.sql.warehouse.dir": tempfile.mkdtemp(prefix="suprel-spark-warehouse-")}
    return defaults | dict(settings.conf) | FORCED_SPARK_CONF


_session = {"settings": None, "spark": None}


def spark_backend(settings: SparkSettings):
    """Ibis on this process's Spark session, started from `settings` the first time (and
    restarted if they changed); stopped when the process exits or by `stop_spark`."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise RuntimeError("engine.name is spark, but pyspark is not installed: "
                           "pip install 'supplier-reliability[spark]'") from exc

    wanted = (settings.master, settings.conf)  # the hand-off folder needs no new session
    if _session["spark"] is not None and _session["settings"] != wanted:
        stop_spark()
    if _session["spark"] is None:
        builder = SparkSession.builder.master(settings.master).appName("suprel-scoring")
        for key, value in spark_conf(settings).items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        _session.update(settings=wanted, spark=spark)
        atexit.register(stop_spark)
        log.info("Spark session started on %s", settings.master)
    backend = ibis.pyspark.connect(_session["spark"])
    backend.compiler = _spark_compiler()
    return backend


def stop_spark() -> None:
    """Stop the Spark session this process started, if any."""
    spark = _session["spark"]
    if spark is not None:
        _session.update(settings=None, spark=None)
        spark.stop()


def _spark_compiler():
    """Ibis's PySpark compiler, plus ordered collect (see the module docstring)."""
    import sqlglot as sg
    import ibis.expr.datatypes as dt
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler
    from ibis.common.exceptions import UnsupportedOperationError

    class Compiler(PySparkCompiler):
        def visit_ExtractEpochSeconds(self, op, *, arg):
            # Ibis's UNIX_TIMESTAMP drops the fraction of a second; DuckDB's EPOCH keeps it.
            if not op.arg.dtype.is_timestamp():
                return super().visit_ExtractEpochSeconds(op, arg=arg)
            micros = self.f.unix_micros(self.cast(arg, dt.timestamp))
            return self.cast(micros, dt.float64) / sge.convert(1_000_000)

        def visit_ArrayCollect(self, op, *, arg, where, order_by, include_null, distinct):
            if not order_by:
                return super().visit_ArrayCollect(op, arg=arg, where=where, order_by=order_by,
                                                  include_null=include_null, distinct=distinct)
            if distinct or include_null or any(key.args.get("desc") for key in order_by):
                raise UnsupportedOperationError("ordered collect on Spark: ascending keys, no distinct, no nulls")
            pairs = []
            for i, key in enumerate(order_by):
                pairs += [sge.convert(f"k{i}"), key.this]
            record = self.f.named_struct(*pairs, sge.convert("v"), arg)
            keep = arg.is_(sg.not_(sge.Null())) if where is None else sge.and_(where, arg.is_(sg.not_(sge.Null())))
            collected = self.f.array_sort(self.f.collect_list(self.if_(keep, record, sge.Null())))
            element = sg.to_identifier("x")
            value = sge.Dot(this=sge.column(element), expression=sg.to_identifier("v"))
            return self.f.transform(collected, sge.Lambda(this=value, expressions=[element]))

    return Compiler()


def spark_checkpoint(backend, directory: str):
    """A `models.scorecard.Checkpoint` for Spark: each stage written as Parquet under
    `directory` (a location Spark can write and read) and read back.

    The scorecard as one expression compiles to ~100 kB of SQL that inlines the metrics
    several times; Spark's analyzer ran out of a 1 GB driver heap on it. Written out, each
    stage is planned once, and on a cluster the stage survives a lost executor.
    """
    def checkpoint(table: ibis.Table, name: str) -> ibis.Table:
        path = f"{directory.rstrip('/')}/{name}"
        backend.to_parquet(table, path, mode="overwrite")
        return backend.read_parquet(path, table_name=f"suprel_{name}")

    return checkpoint
