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


def _column(arr: pa.ChunkedArray) -> _Column:
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    present = BitMap(np.flatnonzero(valid).astype(np.uint32))
    if pa.types.is_boolean(arr.type):
        true = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
        return _Column("bool", present, {True: BitMap(np.flatnonzero(true).astype(np.uint32))})
    kind = "num" if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) else "str"
    ids = np.flatnonzero(valid).astype(np.uint32)
    values = arr.filter(pa.array(valid)).to_numpy(zero_copy_only=False)
    col = _Column(kind, present)
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

    def __init__(self, person_ids: list[str], columns: dict[str, _Column]):
        self.person_ids = person_ids
        self.columns = columns
        self.everyone = BitMap(np.arange(len(person_ids), dtype=np.uint32))

    @classmethod
    def build(cls, table: pa.Table) -> TagIndex:
        cols = {name: _column(table[name]) for name in table.column_names
                if name != "person_id"}
        return cls(table["person_id"].to_pylist(), cols)

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
            out = self.evaluate(node.items[0], refs)
            for item in node.items[1:]:
                out = out & self.evaluate(item, refs)
            return out
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
