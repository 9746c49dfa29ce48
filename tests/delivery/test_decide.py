"""The decision engine over the real placement catalog, in-process state."""

from __future__ import annotations

import datetime as dt

import pytest

from allscene.delivery.campaigns import parse_campaign
from allscene.delivery.decide import Decider, Request, Viewer, in_holdout
from allscene.delivery.tracking import Tracker, query_of
from allscene.media.placements import load_placements
from allscene.storage.online import MemoryState

T0 = dt.datetime(2026, 10, 12, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SPLASH = {"id": "s", "format": "image", "w": 1080, "h": 1920, "url": "https://cdn.example/s.jpg"}


def campaign(cid, *, bid=("cpm", 80.0), targeting=None, creatives=None, budget=None,
             holdout=0.0, cap=(100, 24), pacing="asap", stage=None):
    return parse_campaign({"stage": stage,
        "id": cid, "name": cid, "pacing": pacing, "holdout": holdout,
        "flights": [{"start": "2026-10-01T00:00:00+08:00", "end": "2026-11-01T00:00:00+08:00"}],
        "budget": budget or {"total": 1e6}, "bid": {"type": bid[0], "amount": bid[1]},
        "targeting": targeting or {}, "creatives": creatives or [SPLASH],
        "frequency_cap": {"impressions": cap[0], "per_hours": cap[1]}})


@pytest.fixture
def decider():
    state = MemoryState()
    return Decider(load_placements(), state, Tracker(b"test-secret", state),
                   base_url="https://ads.example")


def ask(d, viewer=None, *, at=T0, placement="phone_splash", device="dev1", weather=None):
    return d.decide(Request(placement, device, at, weather or {}),
                    viewer or Viewer("alice"))


def test_the_best_bid_wins_at_the_second_price(decider):
    decider.load([("acme", campaign("high", bid=("cpm", 90.0))),
                  ("globex", campaign("low", bid=("cpm", 70.0)))])
    d = ask(decider)
    assert (d.outcome, d.advertiser, d.campaign) == ("ad", "acme", "high")
    assert d.price_cny == pytest.approx(0.070)  # the next bid, per impression
    q = query_of(d.imp_url)
    assert decider.tracker.verify("imp", q, now=T0.timestamp())["c"] == "high"


def test_a_bid_below_the_floor_does_not_compete(decider):
    decider.load([("acme", campaign("cheap", bid=("cpm", 10.0)))])  # splash floor is 60
    d = ask(decider)
    assert d.outcome == "no_ad" and d.reasons == {"below the floor": 1}


def test_an_opted_out_person_gets_no_targeted_ad(decider):
    decider.load([("acme", campaign("targeted", bid=("cpm", 99.0),
                                    targeting={"counties": ["110105"]})),
                  ("globex", campaign("run_of_network", bid=("cpm", 61.0)))])
    me = Viewer("alice", county="110105")
    assert ask(decider, me).campaign == "targeted"
    d = ask(decider, Viewer("bob", opted_out=True, county="110105"))
    assert d.campaign == "run_of_network"
    assert d.reasons["person opted out of targeting"] == 1
    decider.load([("acme", campaign("targeted2", targeting={"scenes": ["commute_drive"]}))])
    d = ask(decider, Viewer("carol", opted_out=True, scenes=frozenset({"commute_drive"})))
    assert d.outcome == "no_ad"


def test_targeting_reads_scenes_audiences_and_hours(decider):
    decider.load([("acme", campaign("commuters", stage="seed", targeting={
        "scenes": ["commute_drive"], "audiences": ["young_drivers"], "hours": [7, 8]}))])
    inside = Viewer("a", scenes=frozenset({"commute_drive"}),
                    audiences=frozenset({("acme", "young_drivers")}))
    won = ask(decider, inside, at=T0 + dt.timedelta(hours=7))
    assert won.outcome == "ad"
    assert (won.scene, won.audience, won.stage) == ("commute_drive", "young_drivers", "seed")
    assert ask(decider, inside, at=T0 + dt.timedelta(hours=12)).reasons == {
        "not at this hour": 1}
    # Another advertiser's audience of the same name does not count.
    other = Viewer("b", scenes=frozenset({"commute_drive"}),
                   audiences=frozenset({("globex", "young_drivers")}))
    assert ask(decider, other, at=T0 + dt.timedelta(hours=7)).outcome == "no_ad"


def test_the_cap_follows_the_person_across_devices(decider):
    decider.load([("acme", campaign("capped", cap=(2, 24)))])
    got = [ask(decider, Viewer("alice"), device=dev).outcome
           for dev in ("phone", "tv", "band")]
    assert got == ["ad", "ad", "no_ad"]


def test_spending_stops_at_the_budget(decider):
    decider.load([("acme", campaign("small", budget={"total": 0.5}))])
    served = [ask(decider, Viewer(f"p{i}")).outcome for i in range(20)]
    assert served.count("ad") == 8  # 0.06 an impression (the floor), 0.5 in all
    assert decider.state.spend("acme/small") <= 0.5


def test_the_holdout_never_sees_the_campaign_and_is_logged(decider):
    decider.load([("acme", campaign("lift", holdout=0.2))])
    held = shown = 0
    for i in range(1000):
        d = ask(decider, Viewer(f"p{i}"))
        if in_holdout(f"p{i}", "acme/lift", 0.2):
            held += 1
            assert d.outcome == "no_ad" and d.ghosts == [("acme", "lift")]
        else:
            shown += d.outcome == "ad"
    assert 150 < held < 250 and shown == 1000 - held


def test_the_winter_creative_for_a_cold_city(decider):
    creatives = [dict(SPLASH, id="winter", rule="weather.temp_c < 10"), dict(SPLASH, id="all")]
    decider.load([("puma", campaign("jackets", creatives=creatives))])
    assert ask(decider, weather={"temp_c": 4.0}).creative["id"] == "winter"
    assert ask(decider, Viewer("bob"), weather={"temp_c": 24.0}).creative["id"] == "all"
    assert ask(decider, Viewer("eve")).creative["id"] == "all"  # no weather report


def test_even_pacing_spends_each_hour_near_its_plan(decider):
    decider.load([("acme", campaign("even", pacing="even",
                                    budget={"total": 100.0, "daily": 24.0}))])
    spent = []
    for h in range(24):
        before = decider.state.spend("acme/even", "2026-10-12")
        for i in range(600):  # more traffic than the plan needs
            ask(decider, Viewer(f"h{h}-{i}"), at=T0 + dt.timedelta(hours=h, seconds=i * 5))
        spent.append(decider.state.spend("acme/even", "2026-10-12") - before)
    assert all(abs(s - 1.0) <= 0.1 for s in spent), spent


def test_after_hours_without_traffic_the_rest_of_the_day_is_spread_evenly(decider):
    decider.load([("acme", campaign("even", pacing="even",
                                    budget={"total": 100.0, "daily": 24.0}))])
    spent = []
    for h in range(6, 24):  # no requests from midnight to 6 am
        before = decider.state.spend("acme/even", "2026-10-12")
        for i in range(600):
            ask(decider, Viewer(f"h{h}-{i}"), at=T0 + dt.timedelta(hours=h, seconds=i * 5))
        spent.append(decider.state.spend("acme/even", "2026-10-12") - before)
    plan = 24.0 / 18  # the whole day's budget over the 18 hours left
    assert all(abs(s - plan) <= 0.1 * plan for s in spent), spent
    assert sum(spent) <= 24.0


def test_an_unknown_placement_is_an_error(decider):
    with pytest.raises(KeyError, match="unknown placement"):
        ask(decider, placement="nope")
