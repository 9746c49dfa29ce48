"""Incrementality: what a campaign truly changed, from its holdout (ghost-ad) groups.

The decision engine keeps a campaign's ``holdout`` share of people unexposed and logs the
decision each of them would have won (``ad_decision`` with ``outcome = "holdout"``), so the
people a campaign **would have reached** split at random into an exposed arm (``"ad"``) and
a held-out arm. :func:`holdout_lift` compares them per person, over the ``window_d`` days
after each person's first such decision:

* **conversion**: whether the person converted for the advertiser (any ``ad_conversion``
  but ``retention``, from any of the person's devices, token or not: a held-out person
  cannot click, so conversions are counted the same way in both arms);
* **brand search**: how many of the person's searches mention one of ``search_terms``.

The pre-period (``pre_d`` days before the first decision) of the same outcome is the
covariate for variance reduction (:func:`allscene.measurement.lift.lift`). A person found in
both arms (the holdout share changed mid-flight) is left out and counted.

:func:`search_did` is the Chevrolet case's question: among the people who **saw the ad and
did not click**, did brand searches rise more than in a comparison group? Each person's
searches in the ``window_d`` days after their first counted impression minus those in the
``pre_d`` days before (a difference-in-differences), against the held-out arm when the
campaign has one (randomized: the comparison is exact) or else the people the identity graph
knows who were never exposed, anchored at the campaign's first impression; the pre-period
searches adjust for how different the two groups were to begin with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from allscene.measurement.lift import Lift, LiftError, lift
from allscene.measurement.metrics import MeasureError, Rules, ad_events, counted


@dataclass
class Incrementality:
    """Lift per outcome, with the arms' sizes."""

    exposed: int
    held_out: int
    lifts: dict[str, Lift] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    """Outcome -> why no lift could be computed (too few people, no variance)."""
    in_both_arms: int = 0


def _terms_sql(terms: Sequence[str]) -> str:
    if not terms:
        return "FALSE"
    return " OR ".join("contains(lower(query), ?)" for _ in terms)


def _person_searches(con, paths: list[str], terms: Sequence[str]) -> None:
    """Temp table ``srch(person, ts)``: searches mentioning a term, by person."""
    if not terms or not paths:
        con.execute("CREATE TEMP TABLE srch (person VARCHAR, ts TIMESTAMPTZ)")
        return
    con.execute(
        "CREATE TEMP TABLE srch AS SELECT coalesce(pe.person_id, 'device:' || s.device_id)"
        " AS person, s.ts FROM read_parquet(?, union_by_name=true, hive_partitioning=false) s"
        " LEFT JOIN people_in pe ON pe.device_id = s.device_id"
        f" WHERE s.kind = 'search' AND ({_terms_sql(terms)})",
        [paths, *[t.lower() for t in terms]])


def _lift_or_why(out: Incrementality, name: str, y, treated, pre) -> None:
    try:
        cov = pre if pre is not None and np.ptp(pre) > 0 else None
        out.lifts[name] = lift(y, treated, cov)
    except LiftError as exc:
        out.problems[name] = str(exc)


def holdout_lift(log, advertiser: str, campaigns: Sequence[str], *,
                 people: pa.Table | None = None, search_terms: Sequence[str] = (),
                 window_d: float = 7.0, pre_d: float = 7.0,
                 start: dt.datetime | None = None, end: dt.datetime | None = None
                 ) -> Incrementality:
    """Exposed vs held-out people of the campaigns (see the module docstring)."""
    paths = log.files("events")
    con = ad_events(log, advertiser, end=end, people=people, paths=paths)
    _person_searches(con, paths, search_terms)
    con.execute(
        "CREATE TEMP TABLE arms AS SELECT person, bool_or(outcome = 'ad') ad,"
        " bool_or(outcome = 'holdout') held, min(ts) AS first FROM ("
        " SELECT coalesce(d.account_id, pe.person_id, 'device:' || d.device_id) person,"
        " d.outcome, d.ts FROM ad d LEFT JOIN people_in pe ON pe.device_id = d.device_id"
        " WHERE d.kind = 'ad_decision' AND d.outcome IN ('ad', 'holdout')"
        " AND d.campaign_id IN (SELECT unnest(?)) AND d.ts >= ? AND d.ts < ?)"
        " GROUP BY person",
        [list(campaigns), start or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
         end or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)])
    (both,) = con.execute("SELECT count(*) FROM arms WHERE ad AND held").fetchone()
    rows = con.execute(
        "SELECT a.ad, (SELECT count(*) FROM ad c LEFT JOIN people_in pe"
        "  ON pe.device_id = c.device_id WHERE c.kind = 'ad_conversion'"
        "  AND c.conversion_type <> 'retention'"
        "  AND coalesce(pe.person_id, 'device:' || c.device_id) = a.person"
        "  AND c.ts >= a.first AND epoch(c.ts) < epoch(a.first) + ?) conv,"
        " (SELECT count(*) FROM srch s WHERE s.person = a.person AND s.ts >= a.first"
        "  AND epoch(s.ts) < epoch(a.first) + ?) post,"
        " (SELECT count(*) FROM srch s WHERE s.person = a.person AND s.ts < a.first"
        "  AND epoch(s.ts) >= epoch(a.first) - ?) pre"
        " FROM arms a WHERE a.ad <> a.held ORDER BY a.person",
        [window_d * 86400, window_d * 86400, pre_d * 86400]).fetchnumpy()
    treated = np.asarray(rows["ad"], dtype=bool)
    out = Incrementality(int(treated.sum()), int((~treated).sum()), in_both_arms=int(both))
    if not out.held_out:
        out.problems["all"] = "no held-out people: give the campaign a holdout share"
        return out
    conv = np.asarray(rows["conv"], dtype=float)
    _lift_or_why(out, "conversion", (conv > 0).astype(float), treated, None)
    if search_terms:
        post = np.asarray(rows["post"], dtype=float)
        pre = np.asarray(rows["pre"], dtype=float)
        _lift_or_why(out, "brand_searches", post, treated, pre)
    return out


