"""A tag index of Roaring bitmaps, and the compiler from expressions to bitmap operations.

The index is built from a wide tag table (``person_id`` and one column per tag; counts in a
window are columns named ``tag@<days>d``). People are numbered by their row. Booleans,
strings and numeric tags with up to ``MAX_VALUE_BITMAPS`` distinct values get one bitmap per
value (for ``=``, ``!=`` and sets); every numeric tag also gets a range-encoded index
(:mod:`allscene.audiences.ranges`: bitmaps of "value >= v" for chosen ``v``), so a range or
comparison is a few bitmap operations whatever it spans, and the exact number of people in
it is known without any.

An ``and`` starts from its most selective condition and narrows it down (by bitmaps, or by
the candidates' values once few are left); ``not x`` inside it is a difference, never a
complement. :meth:`TagIndex.count` ends on a cardinality-only operation, no final bitmap.

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
>>> index.count("age >= 18 or owns_car")
2
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
from allscene.audiences.ranges import (
    BinnedIndex,
    BitSlicedIndex,
    bitmap_of,
    group_bitmaps,
    rank_values,
)

MAX_VALUE_BITMAPS = 4096
# An 'and' checks the rest of its conditions on the candidates' own values once fewer than
# this share of everyone is left. Measured on 10M people: at 650 candidates checking values
# takes 0.25 ms against 0.34 ms of bitmaps, at 12,000 they tie, at 40,000 it takes twice as
# long (gathers from 10M-long arrays miss the cache; a range's bitmaps cost ~0.1 ms).
LATE_FRACTION = 0.001
_OPS = {"=": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
        ">": operator.gt, "<": operator.lt}


@dataclass
class _Column:
    """One tag's bitmaps, and its value per person for checking a few candidates."""

    kind: str  # "bool" | "str" | "num"
    present: BitMap
    by_value: dict[Any, BitMap] = field(default_factory=dict)
    ranges: BinnedIndex | BitSlicedIndex | None = None  # numeric tags: <, >=, lo..hi
    dense: np.ndarray | None = None  # value per person, 0 where missing
    valid: np.ndarray | None = None

    @property
    def all_valid(self) -> bool:
        return self.valid is not None and len(self.present) == len(self.valid)


def _column(chunked: pa.ChunkedArray) -> _Column:
    arr = chunked.combine_chunks()
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    ids = np.flatnonzero(valid).astype(np.uint32)
    present = bitmap_of(ids)
    if pa.types.is_boolean(arr.type):
        true = pc.fill_null(arr, False).to_numpy(zero_copy_only=False)
        yes = bitmap_of(np.flatnonzero(true))
        # False has a bitmap too: to the reference evaluator 'owns_car = 0' means False.
        return _Column("bool", present, {True: yes, False: present - yes}, dense=true,
                       valid=valid)
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        # Dictionary codes group the people by value without sorting Python objects.
        encoded = pc.dictionary_encode(arr)
        codes = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)[valid]
        groups = group_bitmaps(codes, ids, len(encoded.dictionary))
        return _Column("str", present, dict(zip(encoded.dictionary.to_pylist(), groups,
                                                strict=True)), valid=valid)
    dense = pc.fill_null(arr, 0).to_numpy(zero_copy_only=False)
    if dense.dtype.kind in "iu" and len(dense):
        # The smallest integer type that holds the values: less memory to gather from.
        lo, hi = dense.min(), dense.max()
        for t in (np.int8, np.int16, np.int32):
            if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
                dense = dense.astype(t)
                break
    if dense.dtype.kind == "f":
        # Compared as Python floats, as the reference evaluator does: numpy would round a
        # query's 0.1 to float32 against a float32 column.
        dense = dense.astype(np.float64, copy=False)
    values = dense[valid]
    if dense.dtype.kind == "f":
        # NaN matches no comparison (but '!='): present, in no bitmap of values.
        keep = ~np.isnan(values)
        ids, values = ids[keep], values[keep]
    distinct, ranks = rank_values(values)
    if len(distinct) > MAX_VALUE_BITMAPS:
        return _Column("num", present, {}, BitSlicedIndex.from_ranks(ids, ranks, distinct),
                       dense=dense, valid=valid)
    # Few values: the per-value bitmaps also fill in the range index's bins exactly.
    per_value = group_bitmaps(ranks, ids, len(distinct))
    return _Column("num", present, dict(zip(distinct.tolist(), per_value, strict=True)),
                   BinnedIndex.from_groups(distinct, per_value), dense=dense, valid=valid)


