"""Validation of events given as JSON: one line (or array item) at a time, with reasons.

A rejection names the event (line number, ``event_id`` and ``kind`` when they could be read),
the field and the reason, e.g. ``line 7 (event_id=e7, kind=search): query: Field required``.

Examples
--------
>>> v = JsonValidator(now=dt.datetime(2026, 10, 6, tzinfo=dt.timezone.utc))
>>> ok = v.validate_line(b'{"event_id":"e1","ts":"2026-10-05T08:00:00Z","kind":"search",'
...                      b'"device_id":"d1","device_type":"phone","query":"suv","app":"browser"}')
>>> ok.event.kind, ok.errors
('search', [])
>>> bad = v.validate_line(b'{"event_id":"e2","ts":"2026-10-05T08:00:00Z","kind":"search",'
...                       b'"device_id":"d1","device_type":"phone","app":"browser"}')
>>> bad.errors
['query: Field required']
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa
from pydantic import ValidationError

from allscene.events.schema import ARROW_SCHEMA, EVENT_ADAPTER, KINDS, EventBase

MAX_EVENT_BYTES = 64 * 1024
"""An event larger than this (its JSON line, or its string fields in a Parquet row) is refused."""
MAX_FUTURE = dt.timedelta(hours=24)
"""Allowance for device clock skew: events dated later than now + this are refused."""


@dataclass
class Checked:
    """The outcome of validating one input record."""

    raw: bytes
    event: EventBase | None = None
    errors: list[str] = field(default_factory=list)
    event_id: str | None = None
    kind: str | None = None

    def describe(self, line: int) -> str:
        who = ", ".join(f"{k}={v}" for k, v in (("event_id", self.event_id), ("kind", self.kind))
                        if v)
        return f"line {line}{f' ({who})' if who else ''}: " + "; ".join(self.errors)


def _format(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors(include_url=False):
        loc = list(e["loc"])
        if e["type"] == "union_tag_invalid":
            out.append(f"kind: unknown kind {e['input'].get('kind')!r}; expected one of "
                       + ", ".join(KINDS))
            continue
        if e["type"] == "union_tag_not_found":
            out.append("kind: Field required")
            continue
        if loc and loc[0] in KINDS:
            loc = loc[1:]  # the discriminator tag pydantic puts first
        where = ".".join(str(p) for p in loc) or "event"
        msg = e["msg"]
        if e["type"] in ("one_of", "together"):
            out.append(msg if (msg := e["msg"]) else where)
            continue
        if e["type"] == "extra_forbidden":
            msg = "not a field of this kind"
        out.append(f"{where}: {msg}")
    return out


class JsonValidator:
    """Validates JSON events against the schema and the clock.

    Parameters
    ----------
    now
        The clock for the future-timestamp check; ``None`` reads the wall clock per call.
    max_future, max_bytes
        See :data:`MAX_FUTURE` and :data:`MAX_EVENT_BYTES`.
    """

    def __init__(self, now: dt.datetime | None = None, max_future: dt.timedelta = MAX_FUTURE,
                 max_bytes: int = MAX_EVENT_BYTES):
        self.now = now
        self.max_future = max_future
        self.max_bytes = max_bytes

    def _limit(self) -> dt.datetime:
        now = self.now or dt.datetime.now(dt.UTC)
        return now + self.max_future

    def validate_line(self, raw: bytes) -> Checked:
        """Validate one JSON document (a line of JSON Lines)."""
        if len(raw) > self.max_bytes:
            out = Checked(raw, errors=[f"event: {len(raw):,} bytes is over the limit of "
                                       f"{self.max_bytes:,} bytes"])
            _peek_ids(out)
            return out
        try:
            # Fast path: pydantic parses and validates in one pass; on any failure the slow
            # path below says why, naming the event.
            event = EVENT_ADAPTER.validate_json(raw)
        except ValidationError:
            pass
        else:
            if event.ts <= self._limit():
                return Checked(raw, event=event, event_id=event.event_id, kind=event.kind)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as uexc:
                return Checked(raw, errors=[f"event: not valid UTF-8 (byte {uexc.start})"])
            return Checked(raw, errors=[f"event: not valid JSON ({exc})"])
        return self.validate_obj(data, raw)

    def validate_obj(self, data: Any, raw: bytes | None = None) -> Checked:
        """Validate one already-parsed JSON value."""
        if raw is None:
            raw = orjson.dumps(data)
        if len(raw) > self.max_bytes:
            out = Checked(raw, errors=[f"event: {len(raw):,} bytes is over the limit of "
                                       f"{self.max_bytes:,} bytes"])
            _peek_ids(out, data)
            return out
        if not isinstance(data, dict):
            return Checked(raw, errors=[f"event: expected a JSON object, got "
                                        f"{type(data).__name__}"])
        out = Checked(raw, event_id=_str_or_none(data.get("event_id")),
                      kind=_str_or_none(data.get("kind")))
        try:
            event = EVENT_ADAPTER.validate_python(data)
        except ValidationError as exc:
            out.errors = _format(exc)
            return out
        if event.ts > self._limit():
            out.errors = [f"ts: {event.ts.isoformat()} is more than {self.max_future} in the "
                          f"future"]
            return out
        out.event = event
        return out


def _str_or_none(v: Any) -> str | None:
    return v[:128] if isinstance(v, str) else None


def _peek_ids(out: Checked, data: Any = None) -> None:
    """Best-effort event_id and kind of an oversized record, for the rejection message."""
    if data is None:
        try:
            data = orjson.loads(out.raw)
        except orjson.JSONDecodeError:
            return
    if isinstance(data, dict):
        out.event_id = _str_or_none(data.get("event_id"))
        out.kind = _str_or_none(data.get("kind"))


_COLUMNS = ARROW_SCHEMA.names


def events_to_arrow(events: list[EventBase]) -> pa.Table:
    """Columnar form of validated events, with :data:`ARROW_SCHEMA`."""
    cols: dict[str, list[Any]] = {c: [None] * len(events) for c in _COLUMNS}
    for i, ev in enumerate(events):
        for k, v in ev.__dict__.items():
            cols[k][i] = v
    return pa.table(cols, schema=ARROW_SCHEMA)
