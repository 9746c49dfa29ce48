"""``allscene scenes ...``: the scene catalog, running the engine over stored days, a
person's timeline and the people per scene per hour. Thin: the work is in
:mod:`allscene.moments`."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)
scenes_app = typer.Typer(help="Scenes: the catalog, the engine over stored days, timelines, "
                              "counts.", no_args_is_help=True)
CatalogOpt = Annotated[Path | None, typer.Option(
    "--catalog", help="A scene catalog file (default: the packaged scenes.yaml).")]


def _catalog(path: Path | None):
    from allscene.moments.catalog import CatalogError, load_catalog

    try:
        return load_catalog(path)
    except CatalogError as exc:
        err.print(f"[red]{exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def _log(ctx: typer.Context):
    from allscene.storage import ParquetEventLog

    return ParquetEventLog(ctx.obj.log_dir)


def _date(text: str, what: str = "--day") -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        err.print(f"[red]{what} {text!r}: expected a date as YYYY-MM-DD")
        raise typer.Exit(2) from None


@scenes_app.command("list")
def scenes_list(catalog: CatalogOpt = None, family: Annotated[str | None, typer.Option(
        help="Only this family: home, personal or smart_life.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The scene catalog: every scene with its family, names, how long it lasts and when a
    person is in it."""
    cat = _catalog(catalog)
    scenes = [s for s in cat.scenes if family is None or s.family == family]
    if as_json:
        print(json.dumps([{"id": s.id, "family": s.family, "name": {"zh": s.name_zh,
                          "en": s.name_en}, "description": s.description, "when": s.when,
                           "until": s.until, "lasts": s.lasts} for s in scenes],
                         ensure_ascii=False, indent=1))
        return
    t = Table(title=f"{len(scenes)} scenes", show_lines=False)
    for col in ("id", "family", "zh", "en", "lasts", "when"):
        t.add_column(col, overflow="fold")
    for s in sorted(scenes, key=lambda s: (s.family, s.id)):
        t.add_row(s.id, s.family, s.name_zh, s.name_en, s.lasts, s.when)
    console.print(t)
    fams: dict[str, int] = {}
    for s in scenes:
        fams[s.family] = fams.get(s.family, 0) + 1
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(fams.items())))


@scenes_app.command("run")
def scenes_run(ctx: typer.Context, catalog: CatalogOpt = None,
               start: Annotated[str | None, typer.Option(help="First local day, YYYY-MM-DD.")]
               = None,
               end: Annotated[str | None, typer.Option(help="Last local day, YYYY-MM-DD.")]
               = None,
               reference: Annotated[Path | None, typer.Option(
                   help="Folder of the cell tower, geo-IP and region tables "
                        "(default DATA/world/reference).")] = None) -> None:
    """Run the scene engine over the stored days, in time order, and append the scene enter
    and exit events to the event log (running again adds nothing new)."""
    from allscene.moments import replay as rp
    from allscene.moments.engine import Engine
    from allscene.profiles.build import read_reference
    from allscene.storage.tables import TableStore

    cat = _catalog(catalog)
    log = _log(ctx)
    events = log.table()
    store = TableStore(ctx.obj.data_dir / "derived")
    if events is None:
        err.print("[red]the event log is empty; import events first")
        raise typer.Exit(2)
    missing = [n for n in ("identity_devices", "identity_people", "tag_table")
               if n not in store.names()]
    if missing:
        err.print(f"[red]missing {', '.join(missing)}: run 'allscene identity build' and "
                  "'allscene tags build' first")
        raise typer.Exit(2)
    try:
        ref = read_reference(reference or ctx.obj.world_dir / "reference")
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    t0 = time.perf_counter()
    with err.status("learning each person's places"):
        resolver, keys, ends = rp.build_resolver(events, store.read("identity_devices"),
                                                 store.read("identity_people"), ref)
    store.write("place_keys", keys)
    store.write("work_end", ends)
    days = rp.local_days(log)
    if start:
        days = [d for d in days if d >= _date(start, "--start")]
    if end:
        days = [d for d in days if d <= _date(end, "--end")]
    if not days:
        err.print("[red]no stored days in that range")
        raise typer.Exit(2)
    engine = Engine(cat, resolver, home_city=rp.home_cities(store.read("tag_table")),
                    weather=rp.context_from(log, days[0]))
    console.print(f"{len(cat.scenes)} scenes, {len(resolver.people):,} people, "
                  f"{keys.num_rows:,} home and work places learnt "
                  f"({time.perf_counter() - t0:.1f}s)")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), console=err) as bar:
        task = bar.add_task("days", total=len(days), rate="")
        done = rp.replay(log, engine, days, on_day=lambda r: bar.update(
            task, advance=1, rate=f"{r.date}: {r.events_in:,} events, {r.scene_events:,} "
                                  f"scene events"))
    (ctx.obj.data_dir / "derived" / RUN_FILE).write_text(json.dumps({
        "catalog": cat.digest, "days": [d.isoformat() for d in days]}))
    n = sum(r.events_in for r in done)
    secs = sum(r.seconds for r in done)
    console.print(f"{len(days)} days, {n:,} events through the engine "
                  f"({n / max(secs, 1e-9):,.0f} events/s), {sum(r.scene_events for r in done):,} "
                  f"scene events, {sum(r.written for r in done):,} new to the log")


