"""The engagement engine over the SQLite store: each mechanic end to end, money safety,
idempotency and bad input."""

from __future__ import annotations

import datetime as dt

import pytest

from allscene.engagement import draws
from allscene.engagement.service import Engagement, EngagementError, Who
from allscene.storage.engagedb import EngagementStore

T0 = dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.UTC)
WINDOW = {"start": "2026-03-01T00:00:00+08:00", "end": "2026-03-31T00:00:00+08:00"}


@pytest.fixture
def eng(tmp_path):
    events: list[dict] = []
    e = Engagement(EngagementStore(f"sqlite:///{tmp_path}/engage.sqlite"), code_key=b"k" * 32,
                   emit=events.extend)
    e.events = events
    return e


def who(i: int = 1, **kw) -> Who:
    return Who(f"p{i}", device_id=f"d{i}", ip=kw.pop("ip", f"10.0.0.{i % 250}"), **kw)


def test_red_envelopes_sum_to_the_budget_to_the_cent(eng):
    eng.create("kfc", {"id": "kfc_env", "name": "Red envelopes", **WINDOW,
                       "entry_points": ["phone_weather"],
                       "envelopes": {"budget_cents": 1_000_000, "count": 5000}})
    got = [eng.envelope("kfc_env", who(i), f"r{i}", T0)["amount_cents"] for i in range(5000)]
    assert sum(got) == 1_000_000 and min(got) >= 1
    with pytest.raises(EngagementError, match="every envelope") as exc:
        eng.envelope("kfc_env", who(9999), "late", T0)
    assert exc.value.status == 409
    wallets = sum(eng.store.balance(f"wallet:p{i}") for i in range(5000))
    assert wallets == 1_000_000 and eng.store.balance("act:kfc_env:budget") == 0
    assert eng.store.check_ledger()["balanced"]
    f = eng.figures("kfc", "kfc_env")
    assert f["cash_paid_cents"] == 1_000_000 and f["envelopes"]["opened"] == 5000
    assert f["rejections"] == {"sold_out": 1}


def test_a_replayed_claim_changes_nothing(eng):
    eng.create("kfc", {"id": "e1", "name": "x", **WINDOW, "entry_points": ["phone_weather"],
                       "envelopes": {"budget_cents": 10_000, "count": 10}})
    first = eng.envelope("e1", who(1), "same-id", T0)
    again = eng.envelope("e1", who(1), "same-id", T0 + dt.timedelta(minutes=5))
    assert again["replayed"] and {**again, "replayed": False} == first
    assert eng.store.balance("wallet:p1") == first["amount_cents"]
    assert eng.figures("kfc", "e1")["envelopes"]["opened"] == 1
    with pytest.raises(EngagementError, match="at most 1 per person") as exc:
        eng.envelope("e1", who(1), "another-id", T0)
    assert exc.value.status == 429
    with pytest.raises(EngagementError, match="belongs to another claim"):
        eng.envelope("e1", who(2), "same-id", T0)  # nobody reads another's claim


LOTTERY = {"id": "qunar", "name": "Lock-screen game", **WINDOW,
           "entry_points": ["phone_lock_screen"],
           "prizes": [{"id": "bali", "name": "Bali trip", "kind": "goods", "quantity": 1},
                      {"id": "train", "name": "Train coupon", "kind": "coupon", "quantity": 40,
                       "face_cents": 1000, "valid_days": 30},
                      {"id": "cash5", "name": "5 yuan", "kind": "cash", "quantity": 30,
                       "amount_cents": 500}],
           "budget_cents": 15_000,
           "points": {"actions": {"game_round": 10}, "limits": {"per_person_per_day": 1000}},
           "lottery": {"odds": {"bali": 0.01, "train": 0.2, "cash5": 0.2}, "cost_points": 20,
                       "limits": {"per_person_per_day": 1000}}}


