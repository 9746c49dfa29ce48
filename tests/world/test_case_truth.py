"""Claims the world scores: whom a campaign truly reached, from hand-made ad logs and a
hand-made world."""

import datetime as dt
from types import SimpleNamespace

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from allscene.audiences.expr import In, parse
from allscene.events.ingest import Ingestor
from allscene.measurement.casebook import ClaimResult
from allscene.storage import ParquetEventLog
from allscene.world.case_truth import (
    MIN_UNITS,
    Score,
    WorldPeople,
    counted_impressions,
    score_claims,
    world_claims,
)
from allscene.world.replay import CASES_DIR

T0 = dt.datetime(2026, 10, 12, 2, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


class Log:
    def __init__(self, path):
        self.events, self.log = [], ParquetEventLog(path)

    def add(self, kind, device, **kw):
        self.events.append({"event_id": f"e{len(self.events)}", "kind": kind,
                            "ts": (T0 + dt.timedelta(seconds=len(self.events))).isoformat(),
                            "device_id": device, "device_type": kw.pop("device_type", "phone"),
                            **kw})

    def served(self, rid, device, campaign, *, impressions=1, outcome="ad"):
        ad = {"advertiser_id": "acme", "campaign_id": campaign, "placement_id": "phone_feed",
              "creative_id": "cr1"}
        self.add("ad_decision", device, request_id=rid, outcome=outcome, **ad)
        for _ in range(impressions):
            self.add("ad_impression", device, request_id=rid, **ad)

    def files(self):
        body = b"\n".join(orjson.dumps(e) for e in self.events)
        rep = Ingestor(self.log, now=NOW).ingest_body(body, "test")
        assert rep.accepted == len(self.events), rep.as_dict()
        return self.log.files("events")


def test_an_impression_counts_once_and_only_behind_its_own_ad_decision(tmp_path):
    lg = Log(tmp_path / "log")
    lg.served("r1", "ph1", "a")
    lg.served("r2", "ph2", "a", impressions=2)  # a replayed tracking URL: once
    lg.served("r3", "ph3", "b")
    lg.served("r4", "ph4", "a", impressions=0)  # decided, never shown
    lg.served("r5", "ph5", "a", outcome="holdout", impressions=0)
    ad = {"advertiser_id": "acme", "placement_id": "phone_feed", "creative_id": "cr1"}
    lg.add("ad_impression", "ph6", request_id="forged", campaign_id="a", **ad)
    lg.add("ad_impression", "ph7", request_id="r3", campaign_id="a", **ad)  # b's request
    served = counted_impressions(lg.files(), ["a", "b", "c"])
    assert sorted(served["a"]) == ["ph1", "ph2"]
    assert served["b"] == ["ph3"] and served["c"] == []
    assert counted_impressions([], ["a"]) == {"a": []}


@pytest.fixture()
def tiny_world(tmp_path):
    """Six people in three homes; p5 and p6 live in county 2, the others in county 1."""
    truth = tmp_path / "world" / "truth"
    truth.mkdir(parents=True)
    pq.write_table(pa.table({
        "person_id": ["p1", "p2", "p3", "p4", "p5", "p6"],
        "household_id": ["h1", "h1", "h2", "h2", "h3", "h3"],
        "age": [40, 12, 19, 45, 30, 33],
        "home_county_code": ["1", "1", "1", "1", "2", "2"],
        "interest_sports": [0.0, 1.2, 0.9, 0.0, 0.0, 0.0]}), truth / "people.parquet")
    pq.write_table(pa.table({
        "device_id": ["ph1", "ph2", "ph3", "ph4", "ph5", "ph6", "tv1", "tv2", "tv3"],
        "person_id": ["p1", "p2", "p3", "p4", "p5", "p6", "p1", "p3", "p5"],
        "household_id": ["h1", "h1", "h2", "h2", "h3", "h3", "h1", "h2", "h3"]}),
        truth / "devices.parquet")
    return tmp_path / "world"


def test_world_people_fit_as_persons_and_as_households(tiny_world):
    w = WorldPeople(tiny_world)
    assert w.fitting('home_county_code = "1"', "person") == {"p1", "p2", "p3", "p4"}
    # a household fits when one member does: h1 has p2 (12) but no adult fan, h2 has none
    fans = "age >= 18 and interest_sports > 0"
    assert w.fitting(fans, "person") == {"p3"}
    assert w.fitting(fans, "household") == {"h2"}
    assert w.units(["ph1", "tv1", "ph2", "unknown"], "person") == {"p1", "p2"}
    assert w.units(["ph1", "tv1", "ph2"], "household") == {"h1"}
    s = w.score(["ph1", "ph5", "ph6", "ph6"], fit='home_county_code = "1"')
    assert (s.reached, s.fit_reached, s.fit_share) == (3, 1, 1 / 3)
    with pytest.raises(ValueError, match="unit"):
        w.fitting(fans, "street")


def test_a_score_has_no_figures_below_the_minimum():
    s = Score(reached=4, fit_reached=3)
    assert s.figure("fit_share", min_units=4) == 0.75
    assert s.figure("reached", min_units=5) is None and Score(0, 0).fit_share is None
    assert Score(MIN_UNITS, 1).figure("fit_reached") == 1.0
    with pytest.raises(ValueError, match="unknown world metric"):
        s.figure("ctr", min_units=1)


def test_claims_hold_fail_or_stay_unanswered(tiny_world):
    w = WorldPeople(tiny_world)
    served = {"good": ["ph1", "ph2", "ph3", "ph5"], "bad": ["ph4", "ph5", "ph6"],
              "tiny": ["ph1"]}
    spec = {"claim": "c", "metric": "fit_share", "fit": 'home_county_code = "1"',
            "order": ["good", "bad"], "article": "a"}
    held, failed, unknown = score_claims(
        [spec, dict(spec, order=["bad", "good"]), dict(spec, order=["good", "tiny"])],
        served, w, min_units=2)
    assert isinstance(held, ClaimResult) and held.article == "a"
    assert held.figures == [("good", 0.75), ("bad", 1 / 3)] and held.holds is True
    assert failed.holds is False
    assert unknown.figures[1] == ("tiny", None) and unknown.holds is None
    homes = score_claims([dict(spec, metric="reached", unit="household",
                               fit="interest_sports > 0")], served, w, min_units=1)[0]
    assert homes.figures == [("good", 3.0), ("bad", 2.0)] and homes.holds


def test_world_claims_of_a_case_read_its_replay(tmp_path, tiny_world):
    lg = Log(tmp_path / "log")
    for i, d in enumerate(["ph1", "ph2", "ph3", "tv1"]):
        lg.served(f"r{i}", d, "res")
    for i, d in enumerate(["ph4", "ph5", "ph6"]):
        lg.served(f"q{i}", d, "ip")
    lg.files()
    settings = SimpleNamespace(log_dir=tmp_path / "log", world_dir=tiny_world)
    doc = {"world_claims": [{"claim": "residents", "metric": "fit_reached",
                             "order": ["res", "ip"], "fit": 'home_county_code = "1"'}]}
    (r,) = world_claims(settings, doc, min_units=2)
    assert r.figures == [("res", 3.0), ("ip", 1.0)] and r.holds  # tv1 is p1's: once
    assert world_claims(settings, {"claims": []}) == []


def _counties(expr: str) -> set[str]:
    node = parse(expr)
    assert isinstance(node, In)
    return set(node.values)


def test_the_intel_case_scores_the_counties_it_targets():
    doc = yaml.safe_load((CASES_DIR / "intel.yaml").read_text())
    aud = doc["audiences"]
    assert parse(aud["county_residents"]).tag == "home_county"
    assert parse(aud["county_by_ip"]).tag == "home_county_ip"
    wanted = _counties(aud["county_residents"])
    assert len(wanted) > 10 and _counties(aud["county_by_ip"]) == wanted
    for spec in doc["world_claims"]:
        assert _counties(spec["fit"]) == wanted
        assert spec["order"] == ["intel_residents", "intel_ip"]
    a, b = doc["campaigns"]
    same = ("budget", "bid", "pacing", "frequency_cap", "holdout", "creatives")
    assert all(a[k] == b[k] for k in same)
    assert a["targeting"]["placements"] == b["targeting"]["placements"]
    days = [{f["start"] for f in c["flights"]} for c in (a, b)]
    assert len(days[0]) == len(days[1]) and not days[0] & days[1]
