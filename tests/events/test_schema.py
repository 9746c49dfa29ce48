import datetime as dt

import pytest
from pydantic import ValidationError

from allscene.events import schema
from allscene.events.validate import JsonValidator
from tests.factories import FIELDS, NOW, event


def test_every_kind_of_design_is_modelled_with_a_category():
    design = {"search", "content_view", "app_open", "purchase", "finance_activity",
              "social_post", "voice_command", "login", "pairing", "profile", "location", "wifi_connect",
              "bluetooth_connect", "steps", "workout", "heart_rate", "tv_watch", "device_state", "weather",
              "ad_decision", "ad_impression", "ad_click", "ad_conversion", "engagement", "scene_enter",
              "scene_exit", "consent"}
    assert set(schema.KINDS) == design == set(FIELDS)
    assert set(schema.CATEGORIES.values()) == {"active", "passive", "context", "ad", "moment",
                                               "consent", "engagement"}


@pytest.mark.parametrize("kind", schema.KINDS)
def test_each_kind_validates_and_fits_the_arrow_schema(kind):
    e = schema.parse_event(event(kind))
    assert e.kind == kind and e.ts.tzinfo == dt.UTC
    assert set(e.__dict__) <= set(schema.ARROW_SCHEMA.names)
    assert e.schema_version == schema.SCHEMA_VERSION


def test_json_schema_lists_every_kind_and_carries_the_version():
    js = schema.json_schema()
    assert str(schema.SCHEMA_VERSION) in js["$id"]
    assert set(js["discriminator"]["mapping"]) == set(schema.KINDS)
    search = js["$defs"]["Search"]
    assert {"query", "app", "event_id", "ts"} <= set(search["required"])


def test_timestamps_are_normalised_to_utc_and_naive_ones_refused():
    e = schema.parse_event(event("search", ts="2026-10-05T08:00:00+08:00"))
    assert e.ts == dt.datetime(2026, 10, 5, 0, 0, tzinfo=dt.UTC)
    with pytest.raises(ValidationError, match="timezone"):
        schema.parse_event(event("search", ts="2026-10-05T08:00:00"))


@pytest.mark.parametrize("mutation, expected", [
    ({"query": None}, "line 1 (event_id=search-0, kind=search): query: Field required"),
    ({"query": 5}, "query: Input should be a valid string"),
    ({"device_type": "fridge"}, "device_type: Input should be 'phone', 'tv'"),
    ({"kind": "telepathy"}, "kind: unknown kind 'telepathy'"),
    ({"kind": None}, "kind: Field required"),
    ({"colour": "red"}, "colour: not a field of this kind"),
    ({"schema_version": 99}, "schema_version: Input should be less than or equal to 1"),
    ({"ts": "2027-06-01T00:00:00Z"}, "ts: 2027-06-01T00:00:00+00:00 is more than 1 day"),
])
def test_errors_name_the_event_the_field_and_the_reason(mutation, expected):
    checked = JsonValidator(now=NOW).validate_obj(event("search", **mutation))
    assert checked.event is None
    assert expected in checked.describe(1)


def test_group_rules_location_needs_a_place_and_lat_lon_pairs():
    v = JsonValidator(now=NOW)
    nothing = v.validate_obj(event("location", ip=None, cell_id=None, lat=None, lon=None))
    assert nothing.errors == ["ip, cell_id, lat, speed_mps: at least one is required"]
    half = v.validate_obj(event("location", lon=None))
    assert half.errors == ["lat, lon: must be given together"]


def test_weather_has_no_device_but_device_events_need_one():
    v = JsonValidator(now=NOW)
    assert v.validate_obj(event("weather")).event is not None
    assert "device_id: Input should be None" in v.validate_obj(
        event("weather", device_id="d1")).errors
    assert "device_id: Field required" in v.validate_obj(event("search", device_id=None)).errors


def test_exported_json_schema_accepts_and_refuses_like_the_models():
    """Producers in other languages validate against the export: it must agree."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema.json_schema(),
                                                format_checker=jsonschema.FormatChecker())
    for kind in schema.KINDS:
        assert not list(validator.iter_errors(event(kind))), kind
    for bad in (event("search", query=None), event("search", device_type="fridge"),
                event("steps", steps=-1), event("login", imei_md5="xyz"),
                event("search", colour="red"), event("search", kind="telepathy")):
        assert list(validator.iter_errors(bad)), bad
        with pytest.raises(ValidationError):
            schema.parse_event(bad)
