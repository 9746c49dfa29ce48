"""The placement catalog: what it holds, every way a broken one is refused, creative fit, and
the OpenRTB 2.6 imp it writes and reads (checked against the IAB spec and its examples)."""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from allscene.config import shared_data
from allscene.events.schema import DEVICE_TYPES
from allscene.media import Placement, PlacementError, load_placements, placement_for_imp
from allscene.media.placements import KINDS, RTB_OBJECT, default_path

# Every placement the issue names, by id.
REQUIRED = [
    "phone_lock_screen", "phone_splash", "phone_feed", "phone_focus_image",
    "phone_video_preroll", "phone_browser", "phone_news", "phone_video", "phone_music",
    "phone_security_center", "phone_weather", "phone_calendar_card", "phone_search_banner",
    "phone_trending_words", "tv_boot", "tv_screensaver", "tv_preroll", "speaker_spoken",
    "band_notification",
]


@pytest.fixture(scope="module")
def cat():
    return load_placements()


def test_the_catalog_covers_every_placement_the_issue_names(cat):
    assert [p.id for p in cat] == REQUIRED
    assert {p.device_type for p in cat} == {"phone", "tv", "speaker", "band"}
    assert {p.id for p in cat.for_device("tv")} == {"tv_boot", "tv_screensaver", "tv_preroll"}
    for p in cat:
        assert p.device_type in DEVICE_TYPES and p.id.startswith(p.device_type)
        assert p.name_zh and p.name_en and p.description and p.surface
        assert p.formats and p.floor_cny > 0 and p.daily_impressions >= 1
    assert cat.by_id("phone_splash").name_zh == "开屏广告"
    with pytest.raises(KeyError):
        cat.by_id("phone_nowhere")


def test_formats_have_the_specs_of_their_surface(cat):
    assert (1080, 1920) in cat.by_id("phone_splash").format("image").sizes
    assert cat.by_id("tv_boot").format("image").sizes[0] == (1920, 1080)
    assert cat.by_id("phone_feed").format("native").sizes[0] == (1280, 720)
    pre = cat.by_id("phone_video_preroll").format("video")
    assert pre.mimes == ("video/mp4",) and (pre.min_duration_s, pre.max_duration_s) == (5, 30)
    assert not pre.skippable and cat.by_id("phone_splash").format("video").skippable
    assert cat.by_id("speaker_spoken").format("audio").max_duration_s == 15
    assert cat.by_id("band_notification").kinds == ("text",)
    assert cat.by_id("band_notification").format("text").max_chars == 20
    assert {p.id for p in cat if p.vast} == {"phone_video_preroll", "tv_boot", "tv_screensaver",
                                            "tv_preroll"}
    assert all(p.format("video") for p in cat if p.vast)


