"""The counting rules of :mod:`allscene.measurement.metrics` as DuckDB statements.

:func:`count_events` reads the advertiser's impressions once, in one query, each with its
decision (from the log's served files, where they are up to date, else joined as the event
files are read: :mod:`allscene.storage.served`), the identity graph and the bot list, and
keeps the result as one Arrow table, ``imp``; nothing reads the impressions from the files
again. A request and a person are known there by two 63-bit hashes of their ids (``h, h2``
and ``ph, ph2``; :data:`~allscene.storage.served.HASH`, :data:`~allscene.storage.served.
HASH2`), which two ids share by a chance near 2^-126: the ids themselves, most of what
there is to read, are not read (unless asked, for other measures). The rest follows:

* replayed impressions (several of one request) are found from the first hashes (sorted:
  equal neighbours are candidates, so only the few candidates are ranked, by time; the
  event ids that break a tie are fetched for the tied rows alone);
* a request with several ``ad`` decisions (which the delivery engine never writes) shows
  as one impression found twice (one row of the files, ``loc``, twice); only then is the
  query sent again with the earliest decision of each request, as the rules say;
* clicks and conversions (a few per cent of the events) look impressions up in
  ``imp_small``, the counted impressions they can refer to, rather than in all of them.

Every figure of a report is then counted from ``imp`` in numpy
(:mod:`allscene.measurement.cells`); :func:`fact_flags` says which counted impressions were
clicked or converted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allscene.measurement import kernels
from allscene.measurement.dictionaries import DIMS, ServedColumns
from allscene.storage import served as _served
from allscene.storage.served import EMPTY, LOC, day_range, served_sql

_LOCAL = "make_timestamp(epoch_us({ts}) + 28800000000)"
"""Local time (UTC+8) of a TIMESTAMPTZ as a plain TIMESTAMP: epoch arithmetic, not the ICU
calendar arithmetic of ``ts + INTERVAL 8 HOUR`` (0.15 us a row against 0.01)."""
DAY = "CAST(" + _LOCAL + " AS DATE)"
HOUR = "hour(" + _LOCAL + ")"
LOCAL_HOUR = ("((epoch_us(i.ts) + 28800000000) // 3600000000"
              " - ((epoch_us(i.ts) + 28800000000) % 3600000000 < 0)::BIGINT)::INTEGER")
"""Local hours since the epoch (UTC+8) of an impression, rounded down (``//`` truncates):
its local day and hour."""
CONVERSION_TYPES = ("lead", "activation", "purchase")
_OPTIONAL = ("scene", "audience", "stage")
INVALID_IMPRESSION = ("known bot device", "no matching decision", "duplicate")
_CONV_PERSON = "coalesce(pe.person_id, 'device:' || c.device_id)"
"""The person of a conversion (``c``): the identity graph's for its device, else the
device."""


def _lit(v: Any) -> str:
    """A SQL literal of a string or an aware datetime (views take no parameters)."""
    if isinstance(v, dt.datetime):
        return f"TIMESTAMPTZ '{v.isoformat()}'"
    return "'" + str(v).replace("'", "''") + "'"


def _before(end: dt.datetime) -> str:
    """`` AND ts < end``, or nothing for the far-future default end (no event is that late,
    and reading the decisions' times only to compare them costs a fifth of their read)."""
    return f" AND ts < {_lit(end)}" if end.year < 9999 else ""


def _schemas(con, paths: list[str]) -> dict[str, list[tuple[str, str]]]:
    """File -> its columns (name, type), from the files' footers."""
    out: dict[str, list[tuple[str, str]]] = {}
    for f, name, typ in con.execute(
            "SELECT file_name, name, type FROM parquet_schema(["
            + ", ".join(_lit(x) for x in paths) + "])").fetchall():
        out.setdefault(f, []).append((name, typ))
    return out


def _optional(con, paths: list[str], names: tuple[str, ...]) -> str:
    """``name`` for each column some file has, else ``NULL AS name`` (logs written before
    the column existed)."""
    have = {n for cols in _schemas(con, paths).values() for n, _ in cols}
    return ", ".join(n if n in have else f"NULL::VARCHAR AS {n}" for n in names)


def source(con, paths: list[str]) -> tuple[str, dict[str, str]]:
    """``read_parquet`` of ``paths``, and the select expression of each optional column.

    Files of one schema are read as they are; ``union_by_name`` (a quarter slower) only
    when their schemas differ, as in a log written across a schema change. An optional
    column no file has, or that is NULL in every row of every file (by the row groups'
    statistics), is the constant NULL, which no join has to carry."""
    schemas = _schemas(con, paths)
    same = len({tuple(cols) for cols in schemas.values()}) <= 1
    files = "[" + ", ".join(_lit(x) for x in paths) + "]"
    have = {n for n, nulls, values, stats in con.execute(
        f"SELECT path_in_schema, sum(stats_null_count), sum(num_values), count(*)"
        f" - count(stats_null_count) FROM parquet_metadata({files})"
        f" WHERE path_in_schema IN {tuple(_OPTIONAL)} GROUP BY 1").fetchall()
        if stats or nulls < values}
    opts = {n: n if n in have else f"NULL::VARCHAR AS {n}" for n in _OPTIONAL}
    how = "hive_partitioning=false" if same else "union_by_name=true, hive_partitioning=false"
    return f"read_parquet({files}, {how})", opts


def _keys(col: str, name: str = "h") -> str:
    """The two hashes of ``col`` as ``name`` and ``name`` 2 (a request's, a person's)."""
    return (f"{_served.HASH.format(col)} {name}, {_served.HASH2.format(col)} {name}2")


def count_events(con, paths: list[str], p: dict[str, Any],
                 then: Callable[[pa.Table, Callable[[str], Any]], Any] | None = None,
                 ids: bool = False
                 ) -> pa.Table:
    """Fill ``con`` with the counted events (see :func:`allscene.measurement.metrics.counted`):
    the view ``ad`` over the files, temp tables ``ad_clk``, ``ad_conv`` (with the converting
    ``person``), ``clk``, ``conv`` and ``ret``, the impressions ``imp`` and ``imp_small``
    (Arrow tables; ``imp`` is also returned), and, with ``ids``, the views ``pno`` and
    ``facts``.

    Parameters
    ----------
    con
        A fresh connection with ``people_in``, ``media_in`` and ``bots_in`` registered.
    paths
        The event files to read.
    p
        ``adv``, ``camps``, ``start``, ``end``, ``min_click``, ``per_hour``, ``view_s``,
        ``click_s`` (see :func:`allscene.measurement.metrics.counted`); ``served``, the
        up-to-date served files, and ``stale``, the days without one (ISO; missing or
        ``None``: every day), as :meth:`allscene.storage.ParquetEventLog.served` gives them.
    then
        Called with ``imp`` as soon as it is counted, before the clicks and conversions
        (work that needs only the impressions can start there, beside DuckDB's), and a
        function that gives a column of ``imp`` by name, whole (without ``ids``, the
        breakdown columns of the rows of served files are NULL in ``imp``, or not there when
        every row is served, and read from the files: :class:`~allscene.measurement.
        dictionaries.ServedColumns`).
    ids
        Keep each impression's ``request_id``, ``event_id`` and ``person`` (other measures
        join them; the figures of a report need only their hashes).

    Returns
    -------
    pyarrow.Table
        ``imp``: every impression of the campaigns from ``start`` (less the attribution
        look-back) to ``end``: ``h, h2`` (its request), ``ph, ph2`` (its person), ``lh``
        (:data:`LOCAL_HOUR`), ``loc`` (its row in the files), ``invalid`` (NULL: counted)
        and ``idx`` (its row number).
    """
    src, opts = open_events(con, paths, p["adv"], p["end"])
    con.execute("CREATE TEMP TABLE ad_clk AS SELECT request_id, ts, event_id, device_id,"
                f" campaign_id, {_keys('request_id')} FROM ad WHERE kind = 'ad_click'")
    con.execute(  # the identity graph of the converting devices only: few of its rows
        "CREATE TEMP TABLE ad_conv AS SELECT *, " + _keys("request_id") + ", "
        + _keys("person", "ph") + " FROM (WITH c AS MATERIALIZED (SELECT event_id, ts,"
        " request_id, device_id, conversion_type FROM ad WHERE kind = 'ad_conversion')"
        f" SELECT c.*, {_CONV_PERSON} person FROM c LEFT JOIN (SELECT device_id, person_id"
        " FROM people_in WHERE device_id IN (SELECT device_id FROM c)) pe"
        " ON pe.device_id = c.device_id)")
    imp = _impressions(con, src, opts, p, ids)
    con.register("imp", imp)
    if then is not None:
        then(imp, imp.column if ids else ServedColumns(imp, p.get("served") or []))
    _small(con, imp)
    _clicks_and_conversions(con, p)
    if ids:
        _views(con, p)
    return imp


def open_events(con, paths: list[str], advertiser: str, end: dt.datetime
                ) -> tuple[str, dict[str, str]]:
    """The view ``ad``: the advertiser's ad events before ``end`` in ``paths`` (each
    statement reads only the columns and kinds it needs). Returns :func:`source` of the
    files (an empty table when there are none)."""
    if paths:
        src, opts = source(con, paths)
    else:
        con.execute("CREATE TEMP TABLE no_events (file_index UBIGINT, file_row_number"
                    " BIGINT, kind VARCHAR, event_id VARCHAR,"
                    " ts TIMESTAMPTZ, device_id VARCHAR, device_type VARCHAR,"
                    " request_id VARCHAR, placement_id VARCHAR, campaign_id VARCHAR,"
                    " creative_id VARCHAR, outcome VARCHAR, account_id VARCHAR, cost DOUBLE,"
                    " conversion_type VARCHAR, scene VARCHAR, audience VARCHAR,"
                    " stage VARCHAR, advertiser_id VARCHAR)")
        src, opts = "no_events", {n: n for n in _OPTIONAL}
    con.execute(
        "CREATE TEMP VIEW ad AS SELECT kind, event_id, ts, device_id, device_type,"
        " request_id, placement_id, campaign_id, creative_id, outcome, account_id, cost,"
        f" conversion_type, {', '.join(opts.values())} FROM {src} WHERE kind IN ('ad_decision',"
        f" 'ad_impression', 'ad_click', 'ad_conversion') AND advertiser_id = {_lit(advertiser)}"
        f"{_before(end)}")
    return src, opts


_FLAGS = (
    " LEFT JOIN (SELECT DISTINCT h, h2 FROM clk WHERE invalid IS NULL) k"
    "  ON k.h = i.h AND k.h2 = i.h2"
    " LEFT JOIN (SELECT h, h2, "
    + ", ".join(f"count(*) FILTER (WHERE conversion_type = '{t}') conv_{t}"
                for t in CONVERSION_TYPES)
    + ", count(*) FILTER (WHERE via = 'view') view_through FROM conv GROUP BY h, h2) cv"
    "  ON cv.h = i.h AND cv.h2 = i.h2"
    " LEFT JOIN ret r ON r.h = i.h AND r.h2 = i.h2")
"""What an impression ``i`` earned: ``k`` (a counted click), ``cv`` (attributed conversions
by type, and view-through ones), ``r`` (retention of its activation)."""


def _views(con, p: dict[str, Any]) -> None:
    """Views ``pno`` (people numbered) and ``facts`` (one row per counted impression in the
    window, as the counted SQL tables had them), for other measures."""
    win = "{t}ts >= " + _lit(p["start"]) + " AND {t}ts < " + _lit(p["end"])
    con.execute(  # for other measures; measure() counts from imp and fact_flags()
        "CREATE TEMP VIEW pno AS SELECT person, (row_number() OVER (ORDER BY person) - 1)"
        "::INTEGER pid FROM (SELECT DISTINCT person FROM imp WHERE invalid IS NULL AND"
        f" person IS NOT NULL AND {win.format(t='')})")
    con.execute(
        "CREATE TEMP VIEW facts AS SELECT pn.pid AS person, i.campaign_id,"
        " i.placement_id, coalesce(m.medium, 'other') medium, i.device_type, i.creative_id,"
        " i.scene, i.audience, i.stage,"
        f" {DAY.format(ts='i.ts')} AS day, {HOUR.format(ts='i.ts')} AS hour,"
        " i.cost, (k.h IS NOT NULL)::INT clicked,"
        " coalesce(cv.conv_lead, 0) conv_lead,"
        " coalesce(cv.conv_activation, 0) conv_activation,"
        " coalesce(cv.conv_purchase, 0) conv_purchase,"
        " coalesce(cv.view_through, 0) view_through,"
        " r.d1::INT retained_1d, r.d7::INT retained_7d"
        " FROM imp i" + _FLAGS +
        " LEFT JOIN media_in m ON m.placement_id = i.placement_id"
        " LEFT JOIN pno pn ON pn.person = i.person"
        f" WHERE i.invalid IS NULL AND {win.format(t='i.')}")


_READ = ("loc", "h", "h2", "ts", "device_type", "placement_id", "campaign_id", "creative_id",
         "cost", "d_cost", "d_ts", "named", "aph", "aph2", "dh", "dh2", "scene", "audience",
         "stage")
"""The columns of the served rows (:data:`~allscene.storage.served.COLUMNS`, and ``loc``)
a count reads; with the ids, also ``request_id``, ``event_id``, ``device_id`` and
``account_id``."""


def _impressions(con, src: str, opts: dict[str, str], p: dict[str, Any],
                 ids: bool = False) -> pa.Table:
    """The impressions, each with its decision's person and fields, and why it is not
    counted (``invalid``): a known bot device, no ``ad`` decision of its campaign in the 24 h
    before it (:mod:`allscene.storage.served`), or a replay (not the first of its request by
    time, then event id).

    One query reads the impressions already joined to their decisions (the log's served
    files, ``p["served"]``) and joins the impressions of the days without an up-to-date one
    (``p["stale"]``; ``None``: every day) to their decisions itself, then joins the identity
    graph (only where the decision names no person, when each device has one person there)
    and the bot list. An impression found twice (a request with several decisions: one
    ``loc`` twice) sends the query again with the earliest decision of each impression."""
    camps = "(" + ", ".join(_lit(c) for c in p["camps"]) + ")"
    lo = p["start"] - dt.timedelta(seconds=max(p["view_s"], p["click_s"]))
    mine = f"advertiser_id = {_lit(p['adv'])} AND campaign_id IN {camps}"
    window = f"ts >= {_lit(lo)}{_before(p['end'])}"
    n_pe, n_dev = con.execute("SELECT count(*), count(DISTINCT device_id) FROM people_in"
                              ).fetchone()
    pe_key = "CASE WHEN NOT i.named THEN i.dh END" if n_pe == n_dev \
        else "i.dh"  # a device twice in the graph: every impression joins twice
    stale, served = p.get("stale"), p.get("served") or []
    files = f"read_parquet([{', '.join(_lit(f) for f in served)}], hive_partitioning=false)"
    days = None if not (stale is None or stale) else \
        "TRUE" if stale is None else day_range(stale)
    cols = _READ + (("request_id", "event_id", "device_id", "account_id") if ids else ())
    dims = ids or days is not None  # else every breakdown column comes from the files
    from_files = ", ".join(  # the breakdown columns of served rows: read from their files
        f"NULL::VARCHAR {c}" if c in DIMS and not ids else c
        for c in cols if dims or c not in DIMS)
    for earliest in (False, True):
        parts = [f"SELECT *, {LOC.format('file_index')} loc FROM {files}"
                 f" WHERE {mine} AND {window}"] if served else []
        if days is not None:
            prev = "TRUE" if stale is None else day_range(
                {(dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat() for d in stale}
                | set(stale))
            parts.append(served_sql(src, impressions=f"{mine} AND {window} AND {days}",
                                    decisions=f"{mine} AND {prev}", earliest=earliest,
                                    optional=[n for n, e in opts.items() if e == n],
                                    locate=len(served)))
        rows = " UNION ALL ".join(
            f"(SELECT {from_files if served and k == 0 else ', '.join(cols)} FROM ({x}))"
            for k, x in enumerate(parts)) \
            or f"SELECT {', '.join(cols)} FROM ({EMPTY}), (SELECT NULL::BIGINT loc)"
        imp = con.sql(  # not execute(): sql() converts the rows to Arrow in parallel
            f"SELECT i.loc, i.h, i.h2, i.ts, {LOCAL_HOUR} lh,"
            + "".join(f" i.{c}," for c in DIMS if dims)
            + " coalesce(i.cost, i.d_cost, 0) AS cost, (CASE WHEN b.dh IS NOT NULL THEN 0"
            " WHEN i.d_ts IS NULL THEN 1 ELSE -1 END)::TINYINT first_rule,"  # INVALID_IMPRESSION's
            " CASE WHEN i.named OR pe.ph IS NULL THEN i.aph ELSE pe.ph END ph,"
            " CASE WHEN i.named OR pe.ph IS NULL THEN i.aph2 ELSE pe.ph2 END ph2"
            + (", i.request_id, i.event_id,"
               " coalesce(i.account_id, pe.person_id, 'device:' || i.device_id) person"
               if ids else "")
            + f" FROM ({rows}) i LEFT JOIN (SELECT person_id, {_keys('device_id', 'dh')},"
            f" {_keys('person_id', 'ph')} FROM people_in) pe"
            f" ON pe.dh = {pe_key} AND pe.dh2 = i.dh2"
            f" LEFT JOIN (SELECT {_keys('device_id', 'dh')} FROM bots_in) b"
            " ON b.dh = i.dh AND b.dh2 = i.dh2").to_arrow_table()
        imp = imp.append_column("idx", pa.array(np.arange(imp.num_rows, dtype=np.int64)))
        h = imp["h"].to_numpy()
        sh = np.sort(h)
        twice = sh[1:][sh[1:] == sh[:-1]]  # few, sorted
        twice = twice[np.r_[True, twice[1:] != twice[:-1]]] if len(twice) else twice
        cand = _take(imp.select(["idx", "loc", "h", "h2", "ts"]
                                + (["event_id"] if ids else [])), _rows_of(h, twice))
        loc = np.sort(cand["loc"].to_numpy())
        if earliest or not (loc[1:] == loc[:-1]).any():
            break
    con.register("cand", cand)
    if not ids:  # the event ids of the rows tied on time, the only ones they rank
        tied = con.execute("SELECT DISTINCT h FROM cand GROUP BY h, h2, ts"
                           " HAVING count(*) > 1").to_arrow_table()
        con.register("tied", tied)
        found = [f"SELECT {LOC.format('file_index')} loc, event_id FROM {files}"
                 f" WHERE {mine} AND h IN (SELECT h FROM tied)"] if served else []
        if days is not None:
            found.append(
                f"SELECT {LOC.format(f'file_index + {len(served)}')} loc, event_id FROM {src}"
                f" WHERE kind = 'ad_impression' AND {mine} AND {window} AND {days}"
                f" AND {_served.HASH.format('request_id')} IN (SELECT h FROM tied)")
        con.register("cand", con.sql(
            "SELECT c.*, e.event_id FROM cand c LEFT JOIN ("
            + (" UNION ALL ".join(found) if found and tied.num_rows
               else "SELECT NULL::BIGINT loc, NULL::VARCHAR event_id WHERE FALSE")
            + ") e ON e.loc = c.loc").to_arrow_table())
    rn = con.execute("SELECT idx, dense_rank() OVER (PARTITION BY h, h2 ORDER BY ts, event_id)"
                     " rn FROM cand").to_arrow_table()
    con.unregister("cand")
    code = np.array(imp["first_rule"].to_numpy())  # the first rule that applies, as in SQL CASE
    again = pc.filter(rn["idx"], pc.greater(rn["rn"], 1)).to_numpy()
    code[again] = np.where(code[again] < 0, 2, code[again])  # bots and no decision come first
    invalid = pa.DictionaryArray.from_arrays(pa.array(code, mask=code < 0),
                                             pa.array(INVALID_IMPRESSION))
    return imp.drop_columns(["first_rule"]).append_column("invalid", invalid)


def _rows_of(h: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The rows whose ``h`` is one of ``values`` (few, sorted), ascending
    (:func:`~allscene.measurement.kernels.rows_in`)."""
    if not len(values):
        return np.zeros(0, np.int64)
    values = np.ascontiguousarray(values, np.int64)
    return kernels.rows_in(h, values, h, values[:0])


def _take(table: pa.Table, rows: np.ndarray) -> pa.Table:
    """``table.take(rows)`` (``rows`` ascending), batch by batch: the rows of a chunked
    table without first copying its columns into one chunk."""
    parts, start = [], 0
    for batch in table.to_batches():
        lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
        if hi > lo:
            parts.append(batch.take(pa.array(rows[lo:hi] - start)))
        start += batch.num_rows
    return pa.Table.from_batches(parts, schema=table.schema)


def _small(con, imp: pa.Table) -> None:
    """``imp_small``: the counted impressions a click or a conversion names, and those of
    the people who converted (for view-through), picked by the first hashes of the
    requests and of the people (a collision only adds a row the joins then drop)."""
    ids, who = (np.sort(con.execute(q).fetchnumpy()["h"]) for q in (
        "SELECT DISTINCT h FROM (SELECT request_id, h FROM ad_clk UNION ALL"
        " SELECT request_id, h FROM ad_conv) WHERE request_id IS NOT NULL",
        "SELECT DISTINCT ph h FROM ad_conv WHERE conversion_type <> 'retention'"))
    rows = kernels.rows_in(imp["h"].to_numpy(), ids.astype(np.int64),
                           imp["ph"].to_numpy(), who.astype(np.int64))
    rows = rows[pc.is_null(imp["invalid"]).to_numpy(zero_copy_only=False)[rows]]
    con.register("imp_small", _take(imp.select(["h", "h2", "ts", "ph", "ph2", "idx",
                                                "invalid"]), rows))


def _clicks_and_conversions(con, p: dict[str, Any]) -> None:
    """Temp tables ``clk`` (every click, ``invalid`` saying why one is not counted),
    ``conv`` (attributed conversions, ``via`` click or view, of the request ``h, h2``) and
    ``ret`` (per request with an attributed activation: retained the next local day,
    within 7).

    They look impressions up in ``imp_small`` (:func:`_small`) by the hashes of the request
    and of the person, so the impressions are read once here rather than once per table."""
    camps = "(" + ", ".join(_lit(c) for c in p["camps"]) + ")"
    con.execute(
        "CREATE TEMP TABLE clk AS SELECT c.request_id, c.h, c.h2, c.ts, c.event_id,"
        " CASE WHEN b.device_id IS NOT NULL THEN 'known bot device'"
        "  WHEN i.h IS NULL THEN 'no counted impression'"
        "  WHEN c.rn > 1 THEN 'duplicate'"
        "  WHEN epoch(c.ts) - epoch(i.ts) < $min_click THEN 'too fast'"
        "  WHEN h.n > $per_hour THEN 'too many clicks from one device in an hour' END invalid"
        " FROM (SELECT *, row_number() OVER (PARTITION BY request_id ORDER BY ts, event_id) rn"
        f"  FROM ad_clk WHERE campaign_id IN {camps}) c"
        " LEFT JOIN (SELECT h, h2, ts FROM imp_small WHERE invalid IS NULL) i"
        "  ON i.h = c.h AND i.h2 = c.h2"  # no request id: the hashes of NULL, no counted one
        " LEFT JOIN (SELECT device_id, date_trunc('hour', ts) hr, count(*) n FROM ad_clk"
        "  GROUP BY ALL) h"
        "  ON h.device_id = c.device_id AND h.hr = date_trunc('hour', c.ts)"
        " LEFT JOIN bots_in b ON b.device_id = c.device_id",
        {"min_click": p["min_click"], "per_hour": p["per_hour"]})
    con.execute(
        "CREATE TEMP TABLE conv AS"
        " WITH cv AS (SELECT c.event_id, c.ts, c.request_id, c.conversion_type, c.ph, c.ph2"
        "  FROM ad_conv c WHERE c.conversion_type <> 'retention'"
        "  AND c.ts >= $start AND c.ts < $end),"
        " ct AS (SELECT cv.event_id, cv.ts, cv.conversion_type, k.h, k.h2, 'click' via"
        "  FROM cv JOIN (SELECT request_id, h, h2, ts FROM clk WHERE invalid IS NULL) k"
        "  ON k.request_id = cv.request_id"
        "  AND epoch(cv.ts) - epoch(k.ts) BETWEEN 0 AND $click_s),"
        " vt AS (SELECT cv.event_id, cv.ts, cv.conversion_type,"
        "  arg_max({'h': i.h, 'h2': i.h2}, i.ts) k FROM cv"
        "  JOIN (SELECT h, h2, ph, ph2, ts FROM imp_small WHERE invalid IS NULL) i"
        "  ON i.ph = cv.ph AND i.ph2 = cv.ph2"
        "  AND epoch(cv.ts) - epoch(i.ts) BETWEEN 0 AND $view_s"
        "  WHERE cv.event_id NOT IN (SELECT event_id FROM ct)"
        "  GROUP BY cv.event_id, cv.ts, cv.conversion_type)"
        " SELECT * FROM ct UNION ALL"
        " SELECT event_id, ts, conversion_type, k.h, k.h2, 'view' FROM vt",
        {"start": p["start"], "end": p["end"], "click_s": p["click_s"], "view_s": p["view_s"]})
    con.execute(
        "CREATE TEMP TABLE ret AS SELECT a.h, a.h2,"
        " coalesce(bool_or(r.d = a.d + 1), false) d1,"  # no retention event: not retained
        " coalesce(bool_or(r.d BETWEEN a.d + 1 AND a.d + 7), false) d7"
        f" FROM (SELECT h, h2, min({DAY.format(ts='ts')}) AS d FROM conv"
        "  WHERE conversion_type = 'activation' GROUP BY h, h2) a"
        " JOIN imp_small i ON i.h = a.h AND i.h2 = a.h2 AND i.invalid IS NULL"
        f" LEFT JOIN (SELECT c.ph, c.ph2, {DAY.format(ts='c.ts')} AS d FROM ad_conv c"
        "  WHERE c.conversion_type = 'retention') r"
        "  ON r.ph = i.ph AND r.ph2 = i.ph2 GROUP BY a.h, a.h2")


def fact_flags(con, start: dt.datetime, end: dt.datetime) -> pa.Table:
    """Counted impressions in ``[start, end)`` that were clicked, converted or activated,
    as Arrow: ``idx`` (the row of ``imp``), ``clicked``, ``conv_<type>``, ``view_through``,
    ``d1`` and ``d7`` (NULL: no attributed activation). Every other counted impression has
    none of these."""
    return con.execute(
        "SELECT i.idx, k.h IS NOT NULL clicked, "
        + ", ".join(f"cv.conv_{t}" for t in CONVERSION_TYPES) + ", cv.view_through,"
        " r.d1, r.d7 FROM imp_small i" + _FLAGS +
        " WHERE i.invalid IS NULL AND i.ts >= $start AND i.ts < $end"
        " AND (k.h IS NOT NULL OR cv.h IS NOT NULL OR r.h IS NOT NULL) ORDER BY i.idx",
        {"start": start, "end": end}).to_arrow_table()
