"""The command line: one entry point, ``allscene``. Thin: parsing, progress and printing;
the work is done by the domain packages."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from allscene.cli_ads import advertiser_app, campaign_app
from allscene.cli_cases import cases_app, clear_replay, run_cases
from allscene.cli_engage import activity_app
from allscene.cli_lift import lift_cmd
from allscene.cli_matching import pctr_app
from allscene.cli_measure import report_cmd
from allscene.cli_plans import plan_app
from allscene.cli_scenes import scenes_app, scenes_counts, scenes_run, score_scenes_cmd
from allscene.config import Settings

app = typer.Typer(help="allscene: all-scene intelligent marketing platform.",
                  no_args_is_help=True, add_completion=False)
world_app = typer.Typer(help="The simulated device ecosystem.", no_args_is_help=True)
events_app = typer.Typer(help="The event log: import, inspect, maintain.", no_args_is_help=True)
identity_app = typer.Typer(help="Device → person → household.", no_args_is_help=True)
tags_app = typer.Typer(help="Tags per person: build them, read the catalog.", no_args_is_help=True)
app.add_typer(world_app, name="world")
audience_app = typer.Typer(help="Audiences: count, save, sample, export, expand, upload.",
                           no_args_is_help=True)
app.add_typer(tags_app, name="tags")
app.add_typer(audience_app, name="audience")
app.add_typer(events_app, name="events")
app.add_typer(identity_app, name="identity")
app.add_typer(scenes_app, name="scenes")
app.add_typer(advertiser_app, name="advertiser")
app.add_typer(campaign_app, name="campaign")
app.add_typer(activity_app, name="activity")
app.add_typer(pctr_app, name="pctr")
app.add_typer(plan_app, name="plan")
app.add_typer(cases_app, name="cases")
app.command("report")(report_cmd)
app.command("lift")(lift_cmd)


@app.command("audit-draws", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def audit_draws_cmd(ctx: typer.Context) -> None:
    """Re-run a finished lottery's draws from its revealed seed (--help for the options)."""
    from allscene.engagement.cli_audit import main as audit_main

    raise typer.Exit(audit_main(ctx.args))

console = Console()
err = Console(stderr=True)


@app.callback()
def _main(ctx: typer.Context, data: Annotated[Path | None, typer.Option(
        "--data", envvar="ALLSCENE_DATA",
        help="Data directory (default ./allscene-data).")] = None) -> None:
    ctx.obj = Settings(data_dir=data) if data else Settings()


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err, transient=False)


def _log(settings: Settings):
    from allscene.storage import ParquetEventLog

    return ParquetEventLog(settings.log_dir)


# --- world ----------------------------------------------------------------------------------

