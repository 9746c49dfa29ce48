"""Ingest throughput: file import and HTTP batch ingest, beside DuckDB reading the same Parquet.

Generates a world (or reads ``--events`` Parquet files), then measures in one run:

* baseline: DuckDB reading every column of the same Parquet files into Arrow;
* file import: ``Ingestor.import_file`` over the same files (validate, de-duplicate, write);
* the same import again, as after a crash: every event found to be a duplicate;
* HTTP ingest: the same events as JSON Lines, POSTed in batches by concurrent clients to a
  real ``allscene serve`` process on 127.0.0.1.

Goals (issue 3): HTTP >= 20,000 events/s; file import >= 30% of the DuckDB baseline.

Run: ``python bench/bench_ingest.py [--people 5000 --days 7] [--http-events 400000]``
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx
import orjson
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from allscene.events.ingest import Ingestor
from allscene.storage import ParquetEventLog

console = Console()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def baseline(files: list[str]) -> tuple[int, float]:
    con = duckdb.connect()
    t = time.perf_counter()
    n = con.execute("SELECT * FROM read_parquet($f)", {"f": files}).to_arrow_table().num_rows
    return n, time.perf_counter() - t


def file_import(files: list[str], root: Path, field: str = "accepted") -> tuple[int, float]:
    """Import ``files`` in a fresh process-like log object; count ``field`` of the reports."""
    ing = Ingestor(ParquetEventLog(root), batch_rows=200_000)
    t = time.perf_counter()
    n = sum(getattr(ing.import_file(f), field) for f in files)
    return n, time.perf_counter() - t


def to_json_lines(files: list[str], limit: int) -> list[bytes]:
    lines: list[bytes] = []
    for f in files:
        for row in pq.read_table(f).to_pylist():
            row = {k: v for k, v in row.items() if v is not None}
            row["ts"] = row["ts"].astimezone(dt.timezone.utc).isoformat()
            lines.append(orjson.dumps(row))
            if len(lines) >= limit:
                return lines
    return lines


def http_ingest(lines: list[bytes], root: Path, batch: int, clients: int) -> tuple[int, float]:
    port = free_port()
    env = {**os.environ, "ALLSCENE_DATA": str(root)}
    server = subprocess.Popen([sys.executable, "-m", "allscene.cli", "serve", "--port",
                               str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        bodies = [b"\n".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]

        def post(body: bytes) -> int:
            with httpx.Client(timeout=120) as c:
                r = c.post(url + "/v1/events", content=body,
                           headers={"content-type": "application/x-ndjson"})
                r.raise_for_status()
                return r.json()["accepted"]

        t = time.perf_counter()
        with cf.ThreadPoolExecutor(clients) as pool:
            n = sum(pool.map(post, bodies))
        return n, time.perf_counter() - t
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=5_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--events", type=Path, help="a directory of event Parquet files to use")
    ap.add_argument("--http-events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5_000, help="events per HTTP request")
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.events:
            events_dir = args.events
        else:
            from allscene.world import generate

            with console.status(f"generating a world of {args.people:,} people x "
                                f"{args.days} days"):
                generate(tmp_path / "world", people=args.people, days=args.days, seed=1)
            events_dir = tmp_path / "world" / "events"
        files = sorted(str(p) for p in events_dir.glob("*.parquet"))
        with console.status("DuckDB baseline"):
            nb, tb = baseline(files)
        with console.status("file import"):
            nf, tf = file_import(files, tmp_path / "log-file")
        with console.status("the same import again (recovery after a crash)"):
            nr, tr = file_import(files, tmp_path / "log-file", "duplicates")
        with console.status("preparing JSON lines"):
            lines = to_json_lines(files, args.http_events)
        with console.status(f"HTTP ingest of {len(lines):,} events"):
            nh, th = http_ingest(lines, tmp_path / "http", args.batch, args.clients)

    base_rate = nb / tb
    t = Table(title=f"ingest throughput ({len(files)} files, {nb:,} events)")
    for col in ("what", "events", "seconds", "events/s", "vs DuckDB read", "goal"):
        t.add_column(col, justify="right" if col != "what" else "left")
    t.add_row("DuckDB reads the Parquet (baseline)", f"{nb:,}", f"{tb:.2f}",
              f"{base_rate:,.0f}", "1.00", "")
    t.add_row("allscene events import", f"{nf:,}", f"{tf:.2f}", f"{nf / tf:,.0f}",
              f"{nf / tf / base_rate:.2f}", ">= 0.30")
    t.add_row("the same import again (all duplicates)", f"{nr:,}", f"{tr:.2f}",
              f"{nr / tr:,.0f}", f"{nr / tr / base_rate:.2f}", "")
    t.add_row(f"POST /v1/events ({args.batch:,}/request, {args.clients} clients)", f"{nh:,}",
              f"{th:.2f}", f"{nh / th:,.0f}", f"{nh / th / base_rate:.3f}", ">= 20,000/s")
    console.print(t)


if __name__ == "__main__":
    main()
