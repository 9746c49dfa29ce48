"""Two server processes sharing one Redis, hammered at once: neither a person's frequency
cap (across their phone and TV, on either server) nor the budget is ever exceeded."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from allscene.config import Settings
from allscene.delivery.campaigns import CampaignService
from allscene.storage.configdb import ConfigStore
from allscene.storage.online import RedisState
from tests.ad_helpers import campaign, make_people

BUDGET, CAP, PRICE = 3.0, 2, 0.09  # 33 impressions; tv_boot's floor is 90 CPM


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data_dir, env: dict) -> tuple[subprocess.Popen, str]:
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "allscene.api.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=os.environ | env | {"ALLSCENE_DATA": str(data_dir)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, f"http://127.0.0.1:{port}"


def _wait(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start in 60 s")


@pytest.fixture
def two_servers(tmp_path, redis_url):
    make_people(tmp_path, opted_out=())
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    settings = Settings(data_dir=tmp_path)
    store = ConfigStore(settings.config_db)
    store.add_advertiser("acme", "Acme")
    tv = {"id": "tv", "format": "image", "w": 1920, "h": 1080, "url": "https://cdn.example/t.jpg"}
    CampaignService(store).create("acme", campaign(
        "flash", budget={"total": BUDGET}, bid={"type": "cpm", "amount": 95.0},
        frequency_cap={"impressions": CAP, "per_hours": 24},
        targeting={"placements": ["tv_boot"]}, creatives=[tv]))
    env = {"ALLSCENE_REDIS_URL": redis_url, "ALLSCENE_REDIS_PREFIX": prefix,
           "ALLSCENE_TRACKING_SECRET": "two-servers-test-secret"}
    procs = [_start(tmp_path, env) for _ in range(2)]
    try:
        for proc, url in procs:
            _wait(url, proc)
        yield [url for _, url in procs], RedisState(redis_url, prefix=prefix)
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=30)
        RedisState(redis_url, prefix=prefix).clear()


def test_two_servers_never_exceed_a_cap_or_the_budget(two_servers):
    urls, state = two_servers
    people = 30  # 30 people x 2 devices x cap 2 = 120 > 33 affordable: the budget binds too
    jobs = [(urls[i % 2], f"{'ph' if i % 3 else 'tv'}{i % people}") for i in range(600)]

    def hit(job):
        url, device = job
        with httpx.Client(timeout=30) as c:
            r = c.post(url + "/v1/decide", json={"placement": "tv_boot", "device_id": device})
        assert r.status_code == 200, r.text
        return device, r.json()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(hit, jobs))
    ads = [(dev, d) for dev, d in results if d["outcome"] == "ad"]
    per_person = Counter(dev[2:] for dev, _ in ads)  # ph7 and tv7 are person p7
    assert max(per_person.values()) <= CAP
    spent = sum(d["ad"]["price_cny"] for _, d in ads)
    assert spent <= BUDGET + 1e-9
    assert state.spend("acme/flash") == pytest.approx(spent)
    assert len(ads) == int(BUDGET / PRICE + 1e-9)  # the whole budget, and not a cent more
    served_by = Counter(url for (url, _), (_, d) in zip(jobs, results, strict=True)
                        if d["outcome"] == "ad")
    assert len(served_by) == 2  # both servers served
