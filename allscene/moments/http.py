"""HTTP: ``GET /v1/scenes/{person_id}``: the scenes a person is in now (or at ``at``), from
the live engine that ingest feeds."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request

router = APIRouter(tags=["scenes"])


@router.get("/v1/scenes/{person_id}", summary="The scenes a person is in now")
def get_scenes(request: Request, person_id: str, at: Annotated[
        dt.datetime | None, Query(description="An ISO time with a zone; default now.")] = None
               ) -> dict[str, object]:
    live = getattr(request.app.state, "scenes", None)
    if live is None:
        raise HTTPException(503, getattr(request.app.state, "scenes_error",
                                         "live scenes are not available"))
    if at is not None and at.tzinfo is None:
        raise HTTPException(422, "at: give a time zone, e.g. 2026-10-13T08:30:00+08:00")
    when = at or dt.datetime.now(dt.UTC)
    return {"person_id": person_id, "at": when.isoformat(),
            "scenes": live.scenes_of(person_id, when)}
