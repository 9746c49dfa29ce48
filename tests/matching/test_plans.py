"""Multi-stage optimization plans: declared and checked with the campaign, staged by the day,
recipes computed from the logged clicks (per advertiser, opted-out people never in), the
campaign moved to its stage and a reloading ad server targeting the stage's audience."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import pyarrow as pa
import pytest

from allscene.audiences.service import Audiences
from allscene.audiences.store import AudienceStore
from allscene.delivery.campaigns import CampaignError, CampaignService, parse_campaign
from allscene.events.ingest import Ingestor
from allscene.matching.plans import (
    Recipes,
    audience_name,
    current_stage,
    read_records,
    records_path,
    run_plans,
    stage_at,
)
from allscene.matching.recipes import clickers
from allscene.storage import ParquetEventLog
from allscene.storage.configdb import ConfigStore
from allscene.storage.tables import TableStore
from tests.ad_helpers import PEOPLE, campaign

LOCAL = dt.timezone(dt.timedelta(hours=8))
FLIGHT = [{"start": "2026-10-12T00:00:00+08:00", "end": "2026-10-19T00:00:00+08:00"}]
D12, D13, D14, D15, D16 = (dt.date(2026, 10, d) for d in (12, 13, 14, 15, 16))
THREE = {"stages": [
    {"id": "stage1", "days": 2, "audience": "@seed"},
    {"id": "stage2", "days": 2,
     "audience": {"lookalike": {"clickers": {"stages": ["stage1"]}}, "size": 60}},
    {"id": "stage3", "audience": {"intersect": [{"clickers": {"stages": ["stage1"]}},
                                                {"clickers": {"stages": ["stage2"]}}]}}]}


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), LOCAL)


def _clicks(log, rows) -> None:
    """``(advertiser, campaign, person or None, stage, local time, clicked)`` as logged
    decisions and clicks (the person's phone is ``ph<i>``)."""
    events = []
    for k, (adv, cid, person, stage, t, clicked) in enumerate(rows):
        base = {"device_id": f"ph{(person or 'p999')[1:]}", "device_type": "phone",
                "request_id": f"r{k}-{t:%d%H%M}", "placement_id": "phone_splash",
                "campaign_id": cid, "advertiser_id": adv, "creative_id": "splash"}
        dec = base | {"event_id": f"d{k}-{t:%d%H%M}", "kind": "ad_decision", "outcome": "ad",
                      "ts": t.isoformat()}
        if person:
            dec["account_id"] = person
        if stage:
            dec["stage"] = stage
        events.append(dec)
        if clicked:
            events.append(base | {"event_id": f"k{k}-{t:%d%H%M}", "kind": "ad_click",
                                  "ts": (t + dt.timedelta(seconds=20)).isoformat()})
    rep = Ingestor(log, now=dt.datetime(2027, 1, 1, tzinfo=dt.UTC)).ingest_body(
        b"\n".join(orjson.dumps(e) for e in events), "test")
    assert rep.accepted == len(events), rep.samples


def _setup(settings, plan=THREE, cid="chev", **over):
    store = ConfigStore(settings.config_db)
    for a in ("acme", "globex"):
        if a not in dict(store.list_advertisers()):
            store.add_advertiser(a, a.title())
    tables = TableStore(settings.data_dir / "derived")
    aud = Audiences(tables.read("tag_table"), tables.read("consent"),
                    AudienceStore(settings.data_dir / "audiences"), advertiser="acme")
    aud.create("seed", "age in 20..39", replace=True)  # p0..p19, p40..p59, ...: 100 less p1
    service = CampaignService(store)
    service.create("acme", campaign(cid, flights=FLIGHT, plan=plan, **over))
    return service


def _aud(settings, advertiser="acme") -> Audiences:
    tables = TableStore(settings.data_dir / "derived")
    return Audiences(tables.read("tag_table"), tables.read("consent"),
                     AudienceStore(settings.data_dir / "audiences"), advertiser=advertiser)


def _members(settings, name, advertiser="acme") -> set[str]:
    store = AudienceStore(settings.data_dir / "audiences")
    return set(store.members(advertiser, name)["person_id"].to_pylist())


# --- declared ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("plan", "says"), [
    ({"stages": [{"id": "s", "audience": {"clickers": {"campaign": ["x"]}}}]},
     "plan.stages.0.audience: Value error, clickers: unknown key 'campaign'"),
    ({"stages": [{"id": "s", "audience": {"lookalike": "@seed"}}]},
     "plan.stages.0.audience: Value error, size: a whole number of people"),
    ({"stages": [{"id": "s", "audience": {"lookalike": {"union": []}, "size": 5}}]},
     "plan.stages.0.audience: Value error, lookalike.union: a non-empty list"),
    ({"stages": [{"id": "s", "audience": {"union": ["@a", {"intersect": ["@b", 7]}]}}]},
     "audience: Value error, union.1.intersect.1: a recipe is an audience expression"),
    ({"stages": [{"id": "s", "audience": {"clickers": {"days": 0}}}]}, "clickers.days"),
    ({"stages": [{"id": "s", "audience": {"clickers": {}, "union": ["@a"]}}]},
     "a recipe has one of"),
    ({"stages": [{"id": "s", "audience": "age in 22.."}]},
     "plan.stages.0.audience: Value error, not an audience expression"),
    ({"stages": [{"id": "a", "audience": "@x"}, {"id": "b", "audience": "@y"}]},
     "stages.0.days: only the last stage may run without days"),
    ({"stages": [{"id": "a", "days": 1, "audience": "@x"}, {"id": "a", "audience": "@y"}]},
     "stage ids repeat"),
    ({"stages": [{"id": "a", "days": 1, "audience": {"clickers": {"stages": ["b"]}}},
                 {"id": "b", "audience": "@y"}]},
     "stages.0.audience: clickers.stages: 'b' is not this stage or an earlier one"),
    ({"stages": [{"id": "a", "audience": "@x", "refresh": "weekly"}]}, "plan.stages.0.refresh"),
    ({"stages": [{"id": "a", "dayz": 2, "audience": "@x"}]}, "plan.stages.0.dayz"),
    ({"stages": [{"id": "A b", "audience": "@x"}]}, "plan.stages.0.id"),
    ({"stages": []}, "plan.stages"),
])
def test_a_bad_plan_is_refused_naming_the_field(plan, says):
    with pytest.raises(CampaignError) as e:
        parse_campaign(campaign("c", plan=plan))
    assert says in str(e.value)


