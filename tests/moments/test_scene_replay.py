"""The engine over the session world: batch replay equals live ingest, scene events land in
the log once, and scene accuracy against the world."""

import datetime as dt
import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from allscene.moments import replay as rp
from allscene.moments.catalog import load_catalog
from allscene.moments.engine import Engine
from allscene.storage import ParquetEventLog
from allscene.world.score_scenes import score_scenes


@pytest.fixture(scope="module")
def built(world_log, identity, reference):
    return rp.build_resolver(world_log.table(), *identity, reference)


@pytest.fixture(scope="module")
def homes(tag_table):
    return rp.home_cities(tag_table)


def day_events(log, date, devices=None):
    start, end = rp.day_bounds(date)
    return log.scan(start=start, end=end, kinds=rp.INPUT_KINDS, device_ids=devices)


def test_the_resolver_answers_the_same_one_by_one_and_in_bulk(world_log, built):
    resolver = built[0]
    t = day_events(world_log, dt.date(2026, 10, 9)).slice(0, 20_000)
    many = resolver.resolve_many(t)
    rows = t.to_pylist()
    one = [(i, *r) for i, e in enumerate(rows) for r in resolver.resolve_one(e)]
    assert one == list(zip(many.row.tolist(), many.person.tolist(), many.place.to_pylist(),
                           many.city.to_pylist(), many.network.to_pylist(), strict=True))
    assert {p for p in many.place.to_pylist() if p} == {"home", "work", "other"}


def test_batch_replay_and_live_ingest_give_identical_scene_events(world_log, built, homes,
                                                                  identity):
    resolver = built[0]
    cat = load_catalog()
    # 300 people's devices (households' appliances with them), two days.
    people = set(sorted(resolver.people)[:300])
    devices = [d for d, p, h in zip(*(identity[0][c].to_pylist() for c in
                                      ("device_id", "person_id", "household_id")), strict=True)
               if p in people or (p is None and h is not None)]
    days = [dt.date(2026, 10, 9), dt.date(2026, 10, 10)]
    weather = [day_events(world_log, d).filter(pc.equal(
        day_events(world_log, d)["kind"], "weather")) for d in days]
    tables = [pa.concat_tables([day_events(world_log, d, devices), w])
              for d, w in zip(days, weather, strict=True)]
    end = int(rp.day_bounds(days[-1])[1].timestamp()) * 1_000_000

    batch = Engine(cat, resolver, home_city=homes)
    for t in tables:
        batch.run_many(t)
    batch.flush(end)

    live = Engine(cat, resolver, home_city=homes, lateness_us=30_000_000)
    rng = random.Random(3)
    for t in tables:
        rows = t.to_pylist()
        # Arrival order: up to 30 s late, as from phones on a flaky network.
        for e in sorted(rows, key=lambda e: e["ts"].timestamp() + rng.uniform(0, 29)):
            live.feed_one(e)
    live.flush(end)
    got, want = live.events(), batch.events()
    assert want.num_rows > 10_000
    assert got.to_pylist() == want.to_pylist()


def test_scene_events_are_written_to_the_log_once(world_log, built, homes, tmp_path):
    log = ParquetEventLog(tmp_path / "log")
    date = dt.date(2026, 10, 9)
    log.append(day_events(world_log, date))
    first = rp.replay(log, Engine(load_catalog(), built[0], home_city=homes), [date])
    assert first[0].scene_events > 0
    stored = log.scan(kinds=rp.MOMENT_KINDS)
    assert stored.num_rows == first[0].scene_events
    assert set(stored["kind"].to_pylist()) == {"scene_enter", "scene_exit"}
    rp.replay(log, Engine(load_catalog(), built[0], home_city=homes), [date])
    assert log.scan(kinds=rp.MOMENT_KINDS).num_rows == stored.num_rows


@pytest.fixture(scope="module")
def scores(world, world_log, built, homes):
    cat = load_catalog()
    log_days = rp.local_days(world_log)
    days = log_days[1:]  # the first day warms the engine up
    out = []
    engine = Engine(cat, built[0], home_city=homes)
    for d in log_days:
        engine.run_many(day_events(world_log, d))
        out.extend(engine.out)
        engine.out = []
    lo = int(rp.day_bounds(days[0])[0].timestamp()) * 1_000_000
    hi = int(rp.day_bounds(days[-1])[1].timestamp()) * 1_000_000
    engine.out = out
    iv = rp.intervals(rp.scene_event_table(engine, out), hi)
    h0 = (lo + rp.LOCAL_US) // 3_600_000_000
    rows = score_scenes(rp.hours_of(iv), world[0], first_hour=h0,
                        end_hour=h0 + (hi - lo) // 3_600_000_000,
                        catalog_ids={s.id for s in cat.scenes},
                        families={s.id: s.family for s in cat.scenes})
    return {r["scene"]: r for r in rows}


@pytest.mark.parametrize("scene, precision, recall", [
    # The goals: 0.9 precision and 0.8 recall on commute, TV prime time and travel.
    ("commute_taxi", 0.9, 0.8), ("commute_transit", 0.9, 0.8), ("commute_drive", 0.9, 0.8),
    ("tv_prime_time", 0.9, 0.8), ("business_trip", 0.9, 0.8), ("holiday_travel", 0.9, 0.8),
    # Others the world simulates, held where they stand today.
    ("in_car", 0.9, 0.9), ("at_office", 0.85, 0.85), ("kids_tv", 0.9, 0.8),
    ("cleaning", 0.9, 0.8), ("on_home_wifi", 0.9, 0.8), ("weekend_morning", 0.85, 0.8),
])
def test_scene_accuracy_against_the_world(scores, scene, precision, recall):
    r = scores[scene]
    assert r["precision"] >= precision and r["recall"] >= recall, r


@pytest.mark.xfail(reason="known gap: working late is seen only at a ping on the office "
                          "network (about one an hour); recall is about 0.5", strict=True)
def test_working_late_meets_its_goal(scores):
    r = scores["working_late"]
    assert r["precision"] >= 0.9 and r["recall"] >= 0.8, r


def test_running_meets_its_goal(scores):
    r = scores["running"]
    assert r["precision"] >= 0.9 and r["recall"] >= 0.8, r
