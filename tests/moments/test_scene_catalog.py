"""The scene catalog: what it holds, and every way a broken one is refused at load."""

import pytest
import yaml

from allscene.moments.catalog import FAMILIES, CatalogError, default_path, load_catalog

# The scenes the issue asks the catalog to cover, by id.
REQUIRED = [
    "commute_taxi", "commute_transit", "commute_drive", "in_car", "arriving_at_office",
    "working_late", "lunch_break", "business_trip", "holiday_travel", "at_airport_station",
    "shopping_mall", "supermarket_run", "dining_out", "gym_workout", "running", "cycling",
    "sleeping", "waking_up", "at_home_evening", "tv_prime_time", "kids_tv", "cooking_at_home",
    "cleaning", "bad_air_at_home", "rainy_day", "cold_snap", "heat_wave", "first_day_off",
    "weekend_morning", "payday", "new_phone_setup", "low_battery", "on_home_wifi",
    "on_cellular_data", "watching_sports", "listening_to_music", "game_session",
    "late_night_news",
]


def test_the_packaged_catalog_has_100_scenes_in_three_families_with_names():
    cat = load_catalog()
    assert len(cat.scenes) >= 100
    assert {s.family for s in cat.scenes} == set(FAMILIES)
    for s in cat.scenes:
        assert s.name_zh and s.name_en and s.description and s.lasts_us > 0
    missing = [r for r in REQUIRED if r not in {s.id for s in cat.scenes}]
    assert missing == []


def test_scenes_come_after_the_scenes_they_depend_on():
    cat = load_catalog()
    pos = {s.id: i for i, s in enumerate(cat.scenes)}
    for s, w in zip(cat.scenes, cat.when, strict=True):
        assert all(pos[d] < pos[s.id] for d in w.scenes)


def entry(**over):
    e = {"id": "rainy_walk", "family": "personal", "name": {"zh": "雨中漫步", "en": "Rain walk"},
         "description": "Walking in the rain.", "when": 'weather.condition == "rain"',
         "lasts": "1h"}
    e.update(over)
    return {k: v for k, v in e.items() if v is not None}


def load(*entries):
    return load_catalog(text=yaml.safe_dump({"scenes": list(entries)}, allow_unicode=True))


@pytest.mark.parametrize("over, message", [
    ({"when": 'app_open(app == "didi" and'}, "scene 'rainy_walk': when: syntax error at column"),
    ({"when": 'tv_wach(genre == "kids")'},
     "scene 'rainy_walk': when: unknown event kind or function 'tv_wach' (did you mean "
     "'tv_watch'?)"),
    ({"when": "seen(stepz, 1h)"}, "scene 'rainy_walk': when: unknown event kind 'stepz'"),
    ({"when": 'tv_watch(genr == "kids")'}, "tv_watch has no field 'genr' (did you mean 'genre'?)"),
    ({"when": 'steps(steps >= "many")'}, "cannot compare int with str"),
    ({"when": 'place == "hom"'}, "'hom' is not one of home, work, other, unknown"),
    ({"when": "hour"}, "hour is not yes/no"),
    ({"when": "count(steps, 1h)"}, "count(...) is a number: compare it"),
    ({"when": "seen(steps, 5)"}, "expected a duration such as 30m"),
    ({"when": "in(nowhere)"}, "unknown scene 'nowhere'"),
    ({"until": 'search(query ~ "(")'}, "scene 'rainy_walk': until: bad regular expression"),
    ({"lasts": "forever"}, "lasts 'forever' is not a duration"),
    ({"family": "garden"}, "family 'garden' is not one of home, personal, smart_life"),
    ({"name": {"zh": "雨"}}, "name must have exactly 'zh' and 'en'"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"when": None}, "missing 'when'"),
    ({"id": "Rainy Walk"}, "id must be lower_snake_case"),
])
def test_a_broken_scene_is_refused_naming_the_scene_and_the_problem(over, message):
    with pytest.raises(CatalogError) as e:
        load(entry(**over))
    assert message in str(e.value)


def test_duplicate_ids_and_dependency_cycles_are_refused():
    with pytest.raises(CatalogError, match="scene 'rainy_walk': duplicate id"):
        load(entry(), entry())
    with pytest.raises(CatalogError, match="depends on itself through in"):
        load(entry(id="aa", when="in(bb)"), entry(id="bb", when="in(aa)"))
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(text="scenes: [")


def test_the_catalog_file_is_refused_by_path_too(tmp_path):
    bad = tmp_path / "scenes.yaml"
    bad.write_text(default_path().read_text(encoding="utf-8").replace(
        'app_open(app == "didi")', 'app_open(ap == "didi")', 1), encoding="utf-8")
    with pytest.raises(CatalogError, match="scene 'commute_taxi': when: app_open has no field "
                                           "'ap'"):
        load_catalog(bad)