def test_lottery_draws_cost_points_and_replay_from_the_revealed_seed(eng):
    made = eng.create("qunar", LOTTERY)
    assert "answer" not in str(made) and len(made["commitment"]) == 64
    with pytest.raises(EngagementError, match="not enough in pts:qunar:p1"):
        eng.draw("qunar", who(1), "d0", T0)  # no points yet: nothing awarded
    for i in range(30):
        eng.play("qunar", who(1), "game_round", f"g{i}", T0)
    results = [eng.draw("qunar", who(1), f"d{i}", T0) for i in range(15)]
    assert eng.store.balance("pts:qunar:p1") == 300 - 15 * 20
    with pytest.raises(EngagementError, match="not enough"):
        eng.draw("qunar", who(1), "d-over", T0)
    for i in range(2, 200):  # many people play and draw until prizes run out
        eng.play("qunar", who(i), "game_round", f"g-{i}", T0)
        eng.play("qunar", who(i), "game_round", f"h-{i}", T0)
        results.append(eng.draw("qunar", who(i), f"d-{i}", T0))
    won = [r["prize"] for r in results if r["prize"]]
    assert won.count("bali") <= 1 and won.count("train") <= 40 and won.count("cash5") <= 30
    assert any(r["sold_out"] for r in results)  # 20% cash over 213 draws outruns 30
    cards = eng.wallet(who(1))["cards"]
    assert all(c["prize"] in ("bali", "train") for c in cards)
    with pytest.raises(EngagementError, match="after the end"):
        eng.reveal("qunar", "qunar", T0)
    end = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
    rev = eng.reveal("qunar", "qunar", end)
    seed = bytes.fromhex(rev["seed"])
    assert draws.check_reveal(seed, made["commitment"])
    log = eng.draw_log("qunar", "qunar")
    audit = draws.replay(seed, "qunar", draws.Odds.of(rev["odds"]), rev["inventory"], log)
    assert audit.ok and audit.draws == len(results)
    tampered = [dict(r, prize="bali") if r["prize"] is None else r for r in log]
    assert not draws.replay(seed, "qunar", draws.Odds.of(rev["odds"]), rev["inventory"],
                            tampered).ok
    assert eng.store.check_ledger()["balanced"]
    f = eng.figures("qunar", "qunar")
    assert f["draws"] == len(results) and f["points_spent"] == 20 * len(results)
    assert f["cash_paid_cents"] == 500 * won.count("cash5")


def test_coupons_are_claimed_within_limits_and_redeemed_once_before_expiry(eng):
    eng.create("kfc", {"id": "c1", "name": "Coupons", **WINDOW, "entry_points": ["phone_browser"],
                       "prizes": [{"id": "wings", "name": "Wings", "kind": "coupon",
                                   "quantity": 2, "valid_days": 7}],
                       "coupons": {"prizes": ["wings"]}})
    got = eng.coupon("c1", who(1), "wings", "r1", T0)
    with pytest.raises(EngagementError, match="per person"):
        eng.coupon("c1", who(1), "wings", "r2", T0)
    eng.coupon("c1", who(2), "wings", "r3", T0)
    with pytest.raises(EngagementError, match="no wings coupons left"):
        eng.coupon("c1", who(3), "wings", "r4", T0)
    card = eng.redeem_card(who(1), got["card"], T0 + dt.timedelta(days=1))
    assert card["redeemed_at"]
    with pytest.raises(EngagementError, match="used already"):
        eng.redeem_card(who(1), got["card"], T0 + dt.timedelta(days=1))
    other = eng.wallet(who(2))["cards"][0]["id"]
    with pytest.raises(EngagementError, match="no card"):
        eng.redeem_card(who(1), other, T0)  # someone else's coupon
    with pytest.raises(EngagementError, match="expired"):
        eng.redeem_card(who(2), other, T0 + dt.timedelta(days=8))


def test_packaging_codes_redeem_once_and_guesses_are_counted(eng):
    eng.create("yili", {"id": "milk", "name": "Codes", **WINDOW, "entry_points": ["phone_feed"],
                        "codes": {"count": 50, "points": 5, "guesses_per_day": 3}})
    made = eng.generate_codes("yili", "milk")
    assert len(set(made)) == 50
    assert eng.code("milk", who(1), made[0].lower(), "r1", T0)["points"] == 5
    with pytest.raises(EngagementError, match="redeemed already"):
        eng.code("milk", who(2), made[0], "r2", T0)
    with pytest.raises(EngagementError, match="mistyped") as exc:
        eng.code("milk", who(2), made[1][:-1] + ("0" if made[1][-1] != "0" else "1"), "r3", T0)
    assert exc.value.status == 422
    from allscene.engagement import codes
    forged = codes.generate(4)
    for i, c in enumerate(forged[:3]):
        with pytest.raises(EngagementError, match="no such code"):
            eng.code("milk", who(2), c, f"g{i}", T0)
    with pytest.raises(EngagementError, match="too many unknown codes") as exc:
        eng.code("milk", who(2), made[2], "r9", T0)  # even a real one, for today
    assert exc.value.status == 429
    assert eng.code("milk", who(2), made[2], "r9", T0 + dt.timedelta(days=1))["points"] == 5
    f = eng.figures("yili", "milk")
    assert f["guessed_codes"] == 3 and f["points_issued"] == 10


