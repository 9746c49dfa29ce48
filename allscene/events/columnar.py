"""Validation of columnar events (Parquet files) as one SQL query compiled from the models.

The pydantic models in :mod:`allscene.events.schema` stay the one definition of an event.
Checking millions of Parquet rows one object at a time would be slow, so each model's
fields and constraints are compiled to SQL (DuckDB dialect) that yields, per row, the cast
columns and a ``_errors`` string (empty when the row is valid). Messages follow pydantic's
wording, so a reason reads the same whichever path refused the event; a test asserts that
both paths accept and refuse the same rows and name the same fields.
"""

from __future__ import annotations

import datetime as dt

from allscene.events.schema import ARROW_SCHEMA, BY_KIND, KINDS, FieldSpec, field_specs
from allscene.events.validate import MAX_EVENT_BYTES, MAX_FUTURE

_SQL_TYPE = {"str": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN",
             "datetime": "TIMESTAMPTZ", "null": "VARCHAR"}
_TYPE_WORD = {"str": "a valid string", "int": "a valid integer", "float": "a valid number",
              "bool": "a valid boolean", "datetime": "a valid datetime with a time zone"}
_DEFAULTS = {"schema_version": "1", "currency": "'CNY'"}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(v: object) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def _num(v: float) -> str:
    return repr(int(v)) if float(v).is_integer() else repr(v)


def _choices_msg(choices: tuple[object, ...]) -> str:
    parts = [repr(c) for c in choices]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _field_checks(spec: FieldSpec) -> list[str]:
    """SQL expressions that yield a message or NULL, for one field of one kind."""
    c, n = _q(spec.name), spec.name
    out = []
    if spec.type == "null":
        return [f"CASE WHEN {c} IS NOT NULL THEN '{n}: Input should be None' END"]
    if spec.required and spec.name not in _DEFAULTS:
        out.append(f"CASE WHEN {c} IS NULL THEN '{n}: Field required' END")
    if spec.choices is not None and spec.name != "kind":
        vals = ", ".join(_lit(v) for v in spec.choices)
        msg = f"{n}: Input should be {_choices_msg(spec.choices)}".replace("'", "''")
        out.append(f"CASE WHEN {c} NOT IN ({vals}) THEN '{msg}' END")
    if spec.ge is not None:
        out.append(f"CASE WHEN {c} < {_num(spec.ge)} THEN "
                   f"'{n}: Input should be greater than or equal to {_num(spec.ge)}' END")
    if spec.le is not None:
        out.append(f"CASE WHEN {c} > {_num(spec.le)} THEN "
                   f"'{n}: Input should be less than or equal to {_num(spec.le)}' END")
    if spec.min_length is not None:
        s = "" if spec.min_length == 1 else "s"
        out.append(f"CASE WHEN length({c}) < {spec.min_length} THEN "
                   f"'{n}: String should have at least {spec.min_length} character{s}' END")
    if spec.max_length is not None:
        out.append(f"CASE WHEN length({c}) > {spec.max_length} THEN "
                   f"'{n}: String should have at most {spec.max_length} characters' END")
    if spec.pattern is not None:
        p = spec.pattern.replace("'", "''")
        out.append(f"CASE WHEN NOT regexp_full_match({c}, '{p}') THEN "
                   f"'{n}: String should match pattern ''{p}''' END")
    return out


def _kind_checks(kind: str) -> str:
    model = BY_KIND[kind]
    specs = field_specs(model)
    own = {s.name for s in specs}
    checks: list[str] = []
    for spec in specs:
        checks += _field_checks(spec)
    for group in model.require_one_of:
        cond = " AND ".join(f"{_q(f)} IS NULL" for f in group)
        checks.append(f"CASE WHEN {cond} THEN '{', '.join(group)}: at least one is required' END")
    for group in model.together:
        some = " OR ".join(f"{_q(f)} IS NOT NULL" for f in group)
        every = " AND ".join(f"{_q(f)} IS NOT NULL" for f in group)
        checks.append(f"CASE WHEN ({some}) AND NOT ({every}) THEN "
                      f"'{', '.join(group)}: must be given together' END")
    for name in ARROW_SCHEMA.names:
        if name not in own:
            checks.append(f"CASE WHEN {_q(name)} IS NOT NULL THEN "
                          f"'{name}: not a field of this kind' END")
    return "concat_ws(chr(31), " + ", ".join(checks) + ")"


