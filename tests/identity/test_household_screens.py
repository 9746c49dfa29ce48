"""Households and their shared screens, from the identity graph's devices."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allscene.identity import device_graph
from allscene.identity.households import household_members, shared_screens


def _devices(rows):
    cols = ("device_id", "device_type", "person_id", "household_id")
    return pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(cols)})


def test_members_come_from_personal_devices_once_each():
    d = _devices([("ph1", "phone", "bob", "h:1"), ("b1", "band", "bob", "h:1"),
                  ("ph2", "phone", "alice", "h:1"), ("ph3", "phone", "carol", "p:carol"),
                  ("tv1", "tv", None, "h:1"), ("ph4", "phone", "dan", None)])
    assert household_members(d) == {"h:1": ("alice", "bob"), "p:carol": ("carol",)}


def test_screens_stand_for_their_household_and_nobody_else():
    d = _devices([("ph1", "phone", "bob", "h:1"), ("ph2", "phone", "alice", "h:1"),
                  ("ph3", "phone", "carol", "h:2"), ("tv1", "tv", None, "h:1"),
                  ("tv2", "tv", None, "h:2"), ("spk", "speaker", None, "h:1"),
                  ("tv3", "tv", None, "h:3"), ("car", "car", "bob", "h:1")])
    assert shared_screens(d) == {"spk": ("alice", "bob"), "tv1": ("alice", "bob"),
                                 "tv2": ("carol",)}
    assert shared_screens(d, ("tv",)) == {"tv1": ("alice", "bob"), "tv2": ("carol",)}
    assert shared_screens(d, ()) == {}
    assert shared_screens(_devices([])) == {}


@pytest.fixture(scope="module")
def graph_devices(world_log):
    devices, _ = device_graph(world_log.table())
    return devices.to_pyarrow()


def test_a_tv_stands_for_the_people_who_truly_live_with_it(world, graph_devices):
    truth = world[0] / "truth"
    dev = pq.read_table(truth / "devices.parquet").to_pylist()
    account = {d["account_id"]: d["person_id"] for d in dev if d["device_type"] == "phone"}
    home = {d["device_id"]: d["household_id"] for d in dev}
    lives = {p["person_id"]: p["household_id"]
             for p in pq.read_table(truth / "people.parquet").to_pylist()}
    screens = shared_screens(graph_devices, ("tv",))
    tvs = [d["device_id"] for d in dev if d["device_type"] == "tv"]
    assert len(screens) >= 0.9 * len(tvs)
    pairs = [(home[tv], lives[account[p]]) for tv, people in screens.items() for p in people]
    right = sum(a == b for a, b in pairs)
    assert right >= 0.97 * len(pairs)
    # and a household's TV is not shared with strangers: most TVs stand for one true home
    whole = sum(all(home[tv] == lives[account[p]] for p in people)
                for tv, people in screens.items())
    assert whole >= 0.95 * len(screens)
