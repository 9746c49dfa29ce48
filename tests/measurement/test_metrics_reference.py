"""The optimized campaign count (one read of the log, numpy breakdowns) against the
reference: the SQL-per-step and GROUP-BY-per-breakdown count it replaced
(:mod:`tests.measurement.reference_metrics`), on random small logs that hold every kind of
invalid traffic, replayed impressions with tied times, several decisions for one request,
every attribution path, retention, and Parquet files of two schemas."""

import datetime as dt
import math
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from allscene.events.schema import ARROW_SCHEMA
from allscene.measurement import cells
from allscene.measurement.metrics import DIMENSIONS, Rules, measure
from allscene.storage import ParquetEventLog, served
from tests.measurement.reference_metrics import reference_measure

T0 = dt.datetime(2026, 10, 5, 2, 0, tzinfo=dt.UTC)
PLACEMENTS = (("phone_splash", "phone"), ("phone_feed", "phone"), ("tv_boot", "tv"),
              ("odd_slot", "phone"))
MEDIA = {"phone_splash": "system", "phone_feed": "news", "tv_boot": "system"}
DAY = 86_400


class FilesLog:
    """Parquet files as :meth:`ParquetEventLog.files` lists them."""

    def __init__(self, paths):
        self.paths = [str(p) for p in paths]

    def files(self, dataset="events", start=None, end=None):
        return list(self.paths)


def _log(tmp_path, seed: int, *, mixed_schemas: bool, targeting: bool = True
         ) -> tuple[FilesLog, pa.Table, set]:
    rng = random.Random(seed)
    events, n = [], [0]

    def add(kind, s, device, **kw):
        n[0] += 1
        events.append({"event_id": kw.pop("eid", f"e{n[0]:05d}"), "kind": kind,
                       "ts": T0 + dt.timedelta(seconds=s), "device_id": device,
                       "device_type": kw.pop("device_type", "phone"), "schema_version": 1,
                       "advertiser_id": "acme", **kw})

    people, devices = [], []
    for p in range(30):
        for k in range(rng.choice((1, 1, 2, 3))):
            devices.append((f"dev{p}-{k}", f"p{p}"))
            if rng.random() < 0.75:
                people.append((f"dev{p}-{k}", f"p{p}"))
    bots = {devices[3][0], devices[11][0]}
    for r in range(400):
        rid, dev, person = f"r{r:04d}", *rng.choice(devices)
        s = rng.uniform(0, 12 * DAY)
        place, dtype = rng.choice(PLACEMENTS)
        camp = rng.choice(("c1", "c1", "c2", "c3"))
        ad = {"campaign_id": camp, "creative_id": f"{camp}-cr{rng.randint(1, 3)}",
              "placement_id": place, "device_type": dtype}
        extra = {k: rng.choice((None, f"{k}{rng.randint(1, 2)}")) if targeting else None
                 for k in ("scene", "audience", "stage")}
        known = rng.random() < 0.8
        for j in range(2 if rng.random() < 0.05 * (seed % 2) else 1):  # two decisions
            if rng.random() < 0.95 or j:
                add("ad_decision", s - 0.5 + j, dev, request_id=rid,
                    outcome=rng.choice(("ad",) * 8 + ("no_ad", "holdout")),
                    account_id=person if known else None,
                    cost=round(rng.uniform(0.01, 0.2), 4), **ad, **extra)
        if rng.random() < 0.1:
            continue  # not shown
        cost = rng.choice((None, round(rng.uniform(0.01, 0.2), 4)))
        add("ad_impression", s, dev, request_id=rid, cost=cost, **ad)
        if rng.random() < 0.08:  # replayed, now and then at the very same time
            add("ad_impression", s + rng.choice((0, 0, 5)), dev, request_id=rid, cost=cost,
                eid=f"e{n[0]:05d}a" if rng.random() < 0.5 else f"a{n[0]:05d}", **ad)
        if rng.random() < 0.25:
            c = s + rng.choice((0.3, 2, 30, 600))
            add("ad_click", c, dev, request_id=rid, **ad)
            if rng.random() < 0.1:
                add("ad_click", c + 40, dev, request_id=rid, **ad)
            if rng.random() < 0.5:
                typ = rng.choice(("lead", "activation", "activation", "purchase"))
                cv = c + rng.choice((60, 3 * DAY, 40 * DAY))
                add("ad_conversion", cv, rng.choice((dev, devices[0][0])), request_id=rid,
                    conversion_type=typ, campaign_id=camp)
                if typ == "activation" and rng.random() < 0.6:
                    add("ad_conversion", cv + rng.choice((DAY, 3 * DAY, 9 * DAY)), dev,
                        conversion_type="retention")
        if rng.random() < 0.05:  # view-through, from any of the person's devices
            add("ad_conversion", s + rng.uniform(0, 9 * DAY), rng.choice(devices)[0],
                conversion_type=rng.choice(("lead", "purchase", "activation")))
    for i in range(40):  # a click burst from one device in one hour
        rid = f"burst{i}"
        add("ad_decision", 3 * DAY + i, "farm", request_id=rid, outcome="ad", campaign_id="c1",
            creative_id="c1-cr1", placement_id="phone_feed", cost=0.05)
        add("ad_impression", 3 * DAY + i + 1, "farm", request_id=rid, campaign_id="c1",
            creative_id="c1-cr1", placement_id="phone_feed", cost=0.05)
        add("ad_click", 3 * DAY + i + 3, "farm", request_id=rid, campaign_id="c1",
            creative_id="c1-cr1", placement_id="phone_feed")
    add("ad_impression", 100, "dev0-0", request_id="forged", campaign_id="c1",
        creative_id="c1-cr1", placement_id="phone_feed", cost=0.05)
    add("ad_click", 200, "dev0-0", request_id="nothing", campaign_id="c1",
        creative_id="c1-cr1", placement_id="phone_feed")
    add("ad_conversion", 300, "organic", conversion_type="lead")
    add("ad_decision", 400, "dev1-0", request_id="other-adv", outcome="ad", campaign_id="c1",
        creative_id="c1-cr1", placement_id="phone_feed", advertiser_id="zeta")
    events.sort(key=lambda e: (e["kind"], e["device_id"], e["ts"]))
    paths = []
    for i, part in enumerate((events[0::2], events[1::2])):
        tab = pa.Table.from_pylist(part, schema=ARROW_SCHEMA)
        if mixed_schemas and i:
            tab = tab.drop_columns(["scene", "audience", "stage"])
        paths.append(tmp_path / f"part-{i}.parquet")
        pq.write_table(tab, paths[-1])
    return FilesLog(paths), pa.table(dict(zip(("device_id", "person_id"),
                                              map(list, zip(*people, strict=True)),
                                              strict=True))), bots


