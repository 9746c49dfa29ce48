"""VAST documents validate against the IAB's own VAST 4.2 schema."""

from __future__ import annotations

import datetime as dt

import pytest

from allscene.config import shared_data
from allscene.delivery.campaigns import parse_campaign
from allscene.delivery.decide import Decider, Request, Viewer
from allscene.delivery.tracking import Tracker
from allscene.media.placements import load_placements
from allscene.media.vast import no_ad, vast_for
from allscene.storage.online import MemoryState

etree = pytest.importorskip("lxml.etree")

VIDEO = {"id": "tvc15", "format": "video", "url": "https://cdn.example/a.mp4",
         "mime": "video/mp4", "w": 1920, "h": 1080, "duration_s": 15}


@pytest.fixture(scope="module")
def schema():
    folder = shared_data("iab_vast_xsd", "ALLSCENE_VAST_XSD_DIR")
    if not (folder / "vast_4.2.xsd").is_file():
        pytest.skip("shared/data/iab_vast_xsd is not here (set ALLSCENE_VAST_XSD_DIR)")
    return etree.XMLSchema(etree.parse(str(folder / "vast_4.2.xsd")))


def valid(schema, xml: str) -> None:
    doc = etree.fromstring(xml.encode("utf-8"))
    assert schema.validate(doc), schema.error_log.last_error


def test_an_inline_ad_and_the_empty_answer_validate(schema):
    valid(schema, vast_for("dec-1", VIDEO, advertiser="Acme & Sons", title="Spring <SUV>",
                           impression_url="https://t/imp?a=1&b=2", click_url="https://t/c?x=1",
                           landing="https://acme.example", error_url="https://t/err"))
    valid(schema, vast_for("dec-2", dict(VIDEO, duration_s=3725.4), advertiser="A", title="T",
                           impression_url="https://t/i", click_url="https://t/c"))
    valid(schema, no_ad())
    valid(schema, no_ad("https://t/err?code=303"))


def test_a_decision_on_a_tv_placement_becomes_valid_vast(schema):
    state = MemoryState()
    d = Decider(load_placements(), state, Tracker(b"vast-secret", state),
                base_url="https://ads.example")
    d.load([("acme", parse_campaign({
        "id": "tv", "name": "TV spring", "pacing": "asap", "holdout": 0,
        "flights": [{"start": "2026-10-01T00:00:00+08:00", "end": "2026-11-01T00:00:00+08:00"}],
        "budget": {"total": 1000}, "bid": {"type": "cpm", "amount": 120},
        "creatives": [VIDEO]}))])
    out = d.decide(Request("tv_preroll", "tv1", dt.datetime(2026, 10, 5, 20, tzinfo=dt.UTC)),
                   Viewer("alice"))
    assert out.outcome == "ad"
    xml = vast_for(out.request_id, out.creative, advertiser=out.advertiser, title=out.campaign,
                   impression_url=out.imp_url, click_url=out.click_url)
    valid(schema, xml)
    assert out.imp_url.replace("&", "&amp;") in xml


def test_only_video_goes_into_vast():
    with pytest.raises(ValueError, match="VAST carries video"):
        vast_for("d", {"id": "x", "format": "image"}, advertiser="a", title="t",
                 impression_url="u", click_url="c")
