"""The seed cases replayed end to end: declared case files, simulated days, one report each.

A **case file** (``cases/*.yaml`` in the repository; a marketer copies one and edits it) is
what an advertiser would set up on the platform, nothing more:

* ``advertiser``: ``{id, name}``;
* ``audiences``: saved audiences, ``name: expression``;
* ``packages``: custom audience packages the advertiser uploads from its own app's users,
  ``name: {app, days}`` (the world writes the package: the hashed IMEIs of the people who
  opened that app in the ``days`` before the replay; the platform matches it as any upload);
* ``campaigns``: campaign documents, as ``POST /v1/campaigns`` takes them (with a ``plan``
  when the campaign moves through stages);
* ``activities``: activity documents, as ``allscene activity create`` takes them;
* ``packaging``: codes printed on a product, ``activity: {item}`` (the platform makes the
  activity's codes; the world prints one on each purchase of ``item`` in its event log,
  and the buyer may enter it: :mod:`allscene.world.players`);
* ``search_terms``: the brand's keywords, for search lift;
* ``article``: the figures the seed article reported, and ``claims``: the effects to
  check, ``{claim, metric, order: [campaign or campaign/stage, ...], article}`` meaning
  ``metric`` of the first > the second > ... . A rate metric (``lead_rate``) may also name
  ``activity`` or ``activity/action`` (its participants, or those who did ``action``), and
  ``{claim, metric: ledger, activities: [...]}`` checks the activities' books
  (:mod:`allscene.measurement.casebook`); a case with activities always gets that check.

:func:`replay` sets every case up through the platform's own services, then runs the
simulated days (:class:`~allscene.world.campaign_days.CampaignDays`): each morning the
optimization plans run on what the log holds so far, the ad server reloads, and the day is
played. After the last day, brand searches are written and each case gets its report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml

from allscene.measurement.casebook import RATE_METRICS

CASES_DIR = Path(__file__).resolve().parents[2] / "cases"


@dataclass
class Case:
    """One seed case as declared in its file."""

    id: str
    title: str
    doc: dict[str, Any]
    path: Path
    advertiser: str = ""
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    activities: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Case:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or not isinstance(doc.get("advertiser"), dict) or \
                "id" not in doc["advertiser"]:
            raise ValueError(f"{path}: a case file is a mapping with an 'advertiser: {{id, "
                             "name}'")
        _check(doc, path)
        return cls(doc.get("case", path.stem), doc.get("title", path.stem), doc, path,
                   doc["advertiser"]["id"], list(doc.get("campaigns") or []),
                   list(doc.get("activities") or []))

    def days(self) -> tuple[dt.date, dt.date]:
        """The first and last local day any of its campaigns or activities runs."""
        starts, ends = [], []
        for c in self.campaigns:
            for f in c["flights"]:
                starts.append(_date(f["start"]))
                ends.append(_date(f["end"]) - dt.timedelta(days=1))
        for a in self.activities:
            starts.append(_date(a["start"]))
            ends.append(_date(a["end"]) - dt.timedelta(days=1))
        return min(starts), max(ends)


def _check(doc: dict[str, Any], path: Path) -> None:
    """A clear error naming what is wrong with a case file's activities, packaging and
    claims (campaigns are checked by the campaign service as they are created)."""
    from pydantic import ValidationError

    from allscene.engagement.activity import Activity

    adv = doc["advertiser"]["id"]
    campaigns = {c.get("id") for c in doc.get("campaigns") or () if isinstance(c, dict)}
    activities: dict[str, Activity] = {}
    for i, a in enumerate(doc.get("activities") or ()):
        where = f"{path}: activities[{i}]" + (f" ({a['id']})" if isinstance(a, dict)
                                              and "id" in a else "")
        if not isinstance(a, dict) or a.get("advertiser", adv) != adv:
            raise ValueError(f"{where}: an activity is a mapping of the case's advertiser")
        try:
            activities[a["id"]] = Activity.model_validate({**a, "advertiser": adv})
        except ValidationError as exc:
            raise ValueError(f"{where}: " + "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'activity'}: "
                f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())) from None
    for name, spec in (doc.get("packaging") or {}).items():
        if name not in activities or not activities[name].codes:
            raise ValueError(f"{path}: packaging: {name!r} is not an activity of this case "
                             "with packaging codes")
        if not isinstance(spec, dict) or not isinstance(spec.get("item"), str):
            raise ValueError(f"{path}: packaging.{name}: expected {{item: <product name>}}")
    for i, c in enumerate(doc.get("claims") or ()):
        where = f"{path}: claims[{i}]"
        if not isinstance(c, dict) or not c.get("claim") or not c.get("metric"):
            raise ValueError(f"{where}: a claim is {{claim, metric, order, article}}")
        if c["metric"] == "ledger":
            unknown = set(c.get("activities") or ()) - set(activities)
            if unknown:
                raise ValueError(f"{where}: activities: {sorted(unknown)} not in this case")
            continue
        order = c.get("order")
        if not isinstance(order, list) or len(order) < 2:
            raise ValueError(f"{where}: order: list two or more campaigns to compare")
        known = campaigns | (set(activities) if c["metric"].endswith("_rate") else set())
        for item in order:
            if str(item).partition("/")[0] not in known:
                raise ValueError(f"{where}: order: {item!r} is not a campaign"
                                 + (" or activity" if c["metric"].endswith("_rate") else "")
                                 + " of this case")


def _date(v: Any) -> dt.date:
    t = v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))
    return (t.astimezone(dt.UTC) + dt.timedelta(hours=8)).date()


def load_cases(paths: list[Path] | None = None) -> list[Case]:
    """The case files (default: every ``cases/*.yaml`` of the repository)."""
    return [Case.load(p) for p in (paths or sorted(CASES_DIR.glob("*.yaml")))]


# --- set-up through the platform's services ---------------------------------------------------

def set_up(settings, case: Case, world_dir: Path, first_day: dt.date) -> dict[str, Any]:
    """Create the case's advertiser, audiences, packages, campaigns and activities."""
    from allscene.audiences.service import Audiences
    from allscene.audiences.store import AudienceStore
    from allscene.delivery.campaigns import CampaignService
    from allscene.storage.configdb import ConfigStore
    from allscene.storage.tables import TableStore

    adv = case.advertiser
    store = ConfigStore(settings.config_db)
    if adv not in dict(store.list_advertisers()):
        store.add_advertiser(adv, case.doc["advertiser"].get("name", adv))
    tables = TableStore(settings.data_dir / "derived")
    aud = Audiences(tables.read("tag_table"), tables.read("consent"),
                    AudienceStore(settings.data_dir / "audiences"), advertiser=adv)
    made: dict[str, Any] = {}
    for name, expr in (case.doc.get("audiences") or {}).items():
        made[name] = aud.create(name, expr, replace=True).people
    for name, spec in (case.doc.get("packages") or {}).items():
        lines = package_lines(world_dir, spec["app"], first_day, int(spec.get("days", 7)))
        match = aud.upload(name, ["imei_sha256", *lines], tables.read("device_hashes"),
                           replace=True)
        made[name] = match.matched_people
    service = CampaignService(store)
    for doc in case.campaigns:
        if service.get(adv, doc["id"]) is not None:
            service.delete(adv, doc["id"])
        service.create(adv, doc)
    return made


def package_lines(world_dir: Path, app: str, before: dt.date, days: int) -> list[str]:
    """The advertiser's own export: SHA-256 of the IMEI of each phone that opened ``app`` in the
    ``days`` local days before ``before`` (what its app's SDK saw)."""
    t1 = dt.datetime.combine(before, dt.time(), dt.UTC) - dt.timedelta(hours=8)
    f = (pc.field("kind") == "app_open") & (pc.field("app") == app) & \
        (pc.field("ts") >= t1 - dt.timedelta(days=days)) & (pc.field("ts") < t1)
    devices = set(ds.dataset(world_dir / "events").to_table(columns=["device_id"], filter=f)
                  .column("device_id").to_pylist())
    dev = pq.read_table(world_dir / "truth" / "devices.parquet", columns=["device_id", "imei"])
    return sorted(hashlib.sha256(imei.encode()).hexdigest() for d, imei in zip(
        dev.column("device_id").to_pylist(), dev.column("imei").to_pylist(), strict=True)
        if d in devices and imei)


# --- the simulated days -----------------------------------------------------------------------

@dataclass
class Replayed:
    """What a replay ran: its days, and the counts of each day."""

    days: list[dt.date]
    counts: list[Any]
    plan_records: list[Any] = field(default_factory=list)


def replay(settings, cases: list[Case], world_dir: Path, *, seed: int = 7,
           progress=None) -> Replayed:
    """Set every case up and play the days its campaigns and activities run.

    ``progress`` (optional) is called as ``progress(day, counts)`` after each day.
    """
    from allscene.delivery.server import build_ad_server
    from allscene.engagement.service import build_engagement
    from allscene.events.ingest import Ingestor
    from allscene.storage import ParquetEventLog
    from allscene.world.campaign_days import CampaignDays

    first = min(c.days()[0] for c in cases)
    last = min(max(c.days()[1] for c in cases), _world_last_day(world_dir))
    for case in cases:
        set_up(settings, case, world_dir, first)
    log = ParquetEventLog(settings.log_dir)
    ads = build_ad_server(settings, log, Ingestor(log))
    engagement = build_engagement(settings, ads)
    for case in cases:
        for doc in case.activities:
            try:
                engagement.create(case.advertiser, doc)
            except ValueError as exc:  # EngagementError
                raise ValueError(f"{case.path}: activity {doc['id']}: {exc} (a replay starts "
                                 "from a clean slate: 'allscene demo' clears it)") from None
    sim = CampaignDays(world_dir, ads, engagement, emit=ads.adlog.write, seed=seed)
    for case in cases:
        for name, spec in (case.doc.get("packaging") or {}).items():
            sim.players.stock(name, spec["item"], engagement.generate_codes(case.advertiser,
                                                                            name))
    out = Replayed([], [])
    day = first
    try:
        while day <= last:
            ads.adlog.flush()  # yesterday's clicks into the log, for the plans
            for adv in sorted({c.advertiser for c in cases if any(
                    "plan" in d for d in c.campaigns)}):
                from allscene.matching.plans import run_plans  # only cases with plans

                out.plan_records += run_plans(settings, adv, day)
            ads.reload()
            counts = sim.run_day(day)
            out.days.append(day)
            out.counts.append(counts)
            if progress:
                progress(day, counts)
            day += dt.timedelta(days=1)
        for case in cases:  # searches only where a campaign could have been seen
            terms = case.doc.get("search_terms")
            if terms and out.days:
                ads.adlog.write(brand_searches(sim, case.advertiser, terms, world_dir,
                                               seed=seed))
    finally:
        ads.adlog.close()
    return out


def _world_last_day(world_dir: Path) -> dt.date:
    import json

    meta = json.loads((world_dir / "world.json").read_text())
    return dt.date.fromisoformat(meta["start"]) + dt.timedelta(days=int(meta["days"]) - 1)


def brand_searches(sim, advertiser: str, terms: list[str], world_dir: Path, *, seed: int,
                   per_day: float = 0.02, window_d: int = 7) -> list[dict[str, Any]]:
    """Every person's searches for the brand over the world's days: at their own rate, and
    ``1 + search_lift`` times it in the ``window_d`` days after they first saw its ad."""
    import json

    import numpy as np

    meta = json.loads((world_dir / "world.json").read_text())
    t0 = dt.datetime.fromisoformat(meta["start"]).replace(tzinfo=dt.UTC) - dt.timedelta(hours=8)
    t1 = t0 + dt.timedelta(days=int(meta["days"]))
    dev = pq.read_table(world_dir / "truth" / "devices.parquet",
                        columns=["device_id", "device_type", "person_id"])
    phone = {p: d for d, t, p in zip(*(dev.column(c).to_pylist() for c in
                                       ("device_id", "device_type", "person_id")),
                                     strict=True) if t == "phone"}
    rng = np.random.default_rng([seed, 5151])
    out: list[dict[str, Any]] = []
    span = (t1 - t0).total_seconds()
    w = window_d * 86400
    for person, device in sorted(phone.items()):
        if person not in sim.people:
            continue
        rate = sim.people.search_rate(person, per_day) / 86400
        seen = sim.first_seen.get((person, advertiser))
        times = list(rng.uniform(0, span, rng.poisson(rate * span)))
        if seen is not None:  # the extra searches the ad caused, in its window
            s0 = (seen - t0).total_seconds()
            extra = rate * sim.people.search_lift(person) * min(w, span - s0)
            times += list(s0 + rng.uniform(0, min(w, span - s0), rng.poisson(max(extra, 0))))
        for k, s in enumerate(sorted(times)):
            out.append({"event_id": f"sim-q-{advertiser}-{person}-{k}",
                        "ts": (t0 + dt.timedelta(seconds=float(s))).isoformat(),
                        "kind": "search", "device_id": device, "device_type": "phone",
                        "app": "browser", "query": terms[int(rng.integers(len(terms)))]})
    return out


# --- reports -----------------------------------------------------------------------------------

def case_reports(settings, cases: list[Case], out: Path, *, plan_records=()) -> tuple[Path, list]:
    """One report per campaign of each case (``out/<case>/<campaign>/report.html``) and the
    index page ``out/index.html`` with each case's claims checked and its activities counted
    (their books held against the log); returns the index and the claim results."""
    from allscene.measurement.casebook import check_claim, write_index
    from allscene.measurement.metrics import MeasureError
    from allscene.measurement.report import campaign_metrics, write_report
    from allscene.world.case_truth import world_claims

    entries, results = [], []
    for case in cases:
        metrics, links, notes = {}, [], []
        terms = tuple(case.doc.get("search_terms") or ())
        for doc in case.campaigns:
            cid = doc["id"]
            try:
                m = campaign_metrics(settings, cid, advertiser=case.advertiser,
                                     search_terms=terms)
            except MeasureError as exc:
                notes.append(f"{cid}: {exc}")
                continue
            metrics[cid] = m
            page = write_report(m, out / case.id / cid, title=f"{case.title}: {doc['name']}")
            links.append((doc["name"], str(page.relative_to(out))))
        for r in plan_records:
            if getattr(r, "advertiser", case.advertiser) == case.advertiser and \
                    getattr(r, "campaign", None) in metrics:
                notes.append(f"plan {r.campaign} {r.day}: stage {r.stage}, "
                             f"{r.people:,} people" + (f" ({r.note})" if r.note else ""))
        acts, claims = _activity_claims(settings, case, notes) if case.activities else ([], [])
        claims = [check_claim(metrics, c) for c in case.doc.get("claims") or []
                  if c["metric"] not in _EXTRA] + claims
        claims += world_claims(settings, case.doc)
        results += [(case.id, c) for c in claims]
        entries.append({"id": case.id, "title": case.title, "article": case.doc.get("article"),
                        "claims": claims, "links": links, "notes": notes,
                        "activities": acts})
    index = write_index(out / "index.html", "allscene: the seed cases replayed", entries)
    return index, results


_EXTRA = ("ledger", *RATE_METRICS)
"""Claims :func:`_activity_claims` checks (they read activities and the engine's books)."""


def _activity_claims(settings, case: Case, notes: list[str]) -> tuple[list, list]:
    """A case's activities counted from the log and their books held against the engine's
    (after the world's last day, when their seeds may be revealed), and its claims on them:
    ``(activity rows for the index, claim results)``."""
    from dataclasses import asdict

    from allscene.engagement.service import build_engagement
    from allscene.measurement.activities import activity_metrics, conversion_rates, reconcile
    from allscene.measurement.casebook import check_books, check_claim
    from allscene.measurement.metrics import MeasureError
    from allscene.storage import ParquetEventLog
    from allscene.storage.tables import TableStore

    tables = TableStore(settings.data_dir / "derived")
    people = tables.read("identity_devices").select(["device_id", "person_id"]) \
        if "identity_devices" in set(tables.names()) else None
    log, engine = ParquetEventLog(settings.log_dir), build_engagement(settings, None)
    now = dt.datetime.combine(_world_last_day(settings.world_dir) + dt.timedelta(days=1),
                              dt.time(), dt.UTC) - dt.timedelta(hours=8)
    rows, books = [], {}
    for doc in case.activities:
        try:
            m = activity_metrics(log, case.advertiser, doc["id"], people=people,
                                 conversion_type="lead")
            rows.append({"id": doc["id"], "name": doc["name"], **asdict(m)})
        except MeasureError as exc:
            m = None
            rows.append({"id": doc["id"], "name": doc["name"], "note": str(exc)})
        books[doc["id"]] = reconcile(engine, case.advertiser, doc["id"], m, now=now)
    declared = [c for c in case.doc.get("claims") or [] if c["metric"] in _EXTRA]
    if not any(c["metric"] == "ledger" for c in declared):  # never left unchecked
        declared.append({"claim": "every engagement ledger balances at the end of the replay",
                         "metric": "ledger"})
    out = []
    for c in declared:
        if c["metric"] == "ledger":
            out.append(check_books(c, books))
            continue
        rates = conversion_rates(log, case.advertiser, c["order"],
                                 activities=[a["id"] for a in case.activities], people=people,
                                 conversion_type=RATE_METRICS[c["metric"]])
        notes += [f"{c['metric']}: {item}: {r['converted']:,} of {r['people']:,} people "
                  f"became a {RATE_METRICS[c['metric']]} within 30 days"
                  for item, r in rates.items()]
        out.append(check_claim({}, c, rates=rates))
    return rows, out
