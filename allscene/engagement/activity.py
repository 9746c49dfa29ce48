"""Activities as data: who may take part, where they show, their mechanics and prizes.

An activity is a document an advertiser (or a marketer, as a file) declares; the engine
(:mod:`allscene.engagement.service`) runs it. One activity may combine mechanics, as the seed
cases do: Qunar's lock-screen game earns points and plays a lottery with coupons; Yili's
packaging codes give points that buy draws; KFC's red envelopes hide in six entry points.

Amounts of money are integer **cents**; points are integers. Times are aware datetimes.

Examples
--------
>>> a = Activity.model_validate({
...     "id": "qunar_bali", "advertiser": "qunar", "name": "Lock-screen game",
...     "start": "2026-03-01T00:00:00+08:00", "end": "2026-03-31T00:00:00+08:00",
...     "entry_points": ["phone_lock_screen"],
...     "prizes": [{"id": "bali_trip", "name": "Trip to Bali", "kind": "goods", "quantity": 1},
...                {"id": "train_coupon", "name": "Train ticket coupon", "kind": "coupon",
...                 "quantity": 1000, "face_cents": 1000, "valid_days": 30}],
...     "points": {"actions": {"game_round": 10}},
...     "lottery": {"odds": {"bali_trip": 0.0001, "train_coupon": 0.05}, "cost_points": 30}})
>>> a.prize("train_coupon").kind, a.lottery.cost_points
('coupon', 30)
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from allscene.engagement.badges import Challenge

Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
Positive = Annotated[int, Field(ge=1, le=1_000_000_000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Prize(_Model):
    """Something to win: ``cash`` goes to the wallet (``amount_cents``), ``points`` to the
    activity's points (``points``), ``coupon`` and ``goods`` to the card pack."""

    id: Id
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["cash", "points", "coupon", "goods"]
    quantity: Count
    """How many there are (the inventory); a prize is never awarded more often."""
    amount_cents: Count = 0
    points: Count = 0
    face_cents: Count = 0
    """A coupon's face value (for reports; the merchant honours it)."""
    valid_days: Positive | None = None
    """A coupon expires this many days after it is won; never when unset."""

    @model_validator(mode="after")
    def _amounts(self) -> Prize:
        if self.kind == "cash" and not self.amount_cents:
            raise ValueError(f"prize {self.id}: a cash prize needs amount_cents")
        if self.kind == "points" and not self.points:
            raise ValueError(f"prize {self.id}: a points prize needs points")
        return self


class Limits(_Model):
    """How often one may take part in one mechanic; each applies when set."""

    per_person: Positive | None = None
    per_person_per_day: Positive | None = None
    per_device_per_day: Positive | None = None
    per_ip_per_day: Positive | None = None
    per_ip_per_minute: Positive | None = None
    """Velocity: bursts from one address (scripts) are refused."""


class Lottery(_Model):
    """Draws with declared odds (:mod:`allscene.engagement.draws`), auditable afterwards."""

    odds: dict[str, float]
    cost_points: Count = 0
    """Points a draw costs (Yili, Qunar); 0 = free (then limits bound it)."""
    limits: Limits = Limits(per_person_per_day=3)


class Envelopes(_Model):
    """A cash budget split into envelopes of random amounts (:mod:`~.envelopes`)."""

    budget_cents: Positive
    count: Positive
    min_cents: Positive = 1
    limits: Limits = Limits(per_person=1)

    @model_validator(mode="after")
    def _enough(self) -> Envelopes:
        if self.budget_cents < self.count * self.min_cents:
            raise ValueError(f"budget_cents: {self.budget_cents} cannot fill {self.count} "
                             f"envelopes with at least {self.min_cents} cent(s) each")
        return self


class Coupons(_Model):
    """Coupons one claims directly (no draw); each claim takes one from its prize."""

    prizes: list[Id] = Field(min_length=1)
    limits: Limits = Limits(per_person=1)


