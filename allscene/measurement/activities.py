"""An interactive activity counted from the event log like a campaign: who saw it, who took
part, what they did and won, what it paid out, what was refused and why, and whether taking
part led to conversions.

The engagement engine (:mod:`allscene.engagement`) writes an ``engagement`` event for every
show, claim and refusal; this module reads only those events and the advertiser's
``ad_conversion`` events, never the engine's store. A person is the event's ``account_id``
(the identity graph's person when the device was known), else the ``people`` table's person
of the device, else the device.

Conversions: an ``ad_conversion`` of the advertiser from any of a person's devices within
``window_d`` days after the person first took part counts for the participants; for the
people who were shown the activity and did not take part, the window starts when they were
first shown it. The two rates side by side are the Buick and Qunar question ("do players
become leads more often?"); they compare self-selected groups, so they are not a lift.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from allscene.measurement.metrics import DAY, MeasureError, _lit, _optional, _window
from allscene.storage.duck import connect

COLUMNS = ("activity_id", "action", "prize_id", "amount", "points", "reason", "account_id")


@dataclass
class ActivityMetrics:
    advertiser: str
    activity: str
    totals: dict[str, Any]
    by_action: list[dict[str, Any]] = field(default_factory=list)
    prizes: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    by_day: list[dict[str, Any]] = field(default_factory=list)
    conversions: list[dict[str, Any]] = field(default_factory=list)
    suppressed: int = 0


def activity_metrics(log, advertiser: str, activity: str, *,
                     start: dt.datetime | None = None, end: dt.datetime | None = None,
                     people: pa.Table | None = None, window_d: int = 30,
                     min_cell: int = 50) -> ActivityMetrics:
    """Count one activity of ``advertiser`` (see the module docstring); days with fewer
    than ``min_cell`` people shown are suppressed."""
    _window(start, end)
    paths = log.files("events", start.astimezone(dt.UTC).date() if start else None, None)
    con = connect()
    con.register("people_in", people if people is not None else pa.table({
        "device_id": pa.array([], pa.string()), "person_id": pa.array([], pa.string())}))
    lo = start or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    hi = end or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
    if not paths:
        raise MeasureError(f"no events of activity {activity!r}")
    src = (f"read_parquet([{', '.join(_lit(p) for p in paths)}], union_by_name=true,"
           " hive_partitioning=false)")
    have = _optional(con, paths, COLUMNS)
    con.execute(
        f"CREATE TEMP TABLE eng AS SELECT e.ts, e.action, e.prize_id, e.amount, e.points,"
        " split_part(e.reason, ':', 1) refused,"
        " coalesce(e.account_id, pe.person_id, 'device:' || e.device_id) person"
        f" FROM (SELECT ts, device_id, {have} FROM {src} WHERE kind = 'engagement'"
        f" AND advertiser_id = {_lit(advertiser)}) e"
        " LEFT JOIN people_in pe ON pe.device_id = e.device_id"
        f" WHERE e.activity_id = {_lit(activity)} AND e.ts >= {_lit(lo)} AND e.ts < {_lit(hi)}")
    (n,) = con.execute("SELECT count(*) FROM eng").fetchone()
    if not n:
        raise MeasureError(f"no events of activity {activity!r} of {advertiser!r} in the "
                           "window")
    ok = "refused IS NULL"
    totals = dict(zip(("events", "shown", "participants", "cash_paid", "points_earned",
                       "points_spent"), con.execute(
        f"SELECT count(*), count(DISTINCT person) FILTER (WHERE action = 'show' AND {ok}),"
        f" count(DISTINCT person) FILTER (WHERE action <> 'show' AND {ok}),"
        f" coalesce(sum(amount) FILTER (WHERE {ok}), 0),"
        f" coalesce(sum(points) FILTER (WHERE points > 0 AND {ok}), 0),"
        f" coalesce(-sum(points) FILTER (WHERE points < 0 AND {ok}), 0) FROM eng").fetchone(),
        strict=True))
    totals["cash_paid"] = round(float(totals["cash_paid"]), 2)
    totals["participation"] = (totals["participants"] / totals["shown"]
                               if totals["shown"] else None)
    out = ActivityMetrics(advertiser, activity, totals)
    out.by_action = [{"action": a, "events": int(e), "people": int(p)} for a, e, p in con.execute(
        f"SELECT action, count(*), count(DISTINCT person) FROM eng WHERE {ok}"
        " GROUP BY action ORDER BY action").fetchall()]
    out.prizes = dict(con.execute(f"SELECT prize_id, count(*) FROM eng WHERE {ok} AND"
                                  " prize_id IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall())
    out.refused = dict(con.execute("SELECT refused, count(*) FROM eng WHERE refused IS NOT"
                                   " NULL GROUP BY 1 ORDER BY 1").fetchall())
    for day, shown, took, acts in con.execute(
            f"SELECT {DAY.format(ts='ts')} AS day,"
            f" count(DISTINCT person) FILTER (WHERE action = 'show' AND {ok}),"
            f" count(DISTINCT person) FILTER (WHERE action <> 'show' AND {ok}),"
            f" count(*) FILTER (WHERE action <> 'show' AND {ok}) FROM eng"
            " GROUP BY ALL ORDER BY day").fetchall():
        small = shown < min_cell
        out.suppressed += small
        out.by_day.append({"day": str(day), "suppressed": small,
                           **({} if small else {"shown": shown, "participants": took,
                                                "actions": acts})})
    out.conversions = _conversions(con, src, advertiser, window_d, min_cell)
    return out


def _conversions(con, src: str, advertiser: str, window_d: int, min_cell: int
                 ) -> list[dict[str, Any]]:
    """Conversions within ``window_d`` days after taking part, or after first being shown
    for those who never took part."""
    rows = con.execute(
        "WITH who AS (SELECT person, min(ts) FILTER (WHERE action <> 'show') took,"
        "  min(ts) first_seen FROM eng WHERE refused IS NULL GROUP BY person),"
        " grp AS (SELECT person, took IS NOT NULL participant,"
        "  coalesce(took, first_seen) t0 FROM who),"
        " cv AS (SELECT c.ts, coalesce(pe.person_id, 'device:' || c.device_id) person,"
        f"  c.conversion_type FROM (SELECT ts, device_id, conversion_type FROM {src}"
        f"  WHERE kind = 'ad_conversion' AND advertiser_id = {_lit(advertiser)}) c"
        "  LEFT JOIN people_in pe ON pe.device_id = c.device_id)"
        " SELECT g.participant, count(DISTINCT g.person) people,"
        "  count(DISTINCT cv.person) converted, count(cv.person) conversions"
        " FROM grp g LEFT JOIN cv ON cv.person = g.person AND cv.ts >= g.t0"
        f"  AND cv.ts < g.t0 + to_days({int(window_d)})"
        " GROUP BY g.participant ORDER BY g.participant DESC").fetchall()
    out = []
    for participant, n, conv, total in rows:
        label = "took part" if participant else "shown only"
        if n < min_cell:
            out.append({"group": label, "suppressed": True})
            continue
        out.append({"group": label, "suppressed": False, "people": n, "converted": conv,
                    "conversions": total, "rate": conv / n})
    return out
