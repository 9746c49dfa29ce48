"""Served ads: every impression joined to the ad decision behind it, a dataset derived
from the event log.

Counting an impression needs its decision: the person the decision named, its price, scene,
audience and stage, and whether there was one at all (an impression no decision stands
behind is invalid traffic). Joining every impression of a report's window to every
decision on the request id was the costliest step of a report, repeated by every report.
Ad platforms join the two logs once, as the events come in (a "joined impression log"); so
does this module, per day of the log:

* ``served/date=D/<uuid>.parquet`` holds every ``ad_impression`` of UTC day ``D``, with the
  columns reports read, ``h`` and ``h2`` (two 63-bit hashes of the request id, :data:`HASH`
  and :data:`HASH2`: the key reports find replays by and look impressions up by, without
  reading the ids), the fields of its decision (``d_ts``: NULL when none; ``named``: it
  names the person, ``account_id``), the two hashes of the person (``aph, aph2``: the one
  named, else ``device:`` and the device id) and of the device (``dh, dh2``), as reports
  know people and devices without reading their ids, sorted by
  advertiser (a report reads only its advertiser's row groups), then ``h`` (replays of a
  request are neighbours, and a report's sort of the hashes only merges sorted runs);
* it is built from the event files of days ``D - 1`` and ``D`` (:data:`DECISION_TTL`), and
  the catalog remembers which, with the layout and the DuckDB that hashed (:func:`layout`);
  when they change (events appended late, compaction, another layout or DuckDB), the
  day is **stale** and readers join its impressions themselves with the same statement
  (:func:`served_sql`), so a report never depends on the dataset being up to date.

The decision behind an impression (the counting rule of
:mod:`allscene.measurement.metrics`): the earliest ``ad`` decision of the same request,
advertiser and campaign that came no later than the impression and at most
:data:`DECISION_TTL` before it (ad servers expire an ad response: a tracking ping a day
after the auction is not a view of that ad).
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Iterable

import duckdb

LAYOUT = "4"
"""The served files' columns and order (:data:`COLUMNS`; sorted by advertiser, then ``h``);
served files made with another layout are stale (:func:`layout`)."""
ORDER = "advertiser_id, h"
"""How a served file's rows are sorted (:data:`LAYOUT`)."""
DECISION_TTL = dt.timedelta(hours=24)
"""How long after its decision an impression may come and still be counted."""
OPTIONAL = ("scene", "audience", "stage")
"""Decision columns older logs may lack."""
IMPRESSION_COLUMNS = ("request_id", "ts", "event_id", "device_id", "device_type",
                      "placement_id", "advertiser_id", "campaign_id", "creative_id", "cost")
COLUMNS = (*IMPRESSION_COLUMNS[:1], "h", "h2", *IMPRESSION_COLUMNS[1:], "d_ts",
           "account_id", "named", "aph", "aph2", "dh", "dh2", "d_cost", *OPTIONAL)
"""The columns of a served file, in order."""
TYPES = ("VARCHAR", "BIGINT", "BIGINT", "TIMESTAMPTZ", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR",
          "VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE", "TIMESTAMPTZ", "VARCHAR", "BOOLEAN", "BIGINT", "BIGINT", "BIGINT",
         "BIGINT", "DOUBLE",
         "VARCHAR", "VARCHAR", "VARCHAR")
EMPTY = ("SELECT " + ", ".join(f"NULL::{t} AS {c}" for c, t in zip(COLUMNS, TYPES, strict=True))
         + " WHERE FALSE")
"""A relation of no served rows."""
HASH = "(hash({}) >> 1)::BIGINT"
"""63 bits of DuckDB's hash of a request id, as a BIGINT (signed: DuckDB 1.5 cannot push a
filter on a UBIGINT above 2^63 into an Arrow scan)."""
_PERSON = "coalesce(d.account_id, 'device:' || i.device_id)"
"""The person of an impression ``i`` as its decision ``d`` knows it: the one it names, else
the device (a report may know the device's person: the identity graph)."""
LOC = "(({})::BIGINT << 40) | file_row_number"
"""Where a row of a ``read_parquet`` is, as one BIGINT: its file (the expression in ``{}``,
from ``file_index``), then its row in the file."""
HASH2 = "(hash('#' || {}) >> 1)::BIGINT"
"""Another 63 bits: an id is known by its two hashes (:data:`HASH`, this), which two ids
share by a chance near 2^-126 (the people of a report are numbered by them too)."""