@world_app.command("generate")
def world_generate(
    ctx: typer.Context,
    people: Annotated[int, typer.Option(min=1, help="Number of people.")] = 10_000,
    days: Annotated[int, typer.Option(min=1, help="Days of events.")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same world).")] = 7,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2026-10-05",
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    out: Annotated[Path | None, typer.Option(help="Output dir (default DATA/world).")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing world.")] = False,
) -> None:
    """Generate a world: the events the platform reads, and apart from them the hidden
    traits and scenes that only tests and benchmarks read to score the platform."""
    _generate(people, days, seed, start, workers, out or ctx.obj.world_dir, force)


def _generate(people: int, days: int, seed: int, start: str, workers: int, out: Path,
              force: bool) -> dict:
    from allscene.world import generate

    if out.exists() and any(out.iterdir()):
        if not force:
            err.print(f"[red]{out} already holds a world; pass --force to replace it.")
            raise typer.Exit(2)
        shutil.rmtree(out)
    try:
        first = dt.date.fromisoformat(start)
    except ValueError:
        err.print(f"[red]--start {start!r}: expected a date as YYYY-MM-DD")
        raise typer.Exit(2) from None
    with _progress() as bar:
        task = bar.add_task(f"world {people:,} people x {days} days", total=None)
        summary = generate(out, people=people, days=days, seed=seed, start=first,
                           workers=workers,
                           on_progress=lambda done, total: bar.update(task, completed=done,
                                                                      total=total))
    n, secs = summary["events_total"], max(summary["seconds"], 1e-9)
    devices = ", ".join(f"{v:,} {k}" for k, v in summary["devices"].items())
    console.print(f"world written to [bold]{out}[/]: {summary['people']:,} people in "
                  f"{summary['households']:,} households; {summary['devices_total']:,} devices "
                  f"({devices}); {n:,} events in {secs:.1f}s ({n / secs:,.0f} events/s)")
    return summary


@world_app.command("score")
def world_score(ctx: typer.Context, what: Annotated[str, typer.Argument(
        help="What to score: identity, tags, lookalike or scenes.")]) -> None:
    """Score what the platform built against the world's hidden answers (tests and
    benchmarks only; the platform itself never reads them)."""
    from allscene.storage.tables import TableStore
    from allscene.world import score

    store = TableStore(ctx.obj.data_dir / "derived")
    if what not in ("identity", "tags", "lookalike", "scenes"):
        err.print(f"[red]cannot score {what!r} yet; scorable: identity, tags, lookalike, scenes")
        raise typer.Exit(2)
    if what == "scenes":
        score_scenes_cmd(ctx)
        return
    try:
        if what == "lookalike":
            _score_lookalike(store.read("tag_table"), store.read("consent"), ctx.obj.world_dir)
            return
        if what == "identity":
            scores = score.score_identity(store.read("identity_devices"),
                                          store.read("identity_people"), ctx.obj.world_dir)
        else:
            tags = store.read("tags")
            _print_tag_scores(score.score_tags(tags, ctx.obj.world_dir),
                              score.score_resident_place(tags, ctx.obj.world_dir))
            return
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    t = Table(title=f"identity against the world in {ctx.obj.world_dir}")
    t.add_column("score")
    t.add_column("value", justify="right")
    for k, v in scores.items():
        t.add_row(k, f"{v:.3f}")
    console.print(t)


def _score_lookalike(tags, consent, world: Path) -> None:
    import warnings

    import numpy as np

    from allscene.world.score import score_lookalike

    out = {r["person_id"] for r in consent.to_pylist() if r["personalized_ads"] is False}
    opted = np.array([p in out for p in tags["person_id"].to_pylist()])
    t = Table(title="lookalike from a seed of 30% of a hidden intent's holders: precision@N, "
                    "N = the holders left outside the seed")
    for col in ("hidden intent", "intent tags", "seed", "N", "random", "best one-tag rule",
                "rule", "lookalike", "x random"):
        t.add_column(col, justify="left" if col in ("hidden intent", "rule", "intent tags")
                     else "right")
    with warnings.catch_warnings(), err.status("expanding"):
        warnings.simplefilter("ignore")
        for intent in ("car_compact", "travel_booking", "phone_upgrade"):
            for hide in ((), ("intent.",)):
                s = score_lookalike(tags, opted, world, intent=intent, hide=hide)
                t.add_row(intent, "hidden" if hide else "used", f"{s['seed']:,}", f"{s['n']:,}",
                          f"{s['random']:.3f}", f"{s['rule_precision']:.3f}", s["rule"],
                          f"{s['lookalike']:.3f}", f"{s['lookalike'] / s['random']:.1f}x")
    console.print(t)
    console.print("'hidden': neither the lookalike nor the rule may use the intent's own "
                  "search counts (a seed defined by what the platform does not see).")


def _print_tag_scores(rows: list[dict], place: dict[str, float]) -> None:
    def pct(v):
        return "" if v is None or v != v else f"{v:.3f}"

    t = Table(title="tags against the world's hidden traits (coverage: share of people "
                    "tagged; for yes-only tags, of those it is true of; counts: >= 3 in 90d)")
    for col in ("tag", "people", "coverage", "precision", "declared", "inferred", "observed"):
        t.add_column(col, justify="left" if col == "tag" else "right")
    for r in rows:
        t.add_row(r["tag"], f"{r['people']:,}", pct(r["coverage"]), pct(r["precision"]),
                  *(pct(r.get(f"precision_{s}")) + (f" ({r[f'people_{s}']:,})"
                                                   if f"people_{s}" in r else "")
                    for s in ("declared", "inferred", "observed")))
    console.print(t)
    p = Table(title="resident county: IP + cell + GPS against IP alone")
    for col in ("people", "n", "IP + cell + GPS", "IP only"):
        p.add_column(col, justify="left" if col == "people" else "right")
    for group in ("everyone", "cross_district"):
        p.add_row(group.replace("_", "-") + (" commuters" if group != "everyone" else ""),
                  f"{place[f'{group}_people']:,}", pct(place[f"{group}_combined"]),
                  pct(place[f"{group}_ip_only"]))
    console.print(p)


# --- identity -------------------------------------------------------------------------------

@identity_app.command("build")
def identity_build(ctx: typer.Context) -> None:
    """Build the identity graph from the event log (DATA/derived/identity_*.parquet)."""
    from allscene.identity import device_graph
    from allscene.storage.tables import TableStore

    events = _log(ctx.obj).table()
    if events is None:
        err.print("[red]the event log is empty; import events first")
        raise typer.Exit(2)
    start = time.perf_counter()
    with err.status("building the identity graph"):
        devices, people = (x.to_pyarrow() for x in device_graph(events))
    store = TableStore(ctx.obj.data_dir / "derived")
    store.write("identity_devices", devices)
    store.write("identity_people", people)
    households = len(set(people["household_id"].to_pylist()))
    kinds = devices.group_by("device_type").aggregate([("device_id", "count")]).to_pylist()
    per_type = ", ".join(f"{r['device_id_count']:,} {r['device_type']}"
                         for r in sorted(kinds, key=lambda r: -r["device_id_count"]))
    console.print(f"{people.num_rows:,} people in {households:,} households; devices linked: "
                  f"{per_type} ({time.perf_counter() - start:.1f}s)")


# --- tags -----------------------------------------------------------------------------------

def _identity_tables(ctx: typer.Context):
    from allscene.storage.tables import TableStore

    store = TableStore(ctx.obj.data_dir / "derived")
    if "identity_devices" not in store.names():
        identity_build(ctx)
    return store.read("identity_devices"), store.read("identity_people")


@tags_app.command("build")
def tags_build(ctx: typer.Context, reference: Annotated[Path | None, typer.Option(
        help="Folder of the geo-IP, cell tower and region tables (default DATA/world/reference)."
        )] = None) -> None:
    """Compute every tag of every person from the event log (DATA/derived/tags.parquet, and
    the wide DATA/derived/tag_table.parquet that audiences read)."""
    from allscene.audiences.packages import device_hashes
    from allscene.identity.consent import person_consent
    from allscene.profiles.build import build_tags, read_reference, wide_tags
    from allscene.storage.tables import TableStore

    events = _log(ctx.obj).table()
    if events is None:
        err.print("[red]the event log is empty; import events first")
        raise typer.Exit(2)
    try:
        ref = read_reference(reference or ctx.obj.world_dir / "reference")
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    devices, people = _identity_tables(ctx)
    start = time.perf_counter()
    with err.status("tags") as status:
        long = build_tags(events, devices, people, ref, on_step=lambda s: status.update(
            f"tags: {s} ({time.perf_counter() - start:.0f}s)"))
        import ibis

        consent = person_consent(events, ibis.memtable(devices)).to_pyarrow()
        hashes = device_hashes(events, ibis.memtable(devices)).to_pyarrow()
    store = TableStore(ctx.obj.data_dir / "derived")
    store.write("device_hashes", hashes)
    store.write("tags", long)
    store.write("tag_table", wide_tags(long, people["person_id"].to_pylist()))
    store.write("consent", consent)
    n_people = len(set(long["person_id"].to_pylist()))
    opted = sum(1 for v in consent["personalized_ads"].to_pylist() if v is False)
    console.print(f"{long.num_rows:,} tags of {n_people:,} people "
                  f"({long.num_rows / max(n_people, 1):.0f} per person); {opted:,} people "
                  f"opted out of personalized ads ({time.perf_counter() - start:.1f}s)")


@tags_app.command("catalog")
def tags_catalog(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
                 ) -> None:
    """The tag catalog: name, meaning, source events, windows, IAB Audience Taxonomy id."""
    from allscene.profiles.catalog import audience_taxonomy, load_catalog

    cat = load_catalog()
    if as_json:
        sys.stdout.write(json.dumps([t.__dict__ for t in cat.values()], ensure_ascii=False,
                                    indent=2, default=list) + "\n")
        return
    tax = audience_taxonomy()
    t = Table(title=f"{len(cat)} tags")
    for col in ("tag", "type", "windows", "IAB audience 1.1", "meaning", "from"):
        t.add_column(col)
    for tag in cat.values():
        iab = tag.iab
        iab_s = ("" if iab is None else ", ".join(f"{k}: {v}" for k, v in iab.items())
                 if isinstance(iab, dict) else f"{iab} {tax[iab].split(' | ')[-1].strip(' |')}")
        t.add_row(tag.name, tag.type, ",".join(f"{d}d" for d in tag.windows), iab_s,
                  tag.meaning, ", ".join(tag.sources))
    console.print(t)


# --- audiences --------------------------------------------------------------------------------

CHEVROLET_STAGE1 = ("age in 22..39 and income in 6000..19999 and intent.first_car "
                    "and intent.car.compact >= 3 in 90d")
Advertiser = Annotated[str, typer.Option("--advertiser", "-a", envvar="ALLSCENE_ADVERTISER",
                                         help="Whose audiences (each sees only its own).")]


def _audiences(ctx: typer.Context, advertiser: str):
    from allscene.audiences.service import Audiences
    from allscene.audiences.store import AudienceError, AudienceStore
    from allscene.storage.tables import TableStore

    store = TableStore(ctx.obj.data_dir / "derived")
    try:
        tags, consent = store.read("tag_table"), store.read("consent")
    except FileNotFoundError:
        err.print("[red]no tags yet; run 'allscene tags build' first")
        raise typer.Exit(2) from None
    try:
        return Audiences(tags, consent, AudienceStore(ctx.obj.data_dir / "audiences"),
                         advertiser=advertiser)
    except AudienceError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> None:
    err.print(f"[red]{exc}")
    raise typer.Exit(2) from None


_AUDIENCE_ERRORS: tuple[type[Exception], ...] = (ValueError,)  # ExprError, AudienceError


@audience_app.command("count")
def audience_count(ctx: typer.Context, expr: Annotated[str, typer.Argument(
        help='An expression, e.g. \'age in 22..39 and not owns_car\', or @name.')],
                   advertiser: Advertiser = "default") -> None:
    """How many people an expression (or a saved audience) holds, opted-out people excluded
    (fewer than 50 shows as "< 50")."""
    aud = _audiences(ctx, advertiser)
    start = time.perf_counter()
    try:
        n = aud.count(expr)
    except _AUDIENCE_ERRORS as exc:
        _fail(exc)
    console.print(f"{n} people ({(time.perf_counter() - start) * 1e3:.1f} ms)")


@audience_app.command("create")
def audience_create(ctx: typer.Context, name: Annotated[str, typer.Argument()],
                    expr: Annotated[str, typer.Argument(help="The expression.")],
                    advertiser: Advertiser = "default",
                    replace: Annotated[bool, typer.Option(help="Replace one of that name.")] = False
                    ) -> None:
    """Save an expression as a named audience (usable as @NAME in other expressions)."""
    aud = _audiences(ctx, advertiser)
    try:
        n = aud.create(name, expr, replace=replace)
    except _AUDIENCE_ERRORS as exc:
        _fail(exc)
    console.print(f"saved audience @{name}: {n} people")


@audience_app.command("list")
def audience_list(ctx: typer.Context, advertiser: Advertiser = "default") -> None:
    """The advertiser's saved audiences with their sizes now."""
    aud = _audiences(ctx, advertiser)
    t = Table(title=f"audiences of {advertiser}")
    for col in ("name", "kind", "people", "definition", "created"):
        t.add_column(col, justify="right" if col == "people" else "left")
    for a in aud.store.list(advertiser):
        t.add_row(a.name, a.kind, str(aud.count("@" + a.name)), a.definition, a.created_at)
    console.print(t)


@audience_app.command("delete")
def audience_delete(ctx: typer.Context, name: Annotated[str, typer.Argument()],
                    advertiser: Advertiser = "default") -> None:
    """Delete a saved audience."""
    if not _audiences(ctx, advertiser).store.delete(advertiser, name):
        _fail(ValueError(f"no audience '{name}'"))
    console.print(f"deleted @{name}")


@audience_app.command("upload")
def audience_upload(ctx: typer.Context, name: Annotated[str, typer.Argument()],
                    file: Annotated[Path, typer.Argument(help="One MD5 or SHA-256 of an IMEI or "
                                                               "OAID per line (gzip ok).")],
                    advertiser: Advertiser = "default",
                    strict: Annotated[bool, typer.Option(
                        help="Refuse the file if any line is malformed.")] = False,
                    replace: Annotated[bool, typer.Option(help="Replace one of that name.")] = False
                    ) -> None:
    """Upload a custom audience package of hashed device ids; prints the match rate and the
    malformed lines (with their line numbers)."""
    from allscene.storage.tables import TableStore

    aud = _audiences(ctx, advertiser)
    if not file.is_file():
        _fail(ValueError(f"no such file: {file}"))
    hashes = TableStore(ctx.obj.data_dir / "derived").read("device_hashes")
    try:
        m = aud.upload(name, file, hashes, strict=strict, replace=replace)
    except _AUDIENCE_ERRORS as exc:
        _fail(exc)
    console.print(f"saved package @{name}: {m.lines:,} lines, {m.ids:,} distinct ids "
                  f"({m.duplicates:,} repeated, {m.invalid:,} malformed); matched "
                  f"{m.matched_ids:,} ids of {m.matched_people:,} people: match rate "
                  f"{m.match_rate:.1%}; in the audience now: {aud.count('@' + name)}")
    for e in m.errors[:10]:
        err.print(f"  [yellow]{e}")
    if m.invalid > len(m.errors[:10]):
        err.print(f"  [yellow]... {m.invalid - len(m.errors[:10]):,} more malformed lines")


@audience_app.command("lookalike")
def audience_lookalike(ctx: typer.Context, seed: Annotated[str, typer.Argument(
        help="The seed: @name or an expression.")],
                       size: Annotated[int, typer.Option(min=1, help="People to find.")],
                       name: Annotated[str | None, typer.Option(help="Save as @NAME.")] = None,
                       method: Annotated[str | None, typer.Option(
                           help="logistic (default), boosting or centroid.")] = None,
                       advertiser: Advertiser = "default",
                       replace: Annotated[bool, typer.Option(help="Replace one of that name.")] = False
                       ) -> None:
    """Expand a seed audience to the SIZE people outside it who look most like it."""
    aud = _audiences(ctx, advertiser)
    start = time.perf_counter()
    try:
        rows, scores = aud.lookalike(seed, size, name=name, method=method, replace=replace)
    except _AUDIENCE_ERRORS as exc:
        _fail(exc)
    took = time.perf_counter() - start
    where = f"saved as @{name}" if name else "not saved (give --name to keep it)"
    if len(rows):
        console.print(f"{len(rows):,} lookalikes of {seed} in {took:.1f}s, scores "
                      f"{scores[0]:.3f} to {scores[-1]:.3f}; {where}")
    else:
        console.print(f"no one outside {seed} to expand to")


@audience_app.command("sample")
def audience_sample(ctx: typer.Context, expr: Annotated[str, typer.Argument()],
                    k: Annotated[int, typer.Option("-k", min=1, help="How many.")] = 10,
                    advertiser: Advertiser = "default") -> None:
    """A random look at who is in an audience, with their main tags."""
    aud = _audiences(ctx, advertiser)
    try:
        ids = aud.sample(expr, k)
    except _AUDIENCE_ERRORS as exc:
        _fail(exc)
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = aud.tags.filter(pc.is_in(aud.tags["person_id"], pa.array(ids)))
    cols = [c for c in ("person_id", "gender", "age", "city", "income_band", "owns_car",
                        "intent.car.compact@90d") if c in rows.column_names]
    t = Table()
    for c in cols:
        t.add_column(c)
    for r in rows.select(cols).to_pylist():
        t.add_row(*("" if v is None else str(v) for v in r.values()))
    console.print(t)


@audience_app.command("export")
def audience_export(ctx: typer.Context, expr: Annotated[str, typer.Argument()],
                    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.")],
                    device_types: Annotated[str, typer.Option(
                        help="Comma-separated device types.")] = "phone",
                    advertiser: Advertiser = "default") -> None:
    """Write the hashed device ids of an audience's devices (CSV: device_id, device_type)."""
    import pyarrow.csv as pcsv

    from allscene.storage.tables import TableStore

    aud = _audiences(ctx, advertiser)
    devices = TableStore(ctx.obj.data_dir / "derived").read("identity_devices")
    try:
        table = aud.export(expr, devices, tuple(device_types.split(",")))
    except _AUDIENCE_ERRORS as exc:
        _fail(exc)
    pcsv.write_csv(table, out)
    console.print(f"wrote {table.num_rows:,} hashed device ids to {out}")


# --- events ---------------------------------------------------------------------------------

def _expand(paths: list[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file() and (
                q.suffix in (".parquet", ".jsonl", ".json", ".ndjson")
                or q.name.endswith((".jsonl.gz", ".json.gz", ".ndjson.gz"))))
        else:
            yield p


@events_app.command("import")
def events_import(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Files or directories: .parquet, "
                                                     ".jsonl, .json (gzip ok).")],
    batch_rows: Annotated[int, typer.Option(min=1, help="Events per commit.")] = 200_000,
) -> None:
    """Import event files into the log. Safe to repeat: each event is stored once."""
    from allscene.events.ingest import Ingestor

    paths = list(_expand(files))
    missing = [p for p in paths if not p.is_file()]
    if missing:
        err.print(f"[red]no such file: {', '.join(map(str, missing))}")
        raise typer.Exit(2)
    report = _import(Ingestor(_log(ctx.obj), batch_rows=batch_rows), paths)
    _print_report(report)
    if report.rejected:
        err.print(f"[yellow]{report.rejected:,} events rejected; see "
                  f"'allscene events deadletter'.")