def test_contest_first_correct_answers_by_receive_time_win(eng):
    close = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    eng.create("cestbon", {"id": "guess", "name": "Guess the price", **WINDOW,
                           "entry_points": ["phone_feed"],
                           "prizes": [{"id": "case", "name": "A case of water", "kind": "goods",
                                       "quantity": 2}],
                           "contest": {"question": "Price?", "answer": "2 yuan", "winners": 2,
                                       "prize": "case", "closes_at": close.isoformat()}})
    at = [close - dt.timedelta(minutes=m) for m in (50, 40, 30, 20)]
    eng.answer("guess", who(1), "3 yuan", "a1", at[0])     # wrong
    eng.answer("guess", who(3), "2  YUAN", "a3", at[2])    # right, third
    eng.answer("guess", who(2), "2 yuan", "a2", at[1])     # right, second (arrives later)
    eng.answer("guess", who(4), "2 yuan", "a4", at[3])     # right, too late to rank
    eng.answer("guess", who(5), "2 yuan", "a5", close + dt.timedelta(seconds=1))  # late
    with pytest.raises(EngagementError, match="one answer per person"):
        eng.answer("guess", who(2), "2 yuan", "a2b", at[3])
    with pytest.raises(EngagementError, match="closes at"):
        eng.close_contest("guess", at[3])
    won = eng.close_contest("guess", close + dt.timedelta(minutes=5))
    assert [w["person"] for w in won] == ["p2", "p3"]
    again = eng.close_contest("guess", close + dt.timedelta(minutes=9))
    assert all(w["replayed"] for w in again)
    assert len(eng.wallet(who(2))["cards"]) == 1 and not eng.wallet(who(4))["cards"]


def test_bad_input_gets_a_reason_and_nothing_is_awarded(eng):
    eng.create("kfc", {"id": "e1", "name": "x", **WINDOW, "entry_points": ["phone_weather"],
                       "envelopes": {"budget_cents": 10_000, "count": 10}})
    with pytest.raises(EngagementError, match="no activity") as exc:
        eng.envelope("nope", who(1), "r1", T0)
    assert exc.value.status == 404
    with pytest.raises(EngagementError, match="ended") as exc:
        eng.envelope("e1", who(1), "r1", dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    assert exc.value.status == 410
    with pytest.raises(EngagementError, match="exists already"):
        eng.create("kfc", {"id": "e1", "name": "x", **WINDOW, "entry_points": ["phone_weather"],
                           "envelopes": {"budget_cents": 10_000, "count": 10}})
    for bad, why in (({"budget_cents": -5, "count": 10}, "envelopes.budget_cents: Input"),
                     ({"budget_cents": "lots", "count": 10}, "envelopes.budget_cents: Input"),
                     ({"budget_cents": 5, "count": 10}, "cannot fill 10 envelopes")):
        with pytest.raises(EngagementError, match=why):
            eng.create("kfc", {"id": "e2", "name": "x", **WINDOW,
                               "entry_points": ["phone_weather"], "envelopes": bad})
    assert eng.store.balance("wallet:p1") == 0 and eng.store.check_ledger()["balanced"]


def test_who_may_take_part(eng):
    eng.create("acme", {"id": "aud", "name": "x", **WINDOW, "who": "audience:fans",
                        "entry_points": ["phone_feed"],
                        "points": {"actions": {"tap": 1}}})
    fan = who(1, audiences={("acme", "fans")})
    assert eng.play("aud", fan, "tap", "r1", T0)["points"] == 1
    with pytest.raises(EngagementError, match="not open") as exc:
        eng.play("aud", who(2), "tap", "r2", T0)
    assert exc.value.status == 403
    with pytest.raises(EngagementError, match="not open"):  # opted out: never targeted
        eng.play("aud", who(3, audiences={("acme", "fans")}, opted_out=True), "tap", "r3", T0)
    assert [a["id"] for a in eng.show("phone_feed", fan, T0)] == ["aud"]
    assert eng.show("phone_feed", who(2), T0) == [] and eng.show("phone_splash", fan, T0) == []
    kinds = {(e["action"], e.get("reason", "")[:6]) for e in eng.events}
    assert ("play", "") in kinds and ("show", "") in kinds


def test_badges_light_once_and_rewards_follow_the_count(eng):
    from allscene.engagement.badges import Workout
    eng.create("buick", {"id": "run", "name": "Run challenge", **WINDOW,
                         "entry_points": ["band_notification"],
                         "prizes": [{"id": "gift", "name": "Test-drive gift", "kind": "goods",
                                     "quantity": 1},
                                    {"id": "c10", "name": "10 yuan", "kind": "coupon",
                                     "quantity": 100}],
                         "badges": {"rewards": {1: "c10", 3: "gift"}}})
    slow = Workout("x", 3000, 3000 * 0.55, T0)      # 9:10/km: tortoise
    fast = Workout("x", 5000, 5 * 330, T0)          # 5:30/km: tortoise, rabbit, deer
    got = eng.workouts("run", who(1), [slow], T0)
    assert got["held"] == ["tortoise"] and got["lit"][0]["prize"] == "c10"
    got = eng.workouts("run", who(1), [slow, fast], T0)
    assert [r["badge"] for r in got["lit"]] == ["rabbit", "deer"]
    assert got["lit"][-1]["prize"] == "gift"
    got = eng.workouts("run", who(2), [fast, Workout("x", 5000, 60, T0)], T0)
    assert got["lit"][-1].get("prize") is None  # the one gift is gone
    assert "faster than" in got["not_counted"][0]["reason"]
    assert {c["prize"] for c in eng.wallet(who(1))["cards"]} == {"c10", "gift"}
