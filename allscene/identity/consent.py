"""Who may be targeted: a person's consent to personalized ads, from ``consent`` events.

A person opts out (or back in) on one of their devices; the choice holds for the person on
every device. The latest ``consent`` event across the person's devices decides; people with
none have not opted out.

Examples
--------
>>> import datetime as dt, ibis, pyarrow as pa
>>> t = dt.datetime(2026, 10, 5, tzinfo=dt.timezone.utc)
>>> events = ibis.memtable(pa.table({"kind": ["consent", "consent", "search"],
...     "device_id": ["p1", "b1", "p2"], "personalized_ads": [False, True, None],
...     "ts": [t, t + dt.timedelta(hours=1), t]}))
>>> devices = ibis.memtable(pa.table({"device_id": ["p1", "b1", "p2"],
...     "person_id": ["alice", "alice", "bob"]}))
>>> [(r["person_id"], r["personalized_ads"], r["as_of"].isoformat())
...  for r in person_consent(events, devices).to_pyarrow().to_pylist()]
[('alice', True, '2026-10-05T01:00:00+00:00')]
"""

from __future__ import annotations

import ibis
from ibis import _


def person_consent(events: ibis.Table, devices: ibis.Table) -> ibis.Table:
    """``person_id, personalized_ads, as_of``: each person's latest consent choice (only
    people who made one)."""
    consent = events.filter(_.kind == "consent")
    linked = consent.join(devices.filter(_.person_id.notnull()),
                          consent.device_id == devices.device_id).select(
        person_id=devices.person_id, personalized_ads=consent.personalized_ads, ts=consent.ts)
    w = ibis.window(group_by=linked.person_id, order_by=[ibis.desc(linked.ts),
                                                         linked.personalized_ads])
    latest = linked.mutate(r=ibis.row_number().over(w)).filter(_.r == 0)
    return latest.select("person_id", "personalized_ads", as_of=latest.ts)
