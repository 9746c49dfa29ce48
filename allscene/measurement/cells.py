"""Totals, breakdowns, frequency and the reach curve of counted impressions, in numpy.

The impressions arrive once from DuckDB (:func:`~allscene.measurement.counting.
count_events`), one row each, the few clicked or converted ones flagged later
(:func:`~allscene.measurement.counting.fact_flags`); every figure of the report is then a
pass over those arrays rather than a query of its own. A dimension's values are numbered
in the order SQL sorts them (strings by code point, days and hours by value, NULL last), a
breakdown's cells are those numbers (crossed dimensions combine them), and each sum is a
``bincount`` over them: the same sums, cells and order as one ``GROUP BY ... ORDER BY``
per breakdown gave.

Reach counts people exactly: people are numbered ``0 .. P-1``, and a cell's reach is the
number of distinct (cell, person) pairs, marked in a people x cells bit matrix (or, when
that would be large, counted from the sorted distinct pairs). The two loops over every row
that numpy would write through temporaries, numbering the people and marking the pairs,
are compiled (:mod:`allscene.measurement.kernels`).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from allscene.audiences.ranges import rank_values
from allscene.measurement import kernels
from allscene.measurement.counting import CONVERSION_TYPES

EPOCH = dt.date(1970, 1, 1)
COLUMNS = {"campaign": "campaign_id", "placement": "placement_id", "medium": "placement_id",
           "device_type": "device_type", "creative": "creative_id", "scene": "scene",
           "audience": "audience", "stage": "stage"}
"""The impression column a dimension is read from (``day`` and ``hour`` come from ``lh``,
the local hour)."""
FILL = {"scene": "(not targeted)", "audience": "(not targeted)", "stage": "(no stage)"}
_CONV = tuple(f"conv_{t}" for t in CONVERSION_TYPES) + ("view_through",)
MATRIX_LIMIT = 1 << 31
"""Largest cells x people bit matrix for reach (bits: 256 MiB); beyond, distinct pairs are
sorted."""


def _encode(col: pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """Each value's number (int32) and the values (the last: None, for NULL)."""
    if col.null_count == len(col):  # a column no row has (e.g. no campaign has stages)
        return np.zeros(len(col), np.int32), [None]
    if pa.types.is_dictionary(col.type):  # numbered already (the served files')
        col = col.unify_dictionaries()
        values = col.chunks[0].dictionary.to_pylist() if col.num_chunks else []
        if not values or values[-1] is not None:
            values.append(None)  # NULL: the last value (ServedColumns' have it)
        idx = pa.chunked_array([c.indices for c in col.chunks], col.type.index_type)
        if idx.null_count:
            idx = pc.fill_null(idx, len(values) - 1)
        return idx.to_numpy().astype(np.int32, copy=False), values
    enc = pc.dictionary_encode(col)  # Arrow gives every chunk the whole dictionary
    chunks = enc.chunks
    if len({len(c.dictionary) for c in chunks}) > 1 \
            or (chunks and not chunks[0].dictionary.equals(chunks[-1].dictionary)):
        chunks = [pc.dictionary_encode(col.combine_chunks())]  # should it not: one chunk
    values = (chunks[0].dictionary.to_pylist() if chunks else []) + [None]
    idx = pa.chunked_array([c.indices for c in chunks], pa.int32())
    if idx.null_count:
        idx = pc.fill_null(idx, len(values) - 1)
    return idx.to_numpy(), values


def _number_people(imp: pa.Table) -> tuple[np.ndarray, int]:
    """Each row's person numbered ``0 .. P - 1``, and ``P``.

    People are known by two 63-bit hashes of their ids, ``ph`` and ``ph2`` (which two
    people share by a chance near 2^-126): numbered from ``ph`` (:func:`~allscene.
    measurement.kernels.number`), checked with ``ph2``; should two people share ``ph``,
    the pairs are numbered instead."""
    ph = pc.fill_null(imp["ph"], 0).to_numpy()
    other = pc.fill_null(imp["ph2"], 0).to_numpy()
    idx, people, agree = kernels.number(ph, other)
    if not agree:
        pairs = np.stack([ph, other], axis=1)
        people, idx = np.unique(pairs, axis=0, return_inverse=True)
        return idx.reshape(-1).astype(np.int32), len(people)
    return idx, people


