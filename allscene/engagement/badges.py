"""Badge challenges (Buick's fitness-app challenge): beating a pace lights an animal badge,
and the more badges one holds the more one wins.

A :class:`Workout` is one run from a band or phone: who (a person, or a device when identity
has not resolved it), the distance in metres, the duration in seconds and when it ended. Its
pace is seconds per kilometre (:func:`pace_s_per_km`). A :class:`Challenge` is data: badges
ordered from easiest to hardest, each with the slowest pace that lights it; the shortest
workout that counts; rewards by number of badges held.

The rules
---------
- **Default ladder** (our defaults, not figures from the case article): tortoise ≤ 10:00/km,
  rabbit ≤ 7:30, deer ≤ 6:00, cheetah ≤ 5:00, wolf ≤ 4:15; a workout counts from 1,000 m;
  1 badge wins ``coupon_10``, 3 win ``test_drive_gift``, 5 win ``grand_draw_entry``.
- **A workout lights every badge it beats**: at pace ``p`` it lights each badge whose max
  pace is ≥ ``p`` (a pace equal to the limit beats it). A 4:10/km run lights wolf and every
  easier badge at once; badges are never lost.
- **Rewards are cumulative thresholds**: holding ``n`` badges wins every reward whose
  threshold is ≤ ``n``, listed by threshold.
- **Rejected, not counted**: impossible workouts (distance or duration not a positive
  finite number, a pace faster than 2:00/km — no human runs that — or a time without a time
  zone). **Ignored, not counted**: real workouts shorter than the minimum distance or
  outside the challenge's window. Both are reported with a reason (:func:`evaluate`).

Pure: no I/O, no store. Paces are compared without division
(``duration_s * 1000 <= max_pace * distance_m``), so a 5 km run in exactly 25:00 beats 5:00.

>>> from datetime import datetime, timezone
>>> t = datetime(2024, 5, 1, 7, 0, tzinfo=timezone.utc)
>>> runs = [Workout("ann", 5000, 1270, t), Workout("bob", 3000, 1050, t)]  # 4:14, 5:50
>>> got = earned(Challenge(), runs)
>>> sorted(got["bob"])
['deer', 'rabbit', 'tortoise']
>>> rewards(Challenge(), got)
{'ann': ['coupon_10', 'test_drive_gift', 'grand_draw_entry'], 'bob': ['coupon_10', 'test_drive_gift']}
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

FASTEST_HUMAN_PACE_S_PER_KM = 120.0
"""2:00/km: a workout faster than this is not a human run (the marathon record is ~2:52)."""

_PACE = re.compile(r"^\s*(\d{1,3}):([0-5]\d)\s*$")


def parse_pace(text: str | float) -> float:
    """A pace as seconds per km, from ``"m:ss"`` or a number of seconds.

    >>> parse_pace("7:30"), parse_pace(255)
    (450.0, 255.0)
    """
    if isinstance(text, str):
        m = _PACE.match(text)
        if not m:
            raise ValueError(f"pace {text!r}: expected m:ss per km, e.g. 7:30")
        return float(int(m[1]) * 60 + int(m[2]))
    return float(text)


def format_pace(s_per_km: float) -> str:
    """``m:ss`` per km, rounded to the second.

    >>> format_pace(255), format_pace(299.6)
    ('4:15', '5:00')
    """
    s = round(s_per_km)
    return f"{s // 60}:{s % 60:02d}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Badge(_Model):
    """A badge and the slowest pace (seconds per km) that lights it; ``"m:ss"`` accepted."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    max_pace_s_per_km: Annotated[float, Field(gt=0, le=3600)]

    @field_validator("max_pace_s_per_km", mode="before")
    @classmethod
    def _pace(cls, v: Any) -> Any:
        return parse_pace(v) if isinstance(v, str) else v


DEFAULT_LADDER = (Badge(name="tortoise", max_pace_s_per_km=600),
                  Badge(name="rabbit", max_pace_s_per_km=450),
                  Badge(name="deer", max_pace_s_per_km=360),
                  Badge(name="cheetah", max_pace_s_per_km=300),
                  Badge(name="wolf", max_pace_s_per_km=255))
