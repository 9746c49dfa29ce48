"""The click model learning from the ad server's own traffic, as the labels become known.

A served ad is a training example only once it is known whether it was clicked, and clicks
arrive after the impression. :class:`OnlineLearner` keeps each decision's features
(:meth:`PCtr.impression <allscene.matching.model.PCtr.impression>`, as the request path saw
them) until ``label_after_s`` seconds of event time have passed since it was decided, then
learns from it with label 1 if its click was counted, 0 if only its impression was; an ad
whose impression never came back (not rendered, or tracking lost) is dropped, not learnt as
a non-click. This is the delayed-feedback join of production ad systems: a click later than
the window is missed as a positive (the window trades freshness for label accuracy).

Learning happens in batches of ``batch`` examples (FTRL updates are per example, in order;
the batch only amortizes hashing); :attr:`stats` keeps the progressive-validation log loss
(each example scored before the model learnt from it).

Examples
--------
>>> import datetime as dt
>>> from allscene.delivery.campaigns import Campaign
>>> from allscene.delivery.decide import Viewer
>>> from allscene.matching.model import PCtr
>>> from allscene.media.placements import load_placements
>>> feed = load_placements().by_id("phone_feed")
>>> c = Campaign.model_validate({"id": "spring", "name": "S", "flights": [
...     {"start": "2026-10-01T00:00:00Z", "end": "2026-10-15T00:00:00Z"}],
...     "budget": {"total": 100}, "bid": {"type": "cpc", "amount": 1},
...     "creatives": [{"id": "t", "format": "text", "text": "hi"}]})
>>> pctr = PCtr(tags_of={"ann": {"gender": "f"}, "bob": {"gender": "m"}}.get, min_events=50)
>>> learner = OnlineLearner(pctr, label_after_s=60, batch=10)
>>> t0 = dt.datetime(2026, 10, 12, 4, tzinfo=dt.UTC)
>>> for i in range(200):
...     who, t = ("ann", "bob")[i % 2], t0 + dt.timedelta(seconds=i)
...     learner.decided(f"r{i}", Viewer(who), c, feed, "t", t, {})
...     learner.shown(f"r{i}")
...     if who == "ann":
...         learner.clicked(f"r{i}")
>>> learner.advance(t0 + dt.timedelta(seconds=400))  # every label is known by now
200
>>> pctr(Viewer("ann"), c, feed) > 0.5 > pctr(Viewer("bob"), c, feed), learner.stats.learnt
(True, 200)
"""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from allscene.matching.model import PCtr


@dataclass
class LearnerStats:
    """What the learner has done: examples learnt, their clicks, dropped (never shown, or
    pushed out by ``max_pending``), and the progressive-validation log loss."""

    learnt: int = 0
    clicks: int = 0
    dropped: int = 0
    logloss_sum: float = 0.0

    @property
    def logloss(self) -> float | None:
        return self.logloss_sum / self.learnt if self.learnt else None


class OnlineLearner:
    """Feeds a :class:`~allscene.matching.model.PCtr` the server's labelled impressions.

    Parameters
    ----------
    pctr
        The model the decision engine ranks with; it learns in place.
    label_after_s
        Event-time seconds after a decision before its label is taken as final.
    batch
        Labelled examples gathered before one learning step.
    max_pending
        Decisions kept waiting for their labels at most (the oldest are dropped beyond it).
    """

    def __init__(self, pctr: PCtr, *, label_after_s: float = 900.0, batch: int = 2048,
                 max_pending: int = 1_000_000):
        if label_after_s < 0 or batch < 1 or max_pending < 1:
            raise ValueError("label_after_s >= 0, batch >= 1 and max_pending >= 1")
        self.pctr, self.label_after_s = pctr, label_after_s
        self.batch, self.max_pending = batch, max_pending
        self.stats = LearnerStats()
        # request id -> [(viewer, campaign, placement, creative, weather), decided at
        # (epoch s), shown, clicked], oldest first
        self._pending: OrderedDict[str, list[Any]] = OrderedDict()
        self._ready: list[tuple[Any, int]] = []

    def decided(self, request_id: str, viewer: Any, campaign: Any, placement: Any,
                creative: str | None, ts: dt.datetime, weather: Mapping[str, Any] | None
                ) -> None:
        """An ad was served: keep what it was shown to, where and when, until its label is
        known (its features are made then, for the impressions counted only)."""
        self._pending[request_id] = [(viewer, campaign, placement, creative, weather),
                                     ts.timestamp(), False, False]
        if len(self._pending) % 1024 == 0:  # settle old labels with no tracking calls too
            self.advance(ts)
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
            self.stats.dropped += 1

    def shown(self, request_id: str) -> None:
        """Its impression was counted (unknown or expired request ids are ignored)."""
        if (p := self._pending.get(request_id)) is not None:
            p[2] = True

    def clicked(self, request_id: str) -> None:
        """Its click was counted (a click implies the ad was shown)."""
        if (p := self._pending.get(request_id)) is not None:
            p[2] = p[3] = True

    def advance(self, now: dt.datetime, *, flush: bool = False) -> int:
        """Label every decision older than ``label_after_s`` at ``now`` and learn once a batch
        is ready (or whatever is ready, with ``flush``); returns the examples learnt."""
        horizon = now.timestamp() - self.label_after_s
        pending = self._pending
        while pending:
            rid, p = next(iter(pending.items()))
            if p[1] > horizon:
                break
            del pending[rid]
            if p[2]:
                viewer, campaign, placement, creative, weather = p[0]
                imp = self.pctr.impression(viewer, campaign, placement, ts=p[1],
                                           weather=weather, creative=creative)
                self._ready.append((imp, int(p[3])))
            else:
                self.stats.dropped += 1
        if not self._ready or (len(self._ready) < self.batch and not flush):
            return 0
        imps, labels = zip(*self._ready, strict=True)
        self._ready = []
        predicted = self.pctr.learn(imps, labels)
        s = self.stats
        s.learnt += len(labels)
        s.clicks += sum(labels)
        s.logloss_sum -= sum(math.log(max(p if y else 1.0 - p, 1e-15))
                             for p, y in zip(predicted, labels, strict=True))
        return len(labels)

    def __len__(self) -> int:
        """Decisions waiting for their labels."""
        return len(self._pending)
