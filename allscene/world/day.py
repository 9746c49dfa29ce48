"""One day of one batch: every device's events and the true scenes, all vectorized.

Counts per (person, hour) are drawn from rates that follow the schedule (Poisson), expanded
with ``np.repeat`` into one row per event, and each event's content is chosen with per-row
weights. Timestamps are local (UTC+8) hours converted to UTC.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allscene.world.columns import EventChunks, join, num_str, opaque_id, pick
from allscene.world.geo import (
    MOBILE_PREFIXES,
    OFFICE_PREFIXES,
    OFFICES_PER_COUNTY,
    Geo,
    nearest_tower,
)
from allscene.world.gps import ping_speeds, tracked_runs
from allscene.world.population import CARS, INTENTS, INTERESTS, Population
from allscene.world.schedule import (
    COMMUTE,
    HOME,
    HOURS,
    HUB,
    OFFICE,
    RUN,
    SLEEP,
    TRIP,
    TRIP_SLEEP,
    build_schedule,
    scene_masks,
)
from allscene.world.vocab import load_vocab
from allscene.world.weather import Weather

HOUR_US = 3_600_000_000
LOCAL_OFFSET = dt.timedelta(hours=8)  # Asia/Shanghai, no DST
# Per place code: SLEEP HOME COMMUTE OFFICE OUT RUN TRIP TRIP_SLEEP HUB
PING_RATE = np.array([0.2, 0.8, 2.0, 1.0, 1.5, 1.0, 1.1, 0.2, 2.0])
GPS_P = np.array([0.05, 0.15, 0.6, 0.15, 0.4, 0.9, 0.35, 0.05, 0.5])
ACTIVE = np.array([0.0, 1.0, 1.2, 0.6, 0.8, 0.3, 1.0, 0.0, 1.3])
HR_ADD = np.array([-8, 2, 8, 4, 12, 60, 8, -8, 12])
APP_MEAN_S = {"mi_video": 600, "mi_music": 900, "comics": 500, "game_center": 900, "wechat": 180,
              "news": 240, "browser": 200, "weather": 20, "didi": 60, "transit_qr": 15,
              "amap": 300, "mi_fitness": 120}


def day_start_us(date: dt.date) -> int:
    """UTC microseconds of local midnight of ``date``."""
    t = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC) - LOCAL_OFFSET
    return int(t.timestamp()) * 1_000_000


def expand(count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, hour) of each event from a (rows, 24) count matrix."""
    flat = count.ravel()
    idx = np.repeat(np.arange(flat.size), flat)
    return idx // 24, idx % 24


def _cat(idx: np.ndarray, labels: list[str] | tuple[str, ...]) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype(np.int32)),
                                          pa.array(list(labels))).cast(pa.string())


def _choose(rng: np.random.Generator, w: np.ndarray) -> np.ndarray:
    c = np.cumsum(w, axis=1)
    return (c < rng.random(len(w))[:, None] * c[:, -1:]).sum(axis=1)


def _masked(arr: pa.Array, present: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(present), arr, pa.scalar(None, arr.type))