def test_a_plan_is_stored_with_its_campaign_and_read_back(ad_settings):
    service = _setup(ad_settings)
    c, _ = service.get("acme", "chev")
    assert [s.id for s in c.plan.stages] == ["stage1", "stage2", "stage3"]
    assert c.plan.stages[1].audience == THREE["stages"][1]["audience"]
    assert c.plan.stages[2].refresh == "once" and c.stage is None


def test_the_stage_follows_the_local_day_from_the_first_flight():
    c = parse_campaign(campaign("c", flights=FLIGHT, plan=THREE))
    by_day = {d: getattr(current_stage(c, dt.date(2026, 10, d)), "id", None)
              for d in range(11, 20)}
    assert by_day == {11: None, 12: "stage1", 13: "stage1", 14: "stage2", 15: "stage2",
                      16: "stage3", 17: "stage3", 18: "stage3", 19: None}
    assert current_stage(parse_campaign(campaign("c", flights=FLIGHT, plan=THREE,
                                                 status="paused")), D12) is None
    assert current_stage(parse_campaign(campaign("c", flights=FLIGHT)), D12) is None
    from allscene.delivery.decide import LOCAL as DECIDE_LOCAL
    from allscene.matching.plans import LOCAL as PLAN_LOCAL

    assert PLAN_LOCAL == DECIDE_LOCAL == LOCAL  # plans count the days delivery serves by
    # In UTC the flight starts on 10-11 (16:00): day 0 is then 10-11.
    assert current_stage(c, D13, tz=dt.UTC).id == "stage2"
    # A last stage with days goes on past them.
    two = {"stages": [{"id": "a", "days": 1, "audience": "@x"},
                      {"id": "b", "days": 1, "audience": "@y"}]}
    plan = parse_campaign(campaign("c", plan=two)).plan
    assert [getattr(stage_at(plan, k), "id", None) for k in (-1, 0, 1, 5)] == \
        [None, "a", "b", "b"]


