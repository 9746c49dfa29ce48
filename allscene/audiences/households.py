"""Household audiences: a shared screen is in an audience when someone of its home is.

Audiences are sets of people (bitmaps over the tag table's rows). A TV or a smart speaker
belongs to a household, not to a person (:mod:`allscene.identity.households`), so a request
from it has no person to look up. Household targeting answers it with the household: the
screen is in an audience when **any member** of its household is (the TVs of homes with an
adult sports fan, for a beer brand). The rules that hold for people hold here too:

* the member bitmaps already leave out everyone who opted out, so nobody's data is used
  against their choice;
* a screen is shared, and cannot tell who is watching: when **any member** of its
  household opted out, the screen counts as opted out, and only campaigns that target no
  one in particular may use it.

:func:`screen_view` is what a device directory answers for a shared screen;
:func:`household_screens` lists the screens an audience reaches (to count or export them).

Examples
--------
>>> from pyroaring import BitMap
>>> row = {"alice": 0, "bob": 1, "carol": 2}
>>> bitmaps = {("acme", "fans"): BitMap([1])}  # bob is a fan
>>> v = screen_view(("alice", "bob"), row=row, bitmaps=bitmaps, opted_out=set(),
...                 county={"alice": "110114"})
>>> v.opted_out, v.county, ("acme", "fans") in v.audiences, list(v.audiences)
(False, '110114', True, [('acme', 'fans')])
>>> v = screen_view(("alice", "bob"), row=row, bitmaps=bitmaps, opted_out={"alice"},
...                 county={})
>>> v.opted_out, ("acme", "fans") in v.audiences
(True, False)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
from pyroaring import BitMap

from allscene.identity.households import shared_screens


class AnyMember:
    """``(advertiser, audience) in m``: is any of these member rows in that audience's bitmap.

    Parameters
    ----------
    rows
        The tag-table rows of a household's members.
    bitmaps
        ``(advertiser, audience) -> BitMap`` of the rows in each audience.
    """

    __slots__ = ("rows", "bitmaps")

    def __init__(self, rows: Sequence[int], bitmaps: Mapping[tuple[str, str], BitMap]):
        self.rows, self.bitmaps = tuple(rows), bitmaps

    def __contains__(self, key: object) -> bool:
        bm = self.bitmaps.get(key)  # type: ignore[call-overload]
        return bm is not None and any(r in bm for r in self.rows)

    def __iter__(self):  # for logs and tests: the audiences the household is in
        return iter(sorted(k for k in self.bitmaps if k in self))


@dataclass(frozen=True)
class ScreenView:
    """What is known of the people in front of a shared screen."""

    opted_out: bool
    county: str | None
    audiences: Container[tuple[str, str]]


def screen_view(members: Sequence[str], *, row: Mapping[str, int],
                bitmaps: Mapping[tuple[str, str], BitMap], opted_out: Container[str],
                county: Mapping[str, str]) -> ScreenView:
    """The view of a shared screen whose household has ``members``.

    Parameters
    ----------
    members
        Person ids of the household (:func:`allscene.identity.households.shared_screens`).
    row
        ``person_id -> row`` of the tag table the bitmaps count.
    bitmaps
        ``(advertiser, audience) -> BitMap`` of the live audiences.
    opted_out
        People whose latest choice is no personalized ads.
    county
        ``person_id -> resident county``.

    Returns
    -------
    ScreenView
        Opted out when any member is (then in no audience); the county most members live
        in (ties: the smallest code); the audiences any member is in.
    """
    if any(p in opted_out for p in members):
        return ScreenView(True, None, frozenset())
    counties = Counter(county[p] for p in members if county.get(p) is not None)
    home = min(counties, key=lambda c: (-counties[c], c)) if counties else None
    rows = [row[p] for p in members if p in row]
    return ScreenView(False, home, AnyMember(rows, bitmaps) if rows else frozenset())


def household_screens(members: BitMap, person_ids: Sequence[str], devices: pa.Table, *,
                      device_types: Iterable[str] = ("tv",),
                      opted_out: Container[str] = frozenset()) -> pa.Table:
    """The shared screens an audience reaches: ``device_id, household_id, members``.

    Parameters
    ----------
    members
        Rows of the audience (over ``person_ids``), e.g. :meth:`Audiences.members
        <allscene.audiences.service.Audiences.members>`.
    person_ids
        The tag table's person ids, in row order.
    devices
        The identity graph's devices.
    device_types
        Which appliances (default: TVs).
    opted_out
        People whose latest choice is no personalized ads: their households' screens are
        left out, as :func:`screen_view` leaves them out.

    Returns
    -------
    pyarrow.Table
        One row per screen, sorted by device id; ``members`` is how many people of the
        household are in the audience.
    """
    fans = {person_ids[i] for i in members}
    household = dict(zip(devices["device_id"].to_pylist(), devices["household_id"].to_pylist(),
                         strict=True))
    out: dict[str, list] = {"device_id": [], "household_id": [], "members": []}
    for device, people in shared_screens(devices, device_types).items():
        n = sum(p in fans for p in people)
        if n and not any(p in opted_out for p in people):
            out["device_id"].append(device)
            out["household_id"].append(household[device])
            out["members"].append(n)
    return pa.table({"device_id": pa.array(out["device_id"], pa.string()),
                     "household_id": pa.array(out["household_id"], pa.string()),
                     "members": pa.array(out["members"], pa.int64())})
