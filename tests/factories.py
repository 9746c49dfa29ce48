"""Valid sample events of every kind, for tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

T0 = dt.datetime(2026, 10, 5, 0, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 10, 20, tzinfo=dt.UTC)

FIELDS: dict[str, dict[str, Any]] = {
    "search": {"query": "紧凑型轿车 推荐", "app": "browser"},
    "content_view": {"app": "news", "content_id": "c1", "iab_category": "11",
                     "title": "Compact cars", "duration_s": 42.0},
    "app_open": {"app": "music", "duration_s": 300.0},
    "purchase": {"order_id": "o1", "item": "milk", "amount": 59.9, "currency": "CNY",
                 "channel": "online"},
    "finance_activity": {"app": "wallet", "action": "card_payment", "amount": 10.0},
    "social_post": {"app": "weibo", "post_id": "p1", "topic": "#phone#"},
    "voice_command": {"utterance": "明天天气", "intent": "weather"},
    "login": {"account_id": "acc1", "imei_md5": "0" * 32, "oaid_sha256": "a" * 64},
    "pairing": {"peer_device_id": "band1", "peer_device_type": "band"},
    "profile": {"account_id": "acc1", "source": "account", "gender": "female",
                "birth_year": 1994},
    "location": {"ip": "10.1.2.3", "network": "wifi", "cell_id": "460-00-1-2",
                 "lat": 40.2, "lon": 116.2, "accuracy_m": 20.0},
    "wifi_connect": {"bssid": "bssid1"},
    "bluetooth_connect": {"peer_id": "car1", "peer_type": "car", "make": "Chevrolet",
                          "model": "Cavalier", "year": 2016},
    "steps": {"steps": 1200, "interval_s": 3600, "calories": 48.5},
    "workout": {"sport": "run", "distance_m": 5000.0, "duration_s": 1650.0},
    "heart_rate": {"bpm": 72},
    "tv_watch": {"genre": "sports", "duration_s": 1800.0, "channel": "CCTV5"},
    "device_state": {"state": "running", "metric": "pm25", "value": 35.0},
    "weather": {"city_code": "110100", "temp_c": 3.5, "condition": "snow", "aqi": 80,
                "humidity": 40.0},
    "ad_decision": {"request_id": "r1", "placement_id": "lock_screen", "outcome": "ad",
                    "campaign_id": "c1", "creative_id": "cr1", "advertiser_id": "a1"},
    "ad_impression": {"request_id": "r1", "placement_id": "lock_screen", "campaign_id": "c1",
                      "creative_id": "cr1", "advertiser_id": "a1", "cost": 0.02},
    "ad_click": {"request_id": "r1", "placement_id": "lock_screen", "campaign_id": "c1",
                 "creative_id": "cr1", "advertiser_id": "a1"},
    "ad_conversion": {"advertiser_id": "a1", "conversion_type": "lead", "campaign_id": "c1"},
    "engagement": {"activity_id": "act1", "advertiser_id": "a1", "action": "draw",
                   "request_id": "r1", "account_id": "acc1", "prize_id": "coupon_10",
                   "points": -10},
    "scene_enter": {"account_id": "acc1", "scene": "commute_taxi", "trigger_event_id": "e1"},
    "scene_exit": {"account_id": "acc1", "scene": "commute_taxi"},
    "consent": {"personalized_ads": False},
}
DEVICELESS = ("weather", "scene_enter", "scene_exit")


def event(kind: str, i: int = 0, /, **over: Any) -> dict[str, Any]:
    """A valid event of ``kind``; ``over`` replaces fields (``None`` removes one)."""
    e: dict[str, Any] = {"event_id": f"{kind}-{i}", "ts": (T0 + dt.timedelta(minutes=i)).isoformat(),
                         "kind": kind, "device_id": f"dev{i % 7}", "device_type": "phone"}
    if kind in DEVICELESS:
        del e["device_id"], e["device_type"]
    if kind in ("steps", "heart_rate", "workout"):
        e["device_type"] = "band"
    e.update(FIELDS[kind])
    for k, v in over.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e