def _same(got, want, where: str) -> None:
    if isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9), where
    elif isinstance(want, dict):
        assert list(got) == list(want), where
        for k in want:
            _same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    else:
        assert got == want and type(got) is type(want), f"{where}: {got!r} != {want!r}"


BY = [[d] for d in DIMENSIONS] + [["day", "placement"], ["device_type", "creative", "stage"],
                                  ["medium", "hour"]]


@pytest.mark.parametrize("seed, mixed, kw", [
    (1, False, {}),
    (2, True, {"min_cell": 3}),
    (3, False, {"start": T0 + dt.timedelta(days=2), "end": T0 + dt.timedelta(days=7),
                "rules": Rules(view_window_d=2, click_window_d=5, min_click_s=3)}),
    (4, True, {"no_people": True, "frequency_cap": 3, "min_cell": 2}),
    (5, False, {"rules": Rules(max_clicks_per_hour=5), "start": T0 + dt.timedelta(days=30)}),
    (6, False, {"people_twice": True}),  # a device twice in the identity graph
    (7, False, {"weak_hash": True}),  # request ids that share a hash are not one request;
    # and reach counted from sorted (cell, person) pairs rather than a matrix
    (8, False, {"no_targeting": True}),  # no scene, audience or stage: one cell each
])
def test_the_optimized_count_matches_the_reference(tmp_path, monkeypatch, seed, mixed, kw):
    kw = dict(kw)
    log, people, bots = _log(tmp_path, seed, mixed_schemas=mixed,
                             targeting=not kw.pop("no_targeting", False))
    if kw.pop("weak_hash", False):
        monkeypatch.setattr(served, "HASH", "length({})::BIGINT")
        monkeypatch.setattr(cells, "MATRIX_LIMIT", 0)
    if kw.pop("no_people", False):
        people = None
    if kw.pop("people_twice", False):
        people = pa.concat_tables([people, people.slice(0, 5)])
    rules = kw.pop("rules", Rules())
    rules = Rules(**{f: getattr(rules, f) for f in ("view_window_d", "click_window_d",
                                                     "min_click_s", "max_clicks_per_hour")},
                  bot_devices=frozenset(bots))
    args = dict(by=BY, people=people, media=MEDIA, rules=rules, min_cell=kw.pop("min_cell", 1),
                **kw)
    got = measure(log, "acme", ["c1", "c2"], **args)
    want = reference_measure(log, "acme", ["c1", "c2"], **args)
    if kw.get("start", T0) < T0 + dt.timedelta(days=20):
        assert want.totals["impressions"] > 0 and want.invalid  # the log has work to do
    _same(got.totals, want.totals, "totals")
    _same(got.invalid, want.invalid, "invalid")
    _same(got.frequency, want.frequency, "frequency")
    _same(got.reach_curve, want.reach_curve, "reach_curve")
    assert got.suppressed == want.suppressed
    assert list(got.breakdowns) == list(want.breakdowns)
    for name, table in want.breakdowns.items():
        assert got.breakdowns[name].schema == table.schema, name
        _same(got.breakdowns[name].to_pylist(), table.to_pylist(), name)


