"""Signals: the event predicates of the catalog's conditions, matched one event at a time
(a live event as a dict) or over a whole Arrow batch, with the same answers; and the
three-valued check that lets the engine skip scenes that cannot hold at this hour and weather.

A null field makes a comparison false in both matchers; a decimal literal compares with a
whole-number field as a decimal (``steps >= 59.5`` does not match 59).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allscene.moments.lang import And, Cmp, Lit, Match, Name, Not, OneOf, Or, Range


@dataclass
class Signal:
    """An event predicate: a kind and an optional filter over that kind's fields."""

    kind: str
    filter: Any
    key: str
    id: int
    _py: Any = field(default=None, repr=False)

    def match_one(self, event: dict[str, Any]) -> bool:
        """Does one event (a dict of the event's fields) match?"""
        if event.get("kind") != self.kind:
            return False
        return self.filter is None or bool(_py_filter(self.filter, event))

    def match_many(self, table: pa.Table) -> np.ndarray:
        """Boolean mask of the rows of an event table that match."""
        mask = pc.equal(table["kind"], self.kind)
        if self.filter is not None:
            mask = pc.and_(mask, _arrow_filter(self.filter, table))
        return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def match_all(signals: list[Signal], table: pa.Table) -> np.ndarray:
    """``[row, signal.id]``: which rows match which signals (as :meth:`Signal.match_many`,
    but each kind's filters run only over that kind's rows)."""
    out = np.zeros((table.num_rows, len(signals)), np.bool_)
    if not table.num_rows:
        return out
    kinds = table["kind"].combine_chunks().dictionary_encode()
    names = kinds.dictionary.to_pylist()
    codes = kinds.indices.to_numpy(zero_copy_only=False)
    by_kind: dict[str, list[Signal]] = {}
    for sig in signals:
        by_kind.setdefault(sig.kind, []).append(sig)
    for kind, sigs in by_kind.items():
        if kind not in names:
            continue
        rows = np.flatnonzero(codes == names.index(kind))
        sub = None
        for sig in sigs:
            if sig.filter is None:
                out[rows, sig.id] = True
                continue
            if sub is None:
                cols = sorted({f for x in sigs if x.filter is not None
                               for f in _fields_of(x.filter)})
                sub = table.select(cols).take(pa.array(rows))
            hit = pc.fill_null(_arrow_filter(sig.filter, sub), False)
            out[rows, sig.id] = hit.to_numpy(zero_copy_only=False)
    return out


def _fields_of(node: Any) -> set[str]:
    """The event fields a filter reads."""
    if isinstance(node, And | Or):
        return set().union(*(_fields_of(x) for x in node.items))
    if isinstance(node, Not):
        return _fields_of(node.item)
    item = node.left if isinstance(node, Cmp) else getattr(node, "item", node)
    return {item.parts[0]} if isinstance(item, Name) else set()


def _py_filter(node: Any, e: dict[str, Any]) -> bool:
    if isinstance(node, And):
        return all(_py_filter(x, e) for x in node.items)
    if isinstance(node, Or):
        return any(_py_filter(x, e) for x in node.items)
    if isinstance(node, Not):
        return not _py_filter(node.item, e)
    if isinstance(node, Name):
        return e.get(node.parts[0]) is True
    v = e.get(node.item.parts[0] if not isinstance(node, Cmp) else node.left.parts[0])
    if v is None:
        return False
    if isinstance(node, Cmp):
        r = node.right.value
        return _leaf(node, v, r)
    if isinstance(node, Range | OneOf):
        return _leaf(node, v, None)
    if isinstance(node, Match):
        return re.search(node.pattern, v) is not None
    raise TypeError(node)


_PC = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
       ">": pc.greater, ">=": pc.greater_equal}


def _arrow_filter(node: Any, t: pa.Table) -> Any:
    """Null-free boolean array: a null field makes a leaf false (as :func:`_py_filter`)."""
    if isinstance(node, And):
        out = _arrow_filter(node.items[0], t)
        for x in node.items[1:]:
            out = pc.and_(out, _arrow_filter(x, t))
        return out
    if isinstance(node, Or):
        out = _arrow_filter(node.items[0], t)
        for x in node.items[1:]:
            out = pc.or_(out, _arrow_filter(x, t))
        return out
    if isinstance(node, Not):
        return pc.invert(_arrow_filter(node.item, t))
    if isinstance(node, Name):
        leaf = pc.equal(t[node.parts[0]], True)
    elif isinstance(node, Cmp):
        col = _column(t, node.left, [node.right])
        leaf = _PC[node.op](col, pa.scalar(node.right.value, col.type))
    elif isinstance(node, Range):
        col = _column(t, node.item, [node.lo, node.hi])
        leaf = pc.and_(pc.greater_equal(col, pa.scalar(node.lo.value, col.type)),
                       pc.less_equal(col, pa.scalar(node.hi.value, col.type)))
    elif isinstance(node, OneOf):
        col = _column(t, node.item, list(node.values))
        leaf = pc.is_in(col, value_set=pa.array([x.value for x in node.values], col.type))
    elif isinstance(node, Match):
        leaf = pc.match_substring_regex(t[node.item.parts[0]], node.pattern)
    else:
        raise TypeError(node)
    return pc.fill_null(leaf, False)


def _column(t: pa.Table, name: Name, lits: list[Lit]) -> Any:
    """The field's column, as decimals when a literal is one (59.5 must not become 59)."""
    col = t[name.parts[0]]
    if pa.types.is_integer(col.type) and any(isinstance(x.value, float) for x in lits):
        col = col.cast(pa.float64())
    return col



def tri_state(node: Any, env: dict[str, Any]) -> bool | None:
    """Three-valued value of a condition given some variables (``hour``, ``day``,
    ``weather.*``): ``None`` when it depends on anything else. A known-unknown value (a
    variable in ``env`` set to ``None``) makes a comparison false, as in the engine. Used to
    skip scenes that cannot hold at this hour and weather."""
    if isinstance(node, And):
        vals = [tri_state(x, env) for x in node.items]
        return False if False in vals else (True if all(v is True for v in vals) else None)
    if isinstance(node, Or):
        vals = [tri_state(x, env) for x in node.items]
        return True if True in vals else (False if all(v is False for v in vals) else None)
    if isinstance(node, Not):
        v = tri_state(node.item, env)
        return None if v is None else not v
    item = node.left if isinstance(node, Cmp) else getattr(node, "item", None)
    name = ".".join(item.parts) if isinstance(item, Name) else None
    if name not in env:
        return None
    v = env[name]
    if v is None:
        return False
    if isinstance(node, Cmp):
        if not isinstance(node.right, Lit):
            return None
        r = node.right.value
        if isinstance(v, str) != isinstance(r, str):
            return None
        return _leaf(node, v, r)
    if isinstance(node, Range | OneOf):
        return _leaf(node, v, None)
    return None


def _leaf(node: Any, v: Any, r: Any) -> bool:
    """A comparison, range or set test of a known value ``v`` (``r``: a comparison's right
    side)."""
    if isinstance(node, Cmp):
        return {"==": v == r, "!=": v != r, "<": v < r, "<=": v <= r, ">": v > r,
                ">=": v >= r}[node.op]
    if isinstance(node, Range):
        return node.lo.value <= v <= node.hi.value
    return v in {x.value for x in node.values}
