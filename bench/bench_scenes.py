"""Scene engine throughput on one core, beside the raw read rate of the same events.

Generates a world (``--people``, ``--days``), imports it, builds identity, learns each
person's places (and home city from them), then, pinned to one CPU core:

* **raw read**: reading each replayed day's events from the event log (time-ordered), the
  baseline: what it costs only to get the events out;
* **engine**: the same days through :meth:`Engine.run_many` (resolution to people and
  places, signal matching, the per-person state machine) after the read;
* **look-up**: ``scenes_of(person, now)`` for random people at the end, median of many.

Goals (issue 5): >= 200,000 events/s through the engine; look-up median < 5 µs.

Run: ``python bench/bench_scenes.py [--people 10000] [--days 4]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from allscene.events.ingest import Ingestor
from allscene.identity import device_graph
from allscene.moments import replay as rp
from allscene.moments.catalog import load_catalog
from allscene.moments.engine import Engine
from allscene.profiles.build import read_reference
from allscene.storage import ParquetEventLog
from allscene.world import generate

console = Console()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with console.status("world, import, identity, tags"):
            generate(root / "world", people=args.people, days=args.days, seed=args.seed,
                     workers=2)
            log = ParquetEventLog(root / "log")
            ing = Ingestor(log)
            for f in sorted((root / "world" / "events").glob("*.parquet")):
                ing.import_file(f)
            devices, people = (x.to_pyarrow() for x in device_graph(log.table()))
            ref = read_reference(root / "world" / "reference")
            resolver, keys, _ = rp.build_resolver(log.table(), devices, people, ref)
            homes = rp.home_cities_from_places(resolver)
        run(log, resolver, homes, args)


def run(log, resolver, homes, args) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, for both
    pa.set_cpu_count(1)
    cat = load_catalog()
    days = rp.local_days(log)
    warm, timed_days = days[:2], days[2:] or days[1:]
    engine = Engine(cat, resolver, home_city=homes, weather=rp.context_from(log, days[0]))
    for d in warm:
        engine.run_many(log.scan(start=rp.day_bounds(d)[0], end=rp.day_bounds(d)[1],
                                 kinds=rp.INPUT_KINDS))
        engine.out = []
    read_s = engine_s = 0.0
    rows = processed = 0
    for d in timed_days:
        start, end = rp.day_bounds(d)
        t0 = time.perf_counter()
        table = log.scan(start=start, end=end, kinds=rp.INPUT_KINDS)
        t1 = time.perf_counter()
        processed += engine.run_many(table)
        t2 = time.perf_counter()
        read_s += t1 - t0
        engine_s += t2 - t1
        rows += table.num_rows
        engine.out = []
    rng = random.Random(1)
    ids = resolver.people
    now = int(rp.day_bounds(timed_days[-1])[1].timestamp()) * 1_000_000 - 3_600_000_000
    sample = [ids[rng.randrange(len(ids))] for _ in range(200_000)]
    lat = []
    scenes_of = engine.scenes_of
    for p in sample:
        t = time.perf_counter_ns()
        scenes_of(p, now)
        lat.append(time.perf_counter_ns() - t)
    per_s = rows / engine_s
    t = Table(title=f"scene engine, {len(cat.scenes)} scenes, {len(ids):,} people, "
                    f"{len(timed_days)} days, one core")
    for col in ("measure", "value", "baseline (same run)", "ratio", "goal"):
        t.add_column(col, justify="right" if col != "measure" else "left")
    t.add_row("events/s", f"{per_s:,.0f}", f"raw read {rows / read_s:,.0f}",
              f"{per_s / (rows / read_s):.3f}", ">= 200,000 events/s")
    t.add_row("event rows (per person)", f"{processed:,}", f"log rows {rows:,}", "", "")
    t.add_row("scenes_of median", f"{statistics.median(lat) / 1000:.2f} µs",
              f"p99 {sorted(lat)[int(len(lat) * 0.99)] / 1000:.2f} µs", "", "< 5 µs")
    console.print(t)


if __name__ == "__main__":
    main()