def _ranked(idx: np.ndarray, values: list) -> tuple[np.ndarray, list]:
    """``idx`` (positions in ``values``) as positions in the sorted distinct values, None
    last."""
    distinct = sorted(set(values), key=lambda v: (v is None, "" if v is None else v))
    if distinct == values:  # in order already (the served files' dictionaries)
        return idx if idx.flags.writeable else idx.copy(), distinct
    pos = {v: i for i, v in enumerate(distinct)}
    return np.array([pos[v] for v in values], dtype=np.int32)[idx], distinct


class Facts:
    """The impressions as numpy arrays, one entry per row of ``imp``; the rows not counted
    (invalid, or outside the window) fall in a cell of their own past every breakdown's
    last, which no figure reports, so no column is ever copied to drop them.

    Parameters
    ----------
    imp
        The impressions (:func:`~allscene.measurement.counting.count_events`).
    window
        Microseconds since the epoch, ``[start, end)``: the rows of ``imp`` counted are
        those valid (``invalid`` NULL) whose ``ts`` falls in it.
    media
        Placement id -> medium; other placements are ``other``.
    columns
        A column of ``imp`` by name (default: ``imp``'s own; the breakdown columns may come
        from elsewhere: :class:`~allscene.measurement.dictionaries.ServedColumns`).

    Notes
    -----
    The clicked and converted rows come later, from :meth:`add_flags`: the rest can be
    counted (:meth:`prepare`) while DuckDB counts them.
    """

    def __init__(self, imp: pa.Table, window: tuple[int, int],
                 media: dict[str, str] | None = None,
                 columns: Callable[[str], pa.Array | pa.ChunkedArray] | None = None):
        self.imp, self.media = imp, media or {}
        self.column = columns or imp.column
        self.day, self.hour, self.out = kernels.when(  # out: the rows not counted (few)
            np.asarray(imp["lh"].to_numpy(), np.int32),
            pc.cast(pc.cast(imp["ts"], pa.timestamp("us", "UTC")), pa.int64()).to_numpy(),
            pc.is_null(imp["invalid"]).to_numpy(zero_copy_only=False), *window)
        self.n = imp.num_rows - len(self.out)
        self._pid: tuple[np.ndarray, int] | None = None
        self.cost = imp["cost"].to_numpy()
        self._codes: dict[str, tuple[np.ndarray, list]] = {}
        self._placement_idx: tuple[np.ndarray, list] | None = None
        self._lock = threading.Lock()
        self._prepared: dict[tuple[str, ...], tuple] = {}
        self.add_flags(None)

    @property
    def pid(self) -> np.ndarray:
        """Each row's person, numbered ``0 .. people - 1``."""
        if self._pid is None:
            self._pid = _number_people(self.imp)
        return self._pid[0]

    @property
    def people(self) -> int:
        """How many people :attr:`pid` numbers."""
        _ = self.pid
        return self._pid[1]

    def count_ahead(self, breakdowns: list[list[str]], workers: int | None = None) -> None:
        """Number the people and the cells and :meth:`prepare` every breakdown, on
        ``workers`` threads (default: two, or one on one core; Arrow's and numpy's loops
        let go of the GIL)."""
        dims = sorted({d for b in breakdowns for d in b})
        with ThreadPoolExecutor(workers or min(2, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda job: job(), [lambda: self.pid]
                          + [partial(self.codes, d) for d in dims]))
            list(pool.map(self.prepare, breakdowns))

    def add_flags(self, flags: pa.Table | None) -> None:
        """The clicked or converted rows: :func:`~allscene.measurement.counting.fact_flags`
        (``None``: none yet)."""
        cols = ["clicked", *_CONV, "d1", "d7"]
        if flags is None:
            self.at = np.zeros(0, np.int64)
            self.flag = {c: np.zeros(0, np.int64) for c in [*cols, "activated"]}
            return
        self.at = flags["idx"].to_numpy()
        self.flag = {c: pc.fill_null(pc.cast(flags[c], pa.int64()), 0).to_numpy()
                     for c in cols}
        self.flag["activated"] = pc.cast(pc.is_valid(flags["d1"]), pa.int64()).to_numpy()

    def codes(self, dim: str) -> tuple[np.ndarray, list]:
        """Each row's cell in ``dim`` (the rows not counted: ``len(values)``) and the cells'
        values, in SQL order."""
        if dim not in self._codes:
            codes, values = self._make_codes(dim)
            codes[self.out] = len(values)
            self._codes[dim] = codes, values
        return self._codes[dim]

    def _make_codes(self, dim: str) -> tuple[np.ndarray, list]:
        if dim in ("day", "hour"):
            v = self.day if dim == "day" else self.hour
            lo = int(v.min()) if len(v) else 0
            codes = (v - lo).astype(np.int32)
            span = int(codes.max()) + 1 if len(v) else 0
            at = np.arange(span)
            if span > 4 * 366:  # a long window with gaps: number the days there are
                at = np.flatnonzero(np.bincount(np.delete(codes, self.out)))
                index = np.zeros(span, np.int32)
                index[at] = np.arange(len(at), dtype=np.int32)
                codes = index[codes]
            return codes, [EPOCH + dt.timedelta(days=lo + int(d)) if dim == "day"
                           else lo + int(d) for d in at]
        if dim == "medium":  # from the placements' numbers: the same column
            idx, values = self._placements()
            return _ranked(idx, ["other" if v is None else self.media.get(v, "other")
                                 for v in values])
        idx, values = self._placements() if dim == "placement" \
            else _encode(self.column(COLUMNS[dim]))
        values = list(values)
        if dim in FILL:
            values[-1] = FILL[dim]  # NULL is shown as (not targeted), (no stage)
        return _ranked(idx, values)

    def _placements(self) -> tuple[np.ndarray, list]:
        """The placements' numbers in order of appearance, and their ids (encoded once for
        both ``placement`` and ``medium``)."""
        with self._lock:  # placement and medium are numbered on two threads at once
            if self._placement_idx is None:
                self._placement_idx = _encode(self.column("placement_id"))
        return self._placement_idx

    def _cells(self, dims: list[str]) -> tuple[np.ndarray, list[tuple]]:
        """Each row's cell (the rows not counted: ``len(cells)``) and the cells' dimension
        values, in SQL order."""
        if not dims:
            key = np.zeros(len(self.pid), np.int32)
            key[self.out] = 1
            return key, [()]
        key, values = self.codes(dims[0])
        cells = [(v,) for v in values]
        for d in dims[1:]:
            c, vs = self.codes(d)
            base = len(vs) + 1
            u, key = rank_values(key.astype(np.int64) * base + c)
            u = u.tolist()[:-1] if len(self.out) else u.tolist()  # the last: not counted
            cells = [cells[k // base] + (vs[k % base],) for k in u]
        return key.reshape(-1).astype(np.int32), cells

    def prepare(self, dims: list[str]) -> tuple:
        """The cells of ``dims`` and what they count without the clicked and converted
        rows (each row's cell, the cells, impressions, reach, cost); kept, so that it can be
        counted before :meth:`add_flags`.

        Reach marks a bit per (person, cell) (:func:`~allscene.measurement.kernels.
        cells`), or, when that matrix would be large, counts the sorted distinct pairs.
        (One pass per breakdown: a pass marking several breakdowns' bits at once, each
        person's together, took twice as long, its misses in the matrix one after another
        rather than many at once.)"""
        if tuple(dims) not in self._prepared:
            key, cells = self._cells(dims)
            n = len(cells)
            if n == 1 and dims:  # one value throughout (no campaign has stages): the totals
                self._prepared[tuple(dims)] = (key, cells, *self.prepare([])[2:])
                return self._prepared[tuple(dims)]
            if (n + 1) * self.people <= MATRIX_LIMIT:
                counts = kernels.cells(self.pid, key, self.cost, n, self.people)
            else:
                wide = key.astype(np.intp)
                pairs = np.sort(key.astype(np.int64) * self.people + self.pid)
                pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]  # (np.unique: slow)
                counts = (np.bincount(wide, minlength=n + 1)[:n],
                          np.bincount(pairs // self.people, minlength=n + 1)[:n],
                          np.bincount(wide, weights=self.cost, minlength=n + 1)[:n])
            self._prepared[tuple(dims)] = (key, cells, *counts)
        return self._prepared[tuple(dims)]

    def rows_by(self, dims: list[str]) -> list[dict[str, Any]]:
        """One dict per non-empty cell of ``dims`` (all rows when empty), in SQL order:
        the dimensions, then ``impressions, clicks, reach, cost, conv_<type>,
        view_through, activated, retained_1d, retained_7d`` as the SQL sums give them."""
        if not dims and not self.n:  # SQL sums of no rows are NULL
            return [{"impressions": 0, "clicks": None, "reach": 0, "cost": None}
                    | dict.fromkeys(_CONV) | {"activated": 0, "retained_1d": None,
                                              "retained_7d": None}]
        key, cells, imps, reach, cost = self.prepare(dims)
        n = len(cells)
        k = key[self.at]
        sums = {c: np.bincount(k, weights=v, minlength=n + 1)[:n].astype(np.int64)
                for c, v in self.flag.items()}
        out = []
        for c in np.flatnonzero(imps).tolist():
            r: dict[str, Any] = dict(zip(dims, cells[c], strict=True))
            r |= {"impressions": int(imps[c]), "clicks": int(sums["clicked"][c]),
                  "reach": int(reach[c]), "cost": float(cost[c])}
            r |= {t: int(sums[t][c]) for t in _CONV}
            act = int(sums["activated"][c])
            r |= {"activated": act, "retained_1d": int(sums["d1"][c]) if act else None,
                  "retained_7d": int(sums["d7"][c]) if act else None}
            out.append(r)
        return out

    def frequency(self, cap: int) -> list[tuple[int, int]]:
        """(impressions per person, capped at ``cap``; people)."""
        if not self.n:
            return []
        per = np.bincount(self.pid, minlength=self.people) \
            - np.bincount(self.pid[self.out], minlength=self.people)
        n = np.bincount(np.minimum(per[per > 0], cap))
        return [(k, int(n[k])) for k in np.flatnonzero(n).tolist()]

    def reach_curve(self) -> list[tuple[str, int]]:
        """(local day, people reached by its end), on each day someone is first reached."""
        if not self.n:
            return []
        none = np.iinfo(np.int32).max
        day = self.day.copy()
        day[self.out] = none
        first = kernels.earliest(self.pid, day, self.people, none)
        first = first[first < none]
        lo = int(first.min())
        n = np.bincount(first - lo)
        d = np.flatnonzero(n)
        return [(str(EPOCH + dt.timedelta(days=lo + int(x))), int(c))
                for x, c in zip(d, np.cumsum(n[d]), strict=True)]


def _ratio(a: float | None, b: float | None, scale: float = 1.0) -> float | None:
    return None if not b or a is None else a / b * scale


def derive(r: dict[str, Any], dims: list[str], min_cell: int) -> dict[str, Any]:
    """Rates from the sums; a cell with fewer than ``min_cell`` people keeps only its dims."""
    if r.get("day") is not None:
        r["day"] = r["day"].isoformat()
    conv = sum(r[f"conv_{t}"] or 0 for t in CONVERSION_TYPES)
    cost = float(r["cost"] or 0)
    r |= {"cost": round(cost, 6), "conversions": conv,
          "ctr": _ratio(r["clicks"], r["impressions"]),
          "frequency": _ratio(r["impressions"], r["reach"]),
          "cpm": _ratio(cost, r["impressions"], 1000), "cpc": _ratio(cost, r["clicks"]),
          "cpa": _ratio(cost, conv), "retention_1d": _ratio(r["retained_1d"], r["activated"]),
          "retention_7d": _ratio(r["retained_7d"], r["activated"])}
    if small := r["reach"] < min_cell:
        r = {k: (v if k in dims else None) for k, v in r.items()}
    r["suppressed"] = small
    return r
