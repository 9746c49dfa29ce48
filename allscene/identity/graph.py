"""The identity graph: device → person → household, from events alone.

Evidence, strongest first:

* a phone signs in to an account: the account is the person (``person_id`` = account id);
* a band is paired from a phone, and connects to it over Bluetooth: the phone's person;
* a phone connects to a car over Bluetooth: the car belongs to the person connecting most;
* a phone joins the same Wi-Fi at night: people sharing a home network share a household;
* an appliance (TV, speaker, router, purifier, robot vacuum) is set up from a member's phone,
  and a TV signs in with a member's account: the member's household. Appliances belong to
  households, not people.

Each link is a *mode*: the most frequent value, ties broken by the latest, then by value,
so the result is deterministic. Every function is an Ibis expression over the event table
(``Table -> Table``), so the same code runs on DuckDB or Spark.

People without a home network seen at night get a household of their own (``p:`` + person);
a household found from a network is ``h:`` + its BSSID.
"""

from __future__ import annotations

import ibis
from ibis import _

PERSONAL = ("phone", "band", "car")
APPLIANCES = ("tv", "speaker", "router", "air_purifier", "robot_vacuum", "smart_light",
              "air_conditioner")
NIGHT_HOURS = (20, 8)
"""Local hours (from, to) when a phone's Wi-Fi is taken to be its home network."""


def _mode(t: ibis.Table, key: str, value: str) -> ibis.Table:
    """Per ``key``, the most frequent ``value`` (ties: latest ``ts``, then smallest value)."""
    g = t.group_by([key, value]).agg(n=_.count(), last=_.ts.max())
    w = ibis.window(group_by=g[key], order_by=[ibis.desc(g.n), ibis.desc(g.last), g[value]])
    return g.mutate(r=ibis.row_number().over(w)).filter(_.r == 0).select(key, value)


def phone_person(events: ibis.Table) -> ibis.Table:
    """``device_id, person_id`` of phones: the account each phone signs in to most."""
    logins = events.filter((_.kind == "login") & (_.device_type == "phone")
                           & _.account_id.notnull())
    return _mode(logins, "device_id", "account_id").rename(person_id="account_id")


def band_person(events: ibis.Table, phones: ibis.Table) -> ibis.Table:
    """``device_id, person_id`` of bands: paired from, and connecting to, a person's phone."""
    paired = events.filter((_.kind == "pairing") & (_.peer_device_type == "band")).select(
        band=_.peer_device_id, phone=_.device_id, ts=_.ts)
    connected = events.filter((_.kind == "bluetooth_connect") & (_.peer_type == "band")).select(
        band=_.peer_id, phone=_.device_id, ts=_.ts)
    links = paired.union(connected).join(phones, _.phone == phones.device_id)
    return _mode(links.select("band", "person_id", "ts"), "band", "person_id").rename(
        device_id="band")


def car_person(events: ibis.Table, phones: ibis.Table) -> ibis.Table:
    """``device_id, person_id, make, model, year`` of cars, by who connects to them most."""
    bt = events.filter((_.kind == "bluetooth_connect") & (_.peer_type == "car"))
    links = bt.join(phones, bt.device_id == phones.device_id).select(
        car=bt.peer_id, person_id=phones.person_id, ts=bt.ts)
    owner = _mode(links, "car", "person_id")
    info = bt.select(car=_.peer_id, make=_.make, model=_.model, year=_.year, ts=_.ts)
    info = _mode(info.mutate(desc=_.make.concat("|", _.model, "|", _.year.cast("string"))),
                 "car", "desc")
    return owner.join(info, "car").select(
        device_id=_.car, person_id=_.person_id,
        make=_.desc.split("|")[0], model=_.desc.split("|")[1],
        year=_.desc.split("|")[2].cast("int64"))


def person_household(events: ibis.Table, phones: ibis.Table, tz_hours: int = 8) -> ibis.Table:
    """``person_id, household_id``: the network a person's phone joins most at night."""
    local_hour = (events.ts + ibis.interval(hours=tz_hours)).hour()
    start, end = NIGHT_HOURS
    night = events.filter((_.kind == "wifi_connect") & (_.device_type == "phone")
                          & ((local_hour >= start) | (local_hour < end)))
    joined = night.join(phones, night.device_id == phones.device_id).select(
        person_id=phones.person_id, bssid=night.bssid, ts=night.ts)
    home = _mode(joined, "person_id", "bssid")
    people = phones.select("person_id").distinct()
    out = people.left_join(home, "person_id")
    return out.select(
        person_id=out.person_id,
        household_id=ibis.ifelse(out.bssid.isnull(), "p:" + out.person_id, "h:" + out.bssid))


