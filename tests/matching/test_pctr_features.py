"""Hashed features are deterministic and the same on every path; PCtr plugs into the
decision engine."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.feature_extraction import FeatureHasher

from allscene.delivery.campaigns import parse_campaign
from allscene.delivery.decide import Decider, Request, Viewer, prior_pctr
from allscene.delivery.tracking import Tracker
from allscene.matching.features import (
    Impression,
    ImpressionHasher,
    hash_columns,
    hash_row,
    stable_hash,
)
from allscene.matching.ftrl import FTRL
from allscene.matching.model import LOCAL, PCtr
from allscene.media.placements import load_placements
from allscene.storage.online import MemoryState

IMP = Impression("phone_feed", creative="acme/spring/c0", campaign="acme/spring",
                 advertiser="acme", device_type="phone",
                 tags={"gender": "f", "age": 27, "income": 12_000, "owns_car": True,
                       "interests": ["car", "golf"]},
                 scenes=frozenset({"commute_transit", "cold_snap"}), hour=8, weekday=1,
                 temp_c=-3.2, condition="snow")


def test_hashing_is_stable_across_processes_and_hash_seeds():
    """Another process with another string-hash seed (sets iterate in another order) gets
    the same indices."""
    here = ImpressionHasher(20).indices(IMP).tolist()
    code = ("from allscene.matching.features import *; "
            f"IMP = Impression(**{ {f: getattr(IMP, f) for f in IMP.__slots__} !r}); "
            "print(stable_hash('p=phone_feed'), ImpressionHasher(20).indices(IMP).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    assert out.stdout.split(" ", 1) == ["990659", f"{here}\n"]
    assert stable_hash("p=phone_feed") == 990659


def test_the_same_index_as_sklearn_feature_hasher():
    toks = ImpressionHasher().tokens(IMP)
    fh = FeatureHasher(2**20, input_type="string", alternate_sign=False).transform([toks])
    assert sorted(fh.indices.tolist()) == sorted(ImpressionHasher(20).indices(IMP).tolist())


def test_impression_tokens_cover_every_part_and_the_crosses():
    toks = set(ImpressionHasher().tokens(IMP))
    assert {"p=phone_feed", "dev=phone", "cr=acme/spring/c0", "camp=acme/spring", "adv=acme",
            "t.gender=f", "t.age=~10", "t.income=~88", "t.owns_car=1", "t.interests=car",
            "t.interests=golf", "scene=cold_snap", "scene=commute_transit", "h=8", "wd=1",
            "temp=-5", "cond=snow", "p*cr=phone_feed|acme/spring/c0", "h*p=8|phone_feed",
            "scene*cr=cold_snap|acme/spring/c0", "t.age*camp=~10|acme/spring",
            "t.interests*camp=golf|acme/spring"} <= toks
    bare = ImpressionHasher().tokens(Impression("tv_boot"))
    assert bare == ["p=tv_boot"]  # missing values are no features


def test_rows_and_frames_hash_the_same():
    h = ImpressionHasher(18)
    imps = [Impression("tv_boot", creative="k/c/1", campaign="k/c", advertiser="k",
                       tags={"age": 40, "g": "m"}, scenes={"tv_prime_time"}, hour=21,
                       weekday=5, temp_c=12.0, condition="rain"),
            Impression("phone_feed", creative="k/c/2", campaign="k/c", advertiser="k",
                       tags={"age": 19, "g": "f"}, hour=7, weekday=1, temp_c=None)]
    frame = {"placement": ["tv_boot", "phone_feed"], "creative": ["k/c/1", "k/c/2"],
             "campaign": ["k/c", "k/c"], "advertiser": ["k", "k"],
             "tag.age": np.array([40, 19]), "tag.g": ["m", "f"],
             "scene": ["tv_prime_time", ""], "hour": [21, 7], "weekday": [5, 1],
             "temp_c": [12.0, None], "condition": ["rain", None]}
    a, b = h.transform(imps), h.transform_frame(frame)
    assert (a != b).nnz == 0
    with pytest.raises(ValueError, match="unknown impression column 'age'"):
        h.transform_frame({"age": [1]})


def test_generic_rows_and_columns():
    rows = [{"C1": "05db9164", "I1": 3.0, "I2": 250.0}, {"C1": "", "I1": float("nan"),
                                                          "I2": 1.5}]
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    X = hash_columns(cols, bits=12, numeric=["I1", "I2"])
    for i, r in enumerate(rows):
        assert X[i].indices.tolist() == hash_row(r, bits=12, numeric=["I1", "I2"]).tolist()
    assert X.getnnz(axis=1).tolist() == [3, 1]
    with pytest.raises(ValueError, match="has 1 rows, the first had 2"):
        hash_columns({"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="bits"):
        ImpressionHasher(bits=0)


# -- PCtr --------------------------------------------------------------------------------------
NOON = dt.datetime(2026, 10, 12, 12, tzinfo=LOCAL)


def campaign(cid, creatives=None):
    return parse_campaign({
        "id": cid, "name": cid, "pacing": "asap", "holdout": 0.0,
        "flights": [{"start": "2026-10-01T00:00:00+08:00", "end": "2026-11-01T00:00:00+08:00"}],
        "budget": {"total": 1e6}, "bid": {"type": "cpc", "amount": 5.0},
        "frequency_cap": {"impressions": 100, "per_hours": 24},
        "creatives": creatives or [{"id": "s", "format": "image", "w": 1080, "h": 1920,
                                    "url": "https://cdn.example/s.jpg"}]})


def trained_pctr(tags):
    splash = load_placements().by_id("phone_splash")
    cars, food = campaign("cars"), campaign("food")
    pctr = PCtr(tags_of=tags.get, advertiser_of=lambda c: "adv", clock=NOON.timestamp,
                weather=lambda: {"temp_c": 2.0, "condition": "snow"}, min_events=100)
    imps, clicks = [], []
    for i in range(2000):  # car people click the car ad, the others the food ad
        person = f"p{i % 20}"
        c = cars if i % 2 else food
        imps.append(pctr.impression(Viewer(person), c, splash))
        clicks.append(int((tags[person]["owns_car"]) == (c is cars) and i % 3 == 0))
    pctr.learn(imps, clicks)
    return pctr, splash, cars, food


def test_pctr_is_the_prior_until_trained_then_ranks_by_person():
    tags = {f"p{i}": {"owns_car": i < 10, "age": 20 + i} for i in range(20)}
    untrained = PCtr(tags_of=tags.get, min_events=100)
    splash = load_placements().by_id("phone_splash")
    assert untrained(Viewer("p1"), campaign("x"), splash) == prior_pctr(Viewer("p1"), None,
                                                                         splash)
    pctr, splash, cars, food = trained_pctr(tags)
    assert pctr.trained
    driver, walker = Viewer("p1"), Viewer("p15")
    assert pctr(driver, cars, splash) > pctr(driver, food, splash)
    assert pctr(walker, food, splash) > pctr(walker, cars, splash)
    anyone = pctr(Viewer(None), cars, splash)  # nobody known: ad and context only
    assert 0 < anyone < 1
    assert pctr(Viewer("p1", opted_out=True), cars, splash) == anyone  # tags not used


def test_pctr_fast_path_scores_what_the_impression_hashes():
    tags = {f"p{i}": {"owns_car": i < 10, "age": 20 + i} for i in range(20)}
    pctr, splash, cars, _ = trained_pctr(tags)
    v = Viewer("p3", scenes=frozenset({"cold_snap"}))
    imp = pctr.impression(v, cars, splash, ts=NOON)
    assert imp.creative == "adv/cars/s" and imp.hour == 12 and imp.condition == "snow"
    want = pctr.model.predict_proba(pctr.hasher.transform([imp]))[0, 1]
    assert pctr(v, cars, splash) == pytest.approx(want, rel=1e-12)
    pctr.model.update(pctr.hasher.indices(imp), 1)  # online: the weights are stale now
    want = pctr.model.predict_proba(pctr.hasher.transform([imp]))[0, 1]
    assert pctr(v, cars, splash) == pytest.approx(want, rel=1e-12)


def test_pctr_plugs_into_the_decision_engine():
    tags = {f"p{i}": {"owns_car": i < 10, "age": 20 + i} for i in range(20)}
    pctr, *_ = trained_pctr(tags)
    state = MemoryState()
    d = Decider(load_placements(), state, Tracker(b"test-secret", state), base_url="https://ads.example",
                pctr=pctr)
    d.load([("adv", campaign("cars")), ("adv", campaign("food"))])
    won = {p: d.decide(Request("phone_splash", "dev", NOON), Viewer(p)).campaign
           for p in ("p1", "p15")}
    assert won == {"p1": "cars", "p15": "food"}


def test_pctr_rejects_a_model_of_another_width():
    with pytest.raises(ValueError, match="2\\*\\*12"):
        PCtr(FTRL(bits=12), hasher=ImpressionHasher(20))
