"""Who an event is about, and where: device → people, and the place class and city it shows.

* **People**: a phone, band or car belongs to its person; an appliance (TV, speaker, purifier,
  robot vacuum, router) to every member of its household (identity graph).
* **Place class**: each person's own places are learnt from their history
  (:func:`place_keys`): a Wi-Fi network, a fixed-line IP /24 or a cell seen mostly at night
  is ``home``, one seen mostly on weekday working hours is ``work``. A location ping or Wi-Fi
  join is then ``home``, ``work`` or ``other``; other events carry no place.
* **City**: the serving cell's city (cell tower table), else the geo-IP city of a fixed line.

:meth:`Resolver.resolve_one` (a live event as a dict) and :meth:`Resolver.resolve_many` (an
Arrow batch) give the same answers; a test holds them to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ibis import _

NIGHT = (22, 6)
JOIN_NIGHT = (20, 8)
WORK_HOURS = (10, 17)
LEAVE_QUANTILE = 0.2  # of the hours a person left work: late days only make it later
PLACE_KINDS = ("location", "wifi_connect")


def place_keys(events: ibis.Table, devices: ibis.Table, tz_hours: int = 8,
               min_nights: int = 4, min_workdays: int = 3) -> ibis.Table:
    """``person_id, key, place``: each person's home and work networks and cells.

    A key is ``b:`` + BSSID, ``i:`` + the first three octets of a Wi-Fi IP, or ``c:`` + cell
    id. A key seen at night (22:00-06:00; for a Wi-Fi join 20:00-08:00) on ``min_nights``
    local dates or more, and on half the nights the person was seen, is home (a hotel on a
    trip is not); one never seen at night more than once, and seen on
    ``min_workdays`` weekdays or more between 10:00 and 17:00, is work.
    """
    k = _observations(events, devices, tz_hours)
    # A phone joins its home Wi-Fi when it comes home or wakes, seldom in the dead of night.
    is_b = k.key.startswith("b:")
    night = is_b.ifelse((k.hour >= JOIN_NIGHT[0]) | (k.hour < JOIN_NIGHT[1]),
                        (k.hour >= NIGHT[0]) | (k.hour < NIGHT[1]))
    work = (k.dow < 5) & (k.hour >= WORK_HOURS[0]) & (k.hour < WORK_HOURS[1])
    k = k.mutate(night=night.cast("int64"), night_date=night.ifelse(k.date, None),
                 work_date=work.ifelse(k.date, None))
    votes = k.group_by(["person_id", "key"]).aggregate(
        night=_.night.sum(), nights=_.night_date.nunique(), workdays=_.work_date.nunique())
    # A home is seen on at least half the nights the person was seen at all: a hotel on a
    # five-night holiday in a fortnight is not.
    seen = k.group_by("person_id").aggregate(all_nights=_.night_date.nunique())
    votes = votes.join(seen, "person_id")
    # Joins are rarer than pings (arrivals and wake-ups): two nights make a home network.
    need = votes.key.startswith("b:").ifelse(
        2, ibis.greatest(min_nights, (votes.all_nights * 0.5).ceil().cast("int64")))
    place = ibis.cases((votes.nights >= need, "home"),
                       ((votes.night <= 1) & (votes.workdays >= min_workdays), "work"),
                       else_=ibis.null("string"))
    return votes.mutate(place=place).filter(_.place.notnull()).select(
        "person_id", "key", "place")


def _observations(events: ibis.Table, devices: ibis.Table, tz_hours: int) -> ibis.Table:
    """``device_id, person_id, ts, hour, dow, date, key``: every place key a person's device saw."""
    e = events.filter(_.kind.isin(PLACE_KINDS))
    local = e.ts + ibis.interval(hours=tz_hours)
    e = e.mutate(hour=local.hour(), dow=local.day_of_week.index(), date=local.date())
    prefix = e.ip.re_extract(r"^([0-9]+\.[0-9]+\.[0-9]+)\.", 1)
    cols = ("device_id", "ts", "hour", "dow", "date")
    keys = [
        e.filter(_.kind == "wifi_connect").select(*cols, key="b:" + _.bssid),
        e.filter((_.kind == "location") & (_.network == "wifi") & _.ip.notnull())
         .select(*cols, key="i:" + prefix),
        e.filter((_.kind == "location") & _.cell_id.notnull())
         .select(*cols, key="c:" + _.cell_id),
    ]
    k = keys[0].union(keys[1]).union(keys[2]).filter(_.key.notnull() & (_.key != "i:"))
    people = devices.filter(_.person_id.notnull()).select("device_id", "person_id")
    return k.join(people, "device_id")


