import gzip
import json
import random

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allscene.events.ingest import BadInput, Ingestor
from allscene.events.schema import ARROW_SCHEMA, KINDS, parse_event
from allscene.events.validate import MAX_EVENT_BYTES
from allscene.storage import ParquetEventLog
from tests.factories import DEVICELESS, NOW, event


@pytest.fixture
def ingestor(tmp_path):
    return Ingestor(ParquetEventLog(tmp_path / "log"), now=NOW, batch_rows=1000)


def line(e) -> bytes:
    return orjson.dumps(e)


MALFORMED = {
    "bad json": b'{"event_id": "x1", "kind": "search"',
    "unknown kind": line(event("search", 101, kind="telepathy")),
    "missing field": line(event("search", 102, query=None)),
    "mistyped field": line(event("steps", 103, steps="many")),
    "far future": line(event("search", 104, ts="2030-01-01T00:00:00Z")),
    "oversized": line(event("search", 105, query="q", title="x" * MAX_EVENT_BYTES)),
    "wrong encoding": json.dumps(event("search", 106, query="café")).encode("utf-16"),
    "latin-1": json.dumps(event("search", 107, query="café"), ensure_ascii=False).encode("latin-1"),
    "not an object": b'[1, 2, 3]',
}
EXPECTED_REASON = {
    "bad json": "event: not valid JSON", "unknown kind": "kind: unknown kind 'telepathy'",
    "missing field": "query: Field required", "mistyped field": "steps: Input should be a valid integer",
    "far future": "ts: 2030-01-01T00:00:00+00:00 is more than", "oversized": "bytes is over the limit",
    "wrong encoding": "not valid UTF-8", "latin-1": "not valid UTF-8",
    "not an object": "event: expected a JSON object",
}


def test_malformed_lines_are_rejected_with_reasons_and_good_lines_land(ingestor):
    good = [line(event(k, i)) for i, k in enumerate(KINDS)]
    body_lines = []
    for i, g in enumerate(good):
        body_lines.append(g)
        name = list(MALFORMED)[i % len(MALFORMED)] if i < len(MALFORMED) else None
        if name:
            body_lines.append(MALFORMED[name])
    report = ingestor.ingest_body(b"\n".join(body_lines), "test")
    assert report.accepted == len(KINDS)
    assert report.rejected == len(MALFORMED)
    by_line = {r["line"]: r for r in report.results}
    assert [r["status"] for r in report.results].count("accepted") == len(KINDS)
    for n, raw in enumerate(body_lines, start=1):
        name = next((k for k, v in MALFORMED.items() if v == raw), None)
        if name:
            assert by_line[n]["status"] == "rejected"
            assert any(EXPECTED_REASON[name] in e for e in by_line[n]["errors"]), (name, by_line[n])
    dead = ingestor.log.deadletter()
    assert dead.num_rows == len(MALFORMED)
    assert set(dead["raw"].to_pylist()) == set(MALFORMED.values())  # kept byte for byte
    assert ingestor.log.count() == len(KINDS)


def test_a_retried_batch_is_stored_once(ingestor):
    body = b"\n".join(line(event("search", i)) for i in range(50))
    assert ingestor.ingest_body(body, "t").accepted == 50
    again = ingestor.ingest_body(body, "t")
    assert (again.accepted, again.duplicates) == (0, 50)
    assert {r["status"] for r in again.results} == {"duplicate"}
    assert ingestor.log.count() == 50


def test_duplicates_inside_one_batch_keep_the_first(ingestor):
    lines = [line(event("search", 1, query="first")), line(event("search", 1, query="second"))]
    report = ingestor.ingest_body(b"\n".join(lines), "t")
    assert [r["status"] for r in report.results] == ["accepted", "duplicate"]
    assert ingestor.log.scan()["query"].to_pylist() == ["first"]


def test_json_array_body_and_broken_array(ingestor):
    report = ingestor.ingest_body(orjson.dumps([event("search", 1), {"kind": "search"}]), "t")
    assert (report.accepted, report.rejected) == (1, 1)
    with pytest.raises(BadInput, match="not valid JSON"):
        ingestor.ingest_body(b'[{"event_id": 1},', "t")
    assert ingestor.log.count("deadletter") == 2  # the item and the broken body


def test_gzip_json_lines_file(ingestor, tmp_path):
    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wb") as fh:
        for i in range(2500):
            fh.write(line(event(KINDS[i % len(KINDS)], i)) + b"\n")
    seen = []
    report = ingestor.import_file(path, lambda d, t: seen.append((d, t)))
    assert (report.accepted, report.rejected) == (2500, 0)
    assert seen[-1][0] == seen[-1][1]


