"""The click model learnt from logged impressions and clicks ranks ads per person once the
ad server loads it: car owners get the car ad, the others the food ad."""

from __future__ import annotations

import datetime as dt
import random

import orjson
import pyarrow as pa

from allscene.events.ingest import Ingestor
from allscene.matching.train import MODEL_FILE, impressions, train
from allscene.storage import ParquetEventLog
from allscene.storage.tables import TableStore

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
PEOPLE = 200


def _log(tmp_path) -> ParquetEventLog:
    rng, events = random.Random(3), []
    for i in range(6000):
        p = rng.randrange(PEOPLE)
        camp = rng.choice(["car", "food"])
        owner = p % 2 == 0
        rate = 0.3 if (camp == "car") == owner else 0.02
        rid = f"r{i}"
        base = {"device_id": f"ph{p}", "device_type": "phone", "request_id": rid,
                "placement_id": "phone_feed", "campaign_id": camp, "creative_id": "c1",
                "advertiser_id": "acme"}
        ts = T0 + dt.timedelta(seconds=30 * i)
        events.append(base | {"event_id": f"d{i}", "kind": "ad_decision", "outcome": "ad",
                              "account_id": f"p{p}", "ts": ts.isoformat()})
        events.append(base | {"event_id": f"i{i}", "kind": "ad_impression",
                              "ts": (ts + dt.timedelta(seconds=1)).isoformat()})
        if rng.random() < rate:
            events.append(base | {"event_id": f"k{i}", "kind": "ad_click",
                                  "ts": (ts + dt.timedelta(seconds=9)).isoformat()})
    log = ParquetEventLog(tmp_path / "log")
    rep = Ingestor(log, now=NOW).ingest_body(b"\n".join(orjson.dumps(e) for e in events), "t")
    assert rep.accepted == len(events)
    return log


def test_learnt_from_the_log_and_ranking_per_person(tmp_path):
    log = _log(tmp_path)
    tags = pa.table({"person_id": [f"p{i}" for i in range(PEOPLE)],
                     "owns_car": [i % 2 == 0 for i in range(PEOPLE)],
                     "age": [20 + i % 40 for i in range(PEOPLE)]})
    frame, y = impressions(log, tags=tags, opted_out={"p4"})
    assert len(y) == 6000 and 0.1 < y.mean() < 0.25
    assert frame["creative"][0] in ("acme/car/c1", "acme/food/c1")
    out4 = frame["tag.owns_car"][frame["campaign"] == frame["campaign"]]  # all rows
    assert any(v is None for v in out4)  # p4 opted out: learnt without tags
    model, rep = train(frame, y, bits=18)
    assert rep["model"].auc > 0.75 > rep["constant"].auc
    assert rep["model"].logloss < rep["constant"].logloss
    model.save(tmp_path / "model.npz")

    # The ad server loads the model from the data directory and ranks CPC campaigns by it.
    from allscene.config import Settings
    from allscene.delivery.campaigns import CampaignService
    from allscene.delivery.server import build_ad_server
    from allscene.events.ingest import Ingestor as Ing
    from allscene.storage.configdb import ConfigStore
    from tests.ad_helpers import campaign

    data = tmp_path / "data"
    tables = TableStore(data / "derived")
    tables.write("identity_devices", pa.table({"device_id": [f"ph{i}" for i in range(PEOPLE)],
                                               "person_id": [f"p{i}" for i in range(PEOPLE)]}))
    tables.write("tag_table", tags)
    tables.write("consent", pa.table({"person_id": ["p4"], "personalized_ads": [False]}))
    # `allscene pctr train` learns from the data directory's log and saves the model.
    import shutil

    from typer.testing import CliRunner

    from allscene.cli import app
    shutil.copytree(tmp_path / "log", data / "log")
    r = CliRunner().invoke(app, ["--data", str(data), "pctr", "train", "--bits", "18"])
    assert r.exit_code == 0, r.output
    assert (data / MODEL_FILE).exists() and "FTRL" in r.output
    settings = Settings(data_dir=data)
    store = ConfigStore(settings.config_db)
    store.add_advertiser("acme", "Acme")
    feed = {"id": "c1", "format": "native", "w": 1280, "h": 720, "text": "新品",
            "url": "https://cdn.example/f.jpg"}
    for cid in ("car", "food"):
        CampaignService(store).create("acme", campaign(
            cid, bid={"type": "cpc", "amount": 1.0}, budget={"total": 1000.0},
            targeting={"placements": ["phone_feed"]}, creatives=[feed]))
    log2 = ParquetEventLog(tmp_path / "log2")
    ads = build_ad_server(settings, log2, Ing(log2))
    assert ads.decider.pctr.trained  # the model, not the prior
    won = {p: ads.decide("phone_feed", f"ph{p}").campaign for p in (0, 1, 2, 3)}
    assert won == {0: "car", 1: "food", 2: "car", 3: "food"}
    ads.adlog.close()
