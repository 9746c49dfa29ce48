"""Tags observed in behaviour: interests, purchase intents, car, household, lifestyle.

Every function here is an Ibis expression over the event table (``Table -> Table``) that
returns counts, modes and timestamps; :func:`behaviour_tags` turns the collected results
into tag rows in Python (engines count, Python divides).
"""

from __future__ import annotations

import datetime as dt
import functools
from importlib import resources

import ibis
import pyarrow as pa
import pyarrow.csv as pcsv
from ibis import _

from allscene.profiles.base import TagRows, local, personal, top, window_counts
from allscene.profiles.catalog import Catalog, content_interests

RUN_BPM = 130  # a heart rate only running (or hard exercise) reaches
RUN_DAYS = 2
NIGHT_OWL_HOUR = 23
NIGHT_OWL_SHARE = 0.4
PRIME_HOURS = (19, 22)
PRIME_SHARE = 0.3
KIDS_DAYS = 2
COMMUTE_MIN = 3
FIRST_CAR_MIN = 2  # car-buying searches or views: one may be idle curiosity
CAR_INTENTS = ("intent.car.compact", "intent.car.suv", "intent.car.sedan", "intent.car.nev",
               "intent.car.mpv")
PRICE_BANDS = ("<50k", "50-80k", "80-100k", "100-150k", "150-250k", "250k+")
PRICE_PHRASES = {"8到10万": "80-100k", "10万左右": "80-100k", "15万": "100-150k",
                 "20万": "150-250k", "30万": "250k+", "5万": "50-80k"}


@functools.lru_cache(maxsize=1)
def car_models() -> pa.Table:
    """The car reference (make, model, Chinese model name, body, list-price band)."""
    with resources.files("allscene.profiles").joinpath("data", "cars.csv").open("rb") as f:
        return pcsv.read_csv(f)


def interest_counts(events: ibis.Table, devices: ibis.Table, as_of: dt.datetime,
                    catalog: Catalog) -> ibis.Table:
    """``person_id, tag, last, n<d>...``: content views per interest in each window."""
    pairs = [(cid, tag) for cid, tags in content_interests(catalog).items() for tag in tags]
    m = ibis.memtable(pa.table({"cid": [p[0] for p in pairs], "tag": [p[1] for p in pairs]}))
    cv = personal(events, devices, ["content_view"]).select("person_id", "ts", "iab_category")
    j = cv.join(m, cv.iab_category == m.cid).select("person_id", "tag", "ts")
    return window_counts(j, ["person_id", "tag"], as_of, _windows(catalog, "interest"))


def _windows(catalog: Catalog, group: str) -> list[int]:
    return sorted({d for t in catalog.group(group) for d in t.windows})


def text_rows(events: ibis.Table, devices: ibis.Table) -> ibis.Table:
    """``person_id, ts, text``: what people searched for and the titles of what they read
    (the intent pipelines read it several times: cache it)."""
    rows = personal(events, devices, ["search", "content_view"])
    return rows.select("person_id", "ts", text=ibis.coalesce(rows.query, rows.title, ""))


def intent_counts(text: ibis.Table, as_of: dt.datetime, catalog: Catalog) -> ibis.Table:
    """``person_id, tag, last, n<d>...``: searches and views (:func:`text_rows`) matching
    each intent's keywords."""
    parts = []
    for tag in catalog.group("intent"):
        if not tag.keywords:
            continue
        hit = functools.reduce(lambda a, b: a | b, [text.text.contains(k) for k in tag.keywords])
        parts.append(text.filter(hit).select("person_id", "ts", tag=ibis.literal(tag.name)))
    union = functools.reduce(lambda a, b: a.union(b, distinct=False), parts)
    return window_counts(union, ["person_id", "tag"], as_of, _windows(catalog, "intent"))


def price_mentions(text: ibis.Table) -> ibis.Table:
    """``person_id, band, n``: car prices a person searched for or read about (a model's
    list-price band, or a price such as "8到10万"; the first named in a text counts)."""
    cars = car_models()
    names = list(zip(cars["model_zh"].to_pylist(), cars["price_band"].to_pylist(), strict=True))
    names += list(PRICE_PHRASES.items())
    band = ibis.cases(*((text.text.contains(name), b) for name, b in names), else_=None)
    hits = text.select("person_id", band=band).filter(_.band.notnull())
    return hits.group_by(["person_id", "band"]).agg(n=_.count())


