"""Tag build time and tag quality on a simulated world.

Generates (or reuses) a world of ``--people`` people over ``--days`` days under ``--data``,
imports it into the event log, then times the identity graph and ``tags build`` on the
embedded default (DuckDB), beside the baseline of DuckDB scanning the same events once
(every column the pipelines read). Then scores the tags against the world's hidden traits.

Goals (issue 4), on 100,000 people x 14 days: tags build < 5 minutes; gender and age band
precision >= 0.85 at coverage >= 0.8; resident county right for >= 95% of people and better
than IP alone for cross-district commuters.

Run: ``python bench/bench_tags.py [--people 100000 --days 14 --data /tmp/bench-tags]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb
import ibis
from rich.console import Console
from rich.table import Table

from allscene.events.ingest import Ingestor
from allscene.identity import device_graph
from allscene.identity.consent import person_consent
from allscene.profiles.build import build_tags, read_reference, wide_tags
from allscene.storage import ParquetEventLog
from allscene.world import generate
from allscene.world.score import score_resident_place, score_tags

SCANNED = ("ts", "kind", "device_id", "ip", "network", "cell_id", "lat", "lon", "query",
           "title", "iab_category", "app", "bpm", "steps", "calories", "peer_type", "make",
           "model", "year", "genre", "item_category", "amount", "action", "gender",
           "birth_year", "education", "income_monthly", "source", "account_id")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=Path("/tmp/allscene-bench-tags"))
    a = ap.parse_args()
    console = Console()
    world, log_dir = a.data / "world", a.data / "log"
    if not (world / "world.json").exists():
        with console.status(f"generating {a.people:,} people x {a.days} days"):
            generate(world, people=a.people, days=a.days, seed=a.seed)
    log = ParquetEventLog(log_dir)
    if log.table() is None:
        with console.status("importing the world's events"):
            ing = Ingestor(log)
            for f in sorted((world / "events").glob("*.parquet")):
                ing.import_file(f)
    files = log.files("events")

    con = duckdb.connect()
    cols = ", ".join(f"count({c})" for c in SCANNED)
    t = time.perf_counter()
    n_events = con.execute(f"SELECT count(*), {cols} FROM read_parquet($f, union_by_name=true)",
                           {"f": [str(p) for p in files]}).fetchone()[0]
    scan_s = time.perf_counter() - t

    steps: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    with console.status("identity graph"):
        events = log.table()
        devices, people = (x.to_pyarrow() for x in device_graph(events))
    steps.append(("identity graph", time.perf_counter() - t0))
    t = time.perf_counter()
    marks: list[tuple[str, float]] = []

    def step(name: str) -> None:
        marks.append((name, time.perf_counter()))
        status.update(f"tags: {name}")

    with console.status("tags") as status:
        tags = build_tags(events, devices, people, read_reference(world / "reference"),
                          on_step=step)
        marks.append(("wide table and consent", time.perf_counter()))
        wide_tags(tags, people["person_id"].to_pylist())
        person_consent(events, ibis.memtable(devices)).to_pyarrow()
    steps.append(("tags build (pipelines, models, wide table, consent)",
                  time.perf_counter() - t))
    total = time.perf_counter() - t0

    tt = Table(title=f"tags build over {n_events:,} events of {people.num_rows:,} people "
                     f"({a.days} days), DuckDB")
    for c in ("step", "seconds", "x one DuckDB scan", "goal"):
        tt.add_column(c, justify="left" if c == "step" else "right")
    tt.add_row("DuckDB scanning the events once (baseline)", f"{scan_s:.1f}", "1.0x", "")
    for name, s in steps:
        tt.add_row(name, f"{s:.1f}", f"{s / scan_s:.1f}x", "")
    tt.add_row("identity + tags", f"{total:.1f}", f"{total / scan_s:.1f}x", "< 300 s")
    console.print(tt)
    ends = [m[1] for m in marks[1:]] + [time.perf_counter()]
    slow = sorted(((e - s, name) for (name, s), e in zip(marks, ends, strict=True)),
                  reverse=True)[:8]
    console.print("slowest tag steps: " + ", ".join(f"{name} {s:.1f}s" for s, name in slow))

    q = Table(title="tag quality against the world's hidden traits (coverage; for yes-only "
                    "tags, recall; counts: >= 3 in 90 days)")
    for c in ("tag", "people", "coverage", "precision", "declared", "inferred", "observed"):
        q.add_column(c, justify="left" if c == "tag" else "right")
    for r in score_tags(tags, world):
        q.add_row(r["tag"], f"{r['people']:,}", f"{r['coverage']:.3f}", f"{r['precision']:.3f}",
                  *(f"{r[f'precision_{s}']:.3f}" if f"precision_{s}" in r else ""
                    for s in ("declared", "inferred", "observed")))
    console.print(q)
    place = score_resident_place(tags, world)
    console.print(f"resident county right: everyone {place['everyone_combined']:.3f} "
                  f"(IP alone {place['everyone_ip_only']:.3f}); cross-district commuters "
                  f"({place['cross_district_people']:,}) {place['cross_district_combined']:.3f}"
                  f" (IP alone {place['cross_district_ip_only']:.3f}); goal >= 0.95 and "
                  "better than IP alone")


if __name__ == "__main__":
    main()
