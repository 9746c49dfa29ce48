import gzip

import orjson
import pytest
from fastapi.testclient import TestClient

from allscene.api.app import create_app
from allscene.config import Settings
from tests.factories import event


@pytest.fixture
def client(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, max_body_bytes=1_000_000))
    with TestClient(app) as c:
        yield c


def jsonl(events) -> bytes:
    return b"\n".join(orjson.dumps(e) for e in events)


def test_post_json_lines_gives_per_line_results(client):
    body = jsonl([event("search", 1), event("search", 2, query=None), event("steps", 3)])
    r = client.post("/v1/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200
    out = r.json()
    assert (out["received"], out["accepted"], out["rejected"]) == (3, 2, 1)
    assert [x["status"] for x in out["results"]] == ["accepted", "rejected", "accepted"]
    assert out["results"][1]["errors"] == ["query: Field required"]
    assert client.get("/healthz").json()["events"] == 2


def test_gzip_and_json_array_and_retry(client):
    body = gzip.compress(orjson.dumps([event("tv_watch", i) for i in range(100)]))
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    assert client.post("/v1/events", content=body, headers=headers).json()["accepted"] == 100
    again = client.post("/v1/events", content=body, headers=headers).json()
    assert (again["accepted"], again["duplicates"]) == (0, 100)


def test_bad_bodies_are_refused_clearly(client):
    r = client.post("/v1/events", content=b'[{"a": 1},')
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    r = client.post("/v1/events", content=b"x" * 10, headers={"content-encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.json()["detail"]
    bomb = gzip.compress(b" " * 5_000_000)
    r = client.post("/v1/events", content=bomb, headers={"content-encoding": "gzip"})
    assert r.status_code == 413
    r = client.post("/v1/events", content=b"{}" * 600_000)
    assert r.status_code == 413


def test_openapi_documents_the_ingest_route(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"] and "/healthz" in spec["paths"]


def test_gzip_members_are_all_read_and_truncation_refused(client):
    one = gzip.compress(jsonl([event("search", 1)]) + b"\n")
    two = gzip.compress(jsonl([event("search", 2)]))
    headers = {"content-encoding": "gzip"}
    r = client.post("/v1/events", content=one + two, headers=headers)
    assert (r.json()["received"], r.json()["accepted"]) == (2, 2)
    whole = gzip.compress(jsonl([event("search", i) for i in range(3, 50)]))
    r = client.post("/v1/events", content=whole[:-12], headers=headers)
    assert r.status_code == 400 and "truncated" in r.json()["detail"]
    assert client.get("/healthz").json()["events"] == 2
