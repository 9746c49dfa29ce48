"""Campaigns: checked field by field before they are stored, and kept per advertiser."""

from __future__ import annotations

import copy

import pytest

from allscene.delivery.campaigns import CampaignError, CampaignService, parse_campaign
from allscene.delivery.rules import RuleError, parse_rule, rule_holds
from allscene.storage.configdb import ConfigStore, ConflictError

GOOD = {
    "id": "suv-spring", "name": "Spring SUV launch",
    "flights": [{"start": "2026-10-01T00:00:00+08:00", "end": "2026-10-15T00:00:00+08:00"}],
    "budget": {"total": 50000, "daily": 5000}, "pacing": "even",
    "bid": {"type": "cpc", "amount": 2.5},
    "targeting": {"audiences": ["young_drivers"], "scenes": ["commute_drive"],
                  "counties": ["110105"], "hours": [7, 8, 18], "device_types": ["phone", "car"],
                  "placements": ["phone_splash"]},
    "frequency_cap": {"impressions": 2, "per_hours": 24},
    "creatives": [
        {"id": "winter", "format": "image", "w": 1080, "h": 1920,
         "url": "https://cdn.example/winter.jpg", "rule": "weather.temp_c < 10"},
        {"id": "default", "format": "image", "w": 1080, "h": 1920,
         "url": "https://cdn.example/default.jpg"}],
    "holdout": 0.1,
}


def with_(path: str, value):
    doc = copy.deepcopy(GOOD)
    node = doc
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    node[int(last) if last.isdigit() else last] = value
    return doc


@pytest.fixture
def service(tmp_path):
    store = ConfigStore(f"sqlite:///{tmp_path}/config.sqlite")
    for a in ("acme", "globex"):
        store.add_advertiser(a, a.title())
    saved = {"acme": {"young_drivers"}, "globex": set()}
    return CampaignService(store, scene_ids={"commute_drive", "cold_snap"},
                           placement_ids={"phone_splash", "tv_boot"},
                           audiences=lambda adv: saved.get(adv, set()))


@pytest.mark.parametrize(("path", "value", "says"), [
    ("budget.daily", 60000, "budget: Value error, the daily budget is more than the total"),
    ("budget.total", -5, "budget.total"),
    ("flights.0.end", "2026-09-01T00:00:00+08:00", "a flight ends after it starts"),
    ("flights.0.start", "2026-10-01T00:00:00", "time zone"),
    ("pacing", "fast", "pacing"),
    ("bid.type", "cpa", "bid.type"),
    ("holdout", 0.9, "holdout"),
    ("targeting.hours", [7, 25], "targeting.hours.1"),
    ("creatives.0.url", None, "needs a url"),
    ("creatives.1.id", "winter", "creative ids repeat"),
    ("id", "Bad Id!", "id"),
    ("frequency_cap.impressions", 0, "frequency_cap.impressions"),
])
def test_a_bad_field_is_named(path, value, says):
    with pytest.raises(CampaignError, match=says.replace("(", r"\(")):
        parse_campaign(with_(path, value))


def test_an_unknown_field_is_refused_not_ignored():
    with pytest.raises(CampaignError, match="targeting.scene: Extra inputs"):
        parse_campaign(with_("targeting.scene", ["typo"]))


@pytest.mark.parametrize(("path", "value", "says"), [
    ("targeting.scenes", ["commute_drives"], "unknown scene 'commute_drives'"),
    ("targeting.placements", ["phone_lockscreen"], "unknown placement"),
    ("targeting.device_types", ["fridge"], "unknown device type 'fridge'"),
    ("targeting.counties", ["Chaoyang"], "not a county code"),
    ("targeting.audiences", ["someone_elses"], "no saved audience 'someone_elses'"),
    ("creatives.0.rule", "weather.temperature < 10", "did you mean 'weather.temp_c'"),
    ("creatives.0.rule", "in(heatwave)", "unknown scene 'heatwave'"),
])
def test_the_service_checks_names_against_the_platform(service, path, value, says):
    with pytest.raises(CampaignError, match=says):
        service.create("acme", with_(path, value))


def test_an_advertiser_uses_only_its_own_audiences(service):
    service.create("acme", GOOD)
    with pytest.raises(CampaignError, match="young_drivers"):
        service.create("globex", GOOD)


def test_create_update_and_isolation(service):
    c, v = service.create("acme", GOOD)
    assert (c.id, v) == ("suv-spring", 1)
    got, v = service.get("acme", "suv-spring")
    assert got == c and v == 1
    c2, v2 = service.update("acme", with_("bid.amount", 3.0), version=1)
    assert c2.bid.amount == 3.0 and v2 == 2
    with pytest.raises(ConflictError):
        service.update("acme", with_("bid.amount", 4.0), version=1)
    assert service.get("globex", "suv-spring") is None
    assert service.list("globex") == []
    assert service.delete("globex", "suv-spring") is False
    assert [x.id for x, _ in service.list("acme")] == ["suv-spring"]


def test_the_winter_creative_fits_a_cold_request():
    rules = [parse_rule(c["rule"]) if c.get("rule") else None for c in GOOD["creatives"]]
    env = {"weather.temp_c": 3.5, "scenes": set()}
    assert [r is None or rule_holds(r, env) for r in rules] == [True, True]
    env = {"weather.temp_c": 21.0, "scenes": set()}
    assert [r is None or rule_holds(r, env) for r in rules] == [False, True]
    env = {"weather.temp_c": None, "scenes": set()}  # no report: the rule does not hold
    assert rule_holds(rules[0], env) is False


@pytest.mark.parametrize("text", ["seen(steps, 1h)", "hour", "hour < weekday", "temp < 3"])
def test_rules_read_only_the_request_context(text):
    with pytest.raises(RuleError):
        parse_rule(text)