def compile_validation(source_types: dict[str, str], source: str, *,
                       now: dt.datetime | None = None, max_future: dt.timedelta = MAX_FUTURE,
                       max_bytes: int = MAX_EVENT_BYTES) -> str:
    """SQL selecting every event column (cast, defaults filled) plus ``_line``, ``_errors``
    and ``_raw`` from ``source``.

    Parameters
    ----------
    source_types
        Column name → DuckDB type of the input (from ``DESCRIBE``).
    source
        A relation that has the input columns and ``file_row_number``.
    now
        The clock for the future-timestamp check (default: the wall clock).
    """
    now = now or dt.datetime.now(dt.UTC)
    limit = (now + max_future).astimezone(dt.UTC)
    schema_types = {f.name: _arrow_kind(f.type) for f in ARROW_SCHEMA}
    casts, type_checks = [], []
    for name, kind in schema_types.items():
        col, target = _q(name), _SQL_TYPE[kind]
        src_type = source_types.get(name)
        if src_type is None:
            casts.append(f"CAST(NULL AS {target}) AS {col}")
            continue
        if name == "ts":
            if src_type == "TIMESTAMP WITH TIME ZONE":
                casts.append(f"s.{col} AS {col}")
            elif src_type.startswith("TIMESTAMP"):
                casts.append(f"CAST(NULL AS TIMESTAMPTZ) AS {col}")
                type_checks.append(f"CASE WHEN s.{col} IS NOT NULL THEN "
                                   "'ts: Input should have timezone info' END")
            else:
                aware = f"regexp_matches(CAST(s.{col} AS VARCHAR), '(Z|[+-]\\d\\d:?\\d\\d)$')"
                casts.append(f"CASE WHEN {aware} THEN TRY_CAST(s.{col} AS TIMESTAMPTZ) END"
                             f" AS {col}")
                type_checks.append(f"CASE WHEN s.{col} IS NOT NULL AND NOT {aware} THEN "
                                   "'ts: Input should have timezone info' END")
            continue
        if _same_type(src_type, target):
            casts.append(f"s.{col} AS {col}")
            continue
        casts.append(f"TRY_CAST(s.{col} AS {target}) AS {col}")
        bad = f"s.{col} IS NOT NULL AND TRY_CAST(s.{col} AS {target}) IS NULL"
        if target == "BIGINT" and src_type in ("DOUBLE", "FLOAT") or src_type.startswith(
                "DECIMAL") and target == "BIGINT":
            bad = f"s.{col} IS NOT NULL AND s.{col} <> floor(s.{col})"
        type_checks.append(f"CASE WHEN {bad} THEN '{name}: Input should be {_TYPE_WORD[kind]}'"
                           " END")
    extra = [n for n in source_types if n not in schema_types and n != "file_row_number"]
    for name in extra:
        type_checks.append(f"CASE WHEN s.{_q(name)} IS NOT NULL THEN "
                           f"'{name}: not a field of this kind' END")
    strings = [f"coalesce(strlen(s.{_q(n)}), 0)"
               for n, t in source_types.items() if t == "VARCHAR"]
    size = " + ".join(strings) or "0"

    row = "struct_pack(" + ", ".join(f"{_q(n)} := s.{_q(n)}" for n in source_types
                                     if n != "file_row_number") + ")"
    per_kind = " ".join(f"WHEN {_lit(k)} THEN {_kind_checks(k)}" for k in KINDS)
    unknown = ("'kind: unknown kind ''' || \"kind\" || '''; expected one of "
               + ", ".join(KINDS) + "'")
    limit_sql = f"TIMESTAMPTZ '{limit.isoformat()}'"
    future = (f"CASE WHEN ts > {limit_sql} THEN 'ts: ' || strftime(ts AT TIME ZONE 'UTC', "
              f"'%Y-%m-%dT%H:%M:%S+00:00') || ' is more than {max_future} in the future' END")
    outputs = []
    for name in schema_types:
        col = _q(name)
        if name == "schema_version":
            outputs.append(f"coalesce({col}, 1) AS {col}")
        elif name == "currency":
            owners = [k for k, m in BY_KIND.items() if "currency" in m.model_fields]
            outputs.append(f"CASE WHEN kind IN ({', '.join(map(_lit, owners))}) "
                           f"THEN coalesce({col}, 'CNY') ELSE {col} END AS {col}")
        else:
            outputs.append(col)
    return f"""
WITH c AS (
    SELECT s.file_row_number + 1 AS _line, {', '.join(casts)},
        concat_ws(chr(31), {', '.join(type_checks) or 'NULL'}) AS _type_errors,
        {size} AS _size,
        {row} AS _row
    FROM {source} s
), v AS (
    SELECT *, CASE
        WHEN _size > {max_bytes} THEN 'event: ' || _size || ' bytes is over the limit of {max_bytes:,} bytes'
        WHEN _type_errors <> '' THEN _type_errors
        WHEN kind IS NULL THEN 'kind: Field required'
        ELSE CASE kind {per_kind} ELSE {unknown} END
    END AS _e0 FROM c
)
SELECT _line, {', '.join(outputs)},
    CASE WHEN _e0 = '' THEN coalesce({future}, '') ELSE _e0 END AS _errors,
    CASE WHEN _e0 <> '' OR ts > {limit_sql} THEN encode(CAST(to_json(_row) AS VARCHAR)) END
        AS _raw
FROM v
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
