"""Campaign metrics from hand-made ad events: each counting rule, attribution window, reach
across devices, suppression, and bad input."""

import datetime as dt

import orjson
import pyarrow as pa
import pytest

from allscene.events.ingest import Ingestor
from allscene.measurement.metrics import MeasureError, Rules, measure
from allscene.storage import ParquetEventLog

T0 = dt.datetime(2026, 10, 5, 2, 0, tzinfo=dt.UTC)  # 10:00 in UTC+8
NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
AD = {"advertiser_id": "acme", "campaign_id": "c1", "placement_id": "phone_splash",
      "creative_id": "cr1"}


def _at(s: float) -> str:
    return (T0 + dt.timedelta(seconds=s)).isoformat()


class Log:
    def __init__(self, path):
        self.events, self.log, self.n = [], ParquetEventLog(path), 0

    def add(self, kind, s, device, **kw):
        self.n += 1
        ev = {"event_id": f"e{self.n}", "kind": kind, "ts": _at(s), "device_id": device,
              "device_type": kw.pop("device_type", "phone"), **kw}
        self.events.append(ev)
        return ev

    def served(self, rid, s, device, person, *, cost=0.05, clicked_after=None, decided=None,
               **kw):
        """A decision and its impression (and a click ``clicked_after`` seconds later);
        ``decided`` holds fields of the decision only (scene, audience)."""
        ad = AD | kw
        self.add("ad_decision", s, device, request_id=rid, outcome="ad", account_id=person,
                 cost=cost, **ad, **(decided or {}))
        self.add("ad_impression", s + 1, device, request_id=rid, cost=cost, **ad)
        if clicked_after is not None:
            self.add("ad_click", s + 1 + clicked_after, device, request_id=rid, **ad)

    def store(self):
        body = b"\n".join(orjson.dumps(e) for e in self.events)
        report = Ingestor(self.log, now=NOW).ingest_body(body, "test")
        assert report.accepted == len(self.events), report.as_dict()
        return self.log


def test_counts_reach_across_devices_and_each_invalid_traffic_rule(tmp_path):
    lg = Log(tmp_path / "log")
    # Person p1 sees the ad on the phone and on the TV: two impressions, one person.
    lg.served("r1", 0, "phone1", "p1", clicked_after=5)
    lg.served("r2", 60, "tv1", "p1", placement_id="tv_boot", device_type="tv")
    lg.served("r3", 120, "phone2", "p2", clicked_after=0.2)  # too fast: not a click
    lg.add("ad_impression", 122, "phone2", request_id="r3", cost=0.05, **AD)  # replayed
    lg.add("ad_impression", 130, "phone9", request_id="forged", cost=0.05, **AD)  # no decision
    lg.add("ad_click", 140, "phone9", request_id="nothing", **AD)  # click on no impression
    lg.served("r4", 200, "botphone", "p3", clicked_after=3)  # a known bot
    lg.served("r5", 300, "phone4", "p4", clicked_after=4)
    lg.add("ad_click", 310, "phone4", request_id="r5", **AD)  # duplicate click
    log = lg.store()

    m = measure(log, "acme", ["c1"], rules=Rules(bot_devices=frozenset({"botphone"})),
                by=[["placement"], ["device_type"], ["device_type", "placement"]], min_cell=1)
    t = m.totals
    assert t["impressions"] == 4  # r1, r2, r3, r5
    assert t["reach"] == 3  # p1 (twice), p2, p4
    assert t["frequency"] == pytest.approx(4 / 3)
    assert t["clicks"] == 2  # r1 and r5 once
    assert t["ctr"] == pytest.approx(0.5)
    assert t["cost"] == pytest.approx(0.20)
    assert t["cpm"] == pytest.approx(50.0)
    assert t["cpc"] == pytest.approx(0.10)
    assert m.invalid == {
        "clicks: duplicate": 1, "clicks: known bot device": 1,
        "clicks: no counted impression": 1, "clicks: too fast": 1,
        "impressions: duplicate": 1, "impressions: known bot device": 1,
        "impressions: no matching decision": 1}
    by_device = {r["device_type"]: r for r in m.breakdowns["device_type"].to_pylist()}
    assert by_device["tv"]["impressions"] == 1 and by_device["phone"]["impressions"] == 3
    assert (by_device["tv"]["reach"], by_device["phone"]["reach"]) == (1, 3)  # p1 in both
    crossed = {(r["device_type"], r["placement"]): r["reach"]
               for r in m.breakdowns["device_type/placement"].to_pylist()}
    assert crossed == {("phone", "phone_splash"): 3, ("tv", "tv_boot"): 1}
    assert m.frequency == [(1, 2), (2, 1)]
    assert m.reach_curve == [("2026-10-05", 3)]


def test_click_bursts_from_one_device_are_bot_traffic(tmp_path):
    lg = Log(tmp_path / "log")
    for i in range(5):
        lg.served(f"r{i}", i * 30, "burst", f"p{i}", clicked_after=2)
    lg.served("ok", 10, "calm", "q", clicked_after=2)
    m = measure(lg.store(), "acme", ["c1"], rules=Rules(max_clicks_per_hour=3))
    assert m.totals["clicks"] == 1
    assert m.invalid["clicks: too many clicks from one device in an hour"] == 5


