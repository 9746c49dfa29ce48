"""The scene engine on hand-written days: entering, holding, ending, dependencies, context,
look-ups, and live ingest giving what batch replay gives."""

import datetime as dt
import random

import pyarrow as pa
import pytest
import yaml

from allscene.events.schema import ARROW_SCHEMA
from allscene.moments.catalog import load_catalog
from allscene.moments.context import WeatherContext
from allscene.moments.engine import Engine
from allscene.moments.resolve import Resolver

LOCAL = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2026, 10, 13)  # a Tuesday


def us(hh: int, mm: int = 0, day: dt.date = DAY) -> int:
    return int(dt.datetime.combine(day, dt.time(hh, mm), tzinfo=LOCAL).timestamp()) * 1_000_000


def table(rows: list[dict]) -> pa.Table:
    cols = {f.name: [r.get(f.name) for r in rows] for f in ARROW_SCHEMA}
    cols["ts"] = [dt.datetime.fromtimestamp(r["ts"] / 1e6, dt.UTC) for r in rows]
    return pa.table({f.name: pa.array(cols[f.name], f.type) for f in ARROW_SCHEMA})


def resolver() -> Resolver:
    s = pa.string()
    devices = pa.table({"device_id": ["ph1", "band1", "tv1", "ph2"],
                        "person_id": ["alice", "alice", None, "bob"],
                        "household_id": ["h1", "h1", "h1", "h1"]}, schema=pa.schema(
        [("device_id", s), ("person_id", s), ("household_id", s)]))
    people = pa.table({"person_id": ["alice", "bob"], "household_id": ["h1", "h1"]})
    keys = pa.table({"person_id": ["alice", "alice", "bob"],
                     "key": ["b:home", "b:office", "b:home"], "place": ["home", "work", "home"]})
    towers = pa.table({"cell_id": ["c-bj", "c-sh"], "county_code": ["110105", "310101"]})
    regions = pa.table({"county_code": ["110105", "310101"], "city_code": ["110100", "310100"]})
    geoip = pa.table({"prefix": pa.array([], s), "city_code": pa.array([], s),
                      "connection": pa.array([], s)})
    return Resolver(devices, people, keys, towers, geoip, regions)


def engine(**kw) -> Engine:
    return Engine(load_catalog(), resolver(), home_city={"alice": "110100", "bob": "110100"},
                  **kw)


_n = iter(range(1_000_000))


def ev(kind: str, ts: int, device: str = "ph1", **fields) -> dict:
    dtype = {"ph1": "phone", "ph2": "phone", "band1": "band", "tv1": "tv"}.get(device)
    e = {"event_id": f"e{next(_n):06d}", "ts": ts, "kind": kind, "device_id": device,
         "device_type": dtype, "schema_version": 1}
    e.update(fields)
    return e


def commute_day() -> list[dict]:
    return [
        ev("wifi_connect", us(7, 0), bssid="home"),
        ev("location", us(7, 5), network="wifi", cell_id="c-bj"),
        ev("app_open", us(8, 10), app="didi", duration_s=60.0),
        ev("location", us(8, 20), network="cellular", cell_id="c-bj"),
        ev("wifi_connect", us(8, 40), bssid="office"),
        ev("app_open", us(12, 10), app="wechat", duration_s=60.0),
        ev("heart_rate", us(20, 5), "band1", bpm=150),
        ev("steps", us(20, 59), "band1", steps=7000, interval_s=3600),
        ev("tv_watch", us(20, 10), "tv1", genre="drama", duration_s=1800.0),
    ]


def run(events: list[dict], **kw) -> tuple[Engine, list[tuple]]:
    e = engine(**kw)
    e.run_many(table(events))
    e.flush(us(23, 59))
    rows = e.events().to_pylist()
    return e, [(r["account_id"], r["scene"], r["kind"][6:],
                dt.datetime.fromtimestamp(r["ts"].timestamp(), LOCAL).strftime("%H:%M"))
               for r in rows]


def test_a_taxi_commute_enters_the_commute_scenes_and_arriving_ends_them():
    _, out = run(commute_day())
    alice = [x for x in out if x[0] == "alice"]
    assert ("alice", "commute_taxi", "enter", "08:10") in alice
    assert ("alice", "commuting", "enter", "08:10") in alice
    assert ("alice", "in_car", "enter", "08:10") in alice
    assert ("alice", "commute_taxi", "exit", "08:40") in alice  # arrived: place -> work
    assert ("alice", "at_office", "enter", "08:40") in alice
    assert ("alice", "arriving_at_office", "enter", "08:40") in alice


def test_a_scene_without_until_ends_when_its_hold_runs_out():
    _, out = run(commute_day())
    # heart rate 150 at 20:05 -> running, which lasts 25 minutes after the last match (an
    # hour's steps count is no running cadence: it does not extend it).
    assert ("alice", "running", "enter", "20:05") in out
    assert ("alice", "running", "exit", "20:30") in out


