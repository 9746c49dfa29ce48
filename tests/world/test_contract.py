"""Events follow the event contract; ids are unique and hashed; reference data is coherent."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allscene.events.schema import ARROW_SCHEMA, parse_event


def test_every_event_file_has_the_arrow_schema(world):
    out, _ = world
    files = sorted((out / "events").glob("*.parquet"))
    assert len(files) == 2 * 14 + 14  # 2 batches x 14 days + weather per day
    for f in files:
        assert pq.read_schema(f).equals(ARROW_SCHEMA, check_metadata=False), f.name


def test_a_random_sample_validates_with_parse_event(world):
    out, _ = world
    rng = np.random.default_rng(0)
    files = sorted((out / "events").glob("*.parquet"))
    kinds = set()
    checked = 0
    for f in rng.choice(files, 8, replace=False):
        t = pq.read_table(f)
        idx = rng.choice(t.num_rows, min(500, t.num_rows), replace=False)
        for row in t.take(pa.array(idx)).to_pylist():
            e = parse_event({k: v for k, v in row.items() if v is not None})
            kinds.add(e.kind)
            checked += 1
    # Every day-0 event kind (logins, pairings) is validated too.
    t = pq.read_table(out / "events" / "part-00000-000.parquet")
    for kind in ("login", "pairing", "consent", "bluetooth_connect", "purchase", "voice_command"):
        sub = t.filter(pc.equal(t["kind"], kind)).slice(0, 50)
        assert sub.num_rows > 0, kind
        for row in sub.to_pylist():
            parse_event({k: v for k, v in row.items() if v is not None})
    assert checked >= 3000
    assert {"location", "app_open", "steps", "search", "content_view"} <= kinds


def test_all_simulated_kinds_are_present(world):
    _, summary = world
    expected = {"search", "content_view", "app_open", "purchase", "finance_activity",
                "social_post", "voice_command", "login", "pairing", "location", "wifi_connect",
                "bluetooth_connect", "steps", "heart_rate", "tv_watch", "device_state",
                "weather", "consent"}
    assert expected <= set(summary["events"])
    per_person_day = summary["events_total"] / summary["people"] / 14
    assert 30 <= per_person_day <= 60


def test_event_ids_unique_and_device_ids_hashed(db, world):
    n, distinct = db.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    assert n == distinct
    bad = db.execute("SELECT count(*) FROM events WHERE device_id IS NOT NULL AND "
                     "NOT regexp_full_match(device_id, '[0-9a-f]{32}')").fetchone()[0]
    assert bad == 0
    # Raw IMEIs never appear in events, only their hashes.
    imeis = {r[0] for r in db.execute("SELECT imei FROM devices WHERE imei IS NOT NULL").fetchall()}
    assert len(imeis) == 3000
    seen = db.execute("SELECT count(*) FROM events e JOIN devices d ON e.device_id = d.imei"
                      ).fetchone()[0]
    assert seen == 0
    ok = db.execute("""SELECT count(*) FROM events e JOIN devices d ON e.device_id = d.device_id
                       WHERE e.kind = 'login' AND e.imei_md5 = md5(d.imei)""").fetchone()[0]
    assert ok >= 3000


def test_weather_one_event_per_city_and_hour(db):
    n_city = db.execute("SELECT count(DISTINCT city_code) FROM regions").fetchone()[0]
    rows = db.execute("SELECT count(*), count(DISTINCT city_code || ts::VARCHAR) FROM events "
                      "WHERE kind = 'weather'").fetchone()
    assert rows[0] == rows[1] == n_city * 24 * 14
    assert db.execute("SELECT count(*) FROM events WHERE kind = 'weather' AND "
                      "device_id IS NOT NULL").fetchone()[0] == 0


def test_reference_tables(world, db):
    out, _ = world
    n_county, n_city = db.execute(
        "SELECT count(*), count(DISTINCT city_code) FROM regions").fetchone()
    assert n_county >= 100 and 20 <= n_city <= 40
    assert set(db.execute("SELECT DISTINCT city_tier FROM regions").fetchnumpy()["city_tier"]) \
        == {1, 2, 3, 4, 5}
    assert db.execute("SELECT count(*) FROM regions WHERE county_en IN "
                      "('Changping', 'Haidian', 'Chaoyang', 'Dongcheng')").fetchone()[0] == 4
    prefixes = db.execute("SELECT prefix FROM geoip").fetchnumpy()["prefix"]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+\.0/24", p) for p in prefixes[:100])
    world_json = json.loads((out / "world.json").read_text())
    assert world_json["seed"] == 11 and world_json["people"] == 3000
