"""Per-person state of the scene engine, and the window aggregates conditions call.

Bounded: the last time each signal matched (one entry per signal of the catalog), windows of
at most :data:`MAX_SERIES` values for aggregates, the active scenes, place, network and city.
"""

from __future__ import annotations

from collections import deque

MAX_SERIES = 64
NEVER_EXP = 1 << 62


def _count(d, t, w):
    if not d:
        return 0
    lo = t - w
    return sum(1 for ts, _ in d if ts >= lo)


def _sum(d, t, w):
    if not d:
        return 0
    lo = t - w
    return sum(v for ts, v in d if ts >= lo and v is not None)


def _max(d, t, w):
    lo = t - w
    vals = [v for ts, v in d or () if ts >= lo and v is not None]
    return max(vals) if vals else None


def _min(d, t, w):
    lo = t - w
    vals = [v for ts, v in d or () if ts >= lo and v is not None]
    return min(vals) if vals else None


def _last(d, t, w):
    if not d:
        return None
    ts, v = d[-1]
    return v if w == 0 or ts >= t - w else None


class PersonState:
    __slots__ = ("last", "vals", "active", "place", "moved", "network", "city", "home_city",
                 "away", "trip_day", "work_end", "hour", "next_exp")

    def __init__(self, home_city: str | None):
        self.last: dict[int, int] = {}
        self.vals: dict[int, deque] = {}
        self.active: dict[int, list[int]] = {}  # scene -> [entered at, holds until]
        self.place = "unknown"
        self.moved = False
        self.work_end: int | None = None
        self.network: str | None = None
        self.city: str | None = None
        self.home_city = home_city
        self.away = False
        self.trip_day: str | None = None
        self.hour = -1
        self.next_exp = NEVER_EXP