def appliance_household(events: ibis.Table, phones: ibis.Table,
                        households: ibis.Table) -> ibis.Table:
    """``device_id, household_id`` of appliances: the household of the member who set them
    up (or, for a TV, signs in on it)."""
    member = phones.join(households, "person_id").select("device_id", "household_id")
    paired = events.filter((_.kind == "pairing") & _.peer_device_type.isin(APPLIANCES))
    by_pairing = paired.join(member, paired.device_id == member.device_id).select(
        device_id=paired.peer_device_id, household_id=member.household_id, ts=paired.ts)
    tv_login = events.filter((_.kind == "login") & _.device_type.isin(APPLIANCES))
    by_login = tv_login.join(households, tv_login.account_id == households.person_id).select(
        device_id=tv_login.device_id, household_id=households.household_id, ts=tv_login.ts)
    return _mode(by_pairing.union(by_login), "device_id", "household_id")


def device_graph(events: ibis.Table, tz_hours: int = 8) -> tuple[ibis.Table, ibis.Table]:
    """The identity graph of ``events``.

    Returns
    -------
    devices
        ``device_id, device_type, person_id, household_id, evidence``: every device with an
        identity link (appliances have no ``person_id``).
    people
        ``person_id, household_id``.

    Examples
    --------
    >>> import datetime as dt, ibis, pyarrow as pa
    >>> t = dt.datetime(2026, 10, 5, 14, tzinfo=dt.timezone.utc)  # 22:00 in Beijing
    >>> rows = [
    ...   dict(kind="login", device_id="p1", device_type="phone", account_id="alice"),
    ...   dict(kind="login", device_id="p2", device_type="phone", account_id="bob"),
    ...   dict(kind="wifi_connect", device_id="p1", device_type="phone", bssid="home"),
    ...   dict(kind="wifi_connect", device_id="p2", device_type="phone", bssid="home"),
    ...   dict(kind="pairing", device_id="p1", device_type="phone", peer_device_id="b1",
    ...        peer_device_type="band"),
    ...   dict(kind="pairing", device_id="p2", device_type="phone", peer_device_id="tv1",
    ...        peer_device_type="tv")]
    >>> cols = ["kind", "device_id", "device_type", "account_id", "bssid", "peer_device_id",
    ...         "peer_device_type", "peer_id", "peer_type", "make", "model"]
    >>> data = {c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols}
    >>> data["year"] = pa.array([None] * len(rows), pa.int64())
    >>> data["ts"] = [t] * len(rows)
    >>> devices, people = device_graph(ibis.memtable(pa.table(data)))
    >>> sorted(devices.select("device_id", "person_id", "household_id").to_pyarrow()
    ...        .to_pylist(), key=lambda r: r["device_id"])  # doctest: +NORMALIZE_WHITESPACE
    [{'device_id': 'b1', 'person_id': 'alice', 'household_id': 'h:home'},
     {'device_id': 'p1', 'person_id': 'alice', 'household_id': 'h:home'},
     {'device_id': 'p2', 'person_id': 'bob', 'household_id': 'h:home'},
     {'device_id': 'tv1', 'person_id': None, 'household_id': 'h:home'}]
    """
    phones = phone_person(events)
    people = person_household(events, phones, tz_hours)
    personal = (phones.mutate(device_type=ibis.literal("phone"), evidence=ibis.literal("login"))
                .union(band_person(events, phones).mutate(device_type=ibis.literal("band"),
                                                          evidence=ibis.literal("pairing")))
                .union(car_person(events, phones).select("device_id", "person_id").mutate(
                    device_type=ibis.literal("car"), evidence=ibis.literal("bluetooth"))))
    personal = personal.join(people, "person_id").select(
        "device_id", "device_type", "person_id", "household_id", "evidence")
    kinds = _mode(events.filter(_.device_type.isin(APPLIANCES)), "device_id", "device_type")
    appliances = appliance_household(events, phones, people)
    appliances = appliances.left_join(kinds, "device_id").select(
        device_id=appliances.device_id,
        device_type=kinds.device_type.fill_null("appliance"),
        person_id=ibis.null().cast("string"), household_id=appliances.household_id,
        evidence=ibis.literal("setup"))
    return personal.union(appliances), people
