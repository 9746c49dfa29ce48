"""Same seed, same events, whatever the number of workers; another seed, other events."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from allscene.world import generate


def events_digest(out: Path) -> dict[str, str]:
    """SHA-256 of every event file's content (rows in file order; files are sorted by ts)."""
    digests = {}
    for f in sorted((out / "events").glob("*.parquet")):
        t = pq.read_table(f)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, t.schema) as w:
            w.write_table(t)
        digests[f.name] = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
    return digests


def test_same_seed_same_events_across_workers_and_other_seed_differs(tmp_path):
    kw = dict(people=1200, days=3, batch_people=500)
    a = generate(tmp_path / "a", seed=5, workers=2, **kw)
    b = generate(tmp_path / "b", seed=5, workers=1, **kw)
    c = generate(tmp_path / "c", seed=6, workers=2, **kw)
    da, db_, dc = (events_digest(tmp_path / x) for x in "abc")
    assert len(da) == 3 * 3 + 3
    assert da == db_
    assert a["events"] == b["events"]
    assert all(da[k] != dc[k] for k in da)
    assert a["events"] != c["events"]
    for name in ("people", "devices", "ad_response"):
        assert pq.read_table(tmp_path / "a" / "truth" / f"{name}.parquet").equals(
            pq.read_table(tmp_path / "b" / "truth" / f"{name}.parquet"))
    assert pq.read_table(tmp_path / "a" / "truth" / "scenes").num_rows == \
        pq.read_table(tmp_path / "b" / "truth" / "scenes").num_rows


def test_progress_is_reported(tmp_path):
    seen = []
    generate(tmp_path, people=300, days=2, workers=1, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]
