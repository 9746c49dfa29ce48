"""Event schemas: one pydantic model per event kind.

Every event has the common fields of :class:`EventBase` and the fields of its kind. The models
are the one definition of an event: the JSON validator uses them directly, the columnar (Parquet)
validator is compiled from them (:mod:`allscene.events.columnar`), and the event log's Arrow
schema is derived from them (:func:`arrow_schema`).

Examples
--------
>>> e = parse_event({"event_id": "e1", "ts": "2026-10-05T08:00:00Z", "kind": "search",
...                  "device_id": "d1", "device_type": "phone", "query": "compact car", "app": "browser"})
>>> e.kind, e.category, e.ts.isoformat()
('search', 'active', '2026-10-05T08:00:00+00:00')
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import pyarrow as pa
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = 1
"""Version of the event contract. Events may carry ``schema_version``; newer ones are refused."""

DeviceType = Literal[
    "phone", "tv", "speaker", "band", "router", "car",
    "air_purifier", "robot_vacuum", "smart_light", "air_conditioner",
]
DEVICE_TYPES: tuple[str, ...] = get_args(DeviceType)

# Short names for the constrained types used below; each constraint is also compiled to SQL.
Id = Annotated[str, Field(min_length=1, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Text = Annotated[str, Field(max_length=512)]
LongText = Annotated[str, Field(max_length=4000)]
Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Money = Annotated[float, Field(ge=0, le=1e9)]
Seconds = Annotated[float, Field(ge=0, le=86_400)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class EventBase(BaseModel):
    """Fields every event has.

    ``ts`` must carry a time zone and is stored in UTC. ``device_id`` is the platform's hashed
    device id, never a raw IMEI or OAID.
    """

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    category: ClassVar[str] = ""
    # Groups of fields of which at least one must be present, and fields that come in pairs.
    require_one_of: ClassVar[tuple[tuple[str, ...], ...]] = ()
    together: ClassVar[tuple[tuple[str, ...], ...]] = ()

    event_id: Id
    ts: AwareDatetime
    device_id: Id
    device_type: DeviceType
    schema_version: Annotated[int, Field(ge=1, le=SCHEMA_VERSION)] = SCHEMA_VERSION

    @field_validator("ts")
    @classmethod
    def _to_utc(cls, v: dt.datetime) -> dt.datetime:
        return v.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _groups(self) -> EventBase:
        for group in self.require_one_of:
            if all(getattr(self, f) is None for f in group):
                raise PydanticCustomError("one_of", f"{', '.join(group)}: at least one is required")
        for group in self.together:
            given = [getattr(self, f) is not None for f in group]
            if any(given) and not all(given):
                raise PydanticCustomError("together", f"{', '.join(group)}: must be given together")
        return self


# --- active: what a person does -------------------------------------------------------------

class Search(EventBase):
    category: ClassVar[str] = "active"
    kind: Literal["search"]
    query: Annotated[str, Field(min_length=1, max_length=512)]
    app: Name


class ContentView(EventBase):
    category: ClassVar[str] = "active"
    kind: Literal["content_view"]
    app: Name
    content_id: Id
    iab_category: Annotated[str, Field(max_length=16)] | None = None
    """IAB Content Taxonomy 3.1 unique id of the content, when the app knows it."""
    title: Text | None = None
    duration_s: Seconds | None = None


class AppOpen(EventBase):
    category: ClassVar[str] = "active"
    kind: Literal["app_open"]
    app: Name
    duration_s: Seconds | None = None


class Purchase(EventBase):
    category: ClassVar[str] = "active"
    kind: Literal["purchase"]
    order_id: Id
    item: Text
    item_category: Name | None = None
    amount: Money
    currency: Currency = "CNY"
    channel: Literal["online", "retail_store"]


class FinanceActivity(EventBase):
    category: ClassVar[str] = "active"
    kind: Literal["finance_activity"]
    app: Name
    action: Name
    amount: Money | None = None
    currency: Currency = "CNY"


class SocialPost(EventBase):
    category: ClassVar[str] = "active"
    kind: Literal["social_post"]
    app: Name
    post_id: Id
    topic: Text | None = None
    text: LongText | None = None


class VoiceCommand(EventBase):
    category: ClassVar[str] = "active"
    kind: Literal["voice_command"]
    utterance: Annotated[str, Field(min_length=1, max_length=512)]
    intent: Name | None = None


class Login(EventBase):
    """A device signs in to an account. Carries the device's hardware ids, hashed, so that
    uploaded audience packages (MD5 / SHA-256 of IMEI or OAID) can be matched."""

    category: ClassVar[str] = "active"
    kind: Literal["login"]
    account_id: Id
    imei_md5: Hex32 | None = None
    imei_sha256: Hex64 | None = None
    oaid_md5: Hex32 | None = None
    oaid_sha256: Hex64 | None = None


class Pairing(EventBase):
    """A device is paired with another (a band, speaker or TV set up from a phone)."""

    category: ClassVar[str] = "active"
    kind: Literal["pairing"]
    peer_device_id: Id
    peer_device_type: DeviceType
    account_id: Id | None = None



class Profile(EventBase):
    """A person states facts about themselves: filling in the account profile, passing a
    real-name check (gender and birth year come from the ID card), or answering a member
    survey. Declared data: the platform prefers it to inference, but people may leave fields
    out or, now and then, state something false."""

    category: ClassVar[str] = "active"
    require_one_of: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("gender", "birth_year", "education", "income_monthly"),)
    kind: Literal["profile"]
    account_id: Id
    source: Literal["account", "real_name", "survey"]
    gender: Literal["male", "female"] | None = None
    birth_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    education: Literal["junior_high_or_below", "high_school", "associate", "bachelor",
                       "master_plus"] | None = None
    income_monthly: Annotated[float, Field(ge=0, le=10_000_000)] | None = None
    """Monthly income in CNY, as stated."""

# --- passive: what devices sense -----------------------------------------------------------

class Location(EventBase):
    """A location ping. ``ip`` is the public address seen; ``cell_id`` the serving tower;
    ``lat``/``lon`` only when a GPS fix was available."""

    category: ClassVar[str] = "passive"
    require_one_of: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("ip", "cell_id", "lat", "speed_mps"),)
    together: ClassVar[tuple[tuple[str, ...], ...]] = (("lat", "lon"),)
    kind: Literal["location"]
    ip: Annotated[str, Field(min_length=2, max_length=45)] | None = None
    network: Literal["wifi", "cellular", "ethernet"] | None = None
    cell_id: Name | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    accuracy_m: Annotated[float, Field(ge=0, le=100_000)] | None = None
    speed_mps: Annotated[float, Field(ge=0, le=350)] | None = None
    """Ground speed of the fix in metres per second, when the device reports one."""


class WifiConnect(EventBase):
    category: ClassVar[str] = "passive"
    kind: Literal["wifi_connect"]
    bssid: Name
    """Hashed BSSID of the access point."""
    ssid_hash: Name | None = None


class BluetoothConnect(EventBase):
    category: ClassVar[str] = "passive"
    kind: Literal["bluetooth_connect"]
    peer_id: Id
    peer_type: Literal["car", "headset", "speaker", "band", "other"]
    make: Name | None = None
    model: Name | None = None
    year: Annotated[int, Field(ge=1950, le=2100)] | None = None


class Steps(EventBase):
    category: ClassVar[str] = "passive"
    kind: Literal["steps"]
    steps: Annotated[int, Field(ge=0, le=100_000)]
    interval_s: Annotated[int, Field(ge=1, le=86_400)]
    calories: Annotated[float, Field(ge=0, le=20_000)] | None = None
    """Active kilocalories the device estimates for the interval."""


class Workout(EventBase):
    """A run, walk or ride a band or phone recorded: its distance and how long it took."""

    category: ClassVar[str] = "passive"
    kind: Literal["workout"]
    sport: Literal["run", "walk", "ride", "swim"]
    distance_m: Annotated[float, Field(gt=0, le=500_000)]
    duration_s: Seconds


class HeartRate(EventBase):
    category: ClassVar[str] = "passive"
    kind: Literal["heart_rate"]
    bpm: Annotated[int, Field(ge=20, le=250)]


class TvWatch(EventBase):
    category: ClassVar[str] = "passive"
    kind: Literal["tv_watch"]
    genre: Name
    duration_s: Seconds
    channel: Name | None = None
    iab_category: Annotated[str, Field(max_length=16)] | None = None


class DeviceState(EventBase):
    """A state change or reading of a device: a robot vacuum starts, a purifier reads PM2.5,
    a phone's battery runs low."""

    category: ClassVar[str] = "passive"
    kind: Literal["device_state"]
    state: Name
    metric: Name | None = None
    value: Annotated[float, Field(ge=-1e6, le=1e6)] | None = None


