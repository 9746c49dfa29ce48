"""The names a condition may read, and how the kernel holds them (see :mod:`allscene.moments.compile`)."""

from __future__ import annotations

CONDITIONS = ("sunny", "cloudy", "overcast", "rain", "snow", "fog", "haze")
PLACES = ("home", "work", "other", "unknown")
DAY_TYPES = ("workday", "restday")
NETWORKS = ("wifi", "cellular")
# Per person, the engine keeps one row of integers (``S[p, F_...]``): strings as codes of the
# catalog's string table, -1 for unknown. See :mod:`allscene.moments.kernel`.
F_PLACE, F_MOVED, F_NET, F_CITY, F_HOME, F_AWAY, F_TRIP, F_WEND, F_HOUR, F_NEXT = range(10)
N_FIELDS = 10
# name: (type, allowed values, may be unknown, code, code that is true when it is known).
# Code reads the kernel's arrays: ``cal[hi]`` the local hour's calendar row (hour, weekday,
# mday, month, day type, holiday, first rest day), ``S[p]`` the person's row, ``W`` the
# weather of their city (NaN when unknown).
VARS: dict[str, tuple[str, tuple[str, ...] | None, bool, str, str]] = {
    "hour": ("int", None, False, "cal[hi, 0]", ""),
    "minute": ("int", None, False, "((t // 60000000 + 480) % 60)", ""),
    "weekday": ("int", None, False, "cal[hi, 1]", ""),
    "mday": ("int", None, False, "cal[hi, 2]", ""),
    "month": ("int", None, False, "cal[hi, 3]", ""),
    "day": ("str", DAY_TYPES, False, "cal[hi, 4]", ""),
    "holiday": ("bool", None, False, "(cal[hi, 5] != 0)", ""),
    "first_rest_day": ("bool", None, False, "(cal[hi, 6] != 0)", ""),
    "place": ("str", PLACES, False, f"S[p, {F_PLACE}]", ""),
    "place_changed": ("bool", None, False, f"(S[p, {F_MOVED}] != 0)", ""),
    "usual_work_end": ("int", None, True, f"S[p, {F_WEND}]", f"S[p, {F_WEND}] != -1"),
    "hours_past_work_end": ("int", None, True, f"(cal[hi, 0] - S[p, {F_WEND}])",
                            f"S[p, {F_WEND}] != -1"),
    "network": ("str", NETWORKS, True, f"S[p, {F_NET}]", f"S[p, {F_NET}] != -1"),
    "city": ("str", None, True, f"S[p, {F_CITY}]", f"S[p, {F_CITY}] != -1"),
    "away": ("bool", None, False, f"(S[p, {F_AWAY}] != 0)", ""),
    "trip_start_day": ("str", DAY_TYPES, True, f"S[p, {F_TRIP}]", f"S[p, {F_TRIP}] != -1"),
    "weather.temp_c": ("float", None, True, "W[0]", "W[0] == W[0]"),
    "weather.condition": ("str", CONDITIONS, True, "W[1]", "W[1] == W[1]"),
    "weather.aqi": ("float", None, True, "W[2]", "W[2] == W[2]"),
    "weather.humidity": ("float", None, True, "W[3]", "W[3] == W[3]"),
    "weather.temp_change_24h": ("float", None, True, "W[4]", "W[4] == W[4]"),
    "weather.anomaly": ("float", None, True, "W[5]", "W[5] == W[5]"),
}
GROUPS = {"place": "place", "place_changed": "place", "network": "network", "city": "city",
          "away": "city", "trip_start_day": "city", "usual_work_end": "time",
          "hours_past_work_end": "time"}
"""What change of context re-evaluates a scene reading a variable (default: the hour)."""
TIME, PLACE, NETWORK, CITY = 1, 2, 4, 8
_GROUP_BITS = {"time": TIME, "place": PLACE, "network": NETWORK, "city": CITY}
