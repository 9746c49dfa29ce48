"""Derived tables (identity graph, tags...) as Parquet files under one directory.

A table is replaced whole and atomically (written aside, then renamed), so a reader sees the
old version or the new one, never half of one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class TableStore:
    """Named Parquet tables under ``root``.

    Examples
    --------
    >>> import tempfile, pyarrow as pa
    >>> store = TableStore(tempfile.mkdtemp())
    >>> store.write("people", pa.table({"person_id": ["a"]}))
    >>> store.read("people").num_rows, store.names()
    (1, ['people'])
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.parquet"

    def write(self, name: str, table: pa.Table) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{name}.parquet.tmp"
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path(name))

    def read(self, name: str) -> pa.Table:
        if not self.path(name).exists():
            raise FileNotFoundError(f"no table {name!r} in {self.root}; build it first")
        return pq.read_table(self.path(name))

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.parquet"))
