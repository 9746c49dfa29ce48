"""``allscene audit-draws``: re-run a finished lottery's draw log from its revealed seed.

Checks the revealed seed against the published commitment, replays every draw with the
rules of :mod:`allscene.engagement.draws` and prints the prizes per prize id and every
mismatch. Exit status: 0 when every logged draw matches, 1 when the seed does not match the
commitment or any draw does not match, 2 for bad input (unreadable log, malformed hex, bad
odds or inventory). Thin: the work is in :mod:`allscene.engagement.draws`.

>>> main(["--help"])  # doctest: +ELLIPSIS
usage: allscene audit-draws ...
0
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from allscene.engagement.draws import (
    Audit,
    DrawLogError,
    Odds,
    check_reveal,
    rate_interval,
    read_draw_log,
    replay,
)

SHOWN_MISMATCHES = 20


class _Usage(Exception):
    """Bad command-line input (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and sys.exit(2)
        raise _Usage(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="allscene audit-draws",
                description="Re-run a lottery's draw log from its revealed seed and compare "
                            "every draw with the prize logged.")
    p.add_argument("log", type=Path, help="The draw log: CSV (seq,draw_id,prize) or JSON "
                                          "Lines; an empty prize is none.")
    p.add_argument("--seed", required=True, help="The revealed seed, hex.")
    p.add_argument("--commitment", required=True, help="The commitment published before the "
                                                       "activity: SHA-256 of the seed, hex.")
    p.add_argument("--activity", required=True, help="The activity id.")
    p.add_argument("--odds", required=True, help='Prize -> probability as a JSON map, e.g. '
                                                 '\'{"bali_trip": 0.0001}\', or @FILE.')
    p.add_argument("--inventory", default="{}", help="Prize -> count as a JSON map, or @FILE "
                                                     "(a prize not listed is unlimited).")
    p.add_argument("--json", action="store_true", help="Print the audit as JSON.")
    return p


def _json_map(option: str, text: str) -> dict[str, Any]:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _Usage(f"{option}: cannot read {text[1:]}: {exc}") from None
    try:
        value = json.loads(text, parse_float=Decimal)  # decimals stay exact
    except json.JSONDecodeError as exc:
        raise _Usage(f"{option}: not JSON: {exc.msg} (line {exc.lineno} col {exc.colno})") \
            from None
    if not isinstance(value, dict):
        raise _Usage(f"{option}: expected a JSON object (a map), got {type(value).__name__}")
    return value


def _seed(text: str) -> bytes:
    try:
        seed = bytes.fromhex(text.strip())
    except ValueError:
        raise _Usage("--seed: not hexadecimal") from None
    if not seed:
        raise _Usage("--seed: empty")
    return seed


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``allscene audit-draws`` with ``argv`` (default ``sys.argv[1:]``); returns the
    exit status (0 all match, 1 not, 2 bad input)."""
    console, err = Console(), Console(stderr=True)
    try:
        args = _parser().parse_args(argv)
        seed = _seed(args.seed)
        committed = args.commitment.strip().lower()
        if len(committed) != 64 or any(c not in "0123456789abcdef" for c in committed):
            raise _Usage("--commitment: expected 64 hexadecimal characters (SHA-256)")
        odds = Odds.of(_json_map("--odds", args.odds))
        inventory = _json_map("--inventory", args.inventory)
        records = read_draw_log(args.log)
        if not check_reveal(seed, committed):
            err.print("audit-draws: the revealed seed does not match the commitment; the "
                      "draws cannot be verified", style="bold red", highlight=False)
            return 1
        audit = replay(seed, args.activity, odds, inventory, records)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except (_Usage, DrawLogError, ValueError) as exc:
        err.print(f"audit-draws: {exc}", style="red", markup=False, highlight=False,
                  soft_wrap=True)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(_as_json(audit, odds), indent=2) + "\n")
    else:
        _print(console, audit, odds, inventory, args.log)
    return 0 if audit.ok else 1


def _as_json(audit: Audit, odds: Odds) -> dict[str, Any]:
    return {"ok": audit.ok, "draws": audit.draws, "odds": odds.as_dict(),
            "picked": audit.picked, "winners": audit.winners, "left": audit.left, "sold_out": audit.sold_out,
            "mismatches": [m._asdict() for m in audit.mismatches],
            "duplicate_draw_ids": audit.duplicate_draw_ids}


def _print(console: Console, audit: Audit, odds: Odds, inventory: dict[str, Any],
           log: Path) -> None:
    t = Table(title=f"{audit.draws:,} draws re-run from {log.name}", title_justify="left")
    for col in ("prize", "declared", "picked", "rate", "99% interval", "inventory", "awarded",
                "left"):
        t.add_column(col, justify="left" if col == "prize" else "right", no_wrap=col == "prize")
    for prize, p in zip(odds.prizes, odds.probabilities, strict=True):
        k = audit.picked[prize]
        rate = interval = "-"
        if audit.draws:
            lo, hi = rate_interval(k, audit.draws)
            rate, interval = f"{k / audit.draws:.3g}", f"{lo:.3g}-{hi:.3g}"
        t.add_row(prize, f"{float(p):.6g}", f"{k:,}", rate, interval,
                  f"{inventory[prize]:,}" if prize in inventory else "unlimited",
                  f"{audit.winners[prize]:,}",
                  f"{audit.left[prize]:,}" if prize in audit.left else "-")
    console.print(t)
    console.print("picked: draws whose number fell in the prize's interval (compare with the "
                  "declared odds); awarded: those that won it before it ran out",
                  style="dim", highlight=False)
    console.print(f"{audit.sold_out:,} draws picked a sold-out prize and won nothing",
                  style="dim", highlight=False)
    if audit.ok:
        console.print("OK: every logged draw matches its recomputed prize", style="bold green")
        return
    if audit.duplicate_draw_ids:
        shown = ", ".join(audit.duplicate_draw_ids[:SHOWN_MISMATCHES])
        console.print(f"{len(audit.duplicate_draw_ids):,} repeated draw id(s): {shown}",
                      style="bold red", markup=False, highlight=False)
    if audit.mismatches:
        m = Table(title=f"{len(audit.mismatches):,} mismatch(es)", title_justify="left",
                  title_style="bold red")
        for col in ("seq", "draw_id", "logged", "recomputed"):
            m.add_column(col)
        for x in audit.mismatches[:SHOWN_MISMATCHES]:
            m.add_row(str(x.seq), x.draw_id, x.logged or "(none)", x.recomputed or "(none)")
        console.print(m)
        if len(audit.mismatches) > SHOWN_MISMATCHES:
            console.print(f"... and {len(audit.mismatches) - SHOWN_MISMATCHES:,} more "
                          "(--json lists all)", style="dim")
    console.print("FAILED: the log does not match the draws", style="bold red")
