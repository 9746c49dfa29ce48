"""The decision engine: a request for a placement in, an ad (or no ad) and why, out.

For a request (placement, device, time, weather) and what is known of the person behind the
device (:class:`Viewer`: their person id, opt-out, resident county, audiences, scenes now):

1. **Eligible campaigns** come from an index built when campaigns are loaded: per placement,
   the live campaigns with a creative that fits it and a device type that matches. A request
   then filters only those: flights, hours, county, scenes, audiences. A person who opted
   out of personalized ads is offered only campaigns that target no one in particular.
2. **Ranking** by expected value per thousand impressions: the CPM bid, or for CPC the bid x
   pCTR x 1000 (``pctr`` is pluggable; a prior per placement until a model exists). Below the
   placement's floor a campaign does not bid.
3. **Holdout**: a campaign's holdout share of people (a hash of person and campaign, stable
   across requests and servers) never sees it; the decision it would have won is kept as a
   ghost for lift measurement, and the next campaign is tried.
4. **Pacing**: an ``even`` campaign spreads what is left of its daily budget over the hours
   left in the (local) day: in hour ``h`` it spends at most (daily budget - spent before
   ``h``) / (24 - ``h``). With steady traffic that is the daily budget / 24 each hour; after
   hours without traffic, the rest is spread evenly again rather than rushed.
5. **Caps and budget** are checked and recorded in one atomic step of the online state
   (:mod:`allscene.storage.online`), at a second price: the next bid, at least the floor.
6. **Creative**: the first whose context rule holds (:mod:`allscene.delivery.rules`).
7. **Response**: HMAC-signed impression and click URLs (:mod:`allscene.delivery.tracking`)
   and the reasons campaigns were passed over; or no ad, and why.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import os
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from allscene.delivery.campaigns import Campaign
from allscene.delivery.rules import parse_rule, rule_holds

LOCAL = dt.timezone(dt.timedelta(hours=8))
PRIOR_CTR = {"phone_splash": 0.03, "phone_feed": 0.012, "tv_boot": 0.004}
DEFAULT_CTR = 0.008
_ids: list = []  # [prefix, counter] of this process


def _new_prefix() -> None:
    _ids[:] = [os.urandom(6).hex(), itertools.count()]


_new_prefix()
os.register_at_fork(after_in_child=_new_prefix)  # a forked worker draws its own


def new_request_id() -> str:
    """A decision id unique across processes and restarts: 12 random hex digits drawn
    once per process (again in a forked child), then a counter (a random draw, or even
    asking for the process id, per request costs a system call)."""
    return f"{_ids[0]}{next(_ids[1]):010x}"


@dataclass(slots=True)
class Request:
    placement: str
    device_id: str | None
    ts: dt.datetime
    weather: dict[str, Any] = field(default_factory=dict)  # temp_c, condition, aqi, humidity
    request_id: str = field(default_factory=new_request_id)
    floor_cny: float = 0.0
    """The seller's floor (CPM, CNY) when above the placement's own (OpenRTB ``bidfloor``)."""
    accepts: Callable[[dict[str, Any]], bool] | None = None
    """Which creatives this request can show (an OpenRTB imp's sizes, types, lengths), when
    it narrows the placement's own formats."""


@dataclass(frozen=True)
class Viewer:
    """What the platform knows of the person behind a request's device."""

    person_id: str | None
    opted_out: bool = False
    county: str | None = None
    audiences: Container[tuple[str, str]] = frozenset()
    """The ``(advertiser, audience)`` pairs the person is in: a set, or any container that
    answers ``in`` (e.g. a lookup into the audiences' bitmaps)."""
    scenes: frozenset[str] = frozenset()


@dataclass
class Decision:
    request_id: str
    placement: str
    outcome: str  # "ad", "no_ad"
    device_id: str | None = None
    person_id: str | None = None
    advertiser: str | None = None
    campaign: str | None = None
    creative: dict[str, Any] | None = None
    price_cny: float = 0.0  # this impression's price (CNY)
    imp_url: str | None = None
    click_url: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)  # why campaigns were passed over
    ghosts: list[tuple[str, str]] = field(default_factory=list)  # held-out winners
    scene: str | None = None  # the targeted scene the person was in
    audience: str | None = None  # the targeted audience the person was in
    stage: str | None = None  # the campaign's optimization stage


@dataclass(slots=True)
class _Live:
    """A campaign as the request path reads it: plain sets and numbers."""

    advertiser: str
    c: Campaign
    key: str
    ecpm_cpm: float | None
    rules: list[Any]
    flights: tuple[tuple[float, float], ...] = ()
    hours: frozenset[int] = frozenset()
    counties: frozenset[str] = frozenset()
    scenes: frozenset[str] = frozenset()
    audiences: frozenset[tuple[str, str]] = frozenset()
    salt: bytes = b""
    """``key + "\\n"``: what :func:`in_holdout` hashes before the person."""

    @classmethod
    def of(cls, advertiser: str, c: Campaign) -> _Live:
        t = c.targeting
        return cls(advertiser, c, f"{advertiser}/{c.id}",
                   c.bid.amount if c.bid.type == "cpm" else None,
                   [parse_rule(cr.rule) if cr.rule else None for cr in c.creatives],
                   tuple((f.start.timestamp(), f.end.timestamp()) for f in c.flights),
                   frozenset(t.hours), frozenset(t.counties), frozenset(t.scenes),
                   frozenset((advertiser, a) for a in t.audiences),
                   f"{advertiser}/{c.id}\n".encode())


