"""The ad server: campaigns, people and state put together behind the HTTP endpoints.

:class:`AdServer` owns one :class:`~allscene.delivery.decide.Decider` and keeps it current:
it reloads the live campaigns (and the audience bitmaps they target) whenever the
configuration store changes, which every server process notices within ``reload_s``. Each
decision is written to the ad log (:mod:`allscene.delivery.adlog`) with its ghosts; each
counted impression, click and conversion becomes an event there too.

Conversions come back through a **conversion token**: the click link's redirect hands the
landing page a signed token (``allscene_conv``) and the advertiser posts it back with the
conversion type. A token counts once per conversion type.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pyroaring import BitMap

from allscene.delivery.adlog import AdLog, decision_events, restore_state
from allscene.delivery.campaigns import Campaign, CampaignService
from allscene.delivery.decide import Decider, Decision, Request
from allscene.delivery.tracking import Tracker, TrackingError
from allscene.delivery.viewers import Directory

CONVERSION_TYPES = ("lead", "activation", "purchase", "retention")
EVENT_KIND = {"imp": "ad_impression", "click": "ad_click"}


class AdServer:
    """Decisions and tracking for one server process.

    Parameters
    ----------
    campaigns
        The :class:`~allscene.delivery.campaigns.CampaignService` (its store is polled).
    decider
        The decision engine (placements, online state, tracker, base URL).
    directory
        Devices to viewers (:class:`~allscene.delivery.viewers.Directory`).
    adlog
        Where ad events go.
    audience_members
        ``(advertiser, name) -> BitMap`` of the rows in a saved audience, or ``None`` when
        it cannot be targeted (unknown, or below the minimum size); ``None`` when there are
        no tags yet.
    """

    def __init__(self, campaigns: CampaignService, decider: Decider, directory: Directory,
                 adlog: AdLog, *, audience_members: Callable[[str, str], BitMap | None]
                 | None = None, reload_s: float = 2.0, learner: Any = None):
        self.campaigns, self.decider, self.directory = campaigns, decider, directory
        self.learner = learner  # an OnlineLearner of the decider's pctr, or None
        self.adlog, self.audience_members, self.reload_s = adlog, audience_members, reload_s
        self.tracker: Tracker = decider.tracker
        self.live: dict[str, Campaign] = {}
        self.audience_problems: dict[tuple[str, str], str] = {}
        self._stamp: object = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.owners: dict[int, str] = {}
        self._request: tuple[float, Mapping[str, Any]] = (time.time(), {})
        pctr = getattr(decider, "pctr", None)
        if hasattr(pctr, "clock"):  # the click model reads the request's time and weather
            pctr.clock, pctr.weather = (lambda: self._request[0]), (lambda: self._request[1])

    # --- campaigns ---------------------------------------------------------------------------

    def reload(self) -> int:
        """Load every campaign from the store; returns how many are indexed."""
        with self._lock:
            store = self.campaigns.store
            self._stamp = store.campaigns_stamp()
            pairs = [(adv, Campaign.model_validate(doc)) for adv, _, doc, _ in
                     store.all_campaigns()]
            wanted = {(adv, a) for adv, c in pairs for a in c.targeting.audiences}
            bitmaps, problems = {}, {}
            for adv, name in sorted(wanted):
                bm = self.audience_members(adv, name) if self.audience_members else None
                if bm is None:
                    problems[(adv, name)] = "no tags yet" if self.audience_members is None \
                        else "unknown, or below the minimum size"
                else:
                    bitmaps[(adv, name)] = bm
            self.directory.set_audiences(bitmaps)
            self.audience_problems = problems
            self.live = {f"{adv}/{c.id}": c for adv, c in pairs}
            self.owners.clear()  # whose each campaign object is (the click model asks)
            self.owners.update({id(c): adv for adv, c in pairs})
            self._checked = time.monotonic()
            return self.decider.load(pairs)

    def maybe_reload(self) -> None:
        """Reload when the store changed (checked at most every ``reload_s``)."""
        if time.monotonic() - self._checked < self.reload_s:
            return
        self._checked = time.monotonic()
        if self.campaigns.store.campaigns_stamp() != self._stamp:
            self.reload()

    def restore(self, log, *, now: dt.datetime | None = None) -> dict[str, float]:
        """After a start: journals left behind into the log, then spend and caps from it."""
        self.adlog.recover()
        return restore_state(self.decider.state, log, self.live,
                             now=now or dt.datetime.now(dt.UTC))

    # --- decisions ---------------------------------------------------------------------------

    def decide(self, placement: str, device_id: str, *, ts: dt.datetime | None = None,
               weather: Mapping[str, Any] | None = None, request_id: str | None = None,
               floor_cny: float = 0.0, limit_tracking: bool = False,
               accepts: Callable[[dict[str, Any]], bool] | None = None) -> Decision:
        """Decide one request and log it. ``KeyError`` for an unknown placement."""
        self.maybe_reload()
        p = self.decider.placements.get(placement)
        if p is None:
            raise KeyError(f"unknown placement {placement!r}")
        ts = ts or dt.datetime.now(dt.UTC)
        kw = {"request_id": request_id} if request_id else {}
        req = Request(placement, device_id, ts, dict(weather or {}), floor_cny=floor_cny,
                      accepts=accepts, **kw)
        viewer = self.directory.viewer(device_id, ts, limit_tracking=limit_tracking)
        self._request = (ts.timestamp(), req.weather)  # what the click model sees as context
        d = self.decider.decide(req, viewer)
        self.adlog.write(decision_events(d, ts, p.device_type))
        if self.learner is not None and d.outcome == "ad":
            self.learner.decided(d.request_id, viewer, self.live[f"{d.advertiser}/{d.campaign}"],
                                 p, (d.creative or {}).get("id"), ts, req.weather)
        return d

    # --- tracking ----------------------------------------------------------------------------

    def track(self, kind: str, query: dict[str, str], *, now: dt.datetime | None = None
              ) -> dict[str, str]:
        """Count an impression or click link (``TrackingError`` when forged, expired or
        used already) and log it; returns the signed fields."""
        now = now or dt.datetime.now(dt.UTC)
        f = self.tracker.accept(kind, query, now=now.timestamp())
        p = self.decider.placements.get(f.get("p"))
        event = {"event_id": f"{kind}-{f['d']}", "ts": now.isoformat(), "kind": EVENT_KIND[kind],
                 "device_id": f.get("dv") or "unknown",
                 "device_type": p.device_type if p else "phone", "request_id": f["d"],
                 "placement_id": f.get("p"), "campaign_id": f.get("c"),
                 "creative_id": f.get("cr"), "advertiser_id": f.get("a")}
        if kind == "imp":
            event["cost"] = float(f.get("price") or 0)
        self.adlog.write([event])
        if self.learner is not None:
            (self.learner.shown if kind == "imp" else self.learner.clicked)(f["d"])
            self.learner.advance(now)
        return f

    def conversion_token(self, fields: dict[str, str], *, now: dt.datetime) -> str:
        """A signed token for the landing page to post back with a conversion."""
        keep = {k: v for k, v in fields.items() if k in ("d", "a", "c", "cr", "p", "dv")}
        return urlsplit(self.tracker.url("", "conv", keep, now=now.timestamp())).query

    def landing_with_token(self, landing: str, fields: dict[str, str], *,
                           now: dt.datetime) -> str:
        parts = urlsplit(landing)
        q = parse_qsl(parts.query, keep_blank_values=True)
        q.append(("allscene_conv", self.conversion_token(fields, now=now)))
        return urlunsplit(parts._replace(query=urlencode(q)))

    def convert(self, token: str, conversion_type: str, *, value: float | None = None,
                now: dt.datetime | None = None) -> dict[str, str]:
        """Count a conversion posted back with its token (once per token and type)."""
        if conversion_type not in CONVERSION_TYPES:
            raise TrackingError(f"type: one of {', '.join(CONVERSION_TYPES)}")
        if value is not None and not 0 <= value <= 1e9:
            raise TrackingError("value: between 0 and 1e9 (CNY)")
        now = now or dt.datetime.now(dt.UTC)
        f = self.tracker.verify("conv", dict(parse_qsl(token, keep_blank_values=True)),
                                now=now.timestamp())
        if not self.tracker.state.first_time(f"conv:{f['d']}:{conversion_type}",
                                             self.tracker.ttl, now.timestamp()):
            raise TrackingError(f"already counted: a {conversion_type} for this token")
        p = self.decider.placements.get(f.get("p"))
        event = {"event_id": f"conv-{f['d']}-{conversion_type}", "ts": now.isoformat(),
                 "kind": "ad_conversion", "device_id": f.get("dv") or "unknown",
                 "device_type": p.device_type if p else "phone", "request_id": f["d"],
                 "campaign_id": f.get("c"), "advertiser_id": f.get("a"),
                 "conversion_type": conversion_type}
        if value is not None:
            event["value"] = value
        self.adlog.write([event])
        return f


def build_ad_server(settings, log, ingestor, scene_ids_of=None) -> AdServer:
    """The ad server for ``settings`` (:class:`allscene.config.Settings`): the configuration
    store (SQLite, or ``config_url``), online state (in-process, or Redis at ``redis_url``),
    people from ``DATA/derived`` when ``tags build`` has run (else every device is unknown
    and only untargeted campaigns serve), then spend and caps restored from the log."""
    from allscene.audiences.store import AudienceStore
    from allscene.media.placements import load_placements
    from allscene.moments.catalog import load_catalog
    from allscene.storage.configdb import ConfigStore
    from allscene.storage.online import MemoryState, RedisState
    from allscene.storage.tables import TableStore

    store = ConfigStore(settings.config_db)
    state = RedisState(settings.redis_url, prefix=settings.redis_prefix) \
        if settings.redis_url else MemoryState()
    placements = load_placements()
    tracker = Tracker(settings.tracking_secret(), state)
    audience_store = AudienceStore(settings.data_dir / "audiences")
    tables = TableStore(settings.data_dir / "derived")
    have = set(tables.names())
    members, tags = None, tables.read("tag_table") if "tag_table" in have else None
    owners: dict[int, str] = {}  # id(campaign) -> advertiser, kept by AdServer.reload
    pctr = load_pctr(settings.data_dir, tags, advertiser_of=lambda c: owners.get(id(c)),
                     online=settings.pctr_online)
    decider = Decider(placements, state, tracker, base_url=settings.public_url,
                      **({"pctr": pctr} if pctr is not None else {}))
    learner = None
    if pctr is not None and settings.pctr_online:
        from allscene.matching.online import OnlineLearner

        learner = OnlineLearner(pctr)
    if {"identity_devices", "tag_table", "consent"} <= have:
        directory = Directory.from_tables(tables.read("identity_devices"), tags,
                                          tables.read("consent"), scenes_of=scene_ids_of)
        members = _members(tags, tables.read("consent"), audience_store)
    else:
        directory = Directory({}, [], scenes_of=scene_ids_of)
    service = CampaignService(
        store, scene_ids={s.id for s in load_catalog().scenes},
        placement_ids={p.id for p in placements},
        audiences=lambda adv: {a.name for a in audience_store.list(adv)})
    adlog = AdLog(ingestor, settings.data_dir / "journal")
    server = AdServer(service, decider, directory, adlog, audience_members=members,
                      learner=learner)
    server.owners = owners
    server.reload()
    server.restore(log)
    adlog.start()
    return server


def _members(tags, consent, audience_store) -> Callable[[str, str], BitMap | None]:
    """``(advertiser, name) -> rows`` of a saved audience that may be targeted."""
    from allscene.audiences.index import TagIndex
    from allscene.audiences.service import Audiences

    index: list[TagIndex] = []

    def members(advertiser: str, name: str) -> BitMap | None:
        if not index:
            index.append(TagIndex.build(tags))
        try:
            aud = Audiences(tags, consent, audience_store, advertiser=advertiser,
                            index=index[0])
            return aud.usable(f"@{name}", "targeted")
        except ValueError:
            return None
    return members


def load_pctr(data_dir, tags, *, advertiser_of, online: bool = False):
    """The click model of ``DATA/models/pctr.npz`` (``allscene pctr train`` writes it) as
    the decision engine's ``pctr``, reading the tag table. Without a model file: ``None``, or
    with ``online`` a model yet to learn from the server's traffic (the engine's prior until
    it has seen 1,000 labelled impressions)."""
    from allscene.matching.ftrl import FTRL
    from allscene.matching.model import PCtr
    from allscene.matching.train import MODEL_FILE, tag_columns

    path = Path(data_dir) / MODEL_FILE
    if not path.exists() and not online:
        return None
    rows: dict[str, dict] = {}
    if tags is not None:
        cols = tag_columns(tags)
        for r in tags.select(["person_id", *cols]).to_pylist():
            rows[r.pop("person_id")] = {k: v for k, v in r.items() if v is not None}
    if not path.exists():
        return PCtr(None, tags_of=rows.get, advertiser_of=advertiser_of, min_events=1000)
    return PCtr(FTRL.load(path), tags_of=rows.get, advertiser_of=advertiser_of, min_events=1)
