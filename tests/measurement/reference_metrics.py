"""The campaign metrics as they were counted before the one-pass rewrite (issue 7), kept
verbatim as the reference the optimized :func:`allscene.measurement.metrics.measure` must
match: one temp table per step, every breakdown its own ``GROUP BY`` over ``facts``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from allscene.measurement.metrics import CONVERSION_TYPES, Metrics, Rules
from allscene.storage.duck import connect

_DIM_SQL = {"campaign": "campaign_id", "day": "day", "hour": "hour",
            "placement": "placement_id", "medium": "medium", "device_type": "device_type",
            "creative": "creative_id", "scene": "coalesce(scene, '(not targeted)')",
            "audience": "coalesce(audience, '(not targeted)')",
            "stage": "coalesce(stage, '(no stage)')"}


def reference_measure(log, advertiser: str, campaigns: Sequence[str], *,
                      by: Sequence[Sequence[str]] = (), start: dt.datetime | None = None,
                      end: dt.datetime | None = None, rules: Rules | None = None,
                      people: pa.Table | None = None, media: dict[str, str] | None = None,
                      min_cell: int = 50, frequency_cap: int = 10) -> Metrics:
    """``measure`` as it was."""
    breakdowns = [list(b) for b in by]
    con = counted(log, advertiser, campaigns, start=start, end=end, rules=rules or Rules(),
                  people=people, media=media)
    invalid = {f"{what}: {why}": n for what, why, n in con.execute(
        "SELECT what, invalid, count(*) FROM ("
        " SELECT 'impressions' what, invalid FROM imp UNION ALL"
        " SELECT 'clicks', invalid FROM clk) WHERE invalid IS NOT NULL"
        " GROUP BY ALL ORDER BY 1, 2").fetchall()}
    (top,) = con.execute("SELECT count(*) FROM pno").fetchone()
    reach = f"coalesce(bit_count(bitstring_agg(person, 0, {max(top - 1, 1)})), 0)"
    totals = _aggregate(con, [], min_cell=0, reach=reach)[0]
    out = Metrics(advertiser, list(campaigns), start, end, totals, invalid=invalid,
                  min_cell=min_cell)
    for dims in breakdowns:
        rows = _aggregate(con, dims, min_cell=min_cell,
                          reach=reach if len(dims) < 2 else "count(DISTINCT person)")
        out.suppressed += sum(1 for r in rows if r["suppressed"])
        out.breakdowns["/".join(dims)] = pa.Table.from_pylist(rows) if rows else pa.table({})
    out.frequency = [(int(k), int(n)) for k, n in con.execute(
        "SELECT least(n, $cap) k, count(*) FROM (SELECT person, count(*) n FROM facts"
        " GROUP BY person) GROUP BY k ORDER BY k", {"cap": frequency_cap}).fetchall()]
    out.reach_curve = [(str(d), int(n)) for d, n in con.execute(
        "SELECT day, sum(count(*)) OVER (ORDER BY day) FROM (SELECT person, min(day) AS day"
        " FROM facts GROUP BY person) GROUP BY day ORDER BY day").fetchall()]
    return out


def counted(log, advertiser: str, campaigns: Sequence[str], *, start: dt.datetime | None,
            end: dt.datetime | None, rules: Rules, people: pa.Table | None,
            media: dict[str, str] | None = None, paths: list[str] | None = None):
    """A DuckDB connection holding the counted events of the campaigns, for other measures
    (:mod:`allscene.measurement.incrementality`): temp tables ``ad`` (the advertiser's ad
    events), ``imp`` and ``clk`` (every impression and click; ``invalid`` says why one is
    not counted), ``conv`` (attributed conversions), ``facts`` (one row per counted
    impression in the window, its ``person`` numbered by ``pno``), and ``people_in``
    (device -> person)."""
    t_lo = None if start is None else start - dt.timedelta(
        days=max(rules.view_window_d, rules.click_window_d) + 1)
    if paths is None:
        paths = log.files("events", t_lo.astimezone(dt.UTC).date() if t_lo else None,
                          end.astimezone(dt.UTC).date() if end else None)
    con = connect()
    con.register("people_in", people if people is not None else
                 pa.table({"device_id": pa.array([], pa.string()),
                           "person_id": pa.array([], pa.string())}))
    med = media or {}
    con.register("media_in", pa.table({"placement_id": pa.array(list(med), pa.string()),
                                       "medium": pa.array(list(med.values()), pa.string())}))
    con.register("bots_in", pa.table({"device_id": pa.array(sorted(rules.bot_devices),
                                                             pa.string())}))
    params = {"adv": advertiser, "camps": list(campaigns),
              "start": start or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
              "end": end or dt.datetime(9999, 1, 1, tzinfo=dt.UTC),
              "min_click": rules.min_click_s, "per_hour": rules.max_clicks_per_hour,
              "view_s": rules.view_window_d * 86400, "click_s": rules.click_window_d * 86400}
    _facts(con, paths, params)
    return con


_LOCAL = "make_timestamp(epoch_us({ts}) + 28800000000)"
"""Local time (UTC+8) of a TIMESTAMPTZ as a plain TIMESTAMP: epoch arithmetic, not the ICU
calendar arithmetic of ``ts + INTERVAL 8 HOUR`` (0.15 us a row against 0.01)."""
DAY = "CAST(" + _LOCAL + " AS DATE)"
HOUR = "hour(" + _LOCAL + ")"


def _optional(con, paths: list[str], names: tuple[str, ...]) -> str:
    """``name`` for each column some file has, else ``NULL AS name`` (logs written before
    the column existed)."""
    have = {r[0] for r in con.execute(
        "SELECT name FROM parquet_schema([" + ", ".join(_lit(x) for x in paths) + "])"
    ).fetchall()}
    return ", ".join(n if n in have else f"NULL::VARCHAR AS {n}" for n in names)


def _lit(v: Any) -> str:
    """A SQL literal of a string or an aware datetime (views take no parameters)."""
    if isinstance(v, dt.datetime):
        return f"TIMESTAMPTZ '{v.isoformat()}'"
    return "'" + str(v).replace("'", "''") + "'"


def _facts(con, paths: list[str], p: dict[str, Any]) -> None:
    """Temp tables ``imp`` and ``clk`` (every impression and click, ``invalid`` saying why
    one is not counted) and ``facts`` (one row per counted impression).

    ``ad`` is a view over the Parquet files, not a table: each statement reads only the
    kinds and columns it needs. Clicks and conversions (a few % of the events) are read
    once into ``ad_clk`` and ``ad_conv``."""
    if paths:
        con.execute(
            "CREATE TEMP VIEW ad AS SELECT kind, event_id, ts, device_id, device_type,"
            " request_id, placement_id, campaign_id, creative_id, outcome, account_id, cost,"
            f" conversion_type, {_optional(con, paths, ('scene', 'audience', 'stage'))}"
            f" FROM read_parquet([{', '.join(_lit(x) for x in paths)}],"
            " union_by_name=true, hive_partitioning=false) WHERE kind IN ('ad_decision',"
            f" 'ad_impression', 'ad_click', 'ad_conversion') AND advertiser_id = {_lit(p['adv'])}"
            f" AND ts < {_lit(p['end'])}")
    else:
        con.execute("CREATE TEMP TABLE ad (kind VARCHAR, event_id VARCHAR, ts TIMESTAMPTZ,"
                    " device_id VARCHAR, device_type VARCHAR, request_id VARCHAR,"
                    " placement_id VARCHAR, campaign_id VARCHAR, creative_id VARCHAR,"
                    " outcome VARCHAR, account_id VARCHAR, cost DOUBLE,"
                    " conversion_type VARCHAR, scene VARCHAR, audience VARCHAR,"
                    " stage VARCHAR)")
    con.execute("CREATE TEMP TABLE ad_clk AS SELECT request_id, ts, event_id, device_id,"
                " campaign_id FROM ad WHERE kind = 'ad_click'")
    con.execute("CREATE TEMP TABLE ad_conv AS SELECT event_id, ts, request_id, device_id,"
                " conversion_type FROM ad WHERE kind = 'ad_conversion'")
    look = {"end": p["end"], "start": p["start"], "look_s": max(p["view_s"], p["click_s"])}
    camps = "(" + ", ".join(_lit(c) for c in p["camps"]) + ")"
    imp_src = ("(SELECT request_id, ts, event_id, device_id, device_type, placement_id,"
               " campaign_id, creative_id, cost FROM ad WHERE kind = 'ad_impression'"
               f" AND campaign_id IN {camps}"
               " AND ts >= $start - to_seconds($look_s) AND ts < $end)")
    con.execute(  # each impression's decision: its campaign's earliest in the 24 h before it
        "CREATE TEMP TABLE dec AS SELECT i.request_id, i.event_id, d.account_id, d.cost,"
        " d.scene, d.audience, d.stage FROM " + imp_src + " i JOIN (SELECT * FROM ad"
        f" WHERE kind = 'ad_decision' AND outcome = 'ad' AND campaign_id IN {camps}) d"
        " ON d.request_id = i.request_id AND d.campaign_id = i.campaign_id"
        " AND d.ts <= i.ts AND d.ts >= i.ts - INTERVAL 24 HOUR"
        " QUALIFY row_number() OVER (PARTITION BY i.request_id, i.event_id ORDER BY d.ts) = 1",
        look)
    con.execute(
        "CREATE TEMP TABLE imp_rn AS SELECT request_id, event_id, row_number() OVER"
        " (PARTITION BY request_id ORDER BY ts, event_id) rn FROM " + imp_src + " i"
        " WHERE request_id IN (SELECT request_id FROM " + imp_src + " j"
        " GROUP BY request_id HAVING count(*) > 1)", look)
    con.execute(
        "CREATE TEMP TABLE imp AS SELECT i.request_id, i.ts, i.device_type,"
        " i.placement_id, i.campaign_id, i.creative_id,"
        " coalesce(i.cost, d.cost, 0) AS cost, d.scene, d.audience, d.stage,"
        " coalesce(d.account_id, pe.person_id, 'device:' || i.device_id) person,"
        " CASE WHEN b.device_id IS NOT NULL THEN 'known bot device'"
        "  WHEN d.request_id IS NULL THEN 'no matching decision'"
        "  WHEN r.rn > 1 THEN 'duplicate' END invalid"
        " FROM " + imp_src + " i"
        " LEFT JOIN imp_rn r ON r.request_id = i.request_id AND r.event_id = i.event_id"
        " LEFT JOIN dec d ON d.request_id = i.request_id AND d.event_id = i.event_id"
        " LEFT JOIN people_in pe ON pe.device_id = i.device_id"
        " LEFT JOIN bots_in b ON b.device_id = i.device_id", look)
    con.execute("DROP TABLE dec; DROP TABLE imp_rn")
    con.execute(
        "CREATE TEMP TABLE clk AS SELECT c.request_id, c.ts, c.event_id,"
        " CASE WHEN b.device_id IS NOT NULL THEN 'known bot device'"
        "  WHEN i.request_id IS NULL THEN 'no counted impression'"
        "  WHEN c.rn > 1 THEN 'duplicate'"
        "  WHEN epoch(c.ts) - epoch(i.ts) < $min_click THEN 'too fast'"
        "  WHEN h.n > $per_hour THEN 'too many clicks from one device in an hour' END invalid"
        " FROM (SELECT *, row_number() OVER (PARTITION BY request_id ORDER BY ts, event_id) rn"
        f"  FROM ad_clk WHERE campaign_id IN {camps}"
        "  AND ts < $end) c"
        " LEFT JOIN (SELECT request_id, ts FROM imp WHERE invalid IS NULL) i"
        "  ON i.request_id = c.request_id"
        " LEFT JOIN (SELECT device_id, date_trunc('hour', ts) hr, count(*) n FROM ad_clk"
        "  GROUP BY ALL) h"
        "  ON h.device_id = c.device_id AND h.hr = date_trunc('hour', c.ts)"
        " LEFT JOIN bots_in b ON b.device_id = c.device_id",
        {"end": p["end"], "min_click": p["min_click"], "per_hour": p["per_hour"]})
    con.execute(
        "CREATE TEMP TABLE conv AS"
        " WITH cv AS (SELECT c.event_id, c.ts, c.request_id, c.conversion_type,"
        "  coalesce(pe.person_id, 'device:' || c.device_id) person FROM ad_conv c"
        "  LEFT JOIN people_in pe ON pe.device_id = c.device_id"
        "  WHERE c.conversion_type <> 'retention'"
        "  AND c.ts >= $start AND c.ts < $end),"
        " ct AS (SELECT cv.event_id, cv.ts, cv.conversion_type, k.request_id, 'click' via"
        "  FROM cv JOIN (SELECT request_id, ts FROM clk WHERE invalid IS NULL) k"
        "  ON k.request_id = cv.request_id"
        "  AND epoch(cv.ts) - epoch(k.ts) BETWEEN 0 AND $click_s),"
        " vt AS (SELECT cv.event_id, cv.ts, cv.conversion_type,"
        "  arg_max(i.request_id, i.ts) request_id, 'view' via FROM cv"
        "  JOIN (SELECT request_id, person, ts FROM imp WHERE invalid IS NULL) i"
        "  ON i.person = cv.person AND epoch(cv.ts) - epoch(i.ts) BETWEEN 0 AND $view_s"
        "  WHERE cv.event_id NOT IN (SELECT event_id FROM ct)"
        "  GROUP BY cv.event_id, cv.ts, cv.conversion_type)"
        " SELECT * FROM ct UNION ALL SELECT * FROM vt",
        {"start": p["start"], "end": p["end"], "click_s": p["click_s"], "view_s": p["view_s"]})
    con.execute(
        "CREATE TEMP TABLE ret AS SELECT a.request_id,"
        " coalesce(bool_or(r.d = a.d + 1), false) d1,"  # no retention event: not retained
        " coalesce(bool_or(r.d BETWEEN a.d + 1 AND a.d + 7), false) d7"
        f" FROM (SELECT request_id, min({DAY.format(ts='ts')}) AS d FROM conv"
        "  WHERE conversion_type = 'activation' GROUP BY request_id) a"
        " JOIN imp i ON i.request_id = a.request_id AND i.invalid IS NULL"
        " LEFT JOIN (SELECT coalesce(pe.person_id, 'device:' || c.device_id) person,"
        f"  {DAY.format(ts='c.ts')} AS d FROM ad_conv c"
        "  LEFT JOIN people_in pe ON pe.device_id = c.device_id"
        "  WHERE c.conversion_type = 'retention') r"
        "  ON r.person = i.person GROUP BY a.request_id")
    types = ", ".join(f"count(*) FILTER (WHERE conversion_type = '{t}') conv_{t}"
                      for t in CONVERSION_TYPES)
    con.execute(  # people numbered 0, 1, ...: reach and frequency count integers
        "CREATE TEMP TABLE pno AS SELECT person, (row_number() OVER () - 1)::INTEGER pid"
        " FROM (SELECT DISTINCT person FROM imp WHERE invalid IS NULL AND person IS NOT NULL"
        " AND ts >= $start AND ts < $end)", {"start": p["start"], "end": p["end"]})
    con.execute(
        "CREATE TEMP TABLE facts AS SELECT pn.pid AS person, i.campaign_id,"
        " i.placement_id, coalesce(m.medium, 'other') medium, i.device_type, i.creative_id,"
        " i.scene, i.audience, i.stage,"
        f" {DAY.format(ts='i.ts')} AS day, {HOUR.format(ts='i.ts')} AS hour,"
        " i.cost, (k.request_id IS NOT NULL)::INT clicked,"
        " coalesce(cv.conv_lead, 0) conv_lead,"
        " coalesce(cv.conv_activation, 0) conv_activation,"
        " coalesce(cv.conv_purchase, 0) conv_purchase,"
        " coalesce(cv.view_through, 0) view_through,"
        " r.d1::INT retained_1d, r.d7::INT retained_7d"
        " FROM imp i"
        " LEFT JOIN (SELECT DISTINCT request_id FROM clk WHERE invalid IS NULL) k"
        "  ON k.request_id = i.request_id"
        f" LEFT JOIN (SELECT request_id, {types},"
        "  count(*) FILTER (WHERE via = 'view') view_through FROM conv GROUP BY request_id) cv"
        "  ON cv.request_id = i.request_id"
        " LEFT JOIN ret r ON r.request_id = i.request_id"
        " LEFT JOIN media_in m ON m.placement_id = i.placement_id"
        " LEFT JOIN pno pn ON pn.person = i.person"
        " WHERE i.invalid IS NULL AND i.ts >= $start AND i.ts < $end",
        {"start": p["start"], "end": p["end"]})


_SUMS = ("count(*) impressions, sum(clicked) clicks, {reach} reach,"
         " sum(cost) AS cost, sum(conv_lead) conv_lead, sum(conv_activation) conv_activation,"
         " sum(conv_purchase) conv_purchase, sum(view_through) view_through,"
         " count(retained_1d) activated, sum(retained_1d) retained_1d,"
         " sum(retained_7d) retained_7d")


def _aggregate(con, dims: list[str], *, min_cell: int, reach: str) -> list[dict[str, Any]]:
    cols = [_DIM_SQL[d] for d in dims]
    sel = "".join(f"{c} AS \"{d}\", " for c, d in zip(cols, dims, strict=True))
    group = f" GROUP BY {', '.join(cols)} ORDER BY {', '.join(cols)}" if cols else ""
    cur = con.execute(f"SELECT {sel}{_SUMS.format(reach=reach)} FROM facts{group}")
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    return [_derive(r, dims, min_cell) for r in rows]


def _ratio(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    return None if not b or a is None else a / b * scale


def _derive(r: dict[str, Any], dims: list[str], min_cell: int) -> dict[str, Any]:
    """Rates from the sums; a cell with fewer than ``min_cell`` people keeps only its dims."""
    if r.get("day") is not None:
        r["day"] = r["day"].isoformat()
    conv = sum(r[f"conv_{t}"] or 0 for t in CONVERSION_TYPES)
    cost = float(r["cost"] or 0)
    r |= {"cost": round(cost, 6), "conversions": conv,
          "ctr": _ratio(r["clicks"], r["impressions"]),
          "frequency": _ratio(r["impressions"], r["reach"]),
          "cpm": _ratio(cost, r["impressions"], 1000), "cpc": _ratio(cost, r["clicks"]),
          "cpa": _ratio(cost, conv), "retention_1d": _ratio(r["retained_1d"], r["activated"]),
          "retention_7d": _ratio(r["retained_7d"], r["activated"])}
    if small := r["reach"] < min_cell:
        r = {k: (v if k in dims else None) for k, v in r.items()}
    r["suppressed"] = small
    return r