DEFAULT_REWARDS = {1: "coupon_10", 3: "test_drive_gift", 5: "grand_draw_entry"}


class Challenge(_Model):
    """A badge challenge as data: badges from easiest to hardest (strictly faster paces),
    the shortest workout that counts, rewards by number of badges held, an optional window.

    >>> c = Challenge(badges=[{"name": "walk", "max_pace_s_per_km": "12:00"},
    ...                       {"name": "run", "max_pace_s_per_km": "6:00"}],
    ...               rewards={2: "both"})
    >>> [b.max_pace_s_per_km for b in c.badges], c.min_distance_m
    ([720.0, 360.0], 1000.0)
    >>> try:
    ...     Challenge(badges=[{"name": "a", "max_pace_s_per_km": 300},
    ...                       {"name": "b", "max_pace_s_per_km": 400}])
    ... except ValueError as exc:  # pydantic's ValidationError
    ...     print(exc.errors()[0]["msg"])
    Value error, badges: 'b' (6:40/km) is not harder than 'a' (5:00/km); list them from easiest to hardest
    """

    badges: tuple[Badge, ...] = Field(default=DEFAULT_LADDER, min_length=1)
    min_distance_m: Annotated[float, Field(ge=0)] = 1000.0
    rewards: dict[int, str] = Field(default_factory=lambda: dict(DEFAULT_REWARDS))
    starts: AwareDatetime | None = None
    ends: AwareDatetime | None = None

    @model_validator(mode="after")
    def _check(self) -> Challenge:
        names = [b.name for b in self.badges]
        if len(set(names)) != len(names):
            raise ValueError(f"badges: names repeat: {names}")
        for easier, harder in zip(self.badges, self.badges[1:], strict=False):
            if harder.max_pace_s_per_km >= easier.max_pace_s_per_km:
                raise ValueError(
                    f"badges: {harder.name!r} ({format_pace(harder.max_pace_s_per_km)}/km) is "
                    f"not harder than {easier.name!r} "
                    f"({format_pace(easier.max_pace_s_per_km)}/km); list them from easiest to "
                    "hardest")
        for n, reward in self.rewards.items():
            if not 1 <= n <= len(self.badges):
                raise ValueError(f"rewards: {n} badges: expected 1 to {len(self.badges)}")
            if not reward:
                raise ValueError(f"rewards: {n} badges: empty reward id")
        if self.starts and self.ends and self.ends <= self.starts:
            raise ValueError("the challenge ends before it starts")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.badges)


@dataclass(frozen=True)
class Workout:
    """One run: who (person, or device if unresolved), metres, seconds, when it ended (UTC).
    Not validated on construction, so an impossible one can be reported as rejected."""

    person: str
    distance_m: float
    duration_s: float
    ts: datetime


def pace_s_per_km(w: Workout) -> float:
    """Seconds per kilometre.

    >>> from datetime import datetime, timezone
    >>> pace_s_per_km(Workout("p", 5000, 1500, datetime.now(timezone.utc)))
    300.0
    """
    return w.duration_s * 1000 / w.distance_m


@dataclass(frozen=True)
class NotCounted:
    """A workout that did not count, and why."""

    workout: Workout
    reason: str


@dataclass
class Evaluation:
    """What :func:`evaluate` found: badges per person (everyone with a counted workout,
    possibly an empty set), each person's best pace, the workouts ``rejected`` as impossible
    and those ``ignored`` (too short, outside the window)."""

    badges: dict[str, set[str]] = field(default_factory=dict)
    best_pace: dict[str, float] = field(default_factory=dict)
    rejected: list[NotCounted] = field(default_factory=list)
    ignored: list[NotCounted] = field(default_factory=list)


def _finite_positive(x: Any) -> bool:
    return (isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
            and x > 0)


