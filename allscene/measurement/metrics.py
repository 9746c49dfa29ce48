"""Performance metrics of a campaign from the event log, with the counting rules applied.

The ad events the delivery engine and the tracking endpoints wrote (``ad_decision``,
``ad_impression``, ``ad_click``, ``ad_conversion``) are read once, checked against the
counting rules, and turned into one row per **counted impression**: who saw it (the person
the decision named, else the identity graph's person for the device), where (placement,
medium, device type), what (creative), when (local day and hour), what it cost, whether it
was clicked, and which conversions it earned. Every breakdown is then a sum over those
rows, so the numbers of one report always add up.

How: :mod:`allscene.measurement.counting` applies the rules in DuckDB, reading the
impressions once into one Arrow table, joined to their decisions ahead of time where the
log's served files are up to date (:mod:`allscene.storage.served`, written at compaction)
and as the files are read elsewhere;
:mod:`allscene.measurement.cells` counts every total, breakdown, frequency and reach from
that table in numpy, in one pass per breakdown rather than one query over the files.

Counting rules (:class:`Rules`), after the IAB/MRC invalid-traffic guidelines; what each
rule removes is counted and reported (:attr:`Metrics.invalid`), never silently dropped:

* an impression or click whose decision id was already counted (**duplicate**, e.g. a
  replayed tracking URL that reached the log), an impression no ``ad`` decision of its
  campaign stands behind, in the 24 hours before it (**no matching decision**: ad servers
  expire an ad response; :mod:`allscene.storage.served`), a click on no counted impression;
* a click sooner after its impression than ``min_click_s`` (**too fast** for a person);
* a device on the known-bot list, and a device with more than ``max_clicks_per_hour``
  clicks in one hour (**bot signature**).

Conversions are **click-through** when their token names a counted click and they come
within ``click_window_d`` days of it, else **view-through** when the person had a counted
impression within ``view_window_d`` days before (the latest one earns it). Next-day and
7-day retention: of the people with an attributed activation, the share with a
``retention`` conversion of the advertiser the next (local) day, or within 7 days.

Days and hours are local (UTC+8), as the decision engine's. Dimensions a report can break
down by are :data:`DIMENSIONS`; cells with fewer people than the minimum audience size are
suppressed (their figures are ``None``; the count of suppressed cells is kept).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from allscene.measurement.cells import Facts, derive
from allscene.measurement.counting import (  # noqa: F401 (DAY, HOUR, _lit, _optional: activities)
    CONVERSION_TYPES,
    DAY,
    HOUR,
    _lit,
    _optional,
    count_events,
    fact_flags,
    open_events,
)
from allscene.storage.duck import connect

AD_KINDS = ("ad_decision", "ad_impression", "ad_click", "ad_conversion")
DIMENSIONS = ("campaign", "day", "hour", "placement", "medium", "device_type", "creative",
              "scene", "audience", "stage")
"""What a report can be broken down by (scene, audience and stage come with issue 7's next
steps and issue 9's plans)."""
LOCAL_OFFSET = dt.timedelta(hours=8)


class MeasureError(ValueError):
    """A report that cannot be made as asked, saying why."""


@dataclass(frozen=True)
class Rules:
    """Counting rules: invalid-traffic filters and attribution windows."""

    view_window_d: float = 7.0
    click_window_d: float = 30.0
    min_click_s: float = 1.0
    max_clicks_per_hour: int = 30
    bot_devices: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("view_window_d", "click_window_d", "min_click_s"):
            if not getattr(self, name) >= 0:
                raise MeasureError(f"{name}: must be 0 or more")
        if self.max_clicks_per_hour < 1:
            raise MeasureError("max_clicks_per_hour: must be 1 or more")


@dataclass
class Metrics:
    """A campaign's counted figures: totals, breakdowns, invalid traffic, frequency."""

    advertiser: str
    campaigns: list[str]
    start: dt.datetime | None
    end: dt.datetime | None
    totals: dict[str, Any]
    breakdowns: dict[str, pa.Table] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    """Events each counting rule removed (``"impressions: duplicate"`` -> n)."""
    frequency: list[tuple[int, int]] = field(default_factory=list)
    """(impressions per person, people); the last bucket is "that many or more"."""
    reach_curve: list[tuple[str, int]] = field(default_factory=list)
    """(local day, people reached so far)."""
    suppressed: int = 0
    """Breakdown cells hidden for having fewer people than ``min_cell``."""
    min_cell: int = 50
    lift: Any = None
    """The holdout lift (:class:`~allscene.measurement.incrementality.Incrementality`)
    when the campaign held people out."""


def _window(start: dt.datetime | None, end: dt.datetime | None) -> None:
    for name, t in (("start", start), ("end", end)):
        if t is not None and t.tzinfo is None:
            raise MeasureError(f"{name}: give a time zone (e.g. 2026-10-01T00:00+08:00)")
    if start is not None and end is not None and end <= start:
        raise MeasureError(f"window: the end ({end.isoformat()}) is not after the start "
                           f"({start.isoformat()})")


def parse_when(value: str | None, name: str) -> dt.datetime | None:
    """An ISO date or time as given on the command line or in a query; a date is local
    midnight and a time without a zone is local (UTC+8).

    >>> parse_when("2026-10-05", "start").isoformat()
    '2026-10-05T00:00:00+08:00'
    """
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise MeasureError(f"{name}: not an ISO date or time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone(LOCAL_OFFSET))


def check_dimensions(by: Iterable[str]) -> list[str]:
    """``by`` as a list, or :class:`MeasureError` naming an unknown dimension."""
    out = []
    for d in by:
        if d not in DIMENSIONS:
            raise MeasureError(f"unknown dimension {d!r}; dimensions: {', '.join(DIMENSIONS)}")
        out.append(d)
    return out


def measure(log, advertiser: str, campaigns: Sequence[str], *, by: Sequence[Sequence[str]] = (),
            start: dt.datetime | None = None, end: dt.datetime | None = None,
            rules: Rules = Rules(), people: pa.Table | None = None,
            media: dict[str, str] | None = None, min_cell: int = 50,
            frequency_cap: int = 10) -> Metrics:
    """Count a campaign (or several of one advertiser, counted together).

    Parameters
    ----------
    log
        The event log (:class:`~allscene.storage.ParquetEventLog`).
    advertiser, campaigns
        Whose campaigns; ``campaigns`` are campaign ids of that advertiser.
    by
        Breakdowns to compute, each a list of :data:`DIMENSIONS` (``[["day"], ["placement",
        "creative"]]``).
    start, end
        The window (aware datetimes; ``end`` excluded) impressions, clicks and conversions
        must fall in; attribution looks back before ``start`` as far as its windows reach.
    people
        ``device_id, person_id`` of the identity graph, for impressions and conversions no
        decision names a person for (``None``: the device stands for the person).
    media
        Placement id -> medium (the app or system surface it sits in).
    min_cell
        Cells with fewer people are suppressed.
    frequency_cap
        Last bucket of the frequency distribution ("this many or more").

    Notes
    -----
    The impressions are read from DuckDB once (:func:`~allscene.measurement.counting.
    count_events`) and every figure is a pass over them in numpy
    (:class:`~allscene.measurement.cells.Facts`), reach by exact sets of people.
    """
    _window(start, end)
    if not campaigns:
        raise MeasureError("no campaign to measure")
    breakdowns = [check_dimensions(b) for b in by]
    p = _params(advertiser, campaigns, start, end, rules)
    with ThreadPoolExecutor(1) as pool:  # people and cells are numbered beside DuckDB
        numbered = []

        def number(imp: pa.Table, columns) -> None:
            numbered.append(pool.submit(_facts, imp, columns, p, media, breakdowns))

        con = _counted(log, advertiser, campaigns, start=start, end=end, rules=rules,
                       people=people, media=media, then=number)[0]
        invalid = {f"{what}: {why}": n for what, why, n in con.execute(
            "SELECT what, invalid, count(*) FROM ("
            " SELECT 'impressions' what, invalid FROM imp UNION ALL"
            " SELECT 'clicks', invalid FROM clk) WHERE invalid IS NOT NULL"
            " GROUP BY ALL ORDER BY 1, 2").fetchall()}
        flags = fact_flags(con, p["start"], p["end"])
        con.close()
        facts = numbered[0].result()
    facts.add_flags(flags)
    totals = derive(facts.rows_by([])[0], [], 0)
    out = Metrics(advertiser, list(campaigns), start, end, totals, invalid=invalid,
                  min_cell=min_cell)
    for dims in breakdowns:
        rows = [derive(r, dims, min_cell) for r in facts.rows_by(dims)]
        out.suppressed += sum(1 for r in rows if r["suppressed"])
        out.breakdowns["/".join(dims)] = pa.Table.from_pylist(rows) if rows else pa.table({})
    out.frequency = facts.frequency(frequency_cap)
    out.reach_curve = facts.reach_curve()
    return out


def counted(log, advertiser: str, campaigns: Sequence[str], *, start: dt.datetime | None,
            end: dt.datetime | None, rules: Rules, people: pa.Table | None,
            media: dict[str, str] | None = None, paths: list[str] | None = None):
    """A DuckDB connection holding the counted events of the campaigns, for other measures
    (:mod:`allscene.measurement.incrementality`): temp tables ``ad`` (the advertiser's ad
    events), ``imp`` and ``clk`` (every impression and click; ``invalid`` says why one is
    not counted), ``conv`` (attributed conversions), ``facts`` (one row per counted
    impression in the window, its ``person`` numbered by ``pno``), and ``people_in``
    (device -> person)."""
    return _counted(log, advertiser, campaigns, start=start, end=end, rules=rules,
                    people=people, media=media, paths=paths, ids=True)[0]


def ad_events(log, advertiser: str, *, end: dt.datetime | None = None,
              people: pa.Table | None = None, paths: list[str] | None = None):
    """A DuckDB connection with the view ``ad`` (the advertiser's ad events before ``end``
    in ``paths``, default: every event file of ``log``) and ``people_in``, for measures
    that need no counting rules (:func:`~allscene.measurement.incrementality.
    holdout_lift`)."""
    con = connect()
    con.register("people_in", _people(people))
    open_events(con, log.files("events") if paths is None else paths, advertiser,
                end or dt.datetime(9999, 1, 1, tzinfo=dt.UTC))
    return con


def _people(people: pa.Table | None) -> pa.Table:
    return people if people is not None else pa.table(
        {"device_id": pa.array([], pa.string()), "person_id": pa.array([], pa.string())})


def _facts(imp: pa.Table, columns, p: dict[str, Any], media: dict[str, str] | None,
           breakdowns: list[list[str]]) -> Facts:
    """The counted impressions in the window as :class:`Facts`, the breakdowns' cells
    counted as far as they can be before the clicks and conversions."""
    us = [(p[k] - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
          for k in ("start", "end")]
    facts = Facts(imp, (us[0], min(us[1], 2**63 - 1)), media, columns)
    facts.count_ahead([[], *breakdowns])
    return facts


def _counted(log, advertiser: str, campaigns: Sequence[str], *, start: dt.datetime | None,
             end: dt.datetime | None, rules: Rules, people: pa.Table | None,
             media: dict[str, str] | None = None, paths: list[str] | None = None,
             then=None, ids: bool = False):
    """:func:`counted`, the parameters it counted with, and the impressions (Arrow)."""
    t_lo = None if start is None else start - dt.timedelta(
        days=max(rules.view_window_d, rules.click_window_d) + 1)
    params = _params(advertiser, campaigns, start, end, rules)
    if paths is None:
        days = (t_lo.astimezone(dt.UTC).date() if t_lo else None,
                end.astimezone(dt.UTC).date() if end else None)
        paths = log.files("events", *days)
        if hasattr(log, "served"):  # impressions joined to their decisions, where up to date
            params["served"], params["stale"] = log.served(*days)
    con = connect()
    con.register("people_in", _people(people))
    med = media or {}
    con.register("media_in", pa.table({"placement_id": pa.array(list(med), pa.string()),
                                       "medium": pa.array(list(med.values()), pa.string())}))
    con.register("bots_in", pa.table({"device_id": pa.array(sorted(rules.bot_devices),
                                                             pa.string())}))
    return con, params, count_events(con, paths, params, then, ids)


def _params(advertiser: str, campaigns: Sequence[str], start: dt.datetime | None,
            end: dt.datetime | None, rules: Rules) -> dict[str, Any]:
    return {"adv": advertiser, "camps": list(campaigns),
            "start": start or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
            "end": end or dt.datetime(9999, 1, 1, tzinfo=dt.UTC),
            "min_click": rules.min_click_s, "per_hour": rules.max_clicks_per_hour,
            "view_s": rules.view_window_d * 86400, "click_s": rules.click_window_d * 86400}