def test_audience_names_are_valid_and_distinct():
    assert audience_name("chev", "stage1") == "plan_chev_stage1"
    a, b = audience_name("spring-suv", "s1"), audience_name("spring_suv", "s1")
    assert a != b and a.startswith("plan_spring_suv_s1_")
    assert len(audience_name("x" * 64, "y" * 64)) <= 64


# --- recipes -------------------------------------------------------------------------------------

def _log_for_recipes(settings):
    log = ParquetEventLog(settings.log_dir)
    _clicks(log, [
        ("acme", "chev", "p2", "stage1", _at(D12), True),
        ("acme", "chev", "p3", "stage1", _at(D13, 23), True),
        ("acme", "chev", "p3", "stage2", _at(D14), True),
        ("acme", "chev", "p4", "stage1", _at(D12), False),  # saw, did not click
        ("acme", "chev", None, "stage1", _at(D12), True),  # an unknown device
        ("acme", "chev", "p5", "stage2", _at(D15, 1), True),
        ("acme", "other", "p6", None, _at(D12), True),
        ("globex", "chev", "p7", "stage1", _at(D12), True),  # same id, other advertiser
    ])
    return log


def test_clickers_are_the_people_of_the_clicks_decisions(ad_settings):
    log = _log_for_recipes(ad_settings)
    assert clickers(log, "acme", ["chev"]) == {"p2", "p3", "p5"}
    assert clickers(log, "acme", ["chev"], stages=["stage1"]) == {"p2", "p3"}
    assert clickers(log, "acme", ["chev"], stages=["stage2"]) == {"p3", "p5"}
    assert clickers(log, "acme", ["chev", "other"], until=_at(D13, 0)) == {"p2", "p6"}
    # the day before 10-15: 10-14 local (p3's stage-2 click), not 10-13 23:00 nor 10-15
    assert clickers(log, "acme", ["chev"], since=_at(D14, 0), until=_at(D15, 0)) == {"p3"}
    assert clickers(log, "globex", ["chev"]) == {"p7"}
    assert clickers(log, "globex", ["other"]) == set()
    assert clickers(ParquetEventLog(ad_settings.data_dir / "empty"), "acme", ["chev"]) == set()


def test_recipes_intersect_union_and_the_advertiser_boundary(ad_settings):
    log = _log_for_recipes(ad_settings)
    _setup(ad_settings)
    aud = _aud(ad_settings)
    r = Recipes(aud, log, "chev", _at(D16, 0), own_campaigns={"chev", "other"})
    s1, s2 = {"clickers": {"stages": ["stage1"]}}, {"clickers": {"stages": ["stage2"]}}
    assert set(r.ids(r.people({"intersect": [s1, s2]}))) == {"p3"}
    assert set(r.ids(r.people({"union": [s1, s2]}))) == {"p2", "p3", "p5"}
    assert set(r.ids(r.people({"union": [{"clickers": {"campaigns": ["other"]}},
                                         {"intersect": ["age in 20..24", s1]}]}))) == \
        {"p6", "p2", "p3"}
    assert set(r.ids(r.people({"clickers": {"days": 1}}))) == {"p5"}
    assert r.notes == []
    # globex's campaign "chev" is not acme's "other"; acme cannot name globex's campaigns
    r = Recipes(aud, log, "chev", _at(D16, 0), own_campaigns={"chev"})
    assert r.ids(r.people({"clickers": {"campaigns": ["other", "nope"]}})) == []
    assert "no campaign other, nope of acme" in r.notes[0]