def _random_events(n: int, seed: int) -> list[dict]:
    """Valid events and events broken in one of many ways, for the two validators."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        e = event(kind, i)
        r = rng.random()
        if r < 0.08:
            e.pop(rng.choice([k for k in e if k not in ("event_id", "kind")]), None)
        elif r < 0.14:
            e["kind"] = "nonsense"
        elif r < 0.20 and kind not in DEVICELESS:
            e["device_type"] = "toaster"
        elif r < 0.25:
            e["ts"] = "2031-01-01T00:00:00+00:00"
        elif r < 0.30 and kind == "steps":
            e["steps"] = -5
        elif r < 0.34 and kind == "search":
            e["query"] = "x" * 600
        elif r < 0.38 and kind == "login":
            e["imei_md5"] = "not-hex"
        elif r < 0.42 and kind == "location":
            e.pop("lon")
        elif r < 0.46 and kind != "search":
            e["query"] = "a field from another kind"
        out.append(e)
    return out


def _to_parquet(events: list[dict], path) -> None:
    import datetime as dt

    cols = {name: [] for name in ARROW_SCHEMA.names}
    for e in events:
        for name in cols:
            v = e.get(name)
            if name == "ts" and v is not None:
                v = dt.datetime.fromisoformat(v)
            cols[name].append(v)
    pq.write_table(pa.table(cols, schema=ARROW_SCHEMA), path)


def test_json_and_parquet_paths_agree(tmp_path):
    """The columnar validator is compiled from the same models: same verdicts, same fields."""
    events = _random_events(600, seed=3)
    _to_parquet(events, tmp_path / "e.parquet")
    (tmp_path / "e.jsonl").write_bytes(b"\n".join(line(e) for e in events))
    a = Ingestor(ParquetEventLog(tmp_path / "a"), now=NOW)
    b = Ingestor(ParquetEventLog(tmp_path / "b"), now=NOW)
    ra, rb = a.import_file(tmp_path / "e.jsonl"), b.import_file(tmp_path / "e.parquet")
    assert 0 < ra.rejected < len(events)
    assert (ra.accepted, ra.rejected) == (rb.accepted, rb.rejected)
    assert a.log.scan()["event_id"].to_pylist() == b.log.scan()["event_id"].to_pylist()

    def fields(log):
        out = {}
        for r in log.deadletter().to_pylist():
            out[r["line"]] = sorted(e.split(":")[0] for e in json.loads(r["errors"]))
        return out

    assert fields(a.log) == fields(b.log)
    # Stored rows are equal whichever path they came through.
    ta, tb = a.log.scan(), b.log.scan()
    assert ta.to_pylist() == tb.to_pylist()
    for row in ta.to_pylist()[:50]:
        parse_event({k: v for k, v in row.items() if v is not None})


def test_parquet_with_foreign_types_and_extra_columns(tmp_path):
    t = pa.table({
        "event_id": ["a", "b", "c"], "kind": ["steps"] * 3, "device_id": ["d"] * 3,
        "device_type": ["band"] * 3,
        "ts": ["2026-10-05T08:00:00+08:00", "2026-10-05T08:00:00", "2026-10-05T09:00:00Z"],
        "steps": ["120", "7", "lots"], "interval_s": [60.0, 60.0, 60.5],
        "mood": [None, None, "happy"],
    })
    pq.write_table(t, tmp_path / "odd.parquet")
    ing = Ingestor(ParquetEventLog(tmp_path / "log"), now=NOW)
    report = ing.import_file(tmp_path / "odd.parquet")
    assert (report.accepted, report.rejected) == (1, 2)
    errors = {r["event_id"]: r["errors"] for r in ing.log.deadletter().to_pylist()}
    assert "ts: Input should have timezone info" in errors["b"]
    assert "steps: Input should be a valid integer" in errors["c"]
    assert "interval_s: Input should be a valid integer" in errors["c"]
    assert "mood: not a field of this kind" in errors["c"]
    assert ing.log.scan()["steps"].to_pylist() == [120]


def test_unreadable_files_fail_clearly(tmp_path):
    ing = Ingestor(ParquetEventLog(tmp_path / "log"), now=NOW)
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        ing.import_file(tmp_path / "x.parquet")
    with pytest.raises(BadInput, match="no such file"):
        ing.import_file(tmp_path / "missing.jsonl")
