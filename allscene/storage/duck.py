"""Small DuckDB helpers for domain code that needs a query engine over files or Arrow data.

Domain packages call these instead of importing ``duckdb`` themselves (only ``storage``
touches engines).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def describe_parquet(path: str | Path) -> dict[str, str]:
    """Column name → DuckDB type of a Parquet file (raises ``ValueError`` if unreadable)."""
    con = connect()
    try:
        rows = con.execute("DESCRIBE SELECT * FROM read_parquet($p)", {"p": str(path)}).fetchall()
    except duckdb.Error as exc:
        raise ValueError(f"{path}: not a readable Parquet file ({exc})") from exc
    return {r[0]: r[1] for r in rows}


def parquet_rows(path: str | Path) -> int:
    con = connect()
    (n,) = con.execute("SELECT count(*) FROM read_parquet($p)", {"p": str(path)}).fetchone()
    return int(n)


def stream_parquet_sql(path: str | Path, sql_for_source, batch_rows: int,
                       skip_rows: int = 0) -> Iterator[pa.RecordBatch]:
    """Run ``sql_for_source(source)`` over a Parquet file and stream the result in batches.

    ``source`` is a relation with the file's columns and ``file_row_number`` (0-based), from
    row ``skip_rows`` on, in file order.
    """
    con = connect()
    con.execute("SET preserve_insertion_order = true")
    src = (f"(SELECT * FROM read_parquet({_lit(str(path))}, file_row_number = true)"
           f" WHERE file_row_number >= {int(skip_rows)})")
    reader = con.execute(sql_for_source(src)).to_arrow_reader(batch_rows)
    yield from reader


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
