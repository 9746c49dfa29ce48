"""``allscene report``: a campaign's counted figures, as a table, JSON, and an HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from allscene.measurement.metrics import MeasureError, Rules, check_dimensions, parse_when

console = Console()
err = Console(stderr=True)


def report_cmd(
        ctx: typer.Context, campaign: Annotated[str, typer.Argument(help="Campaign id.")],
        advertiser: Annotated[str | None, typer.Option(
            "--advertiser", "-a", help="Whose campaign (needed when two share the id).")] = None,
        by: Annotated[str | None, typer.Option(
            help="Breakdowns, ';' between them, ',' inside one: 'day;placement,creative' "
                 "(default: day, hour, placement, medium, device_type, creative).")] = None,
        start: Annotated[str | None, typer.Option(help="From (ISO date or time).")] = None,
        end: Annotated[str | None, typer.Option(help="Until, excluded (ISO).")] = None,
        view_window: Annotated[float, typer.Option(help="View-through window, days.")] = 7,
        click_window: Annotated[float, typer.Option(help="Click-through window, days.")] = 30,
        search_terms: Annotated[str | None, typer.Option(
            "--search-terms", help="Brand search terms, comma-separated, for the search "
                                   "lift against the holdout.")] = None,
        out: Annotated[Path | None, typer.Option(
            help="Report directory (default DATA/reports/<advertiser>-<campaign>).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """A campaign's impressions, clicks, reach in people, frequency, cost, conversions and
    retention, with invalid traffic removed and counted; writes an HTML report with charts
    and the same numbers as CSV and Parquet."""
    from allscene.measurement.report import (
        DEFAULT_BREAKDOWNS,
        campaign_metrics,
        lift_rows,
        write_report,
    )

    try:
        breakdowns = DEFAULT_BREAKDOWNS if by is None else [
            check_dimensions(d.strip() for d in part.split(",") if d.strip())
            for part in by.split(";") if part.strip()]
        m = campaign_metrics(ctx.obj, campaign, advertiser=advertiser, by=breakdowns,
                             start=parse_when(start, "--start"), end=parse_when(end, "--end"),
                             rules=Rules(view_window_d=view_window,
                                         click_window_d=click_window),
                             search_terms=tuple(t.strip() for t in (search_terms or "")
                                                .split(",") if t.strip()))
    except MeasureError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    folder = out or ctx.obj.data_dir / "reports" / f"{m.advertiser}-{campaign}"
    page = write_report(m, folder)
    if as_json:
        print(json.dumps({"advertiser": m.advertiser, "campaign": campaign,
                          "totals": m.totals, "invalid": m.invalid,
                          "suppressed_cells": m.suppressed, "report": str(page)}, default=str))
        return
    t = Table(title=f"{m.advertiser}/{campaign}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for k, v in m.totals.items():
        if k != "suppressed":
            t.add_row(k, "–" if v is None else f"{v:,.4g}" if isinstance(v, float) else f"{v:,}")
    console.print(t)
    for r in lift_rows(m):
        rel = "" if r["relative"] is None else \
            f" ({r['relative']:+.1%} [{r['relative_low']:+.1%}, {r['relative_high']:+.1%}])"
        console.print(f"lift on {r['outcome']}: {r['lift']:+.4g} [{r['lift_low']:+.4g}, "
                      f"{r['lift_high']:+.4g}]{rel}, {r['exposed']:,} exposed vs "
                      f"{r['held_out']:,} held out")
    if m.invalid:
        console.print("invalid traffic removed: " + "; ".join(f"{k} {v:,}"
                                                            for k, v in m.invalid.items()))
    console.print(f"report: {page} ({m.suppressed} cells under {m.min_cell} people suppressed)")
