"""A tag index of Roaring bitmaps, and the compiler from expressions to bitmap operations.

The index is built from a wide tag table (``person_id`` and one column per tag; counts in a
window are columns named ``tag@<days>d``). People are numbered by their row. Booleans,
strings and numeric tags with few distinct values (age, city tier, counts) get one bitmap
per value, so a range is a union of a handful of bitmaps; numeric tags with many values
(income) keep a sorted array and turn a range into a bitmap by two binary searches.

Semantics, shared with the reference evaluator :func:`evaluate_row`: a condition on a tag a
person does not have is false; ``not`` is the complement over everyone in the index.

Examples
--------
>>> import pyarrow as pa
>>> tags = pa.table({"person_id": ["a", "b", "c"], "age": [25, 41, None],
...                  "owns_car": [False, True, None]})
>>> index = TagIndex.build(tags)
>>> index.people(index.select("age in 22..39 and not owns_car"))
['a']
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap

from allscene.audiences.expr import (
    And,
    Compare,
    ExprError,
    Flag,
    Freq,
    In,
    Node,
    Not,
    Or,
    Range,
    Ref,
    parse,
    tags,
)

MAX_VALUE_BITMAPS = 4096
_OPS = {"=": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
        ">": operator.gt, "<": operator.lt}


@dataclass
class _Column:
    kind: str  # "bool" | "str" | "num"
    present: BitMap
    by_value: dict[Any, BitMap] = field(default_factory=dict)
    sorted_values: np.ndarray | None = None  # numeric tags with many values
    sorted_ids: np.ndarray | None = None
    dense: np.ndarray | None = None  # value per person (for filtering a few candidates)
    valid: np.ndarray | None = None

    @property
    def all_valid(self) -> bool:
        return self.valid is not None and len(self.present) == len(self.valid)


def _column(arr: pa.ChunkedArray) -> _Column:
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    present = BitMap(np.flatnonzero(valid).astype(np.uint32))
    if pa.types.is_boolean(arr.type):
        true = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
        return _Column("bool", present, {True: BitMap(np.flatnonzero(true).astype(np.uint32))},
                       dense=true, valid=valid)
    kind = "num" if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) else "str"
    ids = np.flatnonzero(valid).astype(np.uint32)
    values = arr.filter(pa.array(valid)).to_numpy(zero_copy_only=False)
    col = _Column(kind, present, valid=valid)
    if kind == "num":
        dense = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
        if dense.dtype.kind in "iu" and len(dense):
            # The smallest integer type that holds the values: less memory to gather from.
            lo, hi = dense.min(), dense.max()
            for t in (np.int8, np.int16, np.int32):
                if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
                    dense = dense.astype(t)
                    break
        col.dense = dense
    if kind == "num" and len(np.unique(values)) > MAX_VALUE_BITMAPS:
        order = np.argsort(values, kind="stable")
        col.sorted_values, col.sorted_ids = values[order], ids[order]
        return col
    order = np.argsort(values, kind="stable")
    sv, si = values[order], ids[order]
    starts = np.flatnonzero(np.r_[True, sv[1:] != sv[:-1]]) if len(sv) else np.array([], int)
    ends = np.r_[starts[1:], len(sv)]
    for a, b in zip(starts, ends, strict=True):
        v = sv[a].item() if hasattr(sv[a], "item") else sv[a]
        col.by_value[v] = BitMap(np.sort(si[a:b]))
    return col


class TagIndex:
    """Bitmaps over people for every tag of a wide tag table."""

    def __init__(self, person_ids: list[str], columns: dict[str, _Column], *,
                 late_fraction: float = 0.05):
        self.person_ids = person_ids
        self.columns = columns
        self.everyone = BitMap(np.arange(len(person_ids), dtype=np.uint32))
        # Once an 'and' has narrowed to fewer people than this share, its remaining numeric
        # and yes/no conditions are checked on the candidates' values instead of as bitmaps.
        self.late_fraction = late_fraction

    @classmethod
    def build(cls, table: pa.Table, *, late_fraction: float = 0.05) -> TagIndex:
        cols = {name: _column(table[name]) for name in table.column_names
                if name != "person_id"}
        return cls(table["person_id"].to_pylist(), cols, late_fraction=late_fraction)

    def people(self, bitmap: BitMap) -> list[str]:
        return [self.person_ids[i] for i in bitmap]

    def check(self, node: Node, text: str, refs: Mapping[str, BitMap] = {}) -> None:
        """Raise :class:`ExprError` at the first unknown tag or audience."""
        for tag, pos in tags(node):
            if tag not in self.columns:
                close = difflib.get_close_matches(tag, list(self.columns), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ExprError(f"unknown tag '{tag}' at column {pos + 1}{hint}", text, pos)
        for name, pos in _refs(node):
            if name not in refs:
                raise ExprError(f"unknown audience '@{name}' at column {pos + 1}", text, pos)

    def select(self, text: str, refs: Mapping[str, BitMap] = {}) -> BitMap:
        """The people matching expression ``text`` (``refs``: other audiences by name)."""
        node = parse(text)
        self.check(node, text, refs)
        return self.evaluate(node, refs)

    def evaluate(self, node: Node, refs: Mapping[str, BitMap] = {}) -> BitMap:
        if isinstance(node, And):
            items = sorted(node.items, key=lambda i: self.estimate(i, refs))
            out = self.evaluate(items[0], refs)
            ids: np.ndarray | None = None  # candidates as an array while filtering late
            small = self.late_fraction * len(self.everyone)
            for item in items[1:]:
                if (len(out) if ids is None else len(ids)) <= small and self._filterable(item):
                    if ids is None:
                        ids = np.frombuffer(out.to_array(), dtype=np.uint32)
                    ids = ids[self._mask(item, ids)]
                else:
                    if ids is not None:
                        out, ids = BitMap(ids), None
                    out = out & self.evaluate(item, refs)
            return out if ids is None else BitMap(ids)
        if isinstance(node, Or):
            return BitMap.union(*(self.evaluate(item, refs) for item in node.items))
        if isinstance(node, Not):
            return self.everyone - self.evaluate(node.item, refs)
        if isinstance(node, Ref):
            return refs[node.name]
        if isinstance(node, Flag):
            col = self.columns[node.tag]
            if col.kind == "bool":
                return col.by_value.get(True, BitMap())
            return col.present
        if isinstance(node, Freq):
            return self._compare(self.columns[node.column], node.op, node.count)
        if isinstance(node, Range):
            col = self.columns[node.tag]
            return self._compare(col, ">=", node.lo) & self._compare(col, "<=", node.hi)
        if isinstance(node, In):
            col = self.columns[node.tag]
            return BitMap.union(BitMap(), *(self._compare(col, "=", v) for v in node.values))
        if isinstance(node, Compare):
            return self._compare(self.columns[node.tag], node.op, node.value)
        raise TypeError(f"not an expression node: {node!r}")

    def estimate(self, node: Node, refs: Mapping[str, BitMap] = {}) -> int:
        """About how many people match ``node``, from bitmap sizes alone (for ordering)."""
        n = len(self.everyone)
        if isinstance(node, And):
            return min(self.estimate(i, refs) for i in node.items)
        if isinstance(node, Or):
            return min(n, sum(self.estimate(i, refs) for i in node.items))
        if isinstance(node, Not):
            return n - self.estimate(node.item, refs)
        if isinstance(node, Ref):
            return len(refs[node.name])
        col = self.columns[node.column if isinstance(node, Freq) else node.tag]
        if col.sorted_values is not None or isinstance(node, Flag) and col.kind != "bool":
            return len(col.present)
        if isinstance(node, Flag):
            return len(col.by_value.get(True, BitMap()))
        if isinstance(node, In):
            return sum(len(col.by_value.get(v, BitMap())) for v in node.values)
        if isinstance(node, Compare) and node.op == "=":
            return len(col.by_value.get(node.value, BitMap()))
        lo, hi, op = ((node.lo, node.hi, "range") if isinstance(node, Range) else
                      (None, None, node.op))
        value = node.count if isinstance(node, Freq) else getattr(node, "value", None)
        total = 0
        for v, bm in col.by_value.items():
            if op == "range":
                ok = _comparable(v, lo) and lo <= v <= hi
            else:
                ok = (_comparable(v, value) or op in ("=", "!=")) and _OPS[op](v, value)
            total += len(bm) if ok else 0
        return total

    def _filterable(self, node: Node) -> bool:
        """Conditions checkable on dense values: numeric and yes/no tags (and their 'not')."""
        if isinstance(node, Not):
            return self._filterable(node.item)
        if isinstance(node, (Range, Compare, Freq)):
            col = self.columns[node.column if isinstance(node, Freq) else node.tag]
            value = node.lo if isinstance(node, Range) else (
                node.count if isinstance(node, Freq) else node.value)
            return col.kind == "num" and not isinstance(value, str)
        if isinstance(node, Flag):
            return self.columns[node.tag].dense is not None
        return False

    def _mask(self, node: Node, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` match ``node`` (same semantics as the bitmaps: missing is false)."""
        if isinstance(node, Not):
            return ~self._mask(node.item, ids)
        col = self.columns[node.column if isinstance(node, Freq) else node.tag]
        valid = True if col.all_valid else col.valid[ids]
        if isinstance(node, Flag):
            v = col.dense[ids]
            return valid & (v.astype(bool) if col.kind == "bool" else True)
        v = col.dense[ids]
        if isinstance(node, Range):
            return valid & (v >= node.lo) & (v <= node.hi)
        if isinstance(node, Freq):
            return valid & _OPS[node.op](v, node.count)
        return valid & _OPS[node.op](v, node.value)

    @staticmethod
    def _compare(col: _Column, op: str, value: Any) -> BitMap:
        if col.sorted_values is not None:
            sv, ids = col.sorted_values, col.sorted_ids
            lo, hi = np.searchsorted(sv, value, "left"), np.searchsorted(sv, value, "right")
            pick = {"=": ids[lo:hi], "<": ids[:lo], "<=": ids[:hi], ">": ids[hi:],
                    ">=": ids[lo:]}.get(op)
            if pick is None:  # !=
                return col.present - BitMap(np.sort(ids[lo:hi]))
            return BitMap(np.sort(pick))
        if op == "!=":
            return col.present - col.by_value.get(value, BitMap())
        if op == "=":
            return col.by_value.get(value, BitMap())
        fn = _OPS[op]
        hits = [bm for v, bm in col.by_value.items() if _comparable(v, value) and fn(v, value)]
        return BitMap.union(BitMap(), *hits)