def layout() -> str:
    """The layout of the served files this code writes and reads: :data:`LAYOUT` and the
    DuckDB whose :data:`HASH` made ``h`` (another release may hash otherwise)."""
    return f"{LAYOUT}/duckdb-{duckdb.__version__}"


def served_sql(src: str, *, impressions: str = "TRUE", decisions: str = "TRUE",
               optional: Iterable[str] = OPTIONAL, earliest: bool = True,
               locate: int | None = None) -> str:
    """The served rows (:data:`COLUMNS`) of the impressions of ``src`` (a relation of
    events) that satisfy ``impressions``, joined to the decisions that satisfy
    ``decisions`` (SQL conditions on the events' columns).

    ``optional``: which of :data:`OPTIONAL` ``src`` has (the others are NULL).
    ``earliest=False`` joins each impression to every decision that may stand behind it
    (cheaper: the delivery engine writes one ``ad`` decision per request), leaving it to
    the caller to see whether an impression came out twice. ``locate``: also ``loc``, where
    the impression is in ``src`` (a ``read_parquet``): its file's index plus ``locate``,
    then its row in the file (:data:`LOC`).

    >>> sql = served_sql("ev", impressions="advertiser_id = 'acme'")
    >>> "QUALIFY" in sql, "d.campaign_id = i.campaign_id" in sql
    (True, True)
    """
    have = set(optional)
    dec_opt = ", ".join(n if n in have else f"NULL::VARCHAR AS {n}" for n in OPTIONAL)
    first = (" QUALIFY row_number() OVER (PARTITION BY i.request_id, i.event_id"
             " ORDER BY d.ts NULLS LAST) = 1") if earliest else ""
    ttl = DECISION_TTL // dt.timedelta(microseconds=1)
    where = "" if locate is None else (", " + LOC.format(f"file_index + {locate}") + " loc")
    return (
        f"SELECT i.request_id, {HASH.format('i.request_id')} h,"
        f" {HASH2.format('i.request_id')} h2, "
        + ", ".join(f"i.{c}" for c in IMPRESSION_COLUMNS[1:])
        + ", d.ts d_ts, d.account_id, d.account_id IS NOT NULL named, "
        + ", ".join(f"{f.format(c)} {n}" for n, f, c in (
            ("aph", HASH, _PERSON), ("aph2", HASH2, _PERSON),
            ("dh", HASH, "i.device_id"), ("dh2", HASH2, "i.device_id")))
        + ", d.cost d_cost, "
        + ", ".join(f"d.{c}" for c in OPTIONAL) + ("" if locate is None else ", i.loc")
        + f" FROM (SELECT {', '.join(IMPRESSION_COLUMNS)}{where} FROM {src}"
        f"  WHERE kind = 'ad_impression' AND {impressions}) i"
        f" LEFT JOIN (SELECT request_id, advertiser_id, campaign_id, ts, account_id, cost,"
        f"  {dec_opt} FROM {src} WHERE kind = 'ad_decision' AND outcome = 'ad'"
        f"  AND {decisions}) d"
        " ON d.request_id = i.request_id AND d.advertiser_id = i.advertiser_id"
        " AND d.campaign_id = i.campaign_id AND epoch_us(d.ts) <= epoch_us(i.ts)"
        f" AND epoch_us(d.ts) >= epoch_us(i.ts) - {ttl}" + first)


def day_range(dates: Iterable[str], column: str = "ts") -> str:
    """A SQL condition: ``column`` falls on one of the UTC ``dates`` (ISO)."""
    parts = [f"({column} >= TIMESTAMPTZ '{d}T00:00:00+00:00' AND {column} <"
             f" TIMESTAMPTZ '{dt.date.fromisoformat(d) + dt.timedelta(days=1)}T00:00:00+00:00')"
             for d in sorted(set(dates))]
    return "(" + (" OR ".join(parts) or "FALSE") + ")"


