"""Audience counting: Roaring bitmaps beside DuckDB SQL over the same tag table.

Builds a synthetic tag table of ``--people`` people (age, monthly income in 100-CNY steps,
car ownership, compact-car views in 90 days, gender, city tier), indexes it, and counts the
Chevrolet stage-1 audience both ways, each the median of ``--repeat`` runs. The bitmap count
is ``TagIndex.count`` on the expression's text (parsing included), which ends on a
cardinality-only bitmap operation; building the audience's bitmap (``select``) is timed too.

Goal (issue 4): on 10,000,000 people the bitmap count is >= 20x faster than SQL and < 10 ms.

Run: ``python bench/bench_audience.py [--people 10000000]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from allscene.audiences.expr import parse
from allscene.audiences.index import TagIndex

EXPR = ("age in 22..39 and income in 6000..19999 and not owns_car "
        "and intent.car.compact >= 3 in 90d")
SQL = """SELECT count(*) FROM tags WHERE age BETWEEN 22 AND 39
         AND income BETWEEN 6000 AND 19999 AND NOT coalesce(owns_car, false)
         AND "intent.car.compact@90d" >= 3"""


def synthetic_tags(n: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    # Most people rarely view compact cars; a few percent with the intent view them often.
    views = np.where(rng.random(n) < 0.04, rng.poisson(5, n), rng.poisson(0.4, n))
    return pa.table({
        "person_id": pc.cast(pa.array(np.arange(n)), pa.string()),
        "age": pa.array(rng.integers(18, 71, n)),
        "income": pa.array((np.round(rng.lognormal(9.0, 0.6, n) / 100) * 100).astype(np.int64)),
        "owns_car": pa.array(rng.random(n) < 0.35),
        "intent.car.compact@90d": pa.array(views.astype(np.int64)),
        "gender": pa.array(np.where(rng.random(n) < 0.5, "male", "female")),
        "city_tier": pa.array(rng.integers(1, 6, n)),
    })


def timed(fn, repeat: int) -> tuple[object, float]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    console = Console()
    with console.status(f"making tags for {a.people:,} people"):
        tags = synthetic_tags(a.people)
    t = time.perf_counter()
    with console.status("building the bitmap index"):
        index = TagIndex.build(tags)
    build_s = time.perf_counter() - t
    index.check(parse(EXPR), EXPR)
    n_bitmap, bitmap_s = timed(lambda: index.count(EXPR), a.repeat)
    n_select, select_s = timed(lambda: len(index.select(EXPR)), a.repeat)
    con = duckdb.connect()
    con.register("tags", tags)
    (n_sql,), sql_s = timed(lambda: con.execute(SQL).fetchone(), a.repeat)
    assert n_bitmap == n_select == n_sql, (n_bitmap, n_select, n_sql)

    table = Table(title=f"Chevrolet stage-1 audience over {a.people:,} people "
                        f"({n_bitmap:,} match; index built in {build_s:.1f}s)")
    for col in ("how", "median ms", "speed-up", "goal"):
        table.add_column(col, justify="right" if col != "how" else "left")
    table.add_row("DuckDB SQL over the tag table (baseline)", f"{sql_s * 1e3:.1f}", "1.0x", "")
    table.add_row("Roaring bitmaps: count", f"{bitmap_s * 1e3:.2f}", f"{sql_s / bitmap_s:.1f}x",
                  ">= 20x and < 10 ms")
    table.add_row("Roaring bitmaps: the audience's bitmap (select)", f"{select_s * 1e3:.2f}",
                  f"{sql_s / select_s:.1f}x", "")
    console.print(table)
    met = bitmap_s < 0.010 and sql_s / bitmap_s >= 20
    console.print(f"expression: {EXPR}\nindex build: {build_s:.1f} s; "
                  f"goal {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