def test_a_household_tv_reaches_the_members_at_home_only():
    _, out = run(commute_day() + [ev("wifi_connect", us(19, 30), "ph2", bssid="home")])
    assert ("bob", "tv_prime_time", "enter", "20:10") in out
    assert not [x for x in out if x[0] == "alice" and x[1] == "tv_prime_time"]  # at work


def test_scenes_of_a_person_now():
    e = engine()
    e.run_many(table(commute_day()[:5]))
    now = us(9, 0)
    assert {"at_office", "arriving_at_office"} <= set(e.scenes_of("alice", now))
    assert "commute_taxi" not in e.scenes_of("alice", now)
    assert e.scenes_of("nobody", now) == []


def test_weather_of_the_city_the_person_is_in_is_context():
    wx = WeatherContext()
    for h in range(24):
        wx.add_one("110100", us(h), temp_c=12.0, condition="rain", aqi=60, humidity=95.0)
    events = [ev("location", us(10, 5), network="cellular", cell_id="c-bj"),
              ev("app_open", us(10, 30), app="weather", duration_s=20.0)]
    _, out = run(events, weather=wx)
    assert ("alice", "rainy_day", "enter", "10:05") in out
    # The same hour in Shanghai, where it does not rain: no rainy day.
    events = [ev("location", us(10, 5), network="cellular", cell_id="c-sh")]
    _, out = run(events, weather=wx)
    assert not [x for x in out if x[1] == "rainy_day"]


def test_an_away_city_is_travel_and_its_start_day_tells_business_from_holiday():
    events = [ev("location", us(9, 0), network="cellular", cell_id="c-bj"),
              ev("location", us(15, 0), network="cellular", cell_id="c-sh"),
              ev("location", us(9, 0, DAY + dt.timedelta(days=2)), network="cellular",
                 cell_id="c-bj")]
    _, out = run(events)
    assert ("alice", "business_trip", "enter", "15:00") in out
    assert not [x for x in out if x[1] == "holiday_travel"]
    assert [x for x in out if x[1] == "business_trip" and x[2] == "exit"]


def test_live_ingest_in_any_order_within_the_lateness_gives_the_batch_result():
    events = commute_day() + [ev("wifi_connect", us(19, 30), "ph2", bssid="home")]
    batch, _ = run(events)
    rng = random.Random(7)
    for lateness_s in (0, 120):
        live = engine(lateness_us=lateness_s * 1_000_000 + 1)
        shuffled = sorted(events, key=lambda e: e["ts"] + rng.randint(0, lateness_s) * 1e6)
        for e in shuffled:
            live.feed_one(dict(e))
        live.flush(us(23, 59))
        assert live.events().to_pylist() == batch.events().to_pylist()


def test_every_signal_matches_the_same_rows_one_by_one_and_in_bulk():
    cat = load_catalog()
    rows = commute_day() + [
        ev("search", us(9), query="周末去哪玩 机票", app="browser"),
        ev("device_state", us(10), "ph1", state="battery_low", metric="battery_pct", value=12.0),
        ev("voice_command", us(11), utterance="打开空调", intent="smart_home"),
        ev("purchase", us(12), order_id="o1", item="拿铁咖啡", item_category="food_delivery",
           amount=30.0, currency="CNY", channel="online"),
        ev("steps", us(13), "band1", steps=59, interval_s=60),
        ev("location", us(14), speed_mps=9.5, network="cellular"),
    ]
    t = table(rows)
    for sig in cat.signals:
        bulk = sig.match_many(t).tolist()
        one = [sig.match_one(r) for r in rows]
        assert bulk == one, sig.key


def test_a_decimal_filter_on_a_whole_number_field_agrees():
    text = yaml.safe_dump({"scenes": [{
        "id": "brisk", "family": "personal", "name": {"zh": "快走", "en": "Brisk"},
        "description": "d", "when": "steps(steps >= 59.5)", "lasts": "1m"}]})
    sig = load_catalog(text=text).signals[0]
    rows = [ev("steps", us(9), "band1", steps=59, interval_s=60),
            ev("steps", us(9, 1), "band1", steps=60, interval_s=60)]
    assert sig.match_many(table(rows)).tolist() == [sig.match_one(r) for r in rows] \
        == [False, True]


@pytest.mark.parametrize("n_people", [1, 2])
def test_state_is_bounded(n_people):
    e = engine()
    rows = [ev("steps", us(8) + i * 60_000_000, "band1", steps=100, interval_s=60)
            for i in range(600)]
    e.run_many(table(rows))
    sizes = e.window_sizes("alice")
    assert sizes and all(n <= 64 for n in sizes)
    assert e.act.shape == (len(e.resolver.people), len(e.catalog.scenes))
