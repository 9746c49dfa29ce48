"""Ingest: validate incoming events, append the good ones, dead-letter the rest.

Three ways in, one outcome: JSON Lines or JSON array files (``.jsonl``, ``.json``, gzip
allowed), Parquet files, and HTTP request bodies. Each batch is validated, its good events
appended to the log (idempotent by ``event_id``), and each rejected record kept in the
dead-letter log with its reasons. Good events in a batch never wait on bad ones.

Importing the same file twice, or again after the importing process was killed, leaves each
event stored exactly once.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from allscene.events.columnar import check_arrow, compile_cast, fill_defaults
from allscene.events.schema import ARROW_SCHEMA
from allscene.events.validate import (
    MAX_EVENT_BYTES,
    MAX_FUTURE,
    Checked,
    JsonValidator,
    events_to_arrow,
)
from allscene.storage import DEADLETTER_SCHEMA, ParquetEventLog
from allscene.storage.duck import describe_parquet, parquet_rows, stream_parquet_sql

Progress = Callable[[int, int], None]
MAX_SAMPLES = 20


class BadInput(ValueError):
    """The input as a whole cannot be read (not a batch of events at all)."""


@dataclass
class IngestReport:
    """Counts of one ingest, the per-line outcome when asked for, and sample rejections."""

    source: str
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    seconds: float = 0.0
    results: list[dict[str, Any]] | None = None
    samples: list[str] = field(default_factory=list)

    def add(self, other: IngestReport) -> None:
        self.received += other.received
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        room = MAX_SAMPLES - len(self.samples)
        self.samples += other.samples[:max(room, 0)]
        if self.results is not None and other.results is not None:
            self.results += other.results

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source, "received": self.received, "accepted": self.accepted,
            "duplicates": self.duplicates, "rejected": self.rejected,
            "seconds": round(self.seconds, 3)}
        if self.results is not None:
            out["results"] = self.results
        return out


class Ingestor:
    """Validates and stores events into a :class:`ParquetEventLog`.

    Parameters
    ----------
    log
        Where accepted events and rejections go.
    now
        Fixed clock for the future-timestamp check (tests); ``None`` is the wall clock.
    batch_rows
        Records validated and committed together. A killed import loses at most the
        uncommitted batch, which importing again restores.
    """

    def __init__(self, log: ParquetEventLog, *, now: dt.datetime | None = None,
                 max_future: dt.timedelta = MAX_FUTURE, max_bytes: int = MAX_EVENT_BYTES,
                 batch_rows: int = 50_000,
                 on_stored: Callable[[list[dict[str, Any]]], object] | None = None):
        self.log = log
        self.on_stored = on_stored
        """Called with the events a JSON batch newly stored (not duplicates), as dicts: the
        live scene engine listens here."""
        self.now = now
        self.max_future = max_future
        self.max_bytes = max_bytes
        self.batch_rows = batch_rows
        self.validator = JsonValidator(now=now, max_future=max_future, max_bytes=max_bytes)

    # --- JSON ---------------------------------------------------------------------------------

    def ingest_checked(self, checked: list[tuple[int, Checked]], source: str, *,
                       keep_results: bool = False) -> IngestReport:
        """Store one validated batch: ``(line number, outcome)`` pairs."""
        report = IngestReport(source, received=len(checked),
                              results=[] if keep_results else None)
        good = [(line, c) for line, c in checked if c.event is not None]
        bad = [(line, c) for line, c in checked if c.event is None]
        if bad:
            received_at = dt.datetime.now(dt.UTC)
            self.log.reject(pa.table({
                "received_at": [received_at] * len(bad),
                "source": [source] * len(bad),
                "line": [line for line, _ in bad],
                "event_id": [c.event_id for _, c in bad],
                "kind": [c.kind for _, c in bad],
                "errors": [orjson.dumps(c.errors).decode() for _, c in bad],
                "raw": [c.raw for _, c in bad],
            }, schema=DEADLETTER_SCHEMA))
            report.rejected = len(bad)
            report.samples = [c.describe(line) for line, c in bad[:MAX_SAMPLES]]
        inserted = None
        if good:
            result = self.log.append(events_to_arrow([c.event for _, c in good]))  # type: ignore[misc]
            inserted = result.inserted
            report.accepted, report.duplicates = result.accepted, result.duplicates
            if self.on_stored is not None and result.accepted:
                self.on_stored([c.event.model_dump() for (_, c), new  # type: ignore[union-attr]
                                in zip(good, inserted, strict=True) if new])
        if report.results is not None:
            status: dict[int, dict[str, Any]] = {}
            for i, (line, c) in enumerate(good):
                status[line] = {"line": line, "event_id": c.event_id,
                                "status": "accepted" if inserted[i] else "duplicate"}  # type: ignore[index]
            for line, c in bad:
                status[line] = {"line": line, "event_id": c.event_id, "status": "rejected",
                                "errors": c.errors}
            report.results = [status[line] for line, _ in checked]
        return report

    def ingest_body(self, body: bytes, source: str, *, keep_results: bool = True) -> IngestReport:
        """Ingest an HTTP request body: a JSON array of events, or JSON Lines.

        Raises :class:`BadInput` when the body is a JSON array that cannot be parsed (its
        items cannot be told apart); the body is dead-lettered first.
        """
        start = time.perf_counter()
        head = body.lstrip()[:1]
        if head == b"[":
            try:
                items = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                self.ingest_checked([(0, Checked(body, errors=[f"body: not valid JSON ({exc})"]))],
                                    source)
                raise BadInput(f"body: not valid JSON ({exc})") from exc
            checked = [(i + 1, self.validator.validate_obj(item)) for i, item in enumerate(items)]
        else:
            checked = [(i, self.validator.validate_line(raw)) for i, raw in _lines(body)]
        report = self.ingest_checked(checked, source, keep_results=keep_results)
        report.seconds = time.perf_counter() - start
        return report

    def import_json(self, path: Path, on_progress: Progress | None = None) -> IngestReport:
        """Import a JSON Lines file (or a JSON array file), gzip or not, in batches."""
        start = time.perf_counter()
        report = IngestReport(str(path))
        total = path.stat().st_size
        with open(path, "rb") as raw_fh:
            magic = raw_fh.read(2)
            raw_fh.seek(0)
            fh: io.BufferedIOBase = gzip.open(raw_fh) if magic == b"\x1f\x8b" else raw_fh  # type: ignore[assignment]
            first = fh.peek(64)[:64].lstrip() if hasattr(fh, "peek") else b""
            if first.startswith(b"["):
                report.add(self.ingest_body(fh.read(), str(path), keep_results=False))
            else:
                for batch in _batched(_file_lines(fh), self.batch_rows):
                    checked = [(line, self.validator.validate_line(raw)) for line, raw in batch]
                    report.add(self.ingest_checked(checked, str(path)))
                    if on_progress:
                        on_progress(raw_fh.tell(), total)
        if on_progress:
            on_progress(total, total)
        report.seconds = time.perf_counter() - start
        return report

    def import_own_jsonl(self, path: Path) -> IngestReport:
        """JSON Lines the platform wrote itself (the ad log's journal): read by Arrow's JSON
        reader and checked column-wise, several times faster than line by line; rows the
        columnar check flags still go through the models. A file Arrow cannot read as the
        event schema is imported line by line (:meth:`import_json`)."""
        from pyarrow import json as pj

        start = time.perf_counter()
        try:
            table = pj.read_json(path, parse_options=pj.ParseOptions(
                explicit_schema=ARROW_SCHEMA, unexpected_field_behavior="error"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return self.import_json(path)
        events = fill_defaults(table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA))
        now = self.now or dt.datetime.now(dt.timezone.utc)
        ok = check_arrow(events, now=now, max_future=self.max_future, max_bytes=self.max_bytes)
        n = events.num_rows
        report = self._store_columnar(
            events.append_column("_line", pa.array(np.arange(1, n + 1), pa.int64()))
            .append_column("_src", pa.nulls(n)), events, ok, str(path))
        report.seconds = time.perf_counter() - start
        return report

    # --- Parquet ------------------------------------------------------------------------------

    def import_parquet(self, path: Path, on_progress: Progress | None = None) -> IngestReport:
        """Import a Parquet file of events, validated column-wise (see :mod:`.columnar`).

        A file already in the log's schema is read as is; any other is cast by DuckDB first,
        values that do not cast making their rows invalid.
        """
        start = time.perf_counter()
        report = IngestReport(str(path))
        types = describe_parquet(path)
        if "file_row_number" in types:
            raise BadInput(f"{path}: column 'file_row_number' is reserved for line numbers; "
                           "rename or drop it")
        total = parquet_rows(path)
        now = self.now or dt.datetime.now(dt.timezone.utc)
        if _in_log_schema(path):
            batches = _plain_batches(path, self.batch_rows)
        else:
            batches = stream_parquet_sql(path, lambda src: compile_cast(types, src),
                                         self.batch_rows)
        def prepared() -> Iterator[tuple[pa.Table, pa.Table, np.ndarray]]:
            for batch in batches:
                table = pa.Table.from_batches([batch])
                events = fill_defaults(table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA))
                ok = table["_types_ok"].to_numpy(zero_copy_only=False) & check_arrow(
                    events, now=now, max_future=self.max_future, max_bytes=self.max_bytes)
                yield table, events, ok

        done = 0
        # Reading and checking the next batch overlaps with writing this one (both mostly
        # release the GIL), so the import uses both cores as DuckDB's own reads do.
        for table, events, ok in _in_background(prepared()):
            report.add(self._store_columnar(table, events, ok, str(path)))
            done += table.num_rows
            if on_progress:
                on_progress(done, total)
        report.seconds = time.perf_counter() - start
        return report

    def _store_columnar(self, table: pa.Table, events: pa.Table, ok, source: str) -> IngestReport:
        flagged = np.flatnonzero(~ok)
        checked = []
        if len(flagged):
            idx = pa.array(flagged)
            lines = table["_line"].take(idx).to_pylist()
            srcs = table["_src"].take(idx).to_pylist()
            rows = events.take(idx).to_pylist()
            for line, src, row in zip(lines, srcs, rows, strict=True):
                data = {k: v for k, v in (src or row).items() if v is not None}
                checked.append((line, self.validator.validate_obj(data, _dump(data))))
        # The models have the last word: a row flagged only for being near a limit is
        # accepted here; the others are explained and dead-lettered.
        report = self.ingest_checked(checked, source) if checked else IngestReport(source)
        good = events if not len(flagged) else events.filter(pa.array(ok))
        report.received += good.num_rows
        if good.num_rows:
            result = self.log.append(good)
            report.accepted += result.accepted
            report.duplicates += result.duplicates
        return report

    def import_file(self, path: str | Path, on_progress: Progress | None = None) -> IngestReport:
        """Import one file, choosing the reader by its name (``.parquet`` or JSON)."""
        path = Path(path)
        if not path.is_file():
            raise BadInput(f"{path}: no such file")
        if path.suffix == ".parquet":
            return self.import_parquet(path, on_progress)
        return self.import_json(path, on_progress)


def _in_background(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``items`` in a thread, ``depth`` ahead of the consumer; errors re-raised here."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 (handed to the consumer)
            q.put(("error", exc))

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while True:
            tag, value = q.get()
            if tag == "end":
                return
            if tag == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)


def _in_log_schema(path: Path) -> bool:
    return pq.read_schema(path).remove_metadata().equals(ARROW_SCHEMA)


def _plain_batches(path: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Batches of a file already in the log's schema, with the columns the cast step adds."""
    line = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        n = batch.num_rows
        yield batch.append_column("_line", pa.array(np.arange(line, line + n))).append_column(
            "_types_ok", pa.array(np.ones(n, dtype=bool))).append_column(
            "_src", pa.nulls(n, pa.struct([])))
        line += n


def _dump(data: dict[str, Any]) -> bytes:
    """The row as JSON, as it was read (dates as ISO 8601; bytes as text where they decode)."""
    return orjson.dumps(data, default=lambda v: v.decode("utf-8", "replace")
                        if isinstance(v, bytes) else str(v))


def _lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    for i, line in enumerate(body.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if line.strip():
            yield i, line


def _file_lines(fh: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    for i, line in enumerate(fh, start=1):
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield i, line


def _batched(it: Iterator[tuple[int, bytes]], n: int) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
    for item in it:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch
