"""Helpers for the ad server tests: a data directory with 200 known people (identity, tags,
consent) and campaign documents. The fixtures using them are in ``tests/conftest.py``."""

from __future__ import annotations

import pyarrow as pa

from allscene.storage.tables import TableStore

PEOPLE = 200
COUNTY = "110105"


def make_people(data_dir, opted_out=("p1",)) -> None:
    """``p<i>`` owns phone ``ph<i>`` and TV ``tv<i>``; even people live in 110105."""
    store = TableStore(data_dir / "derived")
    ids = [f"p{i}" for i in range(PEOPLE)]
    store.write("identity_devices", pa.table({
        "device_id": [f"ph{i}" for i in range(PEOPLE)] + [f"tv{i}" for i in range(PEOPLE)],
        "person_id": ids + ids}))
    store.write("tag_table", pa.table({
        "person_id": ids, "age": [20 + i % 40 for i in range(PEOPLE)],
        "home_county": [COUNTY if i % 2 == 0 else "310104" for i in range(PEOPLE)]}))
    store.write("consent", pa.table({"person_id": list(opted_out),
                                     "personalized_ads": [False] * len(opted_out)}))


def campaign(cid: str, **over) -> dict:
    doc = {"id": cid, "name": cid, "pacing": "asap", "holdout": 0.0,
           "flights": [{"start": "2026-01-01T00:00:00+08:00",
                        "end": "2027-12-31T00:00:00+08:00"}],
           "budget": {"total": 1000.0}, "bid": {"type": "cpm", "amount": 80.0},
           "targeting": {"placements": ["phone_splash"]},
           "frequency_cap": {"impressions": 100, "per_hours": 24},
           "creatives": [{"id": "splash", "format": "image", "w": 1080, "h": 1920,
                          "url": "https://cdn.example/s.jpg",
                          "landing": "https://acme.example/offer?src=splash"}]}
    doc.update(over)
    return doc


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
