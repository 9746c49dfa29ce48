"""Validation of columnar events (Parquet files) as one SQL query compiled from the models.

The pydantic models in :mod:`allscene.events.schema` stay the one definition of an event.
Checking millions of Parquet rows one object at a time would be slow, so each model's
fields and constraints are compiled to a SQL predicate (DuckDB dialect), ``_ok``, evaluated
column-wise. Rows it does not pass (rare in real data) go through the JSON validator, which
says why, so a reason reads the same whichever way an event came in. A test asserts that
both paths accept and refuse the same rows for the same fields.
"""

from __future__ import annotations

import datetime as dt

from allscene.events.schema import ARROW_SCHEMA, BY_KIND, KINDS, FieldSpec, field_specs
from allscene.events.validate import MAX_EVENT_BYTES, MAX_FUTURE

_SQL_TYPE = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN",
             "datetime": "TIMESTAMPTZ", "null": "VARCHAR"}
_DEFAULTS = {"schema_version": "1", "currency": "'CNY'"}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(v: object) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def _num(v: float) -> str:
    return repr(int(v)) if float(v).is_integer() else repr(v)


_INTS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")
_LOSSLESS = {
    "BIGINT": _INTS,
    "DOUBLE": ("FLOAT", "DOUBLE", *_INTS),
    "VARCHAR": ("VARCHAR",),
    "BOOLEAN": ("BOOLEAN",),
    "TIMESTAMPTZ": ("TIMESTAMP WITH TIME ZONE",),
}
"""Source types each event column takes as they are. A value of any other type is not
guessed at in SQL (DuckDB would round '1.7' to 2, or read 0.5 as true): its row goes to the
models, which accept or refuse it exactly as they would the same value in JSON."""


def compile_cast(source_types: dict[str, str], source: str) -> str:
    """SQL casting a Parquet file to the event columns, with ``_line``, ``_types_ok`` (every
    value of a type the column takes as is, no foreign column) and, for rows that are not,
    ``_src``: the row as it was read, for the models to judge.

    Parameters
    ----------
    source_types
        Column name → DuckDB type of the input (from ``DESCRIBE``).
    source
        A relation that has the input columns and ``file_row_number``.
    """
    schema_types = {f.name: _arrow_kind(f.type) for f in ARROW_SCHEMA}
    casts, type_ok = [], []
    for name, kind in schema_types.items():
        col, target = _q(name), _SQL_TYPE[kind]
        src_type = source_types.get(name)
        if src_type is None:
            casts.append(f"CAST(NULL AS {target}) AS {col}")
        elif src_type in _LOSSLESS[target]:
            casts.append(f"CAST(s.{col} AS {target}) AS {col}")
        else:
            casts.append(f"CAST(NULL AS {target}) AS {col}")
            type_ok.append(f"s.{col} IS NULL")
    extra = [n for n in source_types if n not in schema_types and n != "file_row_number"]
    type_ok += [f"s.{_q(n)} IS NULL" for n in extra]
    src = "struct_pack(" + ", ".join(f"{_q(n)} := s.{_q(n)}" for n in source_types
                                     if n != "file_row_number") + ")"
    types_ok = f"coalesce({' AND '.join(type_ok) or 'TRUE'}, FALSE)"
    return f"""
SELECT s.file_row_number + 1 AS _line, {', '.join(casts)}, {types_ok} AS _types_ok,
    CASE WHEN NOT {types_ok} THEN {src} END AS _src
FROM {source} s
"""


def _arrow_kind(t: object) -> str:
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    return "str"


def _same_type(src: str, target: str) -> bool:
    return src == target


# --- the same predicate on Arrow data -----------------------------------------------------------

class _Plan:
    """Per-kind tables compiled once from the models for :func:`check_arrow`."""

    def __init__(self) -> None:
        import numpy as np

        names = ARROW_SCHEMA.names
        k = len(KINDS)
        self.allowed = {c: np.zeros(k + 1, dtype=bool) for c in names}
        self.required = {c: np.zeros(k + 1, dtype=bool) for c in names}
        # column -> list of (spec, kinds having that spec) for value checks
        self.checks: dict[str, list[tuple[FieldSpec, object]]] = {}
        self.groups: list[tuple[int, str, tuple[str, ...]]] = []
        for i, kind in enumerate(KINDS):
            model = BY_KIND[kind]
            for spec in field_specs(model):
                if spec.type == "null" or spec.name == "kind":
                    continue
                self.allowed[spec.name][i] = True
                if spec.required and spec.name not in _DEFAULTS:
                    self.required[spec.name][i] = True
                if any(v is not None for v in (spec.choices, spec.ge, spec.le, spec.min_length,
                                               spec.max_length, spec.pattern)):
                    entries = self.checks.setdefault(spec.name, [])
                    for s, mask in entries:
                        if s._replace(required=False) == spec._replace(required=False):
                            mask[i] = True
                            break
                    else:
                        mask = np.zeros(k + 1, dtype=bool)
                        mask[i] = True
                        entries.append((spec, mask))
            for group in model.require_one_of:
                self.groups.append((i, "one_of", group))
            for group in model.together:
                self.groups.append((i, "together", group))
        self.allowed["kind"][:k] = True
        self.strings = [f.name for f in ARROW_SCHEMA if f.type == "string"]


