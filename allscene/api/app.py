"""The HTTP app: assembles the domain routers; logic lives in the domain packages."""

from __future__ import annotations

from fastapi import FastAPI

from allscene import __version__
from allscene.config import Settings
from allscene.events import http as events_http
from allscene.events.ingest import Ingestor
from allscene.storage import ParquetEventLog


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    app = FastAPI(title="allscene", version=__version__,
                  description="All-scene intelligent marketing platform")
    app.state.settings = settings
    app.state.log = ParquetEventLog(settings.log_dir)
    app.state.ingestor = Ingestor(app.state.log)
    app.include_router(events_http.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "events": app.state.log.count()}

    return app
