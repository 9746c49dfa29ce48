"""The click model as the decision engine calls it: ``pctr(viewer, campaign, placement)``.

:class:`PCtr` wraps a fitted :class:`~allscene.matching.ftrl.FTRL` and the
:class:`~allscene.matching.features.ImpressionHasher`. Per call it hashes only what changes:

* the ad part (placement, device type, creative, campaign, advertiser, placement x
  creative) is kept per (campaign, placement);
* the person part (their tags, from ``tags_of``) per person, and their tags x the campaign
  per (person, campaign), until :meth:`PCtr.forget`;
* the context part (scenes, local hour and weekday, weather, hour x placement, scene x
  creative) per distinct context;

then sums the weights of those indices (a few microseconds: the benchmark measures it). A
person who opted out of personalized ads is scored without their tags. The creative scored is the first of the campaign's creatives that fits the placement (the one
the engine shows when no rule picks another). Until the model has learned from
``min_events`` events it answers with the ``prior`` (the engine's per-placement prior).

The engine does not pass the request's time or weather to ``pctr``: ``clock`` (epoch
seconds, default the wall clock; a simulation passes its own) and ``weather`` (a callable
returning ``{"temp_c": ..., "condition": ...}``) supply them.

Examples
--------
>>> import datetime as dt
>>> from allscene.delivery.campaigns import Campaign
>>> from allscene.delivery.decide import Viewer
>>> from allscene.media.placements import load_placements
>>> feed = load_placements().by_id("phone_feed")
>>> c = Campaign.model_validate({"id": "spring", "name": "S", "flights": [
...     {"start": "2026-10-01T00:00:00Z", "end": "2026-10-15T00:00:00Z"}],
...     "budget": {"total": 100}, "bid": {"type": "cpc", "amount": 1},
...     "creatives": [{"id": "t", "format": "text", "text": "hi"}]})
>>> noon = dt.datetime(2026, 10, 12, 12, tzinfo=LOCAL).timestamp()
>>> pctr = PCtr(tags_of={"ann": {"gender": "f"}}.get, clock=lambda: noon, min_events=10)
>>> pctr(Viewer("ann"), c, feed) == prior_pctr(Viewer("ann"), c, feed)  # untrained: prior
True
>>> imps = [pctr.impression(Viewer(p), c, feed) for p in ("ann", "bob") * 50]
>>> _ = pctr.learn(imps, [1, 0] * 50)
>>> pctr(Viewer("ann"), c, feed) > 0.5 > pctr(Viewer("bob"), c, feed)
True
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from allscene.delivery.decide import LOCAL, Viewer, prior_pctr
from allscene.matching.features import Impression, ImpressionHasher
from allscene.matching.ftrl import FTRL

TagsOf = Callable[[str], Mapping[str, Any] | None]
_EMPTY = np.zeros(0, np.int32)


@functools.lru_cache(maxsize=256)
def local_hour(epoch_hour: int) -> tuple[int, int]:
    """(local hour, ISO weekday) of an hour since the epoch, in the platform's time zone.

    >>> local_hour(0)
    (8, 4)
    """
    t = dt.datetime.fromtimestamp(epoch_hour * 3600, LOCAL)
    return t.hour, t.isoweekday()


class PCtr:
    """A click-probability callable for :class:`~allscene.delivery.decide.Decider`.

    Parameters
    ----------
    model
        A fitted FTRL, or ``None`` (one is made by :meth:`learn`).
    hasher
        The feature hasher; its ``bits`` must match the model's.
    tags_of
        ``person_id -> {tag: value}`` (or ``None``); e.g. ``dict.get`` of a tag table.
    advertiser_of
        ``campaign -> advertiser id`` when known (campaign ids are unique per advertiser).
    clock, weather
        The request's time (epoch seconds) and weather, since the engine does not pass them.
    prior
        The answer until the model has seen ``min_events`` events.
    """

    def __init__(self, model: FTRL | None = None, *, hasher: ImpressionHasher | None = None,
                 tags_of: TagsOf | None = None,
                 advertiser_of: Callable[[Any], str | None] | None = None,
                 clock: Callable[[], float] = time.time,
                 weather: Callable[[], Mapping[str, Any]] | None = None,
                 prior: Callable[[Viewer, Any, Any], float] = prior_pctr,
                 min_events: int = 1000, max_cached: int = 200_000):
        self.hasher = hasher or ImpressionHasher(model.bits if model is not None else 20)
        if model is not None and model.bits != self.hasher.bits:
            raise ValueError(f"the model has 2**{model.bits} features, the hasher "
                             f"2**{self.hasher.bits}")
        self.model, self.tags_of, self.advertiser_of = model, tags_of, advertiser_of
        self.clock, self.weather, self.prior = clock, weather, prior
        self.min_events, self.max_cached = min_events, max_cached
        self._ads: dict[tuple[int, str], tuple[Any, str, str, str | None, np.ndarray]] = {}
        self._people: dict[str, tuple[list[tuple[str, str]], np.ndarray]] = {}
        self._person_ad: dict[tuple[str, str], np.ndarray] = {}
        self._contexts: dict[tuple, np.ndarray] = {}
        if self.trained:
            _ = model.coef_  # type: ignore[union-attr]  # materialize the weights once

    @property
    def trained(self) -> bool:
        m = self.model
        return m is not None and m.is_fitted and m.n_seen_ >= self.min_events

    def forget(self) -> None:
        """Drop the cached features (call when tags or campaigns change)."""
        self._ads.clear()
        self._people.clear()
        self._person_ad.clear()
        self._contexts.clear()

    # -- the parts of an impression --------------------------------------------------------------
    def _ad(self, campaign: Any, placement: Any) -> tuple[Any, str, str, str | None, np.ndarray]:
        """(campaign, creative key, campaign key, advertiser, indices), kept per pair."""
        key = (id(campaign), placement.id)
        hit = self._ads.get(key)
        if hit is not None and hit[0] is campaign:
            return hit
        adv = self.advertiser_of(campaign) if self.advertiser_of else None
        camp = f"{adv}/{campaign.id}" if adv else campaign.id
        fits = getattr(placement, "fits", None)
        cr = next((c.id for c in campaign.creatives
                   if fits is None or fits(c.model_dump()) is None), campaign.creatives[0].id)
        creative = f"{camp}/{cr}"
        toks = self.hasher.ad_tokens(placement.id, creative, camp, adv,
                                     getattr(placement, "device_type", None))
        if len(self._ads) >= self.max_cached:
            self._ads.clear()
        hit = self._ads[key] = (campaign, creative, camp, adv, self.hasher.indices_of(toks))
        return hit

    def _tags(self, person: str | None) -> Mapping[str, Any]:
        if person is None or self.tags_of is None:
            return {}
        return self.tags_of(person) or {}

    def _person(self, person: str | None, camp: str) -> tuple[np.ndarray, np.ndarray]:
        """The indices of the person's tags, and of their tags x the campaign."""
        if person is None or self.tags_of is None:
            return _EMPTY, _EMPTY
        hit = self._people.get(person)
        if hit is None:
            if len(self._people) >= self.max_cached:
                self._people.clear()
            pairs = self.hasher.person_pairs(self._tags(person))
            hit = self._people[person] = (pairs, self.hasher.indices_of(
                self.hasher.person_tokens(pairs)))
        cross = self._person_ad.get((person, camp))
        if cross is None:
            if len(self._person_ad) >= self.max_cached:
                self._person_ad.clear()
            cross = self._person_ad[(person, camp)] = self.hasher.indices_of(
                self.hasher.person_ad_tokens(hit[0], camp))
        return hit[1], cross

    def _when(self, ts: float | None) -> tuple[int, int]:
        return local_hour(int((self.clock() if ts is None else ts) // 3600))

    def _weather(self, weather: Mapping[str, Any] | None) -> tuple[Any, Any]:
        w = weather if weather is not None else (self.weather() if self.weather else {})
        return w.get("temp_c"), w.get("condition")

    # -- the request path ------------------------------------------------------------------------
    def __call__(self, viewer: Viewer, campaign: Any, placement: Any) -> float:
        if not self.trained:
            return self.prior(viewer, campaign, placement)
        _, creative, camp, _, ad = self._ad(campaign, placement)
        hour, wd = self._when(None)
        temp, cond = self._weather(None)
        key = (placement.id, creative, viewer.scenes, hour, wd, temp, cond)
        ctx = self._contexts.get(key)
        if ctx is None:
            if len(self._contexts) >= self.max_cached:
                self._contexts.clear()
            ctx = self._contexts[key] = self.hasher.indices_of(self.hasher.context_tokens(
                placement.id, creative, viewer.scenes, hour, wd, temp, cond))
        tags, cross = self._person(None if viewer.opted_out else viewer.person_id, camp)
        idx = np.concatenate((ad, tags, cross, ctx))
        return self.model._proba_unchecked(idx)  # type: ignore[union-attr]

    # -- learning ----------------------------------------------------------------------------
    def impression(self, viewer: Viewer, campaign: Any, placement: Any, *,
                   ts: float | dt.datetime | None = None,
                   weather: Mapping[str, Any] | None = None,
                   creative: str | None = None) -> Impression:
        """The impression as the request path sees it (log it, label it with the click, and
        :meth:`learn` from it). ``creative`` (its id in the campaign) when it was not the
        first that fits."""
        _, first, camp, adv, _ = self._ad(campaign, placement)
        when = ts.timestamp() if isinstance(ts, dt.datetime) else ts
        hour, wd = self._when(when)
        temp, cond = self._weather(weather)
        return Impression(placement.id, f"{camp}/{creative}" if creative else first, camp, adv,
                          getattr(placement, "device_type", None),
                          {} if viewer.opted_out else dict(self._tags(viewer.person_id)),
                          viewer.scenes, hour, wd,
                          temp, cond)

    def learn(self, impressions: Sequence[Impression] | Iterable[Impression],
              clicks: Sequence[int] | np.ndarray) -> np.ndarray:
        """Learn online from impressions and their click labels (0/1), in order; returns the
        predictions made before each update (progressive validation)."""
        X = self.hasher.transform(list(impressions))
        if self.model is None:
            self.model = FTRL(bits=self.hasher.bits)
        p = self.model.partial_fit_predict(X, clicks)
        _ = self.model.coef_  # the request path reads the materialized weights
        return p