def test_conversions_click_through_view_through_windows_and_retention(tmp_path):
    lg = Log(tmp_path / "log")
    day = 86400
    lg.served("r1", 0, "ph1", "p1", clicked_after=10)
    lg.add("ad_conversion", 100, "ph1", request_id="r1", conversion_type="activation",
           advertiser_id="acme", campaign_id="c1")  # click-through
    lg.add("ad_conversion", day + 50, "ph1", conversion_type="retention",
           advertiser_id="acme")  # retained the next local day
    lg.served("r2", 0, "ph2", "p2")
    lg.add("ad_conversion", 3 * day, "ph2", conversion_type="purchase",
           advertiser_id="acme")  # view-through: p2 saw it three days before
    lg.served("r3", 0, "ph3", "p3")
    lg.add("ad_conversion", 9 * day, "ph3", conversion_type="purchase",
           advertiser_id="acme")  # outside the 7-day view window
    lg.add("ad_conversion", 200, "ph5", conversion_type="lead",
           advertiser_id="acme")  # a person who never saw the ad
    people = pa.table({"device_id": ["ph1", "ph2", "ph3", "ph5"],
                       "person_id": ["p1", "p2", "p3", "p5"]})
    m = measure(lg.store(), "acme", ["c1"], people=people)
    t = m.totals
    assert (t["conv_activation"], t["conv_purchase"], t["conv_lead"]) == (1, 1, 0)
    assert t["view_through"] == 1 and t["conversions"] == 2
    assert t["cpa"] == pytest.approx(0.15 / 2)
    assert (t["activated"], t["retention_1d"], t["retention_7d"]) == (1, 1.0, 1.0)
    wide = measure(lg.log, "acme", ["c1"], people=people, rules=Rules(view_window_d=10))
    assert wide.totals["conv_purchase"] == 2


def test_an_activation_with_no_retention_event_is_activated_and_not_retained(tmp_path):
    lg = Log(tmp_path / "log")
    day = 86400
    for rid, ph in (("r1", "ph1"), ("r2", "ph2")):
        lg.served(rid, 0, ph, f"p-{ph}", clicked_after=10)
        lg.add("ad_conversion", 100, ph, request_id=rid, conversion_type="activation",
               advertiser_id="acme", campaign_id="c1")
    lg.add("ad_conversion", day + 50, "ph1", conversion_type="retention",
           advertiser_id="acme")  # only ph1 comes back, the next local day
    people = pa.table({"device_id": ["ph1", "ph2"], "person_id": ["p-ph1", "p-ph2"]})
    m = measure(lg.store(), "acme", ["c1"], by=[["device_type"]], min_cell=1, people=people)
    t = m.totals
    assert (t["conv_activation"], t["activated"]) == (2, 2)
    assert (t["retained_1d"], t["retained_7d"]) == (1, 1)
    assert t["retention_1d"] == t["retention_7d"] == pytest.approx(0.5)  # not 100%
    (phone,) = m.breakdowns["device_type"].to_pylist()
    assert (phone["activated"], phone["retention_1d"]) == (2, pytest.approx(0.5))


def test_window_and_suppression(tmp_path):
    lg = Log(tmp_path / "log")
    for i in range(6):
        lg.served(f"a{i}", i, f"d{i}", f"p{i}", placement_id="phone_feed")
    lg.served("b", 10, "x", "px", placement_id="tv_boot", device_type="tv")
    lg.served("late", 3 * 86400, "y", "py")
    log = lg.store()
    m = measure(log, "acme", ["c1"], by=[["placement"]], min_cell=5,
                start=T0, end=T0 + dt.timedelta(days=1))
    assert m.totals["impressions"] == 7  # "late" is outside the window
    rows = {r["placement"]: r for r in m.breakdowns["placement"].to_pylist()}
    assert rows["phone_feed"]["impressions"] == 6 and not rows["phone_feed"]["suppressed"]
    assert rows["tv_boot"]["suppressed"] and rows["tv_boot"]["impressions"] is None
    assert m.suppressed == 1


@pytest.mark.parametrize("kw, message", [
    ({"by": [["colour"]]}, "unknown dimension 'colour'"),
    ({"start": T0, "end": T0 - dt.timedelta(hours=1)}, "is not after the start"),
    ({"start": dt.datetime(2026, 10, 1)}, "start: give a time zone"),
])
def test_bad_input_is_explained(tmp_path, kw, message):
    with pytest.raises(MeasureError, match=message):
        measure(ParquetEventLog(tmp_path / "log"), "acme", ["c1"], **kw)


def test_an_empty_log_counts_zero(tmp_path):
    m = measure(ParquetEventLog(tmp_path / "log"), "acme", ["c1"], by=[["day"]])
    assert m.totals["impressions"] == 0 and m.totals["ctr"] is None
    assert m.breakdowns["day"].num_rows == 0


def test_breakdowns_by_the_scene_audience_and_stage_the_decision_recorded(tmp_path):
    lg = Log(tmp_path / "log")
    for i in range(6):
        lg.served(f"s{i}", 10 * i, f"ph{i}", f"p{i}", clicked_after=5 if i < 3 else None,
                  decided={"scene": "commute_subway", "audience": "commuters",
                           "stage": "lookalike_1"})
    for i in range(6, 10):
        lg.served(f"b{i}", 10 * i, f"ph{i}", f"p{i}", clicked_after=5 if i == 6 else None)
    m = measure(lg.store(), "acme", ["c1"], by=[["scene"], ["audience"], ["stage"]],
                min_cell=1)
    stage = {r["stage"]: r["ctr"] for r in m.breakdowns["stage"].to_pylist()}
    assert stage == {"lookalike_1": 0.5, "(no stage)": 0.25}
    scene = {r["scene"]: r for r in m.breakdowns["scene"].to_pylist()}
    assert scene["commute_subway"]["impressions"] == 6 and scene["commute_subway"]["clicks"] == 3
    assert scene["(not targeted)"]["impressions"] == 4 and scene["(not targeted)"]["clicks"] == 1
    audience = {r["audience"]: r["reach"] for r in m.breakdowns["audience"].to_pylist()}
    assert audience == {"commuters": 6, "(not targeted)": 4}
