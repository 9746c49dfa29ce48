"""Assembling events column-wise into tables of exactly ``ARROW_SCHEMA``.

Each kind is added as one chunk of numpy / Arrow columns; :meth:`EventChunks.table` fills the
missing columns with nulls, sorts by time and numbers the events. Nothing loops over events.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allscene.events.schema import ARROW_SCHEMA

TS_TYPE = pa.timestamp("us", tz="UTC")


def strings(values: list[str] | np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), pa.string())


def pick(arr: pa.Array, idx: np.ndarray) -> pa.Array:
    """``arr[idx]`` for an Arrow array and numpy indices."""
    return arr.take(pa.array(np.asarray(idx, dtype=np.int64)))


def join(*parts: Any) -> pa.Array:
    """Concatenate string arrays / scalars element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def num_str(values: np.ndarray, width: int = 0) -> pa.Array:
    s = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
    return pc.utf8_lpad(s, width, "0") if width else s


class EventChunks:
    """Per-kind column chunks of one output file."""

    def __init__(self) -> None:
        self._chunks: list[pa.Table] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, ts_us: np.ndarray, device_id: pa.Array | None,
            device_type: str | None, **cols: Any) -> None:
        n = len(ts_us)
        if n == 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + n
        arrays = []
        for f in ARROW_SCHEMA:
            name = f.name
            if name == "ts":
                v = pa.array(np.asarray(ts_us, dtype=np.int64)).cast(f.type)
            elif name == "kind":
                v = pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), [kind]).cast(f.type)
            elif name == "device_id":
                v = device_id if device_id is not None else pa.nulls(n, f.type)
            elif name == "device_type":
                v = (pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), [device_type])
                     .cast(f.type) if device_type else pa.nulls(n, f.type))
            elif name == "schema_version":
                v = pa.array(np.ones(n, np.int64))
            elif name == "event_id":
                v = pa.nulls(n, f.type)
            elif name in cols:
                v = cols.pop(name)
                if isinstance(v, str | bool | int | float):
                    v = pa.array([v], f.type).take(pa.array(np.zeros(n, np.int64)))
                elif isinstance(v, np.ndarray):
                    v = pa.array(v, f.type) if v.dtype != object else pa.array(v, f.type)
                elif v.type != f.type:
                    v = v.cast(f.type)
            else:
                v = pa.nulls(n, f.type)
            if len(v) != n:
                raise ValueError(f"{kind}.{name}: {len(v)} values for {n} events")
            arrays.append(v)
        if cols:
            raise KeyError(f"{kind}: unknown columns {sorted(cols)}")
        self._chunks.append(pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA))

    def table(self, id_prefix: str) -> pa.Table:
        """All chunks, sorted by ``ts`` (stable), with ``event_id = prefix + sequence``."""
        if not self._chunks:
            return ARROW_SCHEMA.empty_table()
        t = pa.concat_tables(self._chunks)
        t = t.take(pc.sort_indices(t, [("ts", "ascending")]))
        ids = join(id_prefix, num_str(np.arange(t.num_rows), 7))
        return t.set_column(0, ARROW_SCHEMA.field("event_id"), ids)


def opaque_id(prefix: str, *keys: np.ndarray) -> pa.Array:
    """Deterministic ids that reveal nothing of what they identify (a splitmix64 mix of the
    keys), e.g. content ids that do not spell out the hidden topic."""
    with np.errstate(over="ignore"):
        x = np.zeros(len(keys[0]), dtype=np.uint64)
        for k in keys:
            x = (x * np.uint64(1_000_003)) ^ np.asarray(k, dtype=np.uint64)
            x += np.uint64(0x9E3779B97F4A7C15)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x ^= x >> np.uint64(31)
    return join(prefix, num_str((x % np.uint64(10**12)).astype(np.int64), 12))
