"""Engagement claims per second with concurrent clients, beside a bare Redis ``DECR`` loop.

Creates a red-envelope activity (``--claims`` envelopes, one per person) in a fresh
engagement store and lets ``--clients`` threads claim them all through
:meth:`allscene.engagement.service.Engagement.envelope`: each claim is the whole transaction
(request id, per-person limit, the pool, two ledger postings, the result), committed. Then
the same number of threads run ``DECR`` on one Redis key until it reaches zero from
``--claims``: what an inventory counter alone costs, the baseline. Printed: claims per second
for each store (SQLite always; PostgreSQL with ``--postgres URL``), the Redis baseline, the
ratio, and that the ledger balanced and exactly ``--claims`` envelopes were opened.

Run: ``python bench/bench_claims.py [--claims 5000] [--clients 20]
[--redis redis://127.0.0.1:6379/0] [--postgres postgresql://postgres@127.0.0.1:5432/test]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor


def claims(url: str, n: int, clients: int, schema: str | None = None) -> dict:
    from allscene.engagement.service import Engagement, Who
    from allscene.storage.engagedb import EngagementStore

    store = EngagementStore(url, schema=schema)
    try:
        eng = Engagement(store, code_key=b"k" * 32)
        now = dt.datetime.now(dt.UTC)
        eng.create("bench", {"id": "env", "name": "bench", "entry_points": ["phone_weather"],
                             "start": (now - dt.timedelta(days=1)).isoformat(),
                             "end": (now + dt.timedelta(days=1)).isoformat(),
                             "envelopes": {"budget_cents": 100 * n, "count": n}})

        def one(i: int) -> int:
            return eng.envelope("env", Who(f"p{i}", f"d{i}"), f"r{i}", now)["amount_cents"]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            paid = sum(pool.map(one, range(n)))
        secs = time.perf_counter() - t0
        return {"per_s": n / secs, "secs": secs, "paid": paid,
                "balanced": store.check_ledger()["balanced"],
                "opened": store.pools_of("env")["envelopes"][1]}
    finally:
        store.drop()


def redis_decr(url: str, n: int, clients: int) -> dict:
    import redis

    r = redis.Redis.from_url(url)
    key = f"bench:decr:{uuid.uuid4().hex}"
    r.set(key, n)
    taken = [0] * clients

    def loop(k: int) -> None:
        c = redis.Redis.from_url(url)
        while c.decr(key) >= 0:
            taken[k] += 1
    t0 = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    r.delete(key)
    return {"per_s": n / secs, "secs": secs, "taken": sum(taken)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--postgres", help="also measure the store in PostgreSQL")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows = []
    with console.status("Redis DECR loop"):
        base = redis_decr(args.redis, args.claims, args.clients)
    with tempfile.TemporaryDirectory() as tmp, console.status("SQLite claims"):
        rows.append(("SQLite (WAL)", claims(f"sqlite:///{tmp}/e.sqlite", args.claims,
                                            args.clients)))
    if args.postgres:
        with console.status("PostgreSQL claims"):
            rows.append(("PostgreSQL", claims(args.postgres, args.claims, args.clients,
                                              schema=f"bench_{uuid.uuid4().hex[:8]}")))
    tab = Table(title=f"{args.claims:,} red-envelope claims, {args.clients} concurrent clients")
    for col in ("store", "claims/s", "vs Redis DECR", "seconds", "opened", "ledger"):
        tab.add_column(col, justify="right" if col != "store" else "left")
    tab.add_row("Redis DECR loop (baseline)", f"{base['per_s']:,.0f}", "1.00", f"{base['secs']:.2f}",
                f"{base['taken']:,}", "-")
    for name, r in rows:
        tab.add_row(name, f"{r['per_s']:,.0f}", f"{r['per_s'] / base['per_s']:.3f}",
                    f"{r['secs']:.2f}", f"{r['opened']:,}",
                    "balanced" if r["balanced"] else "NOT BALANCED")
    console.print(tab)
    bad = [n for n, r in rows if r["opened"] != args.claims or not r["balanced"]]
    if bad or base["taken"] != args.claims:
        raise SystemExit(f"counts wrong for {bad or 'the baseline'}")


if __name__ == "__main__":
    main()