# --- context: the world around the person ---------------------------------------------------

class Weather(EventBase):
    """Hourly weather of a city. Not sent by a device: ``device_id`` and ``device_type`` are
    empty."""

    category: ClassVar[str] = "context"
    kind: Literal["weather"]
    device_id: None = None  # type: ignore[assignment]
    device_type: None = None  # type: ignore[assignment]
    city_code: Annotated[str, Field(min_length=1, max_length=16)]
    temp_c: Annotated[float, Field(ge=-80, le=70)]
    condition: Literal["sunny", "cloudy", "overcast", "rain", "snow", "fog", "haze"]
    aqi: Annotated[int, Field(ge=0, le=1000)] | None = None
    humidity: Annotated[float, Field(ge=0, le=100)] | None = None


# --- ad: what the platform served and what came of it ---------------------------------------

class AdDecision(EventBase):
    category: ClassVar[str] = "ad"
    kind: Literal["ad_decision"]
    request_id: Id
    placement_id: Name
    outcome: Literal["ad", "no_ad", "holdout"]
    campaign_id: Id | None = None
    creative_id: Id | None = None
    advertiser_id: Id | None = None
    reason: Text | None = None
    account_id: Id | None = None
    """The person the decision was for, when the identity graph knows the device."""
    cost: Money | None = None
    """What the impression was priced at (CNY), for an ad."""
    scene: Name | None = None
    """The targeted scene the person was in when the ad was chosen."""
    audience: Id | None = None
    """The targeted audience (of the advertiser) the person was in."""
    stage: Id | None = None
    """The campaign's optimization stage when the ad was chosen."""


