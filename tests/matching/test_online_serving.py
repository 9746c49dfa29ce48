"""The ad server learns its click model from its own impressions and clicks, and ranks CPC
campaigns with what it learnt."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from allscene.delivery.campaigns import CampaignService
from allscene.delivery.server import build_ad_server
from allscene.events.ingest import Ingestor
from allscene.matching.model import PCtr
from allscene.storage import ParquetEventLog
from allscene.storage.configdb import ConfigStore
from tests.ad_helpers import PEOPLE, campaign

FEED = {"id": "c1", "format": "native", "w": 1280, "h": 720, "text": "新品",
        "url": "https://cdn.example/f.jpg"}


def _server(settings, tmp_path):
    store = ConfigStore(settings.config_db)
    store.add_advertiser("acme", "Acme")
    for cid in ("young", "old"):
        CampaignService(store).create("acme", campaign(
            cid, bid={"type": "cpc", "amount": 20.0}, budget={"total": 1e6},
            targeting={"placements": ["phone_feed"]}, creatives=[FEED | {"id": cid}]))
    log = ParquetEventLog(tmp_path / "served")
    return build_ad_server(settings, log, Ingestor(log))


def test_the_server_learns_who_clicks_what_and_ranks_by_it(ad_settings, tmp_path):
    """People under 40 click the "young" ad, older people the "old" one. The untrained model
    answers with the prior (a tie: one campaign wins every request); as labels come back the
    server learns, and the other campaign starts winning the people it suits."""
    ads = _server(ad_settings, tmp_path)
    assert isinstance(ads.decider.pctr, PCtr) and not ads.decider.pctr.trained
    ads.learner.batch = 200  # learn often: this test's traffic is small
    rng = np.random.default_rng(3)
    t = dt.datetime(2026, 10, 12, 1, tzinfo=dt.UTC)
    age = {f"ph{i}": 20 + i % 40 for i in range(PEOPLE)}  # as make_people writes them
    won: list[tuple[int, str]] = []
    for _ in range(20):
        for dev in sorted(age):
            t += dt.timedelta(seconds=5)
            d = ads.decide("phone_feed", dev, ts=t, weather={"temp_c": 12.0})
            if d.outcome != "ad":
                continue  # p1 opted out: the prior still serves them, but check the rest
            won.append((age[dev], d.campaign))
            ads.track("imp", dict(parse_qsl(urlsplit(d.imp_url).query)), now=t)
            suits = d.campaign == ("young" if age[dev] < 40 else "old")
            if suits and rng.random() < 0.5:
                ads.track("click", dict(parse_qsl(urlsplit(d.click_url).query)),
                          now=t + dt.timedelta(seconds=3))
    stats = ads.learner.stats
    assert ads.decider.pctr.trained and stats.learnt > 2000 and stats.clicks > 300
    first = {c for _, c in won[:500]}
    assert len(first) == 1  # the prior: the same campaign for everyone
    late = won[-3 * PEOPLE:]  # the last three rounds
    right = sum(c == ("young" if a < 40 else "old") for a, c in late)
    assert right / len(late) > 0.9, late
    # the model was scored in the request's own context (its hour), not the wall clock's
    assert ads.decider.pctr._when(None) == (t.astimezone(dt.timezone(dt.timedelta(hours=8))).hour,
                                            t.isoweekday())
    ads.adlog.close()


def test_online_learning_can_be_turned_off(ad_settings, tmp_path):
    ads = _server(ad_settings.model_copy(update={"pctr_online": False}), tmp_path)
    assert ads.learner is None and not isinstance(ads.decider.pctr, PCtr)
    ads.adlog.close()


def test_labels_wait_for_their_window_and_unshown_ads_are_dropped():
    from allscene.delivery.campaigns import Campaign
    from allscene.delivery.decide import Viewer
    from allscene.matching.online import OnlineLearner
    from allscene.media.placements import load_placements

    feed = load_placements().by_id("phone_feed")
    c = Campaign.model_validate(campaign("x", creatives=[FEED]))
    learner = OnlineLearner(PCtr(tags_of={}.get), label_after_s=600, batch=1)
    t0 = dt.datetime(2026, 10, 12, tzinfo=dt.UTC)
    for i in range(3):
        learner.decided(f"r{i}", Viewer(f"p{i}"), c, feed, "c1", t0, {})
    learner.shown("r0")
    learner.clicked("r1")
    learner.clicked("unknown")  # ignored
    assert learner.advance(t0 + dt.timedelta(seconds=599)) == 0 and len(learner) == 3
    assert learner.advance(t0 + dt.timedelta(seconds=600)) == 2 and len(learner) == 0
    s = learner.stats
    assert (s.learnt, s.clicks, s.dropped) == (2, 1, 1) and s.logloss > 0
