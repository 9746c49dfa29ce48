"""The tag catalog: every entry checked, IAB ids real, bad catalogs refused by name."""

from pathlib import Path

import pytest

from allscene.profiles.catalog import (
    CatalogError,
    audience_taxonomy,
    content_interests,
    load_catalog,
    parse_catalog,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "iab_taxonomies"


def test_catalog_covers_the_issue():
    cat = load_catalog()
    for name in ("gender", "age", "age_band", "province", "city", "county", "education",
                 "income", "home_county", "home_county_ip", "work_county",
                 "intent.car.compact", "intent.first_car", "intent.car.price_band",
                 "owns_car", "car.make", "car.model", "car.year", "lifestyle.runner",
                 "lifestyle.night_owl"):
        assert name in cat, name
    assert len(cat.group("interest")) >= 10
    assert cat["intent.car.compact"].columns() == [
        "intent.car.compact@7d", "intent.car.compact@30d", "intent.car.compact@90d"]


def test_every_iab_id_is_in_the_audience_taxonomy_with_a_fitting_name():
    tax = audience_taxonomy()
    cat = load_catalog()
    assert tax[cat["gender"].iab["female"]].endswith("Female |")
    assert "Automotive" in tax[cat["interest.automotive"].iab]
    assert tax[cat["intent.car.suv"].iab].startswith("Purchase Intent")
    assert "Age Range | 25-29" in tax[cat["age_band"].iab["25-34"]]


def test_interests_follow_the_content_taxonomy_tree():
    m = content_interests()
    assert m["1"] == ["interest.automotive"]
    assert m["11"] == ["interest.automotive"]  # Hatchback, under Automotive
    assert "interest.sports" in m["547"]  # Basketball


def test_taxonomies_are_read_from_shared_data_or_the_env(monkeypatch, tmp_path):
    from allscene.profiles.catalog import IAB_ENV, iab_dir

    assert iab_dir() == SHARED
    monkeypatch.setenv(IAB_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=IAB_ENV):
        iab_dir()


@pytest.mark.parametrize("text, message", [
    ("tags: [{name: a, group: core, type: int, meaning: x, sources: [search]},"
     " {name: a, group: core, type: int, meaning: y, sources: [search]}]", "defined twice"),
    ("tags: [{name: a, group: core, type: int, meaning: x, sources: [telepathy]}]",
     "unknown source event kinds ['telepathy']"),
    ("tags: [{name: a, group: core, type: int, meaning: x, sources: [search], iab: 99999}]",
     "has no id [99999]"),
    ("tags: [{name: a, group: vibes, type: int, meaning: x, sources: [search]}]",
     "group 'vibes'"),
    ("tags: [{name: a, type: int, meaning: x, sources: [search]}]", "'group' is required"),
    ("tags: [{name: a, group: core, type: int, meaning: x, sources: [search], colour: red}]",
     "unknown fields ['colour']"),
    ("tags: [", "not valid YAML"),
])
def test_a_broken_catalog_is_refused_naming_the_problem(text, message):
    with pytest.raises(CatalogError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_catalog(text)
