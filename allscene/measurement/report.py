"""Campaign reports: the metrics of :mod:`allscene.measurement.metrics` as an HTML page with
charts, and the same numbers as CSV and Parquet.

:func:`campaign_metrics` finds the campaign in the configuration store (an unknown one is a
:class:`~allscene.measurement.metrics.MeasureError` listing the advertiser's campaigns),
reads the identity graph when it has been built, and counts. :func:`write_report` writes
into a directory:

* ``report.html``: headline figures, invalid traffic by rule, delivery over time
  (impressions and clicks by day and by hour), CTR by placement, medium and creative, reach
  and frequency (people reached by day, impressions per person), and every breakdown as a
  table (suppressed cells shown as such); its charts use ``plotly.min.js``, written beside
  it, so the page opens without a network;
* ``totals.csv`` and, per breakdown, ``by_<dims>.csv`` and ``by_<dims>.parquet``;
  ``invalid.csv``, ``frequency.csv``, ``reach.csv``; with a holdout, ``lift.csv`` and a chart
  of each lift with its 95% interval (:mod:`allscene.measurement.incrementality`).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from allscene.measurement.metrics import MeasureError, Metrics, Rules, measure

DEFAULT_BREAKDOWNS = (("day",), ("hour",), ("placement",), ("medium",), ("device_type",),
                      ("creative",), ("scene",), ("audience",), ("stage",))
_HEADLINE = (("impressions", "{:,}"), ("clicks", "{:,}"), ("ctr", "{:.2%}"),
             ("reach", "{:,}"), ("frequency", "{:.2f}"), ("cost", "¥{:,.2f}"),
             ("cpm", "¥{:,.2f}"), ("cpc", "¥{:,.2f}"), ("conversions", "{:,}"),
             ("cpa", "¥{:,.2f}"), ("retention_1d", "{:.1%}"), ("retention_7d", "{:.1%}"))


def media_of(placements) -> dict[str, str]:
    """Placement id -> medium: the first app it sits in, or ``system`` (lock screen, boot)."""
    return {p.id: (p.apps[0] if p.apps else "system") for p in placements}


def find_campaign(store, campaign: str, advertiser: str | None = None) -> tuple[str, dict]:
    """``(advertiser, campaign document)`` from the configuration store."""
    rows = [(adv, doc) for adv, cid, doc, _ in store.all_campaigns()
            if cid == campaign and (advertiser is None or adv == advertiser)]
    if len(rows) == 1:
        return rows[0]
    if rows:
        raise MeasureError(f"campaign {campaign!r} exists for several advertisers "
                           f"({', '.join(a for a, _ in rows)}): name one")
    known = sorted(f"{adv}/{cid}" for adv, cid, _, _ in store.all_campaigns()
                   if advertiser is None or adv == advertiser)
    raise MeasureError(f"unknown campaign {campaign!r}"
                       + (f" of advertiser {advertiser!r}" if advertiser else "")
                       + f"; campaigns: {', '.join(known) or 'none yet'}")


def campaign_metrics(settings, campaign: str, *, advertiser: str | None = None,
                     by=DEFAULT_BREAKDOWNS, start: dt.datetime | None = None,
                     end: dt.datetime | None = None, rules: Rules | None = None,
                     min_cell: int | None = None, search_terms: tuple[str, ...] = ()
                     ) -> Metrics:
    """The metrics of ``campaign`` in the data directory of ``settings``, with its holdout
    lift (conversions, and brand searches for ``search_terms``) when it has held-out
    people."""
    from allscene.audiences.service import MIN_SIZE
    from allscene.measurement.incrementality import holdout_lift
    from allscene.media.placements import load_placements
    from allscene.storage import ParquetEventLog
    from allscene.storage.configdb import ConfigStore
    from allscene.storage.tables import TableStore

    adv, _ = find_campaign(ConfigStore(settings.config_db), campaign, advertiser)
    tables = TableStore(settings.data_dir / "derived")
    people = tables.read("identity_devices").select(["device_id", "person_id"]) \
        if "identity_devices" in set(tables.names()) else None
    log = ParquetEventLog(settings.log_dir)
    m = measure(log, adv, [campaign], by=[list(b) for b in by], start=start, end=end,
                rules=rules or Rules(), people=people, media=media_of(load_placements()),
                min_cell=MIN_SIZE if min_cell is None else min_cell)
    inc = holdout_lift(log, adv, [campaign], people=people, search_terms=search_terms,
                       start=start, end=end)
    if inc.held_out:
        m.lift = inc
    return m


# --- files -----------------------------------------------------------------------------------

def _csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        if not rows:
            return
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_report(m: Metrics, out: Path, *, title: str | None = None) -> Path:
    """Write the report of ``m`` into ``out`` (created); returns the HTML page's path."""
    out.mkdir(parents=True, exist_ok=True)
    _csv(out / "totals.csv", [m.totals])
    _csv(out / "invalid.csv", [{"rule": k, "removed": v} for k, v in m.invalid.items()])
    _csv(out / "frequency.csv", [{"impressions": k, "people": n} for k, n in m.frequency])
    _csv(out / "reach.csv", [{"day": d, "people": n} for d, n in m.reach_curve])
    if m.lift is not None:
        _csv(out / "lift.csv", lift_rows(m))
    for name, table in m.breakdowns.items():
        stem = "by_" + name.replace("/", "_")
        _csv(out / f"{stem}.csv", table.to_pylist())
        pq.write_table(table if table.num_columns else pa.table({"empty": []}),
                       out / f"{stem}.parquet")
    page = out / "report.html"
    page.write_text(render_html(m, title or f"{m.advertiser} / {', '.join(m.campaigns)}",
                                js_dir=out))
    return page


