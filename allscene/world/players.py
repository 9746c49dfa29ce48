"""The world's people playing the activities they meet: the engagement half of the simulated
days.

:class:`~allscene.world.campaign_days.CampaignDays` hands every ad opportunity at an entry
point of an activity to :meth:`Players.at_entry`: the engagement engine shows the live
activities the person may join there (:meth:`~allscene.engagement.service.Engagement.show`,
which logs a ``show``), and the person's hidden model (:mod:`allscene.world.respond`) says
whether they sit down to play: a first time with :meth:`~.Responders.takes_part` (the
activity's declared ``topics``, tiring of it as of an ad), a later day with
:meth:`~.Responders.comes_back`; at most one sitting per activity a day. At a sitting the
person does what the activity offers, through the engine, which decides what they get:

* **packaging codes**: every purchase (in the world's event log) of a product the case prints
  the activity's codes on (``packaging`` in the case file) puts the next printed code in the
  buyer's hands. The buyer enters it about an hour later if they take part (at no placement),
  else keeps it and enters it at their next sitting. One code in ``1 / MISTYPE_EVERY`` is
  first typed with one wrong character, which the check character catches, and typed again;
* **points**: :meth:`~.Responders.rounds` rounds, each one of the game's actions;
* **lottery**: one draw when it is free; when draws cost points, as many as the points the
  engine reports allow, up to the lottery's daily limit per person;
* **envelopes**: open one red envelope; **coupons**: claim each coupon on offer;
* **badges**: report the runs the person's band or phone recorded since the activity began:
  each hour the world has them ``running`` is one run of their usual minutes at their usual
  pace, give or take 5% (their best runs light the most badges). People who do not run light
  nothing; the engine records nothing for them;
* contests are not played.

A sitting counts as taking part when the engine accepted at least one claim; a person's
first one may make them a lead of the advertiser (:meth:`~.Responders.leads_after_engaging`),
which the advertiser posts as an ``ad_conversion`` from the person's phone an hour later.
Refusals (limits, sold out, too few points) are the engine's: it logs why.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from allscene.world.respond import Responders

MISTYPE_EVERY = 30
SCAN_DELAY_MIN = (20, 180)
"""Minutes between buying a coded product and entering its code (home, opened, scanned)."""
PACE_SD = 0.05
LOCAL = dt.timedelta(hours=8)


class Players:
    """Plays the world's people against the engagement engine (see the module docstring).

    Parameters
    ----------
    world_dir
        The generated world.
    engagement
        An :class:`~allscene.engagement.service.Engagement`.
    directory
        The ad server's :class:`~allscene.delivery.viewers.Directory` (who is behind a
        device, as the engine needs it: person, opt-out, audiences, scenes).
    people
        The world's hidden response model.
    emit
        Stores the events advertisers report themselves (leads from activities).
    seed
        The replay's seed.
    """

    def __init__(self, world_dir: Path, engagement, directory, people: Responders, *, emit,
                 seed: int):
        self.world, self.engagement, self.directory = Path(world_dir), engagement, directory
        self.people, self.emit = people, emit
        self.rng = np.random.default_rng([seed, 5353])
        dev = pq.read_table(self.world / "truth" / "devices.parquet",
                            columns=["device_id", "device_type", "person_id"])
        self.person_of = dict(zip(dev.column("device_id").to_pylist(),
                                  dev.column("person_id").to_pylist(), strict=True))
        self.phone_of = {p: d for d, t, p in zip(
            *(dev.column(c).to_pylist() for c in ("device_id", "device_type", "person_id")),
            strict=True) if t == "phone"}
        self.shown: Counter[tuple[str, str]] = Counter()   # (person, activity) shows
        self.sat: dict[tuple[str, str], dt.date] = {}      # (person, activity) -> day sat
        self.joined: set[tuple[str, str]] = set()          # took part at least once
        self.shelves: dict[str, list[tuple[str, list[str]]]] = defaultdict(list)
        self.held: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._scans: list[tuple[dt.datetime, str, str, str]] = []
        self._runs: dict[str, list[tuple[dt.datetime, float, float]]] | None = None
        self._seq = 0

    # --- set-up ------------------------------------------------------------------------------

    def stock(self, activity: str, item: str, codes: list[str]) -> None:
        """Print ``codes`` of ``activity`` on the packaging of ``item`` (one per purchase)."""
        self.shelves[item].append((activity, list(reversed(codes))))

    def entry_points(self) -> set[str]:
        """The placements where some activity shows."""
        return {p for _, doc in self.engagement.store.activities_of()
                for p in doc.get("entry_points", ())}

    # --- the day -----------------------------------------------------------------------------

    def purchases(self, day: dt.date, events: ds.Dataset, counts) -> None:
        """Hand out the codes on the day's purchases of stocked products; the buyers who
        take part enter them later that day (:meth:`until` plays it in time order)."""
        if not self.shelves:
            return
        t0 = dt.datetime.combine(day, dt.time(), dt.UTC) - LOCAL
        f = (pc.field("kind") == "purchase") & (pc.field("ts") >= t0) & \
            (pc.field("ts") < t0 + dt.timedelta(days=1)) & \
            pc.field("item").isin(sorted(self.shelves))
        ev = events.to_table(columns=["ts", "device_id", "item"], filter=f).sort_by("ts")
        for t, device, item in zip(*(ev.column(c).to_pylist() for c in
                                     ("ts", "device_id", "item")), strict=True):
            person = self.person_of.get(device)
            if person is None or person not in self.people:
                continue
            for activity, left in self.shelves[item]:
                doc = self.engagement.activity(activity)
                if not left or not doc.live(t):
                    continue
                self.held[(person, activity)].append(left.pop())
                counts.codes_handed += 1
                if self.people.takes_part(person, None, tuple(doc.topics), temp_c=None):
                    at = t + dt.timedelta(minutes=float(self.rng.uniform(*SCAN_DELAY_MIN)))
                    self._scans.append((at, person, self.phone_of.get(person, device),
                                        activity))
        self._scans.sort()

    def until(self, t: dt.datetime, counts) -> None:
        """Play the code scans due by ``t``."""
        while self._scans and self._scans[0][0] <= t:
            at, person, device, activity = self._scans.pop(0)
            doc = self.engagement.activity(activity).public()
            self._sitting(doc, person, self._who(device, "phone", at), at, counts)

    def at_entry(self, placement: str, person: str, device: str, device_type: str,
                 t: dt.datetime, temp: float | None, counts) -> None:
        """An opportunity at an entry point: the live activities show, and the person may
        sit down to play one."""
        who = self._who(device, device_type, t)
        day = (t + LOCAL).date()
        for a in self.engagement.show(placement, who, t):
            counts.shown += 1
            key = (person, a["id"])
            self.shown[key] += 1
            if self.sat.get(key) == day:
                continue
            if key in self.joined:  # a player decides once a day whether to come back
                self.sat[key] = day
                if not self.people.comes_back():
                    continue
            elif not self.people.takes_part(person, placement, tuple(a.get("topics") or ()),
                                            temp_c=temp, seen=self.shown[key] - 1):
                continue
            self._sitting(a, person, who, t, counts)

    # --- one sitting -------------------------------------------------------------------------

    def _sitting(self, a: dict[str, Any], person: str, who, t: dt.datetime, counts) -> None:
        from allscene.engagement.service import EngagementError

        key = (person, a["id"])
        self.sat[key] = (t + LOCAL).date()
        accepted = 0
        for step in self._steps(a, person, who):
            try:
                out = step(t)
            except EngagementError:
                continue  # refused (limits, sold out, too few points): the engine logged why
            accepted += bool(out)
            t += dt.timedelta(seconds=float(self.rng.uniform(5, 60)))
        if not accepted:
            return
        counts.took_part += 1
        if key in self.joined:
            return
        self.joined.add(key)
        if self.people.leads_after_engaging(person):
            self.emit([{"event_id": self._rid(f"lead-{a['id']}"),
                        "ts": (t + dt.timedelta(hours=1)).isoformat(), "kind": "ad_conversion",
                        "device_id": self.phone_of.get(person, who.device_id),
                        "device_type": "phone", "advertiser_id": a["advertiser"],
                        "conversion_type": "lead"}])
            counts.conversions["lead (activity)"] += 1

    def _steps(self, a: dict[str, Any], person: str, who):
        """What the person does at a sitting, as callables of the time (see the module
        docstring); each returns a true value when the engine accepted something."""
        e, aid = self.engagement, a["id"]
        balance = [0]

        def gained(out: dict[str, Any]) -> dict[str, Any]:
            balance[0] = out.get("points_balance", balance[0])
            return out

        for code in self.held.pop((person, aid), []):
            if self.rng.integers(MISTYPE_EVERY) == 0:
                typo = _mistype(code, self.rng)
                yield lambda t, c=typo: e.code(aid, who, c, self._rid(aid), t)
            yield lambda t, c=code: gained(e.code(aid, who, c, self._rid(aid), t))
        actions = sorted((a.get("points") or {}).get("actions") or {})
        for _ in range(self.people.rounds(person) if actions else 0):
            act = actions[int(self.rng.integers(len(actions)))]
            yield lambda t, act=act: gained(e.play(aid, who, act, self._rid(aid), t))
        if a.get("lottery"):
            cost = a["lottery"].get("cost_points", 0)
            most = (a["lottery"].get("limits") or {}).get("per_person_per_day") or 1
            for _ in range(most if cost else 1):
                yield lambda t: (balance[0] >= cost and self._draw(aid, who, t, cost, balance))
        if a.get("envelopes"):
            yield lambda t: e.envelope(aid, who, self._rid(aid), t)
        for prize in (a.get("coupons") or {}).get("prizes", ()):
            yield lambda t, prize=prize: e.coupon(aid, who, prize, self._rid(aid), t)
        if a.get("badges"):
            yield lambda t: e.workouts(aid, who, self._runs_of(person, a, t), t)["lit"]

    def _draw(self, aid: str, who, t: dt.datetime, cost: int, balance: list[int]):
        out = self.engagement.draw(aid, who, self._rid(aid), t)
        balance[0] -= cost
        return out

    # --- the world's runs --------------------------------------------------------------------

    def _runs_of(self, person: str, a: dict[str, Any], now: dt.datetime) -> list:
        """The person's runs that ended since the activity began and before ``now``."""
        from allscene.engagement.badges import Workout

        if self._runs is None:
            self._runs = self._load_runs()
        start = dt.datetime.fromisoformat(a["start"])
        return [Workout(person, m, s, end) for end, m, s in self._runs.get(person, ())
                if start <= end - dt.timedelta(seconds=s) and end <= now]

    def _load_runs(self) -> dict[str, list[tuple[dt.datetime, float, float]]]:
        """``person -> [(end, metres, seconds)]`` of every run in the world."""
        scenes = ds.dataset(self.world / "truth" / "scenes", format="parquet").to_table(
            columns=["person_id", "ts"], filter=pc.field("scene") == "running"
        ).sort_by([("person_id", "ascending"), ("ts", "ascending")])
        people = pq.read_table(self.world / "truth" / "people.parquet",
                               columns=["person_id", "run_pace_min_per_km", "run_minutes"])
        pace = dict(zip(people.column("person_id").to_pylist(),
                        people.column("run_pace_min_per_km").to_pylist(), strict=True))
        minutes = dict(zip(people.column("person_id").to_pylist(),
                           people.column("run_minutes").to_pylist(), strict=True))
        rng = np.random.default_rng([int(self.rng.integers(2**31)), 77])
        out: dict[str, list[tuple[dt.datetime, float, float]]] = defaultdict(list)
        for person, t in zip(scenes.column("person_id").to_pylist(),
                             scenes.column("ts").to_pylist(), strict=True):
            p, m = pace.get(person), minutes.get(person)
            if not p or not m or p != p:  # no pace: not a runner
                continue
            seconds = float(m) * 60
            metres = seconds / (float(p) * 60 * float(rng.normal(1, PACE_SD))) * 1000
            out[person].append((t + dt.timedelta(seconds=seconds), round(metres), seconds))
        return dict(out)

    # --- helpers -----------------------------------------------------------------------------

    def _who(self, device: str, device_type: str, t: dt.datetime):
        from allscene.engagement.service import Who

        v = self.directory.viewer(device, t)
        return Who(person=v.person_id or f"device-{device}", device_id=device,
                   device_type=device_type, known=v.person_id is not None,
                   opted_out=v.opted_out, audiences=v.audiences, scenes=frozenset(v.scenes))

    def _rid(self, prefix: str) -> str:
        self._seq += 1
        return f"sim-{prefix}-{self._seq}"


def _mistype(code: str, rng: np.random.Generator) -> str:
    """``code`` with one character of its body replaced by another of the alphabet."""
    from allscene.engagement.codes import ALPHABET, BODY_LENGTH

    i = int(rng.integers(BODY_LENGTH))
    wrong = ALPHABET[(ALPHABET.index(code[i]) + 1 + int(rng.integers(len(ALPHABET) - 1)))
                     % len(ALPHABET)]
    return code[:i] + wrong + code[i + 1:]
