"""Online delivery state: frequency counters and spend, in-process or in Redis.

One interface, two backends. :class:`MemoryState` lives in the server process (the embedded
default); :class:`RedisState` is shared by every server process that points at the same
Redis, and makes each decision's check-and-record one atomic step (a Lua script), so several
processes serving at once never exceed a frequency cap, and never a budget by more than
one impression's price.

:meth:`try_serve` is that step: it refuses with the reason (``"frequency cap"``,
``"daily budget"``, ``"total budget"``), or records the impression against the person's cap
and adds its price to the campaign's spend for the day, in total, and (when ``hour`` names
one, for pacing) for the hour. Money is kept in
integer micro-yuan (no rounding drift).

Examples
--------
>>> s = MemoryState()
>>> [s.try_serve("p1", "c1", cap=2, window_s=86400, price=0.05, daily_budget=1.0,
...              total_budget=10.0, day="2026-10-01", now=1000.0 + i) for i in range(3)]
[None, None, 'frequency cap']
>>> s.spend("c1"), s.spend("c1", "2026-10-01"), s.frequency("p1", "c1", 86400, now=1003.0)
(0.1, 0.1, 2)
"""

from __future__ import annotations

import threading
from collections import deque

MICRO = 1_000_000


def _micro(x: float | None) -> int | None:
    return None if x is None else int(round(x * MICRO))