class AdImpression(EventBase):
    category: ClassVar[str] = "ad"
    kind: Literal["ad_impression"]
    request_id: Id
    placement_id: Name
    campaign_id: Id
    creative_id: Id
    advertiser_id: Id
    cost: Money | None = None


class AdClick(EventBase):
    category: ClassVar[str] = "ad"
    kind: Literal["ad_click"]
    request_id: Id
    placement_id: Name
    campaign_id: Id
    creative_id: Id
    advertiser_id: Id
    cost: Money | None = None


class AdConversion(EventBase):
    category: ClassVar[str] = "ad"
    kind: Literal["ad_conversion"]
    advertiser_id: Id
    conversion_type: Literal["lead", "activation", "purchase", "retention"]
    campaign_id: Id | None = None
    request_id: Id | None = None
    value: Money | None = None


class Engagement(EventBase):
    """Someone took part in an interactive activity (:mod:`allscene.engagement`): it was
    shown, played, drawn, claimed, redeemed or answered; what it gave (a prize, cash, points)
    or why it was refused."""

    category: ClassVar[str] = "engagement"
    kind: Literal["engagement"]
    activity_id: Id
    advertiser_id: Id
    action: Literal["show", "play", "draw", "envelope", "coupon", "redeem", "code", "badge",
                    "answer", "win"]
    request_id: Id | None = None
    account_id: Id | None = None
    """The person, when the identity graph knows the device."""
    prize_id: Id | None = None
    amount: Money | None = None
    """Cash credited to the wallet (CNY)."""
    points: Annotated[int, Field(ge=-1_000_000_000, le=1_000_000_000)] | None = None
    """Points earned (positive) or spent (negative)."""
    reason: Text | None = None
    """Why it was refused (then nothing was given)."""


# --- moment: what the scene engine derived -------------------------------------------------

class _SceneEvent(EventBase):
    """Written by the scene engine, not sent by a device: ``device_id`` and ``device_type``
    are empty, ``account_id`` is the person (a person's id is their account id)."""

    category: ClassVar[str] = "moment"
    device_id: None = None  # type: ignore[assignment]
    device_type: None = None  # type: ignore[assignment]
    account_id: Id
    scene: Name
    trigger_event_id: Id | None = None


class SceneEnter(_SceneEvent):
    """A person entered a scene of the catalog; ``trigger_event_id`` is the event that was
    processed when it happened."""

    kind: Literal["scene_enter"]


class SceneExit(_SceneEvent):
    """A person left a scene: ``until`` held at ``trigger_event_id``, or, with no trigger,
    the scene's hold ran out at ``ts``."""

    kind: Literal["scene_exit"]


# --- consent ----------------------------------------------------------------------------------

class Consent(EventBase):
    """A person opts out of (``personalized_ads=false``) or back into personalized ads."""

    category: ClassVar[str] = "consent"
    kind: Literal["consent"]
    personalized_ads: bool


