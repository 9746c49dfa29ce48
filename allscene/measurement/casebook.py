"""Reports of several campaigns at once, and an index page that checks declared claims.

A claim is declared with the campaigns, e.g. ``{claim: "retargeting beats broad", metric:
ctr, order: [a, b/stage2, c]}``: ``metric`` of ``a`` > that of ``b`` in its ``stage2`` > that
of ``c``. :func:`check_claim` reads the figures from the campaigns' :class:`Metrics` (a
campaign's totals, or the row of its ``stage`` breakdown) and says whether the order holds;
a figure that is missing (too few people to show, nothing served) makes the claim
unanswered, never true.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ClaimResult:
    claim: str
    metric: str
    figures: list[tuple[str, float | None]]
    holds: bool | None
    article: str = ""


def figure(metrics: dict[str, Any], item: str, metric: str) -> float | None:
    """``metric`` of ``campaign`` or ``campaign/stage`` from ``{campaign: Metrics}``.

    >>> class M:  # a stand-in for Metrics
    ...     totals = {"ctr": 0.02}
    ...     breakdowns = {}
    >>> figure({"a": M()}, "a", "ctr"), figure({"a": M()}, "a/s1", "ctr")
    (0.02, None)
    """
    campaign, _, stage = item.partition("/")
    m = metrics.get(campaign)
    if m is None:
        return None
    if not stage:
        return m.totals.get(metric)
    table = m.breakdowns.get("stage")
    if table is None or not table.num_rows:
        return None
    for row in table.to_pylist():
        if row.get("stage") == stage:
            return row.get(metric)
    return None


def check_claim(metrics: dict[str, Any], claim: dict[str, Any]) -> ClaimResult:
    """Whether the figures of ``claim['order']`` fall in that (strictly decreasing) order."""
    figs = [(item, figure(metrics, item, claim["metric"])) for item in claim["order"]]
    values = [v for _, v in figs]
    holds = None if any(v is None for v in values) else all(
        a > b for a, b in zip(values, values[1:], strict=False))
    return ClaimResult(claim["claim"], claim["metric"], figs, holds, claim.get("article", ""))


def _pct(v: float | None, metric: str) -> str:
    if v is None:
        return "—"
    return f"{v:.2%}" if metric in ("ctr",) or metric.startswith(("retention", "rate")) \
        else f"{v:,.4g}"


def index_html(title: str, cases: list[dict[str, Any]]) -> str:
    """The index page: per case, its title, the article's figures, the claims checked with
    their figures beside the article's, and links to each report.

    ``cases``: ``{id, title, article, claims: [ClaimResult], links: [(label, href)]}``.
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
                figs = " &gt; ".join(f"{e(i)} {_pct(v, r.metric)}" for i, v in r.figures)
                cls, word = ("na", "too few to tell") if r.holds is None else \
                    ("yes", "yes") if r.holds else ("no", "no")
                parts.append(f"<tr><td>{e(r.claim)} ({e(r.metric)})</td><td>{figs}</td>"
                             f"<td class='{cls}'>{word}</td><td>{e(r.article)}</td></tr>")
            parts.append("</table>")
        for note in c.get("notes", ()):
            parts.append(f"<p>{e(note)}</p>")
        if c.get("links"):
            parts.append("<ul>" + "".join(f"<li><a href='{e(h)}'>{e(label)}</a></li>"
                                          for label, h in c["links"]) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_index(path: Path, title: str, cases: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(index_html(title, cases), encoding="utf-8")
    return path
