"""How good an audience is against known positives: precision@N and the best one-tag rule.

Both take the positives as a boolean mask over the rows of the tag table (people are
numbered by row, as in :class:`TagIndex`), so the same functions score a lookalike on
synthetic data, on a simulated world, or on a held-out set of converters.

Examples
--------
>>> import numpy as np, pyarrow as pa
>>> tags = pa.table({"person_id": ["a", "b", "c", "d"], "views@30d": [5, 3, 0, None],
...                  "owns_car": [False, False, True, None]})
>>> positives = np.array([True, True, False, False])
>>> precision_at_n(np.array([0, 2]), positives)
0.5
>>> rule = best_single_tag_rule(tags, positives, 2)
>>> str(rule), rule.expected_precision
('views >= 1 in 30d', 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Integer tags spanning at most this many values get a threshold at every value; others get
# thresholds at quantiles (a marketer writes "income >= 8000", not every possible income).
MAX_THRESHOLDS = 64


def precision_at_n(rows: np.ndarray, positives: np.ndarray) -> float:
    """The share of ``rows`` that are positives (``positives``: a boolean mask over rows).

    Examples
    --------
    >>> precision_at_n(np.array([3, 1]), np.array([False, True, False, False]))
    0.5
    """
    rows = np.asarray(rows)
    if rows.size == 0:
        raise ValueError("precision of an empty audience is undefined")
    return float(np.count_nonzero(np.asarray(positives, dtype=bool)[rows]) / rows.size)


@dataclass(frozen=True)
class TagRule:
    """A one-tag condition and how well its audience of ``size`` people does."""

    column: str
    op: str  # ">=", "<=", "<", "=", "is" (a yes/no tag true) or "is not"
    value: Any
    matched: int  # candidates it matches
    precision: float  # share of positives among them
    expected_precision: float  # of its audience of N (see best_single_tag_rule)

    def __str__(self) -> str:
        """The rule in the audience language (parse it with :func:`allscene.audiences.expr.parse`)."""
        if self.op == "is":
            return self.column
        if self.op == "is not":
            return f"not {self.column}"
        value = (f'"{self.value}"' if isinstance(self.value, str)
                 else np.format_float_positional(self.value, trim="-"))
        tag, _, window = self.column.partition("@")
        return f"{tag} {self.op} {value}" + (f" in {window}" if window else "")


def best_single_tag_rule(tags: pa.Table, positives: np.ndarray, size: int, *,
                         candidates: np.ndarray | None = None,
                         exclude_columns: tuple[str, ...] = ("person_id",)) -> TagRule:
    """The one-tag condition whose audience of ``size`` has the highest expected precision.

    Definition. Candidates are the rows where ``candidates`` (a boolean mask; default:
    everyone) is true, e.g. everyone outside the seed. The conditions are those a marketer
    writes on one tag: for a numeric tag ``tag >= t`` and ``tag <= t`` at every value t
    when an integer tag spans at most ``MAX_THRESHOLDS`` values, else ``tag >= q`` and
    ``tag < q`` at up to ``MAX_THRESHOLDS`` quantiles q, plus ``tag = t`` for those
    few-valued integers; for a yes/no tag ``tag`` and ``not tag``; for a text tag
    ``tag = v`` for each value. As in the audience language, a condition on a missing tag
    is false (so ``not tag`` holds for a missing one). A condition matching the candidates
    M has an audience of N = min(size, candidates): M in random order cut at N, padded with
    random candidates outside M when M has fewer than N. Its expected precision@N is
    ``(min(|M|, N) p(M) + max(0, N - |M|) p(C - M)) / N``, where p is the share of
    positives; the best rule maximizes it (ties: the first column, then the first condition).

    Examples
    --------
    >>> tags = pa.table({"person_id": ["a", "b", "c"], "tier": [1, 2, 2],
    ...                  "gender": ["f", "m", "m"]})
    >>> str(best_single_tag_rule(tags, np.array([True, False, False]), 1))
    'tier <= 1'
    """
    pos = np.asarray(positives, dtype=bool)
    cand = np.ones(tags.num_rows, bool) if candidates is None else np.asarray(candidates, bool)
    if pos.shape != (tags.num_rows,) or cand.shape != (tags.num_rows,):
        raise ValueError("positives and candidates are boolean masks with one value per row")
    total, total_pos = int(cand.sum()), int((pos & cand).sum())
    if total == 0:
        raise ValueError("no candidates")
    n = min(size, total)
    best: TagRule | None = None
    for name in tags.column_names:
        if name in exclude_columns:
            continue
        for op, value, m, mp in _conditions(tags[name], cand, pos & cand):
            m, mp = np.asarray(m, np.int64), np.asarray(mp, np.int64)
            rest, rest_pos = total - m, total_pos - mp
            take = np.minimum(m, n)
            exp = (take * np.divide(mp, m, out=np.zeros(len(m)), where=m > 0)
                   + (n - take) * np.divide(rest_pos, rest, out=np.zeros(len(m)),
                                            where=rest > 0)) / n
            exp[m == 0] = -1.0  # a condition nobody meets is not a rule
            i = int(np.argmax(exp))
            if best is None or exp[i] > best.expected_precision:
                best = TagRule(name, op[i] if isinstance(op, list) else op,
                               _plain(value[i]), int(m[i]), float(mp[i] / m[i]), float(exp[i]))
    if best is None:
        raise ValueError("no tag gives a condition")
    return best


def _conditions(col: pa.ChunkedArray, cand: np.ndarray, cand_pos: np.ndarray):
    """Yield (op or ops, values, matched candidates, matched positives) per family of rules."""
    t = col.type
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    valid = col.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(t):
        true = pc.fill_null(col, False).to_numpy(zero_copy_only=False)
        m, mp = int((true & cand).sum()), int((true & cand_pos).sum())
        yield ["is", "is not"], [True, False], [m, cand.sum() - m], [mp, cand_pos.sum() - mp]
    elif pa.types.is_string(t) or pa.types.is_large_string(t):
        enc = pc.dictionary_encode(col).combine_chunks()
        code = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
        k = len(enc.dictionary)
        m, mp = (np.bincount(code[x] + 1, minlength=k + 1)[1:] for x in (cand, cand_pos))
        yield "=", enc.dictionary.to_pylist(), m, mp
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        v = pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        ok = v[valid & cand]
        if len(ok) == 0:
            return
        lo, hi = ok.min(), ok.max()
        exact = pa.types.is_integer(t) and hi - lo < MAX_THRESHOLDS
        if exact:
            edges = np.arange(lo, hi + 1)
        else:  # quantiles of a strided sample: deterministic and cheap on 10M rows
            sample = ok[:: max(1, len(ok) // 200_000)]
            edges = np.unique(np.quantile(sample, np.linspace(0, 1, MAX_THRESHOLDS + 1)))
        # bucket b holds edges[b] <= v < edges[b + 1]; missing values go to no bucket
        code = np.where(valid, np.searchsorted(edges, np.nan_to_num(v), "right") - 1, -1)
        k = len(edges)
        m, mp = (np.bincount(code[x] + 1, minlength=k + 1)[1:] for x in (cand, cand_pos))
        ge, ge_p = np.cumsum(m[::-1])[::-1], np.cumsum(mp[::-1])[::-1]
        yield ">=", edges, ge, ge_p
        if exact:
            yield "<=", edges, np.cumsum(m), np.cumsum(mp)
            yield "=", edges, m, mp
        else:  # "< edges[b + 1]" is buckets 0..b
            yield "<", edges[1:], np.cumsum(m)[:-1], np.cumsum(mp)[:-1]


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, and whole floats as ints (they print as the tag does)."""
    value = value.item() if hasattr(value, "item") else value
    return int(value) if isinstance(value, float) and value.is_integer() else value
