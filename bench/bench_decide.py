"""Decision latency in-process: 1,000 live campaigns over the placement catalog.

Each request draws a placement and a device among 10,000,000 people; the person behind it
(county, scenes, opt-out, and membership in audiences of millions of people, held as Roaring
bitmaps) comes from the same :class:`~allscene.delivery.viewers.Directory` the server uses,
inside the timed call. Campaigns target mixes of counties, scenes, audiences, hours and
device types, with caps, budgets, pacing, holdouts and weather rules on creatives. Printed:
decision latency p50 and p99 (goal p99 < 1 ms), beside the same request on a placement with
no campaigns in the same run (the fixed cost of a request).

Run: ``python bench/bench_decide.py [--campaigns 1000] [--requests 50000]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time

import numpy as np
from pyroaring import BitMap
from rich.console import Console
from rich.progress import track
from rich.table import Table

from allscene.delivery.campaigns import parse_campaign
from allscene.delivery.decide import Decider, Request
from allscene.delivery.tracking import Tracker
from allscene.delivery.viewers import Directory
from allscene.media.placements import load_placements
from allscene.storage.online import MemoryState

T0 = dt.datetime(2026, 10, 12, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SCENES = ["commute_drive", "commute_transit", "tv_prime_time", "running", "at_office"]
COUNTIES = [f"1101{i:02d}" for i in range(1, 17)]
AUDIENCES_PER_ADVERTISER = 2


def creative_for(p, rng: random.Random) -> dict:
    f = p.formats[0]
    cr = {"id": "c0", "format": f.kind, "url": "https://cdn.example/a"}
    if f.sizes:
        cr["w"], cr["h"] = f.sizes[0]
    if f.kind in ("video", "audio"):
        cr["duration_s"] = f.min_duration_s or 5
        cr["mime"] = f.mimes[0]
    if f.kind == "text":
        cr = {"id": "c0", "format": "text", "text": "hi"}
    if rng.random() < 0.3:
        cr["rule"] = "weather.temp_c < 10"
        return [cr, dict(cr, id="c1", rule=None)]
    return [cr]


def build(n: int, placements, rng: random.Random) -> list:
    out = []
    ps = list(placements)
    for i in range(n):
        p = rng.choice(ps)
        t: dict = {"placements": [p.id]}
        if rng.random() < 0.5:
            t["counties"] = rng.sample(COUNTIES, 4)
        if rng.random() < 0.3:
            t["scenes"] = rng.sample(SCENES, 2)
        if rng.random() < 0.4:
            t["audiences"] = [f"aud{rng.randrange(AUDIENCES_PER_ADVERTISER)}"]
        if rng.random() < 0.2:
            t["hours"] = sorted(rng.sample(range(24), 12))
        out.append((f"adv{i % 50}", parse_campaign({
            "id": f"c{i}", "name": f"c{i}", "pacing": rng.choice(["even", "asap"]),
            "flights": [{"start": "2026-10-01T00:00:00+08:00",
                         "end": "2026-11-01T00:00:00+08:00"}],
            "budget": {"total": 1e7, "daily": 1e6},
            "bid": rng.choice([{"type": "cpm", "amount": round(p.floor_cny * rng.uniform(1, 2), 2)},
                               {"type": "cpc", "amount": round(rng.uniform(1, 8), 2)}]),
            "targeting": t, "creatives": creative_for(p, rng), "holdout": 0.1,
            "frequency_cap": {"impressions": 5, "per_hours": 24}})))
    return out


def audiences(campaigns, people: int, seed: int) -> dict:
    """A bitmap of rows for every audience a campaign targets: 20% to 100% of everyone."""
    nrng = np.random.default_rng(seed)
    wanted = sorted({(adv, a) for adv, c in campaigns for a in c.targeting.audiences})
    return {pair: BitMap(np.flatnonzero(nrng.random(people) < nrng.uniform(0.2, 1.0))
                         .astype(np.uint32)) for pair in track(wanted, "audience bitmaps")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--campaigns", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--people", type=int, default=10_000_000)
    args = ap.parse_args()
    rng = random.Random(7)
    placements = load_placements()
    state = MemoryState()
    d = Decider(placements, state, Tracker(b"bench-secret", state), base_url="https://a.example")
    campaigns = build(args.campaigns, placements, rng)
    indexed = d.load(campaigns)
    empty = Decider(placements, MemoryState(), Tracker(b"bench-secret", state),
                    base_url="https://a.example")
    empty.load([])
    with Console(stderr=True).status(f"a directory of {args.people:,} people"):
        people = [f"p{i}" for i in range(args.people)]
        directory = Directory({f"d{i}": p for i, p in enumerate(people)}, people,
                              county={p: COUNTIES[i % len(COUNTIES)]
                                      for i, p in enumerate(people)},
                              opted_out=people[::33],
                              scenes_of=lambda p, t: frozenset({SCENES[hash(p) % 5]}))
    bitmaps = audiences(campaigns, args.people, 7)
    directory.set_audiences(bitmaps)
    sizes = sorted(len(b) for b in bitmaps.values())
    ids = [p.id for p in placements]
    reqs = [(Request(rng.choice(ids), f"d{rng.randrange(args.people)}",
                     T0 + dt.timedelta(seconds=i), {"temp_c": rng.uniform(-5, 30)}))
            for i in range(args.requests)]
    lat, base, ads = [], [], 0
    for r in reqs:
        t = time.perf_counter_ns()
        ads += d.decide(r, directory.viewer(r.device_id, r.ts)).outcome == "ad"
        lat.append(time.perf_counter_ns() - t)
        t = time.perf_counter_ns()
        empty.decide(r, directory.viewer(r.device_id, r.ts))
        base.append(time.perf_counter_ns() - t)
    lat.sort()
    base.sort()
    q = lambda xs, f: xs[int(len(xs) * f)] / 1000  # noqa: E731 - µs at a quantile
    tab = Table(title=f"decisions in-process: {args.campaigns:,} campaigns "
                      f"({indexed:,} placement entries), {args.requests:,} requests; "
                      f"{len(bitmaps)} audiences of {sizes[0]:,} to {sizes[-1]:,} people "
                      f"among {args.people:,}")
    for col in ("measure", "value", "baseline: no campaigns", "ratio", "goal"):
        tab.add_column(col, justify="left" if col == "measure" else "right")
    tab.add_row("p50", f"{q(lat, 0.5):.0f} µs", f"{q(base, 0.5):.0f} µs",
                f"{q(lat, 0.5) / q(base, 0.5):.1f}x", "")
    tab.add_row("p99", f"{q(lat, 0.99):.0f} µs", f"{q(base, 0.99):.0f} µs",
                f"{q(lat, 0.99) / q(base, 0.99):.1f}x", "< 1,000 µs")
    tab.add_row("mean", f"{statistics.mean(lat) / 1000:.0f} µs", "", "", "")
    tab.add_row("ads served", f"{ads:,} ({ads / len(reqs):.0%})", "", "", "")
    Console().print(tab)


if __name__ == "__main__":
    main()
