"""Household audiences: a shared screen is in an audience when a member of its home is."""

import tempfile

import pyarrow as pa
from pyroaring import BitMap

from allscene.audiences.households import AnyMember, household_screens, screen_view
from allscene.audiences.service import Audiences
from allscene.audiences.store import AudienceStore

ROW = {"alice": 0, "bob": 1, "carol": 2, "dan": 3}


def test_a_household_is_in_an_audience_when_any_member_is():
    bitmaps = {("bud", "fans"): BitMap([1, 3]), ("bud", "kids"): BitMap([2])}
    m = AnyMember([0, 1], bitmaps)
    assert ("bud", "fans") in m and ("bud", "kids") not in m
    assert ("bud", "nobody") not in m and ("other", "fans") not in m
    assert list(m) == [("bud", "fans")]
    assert ("bud", "fans") not in AnyMember([], bitmaps)


def test_screen_view_counts_the_household_out_when_anyone_opted_out():
    bitmaps = {("bud", "fans"): BitMap([1])}
    county = {"alice": "110114", "bob": "110108", "carol": "110108"}
    v = screen_view(("alice", "bob", "carol"), row=ROW, bitmaps=bitmaps, opted_out=set(),
                    county=county)
    assert not v.opted_out and ("bud", "fans") in v.audiences
    assert v.county == "110108"  # where most of the household sleeps
    out = screen_view(("alice", "bob", "carol"), row=ROW, bitmaps=bitmaps,
                      opted_out={"carol"}, county=county)
    assert out.opted_out and ("bud", "fans") not in out.audiences and out.county is None


def test_screen_view_of_strangers_to_the_tag_table_is_in_no_audience():
    v = screen_view(("zoe",), row=ROW, bitmaps={("bud", "fans"): BitMap([0])},
                    opted_out=set(), county={})
    assert not v.opted_out and v.county is None and ("bud", "fans") not in v.audiences
    tie = screen_view(("alice", "bob"), row=ROW, bitmaps={}, opted_out=set(),
                      county={"alice": "2", "bob": "1"})
    assert tie.county == "1"


def test_screen_view_sees_audience_changes_made_after_it():
    bitmaps = {("bud", "fans"): BitMap()}
    v = screen_view(("alice",), row=ROW, bitmaps=bitmaps, opted_out=set(), county={})
    assert ("bud", "fans") not in v.audiences
    bitmaps[("bud", "fans")].add(0)
    assert ("bud", "fans") in v.audiences


def _identity():
    rows = [("ph_a", "phone", "alice", "h:1"), ("ph_b", "phone", "bob", "h:1"),
            ("tv_1", "tv", None, "h:1"), ("spk_1", "speaker", None, "h:1"),
            ("ph_c", "phone", "carol", "h:2"), ("tv_2", "tv", None, "h:2"),
            ("ph_d", "phone", "dan", "h:3"), ("tv_3", "tv", None, "h:3")]
    cols = ("device_id", "device_type", "person_id", "household_id")
    return pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(cols)})


def test_household_screens_lists_the_tvs_an_audience_reaches():
    people = list(ROW)
    t = household_screens(BitMap([1, 3]), people, _identity())  # bob and dan
    assert t.to_pylist() == [{"device_id": "tv_1", "household_id": "h:1", "members": 1},
                             {"device_id": "tv_3", "household_id": "h:3", "members": 1}]
    both = household_screens(BitMap([0, 1]), people, _identity(), device_types=("tv", "speaker"))
    assert both["device_id"].to_pylist() == ["spk_1", "tv_1"] and both["members"][0].as_py() == 2
    assert household_screens(BitMap([1, 3]), people, _identity(),
                             opted_out={"alice"})["device_id"].to_pylist() == ["tv_3"]
    assert household_screens(BitMap(), people, _identity()).num_rows == 0


def test_from_an_audience_expression_to_the_tvs_of_its_homes():
    people = [f"p{i}" for i in range(120)]
    tags = pa.table({"person_id": people, "age": [15 + i % 50 for i in range(120)],
                     "interest.sports@30d": [i % 3 for i in range(120)]})
    consent = pa.table({"person_id": ["p3"], "personalized_ads": [False]})
    aud = Audiences(tags, consent, AudienceStore(tempfile.mkdtemp()), advertiser="bud")
    fans = aud.members("age >= 21 and interest.sports >= 2 in 30d")
    # two people per household, a TV in every household
    rows = [(f"ph{i}", "phone", p, f"h:{i // 2}") for i, p in enumerate(people)]
    rows += [(f"tv{h}", "tv", None, f"h:{h}") for h in range(60)]
    cols = ("device_id", "device_type", "person_id", "household_id")
    devices = pa.table({c: pa.array([r[i] for r in rows], pa.string())
                        for i, c in enumerate(cols)})
    screens = household_screens(fans, people, devices, opted_out={"p3"})
    homes = {f"h:{i // 2}" for i in fans}
    assert set(screens["household_id"].to_pylist()) == homes - {"h:1"}  # p3 lives in h:1
    assert len(screens) < 60 and all(n >= 1 for n in screens["members"].to_pylist())

