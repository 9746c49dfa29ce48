"""Audience recipes of optimization plans: who a plan stage targets, from what it learnt.

A recipe is ``"EXPR"``, an audience expression of the advertiser (``"@stage1_seed"``);
``{clickers: {campaigns: [ids], stages: [ids], days: N}}``, the people who clicked the
advertiser's campaigns (default: the plan's own) in those stages (default: any) in the ``N``
days before the run day (default: ever), see :func:`clickers`; ``{lookalike: RECIPE, size:
N}``, the ``N`` people outside the recipe's most like them; ``{intersect: [...]}``,
``{union: [...]}``. :class:`Recipes` evaluates them; nobody who opted out of personalized
ads is ever in the result.

Examples
--------
>>> summary(check_recipe({"union": [{"clickers": {"stages": ["s1"]}},
...                                 {"lookalike": "@seed", "size": 500}]}))
"union(clickers(stages=s1), lookalike('@seed', 500))"
>>> check_recipe({"lookalike": {"clickers": {"day": 1}}, "size": 10})
Traceback (most recent call last):
...
ValueError: lookalike.clickers: unknown key 'day' (campaigns, stages, days)
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Any

from pyroaring import BitMap

ID = r"^[a-z0-9][a-z0-9_\-]{0,63}$"  # as campaign ids (delivery.campaigns.ID)
RECIPES = {"clickers": ("clickers",), "lookalike": ("lookalike", "size"),
           "intersect": ("intersect",), "union": ("union",)}
CLICKERS = ("campaigns", "stages", "days")
MAX_SIZE = 10_000_000
MIN_SEED = 20
"""The fewest people a lookalike learns from. Lower than the minimum audience size: a seed is
never targeted nor shown (its lookalike is, and must reach the minimum size to serve); below
this a model of who resembles the seed is guesswork, and the seed itself is used instead."""


def check_recipe(r: Any, path: tuple = ()) -> Any:
    """``r`` if it is a valid recipe, else :class:`ValueError` naming the bad key's path."""
    def fail(msg: str, *more: Any) -> None:
        where = ".".join(str(p) for p in (*path, *more))
        raise ValueError(f"{where}: {msg}" if where else msg)

    if isinstance(r, str):
        from allscene.audiences.expr import ExprError, parse

        try:
            parse(r)
        except ExprError as exc:
            fail(f"not an audience expression: {str(exc).splitlines()[0]}")
        return r
    if not isinstance(r, dict):
        fail(f"a recipe is an audience expression or a mapping, not {type(r).__name__}")
    kinds = [k for k in RECIPES if k in r]
    if len(kinds) != 1:
        fail(f"a recipe has one of {', '.join(RECIPES)}; got {', '.join(map(str, r)) or '{}'}")
    kind = kinds[0]
    if extra := [k for k in r if k not in RECIPES[kind]]:
        fail(f"unknown key {extra[0]!r} ({', '.join(RECIPES[kind])})")
    body = r[kind]
    if kind == "clickers":
        body = {} if body is None else body
        if not isinstance(body, dict):
            fail("a mapping of campaigns, stages, days", kind)
        for k, v in body.items():
            if k not in CLICKERS:
                fail(f"unknown key {k!r} ({', '.join(CLICKERS)})", kind)
            if k == "days" and (type(v) is not int or not 1 <= v <= 366):
                fail("a whole number of days, 1 to 366", kind, k)
            if k != "days" and (not isinstance(v, list) or not v or not all(
                    isinstance(x, str) and re.match(ID, x) for x in v)):
                fail("a non-empty list of ids", kind, k)
        return {kind: body}
    if kind == "lookalike":
        size = r.get("size")
        if type(size) is not int or not 1 <= size <= MAX_SIZE:
            fail(f"a whole number of people, 1 to {MAX_SIZE:,}", "size")
        return {kind: check_recipe(body, (*path, kind)), "size": size}
    if not isinstance(body, list) or not body:
        fail("a non-empty list of recipes", kind)
    return {kind: [check_recipe(x, (*path, kind, i)) for i, x in enumerate(body)]}


def _walk(r: Any):
    """``r`` and every recipe inside it."""
    yield r
    if isinstance(r, dict):
        inner = [r["lookalike"]] if "lookalike" in r else r.get("intersect", r.get("union", []))
        for x in inner:
            yield from _walk(x)


def summary(r: Any) -> str:
    """A recipe in one line, for records and listings."""
    if isinstance(r, str):
        return repr(r)
    kind = next(k for k in RECIPES if k in r)
    if kind == "clickers":
        spec = r[kind] or {}
        return "clickers(" + ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                                       for k, v in spec.items()) + ")"
    if kind == "lookalike":
        return f"lookalike({summary(r[kind])}, {r['size']})"
    return f"{kind}({', '.join(summary(x) for x in r[kind])})"