def work_end_hours(events: ibis.Table, devices: ibis.Table, keys: ibis.Table,
                   tz_hours: int = 8) -> ibis.Table:
    """``person_id, work_end``: the local hour a person usually leaves work.

    On each weekday a person was seen at one of their work places, the hour they left is the
    hour of the first sighting elsewhere after the last sighting at work; ``work_end`` is a
    low quantile (:data:`LEAVE_QUANTILE`) of those hours. The first sighting away is sharper
    than the last at work: a phone at a desk may go quiet for an hour, while the way home is
    seen within minutes. Late days only move the hour later, so a low quantile, not the
    median, is the usual hour for people who often stay late.
    """
    k = _observations(events, devices, tz_hours).filter(_.dow < 5)
    work = keys.filter(_.place == "work").select("person_id", "key", w=ibis.literal(1))
    k = k.left_join(work, ["person_id", "key"]).select(
        "person_id", "date", "ts", at_work=_.w.notnull(), net=~_.key.startswith("c:"))

    def left_at(at: ibis.Value) -> ibis.Table:
        x = k.mutate(at=at)
        last = x.filter(_.at).group_by(["person_id", "date"]).aggregate(last=_.ts.max())
        away = x.filter(~_.at_work).join(last, ["person_id", "date"]).filter(_.ts > _.last)
        left = away.group_by(["person_id", "date"]).aggregate(first=_.ts.min())
        return left.group_by("person_id").aggregate(
            h=(left.first + ibis.interval(hours=tz_hours)).hour().quantile(LEAVE_QUANTILE))

    # The office network when the person has one: cells near the office are also seen on the
    # way home, so for them the first sighting off the office network counts.
    net, cell = left_at(_.at_work & _.net), left_at(_.at_work)
    both = cell.left_join(net, "person_id")
    return both.select("person_id", work_end=ibis.coalesce(both.h_right, both.h)
                       .round().cast("int64"))


@dataclass
class Resolved:
    """Per event row (repeated for each person it concerns): arrays of equal length."""

    row: np.ndarray  # index of the event in the input table
    person: np.ndarray  # person index in Resolver.people
    place: list  # "home" | "work" | "other" | None
    city: list  # city code | None
    network: list  # "wifi" | "cellular" | None


