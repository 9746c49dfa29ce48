"""HTTP for serving ads: ``POST /v1/decide``, ``POST /openrtb/2.6/bid``,
``GET /vast/4/{placement}`` and the signed tracking links ``GET /t/imp``, ``GET /t/click``,
``POST /t/conv``.

Every request that cannot be served gets a 4xx naming what is wrong (bad JSON, an unknown
placement, a missing device, a forged or reused link); the logic lives in
:class:`~allscene.delivery.server.AdServer`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from allscene.delivery import rtb
from allscene.delivery.decide import Decision
from allscene.delivery.server import AdServer
from allscene.delivery.tracking import TrackingError
from allscene.media.vast import no_ad, vast_for

router = APIRouter(tags=["ads"])
PIXEL = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00"
         b"\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
DeviceId = Annotated[str, Field(min_length=1, max_length=128)]


def ads_of(request: Request) -> AdServer:
    """The app's ad server, or 503 when it could not be built."""
    ads = getattr(request.app.state, "ads", None)
    if ads is None:
        raise HTTPException(503, getattr(request.app.state, "ads_error",
                                         "the ad server is not available"))
    return ads


def _json(obj: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(obj), status_code=status, media_type="application/json")


class Weather(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temp_c: float | None = None
    condition: str | None = None
    aqi: float | None = None
    humidity: float | None = None


class DecideIn(BaseModel):
    """A native ad request from one of the ecosystem's own surfaces."""

    model_config = ConfigDict(extra="forbid")
    placement: Annotated[str, Field(min_length=1, max_length=64)]
    device_id: DeviceId
    ts: AwareDatetime | None = None
    """When the ad would show (replays); default now."""
    weather: Weather = Weather()
    request_id: Annotated[str, Field(min_length=1, max_length=100,
                                     pattern=r"^[A-Za-z0-9_.:\-]+$")] | None = None


def decision_json(d: Decision) -> dict[str, Any]:
    ad = None if d.outcome != "ad" else {
        "advertiser": d.advertiser, "campaign": d.campaign, "creative": d.creative,
        "price_cny": d.price_cny, "imp_url": d.imp_url, "click_url": d.click_url}
    return {"request_id": d.request_id, "placement": d.placement, "outcome": d.outcome,
            "ad": ad, "reasons": d.reasons}


def _decide(ads: AdServer, placement: str, device_id: str, **kw: Any) -> Decision:
    try:
        return ads.decide(placement, device_id, **kw)
    except KeyError:
        known = ", ".join(p.id for p in ads.decider.placements)
        raise HTTPException(422, f"placement: unknown placement {placement!r} (known: "
                                 f"{known})") from None


@router.post("/v1/decide", summary="Decide an ad for a placement and device")
async def post_decide(request: Request, body: DecideIn) -> Response:
    ads = ads_of(request)
    d = _decide(ads, body.placement, body.device_id, ts=body.ts,
                weather=body.weather.model_dump(exclude_none=True)
                if body.weather.model_fields_set else None,
                request_id=body.request_id)
    return _json(decision_json(d))


@router.post("/openrtb/2.6/bid", summary="OpenRTB 2.6 bid request: a bid response or 204")
async def post_bid(request: Request) -> Response:
    ads = ads_of(request)
    try:
        req = rtb.read_bid_request(await request.body(), ads.decider.placements,
                                   rates=request.app.state.settings.fx_to_cny)
    except rtb.RtbError as exc:
        raise HTTPException(400, str(exc)) from None
    now = dt.datetime.now(dt.UTC)
    device = req.device_id or f"anon:{req.id}"[:128]  # no id: no cap or person to share
    decided = [(ask, ads.decide(ask.placement.id, device, ts=now,
                                request_id=f"{req.id}:{ask.imp_id}"[:100],
                                floor_cny=ask.floor_cny, accepts=rtb.accepts(req, ask),
                                limit_tracking=req.limit_tracking or not req.device_id))
               for ask in req.asks if ask.placement is not None and req.currency]
    resp, reasons = rtb.bid_response(req, decided, seat="allscene")
    headers = {"x-openrtb-version": "2.6"}
    if resp is None:
        why = "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())) or "no ad"
        headers["x-allscene-no-bid"] = why.encode("ascii", "replace").decode()[:1000]
        return Response(status_code=204, headers=headers)
    return Response(orjson.dumps(resp), media_type="application/json", headers=headers)


@router.get("/vast/4/{placement}", summary="A VAST 4.2 document for a video placement")
async def get_vast(request: Request, placement: str, device_id: Annotated[str, Query(
        min_length=1, max_length=128)], ts: AwareDatetime | None = None) -> Response:
    ads = ads_of(request)
    p = ads.decider.placements.get(placement)
    if p is not None and not p.vast:
        raise HTTPException(422, f"placement: {placement!r} is not a video placement (VAST "
                                 "serves: " + ", ".join(x.id for x in ads.decider.placements
                                                        if x.vast) + ")")
    d = _decide(ads, placement, device_id, ts=ts)
    if d.outcome != "ad" or (d.creative or {}).get("format") != "video":
        xml = no_ad()
    else:
        xml = vast_for(d.request_id, d.creative, advertiser=d.advertiser or "",
                       title=d.campaign or "", impression_url=d.imp_url or "",
                       click_url=d.click_url or "", landing=d.creative.get("landing"))
    return Response(xml, media_type="application/xml")


def _refused(exc: TrackingError) -> HTTPException:
    return HTTPException(409 if str(exc).startswith("already counted") else 403, str(exc))


@router.get("/t/imp", summary="Count an impression (signed link)")
async def get_imp(request: Request) -> Response:
    ads = ads_of(request)
    try:
        ads.track("imp", dict(request.query_params))
    except TrackingError as exc:
        raise _refused(exc) from None
    return Response(PIXEL, media_type="image/gif", headers={"cache-control": "no-store"})


@router.get("/t/click", summary="Count a click (signed link) and go to the landing page")
async def get_click(request: Request) -> Response:
    ads = ads_of(request)
    now = dt.datetime.now(dt.UTC)
    try:
        f = ads.track("click", dict(request.query_params), now=now)
    except TrackingError as exc:
        raise _refused(exc) from None
    if f.get("to"):
        return RedirectResponse(ads.landing_with_token(f["to"], f, now=now), status_code=302)
    return Response(status_code=204)


class ConversionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, Field(min_length=1, max_length=4000)]
    """The ``allscene_conv`` value the landing page received."""
    type: Literal["lead", "activation", "purchase", "retention"]
    value: Annotated[float, Field(ge=0, le=1e9)] | None = None
    """What the conversion is worth (CNY), if anything."""


@router.post("/t/conv", summary="Count a conversion posted back with its token")
async def post_conv(request: Request, body: ConversionIn) -> Response:
    ads = ads_of(request)
    try:
        f = ads.convert(body.token, body.type, value=body.value)
    except TrackingError as exc:
        raise _refused(exc) from None
    return _json({"counted": True, "request_id": f["d"], "campaign": f.get("c")})
