"""``allscene activity ...``: create an activity from a JSON or YAML file, list them, read
their live figures, make packaging codes, close a contest, export the draw log and reveal the
seed once it is over. Thin: the work is in :mod:`allscene.engagement`."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)
activity_app = typer.Typer(help="Interactive activities: lotteries, envelopes, coupons, codes, "
                                "points, badges, contests.", no_args_is_help=True)
Advertiser = Annotated[str, typer.Option("--advertiser", "-a", envvar="ALLSCENE_ADVERTISER",
                                         help="Whose activities.")]
ActivityId = Annotated[str, typer.Argument(help="The activity's id.")]


def _engine(ctx: typer.Context):
    from allscene.engagement.service import build_engagement

    return build_engagement(ctx.obj, None)


def _run(fn, *args):
    from allscene.engagement.service import EngagementError

    try:
        return fn(*args)
    except EngagementError as exc:
        err.print(f"[red]{exc.reason}")
        raise typer.Exit(2) from None


@activity_app.command("create")
def create(ctx: typer.Context, file: Annotated[Path, typer.Argument(
        help="The activity: a JSON or YAML document.", exists=True, dir_okay=False)],
           advertiser: Advertiser) -> None:
    """Check and create an activity; prints its draw commitment (publish it)."""
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            import yaml
            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except (ValueError, ImportError) as exc:
        err.print(f"[red]{file}: not a readable document ({exc})")
        raise typer.Exit(2) from None
    if not isinstance(doc, dict):
        err.print(f"[red]{file}: an activity is a mapping")
        raise typer.Exit(2)
    made = _run(_engine(ctx).create, advertiser, doc)
    console.print(f"created [bold]{made['id']}[/bold] ({made['start']} to {made['end']}); "
                  f"draw commitment {made['commitment']}")


@activity_app.command("list")
def list_(ctx: typer.Context, advertiser: Advertiser) -> None:
    """The advertiser's activities."""
    eng = _engine(ctx)
    tab = Table("id", "name", "start", "end", "mechanics")
    for _, doc in eng.store.activities_of(advertiser):
        mech = [m for m in ("lottery", "envelopes", "coupons", "codes", "points", "badges",
                            "contest") if doc.get(m)]
        tab.add_row(doc["id"], doc["name"], doc["start"], doc["end"], ", ".join(mech))
    console.print(tab)


@activity_app.command("figures")
def figures(ctx: typer.Context, activity: ActivityId, advertiser: Advertiser,
            as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Live figures: participants, draws, prizes left, cash paid, points, rejections."""
    f = _run(_engine(ctx).figures, advertiser, activity)
    if as_json:
        console.print_json(json.dumps(f))
        return
    console.print(f"[bold]{f['activity']}[/bold]: {f['participants']:,} participants; "
                  + ", ".join(f"{k} {v:,}" for k, v in f["by_action"].items()))
    tab = Table("prize", "quantity", "awarded", "left", title="prizes")
    for pid, p in f["prizes"].items():
        tab.add_row(pid, f"{p['quantity']:,}", f"{p['awarded']:,}", f"{p['left']:,}")
    console.print(tab)
    console.print(f"cash paid ¥{f['cash_paid_cents'] / 100:,.2f}, left "
                  f"¥{f['cash_left_cents'] / 100:,.2f}; points issued {f['points_issued']:,}, "
                  f"spent {f['points_spent']:,}; guessed codes {f['guessed_codes']:,}; "
                  f"refused {f['rejections'] or 'none'}")


@activity_app.command("codes")
def make_codes(ctx: typer.Context, activity: ActivityId, advertiser: Advertiser,
               out: Annotated[Path, typer.Option("--out", "-o", help="Where the codes go "
                                                 "(one per line, for the printer).")]) -> None:
    """Make the activity's packaging codes (only their keyed hashes are kept)."""
    made = _run(_engine(ctx).generate_codes, advertiser, activity)
    out.write_text("\n".join(made) + "\n", encoding="ascii")
    console.print(f"{len(made):,} codes written to {out}")


@activity_app.command("close")
def close(ctx: typer.Context, activity: ActivityId, advertiser: Advertiser) -> None:
    """Close a contest and award its winners (the earliest correct answers)."""
    won = _run(lambda: _engine(ctx).close_contest(activity, dt.datetime.now(dt.UTC),
                                                  advertiser=advertiser))
    for w in won:
        console.print(f"#{w['rank']} {w['person']} at {w['received_at']}: {w['prize']}")
    if not won:
        console.print("no correct answer")


@activity_app.command("draws")
def draw_log(ctx: typer.Context, activity: ActivityId, advertiser: Advertiser,
             out: Annotated[Path, typer.Option("--out", "-o")]) -> None:
    """Export the draw log (seq, draw_id, prize) for `allscene audit-draws`."""
    rows = _run(_engine(ctx).draw_log, advertiser, activity)
    with out.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["seq", "draw_id", "prize"])
        w.writerows([r["seq"], r["draw_id"], r["prize"] or ""] for r in rows)
    console.print(f"{len(rows):,} draws written to {out}")


@activity_app.command("reveal")
def reveal(ctx: typer.Context, activity: ActivityId, advertiser: Advertiser) -> None:
    """After the end: the seed, its commitment, the odds and the inventory (JSON), all an
    auditor needs besides the draw log."""
    got = _run(_engine(ctx).reveal, advertiser, activity, dt.datetime.now(dt.UTC))
    console.print_json(json.dumps(got))


@activity_app.command("report")
def report(ctx: typer.Context, activity: ActivityId, advertiser: Advertiser,
           window_d: Annotated[int, typer.Option("--window", help="Days after taking part (or "
                                                  "being shown) a conversion counts.")] = 30,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The activity counted from the event log: shown, took part, won, paid, refused, and
    conversions of those who took part beside those only shown."""
    from dataclasses import asdict

    from allscene.measurement.activities import activity_metrics
    from allscene.measurement.metrics import MeasureError
    from allscene.storage import ParquetEventLog
    from allscene.storage.tables import TableStore

    settings = ctx.obj
    tables = TableStore(settings.data_dir / "derived")
    people = tables.read("identity_devices").select(["device_id", "person_id"]) \
        if "identity_devices" in set(tables.names()) else None
    try:
        m = activity_metrics(ParquetEventLog(settings.log_dir), advertiser, activity,
                             people=people, window_d=window_d)
    except MeasureError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(json.dumps(asdict(m), default=str))
        return
    t = m.totals
    console.print(f"[bold]{activity}[/bold]: shown to {t['shown']:,} people, "
                  f"{t['participants']:,} took part"
                  + (f" ({t['participation']:.1%})" if t["participation"] is not None else "")
                  + f"; cash paid ¥{t['cash_paid']:,.2f}; points earned "
                  f"{t['points_earned']:,}, spent {t['points_spent']:,}")
    tab = Table("action", "events", "people")
    for r in m.by_action:
        tab.add_row(r["action"], f"{r['events']:,}", f"{r['people']:,}")
    console.print(tab)
    console.print(f"prizes won: {m.prizes or 'none'}; refused: {m.refused or 'none'}")
    conv = Table("group", "people", "converted", "rate", title=f"conversions within "
                                                                 f"{window_d} days")
    for r in m.conversions:
        if r["suppressed"]:
            conv.add_row(r["group"], "(suppressed)", "", "")
        else:
            conv.add_row(r["group"], f"{r['people']:,}", f"{r['converted']:,}",
                         f"{r['rate']:.1%}")
    console.print(conv)