RUN_FILE = "scene_run.json"


def _scene_events(ctx: typer.Context, start: dt.datetime, end: dt.datetime):
    """Scene events of the last ``scenes run`` (its catalog's generation) in a time range."""
    import pyarrow.compute as pc

    from allscene.moments.replay import MOMENT_KINDS, generation

    ev = _log(ctx).scan(start=start, end=end, kinds=MOMENT_KINDS,
                        columns=["event_id", "ts", "kind", "account_id", "scene"])
    run = ctx.obj.data_dir / "derived" / RUN_FILE
    if run.exists():
        prefix = generation(json.loads(run.read_text())["catalog"])
        ev = ev.filter(pc.starts_with(ev["event_id"], prefix))
    return ev


@scenes_app.command("timeline")
def scenes_timeline(ctx: typer.Context, person: Annotated[str, typer.Argument(
        help="A person id (their account id).")],
        day: Annotated[str, typer.Option(help="Local day, YYYY-MM-DD.")],
        catalog: CatalogOpt = None) -> None:
    """The scenes a person was in on a day, in time order (local time, UTC+8)."""
    import pyarrow.compute as pc

    from allscene.moments.replay import LOCAL, day_bounds, intervals

    date = _date(day)
    start, end = day_bounds(date)
    ev = _scene_events(ctx, start - dt.timedelta(days=2), end)
    ev = ev.filter(pc.equal(ev["account_id"], person))
    end_us = int(end.timestamp()) * 1_000_000
    iv = intervals(ev, end_us)
    lo = int(start.timestamp()) * 1_000_000
    iv = iv.filter(pc.greater(iv["end"], lo))
    if not iv.num_rows:
        err.print(f"[yellow]no scenes for {person} on {date} (has 'allscene scenes run' "
                  "been run?)")
        raise typer.Exit(1)
    names = {s.id: s for s in _catalog(catalog).scenes}
    t = Table(title=f"{person} on {date}")
    for col in ("from", "to", "scene", "family", "name"):
        t.add_column(col)

    def clock(us: int) -> str:
        moment = dt.datetime.fromtimestamp(us / 1e6, LOCAL)
        return moment.strftime("%H:%M") if moment.date() == date else moment.strftime("%m-%d %H:%M")

    for r in sorted(iv.to_pylist(), key=lambda r: (r["start"], r["scene"])):
        s = names.get(r["scene"])
        t.add_row(clock(max(r["start"], lo)), clock(r["end"]), r["scene"],
                  s.family if s else "", f"{s.name_zh} {s.name_en}" if s else "")
    console.print(t)


@scenes_app.command("counts")
def scenes_counts(ctx: typer.Context,
                  day: Annotated[str, typer.Option(help="Local day, YYYY-MM-DD.")],
                  top: Annotated[int, typer.Option(help="Scenes to print (most people).")] = 25,
                  html_out: Annotated[Path | None, typer.Option(
                      "--html", help="Also write an HTML heat map of every scene.")] = None
                  ) -> None:
    """People per scene per local hour of a day (a person counts in an hour when the scene
    began in it or covered half of it)."""
    from allscene.moments.replay import day_bounds, hourly_counts, intervals

    date = _date(day)
    start, end = day_bounds(date)
    ev = _scene_events(ctx, start - dt.timedelta(days=2), end)
    counts = hourly_counts(intervals(ev, int(end.timestamp()) * 1_000_000), date)
    grid: dict[str, list[int]] = {}
    for r in counts.to_pylist():
        grid.setdefault(r["scene"], [0] * 24)[r["hour"]] = r["people"]
    if not grid:
        err.print(f"[yellow]no scene events on {date} (has 'allscene scenes run' been run?)")
        raise typer.Exit(1)
    order = sorted(grid, key=lambda s: (-max(grid[s]), s))
    t = Table(title=f"people per scene per hour, {date} (top {min(top, len(order))} of "
                    f"{len(order)} scenes; --html for all)")
    t.add_column("scene")
    t.add_column("00h ... 23h", no_wrap=True)
    t.add_column("peak", justify="right")
    t.add_column("people", justify="right")
    for s in order[:top]:
        row = grid[s]
        peak = max(range(24), key=lambda h: row[h])
        t.add_row(s, sparkline(row), f"{peak:02d}:00", f"{row[peak]:,}")
    console.print(t)
    if html_out:
        html_out.write_text(heatmap_html(grid, order, f"People per scene per hour, {date}"),
                            encoding="utf-8")
        console.print(f"heat map written to {html_out}")


