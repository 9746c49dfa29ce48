"""Live scenes: the engine fed by ingest, as events arrive, for delivery to ask.

:class:`LiveScenes` holds one engine, built from what ``identity build``, ``tags build``
and ``scenes run`` left in the data directory (people, their places and usual hours, home
cities). The ingest path hands it every newly stored event (duplicates are not fed twice);
the scene events it emits go to the event log like the batch ones; :meth:`scenes_of`
answers from memory.

One process holds one engine: with several server processes, each must see all of a
person's events (partition ingest by person) until the online state moves to Redis.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pyarrow.parquet as pq

from allscene.moments import replay as rp
from allscene.moments.catalog import load_catalog
from allscene.moments.engine import Engine
from allscene.moments.resolve import Resolver

NEEDED = ("identity_devices", "identity_people", "place_keys", "work_end", "tag_table")


class LiveScenes:
    """An engine fed one event at a time; thread-safe."""

    def __init__(self, engine: Engine, log):
        self.engine, self.log = engine, log
        self._lock = threading.Lock()

    @classmethod
    def from_data(cls, data_dir: Path, reference_dir: Path, log) -> LiveScenes:
        """Build from ``DATA/derived``; ``FileNotFoundError`` names what is missing."""
        from allscene.profiles.build import read_reference

        derived = data_dir / "derived"
        missing = [n for n in NEEDED if not (derived / f"{n}.parquet").exists()]
        if missing:
            raise FileNotFoundError(
                f"live scenes need {', '.join(missing)} in {derived}: run 'allscene identity "
                "build', 'allscene tags build' and 'allscene scenes run' first")
        t = {n: pq.read_table(derived / f"{n}.parquet") for n in NEEDED}
        ref = read_reference(reference_dir)
        resolver = Resolver(t["identity_devices"], t["identity_people"], t["place_keys"],
                            ref.cell_towers, ref.geoip, ref.regions, work_end=t["work_end"])
        days = rp.local_days(log)
        weather = rp.context_from(log, days[-1] + dt.timedelta(days=1)) if days else None
        engine = Engine(load_catalog(), resolver, home_city=rp.home_cities(t["tag_table"]),
                        weather=weather)
        return cls(engine, log)

    def feed_many(self, events: list[dict]) -> int:
        """Feed events (dicts as in the event contract); write the scene events they
        released; returns how many scene events were written."""
        with self._lock:
            for e in events:
                self.engine.feed_one(e)
            rows, self.engine.out = self.engine.out, []
        if not rows:
            return 0
        return self.log.append(rp.scene_event_table(self.engine, rows)).accepted

    def scene_ids(self, person_id: str, at: dt.datetime) -> frozenset[str]:
        """The ids of the scenes ``person_id`` is in at ``at`` (what delivery asks)."""
        us = int(at.timestamp()) * 1_000_000 + at.microsecond
        with self._lock:
            return frozenset(self.engine.scenes_of(person_id, us))

    def scenes_of(self, person_id: str, at: dt.datetime | None = None) -> list[dict]:
        """The scenes ``person_id`` is in at ``at`` (default now), with their names."""
        t = at or dt.datetime.now(dt.UTC)
        us = int(t.timestamp()) * 1_000_000 + t.microsecond
        with self._lock:
            ids = self.engine.scenes_of(person_id, us)
        cat = self.engine.catalog
        return [{"id": s.id, "family": s.family, "name": {"zh": s.name_zh, "en": s.name_en}}
                for s in (cat.by_id(i) for i in sorted(ids))]
