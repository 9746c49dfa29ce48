"""The embedded event log: Parquet files per UTC date, a SQLite catalog, DuckDB to read.

Layout under ``root``::

    catalog.sqlite                       which files are committed (readers list files from here only)
    events/date=YYYY-MM-DD/<uuid>.parquet
    deadletter/date=YYYY-MM-DD/<uuid>.parquet
    served/date=YYYY-MM-DD/<uuid>.parquet  impressions joined to their decisions (:mod:`.served`)
    .lock                                cross-process writer lock (flock)

Appending writes a new Parquet file (temp name, fsync, rename) and then registers it in the
catalog in one SQLite transaction. A process killed at any point leaves either a committed
file or an orphan that no reader sees, so an import can simply be run again: appends are
idempotent by ``event_id``. Readers only open files listed in the catalog, so they never see
a half-written file and never block writers.

Duplicates are found with an in-memory index of 64-bit hashes of the ids per date partition
(loaded once per process, extended as files are added by this or another process). A hash
hit is confirmed against the stored ids before an event is dropped, so a hash collision can
never lose an event.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allscene.events.schema import ARROW_SCHEMA
from allscene.storage import served as _served

DEADLETTER_SCHEMA = pa.schema([
    ("received_at", pa.timestamp("us", tz="UTC")),
    ("source", pa.string()),
    ("line", pa.int64()),
    ("event_id", pa.string()),
    ("kind", pa.string()),
    ("errors", pa.string()),  # JSON list of "field: reason" strings
    ("raw", pa.binary()),  # the bytes as received, so nothing is lost
])

_CATALOG = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dataset TEXT NOT NULL,
    date TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    rows INTEGER NOT NULL,
    min_ts TEXT,
    max_ts TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_date ON files (dataset, date, id);
CREATE TABLE IF NOT EXISTS retired (
    path TEXT PRIMARY KEY,
    retired_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS partitions (
    dataset TEXT NOT NULL,
    date TEXT NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset, date)
);
CREATE TABLE IF NOT EXISTS served_sources (
    date TEXT PRIMARY KEY,
    sources TEXT NOT NULL
);
"""


@dataclass
class AppendResult:
    """What :meth:`ParquetEventLog.append` did with each input row."""

    inserted: np.ndarray  # bool per input row: False = duplicate of a stored or earlier row
    files: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return int(self.inserted.sum())

    @property
    def duplicates(self) -> int:
        return int((~self.inserted).sum())


@dataclass
class _Partition:
    """Hashes of the ids stored in one date partition, each with the catalog id of the file
    holding it, as sorted chunks (an LSM, roughly). The file ids let a hash hit be confirmed
    by reading only the files concerned, not the whole day."""

    epoch: int
    seen_file_id: int = 0
    chunks: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def add(self, hashes: np.ndarray, file_ids: np.ndarray) -> None:
        if len(hashes):
            order = np.argsort(hashes, kind="stable")
            self.chunks.append((hashes[order], file_ids[order]))
        if len(self.chunks) > 8:
            h = np.concatenate([c[0] for c in self.chunks])
            f = np.concatenate([c[1] for c in self.chunks])
            order = np.argsort(h, kind="stable")
            self.chunks = [(h[order], f[order])]

    def contains(self, hashes: np.ndarray) -> tuple[np.ndarray, set[int]]:
        """Which ``hashes`` are indexed, and every file holding any of them."""
        hit = np.zeros(len(hashes), dtype=bool)
        files: set[int] = set()
        for chunk, fids in self.chunks:
            left = np.searchsorted(chunk, hashes, side="left")
            found = chunk[np.minimum(left, len(chunk) - 1)] == hashes
            if not found.any():
                continue
            hit |= found
            lo = left[found]
            hi = np.searchsorted(chunk, hashes[found], side="right")
            files.update(np.unique(fids[lo]).tolist())
            for a, b in zip(lo[hi - lo > 1], hi[hi - lo > 1], strict=True):
                files.update(fids[a:b].tolist())  # a hash held by several files (rare)
        return hit, files

    @property
    def size(self) -> int:
        return sum(len(c[0]) for c in self.chunks)


