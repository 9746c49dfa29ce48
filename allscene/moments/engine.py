"""The scene engine: events in time order in, scene enter and exit events out.

Per person it keeps a small, bounded state: when each signal last matched, a short window of
values for the aggregates (pruned to the longest window a condition uses, at most
:data:`MAX_SERIES` entries), the current place, network and city, and the active scenes with
the time each holds until.

At each event of a person the engine (1) ends the scenes whose hold ran out, at the moment it
ran out, (2) records the event, (3) evaluates the scenes the event can change: those that use
a signal it matched, and, when the local hour, place or city changed (or a scene ended), those
that read time, place, weather or other scenes. A scene is entered when ``when`` holds; it
holds for ``lasts`` after the last moment ``when`` held, and ends early when ``until`` holds
at a later event.

The same :meth:`Engine.step` serves a stored day (:meth:`Engine.run_many`, a batch sorted by
``ts, event_id``) and live ingest (:meth:`Engine.feed_one`, which holds events for a short
lateness window and releases them in the same order), so both give the same scene events.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections import deque

import numpy as np
import pyarrow as pa

from allscene.moments.catalog import Catalog
from allscene.moments.compile import CITY, NETWORK, PLACE, TIME
from allscene.moments.context import HOUR_US, LOCAL_US, Calendar, WeatherContext
from allscene.moments.resolve import Resolver
from allscene.moments.signals import tri_state
from allscene.moments.state import (
    MAX_SERIES,
    NEVER_EXP,
    PersonState,
    _count,
    _last,
    _max,
    _min,
    _sum,
)

NEVER = -(1 << 62)
WEATHER_VARS = ("weather.temp_c", "weather.condition", "weather.aqi", "weather.humidity",
                "weather.temp_change_24h", "weather.anomaly")
ENTER, EXIT = "scene_enter", "scene_exit"


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
        self.home_city = [(home_city or {}).get(p) for p in resolver.people]
        self.states: dict[int, PersonState] = {}
        self.out: list[tuple[int, int, int, str, str | None]] = []
        self._compile()
        self._buffer: list = []
        self._seq = itertools.count()
        self._high = NEVER

    # --- compiled program --------------------------------------------------------------------

    def _compile(self) -> None:
        cat = self.catalog
        n = len(cat.scenes)
        src = ["def _make():"]
        for k in range(n):
            src.append(f"    def w{k}(s, t, m, T, W, L, V, A): return {cat.when[k].code}")
            if cat.until[k] is not None:
                src.append(f"    def u{k}(s, t, m, T, W, L, V, A): return {cat.until[k].code}")
        src.append("    return [" + ", ".join(f"w{k}" for k in range(n)) + "], ["
                   + ", ".join(f"u{k}" if cat.until[k] is not None else "None"
                               for k in range(n)) + "]")
        ns = {"_count": _count, "_sum": _sum, "_max": _max, "_min": _min, "_last": _last}
        exec(compile("\n".join(src), "<scene catalog>", "exec"), ns)  # noqa: S102 - our own code
        self._when, self._until = ns["_make"]()
        self._lasts = [s.lasts_us for s in cat.scenes]
        # What can change a scene: a signal it reads (for a scene whose `when` needs the
        # event to match, only those signals can enter it); a change of hour, place, network
        # or city it reads; a scene it reads through in() changing; the clock (minute).
        self._by_sig: dict = {}  # signal -> [slot] -> scenes
        self._watch: dict[int, list[int]] = {}
        # [changed bits][slot]: the scenes to check, slot = local hour + 24 * rest day.
        ctx_free: list[list[list[int]]] = [[[] for _ in range(48)] for _ in range(16)]
        clock: list[int] = []
        self._users: list[tuple[int, ...]] = []
        idx = {s.id: s.index for s in cat.scenes}
        users: list[set[int]] = [set() for _ in range(n)]
        for k in range(n):
            w, u = cat.when[k], cat.until[k]
            for c in (w, u):
                for d in (c.scenes if c else ()):
                    users[idx[d]].add(k)
            # An inactive scene is tried for entry on the signals that can open its gate (all
            # it reads if it has none); an active one is re-checked on every signal it reads.
            for sig in w.signals | (u.signals if u else set()):
                self._watch.setdefault(sig, []).append(k)
                if w.gates is None or sig in w.gates:
                    rows = self._by_sig.setdefault(sig, [[] for _ in range(48)])
                    for slot in range(48):
                        if w.slots[slot]:
                            rows[slot].append(k)
            bits = w.context | (u.context if u else 0)
            # A gated scene (its `when` needs a matching event) is entered only at such an
            # event: a change of context matters only while it is active.
            if w.gates is None:
                for mask in range(16):
                    if mask & bits:
                        for slot in range(48):
                            if w.slots[slot]:
                                ctx_free[mask][slot].append(k)
            if w.clock or (u and u.clock):
                clock.append(k)
        self._users = [tuple(sorted(x)) for x in users]
        self._by_sig = {sig: [tuple(r) for r in rows] for sig, rows in self._by_sig.items()}
        self._ctx_free = [[tuple(x) for x in row] for row in ctx_free]
        self._needs = [w.needs for w in cat.when]
        self._in_need = [tuple(idx[x] for x in w.in_scenes) for w in cat.when]
        self._bits = [w.context | (u.context if u else 0)
                      for w, u in zip(cat.when, cat.until, strict=True)]
        self._free = [w.gates is None for w in cat.when]
        self._cands: dict[tuple, tuple[int, ...]] = {}
        self._hours: dict[int, tuple] = {}
        self._wx_memo: dict[tuple, frozenset[int]] = {}
        self._clock = tuple(clock)
        self._sig_series: dict[int, list[tuple[int, str | None]]] = {}
        for sid, (sig, fname) in enumerate(cat.series):
            self._sig_series.setdefault(sig, []).append((sid, fname))
        self._window = dict(cat.windows)

    # --- the step ----------------------------------------------------------------------------

    def state(self, p: int) -> PersonState:
        s = self.states.get(p)
        if s is None:
            s = self.states[p] = PersonState(self.home_city[p])
            s.work_end = self.resolver.work_end.get(p)
        return s

    def step(self, p: int, t: int, sigs: tuple, vals: tuple, place, city, network,
             trigger: str | None) -> None:
        """Process one event for person ``p`` (index into ``resolver.people``) at ``t``."""
        s = self.states.get(p) or self.state(p)
        A = s.active
        todo: list[int] = []
        if t > s.next_exp:
            for k in self._expire(p, s, t):
                todo.append(k)  # its hold ran out: it may still (again) hold now
                todo.extend(self._users[k])
        L = s.last
        hour = (t + LOCAL_US) // HOUR_US
        T = self._hours.get(hour)
        if T is None:
            T = self._hours[hour] = self.calendar.at(t)
        slot = T[0] + (24 if T[4] == "restday" else 0)
        by_sig, watch = self._by_sig, self._watch
        enter: list[int] = []
        for sig in sigs:
            L[sig] = t
            ks = by_sig.get(sig)
            if ks:
                enter.extend(ks[slot])
            if A:
                ks = watch.get(sig)
                if ks:
                    for k in ks:
                        if k in A:
                            todo.append(k)
        if vals:
            V = s.vals
            for sid, v in vals:
                d = V.get(sid)
                if d is None:
                    d = V[sid] = deque(maxlen=MAX_SERIES)
                d.append((t, v))
                lo = t - self._window[sid]
                while d[0][0] < lo:
                    d.popleft()
        changed = 0
        if hour != s.hour:
            s.hour = hour
            changed = TIME
        s.moved = False
        if place is not None and place != s.place:
            s.place = place
            s.moved = True
            changed |= PLACE
        if network is not None and network != s.network:
            s.network = network
            changed |= NETWORK
        if city is not None and city != s.city:
            s.city = city
            away = s.home_city is not None and city != s.home_city
            if away and not s.away:
                s.trip_day = self.calendar.at(t)[4]
            s.away = away
            changed |= CITY
        W = None
        if changed:
            W = self.weather.get(s.city or s.home_city, t)
            cands = self._cands.get((changed, slot, W))
            if cands is None:
                cands = self._candidates(changed, slot, W)
            enter.extend(cands)
            # Active scenes: re-checked when what they read changed; otherwise a scene that
            # needs no event to hold is still true, and its hold is extended.
            bits, free, lasts = self._bits, self._free, self._lasts
            for k, v in A.items():
                if bits[k] & changed:
                    todo.append(k)
                elif free[k]:
                    v[1] = t + lasts[k]
            if A:
                s.next_exp = min([v[1] for v in A.values()])
        for k in self._clock:
            if k in A or self._in_need[k][0] in A:
                todo.append(k)
        if enter:
            needs, in_need = self._needs, self._in_need
            for k in enter:
                if k in A:
                    continue
                for x in in_need[k]:
                    if x not in A:
                        break
                else:
                    for sig, w in needs[k]:
                        if t - L.get(sig, NEVER) > w:
                            break
                    else:
                        todo.append(k)
        if not todo:
            return
        if W is None:
            W = self.weather.get(s.city or s.home_city, t)
        V = s.vals
        m = sigs
        when, until, lasts, out, users = self._when, self._until, self._lasts, self.out, \
            self._users
        extended = False
        order = sorted(set(todo))
        queued = set(order)
        i = 0
        while i < len(order):
            k = order[i]
            i += 1
            flip = False
            if k in A:
                u = until[k]
                if u is not None and u(s, t, m, T, W, L, V, A):
                    del A[k]
                    out.append((t, p, k, EXIT, trigger))
                    flip = True
                elif when[k](s, t, m, T, W, L, V, A):
                    A[k][1] = t + lasts[k]
                    extended = True
            elif when[k](s, t, m, T, W, L, V, A):
                A[k] = [t, t + lasts[k]]
                out.append((t, p, k, ENTER, trigger))
                flip = True
                if t + lasts[k] < s.next_exp:
                    s.next_exp = t + lasts[k]
            if flip:
                for x in users[k]:  # dependents come later in the order
                    if x not in queued:
                        queued.add(x)
                        bisect.insort(order, x)
        if extended and A:
            s.next_exp = min([v[1] for v in A.values()])

    def _candidates(self, changed: int, slot: int, W: tuple) -> tuple[int, ...]:
        """Scenes a change of context may enter at this hour slot and weather (cached)."""
        cat = self.catalog
        memo = self._wx_memo.get(W)
        if memo is None:
            if len(self._wx_memo) > 50_000:
                self._wx_memo.clear()
            env = dict(zip(WEATHER_VARS, W, strict=True))
            memo = self._wx_memo[W] = frozenset(
                k for k in range(len(cat.scenes))
                if cat.when[k].weather and tri_state(cat.when[k].tree, env) is False)
        out = tuple(k for k in self._ctx_free[changed][slot] if k not in memo)
        if len(self._cands) > 200_000:
            self._cands.clear()
        self._cands[(changed, slot, W)] = out
        return out

    def _expire(self, p: int, s: PersonState, t: int) -> list[int]:
        """End the scenes whose hold ran out before ``t``; returns them. ``next_exp`` is a
        lower bound of the holds (extending a hold leaves it early): recomputed here."""
        A = s.active
        ended = [(v[1], k) for k, v in A.items() if v[1] < t]
        if len(ended) > 1:
            ended.sort()
        for until, k in ended:
            del A[k]
            self.out.append((until, p, k, EXIT, None))
        s.next_exp = min([v[1] for v in A.values()]) if A else NEVER_EXP
        return [k for _, k in ended]

    # --- batch -------------------------------------------------------------------------------

    def run_many(self, table: pa.Table) -> int:
        """Process an event table (any order: it is sorted by ``ts, event_id``); returns the
        number of event rows processed (an event of a household counts once per member)."""
        if not table.num_rows:
            return 0
        table = table.sort_by([("ts", "ascending"), ("event_id", "ascending")])
        self.weather_many(table)
        res = self.resolver.resolve_many(table)
        row = res.row
        if not len(row):
            return 0
        cat = self.catalog
        n = table.num_rows
        sigs_row: list = [()] * n
        vals_row: list = [()] * n
        for sig in cat.signals:
            hit = np.flatnonzero(sig.match_many(table)).tolist()
            one = (sig.id,)
            for i in hit:
                sigs_row[i] = sigs_row[i] + one
            for sid, fname in self._sig_series.get(sig.id, ()):
                col = [None] * len(hit) if fname is None else \
                    table[fname].take(pa.array(hit, pa.int64())).to_pylist()
                for i, v in zip(hit, col, strict=True):
                    vals_row[i] = vals_row[i] + ((sid, v),)
        ts = table["ts"].cast(pa.int64()).to_numpy().tolist()
        ids = table["event_id"].to_pylist()
        step = self.step
        for i, p, place, city, net in zip(row.tolist(), res.person.tolist(), res.place, res.city,
                                          res.network, strict=True):
            step(p, ts[i], sigs_row[i], vals_row[i], place, city, net, ids[i])
        return len(row)

    def weather_many(self, table: pa.Table) -> int:
        return self.weather.add_many(table)

    # --- live --------------------------------------------------------------------------------

    def feed_one(self, event: dict) -> None:
        """Take one live event (a dict as in the event contract, ``ts`` as UTC microseconds or
        an aware datetime); events are released in ``ts, event_id`` order once they are older
        than the newest seen minus the lateness."""
        t = _micros(event["ts"])
        heapq.heappush(self._buffer, (t, event["event_id"], next(self._seq), event))
        self._high = max(self._high, t)
        self._release(self._high - self.lateness)

    def _release(self, upto: int) -> None:
        buf = self._buffer
        while buf and buf[0][0] <= upto:
            t, eid, _, e = heapq.heappop(buf)
            self._one(t, eid, e)

    def _one(self, t: int, eid: str, e: dict) -> None:
        if e.get("kind") == "weather":
            self.weather.add_one(e["city_code"], t, temp_c=e["temp_c"], condition=e["condition"],
                                 aqi=e.get("aqi"), humidity=e.get("humidity"))
            return
        sigs = tuple(s.id for s in self.catalog.signals if s.match_one(e))
        vals = tuple((sid, None if f is None else e.get(f)) for sig in sigs
                     for sid, f in self._sig_series.get(sig, ()))
        for p, place, city, net in self.resolver.resolve_one(e):
            self.step(p, t, sigs, vals, place, city, net, eid)

    def flush(self, until: int | None = None) -> None:
        """Release every held live event, then end the scenes whose hold ran out by ``until``."""
        self._release(1 << 62)
        if until is not None:
            for p, s in self.states.items():
                if s.next_exp < until:
                    self._expire(p, s, until)

    # --- queries -----------------------------------------------------------------------------

    def scenes_of(self, person_id: str, t: int) -> list[str]:
        """Scenes person ``person_id`` is in at ``t`` (not before the last event processed)."""
        p = self.resolver.index.get(person_id)
        s = self.states.get(p) if p is not None else None
        if s is None:
            return []
        scenes = self.catalog.scenes
        return [scenes[k].id for k, v in s.active.items() if v[1] >= t]

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
