"""The breakdown columns of the impressions as Arrow dictionaries, read from the served files'
dictionary pages.

A report breaks its impressions down by a handful of low-cardinality string columns
(placement, creative, device type, ...): a few dozen distinct values over millions of rows.
Read through DuckDB, every row's string is copied out to Arrow and then numbered again;
the served files (:mod:`allscene.storage.served`) already hold each column as a dictionary
and each row's number in it. :class:`ServedColumns` reads those numbers straight from the
files (Arrow's ``read_dictionary``), a column when it is asked for, picks each
impression's by where it is in the files (``loc``: its file, then its row), and gives the
impressions that came from no served file (the days the report joined itself) their
numbers from their strings.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allscene.measurement import kernels

DIMS = ("device_type", "placement_id", "campaign_id", "creative_id", "scene", "audience",
        "stage")
"""The columns read as dictionaries (every breakdown but day and hour)."""
ROW_BITS = 40
"""``loc`` is ``file << ROW_BITS | row`` (:data:`allscene.storage.served.LOC`)."""


class ServedColumns:
    """The breakdown columns of impressions, those of served rows read from their files.

    Parameters
    ----------
    imp
        Impressions with ``loc``; a row whose file is one of ``served`` (``loc``'s file
        below ``len(served)``) takes its values of :data:`DIMS` from that file (its own are
        NULL; ``imp`` may lack those columns when every row is a served one), any other row
        keeps its own.
    served
        The served files, in the order ``loc`` numbers them.

    Calling it with a column's name gives the column (a dictionary of only the values its
    rows use; NULL is a value of it); other columns are ``imp``'s. It may be called from
    several threads at once.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); f = os.path.join(d, "s.parquet")
    >>> pq.write_table(pa.table({c: ["a", "b", None] for c in DIMS}), f)
    >>> imp = pa.table({"loc": [2, 0, 1 << ROW_BITS],
    ...                 **{c: [None, None, "z"] for c in DIMS}})
    >>> ServedColumns(imp, [f])("placement_id").to_pylist()
    [None, 'a', 'z']
    """

    def __init__(self, imp: pa.Table, served: list[str]):
        self.imp, self.served = imp, served
        self._at: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Which rows come from a served file, and their rows in the files read as one."""
        with self._lock:
            if self._at is None:
                self._meta = [pq.ParquetFile(p).metadata for p in self.served]
                starts = np.r_[0, np.cumsum([m.num_rows for m in self._meta])].astype(np.int64)
                self._at = kernels.locate(self.imp["loc"].to_numpy(), starts, ROW_BITS)
        return self._at

    def _no_value(self, name: str) -> bool:
        """Whether every row of the served files has ``name`` NULL, by the statistics of
        their row groups (none kept: not known, False)."""
        for meta in self._meta:
            col = meta.schema.names.index(name)
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                stats = group.column(col).statistics
                if stats is None or not stats.has_null_count \
                        or stats.null_count != group.num_rows:
                    return False
        return True

    def __call__(self, name: str) -> pa.Array | pa.ChunkedArray:
        if name not in DIMS:
            return self.imp[name]
        own = self.imp[name] if name in self.imp.column_names \
            else pa.chunked_array([], pa.string()) if self.imp.num_rows == 0 else None
        if not self.served or not self.imp.num_rows:
            return own
        mine, at = self._rows()
        if mine.all() and self._no_value(name):  # e.g. no campaign has stages
            return pa.chunked_array([pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(len(mine), np.int32)), pa.nulls(1, pa.string()))])
        files = pq.read_table(self.served, columns=[name], read_dictionary=[name])
        return pa.chunked_array([_numbered(files[name], at, mine, own)])


def _numbered(col: pa.ChunkedArray, at: np.ndarray, mine: np.ndarray,
              own: pa.ChunkedArray) -> pa.DictionaryArray:
    """One dictionary column: row ``at[k]`` of ``col`` (the files') for the ``k``-th row
    with ``mine``, the row's own value (``own``) elsewhere. The values are sorted, and NULL
    is the last, not a NULL index: no validity to carry."""
    col = col.unify_dictionaries()
    values = (col.chunks[0].dictionary if col.num_chunks else pa.array([], pa.string())
              ).cast(pa.string())
    null = len(values)  # codes: the values, NULL, then values only rows of no file have
    idx = pc.fill_null(pa.chunked_array([c.indices for c in col.chunks], pa.int32()),
                       null).to_numpy() if col.num_chunks else np.zeros(0, np.int32)
    if mine.all():
        codes, count = kernels.pick(idx, at, null + 1)
    else:  # rows of no served file: number their strings into the same values
        codes = np.full(len(mine), null, np.int32)
        codes[mine] = kernels.pick(idx, at, null + 1)[0]
        rest = np.flatnonzero(~mine)
        enc = pc.dictionary_encode(own.take(pa.array(rest))).combine_chunks()
        pos = pc.index_in(enc.dictionary, value_set=values)
        new = pc.is_null(pos).to_numpy(zero_copy_only=False)
        remap = np.r_[pc.fill_null(pos, 0).to_numpy().astype(np.int32), null]
        remap[:-1][new] = null + 1 + np.arange(new.sum(), dtype=np.int32)
        codes[rest] = remap[pc.fill_null(enc.indices, len(remap) - 1).to_numpy()]
        values = pa.concat_arrays([values, pc.filter(enc.dictionary, pa.array(new))])
        count = np.bincount(codes, minlength=len(values) + 1)
    used = count > 0
    used[null] = False
    keep = np.flatnonzero(used)  # values of other advertisers' rows are dropped
    kept = values.take(pa.array(np.where(keep > null, keep - 1, keep)))
    order = np.argsort(np.array(kept.to_pylist(), dtype=object), kind="stable")
    index = np.zeros(len(values) + 1, np.int32)  # as SQL orders them: no renumbering later
    index[keep[order]] = np.arange(len(keep), dtype=np.int32)
    index[null] = len(keep)
    values = pa.concat_arrays([kept.take(pa.array(order, pa.int64())), pa.nulls(1, pa.string())])
    kernels.renumber(codes, index)
    return pa.DictionaryArray.from_arrays(pa.array(codes), values)