_PLAN: _Plan | None = None


def check_arrow(table, *, now: dt.datetime | None = None, max_future: dt.timedelta = MAX_FUTURE,
                max_bytes: int = MAX_EVENT_BYTES):
    """Rows of ``table`` (:data:`ARROW_SCHEMA` types) that the models would accept, as a
    numpy bool array; the same predicate as :func:`compile_validation`, run with Arrow
    kernels and numpy (much faster than a per-row SQL expression over 70 columns)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    global _PLAN
    plan = _PLAN = _PLAN or _Plan()
    n = table.num_rows
    code = pc.index_in(table["kind"], value_set=pa.array(KINDS)).fill_null(len(KINDS))
    code = code.to_numpy(zero_copy_only=False)
    bad = code == len(KINDS)
    present = {}
    for name in ARROW_SCHEMA.names:
        col = table[name]
        if col.null_count == n:
            p = np.zeros(n, dtype=bool)
        elif col.null_count == 0:
            p = np.ones(n, dtype=bool)
        else:
            p = col.is_valid().to_numpy(zero_copy_only=False)
        present[name] = p
        bad |= p & ~plan.allowed[name][code]
        bad |= ~p & plan.required[name][code]
    for name, entries in plan.checks.items():
        if not present[name].any():
            continue
        col = table[name]
        for spec, kinds in entries:
            viol = _violations(col, spec, pc, pa)
            if viol is not None:
                bad |= viol & kinds[code]
    for i, rule, group in plan.groups:
        rows = code == i
        if not rows.any():
            continue
        given = [present[f] for f in group]
        if rule == "one_of":
            bad |= rows & ~np.logical_or.reduce(given)
        else:
            bad |= rows & np.logical_or.reduce(given) & ~np.logical_and.reduce(given)
    now = now or dt.datetime.now(dt.timezone.utc)
    late = pc.greater(table["ts"], pa.scalar(now + max_future, pa.timestamp("us", tz="UTC")))
    bad |= late.fill_null(False).to_numpy(zero_copy_only=False)
    size = np.zeros(n, dtype=np.int64)
    for name in plan.strings:
        if present[name].any():
            size += pc.binary_length(table[name]).fill_null(0).to_numpy(zero_copy_only=False)
    bad |= size > max_bytes - 8192  # conservative: the models check the exact JSON size
    return ~bad


def _violations(col, spec: FieldSpec, pc, pa):
    """Bool numpy array: where a present value breaks ``spec`` (nulls never do)."""
    import numpy as np

    parts = []
    if spec.choices is not None:
        parts.append(pc.invert(pc.is_in(col, value_set=pa.array(spec.choices))))
    if spec.type == "float":
        parts.append(pc.is_nan(col))  # NaN compares false with every bound; the models refuse it
    if spec.ge is not None:
        parts.append(pc.less(col, spec.ge))
    if spec.le is not None:
        parts.append(pc.greater(col, spec.le))
    if spec.min_length is not None:
        parts.append(pc.less(pc.utf8_length(col), spec.min_length))
    if spec.max_length is not None:
        parts.append(pc.greater(pc.utf8_length(col), spec.max_length))
    if spec.pattern is not None:
        parts.append(pc.invert(pc.match_substring_regex(col, spec.pattern)))
    if not parts:
        return None
    out = np.zeros(len(col), dtype=bool)
    for p in parts:
        out |= p.fill_null(False).to_numpy(zero_copy_only=False)
    return out


def fill_defaults(events):
    """Defaults the models give absent fields (``schema_version``; ``currency`` on the kinds
    that have one), on Arrow data."""
    import pyarrow as pa
    import pyarrow.compute as pc

    owners = pa.array([k for k, m in BY_KIND.items() if "currency" in m.model_fields])
    version = events["schema_version"].fill_null(1)
    currency = pc.if_else(pc.and_(pc.is_in(events["kind"], value_set=owners),
                                  events["currency"].is_null()),
                          pa.scalar("CNY"), events["currency"])
    i, j = events.schema.get_field_index("schema_version"), events.schema.get_field_index("currency")
    return events.set_column(i, "schema_version", version).set_column(j, "currency", currency)
