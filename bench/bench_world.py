"""Benchmark world generation against the Parquet I/O floor.

Runs ``allscene.world.generate`` in a subprocess (so peak RSS is the generator's own), then, in
another subprocess, writes the same number of rows of pre-built columns (the event schema, the
same density of non-null columns, zstd) with pyarrow: the cost of just writing the output.
Prints events per second, peak RSS and the ratio. Usage::

    python bench/bench_world.py --people 20000 --days 14
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

GENERATE = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    from allscene.world import generate
    if __name__ == "__main__":
        out, people, days, workers, batch = sys.argv[1:6]
        t = time.perf_counter()
        s = generate(Path(out), people=int(people), days=int(days), workers=int(workers),
                     batch_people=int(batch))
        sec = time.perf_counter() - t
        rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        print(json.dumps({"events": s["events_total"], "seconds": sec, "rss_kb": rss,
                          "people": s["people"], "files": len(list(Path(out, "events").glob("*")))}))
""")

FLOOR = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path
    import pyarrow as pa, pyarrow.parquet as pq
    if __name__ == "__main__":
        src, out, rows = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
        # Pre-built columns: the first generated file, already in memory, tiled to `rows`.
        sample = pq.read_table(sorted(src.glob("part-*.parquet"))[0])
        per_file = sample.num_rows
        t = time.perf_counter()
        written, i = 0, 0
        while written < rows:
            n = min(per_file, rows - written)
            pq.write_table(sample.slice(0, n), out / f"floor-{i:05d}.parquet", compression="zstd")
            written += n
            i += 1
        sec = time.perf_counter() - t
        print(json.dumps({"rows": written, "seconds": sec,
                          "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
""")


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants now (Linux /proc), in KiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def _run(code: str, *args: object) -> dict:
    """Run ``code`` in a subprocess; its JSON result plus the peak RSS of its whole process
    tree (main process and workers together), sampled every 50 ms."""
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.05)
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"benchmark subprocess failed:\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_rss_kb"] = max(peak, result["rss_kb"])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-people", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=None, help="keep the world here (default: temp)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = a.out or Path(tmp) / "world"
        gen = _run(GENERATE, out, a.people, a.days, a.workers, a.batch_people)
        floor_dir = Path(tmp) / "floor"
        floor_dir.mkdir()
        floor = _run(FLOOR, out / "events", floor_dir, gen["events"])
    t = Table(title=f"world generation: {a.people:,} people x {a.days} days, "
                    f"{a.workers} workers")
    for col in ("", "rows", "seconds", "rows / s", "peak RSS, all processes (MiB)"):
        t.add_column(col, justify="right")
    g_rate = gen["events"] / gen["seconds"]
    f_rate = floor["rows"] / floor["seconds"]
    t.add_row("generate (simulate + write)", f"{gen['events']:,}", f"{gen['seconds']:.1f}",
              f"{g_rate:,.0f}", f"{gen['tree_rss_kb'] / 1024:,.0f}")
    t.add_row("baseline: write pre-built columns (1 process)", f"{floor['rows']:,}",
              f"{floor['seconds']:.1f}", f"{f_rate:,.0f}", f"{floor['tree_rss_kb'] / 1024:,.0f}")
    Console().print(t)
    Console().print(f"generation runs at {g_rate / f_rate:.2f}x the single-process write floor "
                    f"({gen['events'] / gen['people'] / a.days:.1f} events per person per day); "
                    f"peak memory of the generator, main process and workers together: "
                    f"{gen['tree_rss_kb'] / 1024**2:.2f} GiB")


if __name__ == "__main__":
    main()
