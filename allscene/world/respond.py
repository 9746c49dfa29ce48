"""How the world's people respond to the ads and activities they meet: their hidden model.

The model reads the truth set (``truth/ad_response.parquet``, written with the world by
:func:`allscene.world.population.ad_response_table`) and nothing the platform decided beyond
what a person could see: the placement, the creative (its declared ``topics``), the moment
(local hour, the temperature where they are) and their own history with the campaign (how
often they saw it, whether they clicked it yesterday). It never looks at which stage,
audience or strategy delivered the ad, so every difference between strategies in a report
comes from whom the platform chose, not from the simulator.

A click on one impression has probability::

    base_ctr x placement x prod(topic) x retarget x 0.5 ** (seen / fatigue_halflife)

* ``placement``: the person's multiplier for the placement's kind (splash, feed, focus
  image, video pre-roll, TV boot, lock screen; 1 elsewhere);
* ``topic``: per declared topic, ``interest.<x>`` and ``intent.<x>`` read the person's
  multipliers; ``season.winter`` is ``1 + 0.5 tanh((15 - t) / 4)`` at ``t`` degrees C where
  the person is (warm clothes appeal in the cold, up to 1.5 times, and put people off in
  the warmth, down to 0.5), ``season.summer`` the mirror image; an unknown topic is 1
  (people ignore what does not concern them);
* ``retarget``: the person's ``retarget_boost`` when they clicked the same campaign the day
  before (people come back to what they were interested in);
* fatigue: the click probability halves every ``fatigue_halflife`` impressions of the
  campaign, counted as they are remembered: each impression weighs half as much after
  :data:`WEAROUT_RECOVERY_H` hours (:class:`Wearout`), so a person tires of an ad seen
  again and again, and gets over it after a few days without it.

After a click: a lead with ``p_lead``, an app activation with ``p_activation`` (and the
activated app opened again the next day with ``p_retention_next_day``), a purchase with
``p_purchase``. Seeing an ad multiplies the person's rate of searching for the brand by
``1 + search_lift`` for 7 days.

Activities (:mod:`allscene.world.players` plays them): a person shown an activity at an
entry point takes part with ``ENGAGE_BASE`` times the probability of clicking an ad of the
activity's declared ``topics`` there, tiring of it as of an ad (the ``seen`` term counts the
times it was shown to them); a person holding a product with a code on its packaging enters
it with the same probability, at no placement (:meth:`Responders.takes_part`). A player plays
``1 + Poisson(PLAY_MEAN x appetite)`` rounds at a sitting, where their appetite is their own
click propensity against the median's (:meth:`Responders.rounds`), and comes back on a later
day with ``RETURN_P``. Having taken part, a person becomes a lead of the advertiser with
``ENGAGED_LEAD`` times their ``p_lead`` (they spent time with the brand), once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

PLACEMENT_KIND = {"phone_splash": "splash", "phone_feed": "feed", "phone_news": "feed",
                  "phone_browser": "feed", "phone_focus_image": "focus_image",
                  "phone_video_preroll": "video_preroll", "phone_video": "video_preroll",
                  "tv_preroll": "video_preroll", "tv_boot": "tv_boot",
                  "tv_screensaver": "tv_boot", "phone_lock_screen": "lock_screen"}
"""The placement kinds the world's people have their own multipliers for."""
TOPIC_COLUMN = {"interest.automotive": "interest_cars", "interest.parenting": "interest_kids",
                "intent.car.compact": "intent_car_compact", "intent.car.suv": "intent_car_suv",
                "intent.car.sedan": "intent_car_sedan", "intent.car.nev": "intent_car_nev",
                "intent.car.mpv": "intent_car_mpv"}
"""Catalog topic names whose hidden column is not simply the name with dots as ``_``."""
ENGAGED_LEAD = 2.5
"""How much taking part in an activity multiplies a person's lead probability."""
ENGAGE_BASE = 1.0
"""An activity's pull over an ad's: taking part is ``ENGAGE_BASE`` times a click's odds
(shown at every opening of its entry points, it need not pull harder than an ad to find
its players)."""
PLAY_MEAN = 0.5
"""Rounds a player plays at a sitting beyond the first, on average (see :meth:`rounds`)."""
RETURN_P = 0.5
"""How likely a player comes back to an activity shown on a later day."""
MEDIAN_CTR = 0.011
"""The median person's ``base_ctr`` (the world draws it log-normal around 1.1%)."""
MAX_P = 0.6
WEAROUT_RECOVERY_H = 24.0
"""Hours after which an impression weighs half in a person's fatigue with the ad."""
COMFORT_C = 15.0
SEASON = {"season.winter": -1.0, "season.summer": 1.0}


class Wearout:
    """How many impressions of each ad a person remembers: a sum where each impression
    weighs ``0.5 ** (hours since / recovery_h)``.

    >>> w = Wearout(recovery_h=24.0)
    >>> t0 = 0.0
    >>> for k in range(3):
    ...     w.add("ann", t0 + k * 3600)
    >>> round(w.at("ann", t0 + 2 * 3600), 2), round(w.at("ann", t0 + 26 * 3600), 2), w.at("bob", t0)
    (2.92, 1.46, 0.0)
    """

    def __init__(self, recovery_h: float = WEAROUT_RECOVERY_H):
        self.rate = math.log(2) / (recovery_h * 3600.0)
        self._mem: dict = {}  # key -> (weight, at epoch seconds)

    def at(self, key, t: float) -> float:
        """The remembered impressions of ``key`` at epoch seconds ``t``."""
        w = self._mem.get(key)
        return 0.0 if w is None else w[0] * math.exp(-self.rate * max(t - w[1], 0.0))

    def add(self, key, t: float) -> None:
        """One more impression at ``t``."""
        self._mem[key] = (self.at(key, t) + 1.0, t)


