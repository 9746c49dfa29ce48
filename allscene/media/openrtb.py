"""OpenRTB 2.6 for placements: our placements as ``imp`` objects, and incoming ``imp`` objects
matched to a placement (leniently: a bad field is ignored, never raised on).

Field names follow the IAB OpenRTB 2.6 specification (``imp.banner.format[].w/h``,
``imp.video.plcmt``, ``bidfloorcur``); see ``shared/data/openrtb_iab_spec_examples``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from allscene.media.placements import (
    _LEGACY_PLCMT,
    CURRENCY,
    NATIVE_VER,
    RTB_OBJECT,
    VAST_PROTOCOLS,
    Format,
    Placement,
    Size,
    _int,
    _mime,
    _ratio,
    _size,
)


def write_imp(p: Placement, imp_id: str) -> dict[str, Any]:
    r = p.openrtb
    imp: dict[str, Any] = {"id": imp_id, "tagid": p.id, "bidfloor": p.floor_cny,
                           "bidfloorcur": CURRENCY, "secure": 1}
    if r.instl is not None:
        imp["instl"] = r.instl
    for f in p.formats:
        if f.kind == "image":
            imp["banner"] = _drop_none({"format": [{"w": w, "h": h} for w, h in f.sizes],
                                        "mimes": list(f.mimes), "pos": r.pos})
        elif f.kind == "video":
            imp["video"] = _drop_none({
                "mimes": list(f.mimes), "minduration": f.min_duration_s,
                "maxduration": f.max_duration_s, "w": f.sizes[0][0], "h": f.sizes[0][1],
                "startdelay": r.startdelay, "plcmt": r.plcmt, "linearity": 1,
                "skip": int(f.skippable), "skipafter": f.skip_after_s if f.skippable else None,
                "pos": r.pos, "protocols": list(VAST_PROTOCOLS) if p.vast else None})
        elif f.kind == "audio":
            imp["audio"] = _drop_none({"mimes": list(f.mimes), "minduration": f.min_duration_s,
                                       "maxduration": f.max_duration_s, "feed": r.feed})
        else:
            assets: list[dict[str, Any]] = [{"id": 1, "required": 1,
                                             "title": {"len": f.max_chars}}]
            if f.kind == "native":
                w, h = f.sizes[0]
                assets += [{"id": 2, "required": 1, "img": {"type": 3, "w": w, "h": h}},
                           {"id": 3, "required": 0, "data": {"type": 1}}]
            req = {"ver": NATIVE_VER, "context": r.native_context or 1,
                   "plcmttype": r.native_plcmttype or 1, "assets": assets}
            imp["native"] = {"request": json.dumps(req, separators=(",", ":")),
                             "ver": NATIVE_VER}
    return imp


def score(p: Placement, imp: Mapping[str, Any]) -> float | None:
    """How well ``p`` matches the imp (higher is better), ``None`` when it cannot serve it."""
    offered = {k for k in ("banner", "video", "audio", "native") if isinstance(imp.get(k), Mapping)}
    scores = [s for s in (_SCORERS[k](p, imp[k]) for k in sorted(offered)) if s is not None]
    if not scores:
        return None
    total = sum(scores)
    if offered == {RTB_OBJECT[k] for k in p.kinds}:
        total += 0.5
    if _int(imp.get("instl")) == 1 and p.openrtb.instl == 1:
        total += 1
    return total


def _banner(p: Placement, b: Mapping[str, Any]) -> float | None:
    f = p.format("image")
    if f is None or not _mimes_ok(b, f):
        return None
    sizes = [_size(x) for x in [*_list(b.get("format")), b] if isinstance(x, Mapping)]
    s = max((_size_score(x, f.sizes) for x in sizes if x), default=1.0)
    pos = _int(b.get("pos"))
    return (s + (0.5 if pos is not None and pos == p.openrtb.pos else 0)) if s else None


def _video(p: Placement, v: Mapping[str, Any]) -> float | None:
    f = p.format("video")
    s = _timed(v, f)
    if f is None or s is None:
        return None
    plcmt = _int(v.get("plcmt")) or _LEGACY_PLCMT.get(_int(v.get("placement")) or 0)
    s += (2 if plcmt == p.openrtb.plcmt else -1) if plcmt else 0
    sd = _int(v.get("startdelay"))
    s += 0.5 if sd is not None and sd == p.openrtb.startdelay else 0
    s += 0.5 if _int(v.get("skip")) == int(f.skippable) else 0
    size = _size(v)
    return s + (_size_score(size, f.sizes) / 2 if size else 0)


def _audio(p: Placement, a: Mapping[str, Any]) -> float | None:
    s = _timed(a, p.format("audio"))
    feed = _int(a.get("feed"))
    return None if s is None else s + (1 if feed and feed == p.openrtb.feed else 0)


def _native(p: Placement, n: Mapping[str, Any]) -> float | None:
    f = p.format("native") or p.format("text")
    req = n.get("request")
    try:
        req = json.loads(req) if isinstance(req, str) else req
    except ValueError:
        req = None
    req = req if isinstance(req, Mapping) else {}
    req = req["native"] if isinstance(req.get("native"), Mapping) else req  # Native 1.0 wrap
    assets = [a for a in _list(req.get("assets")) if isinstance(a, Mapping)]
    imgs = [a["img"] for a in assets if isinstance(a.get("img"), Mapping)]
    if f is None or (imgs and f.kind != "native"):
        return None
    if imgs:  # the main image (type 3) decides; an image-less request wants a title
        size = _size(next((i for i in imgs if _int(i.get("type")) == 3), imgs[0]))
        s = 1 + (_size_score(size, f.sizes) if size else 0)
    else:
        s = 1.0 if not assets else 2.0 if f.kind == "text" else 0.5
    title = next((_int(a["title"].get("len")) for a in assets
                  if isinstance(a.get("title"), Mapping)), None)
    s += 0.5 if title and title == f.max_chars else 0
    for key, ours in (("context", p.openrtb.native_context),
                      ("plcmttype", p.openrtb.native_plcmttype)):
        s += 0.25 if ours is not None and _int(req.get(key)) == ours else 0
    return s


_SCORERS = {"banner": _banner, "video": _video, "audio": _audio, "native": _native}


def _mimes_ok(obj: Mapping[str, Any], f: Format) -> bool:
    mimes = {_mime(m) for m in _list(obj.get("mimes")) if isinstance(m, str)}
    return not mimes or bool(mimes & set(f.mimes))


def _timed(obj: Mapping[str, Any], f: Format | None) -> float | None:
    """Score of a video or audio object against ``f``: ``None`` when no creative could meet
    both (mime types or durations apart), 3 when the durations are ours exactly, else 2."""
    if f is None or not _mimes_ok(obj, f):
        return None
    top = f.max_duration_s if f.max_duration_s is not None else 10**9
    lo, hi = _int(obj.get("minduration")) or 0, _int(obj.get("maxduration"))
    required = [d for d in map(_int, _list(obj.get("rqddurs"))) if d is not None]
    if required and not any(f.min_duration_s <= d <= top for d in required):
        return None
    if not required and (lo > top or (hi is not None and 0 < hi < f.min_duration_s)):
        return None
    return 3.0 if (lo, hi) == (f.min_duration_s, f.max_duration_s) else 2.0


def _size_score(size: Size, ours: tuple[Size, ...]) -> float:
    """3 for one of our sizes, 2 for the shape of one, else 0."""
    return 3.0 if size in ours else 2.0 if any(_ratio(size, s) for s in ours) else 0.0








def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []






def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}
