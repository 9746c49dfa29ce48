"""The HTTP app: assembles the domain routers; logic lives in the domain packages."""

from __future__ import annotations

from fastapi import FastAPI

from allscene import __version__
from allscene.config import Settings
from allscene.events import http as events_http
from allscene.events.ingest import Ingestor
from allscene.moments import http as scenes_http
from allscene.moments.live import LiveScenes
from allscene.storage import ParquetEventLog


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app for ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    app = FastAPI(title="allscene", version=__version__,
                  description="All-scene intelligent marketing platform")
    app.state.settings = settings
    app.state.log = ParquetEventLog(settings.log_dir)
    app.state.scenes = None
    try:
        app.state.scenes = LiveScenes.from_data(settings.data_dir,
                                                settings.world_dir / "reference", app.state.log)
    except FileNotFoundError as exc:
        app.state.scenes_error = str(exc)
    app.state.ingestor = Ingestor(app.state.log, on_stored=(
        app.state.scenes.feed_many if app.state.scenes else None))
    app.include_router(events_http.router)
    app.include_router(scenes_http.router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "events": app.state.log.count()}

    return app
