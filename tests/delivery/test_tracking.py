"""Tracking links: signed, expiring, counted once, on in-process state and on Redis."""

from __future__ import annotations

import uuid

import pytest

from allscene.delivery.tracking import Tracker, TrackingError, query_of
from allscene.storage.online import MemoryState, RedisState

NOW = 1_790_000_000
FIELDS = {"d": "dec-1", "c": "suv", "cr": "winter", "p": "phone_splash", "price": "0.05"}


@pytest.fixture(params=["memory", "redis"])
def states(request):
    """Two handles on one state: two server processes' view of it."""
    if request.param == "memory":
        s = MemoryState()
        yield s, s
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    a, b = RedisState(url, prefix=prefix), RedisState(url, prefix=prefix)
    yield a, b
    a.clear()


def link(tracker, kind="imp", **over):
    return query_of(tracker.url("https://ads.example/t/" + kind, kind, FIELDS | over, now=NOW))


def test_a_link_counts_once_even_on_another_server(states):
    one, two = Tracker(b"s3cret-key", states[0]), Tracker(b"s3cret-key", states[1])
    q = link(one)
    assert one.accept("imp", q, now=NOW + 5) == FIELDS
    with pytest.raises(TrackingError, match="already counted"):
        two.accept("imp", q, now=NOW + 6)
    # The click of the same decision is its own event.
    assert two.accept("click", link(one, "click"), now=NOW + 9)["d"] == "dec-1"


@pytest.mark.parametrize(("change", "says"), [
    (lambda q: q.update(price="0.01"), "bad signature"),
    (lambda q: q.update(c="other-campaign"), "bad signature"),
    (lambda q: q.update(exp=str(int(q["exp"]) + 10**6)), "bad signature"),
    (lambda q: q.pop("sig"), "missing signature"),
    (lambda q: q.update(sig="A" * 24), "bad signature"),
    (lambda q: q.update(extra="1"), "bad signature"),
])
def test_a_changed_or_forged_link_is_refused(states, change, says):
    t = Tracker(b"s3cret-key", states[0])
    q = link(t)
    change(q)
    with pytest.raises(TrackingError, match=says):
        t.accept("imp", q, now=NOW + 1)


def test_another_secret_or_kind_does_not_verify(states):
    q = link(Tracker(b"s3cret-key", states[0]))
    with pytest.raises(TrackingError, match="bad signature"):
        Tracker(b"other-key", states[0]).verify("imp", q, now=NOW)
    with pytest.raises(TrackingError, match="bad signature"):
        Tracker(b"s3cret-key", states[0]).verify("click", q, now=NOW)


def test_an_expired_link_is_refused(states):
    t = Tracker(b"s3cret-key", states[0], ttl_s=3600)
    q = link(t)
    assert t.verify("imp", q, now=NOW + 3599)["c"] == "suv"
    with pytest.raises(TrackingError, match="expired"):
        t.verify("imp", q, now=NOW + 3601)
