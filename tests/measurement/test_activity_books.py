"""An activity's books held against the log: they balance when nothing was lost, and a lost
event or an unrevealed seed shows on the index page, a failure as failed."""

from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa

from allscene.engagement.service import Engagement, EngagementError, Who
from allscene.events.ingest import Ingestor
from allscene.measurement.activities import activity_metrics, conversion_rates, reconcile
from allscene.measurement.casebook import check_books, index_html
from allscene.storage import ParquetEventLog
from allscene.storage.engagedb import EngagementStore

T0 = dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.UTC)
AFTER = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 4, 20, tzinfo=dt.UTC)
CLAIM = {"claim": "every engagement ledger balances", "metric": "ledger"}


def _played(tmp_path) -> tuple[Engagement, list[dict]]:
    events: list[dict] = []
    eng = Engagement(EngagementStore(f"sqlite:///{tmp_path}/e.sqlite"), code_key=b"k" * 32,
                     emit=events.extend)
    eng.create("kfc", {"id": "env", "name": "Envelopes", "start": "2026-03-01T00:00:00+08:00",
                       "end": "2026-03-31T00:00:00+08:00", "entry_points": ["phone_weather"],
                       "envelopes": {"budget_cents": 10_000, "count": 8},
                       "prizes": [{"id": "cp", "name": "Coupon", "kind": "coupon",
                                   "quantity": 3}],
                       "lottery": {"odds": {"cp": 0.5}}})
    for i in range(12):  # 12 shown, 10 play, 8 envelopes: two find them gone
        who, t = Who(f"p{i}", f"ph{i}"), T0 + dt.timedelta(minutes=i)
        eng.show("phone_weather", who, t)
        if i >= 10:
            continue
        try:
            eng.envelope("env", who, f"e{i}", t)
        except EngagementError:
            pass
        eng.draw("env", who, f"d{i}", t)
    return eng, events


def _log(tmp_path, name: str, events: list[dict]) -> ParquetEventLog:
    log = ParquetEventLog(tmp_path / name)
    report = Ingestor(log, now=NOW).ingest_body(b"\n".join(orjson.dumps(e) for e in events),
                                               "test")
    assert report.accepted == len(events), report.as_dict()
    return log


PEOPLE = pa.table({"device_id": [f"ph{i}" for i in range(12)],
                   "person_id": [f"p{i}" for i in range(12)]})


def test_the_books_balance_against_a_complete_log(tmp_path):
    eng, events = _played(tmp_path)
    m = activity_metrics(_log(tmp_path, "log", events), "kfc", "env", people=PEOPLE)
    books = reconcile(eng, "kfc", "env", m, now=AFTER)
    assert books.balanced and [ok for _, ok, _ in books.checks] == [True] * 4, books.checks
    assert "10 draws re-run (log 10)" in books.checks[-1][2]
    result = check_books(CLAIM, {"env": books})
    assert result.holds is True and result.figures == [("env: failed checks", 0)]
    # before the end the seed stays secret: the draws cannot be re-run yet, nothing fails
    early = reconcile(eng, "kfc", "env", m, now=T0 + dt.timedelta(days=1))
    assert early.balanced and early.checks[-1][1] is None


def test_a_lost_event_is_a_failed_check_shown_as_failed(tmp_path):
    eng, events = _played(tmp_path)
    lost = next(i for i, e in enumerate(events) if e["action"] == "envelope")
    log = _log(tmp_path, "lossy", events[:lost] + events[lost + 1:])
    books = reconcile(eng, "kfc", "env", activity_metrics(log, "kfc", "env", people=PEOPLE),
                      now=AFTER)
    failed = [what for what, ok, _ in books.checks if ok is False]
    assert failed == ["cash paid: the ledger's = the log's"] and not books.balanced
    result = check_books(CLAIM, {"env": books})
    assert result.holds is False and result.figures == [("env: failed checks", 1)]
    page = index_html("t", [{"id": "kfc", "title": "KFC", "claims": [result]}])
    assert page.count("FAILED") == 2  # the claim and the check
    # an activity named by the claim without books is unanswered, never true
    assert check_books(CLAIM | {"activities": ["env", "other"]}, {"env": books}).holds is None


def test_conversion_rates_keep_players_out_of_the_ad_group(tmp_path):
    eng, events = _played(tmp_path)
    ad = []
    for i in range(6, 12):  # p6..p11 saw a campaign's ad; p6..p9 also played
        rid, t = f"r{i}", T0 + dt.timedelta(hours=1, minutes=i)
        base = {"device_id": f"ph{i}", "device_type": "phone", "advertiser_id": "kfc",
                "campaign_id": "plain", "creative_id": "c1", "request_id": rid,
                "ts": t.isoformat()}
        ad += [base | {"event_id": f"dec{i}", "kind": "ad_decision", "outcome": "ad",
                       "account_id": f"p{i}", "placement_id": "phone_weather"},
               base | {"event_id": f"imp{i}", "kind": "ad_impression",
                       "placement_id": "phone_weather"}]
    leads = [{"event_id": f"cv{i}", "kind": "ad_conversion", "advertiser_id": "kfc",
              "conversion_type": "lead", "device_id": f"ph{i}", "device_type": "phone",
              "ts": (T0 + dt.timedelta(days=1)).isoformat()} for i in (0, 1, 11)]
    log = _log(tmp_path, "log", events + ad + leads)
    rates = conversion_rates(log, "kfc", ["env", "env/envelope", "plain"], activities=["env"],
                             people=PEOPLE, min_cell=1)
    assert (rates["env"]["people"], rates["env"]["converted"]) == (10, 2)
    assert (rates["env/envelope"]["people"], rates["env/envelope"]["converted"]) == (8, 2)
    assert (rates["plain"]["people"], rates["plain"]["converted"]) == (2, 1)  # p10, p11
    assert conversion_rates(log, "kfc", ["plain"], activities=["env"], people=PEOPLE,
                            min_cell=3)["plain"]["rate"] is None
