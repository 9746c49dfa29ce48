"""The advertiser API for campaigns: ``/v1/campaigns``, authenticated by a Bearer API key.

A key names one advertiser, and every read and write is scoped to it: another advertiser's
campaign is answered exactly like one that does not exist (404), so its existence does not
leak. Updates carry the version read (``If-Match``) and fail with 409 if it changed since.
Keys are made with ``allscene advertiser add NAME``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import Response

from allscene.delivery.campaigns import Campaign, CampaignError
from allscene.delivery.decide import LOCAL
from allscene.delivery.http import ads_of as _ads
from allscene.delivery.server import AdServer
from allscene.storage.configdb import ConflictError

router = APIRouter(tags=["advertiser"])


def advertiser(request: Request, authorization: Annotated[str | None, Header()] = None
               ) -> str:
    """The advertiser whose API key is in ``Authorization: Bearer <key>``."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(401, "authorization: send 'Bearer <your API key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    who = _ads(request).campaigns.store.advertiser_for_key(key.strip())
    if who is None:
        raise HTTPException(401, "authorization: unknown API key",
                            headers={"WWW-Authenticate": "Bearer"})
    return who


Advertiser = Annotated[str, Depends(advertiser)]


def _out(ads: AdServer, adv: str, c: Campaign, version: int, status: int = 200) -> Response:
    key = f"{adv}/{c.id}"
    today = dt.datetime.now(LOCAL).date().isoformat()
    state = ads.decider.state
    body = {"campaign": c.model_dump(mode="json"), "version": version,
            "spend_cny": {"today": state.spend(key, today), "total": state.spend(key)}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"ETag": f'"{version}"'})


async def read_object(request: Request, what: str = "a campaign") -> dict[str, Any]:
    """The request's JSON object body: 400 when it is not JSON, 422 when not an object."""
    try:
        doc = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise HTTPException(422, f"body: {what} is a JSON object")
    return doc


def _not_found(cid: str) -> HTTPException:
    return HTTPException(404, f"campaign {cid!r} not found")


@router.get("/v1/campaigns", summary="Your campaigns")
def list_campaigns(request: Request, adv: Advertiser) -> Response:
    ads = _ads(request)
    return Response(orjson.dumps({"campaigns": [
        {"campaign": c.model_dump(mode="json"), "version": v}
        for c, v in ads.campaigns.list(adv)]}), media_type="application/json")


@router.post("/v1/campaigns", summary="Create a campaign", status_code=201)
async def create_campaign(request: Request, adv: Advertiser) -> Response:
    ads, doc = _ads(request), await read_object(request)
    try:
        c, version = ads.campaigns.create(adv, doc)
    except CampaignError as exc:
        raise HTTPException(422, str(exc)) from None
    except ConflictError:
        raise HTTPException(409, f"campaign {doc.get('id')!r} exists; update it with PUT "
                                 "and If-Match") from None
    ads.reload()
    return _out(ads, adv, c, version, 201)


@router.get("/v1/campaigns/{campaign_id}", summary="One campaign, its version and spend")
def get_campaign(request: Request, campaign_id: str, adv: Advertiser) -> Response:
    ads = _ads(request)
    got = ads.campaigns.get(adv, campaign_id)
    if got is None:
        raise _not_found(campaign_id)
    return _out(ads, adv, *got)


@router.put("/v1/campaigns/{campaign_id}", summary="Replace a campaign (If-Match: version)")
async def put_campaign(request: Request, campaign_id: str, adv: Advertiser,
                       if_match: Annotated[str | None, Header()] = None) -> Response:
    ads, doc = _ads(request), await read_object(request)
    if doc.get("id", campaign_id) != campaign_id:
        raise HTTPException(422, f"id: the body says {doc.get('id')!r}, the path "
                                 f"{campaign_id!r}")
    if ads.campaigns.get(adv, campaign_id) is None:
        raise _not_found(campaign_id)
    version = (if_match or "").strip().strip('"')
    if not version.isdigit():
        raise HTTPException(428, "if-match: send the version you read (the ETag of GET)")
    try:
        c, new = ads.campaigns.update(adv, {**doc, "id": campaign_id}, int(version))
    except CampaignError as exc:
        raise HTTPException(422, str(exc)) from None
    except ConflictError as exc:
        raise HTTPException(409, str(exc)) from None
    except KeyError:
        raise _not_found(campaign_id) from None
    ads.reload()
    return _out(ads, adv, c, new)


@router.delete("/v1/campaigns/{campaign_id}", summary="Delete a campaign", status_code=204)
def delete_campaign(request: Request, campaign_id: str, adv: Advertiser) -> Response:
    ads = _ads(request)
    if not ads.campaigns.delete(adv, campaign_id):
        raise _not_found(campaign_id)
    ads.reload()
    return Response(status_code=204)