# --- HTML ------------------------------------------------------------------------------------

def _fmt(v: Any, spec: str = "{}") -> str:
    if v is None:
        return "–"
    try:
        return spec.format(v)
    except (ValueError, TypeError):
        return str(v)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cls = ' class="suppressed"' if r.get("suppressed") else ""
        cells = "".join(f"<td>{html.escape(_fmt(r.get(c), _SPEC.get(c, '{}')))}</td>"
                        for c in cols)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


_SPEC = {"ctr": "{:.2%}", "frequency": "{:.2f}", "cost": "{:,.2f}", "cpm": "{:,.2f}",
         "cpc": "{:,.2f}", "cpa": "{:,.2f}", "retention_1d": "{:.1%}",
         "retention_7d": "{:.1%}", "impressions": "{:,}", "clicks": "{:,}", "reach": "{:,}",
         "mean_exposed": "{:.4g}", "mean_held_out": "{:.4g}", "lift": "{:+.4g}",
         "lift_low": "{:+.4g}", "lift_high": "{:+.4g}", "relative": "{:+.1%}",
         "relative_low": "{:+.1%}", "relative_high": "{:+.1%}", "p_value": "{:.2g}"}
_COLS = ["impressions", "clicks", "ctr", "reach", "frequency", "cost", "cpm", "cpc",
         "conv_lead", "conv_activation", "conv_purchase", "view_through", "cpa",
         "retention_1d", "retention_7d"]


def lift_rows(m: Metrics) -> list[dict[str, Any]]:
    """One row per holdout outcome: arms, means, lift and relative lift with intervals."""
    rows = []
    for name, r in (m.lift.lifts.items() if m.lift else ()):
        best = r.adjusted or r.absolute
        rel = r.adjusted_relative or r.relative
        rows.append({"outcome": name, "exposed": r.n_treated, "held_out": r.n_control,
                     "mean_exposed": r.mean_treated, "mean_held_out": r.mean_control,
                     "lift": best.value, "lift_low": best.low, "lift_high": best.high,
                     "relative": rel.value if rel else None,
                     "relative_low": rel.low if rel else None,
                     "relative_high": rel.high if rel else None, "p_value": r.p_value,
                     "adjusted": r.adjusted is not None})
    return rows


