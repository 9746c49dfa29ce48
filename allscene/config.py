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
    config_url: str | None = Field(default_factory=lambda: os.environ.get("ALLSCENE_CONFIG_URL"))
    """Advertisers and campaigns: a SQLAlchemy URL (``postgresql://...``); default SQLite
    in the data directory."""
    redis_url: str | None = Field(default_factory=lambda: os.environ.get("ALLSCENE_REDIS_URL"))
    """Online state shared by server processes (``redis://127.0.0.1:6379/0``); default
    in-process."""
    redis_prefix: str = Field(default_factory=lambda: os.environ.get("ALLSCENE_REDIS_PREFIX",
                                                                     "allscene:"))
    pctr_online: bool = Field(default_factory=lambda: os.environ.get(
        "ALLSCENE_PCTR_ONLINE", "1") not in ("0", "false", "no"))
    """Ad servers keep learning the click model from their own impressions and clicks
    (``ALLSCENE_PCTR_ONLINE=0``: rank with the trained model file, or the prior, unchanged)."""
    public_url: str = Field(default_factory=lambda: os.environ.get(
        "ALLSCENE_PUBLIC_URL", "http://127.0.0.1:8000"))
    """Where devices reach the tracking endpoints (the base of the signed links)."""

    fx_to_cny: dict[str, float] = {"CNY": 1.0, "USD": 7.1, "EUR": 7.7, "GBP": 9.0,
                                   "HKD": 0.91, "JPY": 0.047}
    """CNY per unit of the currencies OpenRTB floors and bids may use (bids are priced in
    CNY and converted; set current rates in a deployment)."""

    @property
    def config_db(self) -> str:
        return self.config_url or f"sqlite:///{self.data_dir / 'config.sqlite'}"

    def tracking_secret(self) -> bytes:
        """``ALLSCENE_TRACKING_SECRET``, else a random secret kept in the data directory
        (created once, readable by its owner only), so every server process on this data
        and every restart signs alike."""
        if os.environ.get("ALLSCENE_TRACKING_SECRET"):
            return os.environ["ALLSCENE_TRACKING_SECRET"].encode()
        path = self.data_dir / "tracking.secret"
        if not path.exists():
            import secrets

            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)  # the first process to get here wins; others read its
            except FileExistsError:
                pass
            os.unlink(tmp)
        return path.read_text().strip().encode()

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