def sparkline(values: list[int]) -> str:
    """One character per value, its height proportional to the value (blank for none).

    >>> sparkline([0, 1, 4, 8])
    ' ▁▄█'
    """
    top = max(values) or 1
    bars = "▁▂▃▄▅▆▇█"
    return "".join(" " if v == 0 else bars[max(0, math.ceil(v / top * len(bars)) - 1)]
                   for v in values)


def heatmap_html(grid: dict[str, list[int]], order: list[str], title: str) -> str:
    """A self-contained HTML heat map (no scripts): one row per scene, one cell per hour."""
    peak = max(max(v) for v in grid.values()) or 1
    rows = []
    for s in order:
        cells = "".join(
            f'<td style="background:rgba(200,40,40,{v / peak:.3f})" title="{s} {h:02d}:00 '
            f'{v}">{v if v else ""}</td>' for h, v in enumerate(grid[s]))
        rows.append(f"<tr><th>{html.escape(s)}</th>{cells}</tr>")
    head = "".join(f"<th>{h:02d}</th>" for h in range(24))
    return (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<style>body{font:12px sans-serif}td{text-align:right;padding:2px 4px;"
            "min-width:28px}th{text-align:left;padding:2px 6px}</style>"
            f"<h1>{html.escape(title)}</h1><table><tr><th>scene</th>{head}</tr>"
            + "".join(rows) + "</table>")


GOALS = ("commute_taxi", "commute_transit", "commute_drive", "working_late", "running",
         "tv_prime_time", "business_trip", "holiday_travel")
"""Scenes held to 0.9 precision and 0.8 recall."""


def score_scenes_cmd(ctx: typer.Context, catalog: Path | None = None) -> None:
    """Precision and recall per scene the world simulates, per family (world score scenes)."""
    from allscene.moments.replay import LOCAL_US, hours_of, intervals, local_days
    from allscene.world.score_scenes import score_scenes

    log = _log(ctx)
    days = local_days(log)
    if not days:
        err.print("[red]the event log is empty")
        raise typer.Exit(2)
    # The first day warms the engine up (who is asleep at midnight is not known yet).
    first, last = days[min(1, len(days) - 1)], days[-1]
    lo = int(dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC).timestamp() * 1e6) - LOCAL_US
    hi = lo + (last - first).days * 86_400_000_000 + 86_400_000_000
    ev = _scene_events(ctx, dt.datetime.fromtimestamp(lo / 1e6, dt.UTC) - dt.timedelta(days=2),
                       dt.datetime.fromtimestamp(hi / 1e6, dt.UTC))
    if not ev.num_rows:
        err.print("[red]no scene events: run 'allscene scenes run' first")
        raise typer.Exit(2)
    cat = _catalog(catalog)
    hour0 = (lo + LOCAL_US) // 3_600_000_000
    rows = score_scenes(hours_of(intervals(ev, hi)), ctx.obj.world_dir, first_hour=hour0,
                        end_hour=hour0 + (hi - lo) // 3_600_000_000,
                        catalog_ids={s.id for s in cat.scenes},
                        families={s.id: s.family for s in cat.scenes})
    t = Table(title=f"scenes against the simulated world, {first} to {last} (person-hours)")
    for col in ("family", "scene", "in world", "predicted", "precision", "recall", "goal"):
        t.add_column(col, justify="left" if col in ("family", "scene", "goal") else "right",
                     overflow="fold", min_width=6 if col in ("precision", "recall") else None)

    def fmt(x: float) -> str:
        return "-" if math.isnan(x) else f"{x:.3f}"

    for r in sorted(rows, key=lambda r: (r["family"], r["scene"])):
        goal = ""
        if r["scene"] in GOALS:
            ok = r["precision"] >= 0.9 and r["recall"] >= 0.8
            goal = "[green]met[/]" if ok else "[red]missed[/]"
        t.add_row(r["family"], r["scene"], f"{r['world']:,}", f"{r['predicted']:,}",
                  fmt(r["precision"]), fmt(r["recall"]), goal)
    console.print(t)
