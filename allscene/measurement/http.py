"""``GET /v1/reports/{campaign}``: an advertiser's campaign figures over the API.

The Bearer key names the advertiser; another advertiser's campaign answers 404 as if it did
not exist. ``by`` (repeatable) asks for breakdowns (``by=day&by=placement,creative``),
``start`` and ``end`` bound the window (ISO; a date is local midnight), ``format=csv`` returns
the first breakdown (or the totals) as CSV. Bad input is a 422 naming what is wrong.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from allscene.delivery.advertiser_http import Advertiser
from allscene.measurement.metrics import MeasureError, check_dimensions, parse_when

router = APIRouter(tags=["reports"])


@router.get("/v1/reports/{campaign_id}", summary="A campaign's counted figures")
def get_report(request: Request, campaign_id: str, adv: Advertiser,
               by: Annotated[list[str] | None, Query()] = None,
               start: str | None = None, end: str | None = None,
               format: Literal["json", "csv"] = "json") -> Response:  # noqa: A002
    from allscene.measurement.report import campaign_metrics

    settings = request.app.state.settings
    try:
        breakdowns = [check_dimensions(x.strip() for x in b.split(",") if x.strip())
                      for b in by or []]
        m = campaign_metrics(settings, campaign_id, advertiser=adv, by=breakdowns,
                             start=parse_when(start, "start"),
                             end=parse_when(end, "end"))
    except MeasureError as exc:
        if str(exc).startswith("unknown campaign"):
            raise HTTPException(404, f"no campaign {campaign_id!r}") from None
        raise HTTPException(422, str(exc)) from None
    if format == "csv":
        rows = next(iter(m.breakdowns.values())).to_pylist() if m.breakdowns else [m.totals]
        buf = io.StringIO()
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return Response(buf.getvalue(), media_type="text/csv")
    doc = {"advertiser": m.advertiser, "campaign": campaign_id,
           "start": m.start, "end": m.end, "totals": m.totals, "invalid": m.invalid,
           "frequency": m.frequency, "reach": m.reach_curve, "min_cell": m.min_cell,
           "suppressed_cells": m.suppressed,
           "breakdowns": {k: t.to_pylist() for k, t in m.breakdowns.items()}}
    return Response(orjson.dumps(doc, default=str), media_type="application/json")
