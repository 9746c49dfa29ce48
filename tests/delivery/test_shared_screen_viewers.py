"""The ad directory answers a request from a shared screen (a TV, a speaker) with its
household: in an audience when a member is, opted out when a member is. Needs the
shared-screen hook in :class:`allscene.delivery.viewers.Directory`
(:func:`allscene.audiences.households.screen_view`)."""

import datetime as dt

import pyarrow as pa
from pyroaring import BitMap

from allscene.delivery.viewers import Directory

ROW = {"alice": 0, "bob": 1, "carol": 2, "dan": 3}


def _identity():
    rows = [("ph_a", "phone", "alice", "h:1"), ("ph_b", "phone", "bob", "h:1"),
            ("tv_1", "tv", None, "h:1"), ("spk_1", "speaker", None, "h:1"),
            ("ph_c", "phone", "carol", "h:2"), ("tv_2", "tv", None, "h:2"),
            ("ph_d", "phone", "dan", "h:3"), ("tv_3", "tv", None, "h:3")]
    cols = ("device_id", "device_type", "person_id", "household_id")
    return pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(cols)})


def test_the_ad_directory_answers_for_a_shared_screen_with_its_household():
    tags = pa.table({"person_id": list(ROW), "home_county": ["1", "1", "2", None]})
    consent = pa.table({"person_id": ["dan"], "personalized_ads": [False]})
    d = Directory.from_tables(_identity(), tags, consent)
    d.set_audiences({("bud", "fans"): BitMap([1])})
    t = dt.datetime(2026, 10, 12, tzinfo=dt.UTC)
    tv = d.viewer("tv_1", t)
    assert tv.person_id is None and not tv.opted_out and tv.county == "1"
    assert ("bud", "fans") in tv.audiences
    assert ("bud", "fans") not in d.viewer("tv_2", t).audiences  # carol is no fan
    assert d.viewer("tv_3", t).opted_out  # dan opted out: his home's TV too
    assert d.viewer("unknown-tv", t).person_id is None
    assert d.viewer("ph_b", t).person_id == "bob"  # personal devices as before
    d.observe([{"kind": "consent", "device_id": "ph_a", "personalized_ads": False}])
    assert d.viewer("tv_1", t).opted_out  # alice opts out: the shared TV follows
