"""Campaigns: what an advertiser buys, checked before it is stored, kept per advertiser.

A campaign has flights, a total and a daily budget (CNY), pacing (``even`` spreads the day's
budget over its hours, ``asap`` spends as traffic comes), a bid (CPM, or CPC ranked by
bid x pCTR), targeting (saved audiences and lookalikes, scenes, resident counties, hours,
device types, placements), a frequency cap per person across all their devices and media,
creatives with context rules (:mod:`allscene.delivery.rules`), and a holdout share of the
targeted people kept unexposed for lift measurement.

:class:`CampaignService` is the only way in: it validates a campaign against the scene
catalog, the placements and the advertiser's own audiences, then stores it through the
configuration store (:class:`~allscene.storage.configdb.ConfigStore`), keyed by advertiser.

Examples
--------
>>> c = Campaign.model_validate({"id": "spring", "name": "Spring SUV", "flights": [
...     {"start": "2026-10-01T00:00:00Z", "end": "2026-10-15T00:00:00Z"}],
...     "budget": {"total": 50000, "daily": 5000}, "bid": {"type": "cpm", "amount": 30},
...     "creatives": [{"id": "w", "format": "image", "w": 1080, "h": 1920,
...                    "url": "https://cdn.example/w.jpg", "rule": "weather.temp_c < 10"}]})
>>> c.pacing, c.frequency_cap.impressions, c.holdout
('even', 3, 0.1)
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from allscene.delivery.rules import RuleError, parse_rule
from allscene.events.schema import DEVICE_TYPES
from allscene.matching.plans import Plan

ID = r"^[a-z0-9][a-z0-9_\-]{0,63}$"
Money = Annotated[float, Field(gt=0, le=1e9)]


class CampaignError(ValueError):
    """A campaign that cannot be stored, saying which field and why."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Flight(_Model):
    start: dt.datetime
    end: dt.datetime

    @model_validator(mode="after")
    def _order(self) -> Flight:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("flight times need a time zone, e.g. 2026-10-01T00:00:00+08:00")
        if self.end <= self.start:
            raise ValueError("a flight ends after it starts")
        return self


class Budget(_Model):
    total: Money
    daily: Money | None = None

    @model_validator(mode="after")
    def _daily(self) -> Budget:
        if self.daily is not None and self.daily > self.total:
            raise ValueError("the daily budget is more than the total")
        return self


class Bid(_Model):
    type: Literal["cpm", "cpc"]
    amount: Money
    """CNY per thousand impressions (CPM) or per click (CPC)."""


class Targeting(_Model):
    audiences: list[str] = []
    """Saved audiences (expressions, packages, lookalikes) of the advertiser: a person in any."""
    scenes: list[str] = []
    """Scene ids: the person is in one of them at the moment of the request."""
    counties: list[str] = []
    """Resident county codes (the resident place tag)."""
    hours: list[Annotated[int, Field(ge=0, le=23)]] = []
    """Local hours of the day; empty means all."""
    device_types: list[str] = []
    placements: list[str] = []


class FrequencyCap(_Model):
    impressions: Annotated[int, Field(ge=1, le=1000)] = 3
    per_hours: Annotated[int, Field(ge=1, le=24 * 90)] = 24
    """Counted per person, across every device and medium."""


class Creative(_Model):
    id: Annotated[str, Field(pattern=ID)]
    format: Literal["image", "native", "video", "audio", "text"]
    w: Annotated[int, Field(ge=1, le=8192)] | None = None
    h: Annotated[int, Field(ge=1, le=8192)] | None = None
    duration_s: Annotated[float, Field(gt=0, le=600)] | None = None
    mime: str | None = None
    url: Annotated[str, Field(pattern=r"^https?://")] | None = None
    text: Annotated[str, Field(max_length=500)] | None = None
    landing: Annotated[str, Field(pattern=r"^https?://")] | None = None
    topics: Annotated[list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]],
                      Field(max_length=16)] = []
    """What the creative is about, in the tag catalog's words (``intent.car_compact``,
    ``interest.comics``, ``season.winter``): declared by the advertiser, as OpenRTB's ``cat``."""
    rule: str | None = None
    """When this creative fits (``weather.temp_c < 10``); the first creative whose rule
    holds is chosen, a creative without a rule fits always."""

    @model_validator(mode="after")
    def _content(self) -> Creative:
        if self.format in ("image", "native", "video", "audio") and not self.url:
            raise ValueError(f"a {self.format} creative needs a url")
        if self.format == "text" and not self.text:
            raise ValueError("a text creative needs its text")
        if self.format in ("image", "video") and (self.w is None or self.h is None):
            raise ValueError(f"a {self.format} creative needs w and h")
        if self.format in ("video", "audio") and self.duration_s is None:
            raise ValueError(f"a {self.format} creative needs duration_s")
        return self


