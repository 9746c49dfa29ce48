"""Odd values in Parquet files: the import must agree with the models on each, and store
exactly the value the models would (found in review: DuckDB casts used to round '1.7' to 2,
read 0.5 as true, and NaN slipped through range checks)."""

import datetime as dt
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from allscene.events.ingest import Ingestor
from allscene.events.schema import parse_event
from allscene.storage import ParquetEventLog
from tests.factories import NOW, event

NAN, INF = float("nan"), float("inf")
CASES = [
    ("purchase", "amount", pa.float64(), NAN),
    ("purchase", "amount", pa.float64(), INF),
    ("purchase", "amount", pa.string(), "nan"),
    ("location", "lat", pa.string(), "40.5"),
    ("bluetooth_connect", "year", pa.float64(), NAN),
    ("bluetooth_connect", "year", pa.float64(), 1e20),
    ("bluetooth_connect", "year", pa.float64(), 2016.0),
    ("bluetooth_connect", "year", pa.float64(), 2016.5),
    ("bluetooth_connect", "year", pa.int32(), 2016),
    ("steps", "steps", pa.string(), "1.7"),
    ("steps", "steps", pa.string(), "0x7D0"),
    ("steps", "steps", pa.string(), "2e3"),
    ("steps", "steps", pa.string(), "120"),
    ("steps", "calories", pa.float32(), 12.5),
    ("consent", "personalized_ads", pa.int64(), 2),
    ("consent", "personalized_ads", pa.float64(), 0.5),
    ("consent", "personalized_ads", pa.int64(), 1),
    ("social_post", "text", pa.binary(), b"\xff\xfe"),
    ("social_post", "text", pa.binary(), "hé".encode()),
    ("search", "ts", pa.string(), "2026-10-05 8:0:0Z"),
    ("search", "ts", pa.string(), "2026-10-05T08:00:00+08:00"),
    ("search", "ts", pa.timestamp("us"), dt.datetime(2026, 10, 5, 8)),
    ("search", "schema_version", pa.float64(), NAN),
    ("weather", "temp_c", pa.float64(), NAN),
]


@pytest.mark.parametrize("kind, field, typ, value", CASES,
                         ids=[f"{k}.{f}={v!r}:{t}" for k, f, t, v in CASES])
def test_parquet_import_agrees_with_the_models(tmp_path, kind, field, typ, value):
    row = event(kind, 1)
    row["ts"] = dt.datetime.fromisoformat(row["ts"])
    cols = {k: pa.array([v]) for k, v in row.items() if k != field}
    cols[field] = pa.array([value], typ)
    pq.write_table(pa.table(cols), tmp_path / "one.parquet")
    ing = Ingestor(ParquetEventLog(tmp_path / "log"), now=NOW)
    report = ing.import_file(tmp_path / "one.parquet")

    as_json = {**row, field: value}
    try:
        expected = parse_event(as_json)
    except ValidationError:
        expected = None
    assert report.accepted == (expected is not None), (report.samples, expected)
    if expected is not None:
        stored = ing.log.scan().to_pylist()[0][field]
        want = getattr(expected, field)
        assert stored == want or (isinstance(want, float) and math.isclose(stored, want))
    else:
        assert ing.log.deadletter()["errors"].to_pylist()[0].startswith('["')