@functools.lru_cache(maxsize=256)
def _local_hour(epoch_hour: int) -> tuple[str, int, int]:
    """(local date, hour, ISO weekday) of an hour since the epoch: one conversion per hour,
    not per request.

    >>> _local_hour(0)
    ('1970-01-01', 8, 4)
    """
    local = dt.datetime.fromtimestamp(epoch_hour * 3600, LOCAL)
    return local.date().isoformat(), local.hour, local.isoweekday()


def prior_pctr(viewer: Viewer, campaign: Campaign, placement: Any) -> float:
    """The click prior of a placement (until a pCTR model is plugged in)."""
    return PRIOR_CTR.get(placement.id, DEFAULT_CTR)


def _in_any(wanted: frozenset[tuple[str, str]], have: Container[tuple[str, str]]) -> bool:
    for a in wanted:
        if a in have:
            return True
    return False


def in_holdout(person: str, key: str, share: float) -> bool:
    """Whether ``person`` is in the holdout of the campaign ``key`` (``advertiser/id``):
    a hash of both, the same in every process, below ``share``."""
    return _held(f"{key}\n".encode(), person, share)


def _held(salt: bytes, person: str, share: float) -> bool:
    h = hashlib.sha256(salt + person.encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < share


class Decider:
    """Decides ads for one set of live campaigns (call :meth:`load` again when they change).

    Parameters
    ----------
    placements
        The placement catalog (:func:`allscene.media.placements.load_placements`).
    state
        Online state (:class:`~allscene.storage.online.MemoryState` or ``RedisState``).
    tracker
        Signs the tracking URLs (:class:`~allscene.delivery.tracking.Tracker`).
    base_url
        Where the tracking endpoints are served (``https://ads.example``).
    """

    def __init__(self, placements, state, tracker, *, base_url: str,
                 pctr: Callable[[Viewer, Campaign, Any], float] = prior_pctr):
        self.placements, self.state, self.tracker = placements, state, tracker
        self.base_url, self.pctr = base_url.rstrip("/"), pctr
        self._by_placement: dict[str, list[tuple[_Live, list]]] = {}

    def load(self, campaigns: Iterable[tuple[str, Campaign]]) -> int:
        """Index ``(advertiser, campaign)`` pairs by placement; returns how many are indexed."""
        index: dict[str, list[tuple[_Live, list]]] = {p.id: [] for p in self.placements}
        n = 0
        for advertiser, c in campaigns:
            if c.status != "active":
                continue
            live = _Live.of(advertiser, c)
            t = c.targeting
            for p in self.placements:
                if t.placements and p.id not in t.placements:
                    continue
                if t.device_types and p.device_type not in t.device_types:
                    continue
                # The creatives that fit this placement, in the advertiser's order, with rules.
                # The fields its tracking links carry are encoded once, here.
                fit = [(cr.model_dump(exclude_none=True), rule, self._link_fields(live, cr, p))
                       for cr, rule in zip(c.creatives, live.rules, strict=True)
                       if p.fits(cr.model_dump()) is None]
                if fit:
                    index[p.id].append((self._static_ecpm(live, p), live, fit))
                    n += 1
        for entries in index.values():  # best first: a request stops once it has a winner
            entries.sort(key=lambda e: (-e[0], e[1].key))
        self._by_placement = index
        return n

    def _link_fields(self, live: _Live, creative: Any, placement: Any):
        fields = {"a": live.advertiser, "c": live.c.id, "cr": creative.id, "p": placement.id}
        if creative.landing:
            fields["to"] = creative.landing  # signed: the click cannot be redirected
        return self.tracker.prepare(fields)

    def _static_ecpm(self, live: _Live, placement: Any) -> float:
        """The eCPM when it does not depend on the viewer (CPM bids; CPC with the prior)."""
        if live.ecpm_cpm is not None:
            return live.ecpm_cpm
        if self._prior():
            return live.c.bid.amount * prior_pctr(Viewer(None), live.c, placement) * 1000
        return float("nan")  # ranked per request

    def _prior(self) -> bool:
        """Whether the click model answers with the prior (none, or one still learning)."""
        return self.pctr is prior_pctr or getattr(self.pctr, "trained", True) is False

    def _ranked(self, entries, req: Request, viewer: Viewer, placement: Any, floor: float,
                ts: float, hour: int, why: Counter[str]) -> Iterator[tuple[float, _Live, list]]:
        """The eligible campaigns, best eCPM first, lazily: with static eCPMs the walk stops
        as soon as the request has its ad (campaigns below it are outbid, not examined)."""
        if self._prior():  # every eCPM is known at load (a model learning later: not yet)
            for i, (ecpm, live, fit) in enumerate(entries):
                if ecpm < floor:
                    why["below the floor"] += len(entries) - i
                    return
                reason = self._unfit(live, viewer, ts, hour)
                if reason:
                    why[reason] += 1
                    continue
                yield ecpm, live, fit
            return
        bids = []
        for _, live, fit in entries:
            reason = self._unfit(live, viewer, ts, hour)
            if reason:
                why[reason] += 1
                continue
            ecpm = live.ecpm_cpm if live.ecpm_cpm is not None else \
                live.c.bid.amount * self.pctr(viewer, live.c, placement) * 1000
            if ecpm < floor:
                why["below the floor"] += 1
                continue
            bids.append((ecpm, live, fit))
        bids.sort(key=lambda b: (-b[0], b[1].key))
        yield from bids

    def decide(self, req: Request, viewer: Viewer) -> Decision:
        out = Decision(req.request_id, req.placement, "no_ad", req.device_id, viewer.person_id)
        placement = self.placements.get(req.placement)
        if placement is None:
            raise KeyError(f"unknown placement {req.placement!r}")
        now = req.ts.timestamp()
        day, hour, weekday = _local_hour(int(now // 3600))
        who = viewer.person_id or f"device:{req.device_id}"
        floor = max(placement.floor_cny, req.floor_cny)
        why: Counter[str] = Counter()
        bids = self._ranked(self._by_placement.get(req.placement, ()), req, viewer,
                            placement, floor, now, hour, why)
        env = None  # what creative rules read; built when a rule is met
        cur = next(bids, None)
        while cur is not None:
            nxt = next(bids, None)
            ecpm, live, fit = cur
            cur = nxt
            c = live.c
            if viewer.person_id and c.holdout and _held(live.salt, viewer.person_id,
                                                        c.holdout):
                out.ghosts.append((live.advertiser, c.id))
                why["holdout"] += 1
                continue
            creative = link_fields = None
            for cr, rule, pre in fit:
                if rule is not None:
                    if env is None:
                        env = {"hour": hour, "weekday": weekday,
                               "device_type": placement.device_type,
                               "placement": placement.id, "scenes": viewer.scenes,
                               **{f"weather.{k}": v for k, v in req.weather.items()}}
                    if not rule_holds(rule, env):
                        continue
                if req.accepts is None or req.accepts(cr):
                    creative, link_fields = cr, pre
                    break
            if creative is None:
                why["no creative fits the context"] += 1
                continue
            second = nxt[0] if nxt is not None else floor
            price = round(min(ecpm, max(second, floor)) / 1000, 6)
            paced = c.pacing == "even" and c.budget.daily is not None
            hour_key = f"{day}T{hour:02d}" if paced else None
            if paced:
                today, this_hour = self.state.pacing_spend(live.key, day, hour_key)
                plan = (c.budget.daily - (today - this_hour)) / (24 - hour)
                if this_hour + price > plan:
                    why["pacing"] += 1
                    continue
            refused = self.state.try_serve(
                who, live.key, cap=c.frequency_cap.impressions,
                window_s=c.frequency_cap.per_hours * 3600, price=price,
                daily_budget=c.budget.daily, total_budget=c.budget.total, day=day,
                now=now, hour=hour_key)
            if refused:
                why[refused] += 1
                continue
            out.outcome, out.advertiser, out.campaign = "ad", live.advertiser, c.id
            if live.scenes:  # what the targeting matched, for reports by scene and audience
                out.scene = min(live.scenes & viewer.scenes)
            if live.audiences:
                out.audience = min(a for a in live.audiences if a in viewer.audiences)[1]
            out.stage = c.stage
            out.creative, out.price_cny = dict(creative), price
            body = self.tracker.body({"d": req.request_id, "price": f"{price:.6f}",
                                      "dv": req.device_id or ""}, now=now,
                                     prepared=link_fields)
            out.imp_url = self.tracker.link(f"{self.base_url}/t/imp", "imp", body)
            out.click_url = self.tracker.link(f"{self.base_url}/t/click", "click", body)
            break
        if out.outcome == "no_ad" and not why:
            why["no campaign for this placement"] += 1
        out.reasons = dict(why)
        return out

    @staticmethod
    def _unfit(live: _Live, viewer: Viewer, ts: float, hour: int) -> str | None:
        flights = live.flights
        if len(flights) == 1:
            if not flights[0][0] <= ts < flights[0][1]:
                return "outside its flights"
        elif not any(a <= ts < b for a, b in flights):
            return "outside its flights"
        if live.hours and hour not in live.hours:
            return "not at this hour"
        if viewer.opted_out and (live.counties or live.scenes or live.audiences):
            return "person opted out of targeting"
        if live.counties and viewer.county not in live.counties:
            return "not in the target counties"
        if live.scenes and live.scenes.isdisjoint(viewer.scenes):
            return "not in the target scenes"
        if live.audiences and not _in_any(live.audiences, viewer.audiences):
            return "not in the target audiences"
        return None