def _comparable(a: Any, b: Any) -> bool:
    return isinstance(a, str) == isinstance(b, str)


def _refs(node: Node) -> list[tuple[str, int]]:
    if isinstance(node, (And, Or)):
        return [r for item in node.items for r in _refs(item)]
    if isinstance(node, Not):
        return _refs(node.item)
    return [(node.name, node.pos)] if isinstance(node, Ref) else []


def evaluate_row(node: Node, row: Mapping[str, Any], refs: Mapping[str, set[str]] = {}) -> bool:
    """The reference evaluator: one person's tags (a dict) against an expression, slowly and
    obviously. The bitmap compiler must agree with it."""
    if isinstance(node, And):
        return all(evaluate_row(i, row, refs) for i in node.items)
    if isinstance(node, Or):
        return any(evaluate_row(i, row, refs) for i in node.items)
    if isinstance(node, Not):
        return not evaluate_row(node.item, row, refs)
    if isinstance(node, Ref):
        return row["person_id"] in refs[node.name]
    value = row.get(node.column if isinstance(node, Freq) else node.tag)
    if value is None:
        return False
    if isinstance(node, Flag):
        return value is True or (not isinstance(value, bool))
    if isinstance(node, Freq):
        return _OPS[node.op](value, node.count)
    if isinstance(node, Range):
        return _comparable(value, node.lo) and node.lo <= value <= node.hi
    if isinstance(node, In):
        return value in node.values
    if isinstance(node, Compare):
        if node.op in ("=", "!="):
            return _OPS[node.op](value, node.value)
        return _comparable(value, node.value) and _OPS[node.op](value, node.value)
    raise TypeError(f"not an expression node: {node!r}")