def _import(ingestor, paths: list[Path]):
    from allscene.events.ingest import IngestReport

    total = IngestReport("all files")
    start = time.perf_counter()
    with _progress() as bar:
        files_task = bar.add_task("files", total=len(paths))
        for path in paths:
            task = bar.add_task(path.name[-40:], total=None)
            r = ingestor.import_file(path, lambda d, t, task=task: bar.update(
                task, completed=d, total=t))
            bar.remove_task(task)
            total.add(r)
            bar.advance(files_task)
    total.seconds = time.perf_counter() - start
    return total


def _print_report(r) -> None:
    t = Table(title="import", show_header=True)
    for col in ("received", "accepted", "duplicates", "rejected", "seconds", "events/s"):
        t.add_column(col, justify="right")
    t.add_row(f"{r.received:,}", f"{r.accepted:,}", f"{r.duplicates:,}", f"{r.rejected:,}",
              f"{r.seconds:.1f}", f"{r.received / max(r.seconds, 1e-9):,.0f}")
    console.print(t)
    for s in r.samples[:10]:
        err.print(f"  [yellow]rejected[/] {s}")


@events_app.command("stats")
def events_stats(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What the log holds: totals, kinds, dates, device types, rejections."""
    _stats(ctx.obj, as_json)


def _stats(settings: Settings, as_json: bool = False) -> None:
    from allscene.events import stats

    log = _log(settings)
    events = log.table("events")
    if events is None:
        console.print(f"the event log at {log.root} is empty")
        return
    out = {
        "summary": stats.summary(events).to_pyarrow().to_pylist()[0],
        "by_kind": stats.by_kind(events).to_pyarrow().to_pylist(),
        "by_date": stats.by_date(events).to_pyarrow().to_pylist(),
        "by_device_type": stats.by_device_type(events).to_pyarrow().to_pylist(),
        "deadletter": log.count("deadletter"),
    }
    if as_json:
        console.print_json(json.dumps(out, default=str))
        return
    s = out["summary"]
    console.print(f"[bold]{s['events']:,}[/] events from [bold]{s['devices']:,}[/] devices, "
                  f"{s['first']:%Y-%m-%d %H:%M} to {s['last']:%Y-%m-%d %H:%M} UTC; "
                  f"{out['deadletter']:,} rejected events in the dead-letter log")
    for title, rows in (("by kind", out["by_kind"]), ("by device type", out["by_device_type"]),
                        ("by date (UTC)", out["by_date"])):
        t = Table(title=title)
        for col in rows[0]:
            t.add_column(col, justify="right" if col in ("events", "devices") else "left")
        for row in rows:
            t.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
        console.print(t)


@events_app.command("deadletter")
def events_deadletter(ctx: typer.Context, limit: Annotated[int, typer.Option(help="Rows to show.")] = 20) -> None:
    """Rejected events and why."""
    rows = _log(ctx.obj).deadletter()
    console.print(f"{rows.num_rows:,} rejected events")
    t = Table()
    for col in ("received_at", "source", "line", "event_id", "errors"):
        t.add_column(col)
    for r in rows.slice(max(rows.num_rows - limit, 0)).to_pylist():
        t.add_row(f"{r['received_at']:%Y-%m-%d %H:%M:%S}", r["source"][-30:], str(r["line"]),
                  str(r["event_id"] or ""), "; ".join(json.loads(r["errors"])))
    console.print(t)


@events_app.command("schema")
def events_schema(kind: Annotated[str | None, typer.Option(
        help="Only this kind.")] = None) -> None:
    """Print the JSON Schema of events."""
    from allscene.events.schema import BY_KIND, json_schema

    if kind is not None:
        if kind not in BY_KIND:
            err.print(f"[red]unknown kind {kind!r}; kinds: {', '.join(BY_KIND)}")
            raise typer.Exit(2)
        sys.stdout.write(json.dumps(BY_KIND[kind].model_json_schema(), indent=2) + "\n")
        return
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")


@events_app.command("compact")
def events_compact(ctx: typer.Context, min_files: Annotated[int, typer.Option(
        help="Merge partitions with at least this many files.")] = 8) -> None:
    """Merge small files (e.g. from HTTP ingest) into one sorted file per day, then join each
    changed day's impressions to their decisions (served files, which reports read)."""
    log = _log(ctx.obj)
    with _progress() as bar:
        task = bar.add_task("merging each day's files", total=None)

        def day(date: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total,
                       description=f"joining the impressions of {date} to their decisions")

        n = log.compact(min_files, progress=day)
        bar.update(task, completed=bar.tasks[0].total or 0)
    ok, stale = log.served()
    console.print(f"merged {n:,} files; impressions joined to their decisions (served files)"
                  f" for {len(ok):,} of {len(ok) + len(stale):,} days")


# --- serve and demo -------------------------------------------------------------------------

@app.command()
def serve(ctx: typer.Context, host: Annotated[str, typer.Option()] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000,
          workers: Annotated[int, typer.Option(min=1)] = 1) -> None:
    """Run the HTTP API (OpenAPI at /openapi.json)."""
    import os

    import uvicorn

    os.environ["ALLSCENE_DATA"] = str(ctx.obj.data_dir)
    uvicorn.run("allscene.api.app:create_app", factory=True, host=host, port=port,
                workers=workers, log_level="warning")


@app.command()
def demo(ctx: typer.Context, people: Annotated[int, typer.Option(min=1)] = 10_000,
         days: Annotated[int, typer.Option(min=1)] = 14,
         seed: Annotated[int, typer.Option()] = 7) -> None:
    """The main job: generate a world, ingest it, build identity, tags, audiences and scenes,
    replay the seed cases through the ad server, and end with their reports."""
    from allscene.events.ingest import Ingestor

    settings: Settings = ctx.obj
    world = settings.world_dir
    params = world / "world.json"
    same = params.exists() and {k: json.loads(params.read_text()).get(k) for k in
                                ("people", "days", "seed")} == {"people": people, "days": days,
                                                                "seed": seed}
    console.rule("[bold]1. world")
    marker = settings.data_dir / ".demo"
    if not same and settings.log_dir.exists() and not marker.exists():
        err.print(f"[red]{settings.data_dir} holds an event log the demo did not make; "
                  "run the demo with another --data directory.")
        raise typer.Exit(2)
    if same:
        console.print(f"reusing the world in {world}")
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text("made by 'allscene demo', which may replace this directory's "
                          "world and event log\n")
        _generate(people, days, seed, "2026-10-05", 2, world, force=True)
        if settings.log_dir.exists():
            console.print(f"new world: clearing the demo's event log in {settings.log_dir}")
            shutil.rmtree(settings.log_dir)
    if marker.exists():  # the demo owns this directory: replay the cases from a clean slate
        clear_replay(settings)
    console.rule("[bold]2. ingest")
    paths = list(_expand([world / "events"]))
    _print_report(_import(Ingestor(_log(settings)), paths))
    console.rule("[bold]3. what the platform holds")
    _stats(settings)
    console.rule("[bold]4. identity: people, not devices")
    identity_build(ctx)
    console.rule("[bold]5. tags")
    tags_build(ctx, reference=None)
    console.rule("[bold]6. audiences: the Chevrolet stage-1 seed")
    aud = _audiences(ctx, "chevrolet")
    for name, expr in (("stage1_seed", CHEVROLET_STAGE1), ("compact_car_fans",
                                                         "intent.car.compact >= 1 in 90d")):
        console.print(f"@{name} = {expr}: {aud.create(name, expr, replace=True)} people")
    if aud.count("@compact_car_fans").usable:
        rows, _ = aud.lookalike("@compact_car_fans", 200, name="compact_lookalike", replace=True)
        console.print(f"@compact_lookalike: the {len(rows):,} people most like "
                      "@compact_car_fans")
    else:
        console.print("@compact_car_fans is too small to expand in a world this size")
    console.rule("[bold]7. scenes: who is in which moment, hour by hour")
    scenes_run(ctx, catalog=None, start=None, end=None, reference=None)
    day = (dt.date(2026, 10, 5) + dt.timedelta(days=min(days - 1, 8))).isoformat()
    reports = settings.data_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    scenes_counts(ctx, day=day, top=15, html_out=reports / f"scenes-{day}.html")
    console.rule("[bold]8. the seed cases, replayed day by day through the ad server")
    run_cases(settings, seed=seed)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
