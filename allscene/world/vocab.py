"""The world's vocabularies (``data/vocab.json``) as flat Arrow arrays with offsets.

A choice "item k of list g" for many events at once is ``flat[offset[g] + k]``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from allscene.world.geo import load_json
from allscene.world.population import INTENTS, INTERESTS


@dataclass
class Lists:
    """Several string lists flattened: ``flat``, ``offset[g]`` and ``count[g]``."""

    names: tuple[str, ...]
    flat: pa.Array
    offset: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, lists: dict[str, list[str]]) -> Lists:
        names = tuple(lists)
        counts = np.array([len(lists[k]) for k in names])
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        flat = pa.array([x for k in names for x in lists[k]], pa.string())
        return cls(names, flat, offsets, counts)

    def pick(self, group: np.ndarray, u: np.ndarray) -> pa.Array:
        """One item per event: uniform within the event's group (``u`` in [0, 1))."""
        k = np.minimum((u * self.count[group]).astype(np.int64), self.count[group] - 1)
        return self.flat.take(pa.array(self.offset[group] + k))


@dataclass
class Vocab:
    topics: tuple[str, ...]
    queries: Lists
    titles: Lists
    iab: Lists
    content_apps: Lists
    apps: tuple[str, ...]
    app_base: np.ndarray
    app_profile: np.ndarray  # (n_apps, 24)
    app_interest: np.ndarray  # interest index per app, -1 none
    tv_genres: tuple[str, ...]
    tv_channels: Lists
    tv_iab: pa.Array
    intents: tuple[str, ...]
    utterances: Lists
    items: Lists
    item_price: np.ndarray  # flat, aligned with items.flat
    item_categories: tuple[str, ...]
    finance_actions: pa.Array
    social_apps: pa.Array


_BLOCKS = np.digitize(np.arange(24), [6, 9, 12, 14, 18, 21])


@functools.lru_cache(maxsize=1)
def load_vocab() -> Vocab:
    v = load_json("vocab.json")
    topics = v["topics"]
    assert list(topics)[:len(INTERESTS)] == list(INTERESTS), "interest topics first"
    assert list(topics)[len(INTERESTS):len(INTERESTS) + len(INTENTS)] == list(INTENTS)
    prof = {k: x for k, x in v["app_profile"].items() if not k.startswith("_")}
    apps = tuple(prof)
    base = np.array([prof[a][0] for a in apps])
    hourly = np.array([np.asarray(prof[a][1])[_BLOCKS] for a in apps])
    app_int = np.array([INTERESTS.index(prof[a][2]) if prof[a][2] else -1 for a in apps])
    tv = {k: x for k, x in v["tv_genres"].items() if not k.startswith("_")}
    utt = {k: x for k, x in v["utterances"].items() if not k.startswith("_")}
    items = {k: x for k, x in v["purchase_items"].items() if not k.startswith("_")}
    return Vocab(
        topics=tuple(topics),
        queries=Lists.of({k: x["queries"] for k, x in topics.items()}),
        titles=Lists.of({k: x["titles"] for k, x in topics.items()}),
        iab=Lists.of({k: x["iab"] for k, x in topics.items()}),
        content_apps=Lists.of({k: x["apps"] for k, x in topics.items()}),
        apps=apps, app_base=base, app_profile=hourly, app_interest=app_int,
        tv_genres=tuple(tv), tv_channels=Lists.of({k: x[0] for k, x in tv.items()}),
        tv_iab=pa.array([x[1] for x in tv.values()]), intents=tuple(utt),
        utterances=Lists.of(utt),
        items=Lists.of({k: [i[0] for i in x] for k, x in items.items()}),
        item_price=np.array([float(i[1]) for x in items.values() for i in x]),
        item_categories=tuple(items), finance_actions=pa.array(v["finance_actions"]),
        social_apps=pa.array(v["social_apps"]),
    )


def compact_car_queries() -> list[str]:
    """The search keywords of a compact-car purchase intent (used by tests and scoring)."""
    return list(load_json("vocab.json")["topics"]["car_compact"]["queries"])
