"""The scene engine: events in time order in, scene enter and exit events out.

Per person it keeps a small, bounded state: when each signal that ``seen()`` reads last
matched, a short window of values for the aggregates (pruned to the longest window a
condition uses, at most :data:`~allscene.moments.kernel.RING` entries), the current place,
network and city, and the active scenes with the time each holds until.

At each event of a person the engine (1) ends the scenes whose hold ran out, at the moment it
ran out, (2) records the event, (3) evaluates the scenes the event can change: those that use
a signal it matched, and, when the local hour, place or city changed (or a scene ended), those
that read time, place, weather or other scenes. A scene is entered when ``when`` holds; it
holds for ``lasts`` after the last moment ``when`` held, and ends early when ``until`` holds
at a later event.

The step runs compiled (:mod:`allscene.moments.kernel`, Numba) over arrays of state, one
row per person; this class prepares its input (people, places and signals of a batch,
columnar) and keeps its output. The same step serves a stored day (:meth:`Engine.run_many`,
in ``ts, event_id`` order) and live ingest (:meth:`Engine.feed_one`, which holds events for a short
lateness window and releases them in the same order), so both give the same scene events.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allscene.moments.catalog import Catalog
from allscene.moments.context import HOUR_US, LOCAL_US, Calendar, WeatherContext, local_hour
from allscene.moments.kernel import NEVER_EXP, RING
from allscene.moments.names import F_AWAY, F_HOME, F_MOVED, F_NEXT, F_PLACE, F_WEND, N_FIELDS
from allscene.moments.program import program_of
from allscene.moments.resolve import Resolver
from allscene.moments.signals import match_all

ENTER, EXIT = "scene_enter", "scene_exit"
KINDS = (ENTER, EXIT)  # by the kernel's codes 0 and 1
NEVER = -(1 << 62)
_OUT = 1 << 16


class Engine:
    """Runs a catalog over events; ``out`` collects ``(ts, person, scene, kind, trigger)``.

    Parameters
    ----------
    catalog
        A compiled :class:`~allscene.moments.catalog.Catalog`.
    resolver
        Device to people, place class and city.
    home_city
        Person id to home city code (the ``city`` tag), for ``away`` and default weather.
    lateness_us
        How long :meth:`feed_one` holds a live event for others that may arrive late.
    """

    def __init__(self, catalog: Catalog, resolver: Resolver, *,
                 home_city: dict[str, str] | None = None, calendar: Calendar | None = None,
                 weather: WeatherContext | None = None, lateness_us: int = 60_000_000):
        self.catalog, self.resolver = catalog, resolver
        self.calendar = calendar or Calendar.load()
        self.weather = weather or WeatherContext()
        self.lateness = lateness_us
        self.program = program_of(catalog)
        self.out: list[tuple[int, int, int, str, str | None]] = []
        n_people, n_scenes = len(resolver.people), len(catalog.scenes)
        homes = home_city or {}
        self.S = np.full((n_people, N_FIELDS), -1, np.int64)
        self.S[:, F_PLACE] = self.code("unknown")
        self.S[:, [F_MOVED, F_AWAY]] = 0
        self.S[:, F_NEXT] = NEVER_EXP
        for p, person in enumerate(resolver.people):
            if homes.get(person):
                self.S[p, F_HOME] = self.code(homes[person])
        for p, h in resolver.work_end.items():
            self.S[p, F_WEND] = h
        self.last = np.full((n_people, max(self.program.n_seen, 1)), -1, np.int64)
        self.act = np.full((n_people, n_scenes), -1, np.int64)
        self.slot = np.full((n_people, max(self.program.n_series, 1)), -1, np.int64)
        cap = max(1024, n_people)
        self.rt = np.zeros((cap, RING), np.int64)
        self.rv = np.zeros((cap, RING), np.float64)
        self.rhead = np.zeros(cap, np.int64)
        self.rlen = np.zeros(cap, np.int64)
        self.ctr = np.zeros(2, np.int64)  # pool rows used, output rows used
        self._o = (np.zeros(_OUT, np.int64), np.zeros(_OUT, np.int64), np.zeros(_OUT, np.int64),
                   np.zeros(_OUT, np.int64), np.zeros(_OUT, np.int64))
        self._cal: dict[int, tuple] = {}
        self._buffer: list = []
        self._seq = itertools.count()
        self._high = NEVER

    def code(self, value: str | None) -> int:
        """The integer code of a text value in the state (-1 for unknown)."""
        if value is None:
            return -1
        return self.catalog.strings.setdefault(value, len(self.catalog.strings))

    # --- batch -------------------------------------------------------------------------------

    def run_many(self, table: pa.Table) -> int:
        """Process an event table (any order: events go in ``ts, event_id`` order); returns
        the number of event rows processed (an event of a household counts once per
        member)."""
        if not table.num_rows:
            return 0
        self.weather.add_many(table)
        res = self.resolver.resolve_many(table)
        if not len(res.row):
            return 0
        cat = self.catalog
        M = match_all(cat.signals, table)
        vals = np.full((table.num_rows, max(len(cat.series), 1)), np.nan)
        for sid, (_, fname) in enumerate(cat.series):
            if fname is not None:
                vals[:, sid] = self._values(table[fname], sid)
        ts = table["ts"].cast(pa.int64()).to_numpy()
        # Time order without moving the table: rank each row, sort the resolved rows by it
        # (stable: a household's members keep their order).
        order = pc.sort_indices(table, [("ts", "ascending"), ("event_id", "ascending")])
        rank = np.empty(table.num_rows, np.int64)
        rank[order.to_numpy()] = np.arange(table.num_rows)
        o = np.argsort(rank[res.row], kind="stable")
        row = res.row[o]
        self._run(res.person[o], ts[row], row, self._codes(res.place)[o],
                  self._codes(res.city)[o], self._codes(res.network)[o], M, vals,
                  table["event_id"])
        return len(row)

    def _codes(self, values) -> np.ndarray:
        """Codes of text values (a list or an Arrow array; -1 for None)."""
        arr = values if isinstance(values, pa.Array) else pa.array(values, pa.string())
        enc = arr.dictionary_encode()
        lut = np.array([self.code(v) for v in enc.dictionary.to_pylist()] + [-1], np.int64)
        idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        return lut[idx]

    def _values(self, col: pa.ChunkedArray, sid: int) -> np.ndarray:
        if sid in self.program.text_series:
            return np.array([np.nan if v is None else float(self.code(v))
                             for v in col.to_pylist()], np.float64)
        return col.cast(pa.float64()).to_numpy(zero_copy_only=False)

    def _run(self, person, t, row, place, city, net, M, vals, ids: list) -> None:
        """The kernel over resolved rows (``row`` indexes ``M``, ``vals`` and ``ids``)."""
        if not len(t):
            return
        rr, cc = np.nonzero(M)
        sp_ptr = np.zeros(M.shape[0] + 1, np.int64)
        np.cumsum(np.bincount(rr, minlength=M.shape[0]), out=sp_ptr[1:])
        h0 = local_hour(int(t.min()))
        h1 = local_hour(int(t.max()))
        cal = self._calendar(h0, h1)
        wtab = self._weather(h0, h1)
        args = (np.ascontiguousarray(person, np.int64), np.ascontiguousarray(t, np.int64),
                np.ascontiguousarray(row, np.int64), place, city, net, sp_ptr,
                cc.astype(np.int64), M, vals, h0, cal, wtab)
        run = self.program.module.run
        i, n = 0, len(t)
        while i < n:
            i = run(i, n, *args, self.S, self.last, self.act, self.slot, self.rt, self.rv,
                    self.rhead, self.rlen, self.ctr, *self._o, *self.program.wiring)
            self._drain(ids)
            if self.ctr[0] + self.slot.shape[1] > self.rt.shape[0]:
                self._grow()

    def _drain(self, ids) -> None:
        """Move the kernel's output to ``out``; ``ids`` (event ids by row) name triggers."""
        m = int(self.ctr[1])
        if not m:
            return
        t, p, k, kind, trig = (a[:m] for a in self._o)
        if ids is None:
            names: list = [None] * m
        else:
            names = pc.take(ids, pa.array(trig, mask=trig < 0)).to_pylist()
        self.out.extend(zip(t.tolist(), p.tolist(), k.tolist(),
                            np.array(KINDS, object)[kind].tolist(), names, strict=True))
        self.ctr[1] = 0

    def _grow(self) -> None:
        cap = 2 * self.rt.shape[0]
        for name in ("rt", "rv", "rhead", "rlen"):
            old = getattr(self, name)
            new = np.zeros((cap, *old.shape[1:]), old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _calendar(self, h0: int, h1: int) -> np.ndarray:
        rows = []
        for h in range(h0, h1 + 1):
            c = self._cal.get(h)
            if c is None:
                x = self.calendar.at(h * HOUR_US - LOCAL_US)
                c = self._cal[h] = (x[0], x[1], x[2], x[3], self.code(x[4]), int(x[5]),
                                    int(x[6]))
            rows.append(c)
        return np.array(rows, np.int64)

    def _weather(self, h0: int, h1: int) -> np.ndarray:
        """``[city code, hour - h0, 6]``: the weather tuple, NaN where unknown."""
        rows = self.weather.hours(h0, h1)
        for city, _, x in rows:
            self.code(city)
            if x[1] is not None:
                self.code(x[1])
        out = np.full((len(self.catalog.strings), h1 - h0 + 1, 6), np.nan)
        for city, h, x in rows:
            out[self.catalog.strings[city], h - h0] = [
                np.nan if v is None else (float(self.catalog.strings[v]) if j == 1 else v)
                for j, v in enumerate(x)]
        return out

    # --- live --------------------------------------------------------------------------------

    def feed_one(self, event: dict) -> None:
        """Take one live event (a dict as in the event contract, ``ts`` as UTC microseconds or
        an aware datetime); events are released in ``ts, event_id`` order once they are older
        than the newest seen minus the lateness."""
        self.feed_many([event])

    def feed_many(self, events: list[dict]) -> None:
        """:meth:`feed_one` for each event, released together."""
        for event in events:
            t = _micros(event["ts"])
            heapq.heappush(self._buffer, (t, event["event_id"], next(self._seq), event))
            self._high = max(self._high, t)
        self._release(self._high - self.lateness)

    def _release(self, upto: int) -> None:
        buf = self._buffer
        done = []
        while buf and buf[0][0] <= upto:
            done.append(heapq.heappop(buf))
        if not done:
            return
        cat = self.catalog
        sigs = cat.signals
        M = np.zeros((len(done), len(sigs)), np.bool_)
        vals = np.full((len(done), max(len(cat.series), 1)), np.nan)
        rows: list[tuple[int, int, int, int, int, int]] = []
        ids = []
        for r, (t, eid, _, e) in enumerate(done):
            ids.append(eid)
            if e.get("kind") == "weather":
                self.weather.add_one(e["city_code"], t, temp_c=e["temp_c"],
                                     condition=e["condition"], aqi=e.get("aqi"),
                                     humidity=e.get("humidity"))
                continue
            for s in sigs:
                if s.match_one(e):
                    M[r, s.id] = True
            for sid, (sig, fname) in enumerate(cat.series):
                v = e.get(fname) if fname is not None and M[r, sig] else None
                if v is not None:
                    vals[r, sid] = float(self.code(v)) if sid in self.program.text_series \
                        else float(v)
            for p, place, city, net in self.resolver.resolve_one(e):
                rows.append((p, t, r, self.code(place), self.code(city), self.code(net)))
        if rows:
            cols = np.array(rows, np.int64).T
            self._run(cols[0], cols[1], cols[2], cols[3].copy(), cols[4].copy(),
                      cols[5].copy(), M, vals, pa.array(ids, pa.string()))

    def flush(self, until: int | None = None) -> None:
        """Release every held live event, then end the scenes whose hold ran out by ``until``."""
        self._release(1 << 62)
        if until is not None:
            p = 0
            while p < self.S.shape[0]:
                p = self.program.module.flush(until, self.S, self.act, self.ctr, *self._o)
                self._drain(None)

    # --- queries -----------------------------------------------------------------------------

    def scenes_of(self, person_id: str, t: int) -> list[str]:
        """Scenes person ``person_id`` is in at ``t`` (not before the last event processed)."""
        p = self.resolver.index.get(person_id)
        if p is None:
            return []
        scenes = self.catalog.scenes
        return [scenes[k].id for k in np.flatnonzero(self.act[p] >= t).tolist()]

    def window_sizes(self, person_id: str) -> list[int]:
        """How many values the person's aggregate windows hold (bounded by the ring)."""
        p = self.resolver.index[person_id]
        return [int(self.rlen[q]) for q in self.slot[p].tolist() if q >= 0]

    def events(self) -> pa.Table:
        """The scene events so far, in time order, as rows for the event log."""
        rows = sorted(self.out, key=lambda r: (r[0], r[1], r[2]))  # stable: engine order
        people, scenes = self.resolver.people, self.catalog.scenes
        return pa.table({
            "ts": pa.array([r[0] for r in rows], pa.timestamp("us", tz="UTC")),
            "kind": pa.array([r[3] for r in rows], pa.string()),
            "account_id": pa.array([people[r[1]] for r in rows], pa.string()),
            "scene": pa.array([scenes[r[2]].id for r in rows], pa.string()),
            "trigger_event_id": pa.array([r[4] for r in rows], pa.string()),
        })


def _micros(ts) -> int:
    if isinstance(ts, int):
        return ts
    return int(ts.timestamp()) * 1_000_000 + ts.microsecond
