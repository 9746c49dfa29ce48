"""Who is behind a device, as the decision engine needs it: a :class:`~allscene.delivery.decide.Viewer`.

:class:`Directory` answers, for a request's device and time: the person (from the identity
graph), whether they opted out of personalized ads, their resident county (the
``home_county`` tag), the saved audiences they are in, and the scenes they are in now (from
the live scene engine).

* **Audiences** are the members' Roaring bitmaps over the tag table's rows, one per
  ``(advertiser, audience)`` that a live campaign targets; membership is one bitmap lookup
  per targeted audience, asked only for the campaigns that reach that test.
* **Opt-out** is read from the ``consent`` table at start and updated by every ``consent``
  event ingest stores afterwards (:meth:`Directory.observe`): a person who opts out is not
  targeted from the next request on, on any of their devices. A device the identity graph
  does not know can opt out too (its own choice, by device id). A request that says "do not
  track" (OpenRTB ``dnt``/``lmt``) is treated as opted out.

Examples
--------
>>> import datetime as dt
>>> from pyroaring import BitMap
>>> d = Directory({"ph1": "alice", "tv1": "alice", "ph2": "bob"}, ["alice", "bob"],
...               county={"alice": "110105"}, opted_out={"bob"})
>>> d.set_audiences({("acme", "drivers"): BitMap([0])})
>>> t = dt.datetime(2026, 10, 12, tzinfo=dt.timezone.utc)
>>> v = d.viewer("tv1", t)
>>> v.person_id, v.county, ("acme", "drivers") in v.audiences, v.opted_out
('alice', '110105', True, False)
>>> d.viewer("ph2", t).opted_out, d.viewer("unknown", t).person_id
(True, None)
>>> d.observe([{"kind": "consent", "device_id": "ph1", "personalized_ads": False}])
1
>>> d.viewer("tv1", t).opted_out
True
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pyroaring import BitMap

from allscene.audiences.households import screen_view
from allscene.delivery.decide import Viewer

ScenesOf = Callable[[str, dt.datetime], frozenset[str]]


class _Membership:
    """``(advertiser, audience) in m``: is this person's row in that audience's bitmap."""

    __slots__ = ("row", "bitmaps")

    def __init__(self, row: int, bitmaps: Mapping[tuple[str, str], BitMap]):
        self.row, self.bitmaps = row, bitmaps

    def __contains__(self, key: object) -> bool:
        bm = self.bitmaps.get(key)  # type: ignore[call-overload]
        return bm is not None and self.row in bm

    def __iter__(self):  # for logs and tests: the audiences this person is in
        return iter(sorted(k for k, bm in self.bitmaps.items() if self.row in bm))


class Directory:
    """Devices to viewers; thread-safe for reads while consent changes.

    Parameters
    ----------
    device_person
        ``device_id -> person_id`` (the identity graph).
    people
        Person ids in the order of the rows the audience bitmaps count.
    county
        ``person_id -> resident county code``.
    opted_out
        People whose latest choice is no personalized ads.
    scenes_of
        ``(person_id, time) -> scene ids`` now (the live scene engine); none when absent.
    """

    def __init__(self, device_person: Mapping[str, str], people: Iterable[str], *,
                 county: Mapping[str, str] | None = None, opted_out: Iterable[str] = (),
                 scenes_of: ScenesOf | None = None,
                 shared: Mapping[str, tuple[str, ...]] | None = None):
        self.device_person = dict(device_person)
        self.shared = dict(shared or {})  # appliance -> its household's members
        self.row = {p: i for i, p in enumerate(people)}
        self.county = dict(county or {})
        self.scenes_of = scenes_of
        self._out_people = set(opted_out)
        self._out_devices: set[str] = set()
        self._bitmaps: dict[tuple[str, str], BitMap] = {}
        self._lock = threading.Lock()

    def set_audiences(self, bitmaps: Mapping[tuple[str, str], BitMap]) -> None:
        """Replace the audience bitmaps (when the live campaigns' audiences change)."""
        self._bitmaps = dict(bitmaps)

    @property
    def audiences(self) -> dict[tuple[str, str], BitMap]:
        return dict(self._bitmaps)

    def viewer(self, device_id: str, at: dt.datetime, *, limit_tracking: bool = False
               ) -> Viewer:
        person = self.device_person.get(device_id)
        out = (limit_tracking or device_id in self._out_devices
               or (person is not None and person in self._out_people))
        if person is None:
            members = self.shared.get(device_id)
            if members:  # a shared screen: in an audience when a member is
                s = screen_view(members, row=self.row, bitmaps=self._bitmaps,
                                opted_out=self._out_people, county=self.county)
                return Viewer(None, opted_out=out or s.opted_out, county=s.county,
                              audiences=s.audiences if not out else frozenset())
            return Viewer(None, opted_out=out)
        row = self.row.get(person)
        scenes = self.scenes_of(person, at) if self.scenes_of and not out else frozenset()
        return Viewer(person, opted_out=out, county=self.county.get(person),
                      audiences=_Membership(row, self._bitmaps) if row is not None and not out
                      else frozenset(), scenes=scenes)

    def observe(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Apply newly stored ``consent`` events (in time order); returns how many."""
        n = 0
        with self._lock:
            for e in events:
                if e.get("kind") != "consent":
                    continue
                device, person = e.get("device_id"), self.device_person.get(e.get("device_id"))
                keep_out = e.get("personalized_ads") is False
                if person is not None:
                    (self._out_people.add if keep_out else self._out_people.discard)(person)
                elif device:
                    (self._out_devices.add if keep_out else self._out_devices.discard)(device)
                n += 1
        return n

    @classmethod
    def from_tables(cls, devices, tags, consent, *, scenes_of: ScenesOf | None = None
                    ) -> Directory:
        """From the derived tables ``identity_devices``, ``tag_table`` and ``consent``."""
        pairs = zip(devices["device_id"].to_pylist(), devices["person_id"].to_pylist(),
                    strict=True)
        people = tags["person_id"].to_pylist()
        county = {}
        if "home_county" in tags.schema.names:
            county = {p: c for p, c in zip(people, tags["home_county"].to_pylist(), strict=True)
                      if c is not None}
        out = [p for p, ok in zip(consent["person_id"].to_pylist(),
                                  consent["personalized_ads"].to_pylist(), strict=True)
               if ok is False]
        from allscene.identity.households import shared_screens

        return cls({d: p for d, p in pairs if p is not None}, people, county=county,
                   opted_out=out, scenes_of=scenes_of,
                   shared=shared_screens(devices)  # an identity graph with households
                   if {"household_id", "device_type"} <= set(devices.column_names) else {})
