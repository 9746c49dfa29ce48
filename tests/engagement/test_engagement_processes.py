"""20 concurrent clients across 2 server processes drain a 1,000-prize inventory: exactly
1,000 awarded, none twice, every replay answered from the first result, the ledger balanced;
one server is killed mid-draw and its clients retry on the other. Once with the store in
SQLite and per-address limits in Redis, once with the store in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from allscene.config import Settings
from allscene.engagement.service import Engagement
from allscene.storage.configdb import ConfigStore
from allscene.storage.engagedb import EngagementStore
from allscene.storage.online import RedisState
from tests.ad_helpers import make_people
from tests.api.test_ads_two_servers import _start, _wait

PRIZES, DRAWS, CLIENTS = 1000, 1300, 20


def _activity() -> dict:
    now = dt.datetime.now(dt.UTC)
    return {"id": "drain", "name": "Drain", "entry_points": ["phone_lock_screen"],
            "start": (now - dt.timedelta(days=1)).isoformat(),
            "end": (now + dt.timedelta(days=1)).isoformat(),
            "budget_cents": PRIZES * 100,
            "prizes": [{"id": "yuan", "name": "1 yuan", "kind": "cash", "quantity": PRIZES,
                        "amount_cents": 100}],
            "lottery": {"odds": {"yuan": 1.0},
                        "limits": {"per_person_per_day": 1000, "per_ip_per_minute": 100000}}}


@pytest.fixture(params=["sqlite+redis", "postgresql"])
def servers(request, tmp_path):
    make_people(tmp_path, opted_out=())
    env = {"ALLSCENE_TRACKING_SECRET": "engagement-processes-secret"}
    cleanup = []
    if request.param == "postgresql":
        dsn = request.getfixturevalue("postgres_dsn")
        schema = f"eng_{uuid.uuid4().hex[:10]}"
        url = dsn.replace("postgresql://", "postgresql+psycopg://")
        engine = sa.create_engine(url)
        with engine.begin() as c:
            c.execute(sa.text(f"CREATE SCHEMA {schema}"))
        env["ALLSCENE_CONFIG_URL"] = f"{url}?options=-csearch_path%3D{schema}"

        def drop():
            with engine.begin() as c:
                c.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            engine.dispose()
        cleanup.append(drop)
    else:
        redis_url = request.getfixturevalue("redis_url")
        prefix = f"test:{uuid.uuid4().hex[:10]}:"
        env |= {"ALLSCENE_REDIS_URL": redis_url, "ALLSCENE_REDIS_PREFIX": prefix}
        cleanup.append(lambda: RedisState(redis_url, prefix=prefix).clear())
    settings = Settings(data_dir=tmp_path, config_url=env.get("ALLSCENE_CONFIG_URL"))
    key = ConfigStore(settings.config_db).add_advertiser("acme", "Acme")
    store = EngagementStore(settings.config_db)
    Engagement(store, code_key=b"k" * 32).create("acme", _activity())
    procs = [_start(tmp_path, env) for _ in range(2)]
    try:
        for proc, url in procs:
            _wait(url, proc)
        yield procs, store, key
    finally:
        for proc, _ in procs:
            proc.kill()
            proc.wait(timeout=30)
        store.engine.dispose()
        for f in cleanup:
            f()


def test_two_servers_drain_the_inventory_exactly_even_when_one_is_killed(servers):
    procs, store, key = servers
    urls = [url for _, url in procs]
    killed = threading.Event()
    done = Counter()
    lock = threading.Lock()

    def draw(i: int) -> tuple[str, dict]:
        rid, device = f"draw-{i}", f"ph{i % 200}"
        target, first = urls[i % 2], None
        with httpx.Client(timeout=60) as c:
            for _ in range(4):
                if killed.is_set():
                    target = urls[0]
                try:
                    r = c.post(f"{target}/v1/engage/drain/draw",
                               json={"device_id": device, "request_id": rid})
                except httpx.TransportError:
                    target = urls[0]  # the other server is gone: retry the same request
                    continue
                assert r.status_code == 200, r.text
                body = r.json()
                if i % 7 == 0 and first is None:
                    first = body  # some clients send it again: the answer must not change
                    continue
                if first is not None:
                    # (the first answer is itself a replay when the killed server had
                    # committed the draw before the connection dropped)
                    assert body["replayed"] and {**body, "replayed": first["replayed"]} == first
                with lock:
                    done["ok"] += 1
                    if done["ok"] == DRAWS // 2 and not killed.is_set():
                        killed.set()
                        procs[1][0].kill()  # mid-draw: requests to it are in flight
                return rid, body
        raise AssertionError(f"{rid}: no answer")

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = dict(pool.map(draw, range(DRAWS)))
    won = [r for r in results.values() if r["prize"] == "yuan"]
    assert len(won) == PRIZES
    assert sorted(r["draw"] for r in results.values())[:PRIZES] == list(range(1, PRIZES + 1))
    assert len({r["draw"] for r in results.values()}) == len(results)  # no draw twice
    assert sum(r["sold_out"] for r in results.values()) == DRAWS - PRIZES
    assert any(r["replayed"] for r in results.values())
    logged = [r for r in store.requests_of("drain") if r.get("action") == "draw"]
    assert len(logged) == DRAWS  # nothing lost, nothing duplicated, the killed one included
    assert store.pools_of("drain")["prize:yuan"] == (PRIZES, PRIZES)
    assert store.balance("act:drain:budget") == 0
    assert sum(store.balance(f"wallet:p{i}") for i in range(200)) == PRIZES * 100
    assert store.check_ledger()["balanced"]
    with httpx.Client(timeout=30) as c:
        figures = c.get(f"{urls[0]}/v1/activities/drain",
                        headers={"Authorization": f"Bearer {key}"}).json()
        other = c.get(f"{urls[0]}/v1/activities/drain",
                      headers={"Authorization": "Bearer forged"})
    assert figures["prizes"]["yuan"]["left"] == 0 and figures["draws"] == DRAWS
    assert figures["cash_paid_cents"] == PRIZES * 100
    assert other.status_code == 401