def test_a_lookalike_of_a_tiny_seed_falls_back_to_the_seed(ad_settings):
    log = _log_for_recipes(ad_settings)
    aud = _aud(ad_settings)
    r = Recipes(aud, log, "chev", _at(D16, 0))
    got = r.people({"lookalike": {"clickers": {}}, "size": 40})
    assert set(r.ids(got)) == {"p2", "p3", "p5"} and len(r.seeds) == 3
    assert "a seed of 3 people, fewer than the 20 it learns from" in r.notes[0]


def test_a_lookalike_grows_from_a_big_enough_seed(ad_settings):
    aud = _aud(ad_settings)
    r = Recipes(aud, ParquetEventLog(ad_settings.log_dir), "chev", _at(D16, 0))
    seed = r.people("age in 20..30")  # 11 ages x 5 people = 55, less p1 (opted out): 54
    assert len(seed) == 54
    got = r.people({"lookalike": "age in 20..30", "size": 20})
    assert len(got) == 20 and not (got & seed) and r.notes == []
    assert aud.row["p1"] not in got
    ages = {20 + i % 40 for i in (int(p[1:]) for p in r.ids(got))}
    assert max(ages) <= 45  # the nearest ages, not any


# --- running -------------------------------------------------------------------------------------

def test_run_plans_moves_the_campaign_and_a_reloaded_server_follows(ad_settings):
    from allscene.delivery.server import build_ad_server

    service = _setup(ad_settings)
    log = ParquetEventLog(ad_settings.log_dir)
    ads = build_ad_server(ad_settings, log, Ingestor(log))
    try:
        assert ads.decide("phone_splash", "ph60", ts=_at(D12)).outcome == "ad"  # no plan yet
        recs = run_plans(ad_settings, "acme", D12)
        assert [(r.campaign, r.stage, r.audience, r.people) for r in recs] == \
            [("chev", "stage1", "plan_chev_stage1", 99)]
        c, v = service.get("acme", "chev")
        assert c.stage == "stage1" and c.targeting.audiences == ["plan_chev_stage1"] and v == 2
        assert run_plans(ad_settings, "acme", D12) == []  # once: not again the same day
        assert run_plans(ad_settings, "acme", D13) == []
        assert ads.campaigns.store.campaigns_stamp() != ads._stamp
        ads.reload()
        d = ads.decide("phone_splash", "ph2", ts=_at(D12, 11))
        assert (d.outcome, d.stage, d.audience) == ("ad", "stage1", "plan_chev_stage1")
        assert ads.decide("phone_splash", "ph60", ts=_at(D12, 11)).outcome == "no_ad"  # age 40

        # 60 stage-1 clickers (ages 20..39, but p1 who opted out); p1 clicked too
        clicked = [f"p{i}" for i in range(PEOPLE) if 20 + i % 40 <= 39][:61]
        _clicks(log, [("acme", "chev", p, "stage1", _at(D13), True) for p in clicked])
        recs = run_plans(ad_settings, "acme", D14)
        assert [(r.stage, r.people, r.seed_people, r.note) for r in recs] == \
            [("stage2", 60, 60, None)]
        members = _members(ad_settings, "plan_chev_stage2")
        assert len(members) == 60 and not members & set(clicked) and "p1" not in members
        ads.reload()
        p = sorted(members)[0]
        d = ads.decide("phone_splash", f"ph{p[1:]}", ts=_at(D14))
        assert (d.outcome, d.stage, d.audience) == ("ad", "stage2", "plan_chev_stage2"), d.reasons
        assert ads.decide("phone_splash", "ph2", ts=_at(D14, 11)).outcome == "no_ad"
    finally:
        ads.adlog.close()


