"""Batch engines for Ibis pipelines: DuckDB (embedded default) or Spark (local or a cluster).

Pipelines are written once as Ibis expressions; the engine is configuration:

>>> con = connect("duckdb")
>>> type(con).__module__.split(".")[2]
'duckdb'
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

ENGINES = ("duckdb", "spark")


def connect(engine: str = "duckdb", *, master: str = "local[2]",
            warehouse_dir: str | None = None) -> Any:
    """An Ibis backend for ``engine``.

    Spark gets its own warehouse directory per session (a shared one fails on a second run
    with LOCATION_ALREADY_EXISTS), UTC as its session time zone (as the event log), and no
    console progress bars.
    """
    import ibis

    if engine == "duckdb":
        con = ibis.duckdb.connect()
        con.raw_sql("SET TimeZone = 'UTC'")
        return con
    if engine == "spark":
        from pyspark.sql import SparkSession

        session = (SparkSession.builder.master(master).appName("allscene")
                   .config("spark.sql.warehouse.dir",
                           warehouse_dir or tempfile.mkdtemp(prefix="allscene-spark-"))
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.shuffle.partitions", "4")
                   .config("spark.driver.memory", "2g")
                   .getOrCreate())
        session.sparkContext.setLogLevel("ERROR")
        return ibis.pyspark.connect(session)
    raise ValueError(f"unknown batch engine {engine!r}; engines: {', '.join(ENGINES)}")


def read_parquet(con: Any, paths: Sequence[str], name: str = "events") -> Any:
    """The Parquet files ``paths`` as an Ibis table on ``con`` (columns by name)."""
    if con.name == "pyspark":
        df = con._session.read.option("mergeSchema", "true").parquet(*paths)
        df.createOrReplaceTempView(name)
        return con.table(name)
    return con.read_parquet(list(paths), union_by_name=True, hive_partitioning=False)
