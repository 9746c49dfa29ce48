"""Run the scene engine over stored days, and read its output back.

:func:`replay` reads the log one local day at a time (time-ordered), feeds one engine (its
state carries over from day to day, as it would live) and appends the scene enter and exit
events to the log. Their ids are derived from (person, scene, kind, time), so replaying the
same days again adds nothing. :func:`intervals` turns scene events back into intervals, and
:func:`hourly_counts` counts people per scene per local hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allscene.events.schema import ARROW_SCHEMA, KINDS
from allscene.moments.context import HOUR_US, LOCAL_US, WeatherContext
from allscene.moments.engine import ENTER, EXIT, Engine
from allscene.moments.resolve import Resolver, place_keys, work_end_hours

MOMENT_KINDS = (ENTER, EXIT)
INPUT_KINDS = tuple(k for k in KINDS if k not in MOMENT_KINDS)
LOCAL = dt.timezone(dt.timedelta(hours=8))


@dataclass
class DayResult:
    date: dt.date
    events_in: int
    scene_events: int
    seconds: float
    written: int = 0  # new to the log (0 when the day was replayed before with this catalog)


def build_resolver(events: ibis.Table, devices: pa.Table, people: pa.Table, reference) -> tuple[
        Resolver, pa.Table, pa.Table]:
    """The resolver for the people of the identity graph, with the place keys and usual
    hours of leaving work it learnt from ``events``."""
    dev = ibis.memtable(devices)
    keys = place_keys(events, dev).to_pyarrow()
    ends = work_end_hours(events, dev, ibis.memtable(keys)).to_pyarrow()
    return Resolver(devices, people, keys, reference.cell_towers, reference.geoip,
                    reference.regions, work_end=ends), keys, ends


def context_from(log, first_day: dt.date, days: int = 8) -> WeatherContext:
    """The weather of the ``days`` local days before ``first_day``: what the 24-hour change
    and the 7-day anomaly of the first replayed hours compare against."""
    start, _ = day_bounds(first_day - dt.timedelta(days=days))
    end, _ = day_bounds(first_day)
    wx = WeatherContext()
    wx.add_many(log.scan(start=start, end=end, kinds=["weather"]))
    return wx


def home_cities(tag_table: pa.Table) -> dict[str, str]:
    """Person id to home city code, from the ``city`` tag."""
    t = tag_table.select(["person_id", "city"]).filter(pc.is_valid(tag_table["city"]))
    return dict(zip(t["person_id"].to_pylist(), t["city"].to_pylist(), strict=True))


def home_cities_from_places(resolver: Resolver) -> dict[str, str]:
    """Person id to the city of their home cells (the most frequent), when no ``city`` tag
    has been built."""
    votes: dict[int, dict[str, int]] = {}
    for (p, key), place in resolver.keys.items():
        city = resolver.cell_city.get(key[2:]) if place == "home" and key[:2] == "c:" else None
        if city:
            v = votes.setdefault(p, {})
            v[city] = v.get(city, 0) + 1
    return {resolver.people[p]: max(sorted(v), key=v.get) for p, v in votes.items()}


def local_days(log) -> list[dt.date]:
    """The local (UTC+8) dates from the first to the last event the engine reads (scene
    events it wrote itself do not count)."""
    events = log.table()
    if events is None:
        return []
    span = events.filter(events.kind.isin(list(INPUT_KINDS))).aggregate(
        lo=events.ts.min(), hi=events.ts.max()).to_pyarrow().to_pylist()[0]
    if span["lo"] is None:
        return []
    first, last = (_as_utc(span[k]).astimezone(LOCAL).date() for k in ("lo", "hi"))
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _as_utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t


def day_bounds(date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(date, dt.time(), tzinfo=LOCAL)
    return start, start + dt.timedelta(days=1)


def replay(log, engine: Engine, dates: list[dt.date], *, write: bool = True,
           on_day: Callable[[DayResult], None] | None = None) -> list[DayResult]:
    """Feed ``dates`` (local days, in order) through ``engine``; append its scene events
    (``write``) and drain ``engine.out`` after each day. Scenes still active after the last
    day stay open: their exit comes with the next day replayed."""
    import time

    out = []
    for date in dates:
        t0 = time.perf_counter()
        start, end = day_bounds(date)
        table = log.scan(start=start, end=end, kinds=INPUT_KINDS)
        n = engine.run_many(table)
        if date == dates[-1]:
            engine.flush(int(end.timestamp()) * 1_000_000)
        new, engine.out = engine.out, []
        written = log.append(scene_event_table(engine, new)).accepted if write and new else 0
        r = DayResult(date, n, len(new), time.perf_counter() - t0, written)
        out.append(r)
        if on_day:
            on_day(r)
    return out


def generation(digest: str) -> str:
    """The event id prefix of the scene events a catalog made: replaying with the same
    catalog adds nothing; an edited catalog writes a new generation beside the old one
    (the log keeps everything), and readers pick the generation of the last run."""
    return f"sc:{digest}:"


def scene_event_table(engine: Engine, rows: list) -> pa.Table:
    """Scene events as rows of the event log (:data:`ARROW_SCHEMA`)."""
    people, scenes = engine.resolver.people, engine.catalog.scenes
    prefix = generation(engine.catalog.digest)
    n = len(rows)
    cols = {
        "event_id": [f"{prefix}{people[r[1]]}:{scenes[r[2]].id}:{r[3][6:]}:{r[0]}"
                     for r in rows],
        "ts": pa.array([r[0] for r in rows], pa.timestamp("us", tz="UTC")),
        "kind": [r[3] for r in rows],
        "account_id": [people[r[1]] for r in rows],
        "scene": [scenes[r[2]].id for r in rows],
        "trigger_event_id": [r[4] for r in rows],
        "schema_version": [1] * n,
    }
    arrays = [pa.array(cols[f.name], f.type) if f.name in cols else pa.nulls(n, f.type)
              for f in ARROW_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def intervals(scene_events: pa.Table, end_us: int) -> pa.Table:
    """``person_id, scene, start, end`` (UTC µs) from enter and exit events; a scene still
    open is closed at ``end_us``."""
    t = scene_events.sort_by([("ts", "ascending"), ("kind", "ascending")])
    ts = t["ts"].cast(pa.int64()).to_numpy()
    kind = t["kind"].to_pylist()
    person = t["account_id"].to_pylist()
    scene = t["scene"].to_pylist()
    open_: dict[tuple[str, str], int] = {}
    rows: list[tuple[str, str, int, int]] = []
    for when, k, p, s in zip(ts.tolist(), kind, person, scene, strict=True):
        key = (p, s)
        if k == ENTER:
            open_.setdefault(key, when)
        elif key in open_:
            rows.append((p, s, open_.pop(key), when))
    rows.extend((p, s, a, end_us) for (p, s), a in open_.items())
    rows.sort()
    return pa.table({
        "person_id": pa.array([r[0] for r in rows], pa.string()),
        "scene": pa.array([r[1] for r in rows], pa.string()),
        "start": pa.array([r[2] for r in rows], pa.int64()),
        "end": pa.array([r[3] for r in rows], pa.int64()),
    })


def hours_of(iv: pa.Table, min_us: int = HOUR_US // 2) -> pa.Table:
    """``person_id, scene, hour`` (local hours since the epoch): the hours an interval began
    in, or covered for at least ``min_us``."""
    start = iv["start"].to_numpy()
    end = iv["end"].to_numpy()
    first = (start + LOCAL_US) // HOUR_US
    last = (np.maximum(end - 1, start) + LOCAL_US) // HOUR_US
    span = (last - first + 1).astype(np.int64)
    idx = np.repeat(np.arange(len(start)), span)
    offs = np.arange(len(idx)) - np.repeat(np.cumsum(span) - span, span)
    hour = first[idx] + offs
    lo = np.maximum(start[idx], hour * HOUR_US - LOCAL_US)
    hi = np.minimum(end[idx], (hour + 1) * HOUR_US - LOCAL_US)
    keep = (offs == 0) | ((hi - lo) >= min_us)
    sel = pa.array(idx[keep])
    return pa.table({"person_id": iv["person_id"].take(sel), "scene": iv["scene"].take(sel),
                     "hour": pa.array(hour[keep], pa.int64())}).group_by(
        ["person_id", "scene", "hour"]).aggregate([])


def hourly_counts(iv: pa.Table, date: dt.date) -> pa.Table:
    """People per scene per local hour of ``date``: ``scene, hour (0-23), people``."""
    h = hours_of(iv)
    day0 = (date - dt.date(1970, 1, 1)).days * 24
    h = h.filter(pc.and_(pc.greater_equal(h["hour"], day0), pc.less(h["hour"], day0 + 24)))
    h = h.append_column("local", pc.subtract(h["hour"], day0))
    out = h.group_by(["scene", "local"]).aggregate([("person_id", "count_distinct")])
    return out.rename_columns(["scene", "hour", "people"]).sort_by(
        [("scene", "ascending"), ("hour", "ascending")])