def test_opted_out_people_are_never_in_a_plan_audience(ad_settings):
    plan = {"stages": [{"id": "all", "refresh": "daily",
                        "audience": {"union": ["age in 20..40",
                                               {"clickers": {"campaigns": ["chev"]}},
                                               {"lookalike": "age in 20..39", "size": 150}]}}]}
    _setup(ad_settings, plan=plan, cid="retarget")
    log = ParquetEventLog(ad_settings.log_dir)
    CampaignService(ConfigStore(ad_settings.config_db)).create(
        "acme", campaign("chev", flights=FLIGHT))
    _clicks(log, [("acme", "chev", p, None, _at(D12), True) for p in ("p1", "p3", "p161")])
    tables = TableStore(ad_settings.data_dir / "derived")
    tables.write("consent", pa.table({"person_id": ["p1", "p161", "p2"],
                                      "personalized_ads": [False, False, True]}))
    (rec,) = run_plans(ad_settings, "acme", D13)
    members = _members(ad_settings, "plan_retarget_all")
    assert {"p3", "p2"} <= members and not {"p1", "p161"} & members
    assert rec.people == len(members) == PEOPLE - 2  # the lookalike fills up the rest
    assert rec.seed_people == 98  # ages 20..39 less p1 and p161 (both 21)


def test_daily_refresh_and_the_record(ad_settings):
    plan = {"stages": [{"id": "retarget", "refresh": "daily",
                        "audience": {"clickers": {"campaigns": ["broad"], "days": 1}}}]}
    service = _setup(ad_settings, plan=plan, cid="again")
    service.create("acme", campaign("broad", flights=FLIGHT))
    log = ParquetEventLog(ad_settings.log_dir)
    _clicks(log, [("acme", "broad", f"p{i}", None, _at(D12), True) for i in range(60)]
            + [("acme", "broad", f"p{i}", None, _at(D13), True) for i in range(100, 110)])
    first = run_plans(ad_settings, "acme", D13)
    assert [(r.stage, r.people, r.note) for r in first] == [("retarget", 59, None)]
    second = run_plans(ad_settings, "acme", D14)
    assert second[0].people == 10 and "fewer than 50 people: too few" in second[0].note
    assert _members(ad_settings, "plan_again_retarget") == {f"p{i}" for i in range(100, 110)}
    assert service.get("acme", "again")[1] == 3  # a new version each day: servers reload
    run_plans(ad_settings, "acme", D14)  # run again the same day: one record kept
    path = records_path(ad_settings.data_dir, "acme", "again")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 3 and set(lines[0]) == {"day", "stage", "audience", "recipe",
                                                 "people", "seed_people", "note"}
    recs = read_records(ad_settings.data_dir, "acme", "again")
    assert [(r.day, r.stage, r.audience, r.people) for r in recs] == [
        (D13, "retarget", "plan_again_retarget", 59), (D14, "retarget", "plan_again_retarget", 10)]
    assert recs[0].recipe == "clickers(campaigns=broad, days=1)"
    assert read_records(ad_settings.data_dir, "acme", "nothing") == []
    assert run_plans(ad_settings, "globex", D14) == []  # globex has no plans


def test_a_recipe_that_fails_is_recorded_and_the_campaign_left_alone(ad_settings):
    plan = {"stages": [{"id": "s", "audience": "@gone"}]}
    service = _setup(ad_settings, plan=plan, cid="broken")
    (rec,) = run_plans(ad_settings, "acme", D12)
    assert rec.audience is None and rec.note.startswith("not run: ") and "gone" in rec.note
    assert service.get("acme", "broken")[1] == 1


def test_the_plan_commands(ad_settings):
    from typer.testing import CliRunner

    from allscene.cli import app

    _setup(ad_settings)
    data = ["--data", str(ad_settings.data_dir)]
    r = CliRunner().invoke(app, [*data, "plan", "run", "--advertiser", "acme",
                                 "--day", "2026-10-12"])
    assert r.exit_code == 0, r.output
    assert "plan_chev_stage1" in r.output and "99" in r.output
    r = CliRunner().invoke(app, [*data, "plan", "show", "chev", "--advertiser", "acme"])
    assert r.exit_code == 0, r.output
    assert "stage2" in r.output and "2026-10-14" in r.output and "99" in r.output
    r = CliRunner().invoke(app, [*data, "plan", "show", "nope", "--advertiser", "acme"])
    assert r.exit_code == 2