class Resolver:
    """Resolution tables held in memory (a few bytes per device, key and tower)."""

    def __init__(self, devices: pa.Table, people: pa.Table, keys: pa.Table,
                 towers: pa.Table, geoip: pa.Table, regions: pa.Table,
                 work_end: pa.Table | None = None):
        self.people: list[str] = sorted(set(people["person_id"].to_pylist()))
        self.index = {p: i for i, p in enumerate(self.people)}
        members: dict[str, list[int]] = {}
        for p, h in zip(people["person_id"].to_pylist(), people["household_id"].to_pylist(),
                        strict=True):
            if h is not None and p in self.index:
                members.setdefault(h, []).append(self.index[p])
        dev: dict[str, tuple[int, ...]] = {}
        for d, p, h in zip(devices["device_id"].to_pylist(), devices["person_id"].to_pylist(),
                           devices["household_id"].to_pylist(), strict=True):
            if p is not None and p in self.index:
                dev[d] = (self.index[p],)
            elif h is not None and h in members:
                dev[d] = tuple(sorted(members[h]))
        self.devices = dev
        self.keys: dict[tuple[int, str], str] = {
            (self.index[p], k): c for p, k, c in zip(
                keys["person_id"].to_pylist(), keys["key"].to_pylist(),
                keys["place"].to_pylist(), strict=True) if p in self.index}
        county_city = dict(zip(regions["county_code"].to_pylist(),
                               regions["city_code"].to_pylist(), strict=True))
        self.cell_city = {c: county_city.get(k) for c, k in zip(
            towers["cell_id"].to_pylist(), towers["county_code"].to_pylist(), strict=True)}
        self.work_end: dict[int, int] = {} if work_end is None else {
            self.index[p]: h for p, h in zip(work_end["person_id"].to_pylist(),
                                             work_end["work_end"].to_pylist(), strict=True)
            if p in self.index and h is not None}
        fixed = pc.not_equal(geoip["connection"], "mobile")
        g = geoip.filter(fixed)
        self.ip_city = {p[:-5]: c for p, c in zip(g["prefix"].to_pylist(),
                                                  g["city_code"].to_pylist(), strict=True)}

    # --- one event -------------------------------------------------------------------------

    def resolve_one(self, e: dict) -> list[tuple[int, str | None, str | None, str | None]]:
        """``[(person, place, city, network)]`` for one event (one per person it concerns)."""
        people = self.devices.get(e.get("device_id"), ())
        kind = e.get("kind")
        if kind not in PLACE_KINDS or not people:
            return [(p, None, None, None) for p in people]
        out = []
        for p in people:
            if kind == "wifi_connect":
                k1, k2 = _key("b:", e.get("bssid")), None
            else:
                ip = e.get("ip")
                k1 = _key("i:", _prefix(ip)) if e.get("network") == "wifi" else None
                k2 = _key("c:", e.get("cell_id"))
            place = self.keys.get((p, k1)) or self.keys.get((p, k2)) or "other"
            city = network = None
            if kind == "location":
                network = e.get("network")
                city = self.cell_city.get(e.get("cell_id")) or (
                    self.ip_city.get(_prefix(e.get("ip"))) if network == "wifi" else None)
            out.append((p, place, city, network))
        return out

    # --- a batch ---------------------------------------------------------------------------

    def resolve_many(self, t: pa.Table) -> Resolved:
        n = t.num_rows
        dev = t["device_id"].to_pylist()
        rows: list[int] = []
        persons: list[int] = []
        get = self.devices.get
        for i, d in enumerate(dev):
            ps = get(d)
            if ps:
                if len(ps) == 1:
                    rows.append(i)
                    persons.append(ps[0])
                else:
                    rows.extend([i] * len(ps))
                    persons.extend(ps)
        row = np.asarray(rows, dtype=np.int64)
        person = np.asarray(persons, dtype=np.int64)
        m = len(row)
        place: list = [None] * m
        city: list = [None] * m
        network: list = [None] * m
        is_place = pc.is_in(t["kind"], value_set=pa.array(PLACE_KINDS)).to_numpy(
            zero_copy_only=False)
        sel = np.flatnonzero(is_place[row]) if n else np.array([], np.int64)
        if len(sel):
            sub = t.take(pa.array(row[sel]))
            kind = sub["kind"].to_pylist()
            bssid, ip = sub["bssid"].to_pylist(), sub["ip"].to_pylist()
            net, cell = sub["network"].to_pylist(), sub["cell_id"].to_pylist()
            keys, cells, ips = self.keys, self.cell_city, self.ip_city
            for j, s in enumerate(sel.tolist()):
                p = persons[s]
                if kind[j] == "wifi_connect":
                    k1, k2 = _key("b:", bssid[j]), None
                else:
                    k1 = _key("i:", _prefix(ip[j])) if net[j] == "wifi" else None
                    k2 = _key("c:", cell[j])
                    network[s] = net[j]
                    city[s] = cells.get(cell[j]) or (
                        ips.get(_prefix(ip[j])) if net[j] == "wifi" else None)
                place[s] = keys.get((p, k1)) or keys.get((p, k2)) or "other"
        return Resolved(row, person, place, city, network)


def _key(prefix: str, value: str | None) -> str | None:
    return None if value is None else prefix + value


def _prefix(ip: str | None) -> str | None:
    if not ip:
        return None
    cut = ip.rfind(".")
    return ip[:cut] if cut > 0 else None
