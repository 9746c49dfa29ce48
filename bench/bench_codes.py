"""Packaging codes and red envelopes: how fast they are made.

Codes: :func:`allscene.engagement.codes.generate` makes N unguessable codes (80 random bits
from ``os.urandom``, Crockford base32, a check character, duplicates checked) as Python
strings; the baseline, measured in the same run, is the naive way to make N unguessable ids,
``[uuid.uuid4().hex for _ in range(N)]`` (122 random bits, no check character). Printed:
codes per second and the ratio to the baseline (goal: 1,000,000 codes well under a second).

Envelopes: :func:`allscene.engagement.envelopes.split` of 10,000.00 CNY into 5,000
envelopes and of 1,000,000.00 CNY (100,000,000 cents) into 1,000,000, with the time taken
and a check that the amounts sum to the budget to the cent.

Run: ``python bench/bench_codes.py [--n 1000000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from allscene.engagement.codes import check, generate
from allscene.engagement.envelopes import split, summary


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs of ``fn``, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="codes to generate")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, best kept")
    args = ap.parse_args()
    n = args.n

    t_codes, codes = best_of(args.repeat, lambda: generate(n))
    t_uuid, _ = best_of(args.repeat, lambda: [uuid.uuid4().hex for _ in range(n)])
    assert len(set(codes)) == n and all(check(c) == c for c in codes[:1000])
    tab = Table(title=f"{n:,} packaging codes (best of {args.repeat})")
    tab.add_column("method")
    tab.add_column("seconds", justify="right")
    tab.add_column("per second", justify="right")
    tab.add_column("vs baseline", justify="right")
    tab.add_row("allscene codes.generate", f"{t_codes:.3f}", f"{n / t_codes:,.0f}",
                f"{t_uuid / t_codes:.2f}x")
    tab.add_row("baseline uuid4().hex loop", f"{t_uuid:.3f}", f"{n / t_uuid:,.0f}", "1.00x")
    console = Console()
    console.print(tab)
    console.print(f"sample: {codes[0]}  (all {n:,} distinct, check characters verified)")

    env = Table(title=f"red envelopes, double mean, shuffled (best of {args.repeat})")
    for col in ("budget", "envelopes", "seconds", "sum exact", "min", "max"):
        env.add_column(col, justify="right")
    for total, count in ((1_000_000, 5_000), (100_000_000, 1_000_000)):
        t, amounts = best_of(args.repeat, lambda total=total, count=count:
                             split(total, count, b"bench-seed"))
        s = summary(amounts)
        env.add_row(f"{total / 100:,.2f}", f"{count:,}", f"{t:.3f}",
                    "yes" if s["total"] == total else "NO", f"{s['min'] / 100:.2f}",
                    f"{s['max'] / 100:.2f}")
    console.print(env)


if __name__ == "__main__":
    main()
