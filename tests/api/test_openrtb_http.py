"""``POST /openrtb/2.6/bid`` end to end: every IAB example request, through the real decision
engine with live campaigns, gets a bid response the OpenRTB schema accepts or a 204 no-bid
that says why; a body that is not a bid request gets a 400 with the reason."""

from __future__ import annotations

import json

import pytest

from allscene.config import shared_data
from tests.ad_helpers import bearer, campaign

VIDEO = {"id": "v15", "format": "video", "w": 1280, "h": 720, "duration_s": 15,
         "mime": "video/mp4", "url": "https://cdn.example/v15.mp4",
         "landing": "https://acme.example/"}
VIDEO20 = VIDEO | {"id": "v20", "duration_s": 20}
LOCK = {"id": "lock", "format": "image", "w": 1080, "h": 2400, "url": "https://cdn.example/l.jpg"}


@pytest.fixture(scope="module")
def examples():
    d = shared_data("openrtb_iab_spec_examples", "ALLSCENE_OPENRTB_DIR") / "examples"
    if not d.is_dir():
        pytest.fail("the IAB OpenRTB examples are not here: set ALLSCENE_OPENRTB_DIR")
    return sorted(d.glob("*.json"))


@pytest.fixture(scope="module")
def response_schema():
    import jsonschema

    f = shared_data("openrtb_jsonschema_oiime", "ALLSCENE_OPENRTB_SCHEMA_DIR") / \
        "bundled_json" / "openrtb-2.5-response.schema.json"
    schema = json.loads(f.read_text(encoding="utf-8"))
    bid = schema["properties"]["seatbid"]["items"]["properties"]["bid"]["items"]
    bid["properties"]["mtype"] = {"type": "integer", "enum": [1, 2, 3, 4]}  # a 2.6 field
    return jsonschema.validators.validator_for(schema)(schema)


def test_every_iab_example_gets_a_valid_bid_or_a_clear_no_bid(ad_client, keys, examples,
                                                              response_schema):
    for cid, creatives, placement in (("video", [VIDEO, VIDEO20], "phone_video_preroll"),
                                      ("lock", [LOCK], "phone_lock_screen")):
        r = ad_client.post("/v1/campaigns", headers=bearer(keys["acme"]), json=campaign(
            cid, creatives=creatives, targeting={"placements": [placement]},
            bid={"type": "cpm", "amount": 400.0}))
        assert r.status_code == 201, r.text
    seen = {"bid": [], "no-bid": [], "refused": []}
    for f in examples:
        r = ad_client.post("/openrtb/2.6/bid", content=f.read_bytes(),
                        headers={"content-type": "application/json"})
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except ValueError:
            doc = None
        if not (isinstance(doc, dict) and isinstance(doc.get("imp"), list)):
            assert r.status_code == 400 and r.json()["detail"], (f.name, r.status_code)
            seen["refused"].append(f.name)
            continue
        assert r.headers["x-openrtb-version"] == "2.6"
        if r.status_code == 204:
            assert r.headers["x-allscene-no-bid"], f.name  # says why
            seen["no-bid"].append(f.name)
            continue
        assert r.status_code == 200, (f.name, r.status_code, r.text)
        resp = r.json()
        errors = [f"{list(e.path)}: {e.message}" for e in response_schema.iter_errors(resp)]
        assert errors == [], (f.name, errors)
        assert resp["id"] == doc["id"]
        imps = {i["id"] for i in doc["imp"]}
        assert all(b["impid"] in imps for sb in resp["seatbid"] for b in sb["bid"])
        seen["bid"].append(f.name)
    assert len(seen["bid"]) + len(seen["no-bid"]) == 7, seen  # the 7 complete requests
    # Both video requests get a video that fits them: 15 s (5-30 s asked), 20 s (20 s asked).
    assert sum("Video" in n for n in seen["bid"]) == 2, seen
    assert len(seen["refused"]) >= 20, seen
    # A no-bid names the imp it could not serve.
    banner = next(f for f in examples if "Simple_Banner" in f.name)
    r = ad_client.post("/openrtb/2.6/bid", content=banner.read_bytes())
    assert r.status_code == 204 and "banner 300x250" in r.headers["x-allscene-no-bid"]
