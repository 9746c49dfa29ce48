"""Frequency caps and spend, in-process and in the real local Redis: one suite, plus two
processes hammering one Redis at once."""

from __future__ import annotations

import multiprocessing as mp
import random
import uuid

import pytest

from allscene.storage.online import MemoryState, RedisState

DAY = "2026-10-01"


@pytest.fixture(params=["memory", "redis"])
def state(request):
    if request.param == "memory":
        yield MemoryState()
        return
    url = request.getfixturevalue("redis_url")
    s = RedisState(url, prefix=f"test:{uuid.uuid4().hex[:10]}:")
    yield s
    s.clear()


def serve(s, person, now, *, cap=2, window=3600.0, price=0.05, daily=1.0, total=10.0, day=DAY,
          campaign="c1"):
    return s.try_serve(person, campaign, cap=cap, window_s=window, price=price,
                       daily_budget=daily, total_budget=total, day=day, now=now)


def test_the_cap_counts_within_its_window(state):
    assert [serve(state, "p1", 100.0 + i) for i in range(3)] == [None, None, "frequency cap"]
    assert serve(state, "p2", 103.0) is None  # another person has their own count
    assert state.frequency("p1", "c1", 3600, now=200.0) == 2
    assert serve(state, "p1", 100.0 + 3600) is None  # the first impression left the window
    assert state.frequency("p1", "c1", 3600, now=3700.5) == 2  # 101 and 3700


def test_budgets_stop_spending_at_the_limit(state):
    got = [serve(state, f"p{i}", 10.0, daily=0.2) for i in range(6)]
    assert got == [None] * 4 + ["daily budget"] * 2
    assert state.spend("c1", DAY) == pytest.approx(0.2)
    got = [serve(state, f"q{i}", 10.0, daily=1.0, total=0.3, day="2026-10-02")
           for i in range(3)]
    assert got == [None, None, "total budget"]  # 0.2 spent yesterday, 0.3 in all
    assert state.spend("c1") == pytest.approx(0.3)


def test_spend_is_exact_in_micro_yuan(state):
    for i in range(1000):
        serve(state, f"p{i}", 1.0, price=0.0001, daily=None, total=100.0)
    assert state.spend("c1") == 0.1


def test_spend_can_be_restored_after_a_restart(state):
    state.restore_spend("c1", DAY, 0.95, 9.0)
    assert serve(state, "p1", 1.0) is None
    assert serve(state, "p2", 1.0) == "daily budget"
    assert state.spend("c1") == pytest.approx(9.05)
    state.restore_spend("c1", DAY, 0.5, 1.0)  # an older log never lowers what is known
    assert state.spend("c1") == pytest.approx(9.05)
    assert state.spend("c1", DAY) == pytest.approx(1.0)


def test_hourly_spend_is_kept_for_pacing(state):
    for i in range(3):
        state.try_serve(f"p{i}", "c1", cap=5, window_s=3600, price=0.5, daily_budget=None,
                        total_budget=10.0, day=DAY, now=1.0, hour=f"{DAY}T0{i % 2}")
    assert state.pacing_spend("c1", DAY, f"{DAY}T00") == (1.5, 1.0)
    assert state.pacing_spend("c1", DAY, f"{DAY}T01") == (1.5, 0.5)
    assert state.pacing_spend("c2", DAY, f"{DAY}T01") == (0.0, 0.0)


def test_recent_impressions_can_be_restored_for_the_cap(state):
    state.restore_seen("p1", "c1", [50.0, 60.0], 3600)
    assert serve(state, "p1", 100.0) == "frequency cap"
    state.restore_seen("p2", "c1", [50.0], 3600)
    assert serve(state, "p2", 100.0) is None
    state.restore_seen("p2", "c1", [50.0, 60.0], 3600)  # known already: not counted twice
    assert state.frequency("p2", "c1", 3600, now=100.0) == 2


def _hammer(url: str, prefix: str, seed: int, n: int, out) -> None:
    s = RedisState(url, prefix=prefix)
    rng = random.Random(seed)
    served = 0
    for i in range(n):
        person = f"p{rng.randrange(150)}"
        if s.try_serve(person, "c1", cap=3, window_s=86400, price=0.07, daily_budget=None,
                       total_budget=20.0, day=DAY, now=1000.0 + i / 1000) is None:
            served += 1
    out.put(served)


def test_two_processes_never_exceed_cap_or_budget(redis_url):
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(redis_url, prefix, seed, 800, out))
             for seed in (1, 2)]
    for p in procs:
        p.start()
    served = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    s = RedisState(redis_url, prefix=prefix)
    try:
        # 150 people x cap 3 = 450 possible; the budget allows 285 (20 / 0.07).
        assert sum(served) == 285
        assert s.spend("c1") == pytest.approx(285 * 0.07)
        assert s.spend("c1") <= 20.0
        assert max(s.frequency(f"p{i}", "c1", 86400, now=5000.0) for i in range(150)) <= 3
    finally:
        s.clear()