@dataclass
class Outcome:
    """What one person did after one impression."""

    click: bool
    lead: bool = False
    activation: bool = False
    retained: bool = False
    purchase: bool = False


class Responders:
    """The hidden response of every person of a world (``world_dir/truth``).

    Parameters
    ----------
    world_dir
        The generated world.
    seed
        Seeds the draws (one stream for the whole replay, so a replay is repeatable).
    """

    def __init__(self, world_dir: str | Path, *, seed: int):
        t = pq.read_table(Path(world_dir) / "truth" / "ad_response.parquet")
        self.row = {p: i for i, p in enumerate(t.column("person_id").to_pylist())}
        self.cols = {name: t.column(name).to_numpy() for name in t.column_names
                     if name != "person_id"}
        self.rng = np.random.default_rng([seed, 9090])
        self._topic: dict[tuple[str, ...], np.ndarray | None] = {}

    def __contains__(self, person: str) -> bool:
        return person in self.row

    def _topics(self, topics: tuple[str, ...]) -> np.ndarray | None:
        """The product of the people's multipliers for what is constant over the moment."""
        if topics not in self._topic:
            m = None
            for topic in topics:
                col = TOPIC_COLUMN.get(topic, topic.replace(".", "_"))
                if col in self.cols:
                    m = self.cols[col] if m is None else m * self.cols[col]
            self._topic[topics] = m
        return self._topic[topics]

    def p_click(self, person: str, placement: str, topics: tuple[str, ...], *,
                temp_c: float | None, seen: float = 0, clicked_yesterday: bool = False
                ) -> float:
        """The probability that ``person`` clicks this impression."""
        i = self.row[person]
        c = self.cols
        p = float(c["base_ctr"][i])
        kind = PLACEMENT_KIND.get(placement)
        if kind is not None:
            p *= float(c[f"placement_{kind}"][i])
        m = self._topics(topics)
        if m is not None:
            p *= float(m[i])
        for topic in topics:
            if topic in SEASON and temp_c is not None:
                p *= 1 + 0.5 * math.tanh(SEASON[topic] * (temp_c - COMFORT_C) / 4)
        if clicked_yesterday:
            p *= float(c["retarget_boost"][i])
        p *= 0.5 ** (seen / float(c["fatigue_halflife"][i]))
        return min(p, MAX_P)

    def respond(self, person: str, p_click: float, *, engaged: bool = False) -> Outcome:
        """Draw what the person does after an impression clicked with ``p_click``."""
        if self.rng.random() >= p_click:
            return Outcome(False)
        i, c, r = self.row[person], self.cols, self.rng.random(4)
        lead = float(c["p_lead"][i]) * (ENGAGED_LEAD if engaged else 1.0)
        act = r[1] < float(c["p_activation"][i])
        return Outcome(True, lead=bool(r[0] < min(lead, 1.0)), activation=bool(act),
                       retained=bool(act and r[2] < float(c["p_retention_next_day"][i])),
                       purchase=bool(r[3] < float(c["p_purchase"][i])))

    def takes_part(self, person: str, placement: str | None, topics: tuple[str, ...], *,
                   temp_c: float | None, seen: int = 0) -> bool:
        """Whether the person joins an activity shown to them for the ``seen``-th time
        (``ENGAGE_BASE`` times as likely as clicking an ad of the same topics there);
        ``placement`` None for a code on packaging in their hands."""
        p = self.p_click(person, placement or "", topics, temp_c=temp_c, seen=seen)
        return bool(self.rng.random() < min(p * ENGAGE_BASE, MAX_P))

    def comes_back(self) -> bool:
        """Whether a player comes back to an activity shown to them on a later day."""
        return bool(self.rng.random() < RETURN_P)

    def rounds(self, person: str) -> int:
        """How many rounds a player plays at one sitting (at least 1)."""
        appetite = float(self.cols["base_ctr"][self.row[person]]) / MEDIAN_CTR
        return 1 + int(self.rng.poisson(PLAY_MEAN * min(appetite, 3.0)))

    def draw(self, p: float) -> bool:
        """A draw of the people's stream with probability ``p`` (a slip of the finger...)."""
        return bool(self.rng.random() < p)

    def leads_after_engaging(self, person: str) -> bool:
        """Whether a person who took part becomes a lead (on their own, without a click)."""
        i = self.row[person]
        p = float(self.cols["p_lead"][i]) * ENGAGED_LEAD
        return bool(self.rng.random() < min(p, 1.0))

    def leads_unprompted(self, person: str) -> bool:
        """Whether a person only shown the activity becomes a lead anyway."""
        return bool(self.rng.random() < float(self.cols["p_lead"][self.row[person]]))

    def search_lift(self, person: str) -> float:
        """How much seeing the brand's ad multiplies the person's brand searches, minus 1."""
        return float(self.cols["search_lift"][self.row[person]])

    def search_rate(self, person: str, per_day: float) -> float:
        """The person's daily rate of searching for a brand whose average rate is
        ``per_day``: higher for people with any purchase intent."""
        i = self.row[person]
        intent = max(float(self.cols[k][i]) for k in self.cols if k.startswith("intent_"))
        return per_day * (1 + (intent - 1) * 1.5)