def _charts(m: Metrics) -> list[str]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    def html_of(fig, title: str) -> str:
        fig.update_layout(title=title, height=340, margin={"l": 50, "r": 20, "t": 50, "b": 40},
                          template="plotly_white")
        return fig.to_html(full_html=False, include_plotlyjs=False)

    figs = []
    shown = lambda name: [r for r in m.breakdowns.get(name, pa.table({})).to_pylist()  # noqa: E731
                          if not r.get("suppressed")]
    for dim, title in (("day", "Delivery by day"), ("hour", "Delivery by hour (local)")):
        rows = shown(dim)
        if rows:
            fig = make_subplots(specs=[[{"secondary_y": True}]])
            x = [r[dim] for r in rows]
            fig.add_bar(x=x, y=[r["impressions"] for r in rows], name="impressions")
            fig.add_scatter(x=x, y=[r["clicks"] for r in rows], name="clicks",
                            secondary_y=True)
            figs.append(html_of(fig, title))
    for dim in ("placement", "medium", "creative"):
        rows = shown(dim)
        if rows:
            fig = go.Figure(go.Bar(x=[r[dim] for r in rows], y=[r["ctr"] for r in rows],
                                   text=[f"{r['ctr']:.2%}" if r["ctr"] is not None else ""
                                         for r in rows]))
            fig.update_yaxes(tickformat=".1%")
            figs.append(html_of(fig, f"CTR by {dim}"))
    if m.reach_curve:
        fig = go.Figure(go.Scatter(x=[d for d, _ in m.reach_curve],
                                   y=[n for _, n in m.reach_curve], mode="lines+markers"))
        figs.append(html_of(fig, "People reached so far (de-duplicated across devices)"))
    if m.frequency:
        last = m.frequency[-1][0]
        fig = go.Figure(go.Bar(x=[f"{k}+" if k == last else str(k) for k, _ in m.frequency],
                               y=[n for _, n in m.frequency]))
        fig.update_xaxes(title="impressions per person")
        figs.append(html_of(fig, "Frequency: people by impressions seen"))
    rows = [r for r in lift_rows(m) if r["relative"] is not None]
    if rows:
        fig = go.Figure(go.Scatter(
            x=[r["relative"] for r in rows], y=[r["outcome"] for r in rows], mode="markers",
            error_x={"type": "data", "symmetric": False,
                     "array": [r["relative_high"] - r["relative"] for r in rows],
                     "arrayminus": [r["relative"] - r["relative_low"] for r in rows]}))
        fig.add_vline(x=0, line_dash="dot")
        fig.update_xaxes(tickformat="+.0%", title="exposed over held-out, 95% interval")
        figs.append(html_of(fig, "Lift against the holdout"))
    return figs


def render_html(m: Metrics, title: str, *, js_dir: Path | None = None) -> str:
    """The report page; with ``js_dir``, ``plotly.min.js`` is written there for its charts."""
    if js_dir is not None:
        from plotly.offline import get_plotlyjs

        js = js_dir / "plotly.min.js"
        if not js.exists():
            js.write_text(get_plotlyjs())
    window = " – ".join(t.isoformat() if t else "…" for t in (m.start, m.end))
    cards = "".join(f"<div class=card><b>{html.escape(_fmt(m.totals.get(k), spec))}</b>"
                    f"<span>{k}</span></div>" for k, spec in _HEADLINE)
    ivt = _table([{"rule": k, "removed": v} for k, v in m.invalid.items()], ["rule", "removed"]) \
        if m.invalid else "<p>No invalid traffic found.</p>"
    tables = "".join(
        f"<h3>By {html.escape(name)}</h3>" + _table(t.to_pylist(), name.split("/") + _COLS)
        for name, t in m.breakdowns.items() if t.num_rows)
    return (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1200px}"
        ".cards{display:flex;flex-wrap:wrap;gap:8px}.card{border:1px solid #ddd;"
        "border-radius:6px;padding:8px 12px;min-width:110px}.card b{display:block;"
        "font-size:20px}.card span{color:#666}table{border-collapse:collapse;margin:8px 0}"
        "td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:right}"
        "tr.suppressed td{color:#aaa}</style>"
        + ('<script src="plotly.min.js"></script>' if js_dir is not None else "")
        + f"<h1>{html.escape(title)}</h1><p>Window: {html.escape(window)}. People are "
        "counted once across their phone, TV and other devices. Days and hours are local "
        f"(UTC+8). Cells with fewer than {m.min_cell} people are suppressed "
        f"({m.suppressed} here).</p><div class=cards>{cards}</div>"
        f"<h2>Invalid traffic removed</h2>{ivt}"
        + ("<h2>Lift against the holdout</h2>" + _table(lift_rows(m), [
            "outcome", "exposed", "held_out", "mean_exposed", "mean_held_out", "lift",
            "lift_low", "lift_high", "relative", "relative_low", "relative_high", "p_value"])
           if m.lift is not None else "")
        + ("<h2>Charts</h2>" + "".join(_charts(m)) if js_dir is not None else "")
        + f"<h2>Breakdowns</h2>{tables}")
