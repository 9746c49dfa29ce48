"""An activity counted from the event log: shown, took part, won, paid, refused, and the
conversions of those who took part beside those only shown."""

from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa
import pytest

from allscene.engagement.service import Engagement, EngagementError, Who
from allscene.events.ingest import Ingestor
from allscene.measurement.activities import activity_metrics
from allscene.measurement.metrics import MeasureError
from allscene.storage import ParquetEventLog
from allscene.storage.engagedb import EngagementStore

T0 = dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 4, 20, tzinfo=dt.UTC)


def test_an_activity_is_counted_like_a_campaign(tmp_path):
    events: list[dict] = []
    eng = Engagement(EngagementStore(f"sqlite:///{tmp_path}/e.sqlite"), code_key=b"k" * 32,
                     emit=events.extend)
    eng.create("buick", {"id": "run", "name": "Run", "start": "2026-03-01T00:00:00+08:00",
                         "end": "2026-03-31T00:00:00+08:00", "entry_points": ["phone_feed"],
                         "prizes": [{"id": "gift", "name": "Gift", "kind": "coupon",
                                     "quantity": 30}],
                         "coupons": {"prizes": ["gift"]}})
    for i in range(120):  # 120 people shown it, 40 take part
        who = Who(f"p{i}", f"ph{i}")
        eng.show("phone_feed", who, T0 + dt.timedelta(minutes=i))
        if i < 40:
            try:
                eng.coupon("run", who, "gift", f"r{i}", T0 + dt.timedelta(minutes=i, seconds=5))
            except EngagementError:
                pass  # the last 10 find it sold out: refused, counted
    conv = [{"event_id": f"cv{i}", "kind": "ad_conversion", "advertiser_id": "buick",
             "conversion_type": "lead", "device_id": f"ph{i}", "device_type": "phone",
             "ts": (T0 + dt.timedelta(days=2)).isoformat()}
            for i in list(range(0, 40, 2)) + list(range(40, 120, 8))]  # 20 of 40, 10 of 80
    log = ParquetEventLog(tmp_path / "log")
    body = b"\n".join(orjson.dumps(e) for e in events + conv)
    report = Ingestor(log, now=NOW).ingest_body(body, "test")
    assert report.accepted == len(events) + len(conv), report.as_dict()
    people = pa.table({"device_id": [f"ph{i}" for i in range(120)],
                       "person_id": [f"p{i}" for i in range(120)]})
    m = activity_metrics(log, "buick", "run", people=people, min_cell=10)
    assert m.totals["shown"] == 120 and m.totals["participants"] == 30
    assert m.totals["participation"] == pytest.approx(0.25)
    assert m.prizes == {"gift": 30} and m.refused == {"sold_out": 10}
    assert {r["action"]: r["people"] for r in m.by_action} == {"coupon": 30, "show": 120}
    took, shown = m.conversions
    assert (took["group"], took["people"], took["converted"]) == ("took part", 30, 15)
    assert (shown["group"], shown["people"], shown["converted"]) == ("shown only", 90, 15)
    assert m.by_day[0]["shown"] == 120
    small = activity_metrics(log, "buick", "run", people=people, min_cell=200)
    assert small.by_day[0]["suppressed"] and all(c["suppressed"] for c in small.conversions)
    with pytest.raises(MeasureError, match="no events of activity 'nope'"):
        activity_metrics(log, "buick", "nope")
    with pytest.raises(MeasureError, match="no events"):
        activity_metrics(log, "globex", "run")  # another advertiser sees nothing
