"""Served files: each day's impressions joined to their decisions, kept up to date."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from allscene.events.schema import ARROW_SCHEMA
from allscene.storage import ParquetEventLog, served

T0 = dt.datetime(2026, 10, 5, 23, 0, tzinfo=dt.UTC)  # an hour before a UTC midnight
H = dt.timedelta(hours=1)


def ad_events(rows):
    """(kind, request id, campaign, hours after T0[, account]) -> ad events of acme."""
    out = []
    for n, (kind, rid, camp, h, *acct) in enumerate(rows):
        out.append({"event_id": f"{kind}-{n}", "kind": kind, "ts": T0 + h * H,
                    "device_id": "d1", "device_type": "phone", "schema_version": 1,
                    "request_id": rid, "advertiser_id": "acme", "campaign_id": camp,
                    "creative_id": f"{camp}-a", "placement_id": "phone_feed", "cost": 0.01,
                    "outcome": "ad" if kind == "ad_decision" else None,
                    "account_id": acct[0] if acct else None})
    return pa.Table.from_pylist(out, schema=ARROW_SCHEMA)


def served_rows(log):
    ok, stale = log.served()
    assert not stale
    rows = pa.concat_tables(pq.read_table(p) for p in ok).to_pylist()
    return {r["event_id"]: r for r in rows}


def test_each_impression_carries_the_decision_behind_it(tmp_path):
    log = ParquetEventLog(tmp_path)
    log.append(ad_events([
        ("ad_decision", "r1", "c1", 0.5, "p1"), ("ad_impression", "r1", "c1", 1.5),  # next day
        ("ad_decision", "r2", "c1", 0, "p2"), ("ad_decision", "r2", "c1", 0.2, "p3"),
        ("ad_impression", "r2", "c1", 0.3),  # two decisions: the earliest
        ("ad_decision", "r3", "c1", 0), ("ad_impression", "r3", "c1", 24.5),  # a day late
        ("ad_decision", "r4", "c1", 2), ("ad_impression", "r4", "c1", 1),  # before it
        ("ad_decision", "r5", "c2", 0), ("ad_impression", "r5", "c1", 0.1),  # another campaign
    ]))
    assert log.served() == ([], ["2026-10-05", "2026-10-06"])
    assert log.build_served() == 2
    rows = served_rows(log)
    assert rows["ad_impression-1"]["account_id"] == "p1"  # across midnight
    assert rows["ad_impression-1"]["d_ts"] == T0 + 0.5 * H
    assert rows["ad_impression-4"]["account_id"] == "p2"
    for e in ("ad_impression-6", "ad_impression-8", "ad_impression-10"):
        assert rows[e]["d_ts"] is None, e
    assert set(rows) == {f"ad_impression-{i}" for i in (1, 4, 6, 8, 10)}  # impressions only
    assert all(r["h"] is not None for r in rows.values())


def test_late_events_make_their_day_and_the_next_stale_until_rebuilt(tmp_path):
    log = ParquetEventLog(tmp_path)
    log.append(ad_events([("ad_decision", "r1", "c1", 0.5, "p1"),
                          ("ad_impression", "r1", "c1", 20),
                          ("ad_impression", "r2", "c1", 0.6),
                          ("ad_impression", "r3", "c1", 30)]))
    assert log.build_served() == 3 and log.build_served() == 0
    assert served_rows(log)["ad_impression-2"]["d_ts"] is None
    late = ad_events([("ad_decision", "r2", "c1", 0.55, "p9")])
    log.append(late.set_column(0, "event_id", pa.array(["late-decision"])))
    assert log.served()[1] == ["2026-10-05", "2026-10-06"]  # not 10-07, two days on
    calls = []
    assert log.build_served(progress=lambda *a: calls.append(a)) == 2
    assert calls == [("2026-10-05", 0, 2), ("2026-10-06", 1, 2)]
    assert served_rows(log)["ad_impression-2"]["account_id"] == "p9"


def test_files_of_another_layout_or_duckdb_are_stale(tmp_path, monkeypatch):
    """A served file made by other code (other columns, or another DuckDB, whose hash of a
    request id may differ) is not read: its day is joined again."""
    log = ParquetEventLog(tmp_path)
    log.append(ad_events([("ad_decision", "r1", "c1", 0.5, "p1"),
                          ("ad_impression", "r1", "c1", 0.6)]))
    assert log.build_served() == 1 and not log.served()[1]
    monkeypatch.setattr(served.duckdb, "__version__", "0.0.1")
    assert log.served()[1] == ["2026-10-05"] and log.build_served() == 1
    monkeypatch.setattr(served, "LAYOUT", "0")
    assert log.served()[1] == ["2026-10-05"]


def test_compaction_joins_again_and_leaves_no_orphans(tmp_path):
    log = ParquetEventLog(tmp_path)
    for i in range(3):
        log.append(ad_events([("ad_decision", f"r{i}", "c1", 0.1 * i, f"p{i}"),
                              ("ad_impression", f"r{i}", "c1", 0.1 * i + 0.01)])
                   .set_column(0, "event_id", pa.array([f"d{i}", f"i{i}"])))
    log.build_served()
    before = log.files("served")
    assert log.compact(min_files=2, grace_s=0) == 3
    after = log.files("served")
    assert len(after) == 1 and after != before
    assert {r["account_id"] for r in served_rows(log).values()} == {"p0", "p1", "p2"}
    log.gc(grace_s=0)
    assert log.orphans() == []
    assert not any(Path(p).exists() for p in before)