def car_evidence(events: ibis.Table, devices: ibis.Table) -> ibis.Table:
    """``person_id, desc ('make|model|year'), top_w, all_w``: the car a person's phone
    connects to most."""
    bt = personal(events, devices, ["bluetooth_connect"]).filter(_.peer_type == "car")
    bt = bt.select("person_id", w=ibis.literal(1),
                   desc=bt.make.concat("|", bt.model, "|", bt.year.cast("string")))
    return top(bt, ["person_id"], "desc")


def lifestyle_evidence(events: ibis.Table, devices: ibis.Table) -> dict[str, ibis.Table]:
    """Runner days, late-night days, days active, and commute signals per person."""
    hr = personal(events, devices, ["heart_rate"])
    run = hr.filter(hr.bpm >= RUN_BPM).group_by("person_id").agg(
        days=local(_.ts).date().nunique())
    apps = personal(events, devices, ["app_open"])
    lt = local(apps.ts)
    apps = apps.mutate(hour=lt.hour(), day=lt.date(), dow=lt.day_of_week.index())
    active = apps.group_by("person_id").agg(days=_.day.nunique())
    late = apps.filter(apps.hour >= NIGHT_OWL_HOUR).group_by("person_id").agg(
        days=_.day.nunique())
    rush = (apps.dow < 5) & (((apps.hour >= 6) & (apps.hour < 10))
                             | ((apps.hour >= 16) & (apps.hour < 22)))
    modes = apps.filter(rush & apps.app.isin(["didi", "transit_qr"])).select(
        "person_id", mode=ibis.ifelse(_.app == "didi", "taxi", "transit"))
    bt = personal(events, devices, ["bluetooth_connect"]).filter(_.peer_type == "car")
    blt = local(bt.ts)
    drive = bt.filter((blt.day_of_week.index() < 5) & (blt.hour() >= 6) & (blt.hour() < 10))
    modes = modes.union(drive.select("person_id", mode=ibis.literal("drive")), distinct=False)
    commute = top(modes.mutate(w=1), ["person_id"], "mode")
    return {"run": run, "active": active, "late": late, "commute": commute}


def household_evidence(events: ibis.Table, devices: ibis.Table) -> dict[str, ibis.Table]:
    """Days with signs of children at home, and prime-time TV days, per household."""
    appl = devices.filter(_.person_id.isnull()).select(adev=_.device_id, hh=_.household_id)
    pers = devices.filter(_.person_id.notnull()).select(pdev=_.device_id, hh=_.household_id)
    tv = events.filter(_.kind == "tv_watch")
    tv = tv.join(appl, tv.device_id == appl.adev)
    tlt = local(tv.ts)
    tv = tv.mutate(day=tlt.date(), hour=tlt.hour())
    tv_days = tv.group_by("hh").agg(days=_.day.nunique())
    prime = tv.filter((tv.hour >= PRIME_HOURS[0]) & (tv.hour < PRIME_HOURS[1])).group_by(
        "hh").agg(days=_.day.nunique())
    kids_tv = tv.filter(tv.genre == "kids").select("hh", "day")
    voice = events.filter((_.kind == "voice_command") & (_.intent == "story"))
    voice = voice.join(appl, voice.device_id == appl.adev)
    buys = events.filter((_.kind == "purchase") & (_.item_category == "kids"))
    buys = buys.join(pers, buys.device_id == pers.pdev)
    signs = kids_tv.union(voice.select("hh", day=local(voice.ts).date()), distinct=False).union(
        buys.select("hh", day=local(buys.ts).date()), distinct=False)
    kids = signs.group_by("hh").agg(days=_.day.nunique())
    return {"tv_days": tv_days, "prime": prime, "kids": kids}


