"""Shared fixtures. Servers: under CI=true an unreachable server fails the test; elsewhere
it is a visible skip."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_DSN = os.environ.get("ALLSCENE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ALLSCENE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _need(name: str, host: str, port: int) -> None:
    if _answers(host, port):
        return
    msg = f"{name} is not answering on {host}:{port}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: servers are required, .ci/run starts them)")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    _need("PostgreSQL", "127.0.0.1", 5432)
    return POSTGRES_DSN


@pytest.fixture(scope="session")
def redis_url() -> str:
    _need("Redis", "127.0.0.1", 6379)
    return REDIS_URL


WORLD_PEOPLE = 3000
WORLD_DAYS = 14


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 3,000-person, 14-day world (default start: includes the National Day holidays)."""
    from allscene.world import generate

    out = tmp_path_factory.mktemp("world")
    summary = generate(out, people=WORLD_PEOPLE, days=WORLD_DAYS, seed=11, batch_people=1500,
                       workers=2)
    return out, summary


@pytest.fixture(scope="session")
def world_log(world, tmp_path_factory):
    """The session world's events imported into an event log, as the platform holds them."""
    from allscene.events.ingest import Ingestor
    from allscene.storage import ParquetEventLog

    log = ParquetEventLog(tmp_path_factory.mktemp("log"))
    ing = Ingestor(log)
    for f in sorted((world[0] / "events").glob("*.parquet")):
        ing.import_file(f)
    return log


def _spark_available() -> str | None:
    import shutil

    if shutil.which("java") is None:
        return "no Java runtime (Spark needs one; .ci/run installs it)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[spark]')"
    return None


@pytest.fixture(scope="session", params=["duckdb", "spark"])
def batch_engine(request, tmp_path_factory):
    """An Ibis backend per batch engine: every pipeline test runs on DuckDB and Spark."""
    from allscene.storage.engines import connect

    if request.param == "spark":
        why = _spark_available()
        if why:
            if IN_CI:
                pytest.fail(why + " (CI=true: every engine is required)")
            pytest.skip(why)
        con = connect("spark", warehouse_dir=str(tmp_path_factory.mktemp("spark-warehouse")))
        yield con
        con._session.stop()
        return
    yield connect("duckdb")


# --- the session world's identity graph and tags (built once, on DuckDB) -------------------


@pytest.fixture(scope="session")
def identity(world_log):
    from allscene.identity import device_graph

    devices, people = device_graph(world_log.table())
    return devices.to_pyarrow(), people.to_pyarrow()


@pytest.fixture(scope="session")
def reference(world):
    from allscene.profiles.build import read_reference

    return read_reference(world[0] / "reference")


@pytest.fixture(scope="session")
def tags(world_log, identity, reference):
    from allscene.profiles.build import build_tags

    return build_tags(world_log.table(), *identity, reference)


@pytest.fixture(scope="session")
def tag_table(tags, identity):
    from allscene.profiles.build import wide_tags

    return wide_tags(tags, identity[1]["person_id"].to_pylist())


@pytest.fixture(scope="session")
def consent(world_log, identity):
    import ibis

    from allscene.identity.consent import person_consent

    return person_consent(world_log.table(), ibis.memtable(identity[0])).to_pyarrow()


# --- the ad server (tests/api): a data directory of 200 people, two advertisers ----------------

@pytest.fixture
def ad_settings(tmp_path, monkeypatch):
    from allscene.config import Settings
    from tests.ad_helpers import make_people

    monkeypatch.delenv("ALLSCENE_REDIS_URL", raising=False)
    monkeypatch.delenv("ALLSCENE_CONFIG_URL", raising=False)
    make_people(tmp_path)
    return Settings(data_dir=tmp_path, public_url="http://testserver")


@pytest.fixture
def keys(ad_settings) -> dict[str, str]:
    from allscene.storage.configdb import ConfigStore

    store = ConfigStore(ad_settings.config_db)
    return {a: store.add_advertiser(a, a.title()) for a in ("acme", "globex")}


@pytest.fixture
def ad_client(ad_settings, keys):
    from fastapi.testclient import TestClient

    from allscene.api.app import create_app

    app = create_app(ad_settings)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
