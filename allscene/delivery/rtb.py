"""OpenRTB 2.6 for the decision engine: a bid request in, asks for our placements out, and
decisions back as a bid response.

:func:`read_bid_request` checks the request's frame (an object with an ``id`` and a list of
``imp`` objects with unique ids, else :class:`RtbError` naming what is wrong), picks the
currency to answer in, and turns each ``imp`` into an :class:`Ask`: the placement of ours it
is for (``tagid`` when it is one of our ids, else the catalog's best match by shape) and its
floor in CNY, or why we cannot bid on it. Anything odd inside an imp is a reason, never an
error. :func:`bid_response` writes the ad decisions as bids (markup, prices in the request's
currency, the signed impression link as billing notice), or says why there is no bid.

Examples
--------
>>> from allscene.media.placements import load_placements
>>> body = '''{"id": "r1", "cur": ["USD"], "imp": [
...     {"id": "1", "tagid": "tv_boot", "bidfloor": 10},
...     {"id": "2", "banner": {"w": 728, "h": 90}}]}'''
>>> req = read_bid_request(body, load_placements(), rates={"USD": 7.2})
>>> req.currency, req.rate
('USD', 7.2)
>>> [(a.imp_id, a.placement and a.placement.id, a.floor_cny, a.why) for a in req.asks]
[('1', 'tv_boot', 72.0, None), ('2', None, 0.0, 'imp 2: no placement of ours serves this imp (banner 728x90)')]
>>> read_bid_request('{"id": "r2", "imp": []}', load_placements(), rates={})
Traceback (most recent call last):
...
allscene.delivery.rtb.RtbError: bid request r2: imp must be a non-empty list of impressions
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from allscene.delivery.decide import Decision
from allscene.media.placements import NATIVE_VER, RTB_OBJECT, Catalog, Placement
from allscene.media.vast import vast_for

BASE = "CNY"
DEFAULT_FLOOR_CUR = "USD"  # OpenRTB 2.6 imp.bidfloorcur default
OBJECTS = ("banner", "video", "audio", "native")  # what an imp can offer
MTYPE = {"image": 1, "video": 2, "audio": 3, "native": 4, "text": 4}
# AdCOM device types that are one of ours; other types (PC, tablet, DOOH...) match any.
ADCOM_DEVICE_TYPES = {1: "phone", 4: "phone", 3: "tv", 7: "tv"}
# decide() rounds a price to 6 decimals of a CNY per impression: 0.0005 CNY of a CPM.
FLOOR_SLACK_CNY = 0.001


class RtbError(ValueError):
    """A bid request we cannot read at all (answered with HTTP 400 and this message)."""


@dataclass(frozen=True)
class Ask:
    """One ``imp`` of a bid request: the placement it is for and its floor (CPM, CNY), or
    ``placement`` ``None`` and ``why`` we cannot bid on it."""

    imp_id: str
    placement: Placement | None
    floor_cny: float = 0.0
    why: str | None = None


@dataclass(frozen=True)
class BidRequest:
    """A bid request as the decision engine needs it; ``raw`` is the request as sent.

    ``currency`` is the one we answer in and ``rate`` how many CNY one unit of it is
    (``None`` and 0.0 when the request accepts no currency we price: then every ask says
    so). ``limit_tracking`` is set by ``device.dnt`` or ``device.lmt``."""

    id: str
    asks: list[Ask]
    device_id: str | None
    limit_tracking: bool
    currency: str | None
    rate: float
    test: bool = False
    tmax_ms: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def read_bid_request(body: bytes | str | Mapping[str, Any], catalog: Catalog, *,
                     rates: Mapping[str, float]) -> BidRequest:
    """Read an OpenRTB 2.6 bid request into asks for our placements.

    Parameters
    ----------
    body
        The request body (JSON bytes or text) or the request already parsed.
    catalog
        Our placements (:func:`allscene.media.placements.load_placements`).
    rates
        How many CNY one unit of a currency is (``{"USD": 7.1}``); CNY is always 1.

    Raises
    ------
    RtbError
        When the body is not JSON, not an object, or its ``id`` or ``imp`` list is missing
        or malformed; nothing else is raised for any JSON input.
    """
    raw = _parse(body)
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid.strip():
        raise RtbError(f"bid request needs an id (a non-empty string), got {_show(rid)}")
    imps = raw.get("imp")
    if not isinstance(imps, list) or not imps:
        raise RtbError(f"bid request {rid[:40]}: imp must be a non-empty list of impressions")
    _check_imps(rid[:40], imps)
    device, user = _obj(raw.get("device")), _obj(raw.get("user"))
    currency, rate, cur_why = _currency(raw.get("cur"), rates)
    kind = ADCOM_DEVICE_TYPES.get(_int(device.get("devicetype")) or 0)
    asks = [_ask(imp, catalog, rates, kind, cur_why) for imp in imps]
    ids = (device.get("ifa"), user.get("id"), user.get("buyeruid"))
    tmax = _int(raw.get("tmax"))
    return BidRequest(rid, asks, next((i for i in ids if isinstance(i, str) and i), None),
                      _flag(device.get("dnt")) or _flag(device.get("lmt")), currency, rate,
                      _flag(raw.get("test")), tmax if tmax and tmax > 0 else None, raw)


def bid_response(req: BidRequest, decided: list[tuple[Ask, Decision]], *,
                 seat: str) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """The OpenRTB 2.6 bid response for the decisions on a request's asks.

    Returns
    -------
    response, reasons
        ``response`` is ``None`` (no bid) when no decision is an ad we can send. ``reasons``
        counts why imps got no bid and campaigns were passed over: the asks' ``why``, the
        decisions' ``reasons``, and ads dropped here (a creative the imp does not take, a
        price under its floor); never empty with a no-bid.
    """
    why: Counter[str] = Counter(a.why for a in req.asks if a.why)
    imps = {i.get("id"): i for i in req.raw.get("imp", ()) if isinstance(i, Mapping)}
    bids = []
    for ask, d in decided:
        why.update(d.reasons)
        if d.outcome != "ad":
            continue
        bid, problem = _bid(req, ask, d, _obj(imps.get(ask.imp_id)))
        if problem:
            why[f"imp {ask.imp_id}: {problem}"] += 1
        else:
            bids.append(bid)
    if not bids:
        return None, dict(why or {"no imp was decided": 1})
    bidid = hashlib.sha256("\n".join(b["id"] for b in bids).encode()).hexdigest()[:16]
    return {"id": req.id, "bidid": bidid, "cur": req.currency,
            "seatbid": [{"seat": seat, "bid": bids}]}, dict(why)


# --- reading --------------------------------------------------------------------------------

def _parse(body: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(body, Mapping):
        return dict(body)
    try:
        raw = json.loads(body)
    except (ValueError, TypeError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise RtbError(f"bid request is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise RtbError(f"bid request must be a JSON object, not {_kind(raw)}")
    return raw


def _check_imps(rid: str, imps: list[Any]) -> None:
    seen: dict[str, int] = {}
    for n, imp in enumerate(imps):
        if not isinstance(imp, Mapping):
            raise RtbError(f"bid request {rid}: imp[{n}] must be an object, not {_kind(imp)}")
        iid = imp.get("id")
        if not isinstance(iid, str) or not iid:
            raise RtbError(f"bid request {rid}: imp[{n}] needs an id (a non-empty string), "
                           f"got {_show(iid)}")
        if iid in seen:
            raise RtbError(f"bid request {rid}: imp id {_show(iid)} is used twice "
                           f"(imp[{seen[iid]}] and imp[{n}])")
        seen[iid] = n


def _currency(cur: Any, rates: Mapping[str, float]) -> tuple[str | None, float, str | None]:
    """The currency to answer in, CNY per unit of it, and why none when none."""
    if cur is None or cur == []:
        return BASE, 1.0, None
    codes = [c.strip().upper() for c in (cur if isinstance(cur, list) else [cur])
             if isinstance(c, str)]
    if not codes:
        return None, 0.0, f"currency: cur must list currency codes, not {_show(cur)}"
    if BASE in codes:
        return BASE, 1.0, None
    for code in codes:
        if (rate := _rate(rates, code)) is not None:
            return code, rate, None
    known = sorted({BASE, *(c for c in rates if _rate(rates, c))})
    return None, 0.0, (f"currency: none of {', '.join(codes)} is one we price "
                       f"({', '.join(known)})")


def _ask(imp: Mapping[str, Any], catalog: Catalog, rates: Mapping[str, float],
         device_type: str | None, cur_why: str | None) -> Ask:
    iid = imp["id"]
    if cur_why:
        return Ask(iid, None, 0.0, cur_why)
    floor, why = _floor(imp, rates)
    if why:
        return Ask(iid, None, 0.0, f"imp {iid}: {why}")
    tagid = imp.get("tagid")
    p = catalog.get(tagid) if isinstance(tagid, str) else None  # our exchange sends our ids
    p = p or catalog.placement_for_imp(imp, device_type=device_type)
    if p is None:
        return Ask(iid, None, floor,
                   f"imp {iid}: no placement of ours serves this imp ({_shape(imp)})")
    return Ask(iid, p, floor)


def _floor(imp: Mapping[str, Any], rates: Mapping[str, float]) -> tuple[float, str | None]:
    """The imp's floor as a CPM in CNY, or why it cannot be read."""
    given = imp.get("bidfloor", 0)
    floor = _num(given)
    if floor is None or floor < 0:
        return 0.0, f"bidfloor {_show(given)} is not a price"
    if floor == 0:
        return 0.0, None
    cur = imp.get("bidfloorcur", DEFAULT_FLOOR_CUR)
    rate = _rate(rates, cur)
    if rate is None:
        return 0.0, f"floor in {cur if isinstance(cur, str) else _show(cur)}, a currency we " \
                    "do not price"
    return floor * rate, None