def test_floors_rank_full_screen_first_impressions_high_and_text_low(cat):
    floors = sorted(p.floor_cny for p in cat)
    median = floors[len(floors) // 2]
    by = {p.id: p.floor_cny for p in cat}
    assert by["tv_boot"] == floors[-1] and by["phone_splash"] >= floors[-4]
    assert by["phone_trending_words"] < median and by["band_notification"] < median
    assert by["phone_video_preroll"] > by["phone_feed"] > by["phone_trending_words"]


# --- broken files ---------------------------------------------------------------------------

def entry(**over):
    e = {"id": "test_slot", "device_type": "phone", "name": {"zh": "测试", "en": "Test"},
         "description": "d", "surface": "s", "formats": {"image": {"sizes": ["1080x1920"]}},
         "floor_cny": 10, "daily_impressions": 3, "vast": False}
    e.update(over)
    return {k: v for k, v in e.items() if v is not None}


def load(*entries):
    return load_placements(text=yaml.safe_dump({"placements": list(entries)},
                                               allow_unicode=True))


VIDEO = {"sizes": ["1920x1080"], "mimes": ["video/mp4"], "max_duration_s": 15,
         "skippable": False}


@pytest.mark.parametrize("over, message", [
    ({"device_type": "watch"}, "device_type 'watch' is not one of phone, tv, speaker, band"),
    ({"formats": {"gif": {"sizes": ["1x1"]}}}, "unknown format 'gif'; formats are image, native"),
    ({"formats": {"image": {}}}, "formats.image: missing 'sizes'"),
    ({"formats": {"image": {"sizes": []}}}, "formats.image: sizes must be a list like"),
    ({"formats": {"image": {"sizes": ["1080*1920"]}}}, "size '1080*1920' is not like 1080x1920"),
    ({"formats": {"image": {"sizes": ["1x1"], "fps": 30}}}, "formats.image: unknown field 'fps'"),
    ({"formats": {}}, "formats must map at least one of image"),
    ({"formats": ["image"]}, "formats must map at least one of image"),
    ({"floor_cny": -5}, "floor_cny must be a CPM in CNY of zero or more, not -5"),
    ({"floor_cny": "cheap"}, "floor_cny must be a CPM in CNY of zero or more, not 'cheap'"),
    ({"daily_impressions": 0}, "daily_impressions must be a whole number of at least 1"),
    ({"name": None}, "missing 'name'"),
    ({"name": {"zh": "测试"}}, "name must have exactly 'zh' and 'en'"),
    ({"id": "Bad-Id"}, "placement 'Bad-Id': id must be lower_snake_case"),
    ({"floor": 3}, "unknown field 'floor'"),
    ({"vast": "yes"}, "vast must be true or false"),
    ({"vast": True}, "vast is true but there is no video format"),
    ({"apps": "browser"}, "apps must be a list of app names"),
    ({"formats": {"video": VIDEO}}, "openrtb.plcmt is required with a video format"),
    ({"formats": {"video": {**VIDEO, "mimes": None}}}, "formats.video: missing 'mimes'"),
    ({"formats": {"video": {**VIDEO, "mimes": ["mp4"]}}, "openrtb": {"plcmt": 1}},
     "mimes must be a list of types like video/mp4"),
    ({"formats": {"video": {**VIDEO, "min_duration_s": 30}}, "openrtb": {"plcmt": 1}},
     "max_duration_s 15 is below min_duration_s 30"),
    ({"formats": {"video": {**VIDEO, "max_duration_s": -1}}, "openrtb": {"plcmt": 1}},
     "max_duration_s must be a whole number of at least 1, not -1"),
    ({"formats": {"video": {**VIDEO, "skip_after_s": 5}}, "openrtb": {"plcmt": 1}},
     "skip_after_s is set but skippable is false"),
    ({"formats": {"text": {"max_chars": 0}}}, "formats.text: max_chars must be a whole number"),
    ({"formats": {"text": {"max_chars": 9}, "native": {"sizes": ["1x1"], "max_chars": 9}}},
     "native and text both go out as imp.native; keep one"),
    ({"openrtb": {"plcmt": 1}}, "openrtb.plcmt needs a video format"),
    ({"openrtb": {"pos": 9}}, "openrtb.pos 9 is not one of 0..7"),
    ({"openrtb": {"pos": "top"}}, "openrtb.pos 'top' is not one of 0..7"),
    ({"openrtb": {"placement": 1}}, "openrtb: unknown field 'placement'"),
    ({"openrtb": {"feed": 1}}, "openrtb.feed needs a audio format"),
])
def test_a_broken_entry_is_refused_naming_it_and_the_problem(over, message):
    with pytest.raises(PlacementError) as e:
        load(entry(id=over.pop("id", "test_slot"), **over))
    assert str(e.value).startswith("placement '")
    assert message in str(e.value)


def test_a_duplicate_id_is_refused_naming_both_entries():
    with pytest.raises(PlacementError, match=r"placement 'test_slot': duplicate id \(entries 1 "
                                             r"and 3\)"):
        load(entry(), entry(id="other_slot"), entry())


def test_an_entry_without_id_or_not_a_mapping_is_named_by_position():
    with pytest.raises(PlacementError, match="entry 2: missing 'id'"):
        load(entry(), entry(id=""))
    with pytest.raises(PlacementError, match="entry 1: expected a mapping of placement fields"):
        load("phone_splash")


@pytest.mark.parametrize("text, message", [
    ("placements: [unclosed", "not valid YAML"),
    ("- just a list", "expected a mapping with a list under 'placements'"),
    ("placements:\n  - id: a\n    id: b\n", "duplicate key 'id'"),
])
def test_a_bad_file_is_refused(text, message):
    with pytest.raises(PlacementError, match=message):
        load_placements(text=text)


def test_a_duplicated_key_in_the_packaged_file_would_not_pass_silently(tmp_path):
    text = default_path().read_text(encoding="utf-8")
    bad = text.replace("    floor_cny: 60\n", "    floor_cny: 60\n    floor_cny: 6\n", 1)
    (tmp_path / "p.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(PlacementError, match="duplicate key 'floor_cny'"):
        load_placements(tmp_path / "p.yaml")
    with pytest.raises(PlacementError, match="cannot read"):
        load_placements(tmp_path / "missing.yaml")


# --- creatives ------------------------------------------------------------------------------

@pytest.mark.parametrize("pid, creative, reason", [
    ("phone_splash", {"format": "image", "w": 1080, "h": 1920, "mime": "image/jpeg"}, None),
    ("phone_splash", {"format": "video", "w": 720, "h": 1280, "duration_s": 5,
                      "mime": "video/mp4"}, None),
    ("tv_preroll", {"format": "video", "w": 3840, "h": 2160, "duration_s": 30,
                    "mime": "video/mp4"}, None),
    ("phone_feed", {"format": "native", "w": 1280, "h": 720, "text": "新车上市"}, None),
    ("speaker_spoken", {"format": "audio", "duration_s": 12.5, "mime": "audio/mpeg"}, None),
    ("band_notification", {"format": "text", "text": "跑完5公里，来杯运动饮料"}, None),
    ("phone_splash", {"format": "image", "w": 300, "h": 250},
     "image of 300x250 is not one of the sizes 1080x1920, 1080x2340, 1080x1620"),
    ("phone_splash", {"format": "image"}, "image needs its width and height (w, h) in pixels"),
    ("phone_splash", {"format": "image", "w": 1080, "h": 1920, "mime": "image/gif"},
     "image of type 'image/gif' is not one of image/jpeg, image/png"),
    ("phone_splash", {"format": "video", "w": 1080, "h": 1920, "duration_s": 15,
                      "mime": "video/mp4"}, "video of 15s is longer than the 5s maximum"),
    ("tv_preroll", {"format": "video", "w": 1920, "h": 1080, "duration_s": 2,
                    "mime": "video/mp4"}, "video of 2s is shorter than the 5s minimum"),
    ("tv_preroll", {"format": "video", "w": 640, "h": 480, "duration_s": 15,
                    "mime": "video/mp4"},
     "video of 640x480 does not have the shape of the player (1920x1080)"),
    ("tv_preroll", {"format": "video", "duration_s": 15, "mime": "video/webm"},
     "video of type 'video/webm' is not one of video/mp4"),
    ("tv_preroll", {"format": "video", "duration_s": 15},
     "video needs a mime type; this placement plays video/mp4"),
    ("tv_preroll", {"format": "video", "mime": "video/mp4"},
     "video needs its length in seconds (duration_s)"),
    ("tv_preroll", {"format": "image", "w": 1920, "h": 1080}, "tv_preroll takes video, not image"),
    ("phone_music", {"format": "text", "text": "hi"}, "phone_music takes image or audio, not text"),
    ("phone_feed", {"format": "gif"},
     "unknown format 'gif'; formats are image, native, video, audio, text"),
    ("band_notification", {"format": "text", "text": "一" * 21},
     "text of 21 characters is longer than the 20 allowed"),
    ("band_notification", {"format": "text"}, "text needs its words (text)"),
    ("phone_feed", {"format": "native", "w": 1280, "h": 720, "text": "长" * 31},
     "title of 31 characters is longer than the 30 allowed"),
    ("band_notification", {"format": "text", "text": 42}, "text must be a string"),
])
def test_fits_accepts_a_creative_or_says_why_not(cat, pid, creative, reason):
    assert cat.by_id(pid).fits(creative) == reason


# --- OpenRTB 2.6 ----------------------------------------------------------------------------

def _spec_dir() -> Path:
    d = shared_data("openrtb_iab_spec_examples", "ALLSCENE_OPENRTB_DIR")
    if not (d / "examples").is_dir():
        pytest.skip("IAB OpenRTB examples not found: set ALLSCENE_OPENRTB_DIR")
    return d


def _imp_schema() -> dict:
    """The community OpenRTB 2.5 schema's imp, taught the one 2.6 field we send (plcmt): the
    2.5 schema refuses unknown fields, and plcmt replaced 2.5's video.placement in 2.6."""
    d = shared_data("openrtb_jsonschema_oiime", "ALLSCENE_OPENRTB_SCHEMA_DIR")
    f = d / "bundled_json" / "openrtb-2.5-request.schema.json"
    if not f.is_file():
        pytest.skip("OpenRTB JSON Schema not found: set ALLSCENE_OPENRTB_SCHEMA_DIR")
    schema = json.loads(f.read_text(encoding="utf-8"))
    video = schema["properties"]["imp"]["items"]["properties"]["video"]["properties"]
    video["plcmt"] = {"type": "integer", "enum": [1, 2, 3, 4]}
    return schema


def test_every_imp_validates_against_the_openrtb_schema(cat):
    jsonschema = pytest.importorskip("jsonschema")
    schema = _imp_schema()
    imps = [p.openrtb_imp(str(i + 1)) for i, p in enumerate(cat)]
    check = jsonschema.validators.validator_for(schema)
    errors = [f"{imp['tagid']}: {e.message}" for imp in imps
              for e in check(schema["properties"]["imp"]["items"]).iter_errors(imp)]
    assert errors == []
    check(schema).validate({"id": "r1", "imp": imps, "cur": ["CNY"]})


def test_every_imp_field_is_named_in_the_openrtb_2_6_spec(cat):
    spec = (_spec_dir() / "raw" / "2.6.md").read_text(encoding="utf-8")

    def fields(section: str) -> set[str]:
        body = spec.split(f"Object: {section} <a")[1].split("### ")[0]
        return set(re.findall(r"^\| `(\w+)` \|", body, re.M))

    known = {k: fields(s) for k, s in [("imp", "Imp"), ("banner", "Banner"),
                                         ("video", "Video"), ("audio", "Audio"),
                                         ("native", "Native"), ("format", "Format")]}
    for p in cat:
        imp = p.openrtb_imp("1")
        assert set(imp) <= known["imp"], p.id
        for obj in ("banner", "video", "audio", "native"):
            assert set(imp.get(obj, {})) <= known[obj], (p.id, obj)
        for f in imp.get("banner", {}).get("format", []):
            assert set(f) <= known["format"]


def test_imp_carries_the_placement(cat):
    for p in cat:
        imp = p.openrtb_imp("7")
        assert (imp["id"], imp["tagid"], imp["bidfloor"], imp["bidfloorcur"]) == (
            "7", p.id, p.floor_cny, "CNY")
        assert {RTB_OBJECT[k] for k in p.kinds} == {o for o in ("banner", "video", "audio",
                                                                "native") if o in imp}
        if img := p.format("image"):
            assert [(f["w"], f["h"]) for f in imp["banner"]["format"]] == list(img.sizes)
        if v := p.format("video"):
            video = imp["video"]
            assert video["mimes"] == ["video/mp4"] and video["plcmt"] == p.openrtb.plcmt
            assert (video["minduration"], video["maxduration"]) == (v.min_duration_s,
                                                                    v.max_duration_s)
            assert video["skip"] == int(v.skippable)
            assert ("protocols" in video) == p.vast
        if a := p.format("audio"):
            assert imp["audio"]["maxduration"] == a.max_duration_s and imp["audio"]["mimes"]
        if "native" in imp:
            req = json.loads(imp["native"]["request"])
            assert req["ver"] == imp["native"]["ver"] == "1.2" and req["assets"]
            assert req["assets"][0]["title"]["len"] == (p.format("native")
                                                        or p.format("text")).max_chars
            assert any("img" in a for a in req["assets"]) == ("native" in p.kinds)
    assert cat.by_id("phone_video_preroll").openrtb_imp("1")["video"]["startdelay"] == 0
    assert cat.by_id("tv_boot").openrtb_imp("1")["instl"] == 1


def test_our_own_imp_maps_back_to_its_placement_by_tagid_and_by_shape(cat):
    for p in cat:
        imp = p.openrtb_imp("1")
        assert placement_for_imp(imp, cat) is p
        shape = {k: v for k, v in imp.items() if k != "tagid"}
        found = cat.placement_for_imp(shape)
        # By shape alone two placements may look the same; then either answer is right.
        assert found is p or _same_shape(found.openrtb_imp("1"), imp), (p.id, found.id)
        assert cat.placement_for_imp({**imp, "tagid": "someone_elses_slot"}) is found


def _same_shape(a: dict, b: dict) -> bool:
    drop = ("id", "tagid", "bidfloor")
    return {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop}


def test_a_tagid_of_another_device_type_falls_back_to_shape(cat):
    imp = cat.by_id("tv_preroll").openrtb_imp("1")
    assert cat.placement_for_imp(imp, device_type="phone").id == "phone_video_preroll"
    assert cat.placement_for_imp(imp, device_type="band") is None


def _lenient(text: str):
    """The spec's examples as JSON where they are only almost JSON: curly quotes, ``...``
    elisions, trailing commas, a bare ``"video": {...}`` fragment, a raw tab in a string."""
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"^\s*\.\.\.\s*,?\s*$", "", text, flags=re.M)
    text = re.sub(r",(\s*[}\]])", r"\1", text)
    if text.lstrip().startswith('"'):
        text = "{" + text + "}"
    try:
        return json.loads(text, strict=False)
    except ValueError:
        return None


def _imps(doc, fragment: bool):
    if isinstance(doc, dict):
        if isinstance(doc.get("imp"), list):
            yield from doc["imp"]
        elif fragment and isinstance(doc.get("video"), dict) and len(doc) == 1:
            yield {"id": "1", "video": doc["video"]}
        for v in doc.values():
            yield from _imps(v, False)
    elif isinstance(doc, list):
        for v in doc:
            yield from _imps(v, False)


def iab_imps() -> dict[str, list]:
    out, unread = {}, []
    for f in sorted((_spec_dir() / "examples").glob("*.json")):
        doc = _lenient(f.read_text(encoding="utf-8"))
        if doc is None:
            unread.append(f.name.split("__")[1])
        elif imps := list(_imps(doc, True)):
            out[f.name] = imps
    # Left unread: the hybrid ad-pod request (a brace too many), the DOOH video response (a
    # comma missing) and the live-sports content snippet (an unquoted key). Only the first
    # holds imps; the other pod requests are read.
    assert unread == ["12", "17", "28"]
    return out


def test_every_imp_in_the_iab_examples_maps_to_a_placement_or_none(cat):
    found = iab_imps()
    got = {name: [cat.placement_for_imp(i) for i in imps] for name, imps in found.items()}
    assert sum(map(len, got.values())) == 15
    assert all(p is None or isinstance(p, Placement) for ps in got.values() for p in ps)
    ids = {name.rsplit("__", 1)[0]: [p.id if p else None for p in ps]
           for name, ps in got.items()}
    assert ids["2_6__01"] == [None]  # 300x250 medium rectangle: no such slot on our devices
    assert ids["2_6__03"] == [None]  # 728x90 leaderboard, with the publisher's own tagid
    assert ids["2_6__04"] == ["phone_video_preroll"]  # 5-30s, startdelay 0: a pre-roll
    assert ids["implementation__14"] in (["phone_lock_screen"], ["phone_splash"])  # 1080x1920
    assert ids["implementation__04"] == ["phone_splash"]  # skip 1: a skippable slot
    video = found["2_6__04__6_2_4_Example_4_Video.json"][0]
    assert cat.placement_for_imp(video, device_type="tv").id == "tv_preroll"


@pytest.mark.parametrize("imp", [
    None, [], "imp", {}, {"id": "1"}, {"banner": []}, {"banner": {"w": "wide", "h": None}},
    {"banner": {"format": [None, {"w": -3, "h": 0}, "300x250"]}},
    {"video": {"mimes": "video/mp4", "minduration": "x", "maxduration": [], "plcmt": "9"}},
    {"video": {"rqddurs": [15, "30", None]}}, {"audio": {"feed": True, "mimes": [1]}},
    {"native": {"request": "{not json"}}, {"native": {"request": {"native": {"assets": 3}}}},
    {"native": {"request": '{"assets":[{"img":{"w":"1280","h":720}},{"title":null}]}'}},
    {"tagid": ["phone_splash"], "instl": "1"},
])
def test_a_malformed_imp_never_raises(cat, imp):
    p = cat.placement_for_imp(copy.deepcopy(imp))
    assert p is None or isinstance(p, Placement)


def test_numbers_sent_as_strings_are_read(cat):
    # The spec's own plcmt example sends "plcmt": "1" (implementation.md 7.10.2).
    assert cat.placement_for_imp({"video": {"plcmt": "4", "placement": "3"}}).id == "phone_feed"
    assert cat.placement_for_imp({"video": {"plcmt": "1"}}).openrtb.plcmt == 1


def test_a_title_only_native_imp_maps_to_a_text_placement(cat):
    req = {"ver": "1.2", "assets": [{"id": 1, "required": 1, "title": {"len": 12}}]}
    imp = {"id": "1", "native": {"request": json.dumps(req)}}
    assert cat.placement_for_imp(imp).id == "phone_trending_words"
    assert cat.placement_for_imp(imp, device_type="band").id == "band_notification"
    assert set(KINDS) >= {k for p in cat for k in p.kinds}