class TagIndex:
    """Bitmaps over people for every tag of a wide tag table.

    Parameters
    ----------
    person_ids : list of str
        The person of each row; people are numbered by row.
    columns : dict
        The indexed tags by name.
    late_fraction : float
        Once an ``and`` has narrowed to fewer people than this share of everyone, its
        remaining numeric and yes/no conditions are checked on the candidates' values
        instead of as bitmaps (0: never, 1: right after the first condition).
    """

    def __init__(self, person_ids: list[str], columns: dict[str, _Column], *,
                 late_fraction: float = LATE_FRACTION):
        self.person_ids = person_ids
        self.columns = columns
        self.everyone = BitMap(range(len(person_ids)))
        self.late_fraction = late_fraction

    @classmethod
    def build(cls, table: pa.Table, *, late_fraction: float = LATE_FRACTION) -> TagIndex:
        """Index every column of ``table`` but ``person_id``."""
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
        """The people matching expression ``text`` (``refs``: other audiences by name).

        A bitmap of the caller's own: the answer may be one the index keeps, so a copy (not
        run-optimized: that would scan it, 8x the copy's time).
        """
        node = parse(text)
        self.check(node, text, refs)
        return BitMap(self.evaluate(node, refs), optimize=False)

    def count(self, text: str, refs: Mapping[str, BitMap] = {}) -> int:
        """How many people match expression ``text``, without building their bitmap."""
        node = parse(text)
        self.check(node, text, refs)
        return self.tally(node, refs)

    def tally(self, node: Node, refs: Mapping[str, BitMap] = {}) -> int:
        """How many people match ``node``: an ``and`` ends on a cardinality-only operation."""
        if isinstance(node, And):
            return self._conjunction(node.items, refs, count=True)
        if isinstance(node, Not):
            return len(self.everyone) - self.tally(node.item, refs)
        exact = self._exact_size(node)
        return exact if exact is not None else len(self.evaluate(node, refs))

    def evaluate(self, node: Node, refs: Mapping[str, BitMap] = {}) -> BitMap:
        """The people matching ``node``; possibly a bitmap the index keeps: do not change it."""
        if isinstance(node, And):
            return self._conjunction(node.items, refs, count=False)
        if isinstance(node, Or):
            return BitMap.union(*(self.evaluate(item, refs) for item in node.items))
        if isinstance(node, Not):
            return self.everyone - self.evaluate(node.item, refs)
        if isinstance(node, Ref):
            return refs[node.name]
        col = self.columns[_tag(node)]
        if isinstance(node, Flag):
            return col.by_value[True] if col.kind == "bool" else col.present
        if isinstance(node, Freq):
            return self._compare(col, node.op, node.count)
        if isinstance(node, Range):
            if col.ranges is not None:
                return col.ranges.members(*col.ranges.interval_between(node.lo, node.hi))
            return self._compare(col, ">=", node.lo) & self._compare(col, "<=", node.hi)
        if isinstance(node, In):
            return BitMap.union(BitMap(), *(self._compare(col, "=", v) for v in node.values))
        if isinstance(node, Compare):
            return self._compare(col, node.op, node.value)
        raise TypeError(f"not an expression node: {node!r}")

    def _conjunction(self, items: tuple[Node, ...], refs: Mapping[str, BitMap], *,
                     count: bool) -> BitMap | int:
        """An ``and``: the most selective condition first, each next one narrowing it."""
        items = sorted(items, key=lambda i: self.estimate(i, refs))
        out, owned = self.evaluate(items[0], refs), False  # owned: ours to change in place
        ids: np.ndarray | None = None  # the candidates as an array while filtering late
        small = self.late_fraction * len(self.everyone)
        for k, item in enumerate(items[1:], start=2):
            if (ids is not None or len(out) <= small) and self._filterable(item):
                if ids is None:
                    ids = np.frombuffer(out.to_array(), dtype=np.uint32).astype(np.intp)
                ids = ids[self._mask(item, ids)]
                continue
            if ids is not None:
                out, owned, ids = bitmap_of(ids), True, None
            negated = isinstance(item, Not)
            # 'x and not y' is x minus y: no complement of y over everyone.
            other = self.evaluate(item.item if negated else item, refs)
            if count and k == len(items):
                return (out.difference_cardinality(other) if negated
                        else out.intersection_cardinality(other))
            if not owned:
                out, owned = (out - other if negated else out & other), True
            elif negated:
                out -= other
            else:
                out &= other
        if ids is not None:
            return len(ids) if count else bitmap_of(ids)
        return len(out) if count else out

    def estimate(self, node: Node, refs: Mapping[str, BitMap] = {}) -> int:
        """About how many people match ``node`` (exact for one condition), for ordering."""
        n = len(self.everyone)
        if isinstance(node, And):
            return min(self.estimate(i, refs) for i in node.items)
        if isinstance(node, Or):
            return min(n, sum(self.estimate(i, refs) for i in node.items))
        if isinstance(node, Not):
            return n - self.estimate(node.item, refs)
        if isinstance(node, Ref):
            return len(refs[node.name])
        exact = self._exact_size(node)
        if exact is not None:
            return exact
        col = self.columns[_tag(node)]
        if isinstance(node, Flag):
            return len(col.by_value[True]) if col.kind == "bool" else len(col.present)
        if isinstance(node, In):
            return min(n, sum(self._size_eq(col, v) for v in node.values))
        if isinstance(node, Compare) and node.op in ("=", "!="):
            eq = self._size_eq(col, node.value)
            return eq if node.op == "=" else len(col.present) - eq
        lo, hi, op = ((node.lo, node.hi, "range") if isinstance(node, Range) else
                      (None, None, node.op))
        value = node.count if isinstance(node, Freq) else getattr(node, "value", None)
        total = 0
        for v, bm in col.by_value.items():
            if op == "range":
                ok = _comparable(v, lo) and lo <= v <= hi
            else:
                ok = _comparable(v, value) and _OPS[op](v, value)
            total += len(bm) if ok else 0
        return total

    @staticmethod
    def _size_eq(col: _Column, value: Any) -> int:
        if col.ranges is not None and not col.by_value and not isinstance(value, str):
            return col.ranges.count(*col.ranges.interval("=", value))
        return len(col.by_value.get(value, ()))

    def _exact_size(self, node: Node) -> int | None:
        """People matching a comparison or range on a numeric tag, from cumulative counts
        (``None`` for any other condition)."""
        if not isinstance(node, (Range, Compare, Freq)):
            return None
        col = self.columns[_tag(node)]
        ranges = col.ranges
        if ranges is None:
            return None
        if isinstance(node, Range):
            return ranges.count(*ranges.interval_between(node.lo, node.hi))
        value = node.count if isinstance(node, Freq) else node.value
        if node.op == "!=":
            return len(col.present) - self._size_eq(col, value)
        return 0 if isinstance(value, str) else ranges.count(*ranges.interval(node.op, value))

    def _filterable(self, node: Node) -> bool:
        """Conditions checkable on dense values: numeric and yes/no tags (and their 'not')."""
        if isinstance(node, Not):
            return self._filterable(node.item)
        if isinstance(node, (Range, Compare, Freq)):
            value = node.lo if isinstance(node, Range) else (
                node.count if isinstance(node, Freq) else node.value)
            return self.columns[_tag(node)].kind == "num" and not isinstance(value, str)
        if isinstance(node, Flag):
            return self.columns[node.tag].dense is not None
        return False

    def _mask(self, node: Node, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` match ``node`` (same semantics as the bitmaps: missing is false)."""
        if isinstance(node, Not):
            return ~self._mask(node.item, ids)
        col = self.columns[_tag(node)]
        if isinstance(node, Flag):
            hit = col.dense[ids] if col.kind == "bool" else np.ones(len(ids), dtype=bool)
        elif isinstance(node, Range):
            v = col.dense[ids]
            hit = (v >= node.lo) & (v <= node.hi)
        else:
            value = node.count if isinstance(node, Freq) else node.value
            hit = _OPS[node.op](col.dense[ids], value)
        return hit if col.all_valid else hit & col.valid[ids]

    @staticmethod
    def _compare(col: _Column, op: str, value: Any) -> BitMap:
        if op == "!=":
            return col.present - TagIndex._compare(col, "=", value)
        numeric = col.ranges is not None and not isinstance(value, str)
        if numeric and (op != "=" or not col.by_value):
            return col.ranges.members(*col.ranges.interval(op, value))
        if op == "=":
            return col.by_value.get(value, BitMap())
        fn = _OPS[op]
        hits = [bm for v, bm in col.by_value.items() if _comparable(v, value) and fn(v, value)]
        return BitMap.union(BitMap(), *hits)


def _tag(node: Range | In | Compare | Freq | Flag) -> str:
    """The tag table column a condition reads."""
    return node.column if isinstance(node, Freq) else node.tag


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
