"""Reports of several campaigns at once, and an index page that checks declared claims.

A claim is declared with the campaigns, e.g. ``{claim: "retargeting beats broad", metric:
ctr, order: [a, b/stage2, c]}``: ``metric`` of ``a`` > that of ``b`` in its ``stage2`` > that
of ``c``. :func:`check_claim` reads the figures from the campaigns' :class:`Metrics` (a
campaign's totals, or the row of its ``stage`` breakdown) and says whether the order holds;
a figure that is missing (too few people to show, nothing served) makes the claim
unanswered, never true.

Two kinds of claim read other figures. A rate metric (:data:`RATE_METRICS`, e.g.
``lead_rate``) reads :func:`~allscene.measurement.activities.conversion_rates`, whose items
may be activities (``buick_badges/badge``: the people who lit a badge) as well as campaigns
(the people shown its ad). A ``ledger`` claim, ``{claim, metric: ledger, activities: [...]}``
(every activity of the case when absent), holds when the books of each activity balance
(:func:`~allscene.measurement.activities.reconcile`): its figure is the number of failed
checks, and the index lists every check with its figures, a failed one marked failed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ClaimResult:
    claim: str
    metric: str
    figures: list[tuple[str, float | None]]
    holds: bool | None
    article: str = ""
    details: list[tuple[str, bool | None, str]] = field(default_factory=list)
    """Checks behind the figures (a ledger claim's), each ``(what, ok, detail)``."""


RATE_METRICS = {"lead_rate": "lead"}
"""Metrics read from :func:`~allscene.measurement.activities.conversion_rates` (the
conversion type each counts), not from a campaign's :class:`Metrics`."""


BASES = {"ctr": "impressions", "retention_1d": "activated", "retention_7d": "activated"}
"""What each rate is a share of: a rate over fewer than :data:`MIN_BASE` of them is noise."""
MIN_BASE = 50


def figure(metrics: dict[str, Any], item: str, metric: str) -> float | None:
    """``metric`` of ``campaign`` or ``campaign/stage`` from ``{campaign: Metrics}``; ``None``
    when missing, or when a rate is over fewer than :data:`MIN_BASE` impressions or people.

    >>> class M:  # a stand-in for Metrics
    ...     totals = {"ctr": 0.02, "impressions": 900, "retention_1d": 0.2, "activated": 5}
    ...     breakdowns = {}
    >>> figure({"a": M()}, "a", "ctr"), figure({"a": M()}, "a/s1", "ctr")
    (0.02, None)
    >>> figure({"a": M()}, "a", "retention_1d")  # 1 of 5 people: too few to tell
    """
    campaign, _, stage = item.partition("/")
    m = metrics.get(campaign)
    if m is None:
        return None
    row: dict[str, Any] | None = m.totals
    if stage:
        table = m.breakdowns.get("stage")
        rows = table.to_pylist() if table is not None else []
        row = next((r for r in rows if r.get("stage") == stage), None)
    if row is None:
        return None
    base = BASES.get(metric)
    if base is not None and base in row and (row.get(base) or 0) < MIN_BASE:
        return None
    return row.get(metric)


def check_claim(metrics: dict[str, Any], claim: dict[str, Any], *,
                rates: dict[str, dict[str, Any]] | None = None) -> ClaimResult:
    """Whether the figures of ``claim['order']`` fall in that (strictly decreasing) order;
    a :data:`RATE_METRICS` metric reads ``rates`` (``{item: {rate, ...}}``)."""
    if claim["metric"] in RATE_METRICS:
        figs = [(item, (rates or {}).get(item, {}).get("rate")) for item in claim["order"]]
    else:
        figs = [(item, figure(metrics, item, claim["metric"])) for item in claim["order"]]
    values = [v for _, v in figs]
    holds = None if any(v is None for v in values) else all(
        a > b for a, b in zip(values, values[1:], strict=False))
    return ClaimResult(claim["claim"], claim["metric"], figs, holds, claim.get("article", ""))


def check_books(claim: dict[str, Any], books: dict[str, Any]) -> ClaimResult:
    """A ``ledger`` claim: it holds when every named activity's books balance (``books``:
    ``{activity: Books}``); an activity without books makes it unanswered, never true."""
    names = list(claim.get("activities") or books)
    figs: list[tuple[str, float | None]] = []
    details: list[tuple[str, bool | None, str]] = []
    for name in names:
        b = books.get(name)
        figs.append((f"{name}: failed checks", None if b is None else b.problems))
        details += [(f"{name}: {what}", ok, d) for what, ok, d in (b.checks if b else ())]
    holds = None if not names or any(v is None for _, v in figs) else all(
        books[n].balanced for n in names)
    return ClaimResult(claim["claim"], "ledger", figs, holds, claim.get("article", ""),
                       details)


def _pct(v: float | None, metric: str) -> str:
    if v is None:
        return "—"
    return f"{v:.2%}" if metric in ("ctr",) or metric.startswith(("retention", "rate")) \
        or metric.endswith("_rate") else f"{v:,.4g}"


def _word(ok: bool | None, unknown: str = "too few to tell") -> tuple[str, str]:
    return ("na", unknown) if ok is None else ("yes", "yes") if ok else ("no", "FAILED")


def index_html(title: str, cases: list[dict[str, Any]]) -> str:
    """The index page: per case, its title, the article's figures, the claims checked with
    their figures beside the article's, and links to each report.

    ``cases``: ``{id, title, article, claims: [ClaimResult], links: [(label, href)]}``,
    and ``activities`` (see :func:`_activities_html`) and ``notes`` (lines) when any.
    """
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:70em;margin:2em auto;}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
             "padding:.3em .6em;text-align:left}.yes{color:#070}.no{color:#b00}"
             ".na{color:#777}</style></head><body>", f"<h1>{e(title)}</h1>"]
    for c in cases:
        parts.append(f"<h2 id='{e(c['id'])}'>{e(c['title'])}</h2>")
        if c.get("article"):
            parts.append(f"<p><b>The article:</b> {e(c['article'])}</p>")
        if c.get("claims"):
            parts.append("<table><tr><th>seed effect</th><th>replay figures</th>"
                         "<th>holds</th><th>article</th></tr>")
            for r in c["claims"]:
                sep = "; " if r.metric == "ledger" else " &gt; "
                figs = sep.join(f"{e(i)} {_pct(v, r.metric)}" for i, v in r.figures)
                if r.details:
                    figs += "<ul>" + "".join(
                        f"<li><span class='{_word(ok, 'not yet')[0]}'>"
                        f"{_word(ok, 'not yet')[1]}</span> {e(what)}: {e(d)}</li>"
                        for what, ok, d in r.details) + "</ul>"
                cls, word = _word(r.holds)
                parts.append(f"<tr><td>{e(r.claim)} ({e(r.metric)})</td><td>{figs}</td>"
                             f"<td class='{cls}'>{'no' if r.holds is False and r.metric != 'ledger' else word}</td>"
                             f"<td>{e(r.article)}</td></tr>")
            parts.append("</table>")
        parts += _activities_html(c.get("activities") or ())
        for note in c.get("notes", ()):
            parts.append(f"<p>{e(note)}</p>")
        if c.get("links"):
            parts.append("<ul>" + "".join(f"<li><a href='{e(h)}'>{e(label)}</a></li>"
                                          for label, h in c["links"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _activities_html(rows) -> list[str]:
    """A table of the case's activities: ``{id, name, totals, by_action, prizes, refused,
    conversions}`` (an :class:`~allscene.measurement.activities.ActivityMetrics` as a dict,
    or ``{id, name, note}`` when it could not be counted)."""
    e = html.escape
    if not rows:
        return []
    out = ["<table><tr><th>activity</th><th>shown to</th><th>took part</th><th>actions"
           "</th><th>won</th><th>paid</th><th>refused</th><th>became leads</th></tr>"]
    for a in rows:
        if a.get("note"):
            out.append(f"<tr><td>{e(a['name'])}</td><td colspan='7'>{e(a['note'])}</td></tr>")
            continue
        t = a["totals"]
        part = f"{t['participants']:,}" + (f" ({t['participation']:.1%})"
                                           if t.get("participation") is not None else "")
        acts = ", ".join(f"{r['action']} {r['events']:,}" for r in a["by_action"]
                         if r["action"] != "show")
        won = ", ".join(f"{k} {v:,}" for k, v in a["prizes"].items()) or "—"
        paid = f"¥{t['cash_paid']:,.2f}" + (f"; points {t['points_earned']:,} earned, "
                                            f"{t['points_spent']:,} spent"
                                            if t["points_earned"] else "")
        refused = ", ".join(f"{k} {v:,}" for k, v in a["refused"].items()) or "—"
        conv = "; ".join(f"{r['group']}: suppressed" if r["suppressed"] else
                         f"{r['group']}: {r['converted']:,} of {r['people']:,} "
                         f"({r['rate']:.1%})" for r in a["conversions"])
        out.append(f"<tr><td>{e(a['name'])}</td><td>{t['shown']:,}</td><td>{part}</td>"
                   f"<td>{e(acts)}</td><td>{e(won)}</td><td>{e(paid)}</td>"
                   f"<td>{e(refused)}</td><td>{e(conv)}</td></tr>")
    return out + ["</table>"]


def write_index(path: Path, title: str, cases: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(index_html(title, cases), encoding="utf-8")
    return path