def _shape(imp: Mapping[str, Any]) -> str:
    """What an imp offers, in a few words (``banner 728x90``, ``video 640x480``)."""
    parts = [" ".join([o, *(f"{w}x{h}" for w, h in _sizes(imp[o])[:3])])
             for o in OBJECTS if isinstance(imp.get(o), Mapping)]
    return " or ".join(parts) or "no banner, video, audio or native object"


# --- answering ------------------------------------------------------------------------------

def _bid(req: BidRequest, ask: Ask, d: Decision,
         imp: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """One bid for an ad decision, or why it cannot be sent."""
    cr = d.creative or {}
    if req.currency is None:
        return None, "no currency to bid in"
    problem = _mismatch(imp, cr)
    if problem:
        return None, problem
    price = _price(d.price_cny, ask.floor_cny, req.rate)
    if price is None:
        return None, (f"price {d.price_cny * 1000:g} CNY CPM is under the imp's floor "
                      f"{ask.floor_cny:g}")
    try:
        adm = _adm(d, cr, imp)
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # a malformed creative
        return None, f"creative {cr.get('id')!r} cannot be written: {e!r}"
    w, h = _int(cr.get("w")), _int(cr.get("h"))
    host = _host(cr.get("landing"))
    bid = {"id": d.request_id, "impid": ask.imp_id, "price": price, "cid": d.campaign,
           "crid": str(cr.get("id")), "burl": d.imp_url, "adm": adm, "mtype": MTYPE[cr["format"]],
           **({"w": w, "h": h} if w and h else {}), "adomain": [host] if host else None,
           "ext": {"advertiser": d.advertiser}}
    return {k: v for k, v in bid.items() if v is not None}, None


def accepts(req: BidRequest, ask: Ask) -> Callable[[Mapping[str, Any]], bool]:
    """Whether the ask's imp takes a creative (its sizes, types and lengths): given to the
    decision engine, so it picks a creative the exchange will take before it spends."""
    imp = next((i for i in _list(req.raw.get("imp")) if isinstance(i, Mapping)
                and i.get("id") == ask.imp_id), {})
    return lambda cr: _mismatch(imp, cr) is None


def _price(price_cny: float, floor_cny: float, rate: float) -> float | None:
    """The bid (CPM in the answer's currency), ``None`` when under the floor. Rounded up to 4
    decimals: a bid rounded down could land a hair under the floor and be thrown away."""
    cpm = price_cny * 1000
    if cpm < floor_cny - FLOOR_SLACK_CNY:
        return None
    return math.ceil(max(cpm, floor_cny) / rate * 10_000 - 1e-6) / 10_000


def _mismatch(imp: Mapping[str, Any], cr: Mapping[str, Any]) -> str | None:
    """Why the imp does not take this creative (``None`` when it does)."""
    kind = cr.get("format")
    obj = RTB_OBJECT.get(kind) if isinstance(kind, str) else None
    if obj is None:
        return f"creative format {_show(kind)} has no OpenRTB markup"
    offers = [o for o in OBJECTS if isinstance(imp.get(o), Mapping)]
    if offers and obj not in offers:  # an imp offering nothing takes what its tagid takes
        return f"a {kind} creative needs imp.{obj}; this imp offers {', '.join(offers)}"
    spec = _obj(imp.get(obj))
    size, sizes = (_int(cr.get("w")), _int(cr.get("h"))), _sizes(spec)
    if kind == "image" and sizes and size not in sizes:
        return (f"image {size[0]}x{size[1]} is not one of the banner sizes "
                f"{', '.join(f'{w}x{h}' for w, h in sizes)}")
    if kind in ("video", "audio"):
        mimes = [m.lower() for m in _list(spec.get("mimes")) if isinstance(m, str)]
        if mimes and str(cr.get("mime")).lower() not in mimes:
            return f"{kind} of type {cr.get('mime')} is not one of {', '.join(mimes)}"
        dur, lo, hi = _num(cr.get("duration_s")), _num(spec.get("minduration")), \
            _num(spec.get("maxduration"))
        if dur is not None and ((lo and dur < lo) or (hi and dur > hi)):
            return f"{kind} of {dur:g}s is outside the imp's {lo or 0:g}-{hi or 0:g}s"
    return None


def _adm(d: Decision, cr: Mapping[str, Any], imp: Mapping[str, Any]) -> str:
    kind = cr["format"]
    if kind == "image":
        e = html.escape
        w, h = _int(cr.get("w")), _int(cr.get("h"))
        size = f' width="{w}" height="{h}"' if w and h else ""
        return (f'<a href="{e(d.click_url or "")}" target="_blank" rel="noopener">'
                f'<img src="{e(str(cr["url"]))}"{size} alt="" style="border:0"></a>'
                f'<img src="{e(d.imp_url or "")}" width="1" height="1" alt="" '
                'style="display:none">')
    if kind in ("video", "audio"):
        audio = kind == "audio"
        # vast_for writes video only; VAST 4.2 plays audio as a linear ad whose MediaFile is
        # 0x0 (the XSD: "pixel dimensions of video, or 0 for audio ads"), marked adType.
        media = {**cr, "format": "video", "w": 0, "h": 0} if audio else dict(cr)
        xml = vast_for(d.request_id, media, advertiser=d.advertiser or "",
                       title=d.campaign or str(cr["id"]), impression_url=d.imp_url or "",
                       click_url=d.click_url or "", landing=cr.get("landing"))
        return xml.replace("<Ad ", '<Ad adType="audio" ', 1) if audio else xml
    title_id, img_id = _native_ids(imp)
    assets: list[dict[str, Any]] = []
    if cr.get("text"):
        assets.append({"id": title_id, "title": {"text": cr["text"]}})
    w, h = _int(cr.get("w")), _int(cr.get("h"))
    if kind == "native" and cr.get("url"):
        size = {"w": w, "h": h} if w and h else {}
        assets.append({"id": img_id, "img": {"url": cr["url"], **size}})
    native = {"ver": NATIVE_VER, "assets": assets, "link": {"url": d.click_url},
              "imptrackers": [d.imp_url]}
    return json.dumps({"native": native}, ensure_ascii=False, separators=(",", ":"))


def _native_ids(imp: Mapping[str, Any]) -> tuple[int, int]:
    """The ids of the request's title and main image assets (1 and 2 when not found)."""
    req = _obj(imp.get("native")).get("request")
    try:
        req = _obj(json.loads(req) if isinstance(req, str) else req)
    except (ValueError, RecursionError):
        req = {}
    req = _obj(req.get("native")) or req  # Native 1.0 wraps the request in "native"
    assets = [a for a in _list(req.get("assets")) if isinstance(a, Mapping)
              and _int(a.get("id")) is not None]
    title = next((a["id"] for a in assets if isinstance(a.get("title"), Mapping)), 1)
    imgs = [a for a in assets if isinstance(a.get("img"), Mapping)]
    main = next((a for a in imgs if _int(a["img"].get("type")) == 3), imgs[0] if imgs else None)
    return _int(title) or 1, _int(main["id"]) if main else 2


def _host(url: Any) -> str | None:
    try:
        host = urlsplit(url).hostname if isinstance(url, str) else None
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


# --- lenient values -------------------------------------------------------------------------

def _num(v: Any) -> float | None:
    """A finite number from a number or a numeric string, else ``None``."""
    if isinstance(v, bool) or not isinstance(v, int | float | str):
        return None
    try:
        n = float(v)
    except (ValueError, OverflowError):  # not a number; an integer of 400 digits
        return None
    return n if math.isfinite(n) else None

def _int(v: Any) -> int | None:
    n = _num(v)
    return int(n) if n is not None and n.is_integer() and abs(n) < 2**31 else None

def _flag(v: Any) -> bool:
    return v is True or _num(v) == 1

def _rate(rates: Mapping[str, float], code: Any) -> float | None:
    if not isinstance(code, str):
        return None
    code = code.strip().upper()
    if code == BASE:
        return 1.0
    rate = _num(rates.get(code))
    return rate if rate and rate > 0 else None

def _sizes(spec: Mapping[str, Any]) -> list[tuple[int, int]]:
    objs = [spec, *_list(spec.get("format"))]
    sizes = [(_int(o.get("w")), _int(o.get("h"))) for o in objs if isinstance(o, Mapping)]
    return list(dict.fromkeys((w, h) for w, h in sizes if w and h and w > 0 and h > 0))

def _obj(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}

def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []

def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(v), "a number")

def _show(v: Any) -> str:
    """A value for a message: JSON when short and plain, else what kind of value it is."""
    try:
        r = json.dumps(v) if isinstance(v, str | int | float | bool | type(None)) else _kind(v)
    except ValueError:  # an integer too long to print
        r = _kind(v)
    return r if len(r) <= 40 else r[:37] + "..."
