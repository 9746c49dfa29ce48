"""Live scenes over HTTP: events posted to /v1/events feed the engine; /v1/scenes answers."""

import json

import pyarrow.parquet as pq
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from allscene.api.app import create_app
from allscene.cli import app as cli
from allscene.config import Settings


def test_posted_events_move_a_person_into_scenes_and_the_log(tmp_path):
    data = tmp_path / "d"
    r = CliRunner().invoke(cli, ["--data", str(data), "demo", "--people", "300", "--days", "3"])
    assert r.exit_code == 0, r.output
    devices = pq.read_table(data / "derived" / "identity_devices.parquet").to_pylist()
    phone = next(d for d in devices if d["device_type"] == "phone" and d["person_id"])
    person = phone["person_id"]
    client = TestClient(create_app(Settings(data_dir=data)))
    before = client.get("/healthz").json()["events"]
    # Thursday 8 October 2026, 08:10 in Beijing: a ride-hailing app on the way to work.
    lines = [{"event_id": "live-1", "ts": "2026-10-08T00:10:00+00:00", "kind": "app_open",
              "device_id": phone["device_id"], "device_type": "phone", "app": "didi"},
             {"event_id": "live-2", "ts": "2026-10-08T00:12:00+00:00", "kind": "search",
              "device_id": phone["device_id"], "device_type": "phone", "query": "早餐",
              "app": "browser"}]
    body = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines).encode()
    assert client.post("/v1/events", content=body).json()["accepted"] == 2
    got = client.get(f"/v1/scenes/{person}", params={"at": "2026-10-08T08:13:00+08:00"}).json()
    ids = {s["id"] for s in got["scenes"]}
    assert {"commute_taxi", "commuting", "in_car"} <= ids, ids
    assert got["scenes"][0]["name"]["zh"]
    # The scene events are in the log beside the two events.
    assert client.get("/healthz").json()["events"] >= before + 2 + 3
    # Posting the same batch again stores nothing and feeds nothing.
    again = client.post("/v1/events", content=body).json()
    assert again["accepted"] == 0 and again["duplicates"] == 2
    r = client.get(f"/v1/scenes/{person}", params={"at": "2026-10-08T08:13:00"})
    assert r.status_code == 422 and "time zone" in r.text


def test_without_a_scene_run_the_endpoint_says_what_to_do(tmp_path):
    client = TestClient(create_app(Settings(data_dir=tmp_path / "empty")))
    r = client.get("/v1/scenes/someone")
    assert r.status_code == 503 and "scenes run" in r.json()["detail"]
