"""Shared pieces of the tag pipelines.

The rule that keeps DuckDB and Spark in step: **engines count, Python divides**. Pipelines
are Ibis expressions that return strings, integers and timestamps (counts, sums of integer
amounts, modes); shares, confidences and models are computed in Python from those, so both
engines hand the same numbers to the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import ibis
import pyarrow as pa
from ibis import _

TZ_HOURS = 8
"""Local time of the events' people (Asia/Shanghai, no daylight saving)."""


def local(ts: ibis.Value) -> ibis.Value:
    """A UTC timestamp moved to local wall-clock time (for hours, dates, weekdays)."""
    return ts + ibis.interval(hours=TZ_HOURS)


def personal(events: ibis.Table, devices: ibis.Table, kinds: Sequence[str]) -> ibis.Table:
    """Events of ``kinds`` from devices that belong to a person, with ``person_id``."""
    e = events.filter(_.kind.isin(list(kinds)))
    d = devices.filter(_.person_id.notnull()).select(dev=_.device_id, person_id=_.person_id)
    return e.join(d, e.device_id == d.dev).drop("dev")


def top(t: ibis.Table, keys: Sequence[str], value: str, weight: str = "w") -> ibis.Table:
    """Per ``keys``, the ``value`` with the largest total ``weight`` (ties: smallest value),
    with ``top_w`` (its weight) and ``all_w`` (the weight of every value)."""
    g = t.group_by([*keys, value]).agg(top_w=t[weight].sum())
    tot = g.group_by(list(keys)).agg(all_w=_.top_w.sum())
    w = ibis.window(group_by=[g[k] for k in keys], order_by=[ibis.desc(g.top_w), g[value]])
    best = g.mutate(r=ibis.row_number().over(w)).filter(_.r == 0).drop("r")
    return best.join(tot, list(keys))


def window_counts(t: ibis.Table, keys: Sequence[str], as_of: dt.datetime,
                  windows: Sequence[int]) -> ibis.Table:
    """Per ``keys``: ``n<d>`` = rows with ``ts`` in the ``d`` days up to ``as_of``, and
    ``last`` = the latest ``ts``."""
    t = t.filter(t.ts <= as_of)
    aggs = {f"n{d}": ibis.ifelse(t.ts > as_of - dt.timedelta(days=d), 1, 0).sum()
            for d in windows}
    return t.group_by(list(keys)).agg(last=t.ts.max(), **aggs)


ROWS_SCHEMA = pa.schema([("person_id", pa.string()), ("tag", pa.string()),
                        ("value", pa.string()), ("confidence", pa.float64()),
                        ("source", pa.string())])
"""Tag rows as the finishing code makes them (``as_of`` is added once, at the end)."""


class TagRows:
    """Tag rows collected one at a time, as columns.

    Examples
    --------
    >>> rows = TagRows()
    >>> rows.add("p1", "age", 31, 0.97531, "declared:account")
    >>> rows.table().to_pylist()
    [{'person_id': 'p1', 'tag': 'age', 'value': '31', 'confidence': 0.9753, 'source': 'declared:account'}]
    """

    def __init__(self) -> None:
        self.cols: dict[str, list] = {name: [] for name in ROWS_SCHEMA.names}

    def add(self, person_id: str, tag: str, value, confidence: float = 1.0,
            source: str = "observed") -> None:
        self.cols["person_id"].append(person_id)
        self.cols["tag"].append(tag)
        self.cols["value"].append(str(value))
        self.cols["confidence"].append(round(float(confidence), 4))
        self.cols["source"].append(source)

    def table(self) -> pa.Table:
        return pa.table(self.cols, schema=ROWS_SCHEMA)
