"""Bulk resolution on hand-made events: the same answers as one by one, edge cases included."""

import pickle

import numpy as np
import pyarrow as pa

from allscene.moments.resolve import Resolver

S = pa.string()
COLS = ("device_id", "kind", "bssid", "ip", "network", "cell_id")


def resolver() -> Resolver:
    devices = pa.table({"device_id": ["ph1", "ph2", "tv1", "spk1", "ph3"],
                        "person_id": ["alice", "bob", None, None, "carol"],
                        "household_id": ["h1", "h1", "h1", "h2", "h2"]},
                       schema=pa.schema([(c, S) for c in ("device_id", "person_id",
                                                          "household_id")]))
    people = pa.table({"person_id": ["bob", "alice", "carol", "dan"],
                       "household_id": ["h1", "h1", "h2", "h2"]})
    keys = pa.table({"person_id": ["alice", "alice", "alice", "bob", "bob", "carol", "dan"],
                     "key": ["b:ap1", "i:10.0.0", "c:cw", "b:ap1", "c:ch", "i:10.0.0", "c:ch"],
                     "place": ["home", "home", "work", "home", "home", "work", ""]})
    # Cell "cx" is in no city, "cy" in a city coded "": both fall through to the IP's city.
    towers = pa.table({"cell_id": ["ch", "cw", "cx", "cy"],
                       "county_code": ["110105", "310101", "9", "8"]})
    regions = pa.table({"county_code": ["110105", "310101", "8"],
                        "city_code": ["110100", "310100", ""]})
    geoip = pa.table({"prefix": ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "5.0.0.0/24"],
                      "city_code": ["440100", "", None, "999"],
                      "connection": ["fixed", "fixed", "fixed", "mobile"]})
    return Resolver(devices, people, keys, towers, geoip, regions)


def events() -> list[dict]:
    rows = []
    for dev in ("ph1", "ph2", "tv1", "spk1", "ph3", "nobody", None):
        rows.append({"device_id": dev, "kind": "app_open"})
        rows.append({"device_id": dev, "kind": None})
        for bssid in ("ap1", "ap2", None):
            rows.append({"device_id": dev, "kind": "wifi_connect", "bssid": bssid,
                         "ip": "10.0.0.7", "network": "wifi", "cell_id": "ch"})
        for ip in ("10.0.0.7", "10.0.1.3", "10.0.2.9", "5.0.0.1", None, "", "10", ".5",
                   "10.0.0.", "a..b"):
            for net in ("wifi", "cellular", None):
                for cell in ("ch", "cw", "cx", "cy", "c?", None):
                    rows.append({"device_id": dev, "kind": "location", "ip": ip,
                                 "network": net, "cell_id": cell})
    return rows


def table(rows: list[dict]) -> pa.Table:
    return pa.table({c: pa.array([r.get(c) for r in rows], S) for c in COLS})


def bulk(res: Resolver, t: pa.Table) -> list[tuple]:
    many = res.resolve_many(t)
    assert many.row.dtype == np.int64 and many.person.dtype == np.int64
    assert all(a.type == S for a in (many.place, many.city, many.network))
    return list(zip(many.row.tolist(), many.person.tolist(), many.place.to_pylist(),
                    many.city.to_pylist(), many.network.to_pylist(), strict=True))


def one_by_one(res: Resolver, rows: list[dict]) -> list[tuple]:
    return [(i, *r) for i, e in enumerate(rows) for r in res.resolve_one(e)]


def test_bulk_equals_one_by_one_on_every_edge_case():
    res, rows = resolver(), events()
    got = bulk(res, table(rows))
    assert got == one_by_one(res, rows)
    assert {x[2] for x in got} == {"home", "work", "other", None}
    assert {x[3] for x in got} == {"110100", "310100", "440100", "", None}
    alice, bob = res.index["alice"], res.index["bob"]
    assert got[0] == (0, alice, None, None, None)
    tv = [x[:2] for x in got if rows[x[0]]["device_id"] == "tv1"][:4]
    first = tv[0][0]
    assert tv == [(first, alice), (first, bob), (first + 1, alice), (first + 1, bob)]


def test_bulk_over_chunks_slices_and_other_string_types():
    res, rows = resolver(), events()
    t = table(rows)
    chunked = pa.concat_tables([t.slice(0, 100), t.slice(100, 1), t.slice(101)])
    assert bulk(res, chunked) == one_by_one(res, rows)
    part = t.slice(50, 300)
    assert bulk(res, part) == one_by_one(res, rows[50:350])
    large = t.cast(pa.schema([(c, pa.large_string()) for c in COLS]))
    assert bulk(res, large) == one_by_one(res, rows)


def test_keys_and_devices_of_none_are_found_as_the_dicts_find_them():
    res = resolver()
    res.devices[None] = (res.index["dan"],)
    res.keys[(res.index["dan"], None)] = "home"
    res.cell_city[None] = "120100"
    rows = events()
    assert bulk(res, table(rows)) == one_by_one(res, rows)


def test_empty_batches_and_batches_without_place_rows():
    res = resolver()
    assert bulk(res, table([])) == []
    rows = [{"device_id": "tv1", "kind": "tv_watch"}, {"device_id": "x", "kind": "location"}]
    assert bulk(res, table(rows)) == [(0, res.index["alice"], None, None, None),
                                      (0, res.index["bob"], None, None, None)]
    only = pa.table({"device_id": pa.array(["ph1"], S), "kind": pa.array(["steps"], S)})
    assert bulk(res, only) == [(0, res.index["alice"], None, None, None)]


def test_a_pickled_resolver_leaves_its_bulk_tables_behind():
    res = resolver()
    rows = events()
    before = bulk(res, table(rows))
    again = pickle.loads(pickle.dumps(res))
    assert "_bulk" in vars(res) and "_bulk" not in vars(again)
    assert bulk(again, table(rows)) == before