class MemoryState:
    """In-process state (one server process); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], deque[float]] = {}
        self._spend: dict[tuple[str, str], int] = {}  # (campaign, day or "") -> micro-yuan

    def try_serve(self, person: str, campaign: str, *, cap: int, window_s: float, price: float,
                  daily_budget: float | None, total_budget: float, day: str,
                  now: float, hour: str | None = None) -> str | None:
        p, daily, total = _micro(price), _micro(daily_budget), _micro(total_budget)
        with self._lock:
            seen = self._seen.setdefault((campaign, person), deque())
            while seen and seen[0] <= now - window_s:
                seen.popleft()
            if len(seen) >= cap:
                return "frequency cap"
            if daily is not None and self._spend.get((campaign, day), 0) + p > daily:
                return "daily budget"
            if self._spend.get((campaign, ""), 0) + p > total:
                return "total budget"
            seen.append(now)
            self._spend[(campaign, day)] = self._spend.get((campaign, day), 0) + p
            self._spend[(campaign, "")] = self._spend.get((campaign, ""), 0) + p
            if hour is not None:
                self._spend[(campaign, hour)] = self._spend.get((campaign, hour), 0) + p
            return None

    def spend(self, campaign: str, day: str | None = None) -> float:
        with self._lock:
            return self._spend.get((campaign, day or ""), 0) / MICRO

    def pacing_spend(self, campaign: str, day: str, hour: str) -> tuple[float, float]:
        """A campaign's spend today and in this hour."""
        with self._lock:
            return (self._spend.get((campaign, day), 0) / MICRO,
                    self._spend.get((campaign, hour), 0) / MICRO)

    def frequency(self, person: str, campaign: str, window_s: float, now: float) -> int:
        with self._lock:
            return sum(1 for t in self._seen.get((campaign, person), ()) if t > now - window_s)

    def restore_spend(self, campaign: str, day: str, day_spend: float, total: float) -> None:
        """Raise a campaign's spend to at least what the decision log says (after a
        restart); never lowers it."""
        with self._lock:
            for k, v in (((campaign, day), day_spend), ((campaign, ""), total)):
                self._spend[k] = max(self._spend.get(k, 0), _micro(v))

    def restore_seen(self, person: str, campaign: str, times: list[float],
                     window_s: float) -> None:
        """Recent impression times of a person for a campaign (after a restart), kept only
        when none are known."""
        with self._lock:
            if not self._seen.get((campaign, person)):
                self._seen[(campaign, person)] = deque(sorted(times))

    def first_time(self, key: str, ttl_s: float, now: float) -> bool:
        """True the first time ``key`` is seen within ``ttl_s`` (de-duplicates tracking)."""
        with self._lock:
            seen = getattr(self, "_once", None)
            if seen is None:
                seen = self._once = {}
            if len(seen) > 1_000_000:  # drop what has expired
                for k in [k for k, t in seen.items() if t <= now]:
                    del seen[k]
            until = seen.get(key)
            if until is not None and until > now:
                return False
            seen[key] = now + ttl_s
            return True

    def hit(self, key: str, limit: int, window_s: int, now: float) -> bool:
        """Count a hit on ``key`` in the fixed window holding ``now``; False once more than
        ``limit`` came in it (velocity limits)."""
        slot = (key, int(now // window_s))
        with self._lock:
            hits = getattr(self, "_hits", None)
            if hits is None or len(hits) > 1_000_000:
                hits = self._hits = {}
            hits[slot] = hits.get(slot, 0) + 1
            return hits[slot] <= limit


# KEYS: frequency zset, day spend, total spend, [hour spend]. ARGV: now, window, cap, price, daily (-1 none),
# total, member (unique), ttl of the day key.
_SERVE = """
local seen, dayk, totk = KEYS[1], KEYS[2], KEYS[3]
local now, window, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local price, daily, total = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', seen, '-inf', now - window)
if redis.call('ZCARD', seen) >= cap then return 'frequency cap' end
local d = tonumber(redis.call('GET', dayk) or '0')
if daily >= 0 and d + price > daily then return 'daily budget' end
local t = tonumber(redis.call('GET', totk) or '0')
if t + price > total then return 'total budget' end
redis.call('ZADD', seen, now, ARGV[7])
redis.call('EXPIRE', seen, math.ceil(window) + 60)
redis.call('INCRBY', dayk, price)
redis.call('EXPIRE', dayk, tonumber(ARGV[8]))
redis.call('INCRBY', totk, price)
if KEYS[4] then
  redis.call('INCRBY', KEYS[4], price)
  redis.call('EXPIRE', KEYS[4], tonumber(ARGV[8]))
end
return false
"""


_RAISE = """
local v = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < v then
  if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], v, 'EX', ARGV[2])
  else redis.call('SET', KEYS[1], v) end
end
return 0
"""


class RedisState:
    """State shared through Redis by several server processes.

    Parameters
    ----------
    url
        ``redis://host:port/db``.
    prefix
        Key prefix (tests use one each; deployments one per environment).
    """

    def __init__(self, url: str, *, prefix: str = "allscene:"):
        import itertools
        import os

        import redis

        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._serve = self.r.register_script(_SERVE)
        self._raise = self.r.register_script(_RAISE)
        self._ids = itertools.count()
        self._me = f"{os.getpid()}-{id(self)}"

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def try_serve(self, person: str, campaign: str, *, cap: int, window_s: float, price: float,
                  daily_budget: float | None, total_budget: float, day: str,
                  now: float, hour: str | None = None) -> str | None:
        daily = _micro(daily_budget)
        keys = [self._k("f", campaign, person), self._k("s", campaign, day),
                self._k("s", campaign)]
        if hour is not None:
            keys.append(self._k("s", campaign, hour))
        out = self._serve(
            keys=keys,
            args=[now, window_s, cap, _micro(price), -1 if daily is None else daily,
                  _micro(total_budget), f"{now}:{self._me}:{next(self._ids)}", 3 * 86400])
        return out or None

    def spend(self, campaign: str, day: str | None = None) -> float:
        key = self._k("s", campaign, day) if day else self._k("s", campaign)
        return int(self.r.get(key) or 0) / MICRO

    def pacing_spend(self, campaign: str, day: str, hour: str) -> tuple[float, float]:
        """A campaign's spend today and in this hour (one round trip)."""
        d, h = self.r.mget(self._k("s", campaign, day), self._k("s", campaign, hour))
        return int(d or 0) / MICRO, int(h or 0) / MICRO

    def frequency(self, person: str, campaign: str, window_s: float, now: float) -> int:
        return int(self.r.zcount(self._k("f", campaign, person), f"({now - window_s}", "+inf"))

    def restore_spend(self, campaign: str, day: str, day_spend: float, total: float) -> None:
        """Raise the shared spend to at least the log's (Redis may be ahead, or empty after
        its own restart); never lowers it."""
        self._raise(keys=[self._k("s", campaign, day)], args=[_micro(day_spend), 3 * 86400])
        self._raise(keys=[self._k("s", campaign)], args=[_micro(total), -1])

    def restore_seen(self, person: str, campaign: str, times: list[float],
                     window_s: float) -> None:
        """Recent impression times, kept only when Redis knows none for the pair."""
        key = self._k("f", campaign, person)
        if times and not self.r.exists(key):
            pipe = self.r.pipeline()
            pipe.zadd(key, {f"{t}:log:{i}": t for i, t in enumerate(times)})
            pipe.expire(key, int(window_s) + 60)
            pipe.execute()

    def first_time(self, key: str, ttl_s: float, now: float) -> bool:
        """True the first time ``key`` is seen within ``ttl_s`` (across processes)."""
        return bool(self.r.set(self._k("once", key), 1, nx=True, ex=max(1, int(ttl_s))))

    def hit(self, key: str, limit: int, window_s: int, now: float) -> bool:
        """Count a hit on ``key`` in the fixed window holding ``now`` (shared by every
        process); False once more than ``limit`` came in it (velocity limits)."""
        k = self._k("hit", key, str(int(now // window_s)))
        pipe = self.r.pipeline()
        pipe.incr(k)
        pipe.expire(k, int(window_s) + 5)
        return int(pipe.execute()[0]) <= limit

    def clear(self) -> None:
        """Delete every key under the prefix (tests)."""
        for key in self.r.scan_iter(self.prefix + "*", count=1000):
            self.r.delete(key)
