"""Activities over HTTP: an advertiser creates one, participants (devices the identity graph
knows) play, draw, claim and redeem; bad input gets a 4xx with a reason, nothing awarded;
another advertiser's key sees nothing."""

from __future__ import annotations

import datetime as dt
import json

from tests.ad_helpers import bearer


def _window(days_before: int = 1, days_after: int = 1) -> dict:
    now = dt.datetime.now(dt.UTC)
    return {"start": (now - dt.timedelta(days=days_before)).isoformat(),
            "end": (now + dt.timedelta(days=days_after)).isoformat()}


GAME = {"id": "game", "name": "Lock-screen game", "entry_points": ["phone_lock_screen"],
        "prizes": [{"id": "coupon", "name": "Train coupon", "kind": "coupon", "quantity": 5,
                    "valid_days": 30},
                   {"id": "c2", "name": "Coupon", "kind": "coupon", "quantity": 1}],
        "points": {"actions": {"round": 10}},
        "lottery": {"odds": {"coupon": 0.5}, "cost_points": 10},
        "coupons": {"prizes": ["c2"]},
        "codes": {"count": 5, "points": 20}}


def test_an_activity_end_to_end_over_http(ad_client, keys):
    c = ad_client
    made = c.post("/v1/activities", json=GAME | _window(), headers=bearer(keys["acme"]))
    assert made.status_code == 201, made.text
    assert len(made.json()["commitment"]) == 64
    shown = c.get("/v1/engage", params={"placement": "phone_lock_screen", "device_id": "ph3"})
    assert [a["id"] for a in shown.json()["activities"]] == ["game"]
    r = c.post("/v1/engage/game/play", json={"device_id": "ph3", "request_id": "g1",
                                             "action": "round"})
    assert r.status_code == 200 and r.json()["points_balance"] == 10
    drawn = [c.post("/v1/engage/game/draw", json={"device_id": "ph3", "request_id": "d1"})]
    assert drawn[0].status_code == 200, drawn[0].text
    again = c.post("/v1/engage/game/draw", json={"device_id": "ph3", "request_id": "d1"})
    assert again.json()["replayed"] and again.json()["draw"] == drawn[0].json()["draw"]
    poor = c.post("/v1/engage/game/draw", json={"device_id": "ph3", "request_id": "d2"})
    assert poor.status_code == 422 and "not enough" in poor.json()["detail"]
    codes = c.post("/v1/activities/game/codes", headers=bearer(keys["acme"])).text.split()
    assert len(codes) == 5
    r = c.post("/v1/engage/game/code", json={"device_id": "tv3", "request_id": "k1",
                                             "code": codes[0]})  # p3's TV: the same person
    assert r.status_code == 200 and r.json()["points_balance"] == 20
    claimed = c.post("/v1/engage/game/coupon", json={"device_id": "ph3", "request_id": "c1",
                                                     "prize": "c2"})
    assert claimed.status_code == 200, claimed.text
    r = c.get("/v1/wallet", params={"device_id": "tv3"})
    assert r.status_code == 200, r.text
    wallet = r.json()
    assert wallet["person"] == "p3" and wallet["points"] == {"game": 20}
    card = claimed.json()["card"]
    assert c.post("/v1/wallet/redeem", json={"device_id": "ph3", "card": card}).status_code == 200
    used = c.post("/v1/wallet/redeem", json={"device_id": "ph3", "card": card})
    assert used.status_code == 409 and "used already" in used.json()["detail"]
    figures = c.get("/v1/activities/game", headers=bearer(keys["acme"])).json()
    assert figures["participants"] == 1 and figures["draws"] == 1
    assert figures["rejections"] == {"insufficient": 1}
    assert c.get("/v1/activities/game", headers=bearer(keys["globex"])).status_code == 404
    early = c.get("/v1/activities/game/reveal", headers=bearer(keys["acme"]))
    assert early.status_code == 409
    # Every show, claim and refusal went into the event log: the activity's own report.
    c.app.state.ads.adlog.flush()
    from typer.testing import CliRunner

    from allscene.cli import app
    data = str(c.app.state.settings.data_dir)
    r = CliRunner().invoke(app, ["--data", data, "activity", "report", "game", "-a", "acme",
                                 "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    assert rep["totals"]["shown"] == 1 and rep["totals"]["participants"] == 1
    assert {a["action"]: a["events"] for a in rep["by_action"]} == {
        "code": 1, "coupon": 1, "draw": 1, "play": 1, "redeem": 1, "show": 1}
    assert rep["refused"] == {"insufficient": 1}


def test_bad_input_gets_a_4xx_with_a_reason_and_nothing_is_awarded(ad_client, keys):
    c = ad_client
    h = bearer(keys["acme"])
    assert c.post("/v1/activities", json=GAME | _window(), headers=h).status_code == 201
    ended = GAME | {"id": "old"} | _window(days_before=10, days_after=-5)
    assert c.post("/v1/activities", json=ended, headers=h).status_code == 201
    cases = [
        ("/v1/engage/nope/draw", {"device_id": "ph3", "request_id": "x1"}, 404, "no activity"),
        ("/v1/engage/old/draw", {"device_id": "ph3", "request_id": "x2"}, 410, "ended"),
        ("/v1/engage/game/code", {"device_id": "ph3", "request_id": "x3",
                                  "code": "0000-0000-0000-0000-1"}, 422, "check character"),
        ("/v1/engage/game/code", {"device_id": "ph3", "request_id": "x6",
                                  "code": "0000-0000-0000-0000-0"}, 404, "no such code"),
        ("/v1/engage/game/code", {"device_id": "ph3", "request_id": "x4", "code": "abc"},
         422, "wrong length"),
        ("/v1/engage/game/play", {"device_id": "ph3", "request_id": "x5", "action": "cheat"},
         422, "earns no points"),
        ("/v1/engage/game/draw", {"device_id": "ph3"}, 422, "request_id"),
    ]
    for path, body, status, why in cases:
        r = c.post(path, json=body)
        assert r.status_code == status and why in r.text, (path, r.status_code, r.text)
    ok = {"device_id": "ph4", "request_id": "c-1", "prize": "c2"}
    assert c.post("/v1/engage/game/coupon", json=ok).status_code == 200
    over = c.post("/v1/engage/game/coupon", json=ok | {"request_id": "c-2"})
    assert over.status_code == 429 and "per person" in over.json()["detail"]
    for bad in ({"budget_cents": -100}, {"budget_cents": "a lot"}):
        r = c.post("/v1/activities", json=GAME | {"id": "bad"} | _window() | bad, headers=h)
        assert r.status_code == 422 and "budget_cents" in r.json()["detail"]
    assert c.post("/v1/activities", content=b"{not json", headers=h).status_code == 400
    assert c.post("/v1/activities", json=GAME | _window()).status_code == 401
    wallet = c.get("/v1/wallet", params={"device_id": "ph3"}).json()
    assert wallet["cash_cents"] == 0 and wallet["cards"] == [] and wallet["points"] == {}
