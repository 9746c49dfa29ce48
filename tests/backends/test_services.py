"""The scale-out servers the later backends use answer as the tests expect."""

import uuid

import pytest

pytestmark = pytest.mark.services


def test_postgres_round_trip(postgres_dsn):
    import psycopg

    with psycopg.connect(postgres_dsn, connect_timeout=5) as conn:
        table = f"allscene_ci_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE TEMP TABLE {table} (k text primary key, v int)")
        conn.execute(f"INSERT INTO {table} VALUES ('a', 1), ('b', 2)")
        assert conn.execute(f"SELECT sum(v) FROM {table}").fetchone()[0] == 3


def test_redis_round_trip(redis_url):
    import redis

    r = redis.Redis.from_url(redis_url, socket_timeout=5)
    key = f"allscene:ci:{uuid.uuid4().hex}"
    try:
        assert r.incrby(key, 5) == 5
        assert r.incrby(key, 2) == 7
    finally:
        r.delete(key)
