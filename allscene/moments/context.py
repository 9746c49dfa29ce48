"""Context the scene engine reads besides a person's events: the calendar and the weather.

Times are UTC microseconds; the platform's local time is Asia/Shanghai (UTC+8, no DST).

Examples
--------
>>> cal = Calendar.load()
>>> t = 1_790_000_000_000_000  # 2026-09-21 14:13 UTC: Monday 22:13 in Beijing
>>> cal.at(t)
(22, 1, 21, 9, 'workday', False, False)
>>> wx = WeatherContext()
>>> wx.add_one("110100", t, temp_c=12.5, condition="rain", aqi=80, humidity=90.0)
>>> wx.get("110100", t)[:2], wx.get("110100", t + HOUR_US)[:2]
((12.5, 'rain'), (None, None))
"""

from __future__ import annotations

import datetime as dt
import json
from importlib import resources

import pyarrow as pa

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
LOCAL_US = 8 * HOUR_US
NO_WEATHER = (None, None, None, None, None, None)


def local_hour(t: int) -> int:
    """Hours since 1970-01-01 00:00 local time: the key of an hour of the local clock."""
    return (t + LOCAL_US) // HOUR_US


class Calendar:
    """Work and rest days: weekends and public holidays rest, make-up workdays work.

    ``at(t)`` is ``(hour, weekday, mday, month, day, holiday, first_rest_day)`` of the local
    hour of ``t``; ``day`` is ``"workday"`` or ``"restday"``.
    """

    def __init__(self, holidays: set[str], workdays: set[str]):
        self.holidays, self.workdays = holidays, workdays
        self._cache: dict[int, tuple] = {}

    @classmethod
    def load(cls) -> Calendar:
        """The platform's calendar (``moments/data/calendar.json``)."""
        text = resources.files("allscene.moments").joinpath("data/calendar.json").read_text()
        data = json.loads(text)
        return cls(set(data["holidays"]), set(data["workdays"]))

    def rest(self, day: dt.date) -> bool:
        iso = day.isoformat()
        if iso in self.workdays:
            return False
        return iso in self.holidays or day.weekday() >= 5

    def at(self, t: int) -> tuple:
        h = local_hour(t)
        out = self._cache.get(h)
        if out is None:
            day = dt.date(1970, 1, 1) + dt.timedelta(days=h // 24)
            rest = self.rest(day)
            first = rest and not self.rest(day - dt.timedelta(days=1))
            out = (h % 24, day.isoweekday(), day.day, day.month,
                   "restday" if rest else "workday", day.isoformat() in self.holidays, first)
            self._cache[h] = out
        return out


class WeatherContext:
    """Hourly weather per city, with the change since yesterday and the 7-day anomaly.

    ``get(city, t)`` is ``(temp_c, condition, aqi, humidity, temp_change_24h, anomaly)`` of
    the city at the local hour of ``t`` (:data:`NO_WEATHER` when not reported). The anomaly is
    the temperature minus the mean of the same hour on the previous seven days that were
    reported (at least three).
    """

    def __init__(self) -> None:
        self._hours: dict[tuple[str, int], tuple] = {}
        self._by_hour: dict[int, dict[str, tuple]] = {}

    def add_one(self, city: str, t: int, *, temp_c: float, condition: str,
                aqi: float | None = None, humidity: float | None = None) -> None:
        h = local_hour(t)
        prev = self._hours.get((city, h - 24))
        change = None if prev is None else round(temp_c - prev[0], 1)
        past = [x[0] for d in range(1, 8) if (x := self._hours.get((city, h - 24 * d)))]
        anomaly = round(temp_c - sum(past) / len(past), 1) if len(past) >= 3 else None
        self._hours[(city, h)] = self._by_hour.setdefault(h, {})[city] = (
            temp_c, condition, aqi, humidity, change, anomaly)

    def add_many(self, table: pa.Table) -> int:
        """Add the ``weather`` events of an event table, in time order; returns how many."""
        w = table.filter(pa.compute.equal(table["kind"], "weather"))
        if not w.num_rows:
            return 0
        w = w.sort_by([("ts", "ascending")])
        ts = w["ts"].cast(pa.int64()).to_numpy()
        cols = [w[c].to_pylist() for c in ("city_code", "temp_c", "condition", "aqi", "humidity")]
        for t, city, temp, cond, aqi, hum in zip(ts.tolist(), *cols, strict=True):
            self.add_one(city, t, temp_c=temp, condition=cond, aqi=aqi, humidity=hum)
        return w.num_rows

    def hours(self, h0: int, h1: int) -> list[tuple[str, int, tuple]]:
        """``(city, local hour, weather)`` reported for local hours ``h0..h1``."""
        return [(c, h, x) for h in range(h0, h1 + 1)
                for c, x in self._by_hour.get(h, {}).items()]

    def get(self, city: str | None, t: int) -> tuple:
        if city is None:
            return NO_WEATHER
        return self._hours.get((city, local_hour(t)), NO_WEATHER)