class Codes(_Model):
    """Codes printed on packaging (:mod:`~.codes`); each redeems once for ``points``."""

    count: Positive
    points: Positive
    guesses_per_day: Positive = 10
    """Unknown codes a person may try in a day before redeeming is refused for the day."""


class Points(_Model):
    """Points earned by actions in a game or app, e.g. ``{"game_round": 10}``."""

    actions: dict[Id, Positive] = Field(min_length=1)
    limits: Limits = Limits(per_person_per_day=50)


class Contest(_Model):
    """Guess and win (C'estbon): the first ``winners`` correct answers by server receive
    time win ``prize``; answers after ``closes_at`` are kept but do not count."""

    question: str = Field(min_length=1, max_length=500)
    answer: str = Field(min_length=1, max_length=200)
    winners: Positive = 1
    prize: Id
    closes_at: AwareDatetime


class Activity(_Model):
    """An interactive campaign (see the module docstring)."""

    id: Id
    advertiser: Id
    name: str = Field(min_length=1, max_length=200)
    start: AwareDatetime
    end: AwareDatetime
    who: str = "everyone"
    """``everyone``, ``audience:<name>`` (the advertiser's saved audience) or
    ``scene:<id>`` (people in that scene now). Opted-out people see only ``everyone``."""
    entry_points: list[Id] = Field(min_length=1)
    """The placements of the delivery engine where the activity shows."""
    topics: Annotated[list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]],
                      Field(max_length=16)] = []
    """What the activity is about, in the tag catalog's words (``interest.fitness``), as a
    creative's ``topics``: declared by the advertiser, for reports and whoever ranks it."""
    budget_cents: Count = 0
    """Cash set aside for cash prizes; envelopes bring their own budget on top."""
    prizes: list[Prize] = []
    lottery: Lottery | None = None
    envelopes: Envelopes | None = None
    coupons: Coupons | None = None
    codes: Codes | None = None
    points: Points | None = None
    badges: Challenge | None = None
    """A badge challenge over workouts (:mod:`~.badges`); its rewards name prizes."""
    contest: Contest | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Activity:
        if self.end <= self.start:
            raise ValueError("end: the activity ends before it starts")
        if self.who != "everyone" and not self.who.startswith(("audience:", "scene:")):
            raise ValueError("who: must be everyone, audience:<name> or scene:<id>")
        ids = [p.id for p in self.prizes]
        if len(set(ids)) != len(ids):
            raise ValueError("prizes: prize ids must be unique")
        named = set(ids)
        refs = {"lottery.odds": list(self.lottery.odds) if self.lottery else [],
                "coupons.prizes": self.coupons.prizes if self.coupons else [],
                "badges.rewards": list(self.badges.rewards.values()) if self.badges else [],
                "contest.prize": [self.contest.prize] if self.contest else []}
        for where, names in refs.items():
            for n in names:
                if n not in named:
                    raise ValueError(f"{where}: no prize {n!r} in prizes")
        if self.coupons and any(self.prize(p).kind != "coupon" for p in self.coupons.prizes):
            raise ValueError("coupons.prizes: only coupon prizes can be claimed directly")
        cash = sum(p.amount_cents * p.quantity for p in self.prizes if p.kind == "cash")
        if cash > self.budget_cents:
            raise ValueError(f"budget_cents: cash prizes need {cash} cents, the budget is "
                             f"{self.budget_cents}")
        if self.lottery and self.lottery.cost_points and not (self.points or self.codes):
            raise ValueError("lottery.cost_points: draws cost points, but nothing earns any")
        if not any((self.lottery, self.envelopes, self.coupons, self.codes, self.points,
                    self.badges, self.contest)):
            raise ValueError("an activity needs at least one mechanic")
        return self

    def prize(self, prize_id: str) -> Prize:
        for p in self.prizes:
            if p.id == prize_id:
                return p
        raise KeyError(prize_id)

    def live(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end

    def public(self) -> dict:
        """What participants may see: everything but a contest's answer."""
        doc = self.model_dump(mode="json", exclude_none=True)
        if "contest" in doc:
            doc["contest"].pop("answer", None)
        return doc