def behaviour_tags(ev: dict[str, pa.Table], devices: pa.Table, people: pa.Table,
                   as_of: dt.datetime, catalog: Catalog) -> pa.Table:
    """Tag rows from the collected evidence tables ``ev``."""
    rows = TagRows()
    add = rows.add

    car_last: dict[str, dt.datetime] = {}
    car_n: dict[str, int] = {}
    for name in ("interests", "intents"):
        for r in ev[name].to_pylist():
            tag = catalog[r["tag"]]
            for d in tag.windows:
                if r[f"n{d}"]:
                    add(r["person_id"], f"{tag.name}@{d}d", r[f"n{d}"])
            if tag.name in CAR_INTENTS:
                car_n[r["person_id"]] = car_n.get(r["person_id"], 0) + r[f"n{max(tag.windows)}"]
                seen = r["last"] if r["last"].tzinfo else r["last"].replace(tzinfo=dt.UTC)
                last = car_last.get(r["person_id"])
                car_last[r["person_id"]] = seen if last is None else max(last, seen)
    for p, last in car_last.items():
        add(p, "intent.car.recency_days", (as_of - last).days)
    owners: set[str] = set()
    for r in ev["car"].to_pylist():
        make, model, year = r["desc"].split("|")
        conf = round(r["top_w"] / r["all_w"], 4)
        owners.add(r["person_id"])
        add(r["person_id"], "owns_car", "true", conf)
        add(r["person_id"], "car.make", make, conf)
        add(r["person_id"], "car.model", model, conf)
        add(r["person_id"], "car.year", year, conf)
    everyone = people["person_id"].to_pylist()
    for p in everyone:
        if p not in owners:
            # Two weeks without a car's Bluetooth: most likely no car (or one without it).
            add(p, "owns_car", "false", 0.8)
    car_any = {p for p, n in car_n.items() if n >= FIRST_CAR_MIN}
    for p in sorted(car_any - owners):
        add(p, "intent.first_car", "true", 0.8)
    mentions: dict[str, dict[str, int]] = {}
    for r in ev["prices"].to_pylist():
        mentions.setdefault(r["person_id"], {})[r["band"]] = r["n"]
    for p in sorted(car_any):
        m = mentions.get(p)
        if m:
            band = max(sorted(m), key=lambda b: m[b])
            add(p, "intent.car.price_band", band, round(m[band] / sum(m.values()), 4))
    _lifestyle(ev, add)
    _devices(devices, people, ev, add)
    return rows.table()


def _lifestyle(ev: dict[str, pa.Table], add) -> None:
    for r in ev["run"].to_pylist():
        if r["days"] >= RUN_DAYS:
            add(r["person_id"], "lifestyle.runner", "true", 0.95)
    active = {r["person_id"]: r["days"] for r in ev["active"].to_pylist()}
    for r in ev["late"].to_pylist():
        share = r["days"] / max(active.get(r["person_id"], 1), 1)
        if share >= NIGHT_OWL_SHARE:
            add(r["person_id"], "lifestyle.night_owl", "true", round(share, 4))
    for r in ev["commute"].to_pylist():
        if r["top_w"] >= COMMUTE_MIN:
            add(r["person_id"], "lifestyle.commute", r["mode"], round(r["top_w"] / r["all_w"], 4))


def _devices(devices: pa.Table, people: pa.Table, ev: dict[str, pa.Table], add) -> None:
    hh_of = dict(zip(people["person_id"].to_pylist(), people["household_id"].to_pylist(),
                     strict=True))
    members: dict[str, int] = {}
    for h in hh_of.values():
        members[h] = members.get(h, 0) + 1
    own: dict[str, set[str]] = {}
    n_own: dict[str, int] = {}
    appliances: dict[str, set[str]] = {}
    for d in devices.to_pylist():
        if d["person_id"] is not None:
            own.setdefault(d["person_id"], set()).add(d["device_type"])
            n_own[d["person_id"]] = n_own.get(d["person_id"], 0) + 1
        else:
            appliances.setdefault(d["household_id"], set()).add(d["device_type"])
    n_appl = {h: 0 for h in appliances}
    for d in devices.to_pylist():
        if d["person_id"] is None:
            n_appl[d["household_id"]] += 1
    tv_days = {r["hh"]: r["days"] for r in ev["tv_days"].to_pylist()}
    prime = {r["hh"]: r["days"] for r in ev["prime"].to_pylist()}
    kids = {r["hh"]: r["days"] for r in ev["kids"].to_pylist()}
    for p, h in hh_of.items():
        add(p, "devices.count", n_own.get(p, 0) + n_appl.get(h, 0))
        add(p, "owns.band", str("band" in own.get(p, ())).lower())
        for kind in ("tv", "speaker", "air_purifier", "robot_vacuum"):
            add(p, f"household.{kind}", str(kind in appliances.get(h, ())).lower())
        add(p, "household.size", members[h], 0.9 if h.startswith("h:") else 0.5)
        if kids.get(h, 0) >= KIDS_DAYS:
            add(p, "household.kids", "true", 0.9)
        if tv_days.get(h) and prime.get(h, 0) / tv_days[h] >= PRIME_SHARE and prime[h] >= 2:
            add(p, "household.tv_prime_time", "true", round(prime[h] / tv_days[h], 4))
