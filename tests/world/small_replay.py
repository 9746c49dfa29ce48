"""A small world replayed end to end through the platform's own steps, for case tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from typer.testing import CliRunner

from allscene.cli import app
from allscene.config import Settings
from allscene.events.ingest import Ingestor
from allscene.storage import ParquetEventLog
from allscene.world import generate


def replay_small_world(data: Path, cases: list[Path], *, people: int, seed: int) -> Settings:
    """``people`` from 8 October for 11 days, ingested, identity and tags built, then the
    ``cases`` replayed (``allscene cases replay``)."""
    settings = Settings(data_dir=data)
    generate(settings.world_dir, people=people, days=11, seed=seed, start=dt.date(2026, 10, 8),
             batch_people=people // 2, workers=2)
    ing = Ingestor(ParquetEventLog(settings.log_dir))
    for f in sorted((settings.world_dir / "events").glob("*.parquet")):
        ing.import_file(f)
    run = CliRunner()
    for args in (["identity", "build"], ["tags", "build"],
                 ["cases", "replay", *map(str, cases)]):
        r = run.invoke(app, ["--data", str(data), *args])
        assert r.exit_code == 0, r.output
    return settings


def log_source(settings: Settings) -> str:
    """The event log's files as one DuckDB relation."""
    return f"read_parquet('{settings.log_dir}/events/**/*.parquet', union_by_name=true)"
