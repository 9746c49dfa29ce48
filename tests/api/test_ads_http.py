"""The ad server over HTTP: the advertiser API, decisions, tracking, VAST, bad requests."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from allscene.api.app import create_app
from tests.ad_helpers import COUNTY, bearer, campaign

NOW = dt.datetime.now(dt.UTC)


def create(ad_client, key, doc):
    r = ad_client.post("/v1/campaigns", json=doc, headers=bearer(key))
    assert r.status_code == 201, r.text
    return r.json()


def decide(ad_client, device="ph0", placement="phone_splash", **kw):
    r = ad_client.post("/v1/decide", json={"placement": placement, "device_id": device, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def path_of(url: str) -> str:
    u = urlsplit(url)
    return f"{u.path}?{u.query}"


def test_an_advertiser_key_reaches_only_its_own_campaigns(ad_client, keys):
    a, b = keys["acme"], keys["globex"]
    create(ad_client, a, campaign("spring"))
    assert ad_client.get("/v1/campaigns/spring", headers=bearer(a)).json()["version"] == 1
    # B cannot read, list, change or delete A's campaign: it is not there for B.
    assert ad_client.get("/v1/campaigns/spring", headers=bearer(b)).status_code == 404
    assert ad_client.get("/v1/campaigns", headers=bearer(b)).json() == {"campaigns": []}
    r = ad_client.put("/v1/campaigns/spring", json=campaign("spring", name="hijack"),
                   headers=bearer(b) | {"If-Match": "1"})
    assert r.status_code == 404
    assert ad_client.delete("/v1/campaigns/spring", headers=bearer(b)).status_code == 404
    # B may use the same id for its own campaign; A's is untouched.
    create(ad_client, b, campaign("spring", name="globex spring"))
    got = ad_client.get("/v1/campaigns/spring", headers=bearer(a)).json()
    assert got["campaign"]["name"] == "spring" and got["version"] == 1
    # No key, a wrong key, a wrong scheme.
    assert ad_client.get("/v1/campaigns").status_code == 401
    assert ad_client.get("/v1/campaigns", headers=bearer("ak_forged")).status_code == 401
    r = ad_client.get("/v1/campaigns", headers={"Authorization": f"Basic {a}"})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]


def test_updates_name_the_version_they_read(ad_client, keys):
    a = keys["acme"]
    create(ad_client, a, campaign("spring"))
    r = ad_client.put("/v1/campaigns/spring", json=campaign("spring", name="v2"), headers=bearer(a))
    assert r.status_code == 428
    ok = ad_client.put("/v1/campaigns/spring", json=campaign("spring", name="v2"),
                    headers=bearer(a) | {"If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.headers["etag"] == '"2"'
    stale = ad_client.put("/v1/campaigns/spring", json=campaign("spring", name="v3"),
                       headers=bearer(a) | {"If-Match": "1"})
    assert stale.status_code == 409 and "version 2" in stale.json()["detail"]
    assert ad_client.post("/v1/campaigns", json=campaign("spring"),
                       headers=bearer(a)).status_code == 409


def test_a_bad_campaign_is_refused_naming_its_fields(ad_client, keys):
    doc = campaign("bad", budget={"total": 10, "daily": 50},
                   targeting={"placements": ["billboard"], "scenes": ["not_a_scene"]})
    r = ad_client.post("/v1/campaigns", json=doc, headers=bearer(keys["acme"]))
    assert r.status_code == 422
    assert "daily budget is more than the total" in r.json()["detail"]
    doc = campaign("bad", targeting={"placements": ["billboard"], "scenes": ["not_a_scene"],
                                     "audiences": ["nobody"]})
    detail = ad_client.post("/v1/campaigns", json=doc, headers=bearer(keys["acme"])).json()["detail"]
    for part in ("unknown placement 'billboard'", "unknown scene 'not_a_scene'",
                 "no saved audience 'nobody'"):
        assert part in detail
    r = ad_client.post("/v1/campaigns", content=b"{not json", headers=bearer(keys["acme"]))
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]


def test_decide_track_click_and_convert_end_to_end(ad_client, keys):
    create(ad_client, keys["acme"], campaign("spring"))
    d = decide(ad_client, "ph0")
    assert d["outcome"] == "ad" and d["ad"]["campaign"] == "spring"
    assert d["ad"]["price_cny"] == pytest.approx(0.06)  # no rival: the splash floor, 60 CPM
    imp, click = path_of(d["ad"]["imp_url"]), path_of(d["ad"]["click_url"])
    r = ad_client.get(imp)
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    assert ad_client.get(imp).status_code == 409  # replayed
    forged = imp.replace("price=0.060000", "price=0.000001")
    assert ad_client.get(forged).status_code == 403
    r = ad_client.get(click, follow_redirects=False)
    assert r.status_code == 302
    landing = urlsplit(r.headers["location"])
    assert landing.netloc == "acme.example"
    token = dict(parse_qsl(landing.query))["allscene_conv"]
    assert ad_client.get(click, follow_redirects=False).status_code == 409
    conv = {"token": token, "type": "lead", "value": 30}
    assert ad_client.post("/t/conv", json=conv).json()["campaign"] == "spring"
    assert ad_client.post("/t/conv", json=conv).status_code == 409
    assert ad_client.post("/t/conv", json=conv | {"type": "purchase"}).status_code == 200
    assert ad_client.post("/t/conv", json=conv | {"token": token + "x"}).status_code == 403
    assert ad_client.post("/t/conv", json=conv | {"type": "like"}).status_code == 422

    ads = ad_client.app.state.ads
    ads.adlog.flush()
    log = ad_client.app.state.log.scan(kinds=["ad_decision", "ad_impression", "ad_click",
                                           "ad_conversion"])
    rows = {r["kind"]: r for r in log.to_pylist()}
    assert log.num_rows == 5  # decision, impression, click, lead, purchase
    assert rows["ad_decision"]["account_id"] == "p0"
    assert rows["ad_decision"]["cost"] == pytest.approx(0.06)
    assert rows["ad_impression"]["cost"] == pytest.approx(0.06)
    assert rows["ad_impression"]["device_id"] == "ph0"
    assert {r["request_id"] for r in log.to_pylist()} == {d["request_id"]}


def test_an_opted_out_person_gets_no_targeted_ad_even_right_after_opting_out(ad_client, keys):
    create(ad_client, keys["acme"], campaign("local", targeting={
        "placements": ["phone_splash"], "counties": [COUNTY]}))
    assert decide(ad_client, "ph0")["outcome"] == "ad"  # p0 lives in the county
    assert decide(ad_client, "ph1")["reasons"] == {"person opted out of targeting": 1}
    consent = {"event_id": "c-p0", "ts": NOW.isoformat(), "device_id": "tv0",
               "device_type": "tv", "kind": "consent", "personalized_ads": False}
    assert ad_client.post("/v1/events", json=[consent]).json()["accepted"] == 1
    out = decide(ad_client, "ph0")  # opted out on the TV: the phone follows the person
    assert out["outcome"] == "no_ad" and out["reasons"] == {"person opted out of targeting": 1}


def test_vast_for_a_video_placement_validates(ad_client, keys, vast_schema):
    from lxml import etree

    video = {"id": "tvc", "format": "video", "w": 1920, "h": 1080, "duration_s": 15,
             "mime": "video/mp4", "url": "https://cdn.example/tvc.mp4",
             "landing": "https://acme.example/"}
    create(ad_client, keys["acme"], campaign("tvc", creatives=[video],
                                          targeting={"placements": ["tv_preroll"]},
                                          bid={"type": "cpm", "amount": 120}))
    r = ad_client.get("/vast/4/tv_preroll", params={"device_id": "tv0"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    doc = etree.fromstring(r.content)
    vast_schema.assertValid(doc)
    assert doc.find(".//{*}MediaFile").text.strip() == video["url"]
    empty = ad_client.get("/vast/4/phone_video_preroll", params={"device_id": "ph0"})
    vast_schema.assertValid(etree.fromstring(empty.content))  # no ad: an empty VAST
    assert ad_client.get("/vast/4/phone_splash", params={"device_id": "ph0"}).status_code == 422


@pytest.fixture(scope="module")
def vast_schema():
    from lxml import etree

    from allscene.config import shared_data

    xsd = shared_data("iab_vast_xsd", "ALLSCENE_VAST_XSD") / "vast_4.2.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


BAD = [
    ("/v1/decide", b"{not json"),
    ("/v1/decide", b"[]"),
    ("/v1/decide", b'{"placement": "phone_splash"}'),  # no device
    ("/v1/decide", b'{"placement": "billboard", "device_id": "ph0"}'),
    ("/v1/decide", b'{"placement": "phone_splash", "device_id": ""}'),
    ("/v1/decide", b'{"placement": "phone_splash", "device_id": "ph0", "ts": "2026-10-01"}'),
    ("/v1/decide", b'{"placement": "phone_splash", "device_id": "ph0", "weather": 7}'),
    ("/v1/decide", b'{"placement": 5, "device_id": {"a": 1}}'),
    ("/v1/decide", b'{"placement": "phone_splash", "device_id": "ph0", "request_id": "a b"}'),
    ("/openrtb/2.6/bid", b"{not json"),
    ("/openrtb/2.6/bid", b'{"id": "x"}'),
    ("/openrtb/2.6/bid", b'{"id": "x", "imp": [{"id": 1}]}'),
    ("/openrtb/2.6/bid", b"\xff\xfe"),
    ("/t/conv", b'{"token": "", "type": "lead"}'),
    ("/t/conv", b"null"),
]


def test_malformed_requests_get_a_4xx_with_a_reason_and_the_server_keeps_serving(ad_client,
                                                                                 keys):
    create(ad_client, keys["acme"], campaign("spring"))
    for path, body in BAD:
        r = ad_client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (path, body, r.status_code, r.text)
        assert r.json()["detail"], (path, body)
    r = ad_client.post("/v1/decide", json={"placement": "billboard", "device_id": "ph0"})
    assert "unknown placement 'billboard'" in r.json()["detail"]
    for path in ("/t/imp", "/t/imp?d=1&sig=x", "/t/click?sig=", "/vast/4/tv_preroll",
                 "/vast/4/nope?device_id=x"):
        r = ad_client.get(path)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    assert decide(ad_client)["outcome"] == "ad"
    assert ad_client.get("/healthz").json()["campaigns"] == 1


def test_a_restarted_server_keeps_its_spend_and_its_caps(ad_settings, keys):
    doc = campaign("tight", budget={"total": 0.3},  # five impressions at 0.06
                   frequency_cap={"impressions": 1, "per_hours": 24})
    with TestClient(create_app(ad_settings)) as c:
        create(c, keys["acme"], doc)
        first = [decide(c, f"ph{i}")["outcome"] for i in range(3)]
        assert first == ["ad"] * 3
    # A new process on the same data: spend and the per-person cap come back from the log.
    with TestClient(create_app(ad_settings)) as c:
        got = c.get("/v1/campaigns/tight", headers=bearer(keys["acme"])).json()
        assert got["spend_cny"]["total"] == pytest.approx(0.18)
        assert decide(c, "ph0")["reasons"] == {"frequency cap": 1}
        later = [decide(c, f"ph{i}") for i in range(10, 16)]
        assert [d["outcome"] for d in later] == ["ad", "ad"] + ["no_ad"] * 4
        assert later[-1]["reasons"] == {"total budget": 1}


def test_held_out_people_get_no_ad_and_their_ghost_is_logged(ad_client, keys):
    create(ad_client, keys["acme"], campaign("lift", holdout=0.5))
    out = {i: decide(ad_client, f"ph{i}") for i in range(2, 60)}
    held = {i for i, d in out.items() if d["outcome"] == "no_ad"}
    assert 15 <= len(held) <= 43  # about half
    assert all(out[i]["reasons"] == {"holdout": 1} for i in held)
    again = {i for i in range(2, 60) if decide(ad_client, f"tv{i}")["outcome"] == "no_ad"}
    assert again == held  # the same people on their other device: stable per person
    ad_client.app.state.ads.adlog.flush()
    log = ad_client.app.state.log.scan(kinds=["ad_decision"]).to_pylist()
    ghosts = [r for r in log if r["outcome"] == "holdout"]
    assert {r["account_id"] for r in ghosts} == {f"p{i}" for i in held}
    assert {(r["advertiser_id"], r["campaign_id"]) for r in ghosts} == {("acme", "lift")}