class Campaign(_Model):
    id: Annotated[str, Field(pattern=ID)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    status: Literal["active", "paused"] = "active"
    flights: Annotated[list[Flight], Field(min_length=1)]
    budget: Budget
    pacing: Literal["even", "asap"] = "even"
    bid: Bid
    targeting: Targeting = Targeting()
    frequency_cap: FrequencyCap = FrequencyCap()
    creatives: Annotated[list[Creative], Field(min_length=1)]
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    """Share of the targeted people kept unexposed (ghost ads logged) to measure lift."""
    stage: Annotated[str, Field(pattern=ID)] | None = None
    """The stage of an optimization plan the campaign is in (seed audience, lookalike of
    its clickers, ...): decisions record it, so reports compare stages."""
    plan: Plan | None = None
    """A multi-stage optimization plan (:mod:`allscene.matching.plans`): the stages, their
    days and audience recipes; ``run_plans`` moves ``stage`` and ``targeting.audiences``."""

    @model_validator(mode="after")
    def _unique(self) -> Campaign:
        ids = [c.id for c in self.creatives]
        if len(set(ids)) != len(ids):
            raise ValueError("creative ids repeat")
        return self

    def live_at(self, t: dt.datetime) -> bool:
        return self.status == "active" and any(f.start <= t < f.end for f in self.flights)


def parse_campaign(doc: dict[str, Any]) -> Campaign:
    """A campaign from a JSON document; :class:`CampaignError` names every bad field."""
    try:
        return Campaign.model_validate(doc)
    except ValidationError as e:
        raise CampaignError("; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or 'campaign'}: {err['msg']}"
            for err in e.errors())) from None


class CampaignService:
    """Validated, advertiser-scoped campaigns over a configuration store.

    Parameters
    ----------
    store
        A :class:`~allscene.storage.configdb.ConfigStore`.
    scene_ids, placement_ids
        What targeting may name; ``None`` skips that check.
    audiences
        ``audiences(advertiser) -> set of names`` the advertiser has saved.
    """

    def __init__(self, store, *, scene_ids: set[str] | None = None,
                 placement_ids: set[str] | None = None, audiences=None):
        self.store = store
        self.scene_ids, self.placement_ids = scene_ids, placement_ids
        self.audiences = audiences

    def check(self, advertiser: str, doc: dict[str, Any]) -> Campaign:
        c = parse_campaign(doc)
        t = c.targeting
        problems = []
        if self.scene_ids is not None:
            problems += [f"targeting.scenes: unknown scene {s!r}" for s in t.scenes
                         if s not in self.scene_ids]
        if self.placement_ids is not None:
            problems += [f"targeting.placements: unknown placement {p!r}" for p in t.placements
                         if p not in self.placement_ids]
        problems += [f"targeting.device_types: unknown device type {d!r} (one of "
                     f"{', '.join(DEVICE_TYPES)})" for d in t.device_types
                     if d not in DEVICE_TYPES]
        problems += [f"targeting.counties: {x!r} is not a county code" for x in t.counties
                     if not re.fullmatch(r"\d{6}", x)]
        if self.audiences is not None and t.audiences:
            have = self.audiences(advertiser)
            problems += [f"targeting.audiences: no saved audience {a!r}" for a in t.audiences
                         if a not in have]
        for i, cr in enumerate(c.creatives):
            if cr.rule:
                try:
                    parse_rule(cr.rule, self.scene_ids)
                except RuleError as e:
                    problems.append(f"creatives.{i}.rule: {e}")
        if problems:
            raise CampaignError("; ".join(problems))
        return c

    def create(self, advertiser: str, doc: dict[str, Any]) -> tuple[Campaign, int]:
        c = self.check(advertiser, doc)
        return c, self.store.put_campaign(advertiser, c.id, c.model_dump(mode="json"))

    def update(self, advertiser: str, doc: dict[str, Any], version: int) -> tuple[Campaign, int]:
        c = self.check(advertiser, doc)
        return c, self.store.put_campaign(advertiser, c.id, c.model_dump(mode="json"),
                                          expect_version=version)

    def get(self, advertiser: str, campaign_id: str) -> tuple[Campaign, int] | None:
        got = self.store.get_campaign(advertiser, campaign_id)
        return None if got is None else (Campaign.model_validate(got[0]), got[1])

    def list(self, advertiser: str) -> list[tuple[Campaign, int]]:
        return [(Campaign.model_validate(d), v) for _, d, v in self.store.list_campaigns(advertiser)]

    def delete(self, advertiser: str, campaign_id: str) -> bool:
        return self.store.delete_campaign(advertiser, campaign_id)
