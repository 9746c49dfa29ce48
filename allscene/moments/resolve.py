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
from typing import NamedTuple

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

    row: np.ndarray  # int64: index of the event in the input table
    person: np.ndarray  # int64: person index in Resolver.people
    place: pa.Array  # string: "home" | "work" | "other" | null
    city: pa.Array  # string: city code | null
    network: pa.Array  # string: "wifi" | "cellular" | null


class _Side(NamedTuple):
    """A value set of raw event values (a BSSID, an IP prefix or a cell id; a null for None)
    and, for each, the index of its place key (``b:``, ``i:`` or ``c:`` + value) and its city
    code; ``-1`` for none. Both arrays end with a ``-1`` for a value not in the set."""

    values: pa.Array
    key: np.ndarray
    city: np.ndarray


@dataclass
class _Bulk:
    """Look-up tables of :meth:`Resolver.resolve_many`, built once from the resolver's dicts.

    A value found with ``mapping.get(k) or ...`` is left out when falsy, as the ``or`` falls
    through it as through a miss (the IP city, the last operand, only when None); so a
    look-up gives a code (of :attr:`names`) or ``-1``.
    """

    names: pa.Array  # string: place and city values, "other" first
    dev_ids: pa.Array  # string: device ids (a None key as a null)
    dev_start: np.ndarray  # device j's persons: dev_persons[dev_start[j]:dev_start[j + 1]]
    dev_persons: np.ndarray
    n_people: int
    key_codes: pa.Array  # int64: key index * n_people + person, for each (person, key)
    key_place: np.ndarray  # its place code, then a -1
    none_key: int  # index of the key None (-1 if there is none)
    bssid: _Side
    prefix: _Side
    cell: _Side


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
        """Resolve an Arrow batch of events at once, as :meth:`resolve_one` does each row.

        Parameters
        ----------
        t : pa.Table
            Events with ``device_id`` and ``kind``; ``bssid``, ``ip``, ``network`` and
            ``cell_id`` are read when some row of a known device is a place kind.

        Returns
        -------
        Resolved
            One entry per (row, person of the row's device), by row then person; rows of
            unknown devices give none.
        """
        b = self._tables()
        n = t.num_rows
        d = _index(_text(t["device_id"]), b.dev_ids)
        start = b.dev_start[np.maximum(d, 0)]
        count = np.where(d >= 0, b.dev_start[d + 1] - start, 0)
        row = np.repeat(np.arange(n, dtype=np.int64), count)
        m = len(row)
        first = np.cumsum(count) - count  # where each input row's entries begin
        person = b.dev_persons[np.repeat(start - first, count) + np.arange(m, dtype=np.int64)]
        place, city, net_row = (np.full(m, -1, np.int64) for _ in range(3))
        is_place = pc.is_in(t["kind"], value_set=pa.array(PLACE_KINDS)).to_numpy(
            zero_copy_only=False) if m else np.zeros(n, np.bool_)
        rows = np.flatnonzero(is_place & (count > 0))  # input rows needing a place
        network = pa.nulls(m, pa.string())
        if len(rows):
            k1, k2, loc, city_of = self._places(t, pa.array(rows), b)
            c = count[rows]
            at = np.repeat(np.arange(len(rows)), c)  # entry → its row's position in rows
            sel = np.repeat(first[rows] - (np.cumsum(c) - c), c) + np.arange(len(at))
            v1, v2 = (_key_place(b, k[at], person[sel]) for k in (k1, k2))
            place[sel] = np.where(v1 >= 0, v1, np.where(v2 >= 0, v2, 0))  # 0: "other"
            city[sel] = city_of[at]
            net_row[sel] = np.where(loc[at], row[sel], -1)
            network = _flat(_text(t["network"]).take(_masked(net_row)))
        return Resolved(row, person, b.names.take(_masked(place)),
                        b.names.take(_masked(city)), network)

    def _places(self, t: pa.Table, rows: pa.Array,
                b: _Bulk) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For place-kind rows: indices of the first and second place keys (``-1``: no key),
        whether it is a location, and the city code (``-1``: none)."""
        kind, bssid, ip, net, cell = (_flat(_text(t[c]).take(rows)) for c in (
            "kind", "bssid", "ip", "network", "cell_id"))
        wifi = pc.equal(kind, "wifi_connect").to_numpy(zero_copy_only=False)
        on_wifi = pc.fill_null(pc.equal(net, "wifi"), False).to_numpy(zero_copy_only=False)
        bi, pi, ci = (_index(v, side.values) for v, side in (
            (bssid, b.bssid), (_prefixes(ip), b.prefix), (cell, b.cell)))
        k1 = np.where(wifi, b.bssid.key[bi], np.where(on_wifi, b.prefix.key[pi], b.none_key))
        k2 = np.where(wifi, b.none_key, b.cell.key[ci])
        by_cell = b.cell.city[ci]
        city = np.where(wifi, -1, np.where(by_cell >= 0, by_cell,
                                           np.where(on_wifi, b.prefix.city[pi], -1)))
        return k1, k2, ~wifi, city

    def _tables(self) -> _Bulk:
        """The :class:`_Bulk` look-up tables, built on first use and kept on the instance."""
        bulk = getattr(self, "_bulk", None)
        if bulk is None:
            bulk = self._bulk = self._build_tables()
        return bulk

    def _build_tables(self) -> _Bulk:
        """Arrow value sets and numpy code arrays from ``devices``, ``keys``, ``cell_city`` and
        ``ip_city`` (a later change to those dicts is not seen by a resolver already used)."""
        names: dict[str, int] = {"other": 0}

        def code(v: str) -> int:
            return names.setdefault(v, len(names))

        n_people = max(len(self.people), 1)
        key_ids: dict[str | None, int] = {}
        items = [(key_ids.setdefault(k, len(key_ids)) * n_people + p, code(v))
                 for (p, k), v in self.keys.items() if v]
        none_key = key_ids.get(None, -1)

        def side(tag: str, cities: dict, last: bool = False) -> _Side:
            found: dict[str | None, list[int]] = {None: [none_key, -1]}
            for k, i in key_ids.items():
                if k is not None and k.startswith(tag):
                    found.setdefault(k[len(tag):], [-1, -1])[0] = i
            for k, v in cities.items():
                if v or (last and v is not None):  # the last operand of an ``or`` is kept
                    found.setdefault(k, [-1, -1])[1] = code(v)
            key, city = zip(*found.values(), strict=True)
            return _Side(pa.array(list(found), pa.string()),
                         np.array([*key, -1], np.int64), np.array([*city, -1], np.int64))

        devs = list(self.devices.items())
        size = np.array([len(ps) for _, ps in devs], np.int64)
        sides = side("b:", {}), side("i:", self.ip_city, last=True), side("c:", self.cell_city)
        return _Bulk(
            names=pa.array(list(names), pa.string()),  # after the sides: they add city names
            dev_ids=pa.array([d for d, _ in devs], pa.string()),
            dev_start=np.concatenate([[0], np.cumsum(size)]).astype(np.int64),
            dev_persons=np.array([p for _, ps in devs for p in ps], np.int64),
            n_people=n_people, key_codes=pa.array([c for c, _ in items], pa.int64()),
            key_place=np.array([v for _, v in items] + [-1], np.int64), none_key=none_key,
            bssid=sides[0], prefix=sides[1], cell=sides[2])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_bulk", None)  # rebuilt on first use; keeps pickles as they were
        return state


def _text(col: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return col if col.type == pa.string() else col.cast(pa.string())


def _flat(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _masked(idx: np.ndarray) -> pa.Array:
    """Take indices with ``-1`` as null (taking a null gives a null)."""
    return pa.array(idx, pa.int64(), mask=idx < 0)


def _index(values: pa.Array | pa.ChunkedArray, value_set: pa.Array) -> np.ndarray:
    """Position of each value in ``value_set``, ``-1`` when absent (a null finds a null)."""
    i = pc.index_in(values, value_set=value_set, skip_nulls=False)
    return pc.fill_null(i, -1).to_numpy().astype(np.int64, copy=False)


def _key_place(b: _Bulk, key: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Place code of each (key index, person) pair, ``-1`` when the person has no such key."""
    q = np.where(key >= 0, key * b.n_people + person, -1)
    return b.key_place[_index(pa.array(q), b.key_codes)]


def _prefixes(ip: pa.Array) -> pa.Array:
    """:func:`_prefix` of each IP: up to its last dot when that is not the first character."""
    parts = pc.split_pattern(ip, ".", max_splits=1, reverse=True)
    head = pc.list_element(parts, 0)
    ok = pc.and_(pc.equal(pc.list_value_length(parts), 2), pc.not_equal(head, ""))
    return pc.if_else(ok, head, pa.scalar(None, pa.string()))


def _key(prefix: str, value: str | None) -> str | None:
    return None if value is None else prefix + value


def _prefix(ip: str | None) -> str | None:
    if not ip:
        return None
    cut = ip.rfind(".")
    return ip[:cut] if cut > 0 else None
