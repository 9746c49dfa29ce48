"""An interactive activity counted from the event log like a campaign: who saw it, who took
part, what they did and won, what it paid out, what was refused and why, and whether taking
part led to conversions.

The engagement engine (:mod:`allscene.engagement`) writes an ``engagement`` event for every
show, claim and refusal; this module reads only those events and the advertiser's
``ad_conversion`` events, never the engine's store. A person is the event's ``account_id``
(the identity graph's person when the device was known), else the ``people`` table's person
of the device, else the device.

Conversions: an ``ad_conversion`` of the advertiser from any of a person's devices within
``window_d`` days after the person first took part counts for the participants; for the
people who were shown the activity and did not take part, the window starts when they were
first shown it. The two rates side by side are the Buick and Qunar question ("do players
become leads more often?"); they compare self-selected groups, so they are not a lift.
:func:`conversion_rates` puts the same rate of any group beside another: the people who did
one action of an activity (``qunar_theme/draw``), those shown a campaign's ad.

:func:`reconcile` holds the engine's books against the log: the ledger balances
(:meth:`~allscene.storage.engagedb.EngagementStore.check_ledger`), what the engine says it
paid and awarded is what the log counted, and every draw re-runs from the revealed seed
(:func:`allscene.engagement.draws.replay`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from allscene.measurement.metrics import DAY, MeasureError, _lit, _optional, _window
from allscene.storage.duck import connect

COLUMNS = ("activity_id", "action", "prize_id", "amount", "points", "reason", "account_id")


@dataclass
class ActivityMetrics:
    advertiser: str
    activity: str
    totals: dict[str, Any]
    by_action: list[dict[str, Any]] = field(default_factory=list)
    prizes: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    by_day: list[dict[str, Any]] = field(default_factory=list)
    conversions: list[dict[str, Any]] = field(default_factory=list)
    suppressed: int = 0


def activity_metrics(log, advertiser: str, activity: str, *,
                     start: dt.datetime | None = None, end: dt.datetime | None = None,
                     people: pa.Table | None = None, window_d: int = 30,
                     min_cell: int = 50, conversion_type: str | None = None
                     ) -> ActivityMetrics:
    """Count one activity of ``advertiser`` (see the module docstring); days with fewer
    than ``min_cell`` people shown are suppressed. ``conversion_type`` (e.g. ``lead``)
    counts only those conversions."""
    _window(start, end)
    paths = log.files("events", start.astimezone(dt.UTC).date() if start else None, None)
    con = connect()
    con.register("people_in", people if people is not None else pa.table({
        "device_id": pa.array([], pa.string()), "person_id": pa.array([], pa.string())}))
    lo = start or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    hi = end or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
    if not paths:
        raise MeasureError(f"no events of activity {activity!r}")
    src = (f"read_parquet([{', '.join(_lit(p) for p in paths)}], union_by_name=true,"
           " hive_partitioning=false)")
    have = _optional(con, paths, COLUMNS)
    con.execute(
        f"CREATE TEMP TABLE eng AS SELECT e.ts, e.action, e.prize_id, e.amount, e.points,"
        " split_part(e.reason, ':', 1) refused,"
        " coalesce(e.account_id, pe.person_id, 'device:' || e.device_id) person"
        f" FROM (SELECT ts, device_id, {have} FROM {src} WHERE kind = 'engagement'"
        f" AND advertiser_id = {_lit(advertiser)}) e"
        " LEFT JOIN people_in pe ON pe.device_id = e.device_id"
        f" WHERE e.activity_id = {_lit(activity)} AND e.ts >= {_lit(lo)} AND e.ts < {_lit(hi)}")
    (n,) = con.execute("SELECT count(*) FROM eng").fetchone()
    if not n:
        raise MeasureError(f"no events of activity {activity!r} of {advertiser!r} in the "
                           "window")
    ok = "refused IS NULL"
    totals = dict(zip(("events", "shown", "participants", "cash_paid", "points_earned",
                       "points_spent"), con.execute(
        f"SELECT count(*), count(DISTINCT person) FILTER (WHERE action = 'show' AND {ok}),"
        f" count(DISTINCT person) FILTER (WHERE action <> 'show' AND {ok}),"
        f" coalesce(sum(amount) FILTER (WHERE {ok}), 0),"
        f" coalesce(sum(points) FILTER (WHERE points > 0 AND {ok}), 0),"
        f" coalesce(-sum(points) FILTER (WHERE points < 0 AND {ok}), 0) FROM eng").fetchone(),
        strict=True))
    totals["cash_paid"] = round(float(totals["cash_paid"]), 2)
    totals["participation"] = (totals["participants"] / totals["shown"]
                               if totals["shown"] else None)
    out = ActivityMetrics(advertiser, activity, totals)
    out.by_action = [{"action": a, "events": int(e), "people": int(p)} for a, e, p in con.execute(
        f"SELECT action, count(*), count(DISTINCT person) FROM eng WHERE {ok}"
        " GROUP BY action ORDER BY action").fetchall()]
    out.prizes = dict(con.execute(f"SELECT prize_id, count(*) FROM eng WHERE {ok} AND"
                                  " prize_id IS NOT NULL AND action <> 'redeem'"
                                  " GROUP BY 1 ORDER BY 1").fetchall())
    out.refused = dict(con.execute("SELECT refused, count(*) FROM eng WHERE refused IS NOT"
                                   " NULL GROUP BY 1 ORDER BY 1").fetchall())
    for day, shown, took, acts in con.execute(
            f"SELECT {DAY.format(ts='ts')} AS day,"
            f" count(DISTINCT person) FILTER (WHERE action = 'show' AND {ok}),"
            f" count(DISTINCT person) FILTER (WHERE action <> 'show' AND {ok}),"
            f" count(*) FILTER (WHERE action <> 'show' AND {ok}) FROM eng"
            " GROUP BY ALL ORDER BY day").fetchall():
        small = shown < min_cell
        out.suppressed += small
        out.by_day.append({"day": str(day), "suppressed": small,
                           **({} if small else {"shown": shown, "participants": took,
                                                "actions": acts})})
    out.conversions = _conversions(con, src, advertiser, window_d, min_cell, conversion_type)
    return out


def _conversions(con, src: str, advertiser: str, window_d: int, min_cell: int,
                 conversion_type: str | None = None) -> list[dict[str, Any]]:
    """Conversions within ``window_d`` days after taking part, or after first being shown
    for those who never took part."""
    rows = con.execute(
        "WITH who AS (SELECT person, min(ts) FILTER (WHERE action <> 'show') took,"
        "  min(ts) first_seen FROM eng WHERE refused IS NULL GROUP BY person),"
        " grp AS (SELECT person, took IS NOT NULL participant,"
        "  coalesce(took, first_seen) t0 FROM who),"
        " cv AS (SELECT c.ts, coalesce(pe.person_id, 'device:' || c.device_id) person,"
        f"  c.conversion_type FROM (SELECT ts, device_id, conversion_type FROM {src}"
        f"  WHERE kind = 'ad_conversion' AND advertiser_id = {_lit(advertiser)}"
        + (f" AND conversion_type = {_lit(conversion_type)}" if conversion_type else "")
        + ") c LEFT JOIN people_in pe ON pe.device_id = c.device_id)"
        " SELECT g.participant, count(DISTINCT g.person) people,"
        "  count(DISTINCT cv.person) converted, count(cv.person) conversions"
        " FROM grp g LEFT JOIN cv ON cv.person = g.person AND cv.ts >= g.t0"
        f"  AND cv.ts < g.t0 + to_days({int(window_d)})"
        " GROUP BY g.participant ORDER BY g.participant DESC").fetchall()
    out = []
    for participant, n, conv, total in rows:
        label = "took part" if participant else "shown only"
        if n < min_cell:
            out.append({"group": label, "suppressed": True})
            continue
        out.append({"group": label, "suppressed": False, "people": n, "converted": conv,
                    "conversions": total, "rate": conv / n})
    return out


def conversion_rates(log, advertiser: str, items: Iterable[str], *, activities: Iterable[str],
                     people: pa.Table | None = None, conversion_type: str = "lead",
                     window_d: int = 30, min_cell: int = 50) -> dict[str, dict[str, Any]]:
    """The share of a group of people with a ``conversion_type`` conversion of the advertiser
    within ``window_d`` days after they first joined the group, for each item:

    * ``<activity>``: its participants (any accepted action but ``show``);
    * ``<activity>/<action>``: the people with an accepted ``action`` (``draw``, ``badge``);
    * ``<campaign>``: the people shown its ad (an ``ad_impression`` with the ``ad`` decision
      of the same request behind it), from their first impression, who never took part in
      an activity of the advertiser: the two kinds of group never share a person, so an
      activity's leads do not count for an ad whose surface it shares.

    Returns ``{item: {people, converted, rate}}``; ``rate`` is None below ``min_cell``
    people. A person is the identity graph's (the decision's or the event's ``account_id``,
    else the ``people`` table's), else the device, as in :func:`activity_metrics`.
    """
    items, activities = list(items), set(activities)
    paths = log.files("events")
    out: dict[str, dict[str, Any]] = {i: {"people": 0, "converted": 0, "rate": None}
                                      for i in items}
    if not paths or not items:
        return out
    con = connect()
    con.register("people_in", people if people is not None else pa.table({
        "device_id": pa.array([], pa.string()), "person_id": pa.array([], pa.string())}))
    src = (f"read_parquet([{', '.join(_lit(p) for p in paths)}], union_by_name=true,"
           " hive_partitioning=false)")
    have = _optional(con, paths, ("activity_id", "action", "reason", "account_id",
                                  "request_id", "campaign_id", "outcome", "conversion_type"))
    con.execute(f"CREATE TEMP TABLE ev AS SELECT ts, kind, device_id, {have} FROM {src}"
                f" WHERE advertiser_id = {_lit(advertiser)} AND kind IN ('engagement',"
                " 'ad_decision', 'ad_impression', 'ad_conversion')")
    con.execute("CREATE TEMP TABLE grp (item VARCHAR, person VARCHAR, t0 TIMESTAMPTZ)")
    who = "coalesce({acc}, pe.person_id, 'device:' || {dev})"
    con.execute("CREATE TEMP TABLE players AS SELECT DISTINCT "
                + who.format(acc="e.account_id", dev="e.device_id") + " person FROM ev e"
                " LEFT JOIN people_in pe ON pe.device_id = e.device_id"
                " WHERE e.kind = 'engagement' AND e.reason IS NULL AND e.action <> 'show'")
    for item in items:
        base, _, action = item.partition("/")
        if base in activities:
            act = f" AND e.action = {_lit(action)}" if action else " AND e.action <> 'show'"
            con.execute(
                f"INSERT INTO grp SELECT {_lit(item)}, "
                + who.format(acc="e.account_id", dev="e.device_id") + ", min(e.ts) FROM ev e"
                " LEFT JOIN people_in pe ON pe.device_id = e.device_id"
                f" WHERE e.kind = 'engagement' AND e.activity_id = {_lit(base)}"
                f" AND e.reason IS NULL{act} GROUP BY 2")
        else:
            con.execute(
                f"INSERT INTO grp SELECT * FROM (SELECT {_lit(item)}, "
                + who.format(acc="d.account_id", dev="i.device_id") + " person, min(i.ts)"
                " FROM ev i JOIN (SELECT request_id, any_value(account_id) account_id FROM ev"
                "  WHERE kind = 'ad_decision' AND outcome = 'ad'"
                f"  AND campaign_id = {_lit(item)} GROUP BY 1) d ON d.request_id = i.request_id"
                " LEFT JOIN people_in pe ON pe.device_id = i.device_id"
                f" WHERE i.kind = 'ad_impression' AND i.campaign_id = {_lit(item)} GROUP BY 2)"
                " WHERE person NOT IN (SELECT person FROM players)")
    rows = con.execute(
        "WITH cv AS (SELECT c.ts, coalesce(pe.person_id, 'device:' || c.device_id) person"
        " FROM ev c LEFT JOIN people_in pe ON pe.device_id = c.device_id"
        f" WHERE c.kind = 'ad_conversion' AND c.conversion_type = {_lit(conversion_type)})"
        " SELECT g.item, count(DISTINCT g.person), count(DISTINCT cv.person) FROM grp g"
        " LEFT JOIN cv ON cv.person = g.person AND cv.ts >= g.t0"
        f" AND cv.ts < g.t0 + to_days({int(window_d)}) GROUP BY g.item").fetchall()
    for item, n, k in rows:
        out[item] = {"people": n, "converted": k, "rate": k / n if n >= min_cell else None}
    return out


@dataclass
class Books:
    """An activity's books held against the log: each check is ``(what, ok, detail)``,
    ``ok`` None when it cannot be made yet (a seed is revealed only after the end)."""

    activity: str
    checks: list[tuple[str, bool | None, str]] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return all(ok is not False for _, ok, _ in self.checks)

    @property
    def problems(self) -> int:
        return sum(ok is False for _, ok, _ in self.checks)


def reconcile(engine, advertiser: str, activity: str, m: ActivityMetrics | None, *,
              now: dt.datetime) -> Books:
    """Hold the engine's books of one activity against what the log counted (``m``, None
    when the log holds no event of it): see the module docstring."""
    from allscene.engagement import draws

    books, f = Books(activity), engine.figures(advertiser, activity)
    led = engine.store.check_ledger()
    units = ", ".join(f"{u} {n:+,}" for u, n in sorted(led["unit_totals"].items())) or "none"
    books.checks.append((
        "the ledger balances (every unit sums to zero)", bool(led["balanced"]),
        f"sums per unit: {units}; {led['accounts_off_their_postings']} accounts off their "
        f"postings, {led['unbalanced_postings']} unbalanced postings, "
        f"{led['negative_accounts']} accounts below zero that may not be"))
    t = m.totals if m else {"cash_paid": 0.0, "points_earned": 0, "points_spent": 0}
    paid = f["cash_paid_cents"]
    books.checks.append((
        "cash paid: the ledger's = the log's", paid == round(t["cash_paid"] * 100)
        and f["cash_left_cents"] >= 0,
        f"ledger ¥{paid / 100:,.2f} paid, ¥{f['cash_left_cents'] / 100:,.2f} left; "
        f"log ¥{t['cash_paid']:,.2f}"))
    won = {p: v["awarded"] for p, v in f["prizes"].items() if v["awarded"]}
    logged = dict(m.prizes) if m else {}
    books.checks.append((
        "prizes: the ledger's = the log's, none beyond its stock", won == logged
        and all(v["left"] >= 0 for v in f["prizes"].values()),
        "; ".join(f"{p} {v['awarded']:,} of {v['quantity']:,} (log {logged.get(p, 0):,})"
                  for p, v in f["prizes"].items()) or "no prizes"))
    if f["points_issued"] or t["points_earned"] or f["points_spent"] or t["points_spent"]:
        books.checks.append((
            "points: issued and spent in the ledger = in the log",
            (f["points_issued"], f["points_spent"]) == (t["points_earned"], t["points_spent"]),
            f"ledger {f['points_issued']:,} issued, {f['points_spent']:,} spent; log "
            f"{t['points_earned']:,} earned, {t['points_spent']:,} spent"))
    a = engine.activity(activity)
    if a.lottery:
        log_draws = sum(r["events"] for r in (m.by_action if m else ()) if r["action"] == "draw")
        try:
            seed = bytes.fromhex(engine.reveal(advertiser, activity, now)["seed"])
        except ValueError as exc:  # EngagementError: not over yet
            books.checks.append(("every draw re-runs from the revealed seed", None, str(exc)))
        else:
            audit = draws.replay(seed, activity, draws.Odds.of(a.lottery.odds),
                                 {p: a.prize(p).quantity for p in a.lottery.odds},
                                 engine.draw_log(advertiser, activity))
            books.checks.append((
                "every draw re-runs from the revealed seed", audit.ok
                and audit.draws == log_draws,
                f"{audit.draws:,} draws re-run (log {log_draws:,}): "
                f"{len(audit.mismatches)} mismatches, {len(audit.duplicate_draw_ids)} repeated "
                f"ids; won {audit.winners}"))
    return books
