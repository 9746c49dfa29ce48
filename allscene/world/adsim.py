"""A campaign with a holdout, simulated person by person: events for the platform, the true
effects for the truth set.

Each person has hidden traits drawn as in :func:`allscene.world.population.ad_response_table`:
a purchase intent in [0, 1] that raises both their click-through rate and their rate of
searching for the brand; a baseline conversion probability; and what the ad truly does to
them: it adds ``conv_effect`` (scaled by intent) to their conversion probability and
multiplies their brand-search rate by 1 + ``search_lift`` (larger for intent holders) for the
``window_d`` days after they first see it.

The campaign would reach every person once, at a random time in its first week; a random
``holdout`` share is held out (the decision engine logs the ghost: ``outcome = "holdout"``),
the others get the ad (decision, impression, maybe a click 2-60 s later). Then conversions
(reported by the advertiser from the person's device, with no token) and brand searches
happen by each person's probabilities, before and after.

The truth set holds what no estimate could see: the average effect on the conversion rate
over everyone the campaign would reach (``conversion_ate``), and the average number of extra
brand searches per exposed non-clicker in the window (``searches_per_exposed_non_clicker``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

BRAND_QUERIES = ("科鲁泽 价格", "chevrolet cavalier", "雪佛兰 试驾")
OTHER_QUERIES = ("天气", "火锅 附近", "电影票")


@dataclass(frozen=True)
class AdSim:
    people: int = 3000
    holdout: float = 0.3
    base_conversion: float = 0.03
    conv_effect: float = 0.02
    base_ctr: float = 0.02
    searches_per_day: float = 0.08
    window_d: float = 7.0
    start: dt.datetime = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)
    advertiser: str = "chevrolet"
    campaign: str = "cavalier"


def simulate(sim: AdSim, seed: int) -> tuple[list[dict], dict[str, float]]:
    """``(events, truth)`` of one simulated campaign."""
    rng = np.random.default_rng([seed, 7607])
    n = sim.people
    intent = rng.beta(0.6, 3.0, n)
    ctr = np.clip(sim.base_ctr * (1 + 4 * intent) * rng.lognormal(0, 0.3, n), 0, 0.5)
    p0 = np.clip(sim.base_conversion * (1 + 3 * intent) * rng.lognormal(0, 0.3, n), 0, 0.9)
    p1 = np.clip(p0 + sim.conv_effect * (0.5 + intent), 0, 1)
    rate = sim.searches_per_day * (1 + 6 * intent)
    mult = 1 + rng.gamma(2, 0.25, n) + 1.2 * intent  # a rise by ad_response's search_lift
    first = sim.start + dt.timedelta(days=sim.window_d)  # a week of pre-period first
    t_first = first.timestamp() + rng.uniform(0, 7 * 86400, n)
    held = rng.random(n) < sim.holdout
    clicked = ~held & (rng.random(n) < ctr)
    converted = rng.random(n) < np.where(held, p0, p1)
    events: list[dict] = []
    iso = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).isoformat()  # noqa: E731
    ad = {"advertiser_id": sim.advertiser, "campaign_id": sim.campaign,
          "placement_id": "phone_feed"}
    w = sim.window_d * 86400
    for i in range(n):
        dev, t = f"ph{i}", float(t_first[i])
        base = {"device_id": dev, "device_type": "phone"}
        rid = f"s{seed}-{i}"
        events.append(base | ad | {"event_id": f"dec-{rid}", "ts": iso(t), "kind": "ad_decision",
                                   "request_id": rid, "account_id": f"p{i}", "cost": 0.02,
                                   "outcome": "holdout" if held[i] else "ad"}
                      | ({} if held[i] else {"creative_id": "feed"}))
        if not held[i]:
            events.append(base | ad | {"event_id": f"imp-{rid}", "ts": iso(t + 1),
                                       "kind": "ad_impression", "request_id": rid,
                                       "creative_id": "feed", "cost": 0.02})
            if clicked[i]:
                events.append(base | ad | {"event_id": f"click-{rid}",
                                           "ts": iso(t + 1 + rng.uniform(2, 60)),
                                           "kind": "ad_click", "request_id": rid,
                                           "creative_id": "feed"})
        if converted[i]:
            events.append(base | {"event_id": f"conv-{rid}", "ts": iso(t + rng.uniform(60, w)),
                                  "kind": "ad_conversion", "advertiser_id": sim.advertiser,
                                  "conversion_type": "lead"})
        # Brand searches a week before and a week after (the ad multiplies the rate after).
        after = rate[i] * (1 if held[i] else mult[i])
        for lo, lam in ((t - w, rate[i]), (t, after)):
            for k, s in enumerate(np.sort(rng.uniform(lo, lo + w,
                                                      rng.poisson(lam * sim.window_d)))):
                events.append(base | {"event_id": f"q-{rid}-{int(lo)}-{k}", "ts": iso(s),
                                      "kind": "search", "app": "browser",
                                      "query": BRAND_QUERIES[k % len(BRAND_QUERIES)]})
        if rng.random() < 0.5:
            events.append(base | {"event_id": f"o-{rid}", "ts": iso(t - 3600), "kind": "search",
                                  "app": "browser", "query": OTHER_QUERIES[i % 3]})
    non_clickers = ~held & ~clicked
    truth = {"conversion_ate": float(np.mean(p1 - p0)),
             "searches_per_exposed_non_clicker": float(np.mean(
                 rate[non_clickers] * (mult[non_clickers] - 1) * sim.window_d)),
             "exposed": int((~held).sum()), "held_out": int(held.sum())}
    return events, truth