MODELS: tuple[type[EventBase], ...] = (
    Search, ContentView, AppOpen, Purchase, FinanceActivity, SocialPost, VoiceCommand, Login,
    Pairing, Profile, Location, WifiConnect, BluetoothConnect, Steps, Workout, HeartRate, TvWatch,
    DeviceState, Weather, AdDecision, AdImpression, AdClick, AdConversion, Engagement, SceneEnter,
    SceneExit, Consent,
)
BY_KIND: dict[str, type[EventBase]] = {
    get_args(m.model_fields["kind"].annotation)[0]: m for m in MODELS
}
KINDS: tuple[str, ...] = tuple(BY_KIND)
CATEGORIES: dict[str, str] = {k: m.category for k, m in BY_KIND.items()}

Event = Annotated[Union[tuple(MODELS)], Field(discriminator="kind")]  # type: ignore[valid-type]  # noqa: UP007
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)


def parse_event(data: dict[str, Any]) -> EventBase:
    """Validate one event given as a dict; raises :class:`pydantic.ValidationError`."""
    return EVENT_ADAPTER.validate_python(data)


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one event: a ``oneOf`` over kinds, keyed by ``kind``."""
    schema = EVENT_ADAPTER.json_schema()
    schema["$id"] = f"https://allscene.dev/schema/event/v{SCHEMA_VERSION}.json"
    schema["title"] = f"allscene event v{SCHEMA_VERSION}"
    return schema


# --- field metadata shared by the columnar validator and the Arrow schema -------------------

class FieldSpec(typing.NamedTuple):
    """What a field accepts, read off the pydantic model."""

    name: str
    type: str  # "str" | "int" | "float" | "bool" | "datetime" | "null"
    required: bool
    choices: tuple[Any, ...] | None
    ge: float | None
    le: float | None
    min_length: int | None
    max_length: int | None
    pattern: str | None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner annotation, optional?) for ``X | None``."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        if not args:
            return type(None), True
    return annotation, False


def _flatten(metadata: list[Any]) -> list[Any]:
    out = []
    for m in metadata:
        if isinstance(m, FieldInfo):
            out.extend(_flatten(list(m.metadata)))
        else:
            out.append(m)
    return out


def field_specs(model: type[EventBase]) -> list[FieldSpec]:
    """The fields of ``model`` (common ones first) with their types and constraints."""
    specs = []
    for name, info in model.model_fields.items():
        inner, optional = _unwrap(info.annotation)
        metadata = list(info.metadata)
        if get_origin(inner) is Annotated:
            args = get_args(inner)
            inner, metadata = args[0], [*args[1:], *metadata]
            inner, _ = _unwrap(inner)
        choices = None
        if get_origin(inner) is Literal:
            choices = get_args(inner)
            base = type(choices[0]).__name__
        elif inner is dt.datetime:
            base = "datetime"
        elif inner is type(None):
            base = "null"
        else:
            base = inner.__name__
        if inner is AwareDatetime:
            base = "datetime"
        cons: dict[str, Any] = {}
        for m in _flatten(metadata):
            for key in ("ge", "le", "min_length", "max_length", "pattern"):
                val = getattr(m, key, None)
                if val is not None:
                    cons[key] = val
        specs.append(FieldSpec(
            name=name, type=base, required=info.is_required(), choices=choices,
            ge=cons.get("ge"), le=cons.get("le"), min_length=cons.get("min_length"),
            max_length=cons.get("max_length"), pattern=cons.get("pattern"),
        ))
    return specs


_ARROW = {
    "str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
    "datetime": pa.timestamp("us", tz="UTC"), "null": pa.string(),
}


def arrow_schema() -> pa.Schema:
    """The event log's columns: the union of every kind's fields, all nullable.

    Common fields come first, then ``kind``, then kind fields in the order of :data:`MODELS`.
    A field shared by several kinds has one type everywhere (checked at import).
    """
    cols: dict[str, pa.DataType] = {}
    for name in ("event_id", "ts", "kind", "device_id", "device_type", "schema_version"):
        cols[name] = _ARROW["datetime"] if name == "ts" else (
            pa.int64() if name == "schema_version" else pa.string())
    for model in MODELS:
        for spec in field_specs(model):
            if spec.name in cols:
                continue
            cols[spec.name] = _ARROW[spec.type]
    return pa.schema([pa.field(n, t, nullable=True) for n, t in cols.items()])


def _check_shared_types() -> None:
    seen: dict[str, str] = {}
    for model in MODELS:
        for spec in field_specs(model):
            t = "str" if spec.type == "null" else spec.type
            if seen.setdefault(spec.name, t) != t:
                raise TypeError(f"field {spec.name!r} has two types: {seen[spec.name]} and {t}")


_check_shared_types()
ARROW_SCHEMA = arrow_schema()
