import datetime as dt
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import numpy as np
import orjson
import pytest

from allscene.events.schema import ARROW_SCHEMA, parse_event
from allscene.events.validate import events_to_arrow
from allscene.storage import ParquetEventLog, eventlog
from tests.factories import T0, event


def table(kind="search", ids=range(10), **over):
    return events_to_arrow([parse_event(event(kind, i, **over)) for i in ids])


def test_append_is_idempotent_by_event_id(tmp_path):
    log = ParquetEventLog(tmp_path)
    assert log.append(table(ids=range(10))).accepted == 10
    r = log.append(table(ids=range(5, 15)))
    assert r.inserted.tolist() == [False] * 5 + [True] * 5
    assert log.count() == 15
    assert sorted(log.scan()["event_id"].to_pylist()) == sorted(f"search-{i}" for i in range(15))


def test_a_fresh_process_sees_what_is_stored(tmp_path):
    ParquetEventLog(tmp_path).append(table(ids=range(10)))
    assert ParquetEventLog(tmp_path).append(table(ids=range(10))).accepted == 0


def test_hash_collisions_never_drop_an_event(tmp_path, monkeypatch):
    """Every id hashing alike must still store distinct ids: hits are confirmed on strings."""
    def same_hash(con, ids):
        return np.zeros(len(ids), dtype=np.uint64)

    monkeypatch.setattr(eventlog, "hash_ids", same_hash)
    log = ParquetEventLog(tmp_path)
    assert log.append(table(ids=range(20))).accepted == 20
    assert log.append(table(ids=range(10, 30))).accepted == 10
    assert log.count() == 30


def test_scan_by_time_kind_and_device(tmp_path):
    log = ParquetEventLog(tmp_path)
    log.append(table("search", range(0, 3000, 7)))  # minutes after T0: spans three days
    log.append(table("steps", range(0, 3000, 11)))
    start, end = T0 + dt.timedelta(hours=10), T0 + dt.timedelta(hours=30)
    got = log.scan(start=start, end=end, kinds=["steps"], device_ids=["dev3"])
    oracle = [i for i in range(0, 3000, 11) if 600 <= i < 1800 and i % 7 == 3]
    assert got["event_id"].to_pylist() == [f"steps-{i}" for i in oracle]
    assert got["ts"].to_pylist() == sorted(got["ts"].to_pylist())
    assert len(log.dates()) == 3


def test_compaction_keeps_every_event_once_and_dedup_still_works(tmp_path):
    log = ParquetEventLog(tmp_path)
    for k in range(10):
        log.append(table(ids=range(k * 10, k * 10 + 10)))
    before = sorted(log.scan()["event_id"].to_pylist())
    old = log.files()
    assert log.compact(min_files=8) == 10
    assert len(log.files()) == 1 and not log.orphans()
    # Readers that listed the old files a moment ago can still open them...
    assert all(os.path.exists(p) for p in old)
    assert log.gc(grace_s=600) == 0
    # ...until the grace period is over.
    assert log.gc(grace_s=0) == 10 and not any(os.path.exists(p) for p in old)
    assert sorted(log.scan()["event_id"].to_pylist()) == before
    assert log.append(table(ids=range(95, 105))).accepted == 5
    assert ParquetEventLog(tmp_path).append(table(ids=range(0, 110))).accepted == 5


def _writer(root, start, n):
    log = ParquetEventLog(root)
    for k in range(0, n, 50):
        log.append(table(ids=range(start + k, start + k + 50)))


def test_concurrent_writers_in_two_processes_store_each_event_once(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(tmp_path, s, 600)) for s in (0, 300)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    ids = ParquetEventLog(tmp_path).scan()["event_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 900


def test_killed_import_then_reimport_leaves_every_event_exactly_once(tmp_path):
    """SIGKILL the importer mid-file, import again: no event lost, none stored twice."""
    n = 120_000
    src = tmp_path / "events.jsonl"
    with open(src, "wb") as fh:
        for i in range(n):
            ts = (T0 + dt.timedelta(seconds=i)).isoformat()  # all in the past
            fh.write(orjson.dumps(event("search" if i % 3 else "steps", i, ts=ts)) + b"\n")
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "allscene.cli", "--data", str(data), "events", "import",
           str(src), "--batch-rows", "2000"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill as soon as the first batch is committed
        if log is None and (data / "log" / "catalog.sqlite").exists():
            log = ParquetEventLog(data / "log")
        if log is not None and log.count() > 0:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert log is not None
    partial = log.count()
    assert 0 < partial < n, "the import should have been killed mid-file"
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = ParquetEventLog(data / "log")
    ids = log.scan(columns=["event_id"])["event_id"].to_pylist()
    assert len(ids) == n and len(set(ids)) == n
    assert log.count() == n


def test_rows_of_foreign_schema_are_cast(tmp_path):
    log = ParquetEventLog(tmp_path)
    t = table(ids=range(3))
    reordered = t.select(list(reversed(ARROW_SCHEMA.names)))
    assert log.append(reordered).accepted == 3
    assert log.scan().schema == ARROW_SCHEMA


@pytest.mark.timeout(120)  # a shared DuckDB connection deadlocked here once
def test_threads_sharing_one_log_append_and_read_safely(tmp_path):
    """The HTTP server appends and reads from a thread pool through one log object."""
    import concurrent.futures as cf

    log = ParquetEventLog(tmp_path)

    def work(k):
        log.append(table(ids=range(k * 40, k * 40 + 60)))  # overlaps the next worker's ids
        return log.scan(kinds=["search"]).num_rows

    with cf.ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(40), timeout=120))
    ids = log.scan()["event_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 39 * 40 + 60


def test_the_index_bound_never_evicts_a_partition_in_use(tmp_path):
    log = ParquetEventLog(tmp_path, max_index_entries=2)
    log.append(table(ids=range(0, 3)))  # day 1
    log.append(table(ids=range(1440, 1443)))  # day 2
    both = table(ids=[0, 1, 2, 1440, 1441, 1442, 5, 1445])
    assert log.append(both).inserted.tolist() == [False] * 6 + [True] * 2
    assert log.count() == 8


def test_scan_takes_times_in_any_zone(tmp_path):
    log = ParquetEventLog(tmp_path)
    log.append(table(ids=[30]))  # 00:30 UTC on 2026-10-05, i.e. 08:30 in Beijing
    cst = dt.timezone(dt.timedelta(hours=8))
    got = log.scan(start=dt.datetime(2026, 10, 5, 8, tzinfo=cst),
                   end=dt.datetime(2026, 10, 5, 9, tzinfo=cst))
    assert got["event_id"].to_pylist() == ["search-30"]


def test_reimport_confirms_hits_from_the_files_holding_them(tmp_path, monkeypatch):
    """A re-run import reads only the files that hold the hashed ids, not the whole day."""
    log = ParquetEventLog(tmp_path)
    for k in range(6):
        log.append(table(ids=range(k * 100, k * 100 + 100)))
    seen = []
    real = log._stored_ids
    monkeypatch.setattr(log, "_stored_ids", lambda fids, cand: seen.append(fids) or real(fids, cand))
    assert log.append(table(ids=range(200, 300))).accepted == 0
    assert len(seen) == 1 and len(seen[0]) == 1
