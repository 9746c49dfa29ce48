"""What the event log holds, as Ibis expressions (``Table -> Table``), engine-agnostic.

Examples
--------
>>> import ibis, pyarrow as pa, datetime as dt
>>> t = dt.datetime(2026, 10, 5, tzinfo=dt.timezone.utc)
>>> events = ibis.memtable(pa.table({"kind": ["search", "search", "steps"],
...     "device_id": ["a", "b", "a"], "device_type": ["phone", "phone", "band"], "ts": [t] * 3}))
>>> by_kind(events).to_pyarrow().to_pylist()[0]
{'category': 'active', 'kind': 'search', 'events': 2, 'devices': 2}
"""

from __future__ import annotations

import ibis
from ibis import _

from allscene.events.schema import CATEGORIES


def _category(kind: ibis.Value) -> ibis.Value:
    return kind.cases(*CATEGORIES.items(), else_="unknown")


def by_kind(events: ibis.Table) -> ibis.Table:
    """Events and distinct devices per kind, with the kind's category."""
    return (events.group_by(category=_category(events.kind), kind=events.kind)
            .agg(events=_.count(), devices=_.device_id.nunique())
            .order_by([_.category, ibis.desc(_.events)]))


def by_date(events: ibis.Table) -> ibis.Table:
    """Events and distinct devices per UTC date."""
    return (events.group_by(date=events.ts.date())
            .agg(events=_.count(), devices=_.device_id.nunique())
            .order_by(_.date))


def by_device_type(events: ibis.Table) -> ibis.Table:
    """Distinct devices and their events per device type (context events have none)."""
    return (events.filter(events.device_type.notnull())
            .group_by(device_type=events.device_type)
            .agg(devices=_.device_id.nunique(), events=_.count())
            .order_by(ibis.desc(_.devices)))


def summary(events: ibis.Table) -> ibis.Table:
    """One row: total events, devices, first and last timestamp."""
    return events.aggregate(events=_.count(), devices=_.device_id.nunique(),
                            first=_.ts.min(), last=_.ts.max())
