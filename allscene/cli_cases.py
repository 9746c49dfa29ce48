"""``allscene cases``: replay the seed cases (``cases/*.yaml``) over the world's days, through
the decision server and the engagement engine, and write one report per campaign and an
index page. The main job (``allscene demo``) ends with it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from allscene.config import Settings

cases_app = typer.Typer(help="The seed cases, replayed end to end.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
FRESH = ("log", "journal", "audiences", "plans", "models", "config.sqlite", "reports/cases")
"""What a replay starts without: the ad and engagement state of an earlier replay."""


def run_cases(settings: Settings, *, seed: int = 7, files: list[Path] | None = None) -> Path:
    """Replay the cases on the world in ``settings.world_dir`` (its events already in the
    log and its tags built); prints each day and the claims; returns the index page."""
    from allscene.world.replay import case_reports, load_cases, replay

    cases = load_cases(files)
    t0 = time.perf_counter()

    def day_done(day, c) -> None:
        console.print(f"  {day}: {c.opportunities:,} opportunities, {c.ads:,} ads, "
                      f"{c.clicks:,} clicks, {sum(c.conversions.values()):,} conversions, "
                      f"{c.took_part:,} took part in activities "
                      f"({time.perf_counter() - t0:.0f} s)")

    console.print(f"{len(cases)} cases: {', '.join(c.id for c in cases)}")
    done = replay(settings, cases, settings.world_dir, seed=seed, progress=day_done)
    console.print(f"replayed {len(done.days)} days in {time.perf_counter() - t0:.0f} s; "
                  "writing the reports")
    index, results = case_reports(settings, cases, settings.data_dir / "reports" / "cases",
                                  plan_records=done.plan_records)
    table = Table(title="seed effects in the replay, beside the article's")
    for col in ("case", "effect", "replay", "holds", "article"):
        table.add_column(col)
    for case_id, r in results:
        figs = " > ".join(f"{item} {_fmt(v, r.metric)}" for item, v in r.figures)
        holds = "[dim]too few to tell[/]" if r.holds is None else \
            "[green]yes[/]" if r.holds else "[red]no[/]"
        table.add_row(case_id, r.claim, figs, holds, r.article)
    console.print(table)
    console.print(f"reports: [bold]{index}[/] (open it in a browser)")
    return index


def _fmt(v, metric: str) -> str:
    if v is None:
        return "—"
    return f"{v:.2%}" if metric == "ctr" or metric.startswith("retention") \
        or metric.endswith("_rate") else f"{v:,.4g}"


def clear_replay(settings: Settings) -> None:
    """Remove an earlier replay's state (see :data:`FRESH`) from a demo's data directory."""
    for name in FRESH:
        p = settings.data_dir / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


@cases_app.command("replay")
def replay_cmd(ctx: typer.Context,
               files: Annotated[list[Path] | None, typer.Argument(
                   help="Case files (default: every cases/*.yaml).")] = None,
               seed: Annotated[int, typer.Option()] = 7) -> None:
    """Replay case files over the world's days and write their reports. The data directory
    must hold a world whose events are in the log and whose tags are built (``allscene
    demo`` does all of it)."""
    settings: Settings = ctx.obj
    if not (settings.world_dir / "world.json").exists():
        err.print(f"[red]no world in {settings.world_dir}; run 'allscene demo' first")
        raise typer.Exit(2)
    for f in files or []:
        if not f.exists():
            err.print(f"[red]{f}: no such case file")
            raise typer.Exit(2)
    try:
        run_cases(settings, seed=seed, files=files)
    except ValueError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None
