"""``allscene plan run`` and ``allscene plan show``: move an advertiser's campaigns to their
plan stage of a day (once a day, from a cron), and show a campaign's plan with what each
stage's audience came to. Thin: the work is in :mod:`allscene.matching.plans`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from allscene.cli_ads import Advertiser

console = Console()
err = Console(stderr=True)
plan_app = typer.Typer(help="Multi-stage optimization plans: campaigns moved through their "
                            "stages, each with an audience recomputed from the clicks.",
                       no_args_is_help=True)


def _fail(msg: object) -> None:
    err.print(f"[red]{msg}")
    raise typer.Exit(2)


@plan_app.command("run")
def run_cmd(ctx: typer.Context, advertiser: Advertiser,
            day: Annotated[str | None, typer.Option(
                help="The local day YYYY-MM-DD (UTC+8) to stage for; default today.")] = None
            ) -> None:
    """Stage the advertiser's campaigns for a day: compute due audiences, update campaigns
    (running ad servers pick the change up when they poll the campaigns)."""
    from allscene.matching.plans import LOCAL, run_plans

    try:
        when = dt.date.fromisoformat(day) if day else dt.datetime.now(LOCAL).date()
    except ValueError:
        _fail(f"--day: {day!r} is not a date YYYY-MM-DD")
    try:
        records = run_plans(ctx.obj, advertiser, when)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    if not records:
        console.print(f"{advertiser}: no plan stage due on {when}")
    for r in records:  # one line each, for a cron's log
        seed = "" if r.seed_people is None else f", grown from {r.seed_people:,}"
        console.print(f"{when} {advertiser}/{r.campaign}: stage {r.stage}, audience "
                      f"{r.audience or '-'}, {r.people:,} people{seed}"
                      + (f" ({r.note})" if r.note else ""), soft_wrap=True)


@plan_app.command("show")
def show_cmd(ctx: typer.Context, campaign: Annotated[str, typer.Argument()],
             advertiser: Advertiser) -> None:
    """A campaign's plan: its stages, their days and recipes, and each computed audience."""
    from allscene.delivery.campaigns import CampaignService
    from allscene.matching.plans import LOCAL, read_records, stage_at, summary
    from allscene.storage.configdb import ConfigStore

    got = CampaignService(ConfigStore(ctx.obj.config_db)).get(advertiser, campaign)
    if got is None:
        _fail(f"no campaign {campaign!r} for {advertiser}")
    c, version = got
    if c.plan is None:
        _fail(f"campaign {advertiser}/{campaign} has no plan")
    first = min(f.start for f in c.flights).astimezone(LOCAL).date()
    last = (max(f.end for f in c.flights).astimezone(LOCAL) - dt.timedelta(microseconds=1)).date()
    t = Table("stage", "from", "to", "refresh", "recipe",
              title=f"{advertiser}/{campaign} (now in stage {c.stage or '-'}, version {version})")
    for s in c.plan.stages:
        days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)
                if stage_at(c.plan, k) is s]
        t.add_row(s.id, days[0].isoformat() if days else "-",
                  days[-1].isoformat() if days else "-", s.refresh, summary(s.audience))
    console.print(t)
    records = read_records(ctx.obj.data_dir, advertiser, campaign)
    if records:
        t = Table("day", "stage", "audience", "people", "seed", "note",
                  title="audiences computed")
        for r in records:
            t.add_row(r.day.isoformat(), r.stage, r.audience or "-", f"{r.people:,}",
                      "-" if r.seed_people is None else f"{r.seed_people:,}", r.note or "")
        console.print(t)
    else:
        console.print("no stage computed yet (allscene plan run)")