def simulate_day(pop: Population, geo: Geo, wx: Weather, *, seed: int, day: int,
                 date: dt.date, rest: bool) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Events (``ARROW_SCHEMA``) and true scenes of ``pop`` on local date ``date``."""
    rng = np.random.default_rng([seed, 2, pop.batch, day])
    t, n, d = pop.traits, pop.n, pop.devices
    voc = load_vocab()
    s = build_schedule(pop, geo, rng, day=day, rest=rest)
    t0 = day_start_us(date)
    ev = EventChunks()
    pl = s.place
    hh = pop.hh
    phone = d["phone"]

    def ts(h: np.ndarray, lo: int = 0, hi: int = HOUR_US) -> np.ndarray:
        return t0 + h.astype(np.int64) * HOUR_US + rng.integers(lo, hi, len(h))

    # --- location pings ------------------------------------------------------------------
    p, h = expand(rng.poisson(PING_RATE[pl]))
    m = len(p)
    code = pl[p, h].astype(np.int64)
    county = s.anchor_county[p, code]
    lat = s.anchor_lat[p, code].copy()
    lon = s.anchor_lon[p, code].copy()
    com = code == COMMUTE
    frac = rng.random(m)
    wlat, wlon = np.nan_to_num(t["work_lat"][p]), np.nan_to_num(t["work_lon"][p])
    lat = np.where(com, t["home_lat"][p] + frac * (wlat - t["home_lat"][p]), lat)
    lon = np.where(com, t["home_lon"][p] + frac * (wlon - t["home_lon"][p]), lon)
    county = np.where(com & (frac >= 0.5), np.maximum(t["work_county"][p], 0), county)
    run = code == RUN
    lat = lat + run * rng.normal(0, 0.006, m)
    lon = lon + run * rng.normal(0, 0.007, m)
    u = rng.random(m)
    home_wifi = ((code == SLEEP) | (code == HOME)) & t["uses_home_wifi"][p] & (u < 0.92)
    office_wifi = (code == OFFICE) & t["office_wifi"][p] & (u < 0.9)
    hotel_wifi = ((code == TRIP) | (code == TRIP_SLEEP)) & (u < 0.45)
    wifi = home_wifi | office_wifi | hotel_wifi
    wc, oc = np.maximum(t["work_county"][p], 0), np.maximum(t["office"][p], 0)
    hh_octet = rng.integers(2, 254, len(pop.hh_first))
    cur_city = geo.county_city[county]
    prefix = np.where(
        home_wifi, pop.hh_traits["home_prefix"][hh[p]],
        np.where(office_wifi, geo.office_prefix[wc, oc % OFFICE_PREFIXES],
                 np.where(hotel_wifi, geo.home_prefix[county, t["gid"][p] % 8],
                          geo.mobile_prefix[cur_city, t["carrier"][p],
                                            rng.integers(0, MOBILE_PREFIXES, m)])))
    octet = np.where(home_wifi, hh_octet[hh[p]],
                     np.where(office_wifi, geo.office_octet[wc, oc], rng.integers(2, 254, m)))
    ip = join(pick(geo.prefix, prefix), ".", num_str(octet))
    tower = nearest_tower(geo, county, lat, lon)
    has_cell = ~wifi | (rng.random(m) < 0.6)
    gps = rng.random(m) < GPS_P[code]
    acc = rng.uniform(4, 40, m)
    noise = acc / 111_000
    srng = np.random.default_rng([seed, 9, pop.batch, day])  # GPS speeds: allscene.world.gps
    speed = ping_speeds(pop, srng, p, code)
    ev.add("location", ts(h), pick(phone, p), "phone", ip=ip,
           network=_cat(np.where(wifi, 0, 1), ["wifi", "cellular"]),
           cell_id=_masked(pick(geo.tower_id, tower), has_cell),
           lat=pa.array(np.round(lat + rng.normal(0, 1, m) * noise, 6), mask=~gps),
           lon=pa.array(np.round(lon + rng.normal(0, 1, m) * noise, 6), mask=~gps),
           accuracy_m=pa.array(np.round(acc, 1), mask=~gps),
           speed_mps=pa.array(np.round(speed, 1), mask=~gps))

    tracked_runs(ev, pop, geo, s, srng, t0)

    # --- Wi-Fi connects: arriving home or at the office, and when the phone wakes ----------
    at_home = (pl == HOME) | (pl == SLEEP)
    prev_home = np.concatenate([at_home[:, :1], at_home[:, :-1]], axis=1)
    home_conn = at_home & t["uses_home_wifi"][:, None] & (
        ~prev_home | ((HOURS == t["wake"][:, None]) & (rng.random((n, 1)) < 0.6)))
    p, h = np.nonzero(home_conn)
    ev.add("wifi_connect", ts(h, 0, 600_000_000), pick(phone, p), "phone",
           bssid=pick(d["bssid"], hh[p]), ssid_hash=pick(d["ssid_hash"], hh[p]))
    office = pl == OFFICE
    prev_off = np.concatenate([np.zeros((n, 1), bool), office[:, :-1]], axis=1)
    p, h = np.nonzero(office & ~prev_off & t["office_wifi"][:, None])
    ob = np.maximum(t["work_county"][p], 0) * OFFICES_PER_COUNTY + np.maximum(t["office"][p], 0)
    ev.add("wifi_connect", ts(h, 0, 600_000_000), pick(phone, p), "phone",
           bssid=pick(geo.office_bssid, ob))

    # --- Bluetooth: phone to car on drives, phone to band in the morning -------------------
    drive = ((pl == COMMUTE) & (t["commute"][:, None] == 3)) | (
        s.out_drive[:, None] & (HOURS == s.out_start[:, None]))
    p, h = np.nonzero(drive)
    cm = t["car_model"][p]
    ev.add("bluetooth_connect", ts(h, 0, 900_000_000), pick(phone, p), "phone",
           peer_id=pick(d["car"], p), peer_type="car", make=pa.array(CARS["make"][cm]),
           model=pa.array(CARS["model"][cm]), year=t["car_year"][p])
    p = np.flatnonzero(s.band_worn)
    ev.add("bluetooth_connect", ts(np.minimum(t["wake"][p], 23)), pick(phone, p), "phone",
           peer_id=pick(d["band"], p), peer_type="band", make="Xiaomi", model="Smart Band 9")

    _band(ev, pop, s, rng, ts)
    scenes_hh = _home(ev, pop, geo, wx, s, rng, ts, day=day, rest=rest)
    _apps(ev, pop, s, rng, ts, voc)
    _active(ev, pop, s, rng, ts, voc, day=day, prefix=f"{seed}-{pop.batch}-{day}")
    _declared(ev, pop, seed=seed, day=day, t0=t0)

    scenes = scene_masks(pop, s, rest=rest, cold_city=wx.cold_snap[:, day],
                         hot_city=wx.heat_wave[:, day])
    scenes.update(scenes_hh)
    table = ev.table(f"w{seed}-{pop.batch:05d}-{day:03d}-")
    return table, _scene_table(pop, scenes, t0), ev.counts


def _band(ev: EventChunks, pop: Population, s, rng, ts) -> None:
    t, pl, n = pop.traits, s.place, pop.n
    band = pop.devices["band"]
    awake = (pl != SLEEP) & (pl != TRIP_SLEEP) & s.band_worn[:, None]
    p, h = np.nonzero(awake)
    code = pl[p, h]
    mode = t["commute"][p]
    base = np.array([0, 260, 0, 320, 1700, 0, 900, 0, 1500], dtype=float)[code]
    base = np.where(code == COMMUTE, np.array([300, 450, 1900, 180])[mode], base)
    base = base * np.array([0.85, 1.0, 1.2])[t["exercise"][p]]
    base = np.where(code == RUN, t["run_min"][p] * 170 + 500, base)
    base = base + np.where(h == s.walk_h[p], rng.integers(2500, 4000, len(p)), 0)
    steps = np.clip(np.round(base * rng.gamma(6, 1 / 6, len(p))), 0, 100_000).astype(np.int64)
    # Bands estimate active calories from steps and the wearer's build (kcal per step).
    kcal_per_step = np.where(t["gender"] == "male", 0.045, 0.037)[p] * rng.normal(1, 0.05, len(p))
    ev.add("steps", ts(h, 59 * 60_000_000, HOUR_US), pick(band, p), "band", steps=steps,
           interval_s=3600, calories=np.round(steps * kcal_per_step, 1))
    age = t["age"]
    rest_bpm = 72 - 7 * (t["exercise"] == 2) - 3 * (t["exercise"] == 1) + 0.08 * (age - 40) \
        + ((t["gid"] * 7919) % 11) - 5
    bpm = rest_bpm[p] + np.where(code == RUN, 0, HR_ADD[code]) + rng.normal(0, 4, len(p))
    ev.add("heart_rate", ts(h), pick(band, p), "band",
           bpm=np.clip(np.round(bpm), 35, 210).astype(np.int64))
    p, h = np.nonzero(((pl == SLEEP) | (pl == TRIP_SLEEP)) & s.band_worn[:, None] & (HOURS % 2 == 0))
    bpm = rest_bpm[p] - 8 + rng.normal(0, 3, len(p))
    ev.add("heart_rate", ts(h), pick(band, p), "band",
           bpm=np.clip(np.round(bpm), 35, 210).astype(np.int64))
    p = np.flatnonzero(s.run_today & s.band_worn & (pl[np.arange(n), s.run_h] == RUN))
    p = np.repeat(p, 4)
    h = s.run_h[p]
    bpm = 185 - 6 * t["pace"][p] + rng.normal(0, 6, len(p))
    ev.add("heart_rate", ts(h, 0, 3_000_000_000), pick(band, p), "band",
           bpm=np.clip(np.round(bpm), 35, 210).astype(np.int64))


def _home(ev: EventChunks, pop: Population, geo: Geo, wx: Weather, s, rng, ts, *, day: int,
          rest: bool) -> dict[str, np.ndarray]:
    """TV, speaker, purifier, vacuum, router events; returns household-driven scenes."""
    t, ht, d, pl = pop.traits, pop.hh_traits, pop.devices, s.place
    first = pop.hh_first
    n_hh = len(first)
    H = HOURS
    home_awake = pl == HOME
    hh_home = np.logical_or.reduceat(home_awake, first, axis=0)
    prime_home = np.logical_or.reduceat(home_awake & t["prime"][:, None], first, axis=0)
    sports_home = np.logical_or.reduceat(home_awake & t["sports_fan"][:, None], first, axis=0)
    old_home = np.logical_or.reduceat(home_awake & (t["age"] >= 55)[:, None], first, axis=0)
    kids = (ht["kids"] > 0)[:, None]
    prime_h = (H >= 19) & (H <= 21)
    day_h = (H >= 9) & (H <= 17)
    r = 1.0 if rest else 0.0
    rates = np.stack([
        0.5 * (prime_home & prime_h) + 0.2 * (old_home & day_h) + 0.03 * hh_home,  # drama
        0.2 * (prime_home & prime_h) + 0.1 * (hh_home & (H == 22)) + 0.05 * r * (hh_home & day_h),
        0.4 * (old_home & (H == 19)) + 0.08 * (hh_home & (H == 19)) + 0.04 * (hh_home & (H == 7)),
        (0.25 + 0.15 * r) * (sports_home & (H >= 19) & (H <= 22))
        + 0.15 * r * (sports_home & (H >= 14) & (H <= 18)),  # sports
        0.45 * (kids & hh_home & (((H >= 17) & (H <= 18)) | (r * ((H >= 8) & (H <= 10)) > 0))),
        0.05 * (hh_home & prime_h) + 0.06 * r * (hh_home & (H >= 14) & (H <= 22)),  # movie
    ], axis=2) * ht["tv"][:, None, None]
    sess = rng.random(rates.shape) < np.minimum(rates, 0.95)
    hi, h, g = np.nonzero(sess)
    ev.add("tv_watch", ts(h, 0, 2_400_000_000), pick(d["tv"], hi), "tv",
           genre=_cat(g, load_vocab().tv_genres),
           duration_s=np.round(np.where(g == 4, rng.uniform(900, 2400, len(g)),
                                        rng.uniform(900, 3600, len(g)))),
           channel=load_vocab().tv_channels.pick(g, rng.random(len(g))),
           iab_category=load_vocab().tv_iab.take(pa.array(g)))
    member_home = home_awake
    pm = lambda mask_hh: mask_hh[pop.hh] & member_home  # noqa: E731
    scenes = {
        "tv_prime_time": pm((sess[:, :, [0, 1, 2, 5]].any(axis=2)) & prime_h),
        "kids_tv": pm(sess[:, :, 4]),
        "watching_sports": pm(sess[:, :, 3]) & t["sports_fan"][:, None],
    }

    # Speaker: voice commands when someone is home.
    rate = ht["speaker"][:, None] * hh_home * (0.08 + 0.3 * ((H >= 7) & (H <= 8))
                                                + 0.2 * ((H >= 19) & (H <= 21)))
    hi, h = expand(rng.poisson(rate))
    voc = load_vocab()
    k = len(hi)
    morning, evening = (h < 10), (h >= 18)
    w = np.zeros((k, len(voc.intents)))
    idx = {x: i for i, x in enumerate(voc.intents)}
    w[:, idx["weather"]] = np.where(morning, 0.4, 0.1)
    w[:, idx["news"]] = np.where(morning, 0.2, 0.05)
    w[:, idx["alarm"]] = np.where(morning, 0.2, 0.1)
    w[:, idx["music"]] = 0.3
    w[:, idx["smart_home"]] = np.where(evening, 0.25, 0.15)
    w[:, idx["story"]] = np.where(evening, 0.4, 0.1) * (ht["kids"][hi] > 0)
    w[:, idx["sports"]] = 0.15 * sports_home[hi, h]
    it = _choose(rng, w)
    ev.add("voice_command", ts(h), pick(d["speaker"], hi), "speaker",
           utterance=voc.utterances.pick(it, rng.random(k)), intent=_cat(it, voc.intents))

    # Purifier: PM2.5 every two hours, following the city's air.
    hi, h = np.nonzero(ht["purifier"][:, None] & (H % 2 == 0))
    aqi = wx.aqi[ht["city"][hi], day, h]
    pm25 = np.clip(aqi * 0.75 * rng.uniform(0.25, 0.45, len(hi)) + rng.normal(0, 2, len(hi)), 1, 999)
    ev.add("device_state", ts(h), pick(d["air_purifier"], hi), "air_purifier", state="running",
           metric="pm25", value=np.round(pm25, 1))
    # Robot vacuum: a run most days, while people are out on workdays.
    hi = np.flatnonzero(ht["vacuum"] & (rng.random(n_hh) < 0.6))
    h = rng.integers(9, 12, len(hi)) if rest else rng.integers(10, 16, len(hi))
    start = ts(h, 0, 1_200_000_000)
    ev.add("device_state", start, pick(d["robot_vacuum"], hi), "robot_vacuum", state="cleaning")
    ev.add("device_state", start + rng.integers(45, 80, len(hi)) * 60_000_000,
           pick(d["robot_vacuum"], hi), "robot_vacuum", state="docked", metric="area_m2",
           value=np.round(rng.uniform(40, 120, len(hi)), 1))
    clean = np.zeros((n_hh, 24), bool)
    clean[hi, h] = True
    scenes["cleaning"] = clean[pop.hh]
    # Router: connected devices in the evening.
    hi = np.flatnonzero(ht["router"])
    home21 = np.add.reduceat((pl[:, 21] <= HOME).astype(np.int64), first)[hi]
    ev.add("device_state", ts(np.full(len(hi), 21)), pick(d["router"], hi), "router",
           state="online", metric="connected_devices",
           value=(home21 * rng.integers(1, 4, len(hi)) + 2).astype(float))
    # Phone battery low.
    p = np.flatnonzero(rng.random(pop.n) < 0.25)
    h = rng.integers(17, 23, len(p))
    ev.add("device_state", ts(h), pick(d["phone"], p), "phone", state="battery_low",
           metric="battery_pct", value=rng.integers(5, 21, len(p)).astype(float))
    return scenes


def _apps(ev: EventChunks, pop: Population, s, rng, ts, voc) -> None:
    t, pl = pop.traits, s.place
    phone = pop.devices["phone"]
    apps = voc.apps
    w = np.broadcast_to(voc.app_base, (pop.n, len(apps))).copy()
    has = voc.app_interest >= 0
    w[:, has] *= 1 + 1.5 * pop.interest[:, voc.app_interest[has]]
    w[:, apps.index("mi_fitness")] *= 1 + 3 * t["has_band"]
    p, h = expand(rng.poisson(t["app_rate"][:, None] * ACTIVE[pl]))
    a = _choose(rng, w[p] * voc.app_profile[:, h].T)
    app_names = list(apps) + ["didi", "transit_qr", "amap"]
    pc_ = pl == COMMUTE
    extra = []
    for app, mask, prob in (
            ("didi", pc_ & (t["commute"][:, None] == 1), 0.95),
            ("transit_qr", pc_ & (t["commute"][:, None] == 2), 0.9),
            ("amap", (pc_ & (t["commute"][:, None] == 3)) | (pl == HUB), 0.6),
            ("mi_fitness", pl == RUN, 0.8), ("mi_music", pl == RUN, 0.5)):
        q, g = np.nonzero(mask & (rng.random(mask.shape) < prob))
        extra.append((q, g, np.full(len(q), app_names.index(app))))
    p = np.concatenate([p] + [e[0] for e in extra])
    h = np.concatenate([h] + [e[1] for e in extra])
    a = np.concatenate([a] + [e[2] for e in extra])
    mean = np.array([APP_MEAN_S.get(x, 90) for x in app_names], dtype=float)
    dur = np.clip(np.round(rng.exponential(mean[a])), 1, 86_400)
    ev.add("app_open", ts(h), pick(phone, p), "phone", app=_cat(a, app_names), duration_s=dur)


def _topic_weights(pop: Population, voc, *, intent_w: float) -> np.ndarray:
    n = pop.n
    w = np.zeros((n, len(voc.topics)))
    ni = len(INTERESTS)
    w[:, :ni] = pop.interest + 0.04
    w[:, ni:ni + len(INTENTS)] = pop.intent * intent_w
    # Car fans now and then read about compact cars without planning to buy one.
    w[:, ni] += 0.02 * pop.interest[:, INTERESTS.index("cars")]
    w[:, voc.topics.index("weather")] = 0.3
    w[:, voc.topics.index("pop")] = 0.5
    return w


def _active(ev: EventChunks, pop: Population, s, rng, ts, voc, *, day: int, prefix: str) -> None:
    t, pl, n, d = pop.traits, s.place, pop.n, pop.devices
    phone = d["phone"]
    act = ACTIVE[pl]
    # Searches.
    p, h = expand(rng.poisson(t["search_rate"][:, None] * act))
    tw = _topic_weights(pop, voc, intent_w=5.0)
    top = _choose(rng, tw[p])
    ev.add("search", ts(h), pick(phone, p), "phone", query=voc.queries.pick(top, rng.random(len(p))),
           app=_cat(_choose(rng, np.tile([0.55, 0.35, 0.1], (len(p), 1))),
                    ["browser", "global_search", "app_store"]))
    # Content views.
    p, h = expand(rng.poisson(t["content_rate"][:, None] * act))
    cw = _topic_weights(pop, voc, intent_w=3.0)
    top = _choose(rng, cw[p])
    k = len(p)
    app = voc.content_apps.pick(top, rng.random(k))
    item = (200 * rng.random(k) ** 2).astype(np.int64)
    is_video = pc.equal(app, "mi_video").to_numpy(zero_copy_only=False)
    ev.add("content_view", ts(h), pick(phone, p), "phone", app=app,
           content_id=opaque_id("c", top, item),
           iab_category=voc.iab.pick(top, rng.random(k)),
           title=voc.titles.pick(top, rng.random(k)),
           duration_s=np.clip(np.round(rng.exponential(np.where(is_video, 420, 110))), 1, 86_400))

    # Purchases: online on any day, in a store during outings.
    cats = voc.item_categories
    ci = {c: i for i, c in enumerate(cats)}
    intr = pop.interest
    cw = np.zeros((n, len(cats))) + 0.1
    cw[:, ci["groceries"]] += 1.0
    cw[:, ci["food_delivery"]] += 1.2
    cw[:, ci["sports_gear"]] += intr[:, INTERESTS.index("sports")] + intr[:, INTERESTS.index("fitness")]
    cw[:, ci["beauty"]] += 1.5 * intr[:, INTERESTS.index("beauty")]
    cw[:, ci["kids"]] += 1.5 * intr[:, INTERESTS.index("kids")]
    cw[:, ci["electronics"]] += 0.5 * intr[:, INTERESTS.index("tech")] \
        + 3 * pop.intent[:, INTENTS.index("phone_upgrade")]
    cw[:, ci["travel"]] += 3 * pop.intent[:, INTENTS.index("travel_booking")]
    cw[:, ci["books"]] += intr[:, INTERESTS.index("comics")]
    cw[:, ci["apparel"]] += 0.6
    cw[:, ci["home"]] += 0.5
    p_buy = np.clip(0.08 + 0.04 * np.log(t["income"] / 6000), 0.02, 0.25)
    p_on = np.flatnonzero(rng.random(n) < p_buy)
    h_on = rng.integers(9, 23, len(p_on))
    store = s.out_today & (rng.random(n) < 0.55)
    p_st = np.flatnonzero(store)
    h_st = np.minimum(s.out_start[p_st] + 1, 23)
    for chan, p, h, no_online in (("online", p_on, h_on, False), ("retail_store", p_st, h_st, True)):
        w = cw[p].copy()
        if no_online:
            w[:, [ci["food_delivery"], ci["travel"]]] = 0
        c = _choose(rng, w)
        k = len(p)
        u = rng.random(k)
        cnt = voc.items.count[c]
        it = voc.items.offset[c] + np.minimum((u * cnt).astype(np.int64), cnt - 1)
        amount = voc.item_price[it] * rng.lognormal(0, 0.35, k) * (t["income"][p] / 8000) ** 0.3
        ev.add("purchase", ts(h), pick(phone, p), "phone",
               order_id=join(f"o{prefix}-{chan[0]}", "-", num_str(np.arange(k))),
               item=voc.items.flat.take(pa.array(it)), item_category=_cat(c, cats),
               amount=np.round(amount, 2), currency="CNY", channel=chan)

    # Finance and social.
    fin = intr[:, INTERESTS.index("finance")]
    p, h = expand(np.zeros((n, 24), np.int64) + (rng.random((n, 24)) < (0.005 + 0.02 * fin)[:, None]
                                                   * (act > 0)))
    k = len(p)
    act_i = rng.integers(0, len(voc.finance_actions), k)
    money = act_i >= 1
    amt = np.round(rng.lognormal(np.log(np.maximum(t["income"][p] * 0.1, 50)), 0.6, k), 2)
    ev.add("finance_activity", ts(h), pick(phone, p), "phone", app="mi_finance",
           action=voc.finance_actions.take(pa.array(act_i)),
           amount=pa.array(amt, mask=~money), currency="CNY")
    p_post = np.where(t["age"] < 35, 0.25, 0.1)
    p = np.flatnonzero(rng.random(n) < p_post)
    h = rng.integers(8, 24, len(p))
    top = _choose(rng, tw[p][:, :len(INTERESTS)] + 1e-3)
    k = len(p)
    ev.add("social_post", ts(h), pick(phone, p), "phone",
           app=voc.social_apps.take(pa.array(rng.integers(0, len(voc.social_apps), k))),
           post_id=join(f"s{prefix}-", num_str(np.arange(k))), topic=_cat(top, voc.topics),
           text=voc.titles.pick(top, rng.random(k)))

    # Logins, pairings, consent.
    login = np.ones(n, bool) if day == 0 else rng.random(n) < 0.03
    p = np.flatnonzero(login)
    ev.add("login", ts(np.minimum(t["wake"][p], 23)), pick(phone, p), "phone",
           account_id=pick(d["account"], p), imei_md5=pick(d["imei_md5"], p),
           imei_sha256=pick(d["imei_sha256"], p), oaid_md5=pick(d["oaid_md5"], p),
           oaid_sha256=pick(d["oaid_sha256"], p))
    ht, first = pop.hh_traits, pop.hh_first
    if day == 0:
        hi = np.flatnonzero(ht["tv"])
        ev.add("login", ts(np.full(len(hi), 19)), pick(d["tv"], hi), "tv",
               account_id=pick(d["account"], first[hi]))
        p = np.flatnonzero(t["has_band"])
        ev.add("pairing", ts(np.minimum(t["wake"][p], 23)), pick(phone, p), "phone",
               peer_device_id=pick(d["band"], p), peer_device_type="band",
               account_id=pick(d["account"], p))
        for kind, key in (("tv", "tv"), ("speaker", "speaker"), ("air_purifier", "purifier"),
                          ("robot_vacuum", "vacuum"), ("router", "router")):
            hi = np.flatnonzero(ht[key])
            ev.add("pairing", ts(np.full(len(hi), 20)), pick(phone, first[hi]), "phone",
                   peer_device_id=pick(d[kind], hi), peer_device_type=kind,
                   account_id=pick(d["account"], first[hi]))
    for flag, value in (("opt_out_day", False), ("opt_in_day", True)):
        p = np.flatnonzero(t[flag] == day)
        ev.add("consent", ts(rng.integers(9, 23, len(p))), pick(phone, p), "phone",
               personalized_ads=value)


def _declared(ev: EventChunks, pop: Population, *, seed: int, day: int, t0: int) -> None:
    """What people state about themselves (``profile`` events), on the day they do it.

    Who states what, and whether truthfully, is fixed per person (:func:`declarations`); each
    statement is sent once, on its day, from the person's phone.
    """
    rng = np.random.default_rng([seed, 6, pop.batch, day])
    d = pop.declared
    t = pop.traits
    for source, when in (("account", d["account_day"]), ("real_name", d["real_name_day"]),
                         ("survey", d["survey_day"])):
        p = np.flatnonzero(when == day)
        if not len(p):
            continue
        h = np.minimum(np.where(source == "account", t["wake"][p], rng.integers(9, 23, len(p))), 23)
        g = d[f"{source}_gender"][p]
        by = d[f"{source}_birth_year"][p]
        edu = d[f"{source}_education"][p]
        inc = d[f"{source}_income"][p]
        ev.add("profile", t0 + h.astype(np.int64) * HOUR_US + rng.integers(0, HOUR_US, len(p)),
               pick(pop.devices["phone"], p), "phone", account_id=pick(pop.devices["account"], p),
               source=source, gender=pa.array(np.where(g == "", None, g), pa.string()),
               birth_year=pa.array(by, mask=by < 0),
               education=pa.array(np.where(edu == "", None, edu), pa.string()),
               income_monthly=pa.array(inc, mask=np.isnan(inc)))


def _scene_table(pop: Population, scenes: dict[str, np.ndarray], t0: int) -> pa.Table:
    names = list(scenes)
    ps, hs, ks = [], [], []
    for k, name in enumerate(names):
        p, h = np.nonzero(scenes[name])
        ps.append(p)
        hs.append(h)
        ks.append(np.full(len(p), k, np.int32))
    p, h, k = np.concatenate(ps), np.concatenate(hs), np.concatenate(ks)
    order = np.lexsort((k, h, p))
    p, h, k = p[order], h[order], k[order]
    return pa.table({
        "person_id": pick(pop.person_id, p),
        "ts": pa.array(t0 + h.astype(np.int64) * HOUR_US).cast(pa.timestamp("us", tz="UTC")),
        "scene": _cat(k, names),
    })