def hash_ids(con: duckdb.DuckDBPyConnection, ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit hashes of string ids (DuckDB's ``hash``; only compared within one process)."""
    con.register("_ids", pa.table({"id": ids}))
    try:
        return con.execute("SELECT hash(id) AS h FROM _ids").to_arrow_table()["h"].to_numpy()
    finally:
        con.unregister("_ids")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ParquetEventLog:
    """Append-only, idempotent event log on local Parquet files.

    Parameters
    ----------
    root
        Directory of the log; created if missing.
    max_index_entries
        Bound on the hashes kept in memory for de-duplication (8 bytes each); partitions
        beyond it are dropped least recently used first and reloaded when touched again.

    Examples
    --------
    >>> import tempfile, datetime as dt, pyarrow as pa
    >>> from allscene.events.schema import ARROW_SCHEMA
    >>> log = ParquetEventLog(tempfile.mkdtemp())
    >>> t = dt.datetime(2026, 10, 5, 8, tzinfo=dt.timezone.utc)
    >>> rows = pa.Table.from_pylist([{"event_id": "e1", "ts": t, "kind": "consent",
    ...     "device_id": "d1", "device_type": "phone", "schema_version": 1,
    ...     "personalized_ads": False}], schema=ARROW_SCHEMA)
    >>> log.append(rows).accepted, log.append(rows).accepted, log.count()
    (1, 0, 1)
    """

    def __init__(self, root: str | os.PathLike[str], *, max_index_entries: int = 200_000_000):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._catalog_path = self.root / "catalog.sqlite"
        self._lockfile = self.root / ".lock"
        self._mutex = threading.Lock()
        self._index: dict[tuple[str, str], _Partition] = {}
        self._max_index = max_index_entries
        self._db_engine = duckdb.connect()
        self._db_engine.execute("SET preserve_insertion_order = false")
        # WAL is a property of the file: switching to it needs an exclusive lock that SQLite's
        # busy timeout does not wait for, so two processes opening a new log at once could see
        # "database is locked". Set it once, holding the writer lock.
        with self._writer(), self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_CATALOG)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB cursor for one call: a connection is not safe to share between threads
        (the HTTP server appends and reads from a thread pool)."""
        return self._db_engine.cursor()

    # --- catalog and locking ---------------------------------------------------------------

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self._catalog_path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """One writer at a time: threads of this process and other processes alike."""
        with self._mutex:
            with open(self._lockfile, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def files(self, dataset: str = "events", start: dt.date | None = None,
              end: dt.date | None = None) -> list[str]:
        """Committed files of ``dataset`` whose partition date is in ``[start, end]``."""
        sql = "SELECT path FROM files WHERE dataset = ?"
        args: list[object] = [dataset]
        if start is not None:
            sql += " AND date >= ?"
            args.append(start.isoformat())
        if end is not None:
            sql += " AND date <= ?"
            args.append(end.isoformat())
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY date, id", args).fetchall()
        return [str(self.root / p) for (p,) in rows]

    def dates(self, dataset: str = "events") -> list[str]:
        with self._db() as db:
            rows = db.execute(
                "SELECT DISTINCT date FROM files WHERE dataset = ? ORDER BY date", [dataset]
            ).fetchall()
        return [d for (d,) in rows]

    # --- writing ---------------------------------------------------------------------------

    def _write_file(self, dataset: str, date: str, table: pa.Table) -> str:
        part = self.root / dataset / f"date={date}"
        if not part.is_dir():
            part.mkdir(parents=True, exist_ok=True)
            _fsync_dir(part.parent)  # the new directory itself survives a power loss
        rel = f"{dataset}/date={date}/{uuid.uuid4().hex}.parquet"
        final = self.root / rel
        tmp = final.with_suffix(".tmp")
        pq.write_table(table, tmp, compression="zstd", row_group_size=256 * 1024)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.rename(tmp, final)
        _fsync_dir(part)
        return rel

    def _register(self, dataset: str, entries: list[tuple[str, str, int, str, str]]) -> list[int]:
        now = dt.datetime.now(dt.UTC).isoformat()
        ids = []
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            for date, rel, rows, min_ts, max_ts in entries:
                cur = db.execute(
                    "INSERT INTO files (dataset, date, path, rows, min_ts, max_ts, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)", [dataset, date, rel, rows, min_ts, max_ts, now])
                ids.append(int(cur.lastrowid or 0))
                db.execute("INSERT OR IGNORE INTO partitions (dataset, date) VALUES (?, ?)",
                           [dataset, date])
            db.execute("COMMIT")
        return ids

    def _partition(self, date: str) -> _Partition:
        """The hash index of a partition, brought up to date with the catalog (under lock)."""
        key = ("events", date)
        with self._db() as db:
            row = db.execute("SELECT epoch FROM partitions WHERE dataset='events' AND date=?",
                             [date]).fetchone()
            epoch = row[0] if row else 0
            part = self._index.get(key)
            if part is None or part.epoch != epoch:
                part = _Partition(epoch=epoch)
            new = db.execute(
                "SELECT id, path FROM files WHERE dataset='events' AND date=? AND id > ?"
                " ORDER BY id", [date, part.seen_file_id]).fetchall()
        if new:
            ids_by_path = {str(self.root / p): i for i, p in new}
            got = self._cursor().execute(
                "SELECT hash(event_id) AS h, filename FROM read_parquet($paths, filename=true,"
                " hive_partitioning=false)", {"paths": list(ids_by_path)}).to_arrow_table()
            names = got["filename"].combine_chunks().dictionary_encode()
            per_name = np.array([ids_by_path[f] for f in names.dictionary.to_pylist()],
                                dtype=np.int32)
            fids = per_name[names.indices.to_numpy(zero_copy_only=False)]
            part.add(got["h"].to_numpy(), fids)
            part.seen_file_id = new[-1][0]
        self._index.pop(key, None)
        self._index[key] = part  # most recently used last
        return part

    def _evict(self, keep: set[tuple[str, str]]) -> None:
        """Drop least recently used partitions beyond the memory bound, never those in
        ``keep`` (the ones the current append is using)."""
        total = sum(p.size for p in self._index.values())
        for key in list(self._index):
            if total <= self._max_index:
                break
            if key not in keep:
                total -= self._index.pop(key).size

    def _stored_ids(self, file_ids: set[int], candidates: Sequence[str]) -> set[str]:
        """Which of ``candidates`` are stored in the given files (exact string comparison)."""
        if not file_ids or not candidates:
            return set()
        with self._db() as db:
            rows = db.execute("SELECT path FROM files WHERE id IN (SELECT value FROM "
                              "json_each(?))", [json.dumps(sorted(file_ids))]).fetchall()
        paths = [str(self.root / p) for (p,) in rows]
        if not paths:
            return set()
        con = self._cursor()
        con.register("_cand", pa.table({"event_id": pa.array(list(candidates), pa.string())}))
        try:
            rows = con.execute(
                "SELECT DISTINCT e.event_id FROM read_parquet($paths, hive_partitioning=false) e"
                " SEMI JOIN _cand c ON e.event_id = c.event_id", {"paths": paths}).fetchall()
        finally:
            con.unregister("_cand")
        return {r[0] for r in rows}

    def append(self, table: pa.Table) -> AppendResult:
        """Store the rows of ``table`` (validated events, :data:`ARROW_SCHEMA`) not yet stored.

        Rows whose ``event_id`` is already in the log, or appears earlier in ``table``, are
        dropped as duplicates. Returns which rows were inserted, in input order.
        """
        if table.schema != ARROW_SCHEMA:
            table = table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA)
        n = table.num_rows
        inserted = np.zeros(n, dtype=bool)
        if n == 0:
            return AppendResult(inserted)
        ids = table["event_id"]
        hashes = hash_ids(self._cursor(), ids)
        first = _first_occurrence(hashes, ids)
        days = _days(table["ts"])
        written: list[tuple[str, str, int, str, str]] = []
        new_hashes: dict[str, np.ndarray] = {}
        with self._writer():
            for day in np.unique(days):
                date = _iso(day)
                rows = np.flatnonzero((days == day) & first)
                part = self._partition(date)
                hit, holders = part.contains(hashes[rows])
                if hit.any():
                    cand = ids.take(pa.array(rows[hit])).to_pylist()
                    stored = self._stored_ids(holders, cand)
                    keep_hit = np.array([c not in stored for c in cand], dtype=bool)
                    keep = np.ones(len(rows), dtype=bool)
                    keep[np.flatnonzero(hit)] = keep_hit
                    rows = rows[keep]
                if not len(rows):
                    continue
                chunk = table if len(rows) == n else table.filter(_mask(n, rows))
                ts = chunk["ts"]
                rel = self._write_file("events", date, chunk)
                written.append((date, rel, len(rows), str(pc.min(ts).as_py()),
                                str(pc.max(ts).as_py())))
                new_hashes[date] = hashes[rows]
                inserted[rows] = True
            if written:
                file_ids = self._register("events", written)
                for (date, *_), fid in zip(written, file_ids, strict=True):
                    part = self._index[("events", date)]
                    part.add(new_hashes[date], np.full(len(new_hashes[date]), fid, dtype=np.int32))
                    part.seen_file_id = fid
            self._evict(keep={("events", _iso(d)) for d in np.unique(days)})
        return AppendResult(inserted, [w[1] for w in written])

    def reject(self, rows: pa.Table) -> None:
        """Keep rejected input in the dead-letter log (:data:`DEADLETTER_SCHEMA`)."""
        if rows.num_rows == 0:
            return
        rows = rows.select(DEADLETTER_SCHEMA.names).cast(DEADLETTER_SCHEMA)
        days = _days(rows["received_at"])
        with self._writer():
            entries = []
            for day in np.unique(days):
                date = _iso(day)
                chunk = rows.filter(pa.array(days == day))
                rel = self._write_file("deadletter", date, chunk)
                entries.append((date, rel, chunk.num_rows, "", ""))
            self._register("deadletter", entries)

    # --- maintenance -----------------------------------------------------------------------

    def compact(self, min_files: int = 8, grace_s: float = 600.0,
                progress: Callable[[str, int, int], None] | None = None) -> int:
        """Merge the files of each partition holding at least ``min_files`` files into one,
        sorted by (kind, device_id, ts) for fast reads. Returns the number of files merged.

        Then the impressions of every day whose events changed are joined to their
        decisions again (:meth:`build_served`).

        Merged files leave the catalog at once but stay on disk for ``grace_s`` seconds, so
        a reader that listed them just before can still open them; :meth:`gc` (also run
        here) deletes them after that.
        """
        merged = 0
        self.gc(grace_s)
        with self._writer():
            with self._db() as db:
                parts = db.execute(
                    "SELECT date, count(*) FROM files WHERE dataset='events' GROUP BY date"
                    " HAVING count(*) >= ?", [min_files]).fetchall()
            for date, _ in parts:
                with self._db() as db:
                    old = db.execute("SELECT id, path FROM files WHERE dataset='events'"
                                     " AND date=?", [date]).fetchall()
                paths = [str(self.root / p) for _, p in old]
                table = self._cursor().execute(
                    "SELECT * FROM read_parquet($paths, union_by_name=true)"
                    " ORDER BY kind, device_id, ts", {"paths": paths}).to_arrow_table()
                table = table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA)
                rel = self._write_file("events", date, table)
                now = dt.datetime.now(dt.UTC).isoformat()
                with self._db() as db:
                    db.execute("BEGIN IMMEDIATE")
                    db.execute("INSERT INTO files (dataset, date, path, rows, min_ts, max_ts,"
                               " created_at) VALUES ('events', ?, ?, ?, '', '', ?)",
                               [date, rel, table.num_rows, now])
                    db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i, _ in old])
                    db.executemany("INSERT OR REPLACE INTO retired VALUES (?, ?)",
                                   [(p, time.time()) for _, p in old])
                    db.execute("UPDATE partitions SET epoch = epoch + 1"
                               " WHERE dataset='events' AND date=?", [date])
                    db.execute("COMMIT")
                self._index.pop(("events", date), None)
                merged += len(old)
        self.build_served(progress=progress)
        return merged

    def build_served(self, dates: Iterable[str] | None = None,
                     progress: Callable[[str, int, int], None] | None = None) -> int:
        """Join the impressions of each day (ISO ``dates``, default all) whose served file
        is missing or stale to their decisions (:mod:`allscene.storage.served`); run by
        :meth:`compact`. Returns the files written; ``progress(day, done, total)`` is
        called before each day."""
        return _served.build(self, dates, progress)

    def served(self, start: dt.date | None = None, end: dt.date | None = None
               ) -> tuple[list[str], list[str]]:
        """The up-to-date served files of the UTC days ``[start, end]``, and the days (ISO)
        whose impressions readers must join to their decisions themselves."""
        return _served.fresh(self, start, end)

    def gc(self, grace_s: float = 600.0) -> int:
        """Delete files retired by compaction more than ``grace_s`` seconds ago."""
        with self._db() as db:
            old = db.execute("SELECT path FROM retired WHERE retired_at < ?",
                             [time.time() - grace_s]).fetchall()
            for (p,) in old:
                (self.root / p).unlink(missing_ok=True)
                db.execute("DELETE FROM retired WHERE path = ?", [p])
        return len(old)

    def orphans(self) -> list[Path]:
        """Data files on disk that the catalog does not list (left by a killed writer)."""
        with self._db() as db:
            retired = {str(self.root / p) for (p,) in db.execute("SELECT path FROM retired")}
        listed = set(self.files("events")) | set(self.files("deadletter")) \
            | set(self.files("served")) | retired
        found = [p for d in ("events", "deadletter", "served")
                 for p in (self.root / d).glob("*/*")]
        return [p for p in found if str(p) not in listed]

    # --- reading ---------------------------------------------------------------------------

    def scan(self, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
             kinds: Iterable[str] | None = None, device_ids: Iterable[str] | None = None,
             columns: Sequence[str] | None = None) -> pa.Table:
        """Events with ``start <= ts < end`` of the given kinds and devices, ordered by ts.

        A person's events are read by passing the devices identity assigns to them.
        """
        utc = dt.timezone.utc
        paths = self.files("events", start.astimezone(utc).date() if start else None,
                           end.astimezone(utc).date() if end else None)
        cols = list(columns) if columns else ARROW_SCHEMA.names
        if not paths:
            return ARROW_SCHEMA.empty_table().select(cols)
        where, params = ["TRUE"], {"paths": paths}
        if start is not None:
            where.append("ts >= $start")
            params["start"] = start
        if end is not None:
            where.append("ts < $end")
            params["end"] = end
        if kinds is not None:
            where.append("kind IN (SELECT unnest($kinds))")
            params["kinds"] = list(kinds)
        if device_ids is not None:
            where.append("device_id IN (SELECT unnest($devices))")
            params["devices"] = list(device_ids)
        select = ", ".join(f'"{c}"' for c in cols)
        sql = (f"SELECT {select} FROM read_parquet($paths, union_by_name=true,"
               f" hive_partitioning=false) WHERE {' AND '.join(where)} ORDER BY ts, event_id")
        out = self._cursor().execute(sql, params).to_arrow_table()
        return out.cast(pa.schema([ARROW_SCHEMA.field(c) for c in cols]))

    def count(self, dataset: str = "events") -> int:
        with self._db() as db:
            (n,) = db.execute("SELECT coalesce(sum(rows), 0) FROM files WHERE dataset = ?",
                              [dataset]).fetchone()
        return int(n)

    def deadletter(self) -> pa.Table:
        paths = self.files("deadletter")
        if not paths:
            return DEADLETTER_SCHEMA.empty_table()
        return self._cursor().execute("SELECT * FROM read_parquet($p, hive_partitioning=false)"
                                 " ORDER BY received_at, line",
                                 {"p": paths}).to_arrow_table()

    def table(self, dataset: str = "events", con: object | None = None):  # -> ibis.Table | None
        """The committed rows of ``dataset`` as an Ibis table on ``con`` (an Ibis backend
        from :func:`allscene.storage.engines.connect`; DuckDB by default), or ``None`` when
        it is empty."""
        from allscene.storage.engines import connect, read_parquet

        paths = self.files(dataset)
        if not paths:
            return None
        return read_parquet(con or connect("duckdb"), paths, name=dataset)


def _days(ts: pa.ChunkedArray) -> np.ndarray:
    """UTC day of each row, as days since 1970-01-01 (int32: cheap to compare and group)."""
    return pc.cast(pc.cast(ts, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)


def _iso(day: np.integer) -> str:
    return str(np.datetime64(int(day), "D"))


def _mask(n: int, rows: np.ndarray) -> pa.Array:
    m = np.zeros(n, dtype=bool)
    m[rows] = True
    return pa.array(m)


def _first_occurrence(hashes: np.ndarray, ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """True for the first row of each distinct id (hash equality confirmed on the strings)."""
    n = len(hashes)
    first = np.ones(n, dtype=bool)
    order = np.argsort(hashes, kind="stable")
    sorted_h = hashes[order]
    dup = np.flatnonzero(sorted_h[1:] == sorted_h[:-1]) + 1
    if not len(dup):
        return first
    # Rows in runs of equal hashes: compare the strings (duplicates are rare in fresh data).
    for s in np.unique(dup - 1):
        if s > 0 and sorted_h[s - 1] == sorted_h[s]:
            continue  # inside a run handled from its start
        e = s + 1
        while e < n and sorted_h[e] == sorted_h[s]:
            e += 1
        seen: set[str] = set()
        for i in order[s:e]:  # stable: earlier rows first
            v = ids[int(i)].as_py()
            if v in seen:
                first[i] = False
            seen.add(v)
    return first
