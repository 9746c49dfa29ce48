"""``allscene pctr train``: learn the click model from the logged impressions and clicks,
print its held-out scores beside the constant rate, and save it where the ad server loads
it (``DATA/models/pctr.npz``). Thin: the work is in :mod:`allscene.matching.train`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err = Console(stderr=True)
pctr_app = typer.Typer(help="The click model (pCTR) delivery ranks CPC bids with.",
                       no_args_is_help=True)


@pctr_app.command("train")
def train_cmd(ctx: typer.Context,
              bits: Annotated[int, typer.Option(help="2**bits hashed features.")] = 20,
              holdout: Annotated[float, typer.Option(help="The later share of impressions "
                                                     "scored before it is learnt.")] = 0.2
              ) -> None:
    """Learn from the event log; save the model for the ad server (restart it to load)."""
    from allscene.matching.train import MODEL_FILE, impressions, train
    from allscene.storage import ParquetEventLog
    from allscene.storage.tables import TableStore

    settings = ctx.obj
    tables = TableStore(settings.data_dir / "derived")
    have = set(tables.names())
    tags = tables.read("tag_table") if "tag_table" in have else None
    people = tables.read("identity_devices") if "identity_devices" in have else None
    out = set()
    if "consent" in have:
        c = tables.read("consent").to_pylist()
        out = {r["person_id"] for r in c if r.get("personalized_ads") is False}
    try:
        with console.status("reading impressions and clicks"):
            frame, clicked = impressions(ParquetEventLog(settings.log_dir), tags=tags,
                                         people=people, opted_out=out)
        with console.status(f"learning from {len(clicked):,} impressions"):
            model, rep = train(frame, clicked, bits=bits, holdout=holdout)
    except ValueError as exc:
        err.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    path = settings.data_dir / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    console.print(f"{rep['impressions']:,} impressions, {rep['clicks']:,} clicks; model "
                  f"saved to {path}")
    if "model" in rep:
        tab = Table("held out", "AUC", "log loss", "mean p / CTR",
                    title=f"the later {holdout:.0%} of impressions")
        for name in ("model", "constant"):
            s = rep[name]
            tab.add_row("FTRL" if name == "model" else "constant rate", f"{s.auc:.4f}",
                        f"{s.logloss:.5f}", f"{s.mean_p / s.ctr:.3f}" if s.ctr else "-")
        console.print(tab)
