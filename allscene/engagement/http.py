"""HTTP for activities.

Participants (a device; the identity graph names the person, as for ads):
``GET /v1/engage?placement=&device_id=`` (what shows at an entry point),
``POST /v1/engage/{activity}/{play|draw|envelope|coupon|code|answer|workouts}``,
``GET /v1/wallet?device_id=`` and ``POST /v1/wallet/redeem``. Every claim carries a
``request_id``: sending it again returns the same result and changes nothing.

Advertisers (``Authorization: Bearer <key>``; another advertiser's activity is a 404):
``POST /v1/activities``, ``GET /v1/activities/{id}`` (live figures),
``POST /v1/activities/{id}/codes``, ``POST /v1/activities/{id}/close`` (a contest),
``GET /v1/activities/{id}/draws`` and ``GET /v1/activities/{id}/reveal`` (after the end).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from allscene.delivery.advertiser_http import Advertiser, read_object
from allscene.engagement.badges import Workout
from allscene.engagement.service import Engagement, EngagementError, Who

router = APIRouter(tags=["engagement"])
RequestId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")]
DeviceId = Annotated[str, Field(min_length=1, max_length=128)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: DeviceId
    request_id: RequestId


class PlayIn(_In):
    action: Annotated[str, Field(min_length=1, max_length=64)]


class CouponIn(_In):
    prize: Annotated[str, Field(min_length=1, max_length=64)]


class CodeIn(_In):
    code: Annotated[str, Field(min_length=1, max_length=64)]


class AnswerIn(_In):
    answer: Annotated[str, Field(min_length=1, max_length=200)]


class WorkoutIn(BaseModel):
    distance_m: float
    duration_s: float
    ts: AwareDatetime


class WorkoutsIn(_In):
    workouts: list[WorkoutIn] = Field(min_length=1, max_length=1000)


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: DeviceId
    card: Annotated[str, Field(min_length=1, max_length=40)]


def engagement_of(request: Request) -> Engagement:
    return request.app.state.engagement


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _who(request: Request, device_id: str, now: dt.datetime) -> Who:
    v = request.app.state.ads.directory.viewer(device_id, now)
    host = request.client.host if request.client else None
    return Who(v.person_id or f"device-{device_id}", device_id, ip=host,
               known=v.person_id is not None, opted_out=v.opted_out, audiences=v.audiences,
               scenes=v.scenes)


def _run(fn, *args: Any) -> Response:
    try:
        return _json(fn(*args))
    except EngagementError as exc:
        raise HTTPException(exc.status, exc.reason) from None


# --- participants ----------------------------------------------------------------------------

@router.get("/v1/engage", summary="The activities shown at an entry point to this device")
def get_show(request: Request, placement: str, device_id: str) -> Response:
    now = dt.datetime.now(dt.UTC)
    eng = engagement_of(request)
    return _json({"activities": eng.show(placement, _who(request, device_id, now), now)})


@router.post("/v1/engage/{activity}/play", summary="Points for a game or app action")
def post_play(request: Request, activity: str, body: PlayIn) -> Response:
    now = dt.datetime.now(dt.UTC)
    return _run(engagement_of(request).play, activity, _who(request, body.device_id, now),
                body.action, body.request_id, now)


@router.post("/v1/engage/{activity}/draw", summary="One lottery draw")
def post_draw(request: Request, activity: str, body: _In) -> Response:
    now = dt.datetime.now(dt.UTC)
    return _run(engagement_of(request).draw, activity, _who(request, body.device_id, now),
                body.request_id, now)


@router.post("/v1/engage/{activity}/envelope", summary="Open a red envelope")
def post_envelope(request: Request, activity: str, body: _In) -> Response:
    now = dt.datetime.now(dt.UTC)
    return _run(engagement_of(request).envelope, activity, _who(request, body.device_id, now),
                body.request_id, now)


@router.post("/v1/engage/{activity}/coupon", summary="Claim a coupon into the card pack")
def post_coupon(request: Request, activity: str, body: CouponIn) -> Response:
    now = dt.datetime.now(dt.UTC)
    return _run(engagement_of(request).coupon, activity, _who(request, body.device_id, now),
                body.prize, body.request_id, now)


@router.post("/v1/engage/{activity}/code", summary="Redeem a code from the packaging")
def post_code(request: Request, activity: str, body: CodeIn) -> Response:
    now = dt.datetime.now(dt.UTC)
    return _run(engagement_of(request).code, activity, _who(request, body.device_id, now),
                body.code, body.request_id, now)


@router.post("/v1/engage/{activity}/answer", summary="Answer a contest (server time counts)")
def post_answer(request: Request, activity: str, body: AnswerIn) -> Response:
    now = dt.datetime.now(dt.UTC)
    return _run(engagement_of(request).answer, activity, _who(request, body.device_id, now),
                body.answer, body.request_id, now)


@router.post("/v1/engage/{activity}/workouts", summary="Workouts for a badge challenge")
def post_workouts(request: Request, activity: str, body: WorkoutsIn) -> Response:
    now = dt.datetime.now(dt.UTC)
    who = _who(request, body.device_id, now)
    runs = [Workout(who.person, w.distance_m, w.duration_s, w.ts) for w in body.workouts]
    return _run(engagement_of(request).workouts, activity, who, runs, now)


@router.get("/v1/wallet", summary="One's cash, points and card pack")
def get_wallet(request: Request, device_id: str) -> Response:
    now = dt.datetime.now(dt.UTC)
    return _json(engagement_of(request).wallet(_who(request, device_id, now)))


@router.post("/v1/wallet/redeem", summary="Use a coupon of the card pack, once")
def post_redeem(request: Request, body: RedeemIn) -> Response:
    now = dt.datetime.now(dt.UTC)
    return _run(engagement_of(request).redeem_card, _who(request, body.device_id, now),
                body.card, now)


# --- advertisers -----------------------------------------------------------------------------

@router.post("/v1/activities", summary="Create an activity (returns its draw commitment)")
async def create_activity(request: Request, adv: Advertiser) -> Response:
    doc = await read_object(request, "an activity")
    try:
        return _json(engagement_of(request).create(adv, doc), 201)
    except EngagementError as exc:
        raise HTTPException(exc.status, exc.reason) from None


@router.get("/v1/activities/{activity}", summary="An activity's live figures")
def get_activity(request: Request, activity: str, adv: Advertiser) -> Response:
    return _run(engagement_of(request).figures, adv, activity)


@router.post("/v1/activities/{activity}/codes", summary="Make the packaging codes")
def post_codes(request: Request, activity: str, adv: Advertiser) -> Response:
    try:
        made = engagement_of(request).generate_codes(adv, activity)
    except EngagementError as exc:
        raise HTTPException(exc.status, exc.reason) from None
    return Response("\n".join(made) + "\n", media_type="text/plain")


@router.post("/v1/activities/{activity}/close", summary="Close a contest: its winners")
def post_close(request: Request, activity: str, adv: Advertiser) -> Response:
    return _run(lambda: {"winners": engagement_of(request).close_contest(
        activity, dt.datetime.now(dt.UTC), advertiser=adv)})


@router.get("/v1/activities/{activity}/draws", summary="The draw log, in draw order")
def get_draws(request: Request, activity: str, adv: Advertiser) -> Response:
    return _run(lambda: {"draws": engagement_of(request).draw_log(adv, activity)})


@router.get("/v1/activities/{activity}/reveal", summary="The draw seed, after the end")
def get_reveal(request: Request, activity: str, adv: Advertiser) -> Response:
    return _run(engagement_of(request).reveal, adv, activity, dt.datetime.now(dt.UTC))
