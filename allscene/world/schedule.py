"""Where each person is, hour by local hour, on one day; and the true scenes that follow.

The schedule is a matrix ``place[person, hour]`` of place codes built with boolean masks over
all people at once. Anchors give, per person and place code, the true county and position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from allscene.world.geo import Geo
from allscene.world.population import Population

SLEEP, HOME, COMMUTE, OFFICE, OUT, RUN, TRIP, TRIP_SLEEP, HUB = range(9)
N_PLACES = 9
HOURS = np.arange(24)[None, :]


@dataclass
class Schedule:
    place: np.ndarray  # (n, 24) int8 place code
    works: np.ndarray  # (n,) commutes to the office today
    late: np.ndarray  # (n,) works late today
    end: np.ndarray  # (n,) hour of the commute home
    on_trip: np.ndarray
    run_today: np.ndarray
    run_h: np.ndarray
    out_today: np.ndarray
    out_start: np.ndarray
    out_drive: np.ndarray  # drives to the outing (car owners)
    walk_h: np.ndarray  # light exercisers' walk hour today, -1 none
    band_worn: np.ndarray
    anchor_county: np.ndarray  # (n, N_PLACES)
    anchor_lat: np.ndarray
    anchor_lon: np.ndarray
    current_city: np.ndarray  # (n, 24) city index of where the person is


def build_schedule(pop: Population, geo: Geo, rng: np.random.Generator, *, day: int,
                   rest: bool) -> Schedule:
    t, n = pop.traits, pop.n
    H = HOURS
    rel = day - t["trip_start"]
    on_trip = (t["trip_kind"] > 0) & (rel >= 0) & (rel < t["trip_len"])
    trip_first = on_trip & (rel == 0)
    trip_last = on_trip & (rel == t["trip_len"] - 1)
    wake = t["wake"] + (rng.choice([0, 1, 2], n, p=[0.3, 0.4, 0.3]) if rest else 0)
    sleep = np.minimum(t["sleep"] + (rng.random(n) < (0.5 if rest else 0.1)), 24)
    sick = rng.random(n) < 0.03
    works = t["employed"] & (not rest) & ~on_trip & ~sick
    late = works & (rng.random(n) < t["late_p"])
    end = np.where(late, rng.integers(20, 23, n), t["end"])
    run_today = (t["exercise"] == 2) & (rng.random(n) < t["run_days"] / 7) & ~on_trip
    run_today &= ~(late & t["run_evening"])
    run_h = np.where(t["run_evening"], 20, np.minimum(wake, 7))
    wake = np.where(run_today & ~t["run_evening"], np.minimum(wake, run_h), wake)
    asleep = (H < wake[:, None]) | (H >= sleep[:, None])
    place = np.where(asleep, SLEEP, HOME).astype(np.int8)
    place[works[:, None] & (H > t["leave"][:, None]) & (H < end[:, None])] = OFFICE
    place[works[:, None] & ((H == t["leave"][:, None]) | (H == end[:, None]))] = COMMUTE

    p_out = np.where(rest, 0.55, np.where(works, np.where(late, 0.0, 0.12), 0.3))
    out_today = (rng.random(n) < p_out) & ~on_trip
    out_start = np.where(works, end + 1, rng.integers(10, 17, n))
    out_len = np.where(works, rng.integers(1, 3, n), rng.integers(2, 5, n))
    out_mask = (out_today[:, None] & (H >= out_start[:, None])
                & (H < (out_start + out_len)[:, None]) & (place == HOME))
    place[out_mask] = OUT
    out_today &= out_mask.any(axis=1)
    out_drive = out_today & t["owns_car"] & (rng.random(n) < 0.7)
    place[run_today[:, None] & (H == run_h[:, None]) & (place != OFFICE)] = RUN
    walk_h = np.where((t["exercise"] == 1) & (rng.random(n) < 0.5) & ~on_trip,
                      np.where(works, 12, 19), -1)

    # Trips: leave from the home city's hub on the first day, come back on the last.
    t_h = rng.integers(8, 15, n)
    r_h = rng.integers(12, 20, n)
    away = (trip_first[:, None] & (H > t_h[:, None])) | (on_trip & ~trip_first & ~trip_last)[:, None] \
        | (trip_last[:, None] & (H < r_h[:, None]))
    hub = (trip_first[:, None] & (H == t_h[:, None])) | (trip_last[:, None] & (H == r_h[:, None]))
    place = np.where(away, np.where(asleep, TRIP_SLEEP, TRIP), place).astype(np.int8)
    place[hub] = HUB
    place[on_trip[:, None] & (place == OUT)] = HOME

    home_c, work_c = t["home_county"], np.maximum(t["work_county"], 0)
    city = t["city"]
    cf, cn = geo.city_first[city], geo.city_ncounty[city]
    out_c = np.where(rng.random(n) < 0.6, home_c, cf + rng.integers(0, 1 << 20, n) % cn)
    tc = np.maximum(t["trip_county"], 0)
    tcity = geo.county_city[tc]
    hub_c = np.where(trip_first, geo.city_hub[city], geo.city_hub[tcity])
    gid = t["gid"]
    jitter = ((gid * 2654435761) % 1000) / 1000 - 0.5
    county = np.stack([home_c, home_c, home_c, work_c, out_c, home_c, tc, tc, hub_c], axis=1)
    lat = np.stack([t["home_lat"], t["home_lat"], t["home_lat"], np.nan_to_num(t["work_lat"]),
                    geo.county_lat[out_c] + rng.normal(0, 0.01, n), t["home_lat"],
                    geo.county_lat[tc] + 0.02 * jitter, geo.county_lat[tc] + 0.02 * jitter,
                    geo.county_lat[hub_c] + 0.01], axis=1)
    lon = np.stack([t["home_lon"], t["home_lon"], t["home_lon"], np.nan_to_num(t["work_lon"]),
                    geo.county_lon[out_c] + rng.normal(0, 0.012, n), t["home_lon"],
                    geo.county_lon[tc] - 0.02 * jitter, geo.county_lon[tc] - 0.02 * jitter,
                    geo.county_lon[hub_c] + 0.012], axis=1)
    cur_county = np.take_along_axis(county, place.astype(np.int64), axis=1)
    current_city = geo.county_city[cur_county]
    band_worn = t["has_band"] & (rng.random(n) < 0.88)
    return Schedule(place=place, works=works, late=late, end=end, on_trip=on_trip,
                    run_today=run_today, run_h=run_h, out_today=out_today, out_start=out_start,
                    out_drive=out_drive, walk_h=walk_h, band_worn=band_worn, anchor_county=county,
                    anchor_lat=lat, anchor_lon=lon, current_city=current_city)


def scene_masks(pop: Population, s: Schedule, *, rest: bool, cold_city: np.ndarray,
                hot_city: np.ndarray) -> dict[str, np.ndarray]:
    """True scenes per person and hour that follow from the schedule alone."""
    t = pop.traits
    H = HOURS
    pl = s.place
    commuting = pl == COMMUTE
    mode = t["commute"][:, None]
    at_home = (pl == HOME) | (pl == SLEEP)
    awake = (pl != SLEEP) & (pl != TRIP_SLEEP)
    travel = (pl == TRIP) | (pl == TRIP_SLEEP) | (pl == HUB)
    kind = t["trip_kind"][:, None]
    drive_out = s.out_drive[:, None] & (pl == OUT) & (H == s.out_start[:, None])
    return {
        "commute_taxi": commuting & (mode == 1),
        "commute_transit": commuting & (mode == 2),
        "commute_drive": commuting & (mode == 3),
        "in_car": (commuting & ((mode == 1) | (mode == 3))) | drive_out,
        "at_office": pl == OFFICE,
        "working_late": (pl == OFFICE) & s.late[:, None] & (H >= t["end"][:, None]),
        "lunch_break": (pl == OFFICE) & (H == 12),
        "business_trip": travel & (kind == 1),
        "holiday_travel": travel & (kind == 2),
        "at_airport_station": pl == HUB,
        "shopping_mall": pl == OUT,
        "running": pl == RUN,
        "sleeping": ~awake,
        "at_home_evening": (pl == HOME) & (H >= 18),
        "weekend_morning": (pl == HOME) & (H >= 7) & (H < 12) if rest else np.zeros_like(awake),
        "on_home_wifi": at_home & t["uses_home_wifi"][:, None],
        "cold_snap": awake & cold_city[s.current_city],
        "heat_wave": awake & hot_city[s.current_city],
    }
