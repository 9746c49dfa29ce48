"""``allscene advertiser ...`` and ``allscene campaign ...``: API keys, and campaigns checked
and stored from a JSON file (the same checks as ``POST /v1/campaigns``). Thin: the work is in
:mod:`allscene.delivery` and :mod:`allscene.storage.configdb`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)
advertiser_app = typer.Typer(help="Advertisers and their API keys.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns: put one from a JSON file, list, delete.",
                           no_args_is_help=True)
Advertiser = Annotated[str, typer.Option("--advertiser", "-a", envvar="ALLSCENE_ADVERTISER",
                                         help="Whose campaigns.")]


def _store(ctx: typer.Context):
    from allscene.storage.configdb import ConfigStore

    return ConfigStore(ctx.obj.config_db)


def _service(ctx: typer.Context):
    from allscene.audiences.store import AudienceStore
    from allscene.delivery.campaigns import CampaignService
    from allscene.media.placements import load_placements
    from allscene.moments.catalog import load_catalog

    audiences = AudienceStore(ctx.obj.data_dir / "audiences")
    return CampaignService(_store(ctx), scene_ids={s.id for s in load_catalog().scenes},
                           placement_ids={p.id for p in load_placements()},
                           audiences=lambda adv: {a.name for a in audiences.list(adv)})


def _fail(msg: object) -> None:
    err.print(f"[red]{msg}")
    raise typer.Exit(2)


@advertiser_app.command("add")
def advertiser_add(ctx: typer.Context, advertiser: Annotated[str, typer.Argument(
        help="Its id: lower-case letters, digits, '_' or '-'.")],
                   name: Annotated[str | None, typer.Option(help="Display name.")] = None
                   ) -> None:
    """Register an advertiser and print its API key (shown once; only a hash is kept)."""
    import re

    from allscene.storage.configdb import ConflictError

    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-]{0,63}", advertiser):
        _fail(f"advertiser {advertiser!r}: use lower-case letters, digits, '_' or '-'")
    try:
        key = _store(ctx).add_advertiser(advertiser, name or advertiser)
    except ConflictError as exc:
        _fail(exc)
    console.print(f"advertiser [bold]{advertiser}[/] added; its API key (keep it, it is not "
                  "shown again):")
    print(key)


@advertiser_app.command("rotate")
def advertiser_rotate(ctx: typer.Context, advertiser: Annotated[str, typer.Argument()]) -> None:
    """A new API key; the old one stops working."""
    try:
        print(_store(ctx).rotate_key(advertiser))
    except KeyError:
        _fail(f"no advertiser {advertiser!r}")


@advertiser_app.command("list")
def advertiser_list(ctx: typer.Context) -> None:
    t = Table("advertiser", "name")
    for adv, name in _store(ctx).list_advertisers():
        t.add_row(adv, name)
    console.print(t)


@campaign_app.command("put")
def campaign_put(ctx: typer.Context, file: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, help="The campaign as JSON.")],
                 advertiser: Advertiser) -> None:
    """Create a campaign, or replace it if it exists (checked as the API checks it)."""
    from allscene.delivery.campaigns import CampaignError

    try:
        doc = json.loads(file.read_text())
    except ValueError as exc:
        _fail(f"{file}: not valid JSON ({exc})")
    svc = _service(ctx)
    try:
        got = svc.get(advertiser, doc.get("id", "")) if isinstance(doc, dict) else None
        c, version = svc.update(advertiser, doc, got[1]) if got else svc.create(advertiser, doc)
    except (CampaignError, RuntimeError) as exc:
        _fail(exc)
    console.print(f"campaign {advertiser}/{c.id} stored at version {version}")


@campaign_app.command("list")
def campaign_list(ctx: typer.Context, advertiser: Advertiser) -> None:
    t = Table("id", "name", "status", "bid", "budget", "placements", "version")
    for c, v in _service(ctx).list(advertiser):
        t.add_row(c.id, c.name, c.status, f"{c.bid.type} {c.bid.amount:g}",
                  f"{c.budget.total:,.0f}", ", ".join(c.targeting.placements) or "all", str(v))
    console.print(t)


@campaign_app.command("delete")
def campaign_delete(ctx: typer.Context, campaign: Annotated[str, typer.Argument()],
                    advertiser: Advertiser) -> None:
    if not _service(ctx).delete(advertiser, campaign):
        _fail(f"no campaign {campaign!r} for {advertiser}")
    console.print(f"deleted {advertiser}/{campaign}")