def impossible(w: Workout) -> str | None:
    """Why a workout cannot be real, or None.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    >>> impossible(Workout("p", 1000, 0, t))
    'duration_s: 0 is not a positive number'
    >>> impossible(Workout("p", 5000, 500, t))
    'pace 1:40/km is faster than 2:00/km: not a human run'
    """
    if not isinstance(w.person, str) or not w.person:
        return "person: empty"
    for name in ("distance_m", "duration_s"):
        if not _finite_positive(getattr(w, name)):
            return f"{name}: {getattr(w, name)!r} is not a positive number"
    if not isinstance(w.ts, datetime) or w.ts.tzinfo is None:
        return "ts: expected a time with a time zone (UTC)"
    if w.duration_s * 1000 < FASTEST_HUMAN_PACE_S_PER_KM * w.distance_m:
        return (f"pace {format_pace(pace_s_per_km(w))}/km is faster than "
                f"{format_pace(FASTEST_HUMAN_PACE_S_PER_KM)}/km: not a human run")
    return None


def lit_by(challenge: Challenge, w: Workout) -> set[str]:
    """The badges a (valid) workout lights: every badge whose max pace it meets.

    >>> from datetime import datetime, timezone
    >>> sorted(lit_by(Challenge(), Workout("p", 2000, 900, datetime.now(timezone.utc))))
    ['rabbit', 'tortoise']
    """
    return {b.name for b in challenge.badges
            if w.duration_s * 1000 <= b.max_pace_s_per_km * w.distance_m}


def evaluate(challenge: Challenge, workouts: Iterable[Workout]) -> Evaluation:
    """Badges per person from their workouts, with the workouts that did not count and why.

    >>> from datetime import datetime, timezone
    >>> t = datetime(2024, 5, 1, tzinfo=timezone.utc)
    >>> ev = evaluate(Challenge(), [Workout("ann", 800, 200, t), Workout("ann", -1, 60, t)])
    >>> ev.badges, [x.reason for x in ev.ignored], [x.reason for x in ev.rejected]
    ({}, ['800 m is shorter than the 1,000 m that count'], ['distance_m: -1 is not a positive number'])
    """
    ev = Evaluation()
    for w in workouts:
        reason = impossible(w)
        if reason:
            ev.rejected.append(NotCounted(w, reason))
            continue
        if w.distance_m < challenge.min_distance_m:
            ev.ignored.append(NotCounted(w, f"{w.distance_m:,g} m is shorter than the "
                                            f"{challenge.min_distance_m:,g} m that count"))
            continue
        if (challenge.starts and w.ts < challenge.starts) or (challenge.ends
                                                              and w.ts >= challenge.ends):
            ev.ignored.append(NotCounted(w, f"{w.ts.isoformat()} is outside the challenge"))
            continue
        ev.badges.setdefault(w.person, set()).update(lit_by(challenge, w))
        pace = pace_s_per_km(w)
        ev.best_pace[w.person] = min(pace, ev.best_pace.get(w.person, math.inf))
    return ev


def earned(challenge: Challenge, workouts: Iterable[Workout]) -> dict[str, set[str]]:
    """Badges per person (see :func:`evaluate` for the workouts that did not count)."""
    return evaluate(challenge, workouts).badges


def rewards(challenge: Challenge,
            badges_by_person: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """The rewards each person wins: every reward whose threshold is ≤ the number of badges
    they hold, by threshold; everyone given appears, with an empty list if nothing is won.

    >>> rewards(Challenge(), {"ann": {"tortoise"}, "bob": set(), "cy": Challenge().names})
    {'ann': ['coupon_10'], 'bob': [], 'cy': ['coupon_10', 'test_drive_gift', 'grand_draw_entry']}
    """
    known = set(challenge.names)
    ladder = sorted(challenge.rewards.items())
    out = {}
    for person, held in badges_by_person.items():
        held = set(held)
        if held - known:
            raise ValueError(f"{person}: unknown badge(s) {sorted(held - known)}")
        out[person] = [reward for n, reward in ladder if n <= len(held)]
    return out
