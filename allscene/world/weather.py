"""Hourly weather of every city: temperature, condition, AQI and humidity.

Temperature follows latitude, elevation, season and a diurnal cycle, plus a day-to-day
anomaly; now and then a cold snap (north) or a heat wave (south) lasts a few days. Rain comes
in spells, AQI is worse in the north and inland, is washed out by rain and cold fronts, and
turns the sky to haze when very bad. Deterministic in ``(seed, start, days)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from allscene.world.geo import Geo

CONDITIONS = ("sunny", "cloudy", "overcast", "rain", "snow", "fog", "haze")


@dataclass
class Weather:
    """Arrays of shape (n_city, days, 24) in local hours (Asia/Shanghai)."""

    temp: np.ndarray
    condition: np.ndarray  # index into CONDITIONS
    aqi: np.ndarray
    humidity: np.ndarray
    cold_snap: np.ndarray  # bool (n_city, days)
    heat_wave: np.ndarray


def build_weather(geo: Geo, *, seed: int, start: dt.date, days: int) -> Weather:
    rng = np.random.default_rng([seed, 3])
    nc = geo.n_city
    lat, elev = geo.city_lat, geo.city_elev
    doy = np.array([(start + dt.timedelta(days=d)).timetuple().tm_yday for d in range(days)])
    annual = 28.5 - 0.9 * (lat - 20) - 5.0 * elev / 1000
    amp = 4 + 0.55 * (lat - 20)
    season = annual[:, None] - amp[:, None] * np.cos(2 * np.pi * (doy[None, :] - 15) / 365)
    anom = np.zeros((nc, days))
    a = rng.normal(0, 1.8, nc)
    eps = rng.normal(0, 1.8, (nc, days))
    for d in range(days):  # AR(1) over days: a loop over days, not events
        a = 0.65 * a + eps[:, d]
        anom[:, d] = a
    north = lat > 33
    cold = np.zeros((nc, days), dtype=bool)
    heat = np.zeros((nc, days), dtype=bool)
    has_cold = rng.random(nc) < np.where(north, 0.35, 0.15) * days / 14
    cs = rng.integers(0, max(days, 1), nc)
    cl = rng.integers(2, 4, nc)
    has_heat = (rng.random(nc) < np.where(north, 0.03, 0.12) * days / 14) & ~has_cold
    hs = rng.integers(0, max(days, 1), nc)
    hl = rng.integers(2, 5, nc)
    dd = np.arange(days)[None, :]
    cold = has_cold[:, None] & (dd >= cs[:, None]) & (dd < (cs + cl)[:, None])
    heat = has_heat[:, None] & (dd >= hs[:, None]) & (dd < (hs + hl)[:, None])
    depth = rng.uniform(5, 8, nc)[:, None]
    day_t = season + anom - cold * depth + heat * rng.uniform(3, 4.5, nc)[:, None]

    # Rain spells: a two-state Markov chain per city; a cold front brings rain on its first day.
    p_start = np.where(lat < 30, 0.2, np.where(north, 0.1, 0.15))
    rain_day = np.zeros((nc, days), dtype=bool)
    r = rng.random(nc) < p_start
    u = rng.random((nc, days))
    for d in range(days):
        r = np.where(r, u[:, d] < 0.5, u[:, d] < p_start)
        rain_day[:, d] = r
    rain_day |= cold & (dd == cs[:, None])
    h = np.arange(24)[None, None, :]
    rs = rng.integers(0, 16, (nc, days))[:, :, None]
    rl = rng.integers(4, 12, (nc, days))[:, :, None]
    raining = rain_day[:, :, None] & (h >= rs) & (h < rs + rl)
    diurnal = np.where(rain_day, 2.0, 4.5)[:, :, None] * np.cos(2 * np.pi * (h - 15) / 24)
    temp = day_t[:, :, None] + diurnal - raining * 1.5 + rng.normal(0, 0.4, (nc, days, 24))

    base = 45 + 45 * north + 15 * (geo.city_tier <= 2) * north - 10 * (lat < 26)
    la = np.zeros((nc, days))
    x = rng.normal(0, 0.3, nc)
    e2 = rng.normal(0, 0.35, (nc, days))
    for d in range(days):
        x = 0.6 * x + e2[:, d]
        la[:, d] = x
    aqi_day = base[:, None] * np.exp(la) * np.where(rain_day, 0.55, 1.0) * np.where(cold, 0.45, 1.0)
    night = 1 + 0.15 * np.cos(2 * np.pi * (h - 1) / 24)
    aqi = np.clip(aqi_day[:, :, None] * night * np.exp(rng.normal(0, 0.08, (nc, days, 24))), 5, 500)

    sky = rng.choice(3, (nc, days), p=[0.45, 0.35, 0.2])[:, :, None]
    cond = np.broadcast_to(sky, (nc, days, 24)).copy()
    hum = np.clip(55 + 15 * (lat < 30)[:, None, None] - 12 * np.cos(2 * np.pi * (h - 3) / 24)
                  + rng.normal(0, 5, (nc, days, 24)), 15, 100)
    fog = (h >= 5) & (h <= 8) & (hum > 75) & (rng.random((nc, days, 1)) < 0.15)
    cond = np.where(aqi > 200, 6, cond)
    cond = np.where(fog, 5, cond)
    cond = np.where(raining, np.where(temp < 0.5, 4, 3), cond)
    hum = np.where(raining, np.clip(hum + 30, 0, 100), hum)
    return Weather(temp=np.round(temp, 1), condition=cond.astype(np.int64),
                   aqi=np.round(aqi).astype(np.int64), humidity=np.round(hum, 1),
                   cold_snap=cold, heat_wave=heat)
