"""Simulated campaign days: the world's people meet the real decision and engagement engines.

For each day, every moment a person opens a screen or speaks to a speaker in the world's own
event log (``world/events``: app opens, TV sessions, voice commands, band step counts)
becomes an **ad opportunity** on the placement that surface offers (the video app's
pre-roll, the weather app's card, the TV's boot screen...). In time order, each is sent to
the ad server (:meth:`allscene.delivery.server.AdServer.decide`, the engine behind
``POST /v1/decide``) with the weather where the person is. When an ad comes back, the
impression link is fetched, and the person's hidden model (:mod:`allscene.world.respond`)
decides whether they click (the click link is fetched), and then whether they convert: the
landing page posts the conversion back with its signed token (``/t/conv``), and the
advertiser's app reports next-day opens as ``retention`` conversions. Where a placement is
an entry point of a live activity, the engagement engine shows it, and people who take part
play, draw, open envelopes, enter the codes on what they bought or report their runs, as the
activity offers (:mod:`allscene.world.players`).

Everything the platform learns comes back as events through the same paths as in
production; this module only plays the people. Counts of what happened are returned per day
for progress, never used by the platform.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from allscene.world.players import Players
from allscene.world.respond import Responders, Wearout

APP_PLACEMENTS = {"mi_video": ("phone_video_preroll", "phone_video"),
                  "mi_music": ("phone_music",), "browser": ("phone_browser",),
                  "news": ("phone_news", "phone_feed"), "weather": ("phone_weather",),
                  "security_center": ("phone_security_center",),
                  "calendar": ("phone_calendar_card",), "comics": ("phone_feed",),
                  "app_store": ("phone_focus_image",), "weibo": ("phone_trending_words",),
                  "game_center": ("phone_focus_image",), "mi_fitness": ("phone_feed",)}
"""Which placements opening each app offers (one is drawn per open)."""
SPLASH_P = 0.25       # an app open that shows a splash screen first
UNLOCK_GAP_S = 1800   # an app open this long after the last one starts with an unlock
SEARCH_BANNER_P = 0.3
DAY = dt.timedelta(days=1)


@dataclass
class DayCounts:
    """What one simulated day produced (for progress lines)."""

    opportunities: int = 0
    ads: int = 0
    clicks: int = 0
    conversions: Counter = field(default_factory=Counter)
    shown: int = 0
    took_part: int = 0
    codes_handed: int = 0


class CampaignDays:
    """Plays the world's people against an ad server and an engagement engine, day by day.

    Parameters
    ----------
    world_dir
        The generated world (events and truth).
    ads
        An :class:`~allscene.delivery.server.AdServer` (its journal is flushed into the
        event log after each day).
    engagement
        An :class:`~allscene.engagement.service.Engagement`, or None.
    emit
        Stores events the advertisers report themselves (retention opens, leads from
        activities, brand searches): a callable taking a list of event dicts.
    seed
        The replay's seed.
    """

    def __init__(self, world_dir: str | Path, ads, engagement=None, *, emit, seed: int = 7):
        self.world = Path(world_dir)
        self.ads, self.engagement, self.emit = ads, engagement, emit
        self.people = Responders(self.world, seed=seed)
        self.rng = np.random.default_rng([seed, 4242])
        devices = pq.read_table(self.world / "truth" / "devices.parquet",
                                columns=["device_id", "device_type", "person_id"])
        self.person_of = dict(zip(devices.column("device_id").to_pylist(),
                                  devices.column("person_id").to_pylist(), strict=True))
        people = pq.read_table(self.world / "truth" / "people.parquet",
                               columns=["person_id", "city_code"])
        self.city_of = dict(zip(people.column("person_id").to_pylist(),
                                people.column("city_code").to_pylist(), strict=True))
        self._events = ds.dataset(self.world / "events", format="parquet")
        self.seen = Wearout()  # (person, campaign) impressions remembered
        self.clicked: dict[tuple[str, str], dt.date] = {}  # (person, campaign) -> last click day
        self.first_seen: dict[tuple[str, str], dt.datetime] = {}  # (person, advertiser)
        self.players = Players(self.world, engagement, ads.directory, self.people,
                               emit=emit, seed=seed) if engagement is not None else None
        self._retention: list[dict[str, Any]] = []
        self._seq = 0

    # --- the day's surfaces ----------------------------------------------------------------

    def opportunities(self, day: dt.date) -> pa.Table:
        """``ts, device_id, device_type, placement`` of every ad opportunity of a (UTC+8
        local) day, in time order."""
        t0 = dt.datetime.combine(day, dt.time(), dt.UTC) - dt.timedelta(hours=8)
        f = (pc.field("ts") >= t0) & (pc.field("ts") < t0 + DAY) & pc.field("kind").isin(
            ["app_open", "tv_watch", "voice_command", "steps"])
        ev = self._events.to_table(columns=["ts", "kind", "device_id", "device_type", "app"],
                                   filter=f).sort_by([("device_id", "ascending"),
                                                      ("ts", "ascending")])
        ts = ev.column("ts").to_pylist()
        kind, dev = ev.column("kind").to_pylist(), ev.column("device_id").to_pylist()
        dtype, app = ev.column("device_type").to_pylist(), ev.column("app").to_pylist()
        r = self.rng.random((len(ts), 3))
        out_ts, out_dev, out_type, out_p = [], [], [], []

        def add(t, d, typ, p):
            out_ts.append(t)
            out_dev.append(d)
            out_type.append(typ)
            out_p.append(p)

        last: dict[str, dt.datetime] = {}
        tv_booted: set[str] = set()
        for i in range(len(ts)):
            t, d, k = ts[i], dev[i], kind[i]
            if k == "app_open":
                prev = last.get(d)
                last[d] = t
                if prev is None or (t - prev).total_seconds() > UNLOCK_GAP_S:
                    add(t - dt.timedelta(seconds=2), d, "phone", "phone_lock_screen")
                if r[i, 0] < SPLASH_P:
                    add(t, d, "phone", "phone_splash")
                options = APP_PLACEMENTS.get(app[i])
                if options:
                    add(t + dt.timedelta(seconds=5), d, "phone",
                        options[int(r[i, 1] * len(options))])
                if app[i] == "browser" and r[i, 2] < SEARCH_BANNER_P:
                    add(t + dt.timedelta(seconds=8), d, "phone", "phone_search_banner")
            elif k == "tv_watch":
                if d not in tv_booted:
                    tv_booted.add(d)
                    add(t - dt.timedelta(seconds=20), d, "tv", "tv_boot")
                add(t, d, "tv", "tv_preroll")
            elif k == "voice_command" and r[i, 0] < 0.3:
                add(t + dt.timedelta(seconds=3), d, "speaker", "speaker_spoken")
            elif k == "steps" and r[i, 0] < 0.15:
                add(t, d, dtype[i] or "band", "band_notification")
        out = pa.table({"ts": pa.array(out_ts, pa.timestamp("us", tz="UTC")),
                        "device_id": out_dev, "device_type": out_type, "placement": out_p})
        return out.sort_by("ts")

    def temperatures(self, day: dt.date) -> dict[tuple[str, int], float]:
        """``(city_code, UTC epoch hour) -> temp_c`` of a local day (and the hours around)."""
        t0 = dt.datetime.combine(day, dt.time(), dt.UTC) - dt.timedelta(hours=9)
        f = (pc.field("kind") == "weather") & (pc.field("ts") >= t0) & \
            (pc.field("ts") < t0 + DAY + dt.timedelta(hours=2))
        wx = self._events.to_table(columns=["ts", "city_code", "temp_c"], filter=f)
        hours = (pc.divide(pc.cast(pc.cast(wx.column("ts"), pa.int64()), pa.int64()),
                           3_600_000_000)).to_pylist()
        return {(c, h): v for c, h, v in zip(wx.column("city_code").to_pylist(), hours,
                                             wx.column("temp_c").to_pylist(), strict=True)}

    # --- one day ---------------------------------------------------------------------------

    def run_day(self, day: dt.date, *, on_progress=None) -> DayCounts:
        """Play one local day; returns what it produced."""
        counts = DayCounts()
        opp = self.opportunities(day)
        temps = self.temperatures(day)
        self._flush_retention(day, counts)
        ts_l, dev_l = opp.column("ts").to_pylist(), opp.column("device_id").to_pylist()
        typ_l, pl_l = opp.column("device_type").to_pylist(), opp.column("placement").to_pylist()
        entry_points = self.players.entry_points() if self.players else set()
        if self.players:
            self.players.purchases(day, self._events, counts)
        for i in range(len(ts_l)):
            t, device, placement = ts_l[i], dev_l[i], pl_l[i]
            person = self.person_of.get(device)
            if person is None or person not in self.people:
                continue
            temp = temps.get((self.city_of.get(person), int(t.timestamp() // 3600)))
            counts.opportunities += 1
            if self.players:
                self.players.until(t, counts)
            if placement in entry_points:
                self.players.at_entry(placement, person, device, typ_l[i], t, temp, counts)
            d = self.ads.decide(placement, device, ts=t,
                                weather={"temp_c": temp} if temp is not None else None)
            if d.outcome == "ad":
                self._impression(d, person, placement, t, temp, day, counts)
            if on_progress and i % 5000 == 0:
                on_progress(i, len(ts_l))
        return counts

    def _impression(self, d, person, placement, t, temp, day, counts: DayCounts) -> None:
        counts.ads += 1
        key = (person, d.campaign)
        self.first_seen.setdefault((person, d.advertiser), t)
        self.ads.track("imp", _query(d.imp_url), now=t + dt.timedelta(seconds=1))
        topics = tuple((d.creative or {}).get("topics") or ())
        yesterday = self.clicked.get(key) == day - DAY
        p = self.people.p_click(person, placement, topics, temp_c=temp,
                                seen=self.seen.at(key, t.timestamp()), clicked_yesterday=yesterday)
        self.seen.add(key, t.timestamp())
        out = self.people.respond(person, p)
        if not out.click:
            return
        counts.clicks += 1
        self.clicked[key] = day
        at = t + dt.timedelta(seconds=float(self.rng.uniform(3, 40)))
        fields = self.ads.track("click", _query(d.click_url), now=at)
        for kind, happened in (("lead", out.lead), ("activation", out.activation),
                               ("purchase", out.purchase)):
            if happened:
                when = at + dt.timedelta(minutes=float(self.rng.uniform(1, 90)))
                token = self.ads.conversion_token(fields, now=when)
                self.ads.convert(token, kind, now=when)
                counts.conversions[kind] += 1
        if out.retained:
            nxt = at + DAY + dt.timedelta(hours=float(self.rng.uniform(-3, 3)))
            self._retention.append(self._event("ad_conversion", nxt, fields.get("dv") or "",
                                               advertiser_id=d.advertiser,
                                               conversion_type="retention"))

    def _flush_retention(self, day: dt.date, counts: DayCounts) -> None:
        if self._retention:
            self.emit(self._retention)
            counts.conversions["retention"] += len(self._retention)
            self._retention = []

    # --- helpers ---------------------------------------------------------------------------

    def _rid(self, prefix: str) -> str:
        self._seq += 1
        return f"sim-{prefix}-{self._seq}"

    def _event(self, kind: str, ts: dt.datetime, device: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        return {"event_id": f"sim-{kind}-{self._seq}", "ts": ts.isoformat(), "kind": kind,
                "device_id": device, "device_type": "phone", **fields}


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
