"""The ad log: every decision, ghost, impression, click and conversion, as events.

Serving must not wait for a Parquet file per request, and must not lose what it served.
So :class:`AdLog` first appends each event as a JSON line to a **journal** file of its own
(one ``write`` per call: once it returns, the line survives the process being killed), and
a background thread moves the journal into the event log every few seconds through the normal
ingest path (validated; duplicates by ``event_id`` dropped). A journal is locked (``flock``)
by the process writing it; at start, :meth:`AdLog.recover` ingests the journals no live
process holds, i.e. what a stopped or killed server left.

:func:`restore_state` then rebuilds the online state from the log after a restart: each
campaign's spend today and in total, and the recent impressions that frequency caps count,
so a restarted server neither overspends nor shows a person an ad once more than the cap.
It only ever raises a counter (Redis, shared and possibly ahead of the log, keeps its own).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from allscene.delivery.decide import LOCAL, Decision

DECISION = "ad_decision"


def decision_events(d: Decision, ts: dt.datetime, device_type: str) -> list[dict[str, Any]]:
    """The ``ad_decision`` events of a decision: the decision itself (``ad`` or ``no_ad``,
    with the reasons campaigns were passed over) and one ``holdout`` event per ghost, the ad
    a held-out person would have been shown."""
    main = {"ts": ts.isoformat(), "device_id": d.device_id, "device_type": device_type,
            "kind": DECISION, "request_id": d.request_id, "placement_id": d.placement}
    if d.person_id:
        main["account_id"] = d.person_id
    base = dict(main) if d.ghosts else main
    main["event_id"], main["outcome"] = f"dec-{d.request_id}", d.outcome
    if d.outcome == "ad":
        main["advertiser_id"], main["campaign_id"] = d.advertiser, d.campaign
        main["creative_id"], main["cost"] = (d.creative or {}).get("id"), d.price_cny
        if d.scene:
            main["scene"] = d.scene
        if d.audience:
            main["audience"] = d.audience
        if d.stage:
            main["stage"] = d.stage
    if d.reasons:
        main["reason"] = "; ".join([f"{k}: {v}" for k, v in sorted(d.reasons.items())])[:512]
    out = [main]
    for adv, cid in d.ghosts:
        out.append(dict(base, event_id=f"ghost-{d.request_id}-{adv}-{cid}", outcome="holdout",
                        advertiser_id=adv, campaign_id=cid))
    return out


class AdLog:
    """Journals ad events and moves them into the event log.

    Parameters
    ----------
    ingestor
        An :class:`~allscene.events.ingest.Ingestor` over the event log.
    journal_dir
        Where the journals live (``DATA/journal``).
    flush_s
        How often the background thread moves the journal into the log. Each move has a
        fixed cost (about 25 ms) and writes a Parquet file, so every 5 s rather than every
        second: at 5,000 decisions/s that is 6 us of work per event instead of 9-13.
    """

    def __init__(self, ingestor, journal_dir: str | os.PathLike[str], *, flush_s: float = 5.0):
        self.ingestor = ingestor
        self.dir = Path(journal_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._fd, self._path, self._bytes = self._open()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stored = 0

    def _open(self) -> tuple[int, Path, int]:
        path = self.dir / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{os.getpid()}-" \
                          f"{uuid.uuid4().hex[:8]}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd, path, 0

    def write(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Append events to the journal (one system call)."""
        data = b"".join([orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in events])
        if not data:
            return
        with self._lock:
            os.write(self._fd, data)
            self._bytes += len(data)

    def flush(self) -> int:
        """Move what was journalled so far into the event log; returns events stored."""
        with self._lock:
            if not self._bytes:
                return 0
            fd, path = self._fd, self._path
            self._fd, self._path, self._bytes = self._open()
        os.close(fd)  # releases the lock; the file is complete
        n = self._ingest(path)
        self.stored += n
        return n

    def _ingest(self, path: Path) -> int:
        report = self.ingestor.import_own_jsonl(path)
        path.unlink()
        return report.accepted

    def recover(self) -> int:
        """Ingest journals that no live process holds (left by a stopped server)."""
        n = 0
        for path in sorted(self.dir.glob("*.jsonl")):
            if path == self._path:
                continue
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live server's journal
            try:
                if path.exists():
                    n += self._ingest(path)
            finally:
                os.close(fd)
        self.stored += n
        return n

    def start(self) -> AdLog:
        """Flush in the background every ``flush_s`` seconds."""
        def loop() -> None:
            while not self._stop.wait(self.flush_s):
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - keep the journal; retry next round
                    pass
        self._thread = threading.Thread(target=loop, name="adlog-flush", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        with self._lock:
            os.close(self._fd)
            if not self._bytes:
                self._path.unlink(missing_ok=True)


def restore_state(state, log, campaigns: Mapping[str, Any], *, now: dt.datetime) -> dict[str, float]:
    """Raise the online state to what the event log says was served.

    ``campaigns`` maps ``advertiser/campaign`` keys to campaigns (for their frequency
    windows). Returns the spend restored per key (CNY, in total).
    """
    if not campaigns:
        return {}
    t = log.scan(kinds=[DECISION], columns=["ts", "device_id", "account_id", "outcome",
                                             "advertiser_id", "campaign_id", "cost"])
    rows = [r for r in t.to_pylist() if r["outcome"] == "ad" and r["cost"] is not None]
    today = now.astimezone(LOCAL).date()
    total: dict[str, float] = {}
    day: dict[str, float] = {}
    seen: dict[tuple[str, str], list[float]] = {}
    widest = {k: c.frequency_cap.per_hours * 3600 for k, c in campaigns.items()}
    for r in rows:
        key = f"{r['advertiser_id']}/{r['campaign_id']}"
        if key not in campaigns:
            continue
        total[key] = total.get(key, 0.0) + r["cost"]
        if r["ts"].astimezone(LOCAL).date() == today:
            day[key] = day.get(key, 0.0) + r["cost"]
        ts = r["ts"].timestamp()
        if ts > now.timestamp() - widest[key]:
            who = r["account_id"] or f"device:{r['device_id']}"
            seen.setdefault((who, key), []).append(ts)
    iso = today.isoformat()
    for key, spent in total.items():
        state.restore_spend(key, iso, day.get(key, 0.0), spent)
    for (who, key), times in seen.items():
        state.restore_seen(who, key, times, widest[key])
    return total
