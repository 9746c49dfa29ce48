"""Generate a world: reference data, events per (batch, day), and the truth set.

Work is split into tasks ``(batch, day)``. Each task rebuilds its batch's population from
``(seed, batch)`` (cached per process) and draws its day from ``(seed, batch, day)``, so the
output does not depend on how tasks are scheduled over worker processes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from allscene.events.schema import ARROW_SCHEMA
from allscene.world.columns import EventChunks
from allscene.world.day import HOUR_US, day_start_us, simulate_day
from allscene.world.geo import build_geo, load_json
from allscene.world.population import Population, build_population, truth_tables
from allscene.world.weather import CONDITIONS, Weather, build_weather

WORLD_VERSION = 1
COMPRESSION = "zstd"
Progress = Callable[[int, int], None]


def rest_days(start: dt.date, days: int) -> np.ndarray:
    """True for each day that is a weekend or public holiday (``data/calendar.json``)."""
    cal = load_json("calendar.json")
    hol, work = set(cal["holidays"]), set(cal["workdays"])
    out = []
    for i in range(days):
        d = start + dt.timedelta(days=i)
        iso = d.isoformat()
        out.append(iso in hol or (d.weekday() >= 5 and iso not in work))
    return np.array(out, dtype=bool)


_CACHE: dict[tuple, Any] = {}


def _context(seed: int, start: dt.date, days: int):
    key = ("ctx", seed, start, days)
    if key not in _CACHE:
        geo = build_geo(seed)
        _CACHE[key] = (geo, build_weather(geo, seed=seed, start=start, days=days),
                       rest_days(start, days))
    return _CACHE[key]


def _population(seed: int, start: dt.date, days: int, batch: int, n: int) -> Population:
    key = ("pop", seed, start, days, batch, n)
    if key not in _CACHE:
        for k in [k for k in _CACHE if k[0] == "pop"]:
            del _CACHE[k]
        geo, _, rest = _context(seed, start, days)
        _CACHE[key] = build_population(geo, seed=seed, batch=batch, n=n, days=days,
                                       day_rest=rest)
    return _CACHE[key]


def _task(args: tuple) -> dict[str, Any]:
    """Simulate one (batch, day) and write its files; return counts (and truth on day 0)."""
    out_dir, seed, start, days, batch, n, day = args
    geo, wx, rest = _context(seed, start, days)
    pop = _population(seed, start, days, batch, n)
    events, scenes, counts = simulate_day(pop, geo, wx, seed=seed, day=day,
                                          date=start + dt.timedelta(days=day), rest=bool(rest[day]))
    out = Path(out_dir)
    _write(events, out / "events" / f"part-{batch:05d}-{day:03d}.parquet")
    _write(scenes, out / "truth" / "scenes" / f"part-{batch:05d}-{day:03d}.parquet")
    res: dict[str, Any] = {"batch": batch, "day": day, "counts": counts}
    if day == 0:
        res["truth"] = truth_tables(pop, geo)
    return res


def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression=COMPRESSION)
    tmp.replace(path)


def weather_table(wx: Weather, geo, *, seed: int, day: int, date: dt.date) -> pa.Table:
    """Hourly weather events of every city for one local day (device fields null)."""
    nc = geo.n_city
    c = np.repeat(np.arange(nc), 24)
    h = np.tile(np.arange(24), nc)
    ev = EventChunks()
    ev.add("weather", day_start_us(date) + h * HOUR_US, None, None,
           city_code=pa.array(geo.city_code[c]), temp_c=wx.temp[c, day, h],
           condition=pa.array(np.asarray(CONDITIONS)[wx.condition[c, day, h]]),
           aqi=wx.aqi[c, day, h], humidity=wx.humidity[c, day, h])
    return ev.table(f"w{seed}-wx-{day:03d}-")


def generate(out_dir: Path, *, people: int, days: int = 14, seed: int = 7,
             start: dt.date = dt.date(2026, 10, 5), batch_people: int = 10_000,
             workers: int = 2, on_progress: Progress | None = None) -> dict[str, Any]:
    """Generate a world of ``people`` people over ``days`` days into ``out_dir``.

    Writes ``events/`` (exactly ``ARROW_SCHEMA``), ``reference/`` (regions, geo-IP, cell
    towers), ``truth/`` (people, households, devices, ad response, scenes) and ``world.json``.
    Same arguments give the same event content whatever ``workers`` is. Returns a summary.
    """
    if people < 1 or days < 1:
        raise ValueError("people and days must be positive")
    if not 1 <= batch_people < 1_000_000:
        raise ValueError("batch_people must be in 1..999,999")
    t_start = time.perf_counter()
    out = Path(out_dir)
    for sub in ("events", "reference", "truth", "truth/scenes"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    geo, wx, rest = _context(seed, start, days)
    _write(geo.regions_table(), out / "reference" / "regions.parquet")
    _write(geo.geoip_table(), out / "reference" / "geoip.parquet")
    _write(geo.cell_towers_table(), out / "reference" / "cell_towers.parquet")
    events = Counter()
    for day in range(days):
        t = weather_table(wx, geo, seed=seed, day=day, date=start + dt.timedelta(days=day))
        assert t.schema.equals(ARROW_SCHEMA)
        _write(t, out / "events" / f"weather-{day:03d}.parquet")
        events["weather"] += t.num_rows

    n_batches = math.ceil(people / batch_people)
    tasks = [(str(out), seed, start, days, b, min(batch_people, people - b * batch_people), d)
             for b in range(n_batches) for d in range(days)]
    writers: dict[str, pq.ParquetWriter] = {}
    counts = {"people": 0, "households": 0}
    devices = Counter()
    done = 0
    try:
        if workers <= 1:
            results = map(_task, tasks)
            pool = None
        else:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
            results = pool.map(_task, tasks)
        for res in results:
            events.update(res["counts"])
            for name, table in res.get("truth", {}).items():
                if name not in writers:
                    writers[name] = pq.ParquetWriter(out / "truth" / f"{name}.parquet",
                                                     table.schema, compression=COMPRESSION)
                writers[name].write_table(table.cast(writers[name].schema))
                if name == "people":
                    counts["people"] += table.num_rows
                elif name == "households":
                    counts["households"] += table.num_rows
                elif name == "devices":
                    devices.update(table.column("device_type").to_pylist())
            done += 1
            if on_progress:
                on_progress(done, len(tasks))
    finally:
        for w in writers.values():
            w.close()
        if workers > 1 and pool is not None:
            pool.shutdown()
    seconds = time.perf_counter() - t_start
    summary = {
        "people": counts["people"], "households": counts["households"],
        "devices": dict(sorted(devices.items())), "devices_total": sum(devices.values()),
        "events": dict(sorted(events.items())), "events_total": sum(events.values()),
        "seconds": round(seconds, 2),
    }
    world = {
        "version": WORLD_VERSION, "seed": seed, "people": people, "days": days,
        "start": start.isoformat(), "batch_people": batch_people, "timezone": "Asia/Shanghai",
        "rest_days": [(start + dt.timedelta(days=i)).isoformat() for i in np.flatnonzero(rest).tolist()],
        "counts": summary,
    }
    (out / "world.json").write_text(json.dumps(world, indent=2, ensure_ascii=False))
    return summary