@pytest.mark.parametrize("seed", [1, 3])
def test_the_served_files_count_as_the_join_does(tmp_path, seed):
    """A log's impressions joined to their decisions ahead (served files), up to date or
    stale after late events, count as the reference's join does."""
    files, people, bots = _log(tmp_path, seed, mixed_schemas=False)
    events = pa.concat_tables(pq.read_table(p) for p in files.paths)
    late = np.random.default_rng(seed).random(events.num_rows) < 0.1
    log = ParquetEventLog(tmp_path / "log")
    log.append(events.filter(pa.array(~late)))
    args = dict(by=BY, people=people, media=MEDIA, min_cell=1,
                rules=Rules(bot_devices=frozenset(bots)))

    def check(stale_days: int) -> None:
        ok, stale = log.served()
        assert len(stale) == stale_days and (stale_days or ok)
        got = measure(log, "acme", ["c1", "c2"], **args)
        want = reference_measure(FilesLog(log.files("events")), "acme", ["c1", "c2"], **args)
        assert want.totals["impressions"] > 0
        for k in ("totals", "invalid", "frequency", "reach_curve"):
            _same(getattr(got, k), getattr(want, k), k)
        for name, table in want.breakdowns.items():
            _same(got.breakdowns[name].to_pylist(), table.to_pylist(), name)

    check(len(log.dates()))  # nothing served yet: every day joined by the report
    assert log.build_served() == len(log.dates())
    assert log.build_served() == 0  # up to date
    check(0)
    log.append(events.filter(pa.array(late)))  # late events: their days (and the next) stale
    check(len(log.served()[1]))
    assert log.served()[1]
    log.compact(min_files=2, grace_s=0)  # compaction joins the stale days again
    check(0)


def test_people_who_share_a_hash_are_still_two():
    """People are numbered by a hash of their id, checked by a second one: two people whose
    first hashes clash are numbered apart (by both hashes), one person stays one."""
    imp = pa.table({"ph": [7, 7, 7, 9], "ph2": [1, 2, 1, 3]})  # p1, p2, p1, p3
    idx, n = cells._number_people(imp)
    assert idx[0] == idx[2] and len({idx[0], idx[1], idx[3]}) == 3 and n == 3
    idx, n = cells._number_people(imp.set_column(1, "ph2", pa.array([1, 1, 1, 3])))
    assert idx[0] == idx[1] == idx[2] != idx[3]  # both hashes alike (a chance near 2^-126)