def write_partition(con, date: str, paths: list[str], out: str) -> int:
    """Write the served file of UTC day ``date`` to ``out`` from ``paths`` (the event files
    of that day and the day before); returns its rows."""
    files = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    have = {n for (n,) in con.execute(
        f"SELECT DISTINCT name FROM parquet_schema({files})").fetchall()} if paths else set()
    day = day_range([date])
    src = f"read_parquet({files}, union_by_name=true, hive_partitioning=false)"
    prev = (dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()
    sql = served_sql(src, impressions=day, decisions=day_range([prev, date]),
                     optional=[n for n in OPTIONAL if n in have])
    if not paths:
        sql = EMPTY
    (rows,) = con.execute(
        f"COPY (SELECT * FROM ({sql}) ORDER BY {ORDER}) TO"
        f" '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 262144)").fetchone()
    return int(rows)


def _sources(events: list[tuple[str, int]], date: str) -> str:
    """What the served file of ``date`` is built from: the event files (ids) of ``date`` and
    the day before (none: ``""``), by this code (:func:`layout`)."""
    prev = (dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()
    ids = ",".join(str(i) for d, i in sorted(events) if d in (prev, date))
    return f"{layout()}|{ids}" if ids else ""


def _state(log, start: dt.date | None, end: dt.date | None
           ) -> tuple[list[tuple[str, int, str]], dict[str, tuple[str, str]]]:
    """The event files (date, id, path) of ``[start - 1 day, end]`` and the served files
    (date -> (sources, path)) of ``[start, end]``."""
    lo = (start - dt.timedelta(days=1)).isoformat() if start else "0000-00-00"
    hi = end.isoformat() if end else "9999-99-99"
    with log._db() as db:
        events = db.execute("SELECT date, id, path FROM files WHERE dataset = 'events'"
                            " AND date BETWEEN ? AND ?", [lo, hi]).fetchall()
        served = db.execute("SELECT s.date, s.sources, f.path FROM served_sources s JOIN files f"
                            " ON f.dataset = 'served' AND f.date = s.date"
                            " WHERE s.date BETWEEN ? AND ?", [lo, hi]).fetchall()
    return events, {d: (s, p) for d, s, p in served}


def fresh(log, start: dt.date | None = None, end: dt.date | None = None
          ) -> tuple[list[str], list[str]]:
    """The served files of the UTC days ``[start, end]`` that are up to date, and the days
    (ISO) with events whose served file is missing or stale."""
    events, served = _state(log, start, end)
    ids = [(d, i) for d, i, _ in events]
    days = sorted({d for d, _, _ in events if start is None or d >= start.isoformat()})
    ok, stale = [], []
    for d in days:
        if d in served and served[d][0] == _sources(ids, d):
            ok.append(str(log.root / served[d][1]))
        else:
            stale.append(d)
    return ok, stale


def build(log, dates: Iterable[str] | None = None,
          progress: Callable[[str, int, int], None] | None = None) -> int:
    """(Re)write the served file of each stale day among ``dates`` (ISO; default: every
    day of the log). Returns the number of files written; ``progress(day, done, total)``
    is called before each.

    The event files are listed before they are read and recorded as the file's sources,
    so events appended meanwhile leave the day stale rather than missing from it."""
    events, served = _state(log, None, None)
    ids = [(d, i) for d, i, _ in events]
    want = sorted({d for d, _, _ in events} if dates is None else set(dates))
    todo = [d for d in want if (src := _sources(ids, d))
            and not (d in served and served[d][0] == src)]
    written = 0
    for date in todo:
        if progress is not None:
            progress(date, written, len(todo))
        src = _sources(ids, date)
        prev = (dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()
        paths = [str(log.root / p) for d, _, p in sorted(events) if d in (prev, date)]
        part = log.root / "served" / f"date={date}"
        part.mkdir(parents=True, exist_ok=True)
        rel = f"served/date={date}/{uuid.uuid4().hex}.parquet"
        tmp = log.root / (rel + ".tmp")
        rows = write_partition(log._cursor(), date, paths, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.rename(tmp, log.root / rel)
        with log._writer(), log._db() as db:
            db.execute("BEGIN IMMEDIATE")
            old = db.execute("SELECT id, path FROM files WHERE dataset = 'served' AND date = ?",
                             [date]).fetchall()
            db.executemany("DELETE FROM files WHERE id = ?", [(i,) for i, _ in old])
            db.executemany("INSERT OR REPLACE INTO retired VALUES (?, ?)",
                           [(p, time.time()) for _, p in old])
            db.execute("INSERT INTO files (dataset, date, path, rows, min_ts, max_ts,"
                       " created_at) VALUES ('served', ?, ?, ?, '', '', ?)",
                       [date, rel, rows, dt.datetime.now(dt.UTC).isoformat()])
            db.execute("INSERT OR REPLACE INTO served_sources VALUES (?, ?)", [date, src])
            db.execute("COMMIT")
        written += 1
    return written