@dataclass
class SearchDid:
    """Brand searches of exposed non-clickers against a comparison group."""

    comparison: str  # "held-out people" or "never exposed"
    exposed_non_clickers: int
    comparison_people: int
    did: Lift
    """Lift of (post - pre) searches: ``did.absolute`` is the difference-in-differences;
    ``did.adjusted`` also adjusts for the pre-period level."""
    post: Lift
    """Lift of post-period searches with the pre-period as covariate (``post.adjusted``,
    ``post.adjusted_relative``: the relative rise, "+91%" in the Chevrolet case)."""


def search_did(log, advertiser: str, campaigns: Sequence[str], search_terms: Sequence[str], *,
               people: pa.Table | None = None, window_d: float = 7.0, pre_d: float = 7.0,
               rules: Rules | None = None) -> SearchDid:
    """The Chevrolet case's search lift among exposed non-clickers (module docstring)."""
    if not search_terms:
        raise MeasureError("search_terms: name the brand's search terms")
    paths = log.files("events")
    con = counted(log, advertiser, campaigns, start=None, end=None, rules=rules or Rules(),
                  people=people, paths=paths)
    _person_searches(con, paths, search_terms)
    con.execute(
        "CREATE TEMP TABLE exposed AS SELECT i.person, min(i.ts) AS first FROM imp i"
        " WHERE i.invalid IS NULL GROUP BY i.person HAVING NOT bool_or(i.request_id IN"
        " (SELECT request_id FROM clk WHERE invalid IS NULL))")
    con.execute(
        "CREATE TEMP TABLE held AS SELECT coalesce(d.account_id, pe.person_id,"
        " 'device:' || d.device_id) person, min(d.ts) AS first FROM ad d"
        " LEFT JOIN people_in pe ON pe.device_id = d.device_id WHERE d.kind = 'ad_decision'"
        " AND d.outcome = 'holdout' AND d.campaign_id IN (SELECT unnest(?)) GROUP BY 1",
        [list(campaigns)])
    (n_held,) = con.execute("SELECT count(*) FROM held").fetchone()
    if n_held:
        comparison = "held-out people"
        con.execute("CREATE TEMP TABLE ctrl AS SELECT * FROM held"
                    " WHERE person NOT IN (SELECT person FROM imp)")
    else:
        comparison = "never exposed"
        con.execute(
            "CREATE TEMP TABLE ctrl AS SELECT DISTINCT person_id AS person,"
            " (SELECT min(ts) FROM imp WHERE invalid IS NULL) AS first FROM people_in"
            " WHERE person_id NOT IN (SELECT person FROM imp)")
    rows = con.execute(
        "SELECT g.treated, (SELECT count(*) FROM srch s WHERE s.person = g.person"
        "  AND s.ts >= g.first AND epoch(s.ts) < epoch(g.first) + ?) post,"
        " (SELECT count(*) FROM srch s WHERE s.person = g.person AND s.ts < g.first"
        "  AND epoch(s.ts) >= epoch(g.first) - ?) pre"
        " FROM (SELECT person, first, TRUE treated FROM exposed UNION ALL"
        "  SELECT person, first, FALSE FROM ctrl WHERE first IS NOT NULL) g ORDER BY 1, g.person",
        [window_d * 86400, pre_d * 86400]).fetchnumpy()
    treated = np.asarray(rows["treated"], dtype=bool)
    post = np.asarray(rows["post"], dtype=float)
    pre = np.asarray(rows["pre"], dtype=float)
    if treated.sum() < 2 or (~treated).sum() < 2:
        raise MeasureError(f"too few people to compare: {int(treated.sum())} exposed "
                           f"non-clickers, {int((~treated).sum())} {comparison}")
    cov = pre if np.ptp(pre) > 0 else None
    try:
        return SearchDid(comparison, int(treated.sum()), int((~treated).sum()),
                         lift(post - pre, treated, cov), lift(post, treated, cov))
    except LiftError as exc:
        raise MeasureError(f"search lift: {exc}") from None
