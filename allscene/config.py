"""Where allscene keeps its data and which backends it uses.

The data directory comes from ``--data``, else ``ALLSCENE_DATA``, else ``./allscene-data``.
The default configuration needs no server.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

DEFAULT_DATA = "allscene-data"


class Settings(BaseModel):
    """Runtime settings shared by the CLI and the HTTP app."""

    data_dir: Path = Field(default_factory=lambda: Path(os.environ.get("ALLSCENE_DATA",
                                                                       DEFAULT_DATA)))
    max_body_bytes: int = 256 * 1024 * 1024
    """Largest HTTP ingest body accepted, after gzip decompression."""

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def world_dir(self) -> Path:
        return self.data_dir / "world"


def shared_data(name: str, env: str) -> Path:
    """A third-party sample, read where it is kept (never copied in): ``$env`` when set,
    else ``shared/data/<name>`` in a folder above the package (the checkout's neighbour);
    ``Path()`` when neither exists, for the caller to explain."""
    if os.environ.get(env):
        return Path(os.environ[env])
    here = Path(__file__).resolve()
    return next((p / "shared" / "data" / name for p in here.parents
                 if (p / "shared" / "data" / name).is_dir()), Path())

