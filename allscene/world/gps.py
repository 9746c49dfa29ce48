"""GPS ground speed of location pings, and the fixes a fitness app logs on a tracked run.

Both draw from their own random stream (``[seed, 9, batch, day]``), so adding them left every
other draw of the world as it was.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from allscene.world.columns import EventChunks, join, num_str, pick
from allscene.world.geo import MOBILE_PREFIXES, Geo, nearest_tower
from allscene.world.population import Population
from allscene.world.schedule import COMMUTE, HUB, OUT, RUN

HOUR_US = 3_600_000_000
TRACKED = 0.8  # runs the phone's fitness app tracks (the app is opened on as many)
FIX_EVERY_MIN = 8  # about one logged fix per 8 minutes of a tracked run


def ping_speeds(pop: Population, srng: np.random.Generator, p: np.ndarray,
                code: np.ndarray) -> np.ndarray:
    """Ground speed (m/s) of pings of people ``p`` at place codes ``code``: GPS noise at rest,
    walking pace at a mall or station, the runner's pace on a run, riding or walking on the
    way to work (a car or taxi crawls in traffic at times)."""
    t = pop.traits
    m = len(p)
    speed = np.abs(srng.normal(0, 0.25, m))
    speed = np.where((code == OUT) | (code == HUB), srng.uniform(0, 1.5, m), speed)
    speed = np.where(code == RUN, run_speed(pop, srng, p), speed)
    mode = t["commute"][p]
    ride = np.where(mode == 2, srng.uniform(4, 14, m), srng.uniform(3, 16, m))
    walk = srng.uniform(1.1, 1.7, m)
    on_foot = (mode == 0) | ((mode == 2) & (srng.random(m) < 0.3))
    return np.where(code == COMMUTE, np.where(on_foot, walk, ride), speed)


def run_speed(pop: Population, srng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    pace = np.nan_to_num(pop.traits["pace"][p], nan=6.0)  # minutes per km
    return 1000 / (pace * 60) * srng.normal(1, 0.05, len(p))


def tracked_runs(ev: EventChunks, pop: Population, geo: Geo, s, srng: np.random.Generator,
                 t0: int) -> None:
    """Location fixes the fitness app logs on tracked runs: cellular, around home, at pace."""
    t, n = pop.traits, pop.n
    ran = s.run_today & (s.place[np.arange(n), s.run_h] == RUN)
    who = np.flatnonzero(ran & (srng.random(n) < TRACKED))
    k = srng.poisson(t["run_min"][who] / FIX_EVERY_MIN)
    p = np.repeat(who, k)
    m = len(p)
    if not m:
        return
    county = s.anchor_county[p, RUN]
    lat = s.anchor_lat[p, RUN] + srng.normal(0, 0.006, m)
    lon = s.anchor_lon[p, RUN] + srng.normal(0, 0.007, m)
    city = geo.county_city[county]
    prefix = geo.mobile_prefix[city, t["carrier"][p], srng.integers(0, MOBILE_PREFIXES, m)]
    ts = t0 + s.run_h[p].astype(np.int64) * HOUR_US + (
        srng.random(m) * t["run_min"][p] * 60_000_000).astype(np.int64)
    acc = srng.uniform(3, 12, m)
    ev.add("location", ts, pick(pop.devices["phone"], p), "phone",
           ip=join(pick(geo.prefix, prefix), ".", num_str(srng.integers(2, 254, m))),
           network="cellular", cell_id=pick(geo.tower_id, nearest_tower(geo, county, lat, lon)),
           lat=pa.array(np.round(lat, 6)), lon=pa.array(np.round(lon, 6)),
           accuracy_m=pa.array(np.round(acc, 1)),
           speed_mps=pa.array(np.round(run_speed(pop, srng, p), 1)))