def clickers(log, advertiser: str, campaigns: list[str], *, stages: list[str] | None = None,
             since: dt.datetime | None = None, until: dt.datetime | None = None) -> set[str]:
    """Person ids who clicked an ad of ``advertiser``'s ``campaigns`` in ``[since, until)``.

    A click (``ad_click``) is joined by ``request_id`` to its decision (``ad_decision``,
    ``outcome='ad'``), which names the person (``account_id``) and the campaign's stage then.
    Both must be the advertiser's: another advertiser's campaign of the same id is never read.

    Parameters
    ----------
    log
        The :class:`~allscene.storage.ParquetEventLog`.
    stages
        Keep clicks whose decision was in one of these stages (default: any).
    since, until
        Aware times bounding the clicks (default: ever).
    """
    lo = (since - dt.timedelta(days=1)).astimezone(dt.UTC).date() if since else None
    paths = log.files("events", lo, until.astimezone(dt.UTC).date() if until else None)
    if not paths or not campaigns:
        return set()
    from allscene.storage.duck import connect

    con = connect()
    files = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    have = {r[0] for r in con.execute(f"SELECT name FROM parquet_schema([{files}])").fetchall()}
    stage = "stage" if "stage" in have else "NULL::VARCHAR AS stage"
    args = {"adv": advertiser, "camps": list(campaigns), "stages": list(stages or []),
            "lo": since or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
            "hi": until or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)}
    rows = con.execute(
        "WITH ad AS (SELECT kind, ts, request_id, campaign_id, account_id, outcome,"
        f" {stage} FROM read_parquet([{files}], union_by_name=true, hive_partitioning=false)"
        " WHERE kind IN ('ad_click', 'ad_decision') AND advertiser_id = $adv"
        " AND list_contains($camps, campaign_id)),"
        " dec AS (SELECT request_id, arg_min(account_id, ts) person, arg_min(stage, ts) stage,"
        "  arg_min(campaign_id, ts) campaign_id FROM ad"
        "  WHERE kind = 'ad_decision' AND outcome = 'ad' GROUP BY request_id),"
        " clk AS (SELECT DISTINCT request_id, campaign_id FROM ad WHERE kind = 'ad_click'"
        "  AND ts >= $lo AND ts < $hi)"
        " SELECT DISTINCT d.person FROM clk c JOIN dec d ON d.request_id = c.request_id"
        "  AND d.campaign_id = c.campaign_id WHERE d.person IS NOT NULL"
        "  AND (len($stages) = 0 OR list_contains($stages, d.stage))", args).fetchall()
    return {r[0] for r in rows}


class Recipes:
    """Evaluates recipes for one campaign of one advertiser on one day, to rows of
    ``audiences`` (:class:`~allscene.audiences.service.Audiences`), opted-out people left out.

    ``notes`` gathers what the record should say (lookalike fallbacks, clickers without tags,
    campaigns not the advertiser's); ``seeds`` the people lookalikes were grown from.
    """

    def __init__(self, audiences, log, campaign_id: str, day_start: dt.datetime, *,
                 own_campaigns: set[str] | None = None):
        self.aud, self.log, self.campaign_id = audiences, log, campaign_id
        self.day_start, self.own = day_start, own_campaigns
        self.notes: list[str] = []
        self.seeds: BitMap | None = None
        self._clicked: dict[tuple, set[str]] = {}

    def people(self, r: Any) -> BitMap:
        """The rows of recipe ``r``'s people."""
        if isinstance(r, str):
            return self.aud.members(r)  # eligible people only
        kind = next(k for k in RECIPES if k in r)
        if kind == "clickers":
            return self._clickers(r[kind] or {})
        if kind == "lookalike":
            return self._lookalike(self.people(r[kind]), r["size"])
        return functools.reduce(BitMap.__or__ if kind == "union" else BitMap.__and__,
                                [self.people(x) for x in r[kind]])

    def ids(self, rows) -> list[str]:
        return [self.aud.index.person_ids[i] for i in rows]

    def _clickers(self, spec: dict) -> BitMap:
        camps = list(spec.get("campaigns") or [self.campaign_id])
        if self.own is not None and (alien := [c for c in camps if c not in self.own]):
            self.notes.append(f"clickers: no campaign {', '.join(alien)} of "
                              f"{self.aud.advertiser}")
            camps = [c for c in camps if c in self.own]
        since = self.day_start - dt.timedelta(days=spec["days"]) if "days" in spec else None
        key = (tuple(camps), tuple(spec.get("stages") or ()), since)
        if key not in self._clicked:
            self._clicked[key] = clickers(self.log, self.aud.advertiser, camps,
                                          stages=spec.get("stages"), since=since,
                                          until=self.day_start)
        ids = self._clicked[key]
        rows = BitMap([self.aud.row[p] for p in ids if p in self.aud.row])
        if len(rows) < len(ids):
            self.notes.append(f"clickers: {len(ids) - len(rows)} without tags left out")
        return rows & self.aud.eligible

    def _lookalike(self, seed: BitMap, size: int) -> BitMap:
        from allscene.audiences.lookalike import expand_lookalike

        self.seeds = seed if self.seeds is None else self.seeds | seed
        if len(seed) < MIN_SEED:
            self.notes.append(f"lookalike: a seed of {len(seed)} people, fewer than the "
                              f"{MIN_SEED} it learns from: the seed itself is used")
            return seed
        try:
            rows, _ = expand_lookalike(self.aud.tags, seed, size, exclude=self.aud.opted_out)
        except ValueError as exc:
            self.notes.append(f"lookalike: {exc}: the seed itself is used")
            return seed
        return BitMap([int(i) for i in rows]) & self.aud.eligible

