"""The identity graph built from the imported world, scored against its truth."""

import json

import pyarrow.parquet as pq
import pytest

from allscene.identity import device_graph
from allscene.world.score import score_identity


@pytest.fixture(scope="module")
def graph(world_log):
    devices, people = device_graph(world_log.table())
    return devices.to_pyarrow(), people.to_pyarrow()


def test_devices_go_to_the_right_person_and_household(world, graph):
    scores = score_identity(*graph, world[0])
    assert scores["device_coverage"] >= 0.97
    assert scores["device_accuracy"] >= 0.99
    assert scores["household_precision"] >= 0.97
    # People whose phones never join home Wi-Fi at night stay on their own (about 8%).
    assert scores["household_recall"] >= 0.75
    assert scores["appliance_coverage"] >= 0.95 and scores["appliance_accuracy"] >= 0.97


def test_people_are_counted_not_devices(world, graph):
    devices, people = graph
    truth = pq.read_table(world[0] / "truth" / "people.parquet")
    assert people.num_rows == truth.num_rows  # every person's phone signs in once at least
    assert devices.num_rows > people.num_rows  # bands, cars, appliances on top of phones
    ids = devices["device_id"].to_pylist()
    assert len(ids) == len(set(ids))
    appliances = devices.filter(devices["person_id"].is_null())
    assert set(appliances["device_type"].to_pylist()) <= {
        "tv", "speaker", "router", "air_purifier", "robot_vacuum"}


def test_score_rejects_a_wrong_graph(world, graph):
    """The score is not a constant: swapping people between devices lowers it."""
    import pyarrow as pa

    devices, people = graph
    persons = devices["person_id"].to_pylist()
    shifted = persons[1:] + persons[:1]
    bad = devices.set_column(devices.schema.get_field_index("person_id"), "person_id",
                             pa.array(shifted, pa.string()))
    assert score_identity(bad, people, world[0])["device_accuracy"] < 0.1


def test_consent_is_per_person_and_matches_the_truth(world, world_log, graph):
    """Opting out on a device opts the person out; the latest choice wins."""
    import ibis

    from allscene.identity.consent import person_consent

    devices, _ = graph
    con = ibis.duckdb.connect()
    consent = person_consent(world_log.table(con=con), con.create_table("d", devices))
    choices = {r["person_id"]: r["personalized_ads"] for r in consent.to_pyarrow().to_pylist()}
    truth = pq.read_table(world[0] / "truth" / "people.parquet").to_pylist()
    phones = {d["person_id"]: d["account_id"] for d in
              pq.read_table(world[0] / "truth" / "devices.parquet").to_pylist()
              if d["device_type"] == "phone"}
    days = json.loads((world[0] / "world.json").read_text())["days"]
    back = {p["person_id"] for p in truth if p["opt_out"] and 0 <= p["opt_in_day"] < days}
    still_out = {phones[p["person_id"]] for p in truth if p["opt_out"]} - {phones[p] for p in back}
    came_back = {phones[p] for p in back}
    assert still_out and came_back
    assert {p for p, ads in choices.items() if ads is False} == still_out
    assert {p for p, ads in choices.items() if ads is True} == came_back
