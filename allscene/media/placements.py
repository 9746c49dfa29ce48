"""The placement catalog: every entry point an ad can appear in, on every device type.

A placement (``placements.yaml``) has an ``id``, a ``device_type`` (an event device type),
``name`` (``zh`` and ``en``), a ``description``, the ``surface`` and ``apps`` it lives in,
its ``formats`` (image, native, video, audio, text, each with its specs), a floor price
(``floor_cny``, CPM in CNY), ``daily_impressions`` (a per-person frequency hint), whether it
serves ``vast``, and the ``openrtb`` values of its OpenRTB 2.6 ``imp``.

A placement answers whether a creative fits it (:meth:`Placement.fits`, ``None`` or the reason)
and writes itself as an OpenRTB ``imp`` (:meth:`Placement.openrtb_imp`);
:func:`placement_for_imp` reads an incoming ``imp`` back to the best matching placement. A
broken catalog is refused with a message naming the placement and the problem.

Examples
--------
>>> cat = load_placements()
>>> splash = cat.by_id("phone_splash")
>>> splash.name_zh, splash.floor_cny, [f.kind for f in splash.formats]
('开屏广告', 60.0, ['image', 'video'])
>>> splash.fits({"format": "image", "w": 1080, "h": 1920}) is None
True
>>> splash.fits({"format": "video", "w": 1080, "h": 1920, "duration_s": 15, "mime": "video/mp4"})
'video of 15s is longer than the 5s maximum'
>>> imp = splash.openrtb_imp("1")
>>> imp["tagid"], imp["banner"]["format"][0], imp["video"]["plcmt"], imp["bidfloorcur"]
('phone_splash', {'w': 1080, 'h': 1920}, 3, 'CNY')
>>> cat.placement_for_imp({"id": "1", "banner": {"w": 3840, "h": 2160}, "instl": 1}).id
'tv_boot'
>>> load_placements(text='''
... placements:
...   - {id: fridge_door, device_type: fridge, name: {zh: 冰箱门, en: Fridge door},
...      description: d, surface: s, formats: {text: {max_chars: 10}}, floor_cny: 1,
...      daily_impressions: 1, vast: false}
... ''')
Traceback (most recent call last):
...
allscene.media.placements.PlacementError: placement 'fridge_door': device_type 'fridge' is not one of phone, tv, speaker, band, router, car, air_purifier, robot_vacuum, smart_light, air_conditioner
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from allscene.events.schema import DEVICE_TYPES

KINDS = ("image", "native", "video", "audio", "text")
CURRENCY = "CNY"
IMAGE_MIMES = ("image/jpeg", "image/png")
VAST_PROTOCOLS = (7, 8)  # AdCOM creative subtypes: VAST 4.0 and VAST 4.0 wrapper
NATIVE_VER = "1.2"
# The OpenRTB imp object each kind is offered in: text goes out as a title-only native ad.
RTB_OBJECT = {"image": "banner", "native": "native", "text": "native", "video": "video",
              "audio": "audio"}
_KEYS = {"id", "device_type", "name", "description", "surface", "apps", "formats",
         "floor_cny", "daily_impressions", "vast", "openrtb"}
_REQUIRED = ("id", "device_type", "name", "description", "surface", "formats", "floor_cny",
             "daily_impressions", "vast")
_FORMAT_KEYS = {
    "image": ({"sizes"}, {"mimes"}),
    "native": ({"sizes", "max_chars"}, {"mimes"}),
    "video": ({"sizes", "mimes", "max_duration_s", "skippable"},
              {"min_duration_s", "skip_after_s"}),
    "audio": ({"mimes", "max_duration_s"}, {"min_duration_s"}),
    "text": ({"max_chars"}, set()),
}
# openrtb hint -> (allowed values, the format kinds it needs)
_RTB = {"pos": (range(0, 8), set(KINDS)), "instl": (range(0, 2), set(KINDS)),
        "plcmt": (range(1, 5), {"video"}), "startdelay": (range(-2, 3601), {"video"}),
        "feed": (range(1, 4), {"audio"}), "native_context": (range(1, 4), {"native", "text"}),
        "native_plcmttype": (range(1, 5), {"native", "text"})}
_LEGACY_PLCMT = {1: 1, 2: 4, 3: 4, 4: 4, 5: 3}  # deprecated video.placement -> plcmt (2.6 7.10)
_ID = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
_SIZE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")
_MIME = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")

Size = tuple[int, int]


class PlacementError(ValueError):
    """A catalog that cannot be used; the message names the placement and what is wrong."""


@dataclass(frozen=True)
class Format:
    """One way a placement can show an ad, with the specs a creative must meet."""

    kind: str
    sizes: tuple[Size, ...] = ()
    mimes: tuple[str, ...] = ()
    min_duration_s: int = 0
    max_duration_s: int | None = None
    skippable: bool = False
    skip_after_s: int | None = None
    max_chars: int | None = None

    def fits(self, creative: Mapping[str, Any]) -> str | None:
        """``None`` when the creative meets this format, else the reason in words."""
        k, mime, size = self.kind, creative.get("mime"), _size(creative)
        if mime is None and k in ("video", "audio"):
            return f"{k} needs a mime type; this placement plays {', '.join(self.mimes)}"
        if mime is not None and _mime(mime) not in self.mimes:
            return f"{k} of type {mime!r} is not one of {', '.join(self.mimes)}"
        if k in ("image", "native") and size not in self.sizes:
            return (f"{k} of {size[0]}x{size[1]} is not one of the sizes {_sizes(self.sizes)}"
                    if size else f"{k} needs its width and height (w, h) in pixels")
        if k == "video" and size and not any(_ratio(size, s) for s in self.sizes):
            return (f"video of {size[0]}x{size[1]} does not have the shape of the player "
                    f"({_sizes(self.sizes)})")
        d, lo, hi = creative.get("duration_s"), self.min_duration_s, self.max_duration_s
        if k in ("video", "audio"):
            if isinstance(d, bool) or not isinstance(d, int | float) or d <= 0:
                return f"{k} needs its length in seconds (duration_s)"
            if d < lo or (hi is not None and d > hi):
                return (f"{k} of {d:g}s is shorter than the {lo}s minimum" if d < lo
                        else f"{k} of {d:g}s is longer than the {hi}s maximum")
        text, what = creative.get("text"), "title" if k == "native" else "text"
        if k == "text" and text is None:
            return "text needs its words (text)"
        if k in ("native", "text") and text is not None:
            if not isinstance(text, str):
                return f"{what} must be a string"
            if self.max_chars and len(text) > self.max_chars:
                return (f"{what} of {len(text)} characters is longer than the "
                        f"{self.max_chars} allowed")
        return None


@dataclass(frozen=True)
class RtbHints:
    """The OpenRTB 2.6 / AdCOM 1.0 values a placement's imp carries (``None``: not sent)."""

    pos: int | None = None
    instl: int | None = None
    plcmt: int | None = None
    startdelay: int | None = None
    feed: int | None = None
    native_context: int | None = None
    native_plcmttype: int | None = None


@dataclass(frozen=True)
class Placement:
    """An entry point: where it is, what it shows, what it costs at least (``floor_cny``, CPM
    in CNY) and how often one person can see it in a day (``daily_impressions``)."""

    id: str
    device_type: str
    name_zh: str
    name_en: str
    description: str
    surface: str
    apps: tuple[str, ...]
    formats: tuple[Format, ...]
    floor_cny: float
    daily_impressions: int
    vast: bool
    openrtb: RtbHints = RtbHints()

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(f.kind for f in self.formats)

    def format(self, kind: str) -> Format | None:
        return next((f for f in self.formats if f.kind == kind), None)

    def fits(self, creative: Mapping[str, Any]) -> str | None:
        """``None`` when the creative (keys ``format``, ``w``, ``h``, ``duration_s``,
        ``mime``, ``text``) fits one of this placement's formats, else the reason."""
        kind = creative.get("format")
        if kind not in KINDS:
            return f"unknown format {kind!r}; formats are {', '.join(KINDS)}"
        f = self.format(kind)
        if f is None:
            return f"{self.id} takes {' or '.join(self.kinds)}, not {kind}"
        return f.fits(creative)

    def openrtb_imp(self, imp_id: str) -> dict[str, Any]:
        """This placement as an OpenRTB 2.6 ``imp``: one object per format, our id as
        ``tagid``, the floor as ``bidfloor`` in CNY."""
        from allscene.media.openrtb import write_imp

        return write_imp(self, imp_id)


@dataclass(frozen=True)
class Catalog:
    """Placements in file order, looked up by id or device type."""

    placements: tuple[Placement, ...]
    digest: str = ""  # of the catalog's text
    _by_id: dict[str, Placement] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {p.id: p for p in self.placements})

    def __iter__(self) -> Iterator[Placement]:
        return iter(self.placements)

    def __len__(self) -> int:
        return len(self.placements)

    def by_id(self, placement_id: str) -> Placement:
        found = self.get(placement_id)
        if found is None:
            raise KeyError(placement_id)
        return found

    def get(self, placement_id: Any) -> Placement | None:
        try:
            return self._by_id.get(placement_id)
        except TypeError:  # not hashable: not an id
            return None

    def for_device(self, device_type: str) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if p.device_type == device_type)

    def placement_for_imp(self, imp: Mapping[str, Any], *,
                          device_type: str | None = None) -> Placement | None:
        """The placement an incoming OpenRTB ``imp`` is for: ours by ``tagid``, else the one
        whose formats best match the imp's banner, video, audio and native shape; ``None``
        when no placement could serve it. Never raises on a malformed imp."""
        from allscene.media.openrtb import score

        if not isinstance(imp, Mapping):
            return None
        own = self.get(imp.get("tagid"))
        if own is not None and device_type in (None, own.device_type):
            return own
        best, best_score = None, 0.0
        for p in self.placements:
            if device_type is None or p.device_type == device_type:
                s = score(p, imp)
                if s is not None and (best is None or s > best_score):
                    best, best_score = p, s
        return best


def default_path() -> Path:
    return Path(str(resources.files("allscene.media").joinpath("placements.yaml")))


@functools.cache
def default_catalog() -> Catalog:
    """The packaged catalog, read once (it is immutable)."""
    return load_placements()


def placement_for_imp(imp: Mapping[str, Any], catalog: Catalog | None = None, *,
                      device_type: str | None = None) -> Placement | None:
    """:meth:`Catalog.placement_for_imp` on ``catalog`` (the packaged one by default)."""
    cat = catalog if catalog is not None else default_catalog()
    return cat.placement_for_imp(imp, device_type=device_type)


def load_placements(path: str | Path | None = None, *, text: str | None = None) -> Catalog:
    """Read and check a placement catalog (the packaged one by default)."""
    where = "catalog"
    if text is None:
        file = Path(path) if path else default_path()
        where = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as e:
            raise PlacementError(f"{where}: cannot read: {e.strerror}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader
    except yaml.YAMLError as e:
        raise PlacementError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("placements"), list):
        raise PlacementError(f"{where}: expected a mapping with a list under 'placements'")
    placements = [_placement(i, raw) for i, raw in enumerate(data["placements"])]
    seen: dict[str, int] = {}
    for i, p in enumerate(placements):
        if p.id in seen:
            raise PlacementError(f"placement {p.id!r}: duplicate id (entries {seen[p.id] + 1} "
                                 f"and {i + 1})")
        seen[p.id] = i
    return Catalog(tuple(placements), hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen = set()
    for k, _ in node.value:
        key = loader.construct_object(k, deep=deep)
        if isinstance(key, str | int | float) and key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                    k.start_mark)
        seen.add(key if isinstance(key, str | int | float) else id(k))
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _need(ok: Any, where: str, problem: str) -> None:
    if not ok:
        raise PlacementError(f"{where}: {problem}")


def _known(where: str, got: Any, fields: Any, what: str = "field") -> None:
    extra = sorted(map(str, set(got) - set(fields)))
    if extra:
        listed = sorted(fields) if what == "field" else fields
        raise PlacementError(f"{where}: unknown {what} {extra[0]!r}; {what}s are "
                             f"{', '.join(listed)}")


def _placement(i: int, raw: Any) -> Placement:
    label = f"entry {i + 1}"
    _need(isinstance(raw, dict), label, "expected a mapping of placement fields")
    if isinstance(raw.get("id"), str) and raw["id"]:
        label = f"placement {raw['id']!r}"
    _known(label, raw, _KEYS)
    for key in _REQUIRED:
        _need(raw.get(key) not in (None, ""), label, f"missing {key!r}")
    _need(isinstance(raw["id"], str) and _ID.match(raw["id"]), label,
          "id must be lower_snake_case, 2-48 characters")
    _need(raw["device_type"] in DEVICE_TYPES, label, f"device_type {raw['device_type']!r} is "
          f"not one of {', '.join(DEVICE_TYPES)}")
    name = raw["name"]
    _need(isinstance(name, dict) and set(name) == {"zh", "en"}
          and all(isinstance(v, str) and v for v in name.values()), label,
          "name must have exactly 'zh' and 'en'")
    for key in ("description", "surface"):
        _need(isinstance(raw[key], str), label, f"{key} must be text")
    apps = raw.get("apps") or []
    _need(isinstance(apps, list) and all(isinstance(a, str) and a for a in apps), label,
          "apps must be a list of app names")
    fmts = raw["formats"]
    _need(isinstance(fmts, dict) and fmts, label,
          f"formats must map at least one of {', '.join(KINDS)} to its specs")
    _known(label, fmts, KINDS, "format")
    _need(not {"native", "text"} <= set(fmts), label,
          "native and text both go out as imp.native; keep one")
    formats = tuple(_format(label, k, fmts[k]) for k in KINDS if k in fmts)
    floor = raw["floor_cny"]
    _need(not isinstance(floor, bool) and isinstance(floor, int | float) and floor >= 0, label,
          f"floor_cny must be a CPM in CNY of zero or more, not {floor!r}")
    daily = _whole(label, "daily_impressions", raw["daily_impressions"], low=1)
    _need(isinstance(raw["vast"], bool), label, "vast must be true or false")
    _need(not raw["vast"] or "video" in fmts, label, "vast is true but there is no video format")
    hints = raw.get("openrtb") or {}
    _need(isinstance(hints, dict), label, "openrtb must be a mapping")
    _known(f"{label}: openrtb", hints, _RTB)
    for key, value in hints.items():
        allowed, needs = _RTB[key]
        _need(type(value) is int and value in allowed, label, f"openrtb.{key} "
              f"{value!r} is not one of {allowed.start}..{allowed.stop - 1}")
        _need(needs & set(fmts), label, f"openrtb.{key} needs a {' or '.join(sorted(needs))} "
              "format")
    _need("video" not in fmts or "plcmt" in hints, label,
          "openrtb.plcmt is required with a video format")
    return Placement(raw["id"], raw["device_type"], name["zh"], name["en"],
                     raw["description"].strip(), raw["surface"].strip(), tuple(apps), formats,
                     float(floor), daily, raw["vast"], RtbHints(**hints))


def _format(label: str, kind: str, spec: Any) -> Format:
    where = f"{label}: formats.{kind}"
    _need(isinstance(spec, dict), where, "expected a mapping of specs")
    required, optional = _FORMAT_KEYS[kind]
    _known(where, spec, required | optional)
    for key in sorted(required):
        _need(spec.get(key) is not None, where, f"missing {key!r}")
    sizes = spec.get("sizes", [])
    _need(isinstance(sizes, list) and (sizes or "sizes" not in spec), where,
          "sizes must be a list like [1080x1920]")
    for s in sizes:
        _need(_SIZE.match(str(s)), where, f"size {s!r} is not like 1080x1920")
    mimes = spec.get("mimes", list(IMAGE_MIMES) if kind in ("image", "native") else [])
    _need(isinstance(mimes, list) and (mimes or kind == "text")
          and all(isinstance(m, str) and _MIME.match(m) for m in mimes), where,
          "mimes must be a list of types like video/mp4")
    lo = _whole(where, "min_duration_s", spec.get("min_duration_s", 0))
    hi = spec.get("max_duration_s")
    _need(hi is None or _whole(where, "max_duration_s", hi, low=1) >= lo, where,
          f"max_duration_s {hi} is below min_duration_s {lo}")
    skippable, skip_after = spec.get("skippable", False), spec.get("skip_after_s")
    _need(isinstance(skippable, bool), where, "skippable must be true or false")
    _need(skip_after is None or (_whole(where, "skip_after_s", skip_after) >= 0 and skippable),
          where, "skip_after_s is set but skippable is false")
    chars = spec.get("max_chars")
    if chars is not None:
        _whole(where, "max_chars", chars, low=1)
    pairs = [str(s).partition("x") for s in sizes]
    return Format(kind, tuple((int(w), int(h)) for w, _, h in pairs), tuple(mimes), lo, hi,
                  skippable, skip_after, chars)


def _whole(where: str, key: str, value: Any, low: int = 0) -> int:
    _need(not isinstance(value, bool) and isinstance(value, int) and value >= low, where,
          f"{key} must be a whole number of at least {low}, not {value!r}")
    return value

def _ratio(a: Size, b: Size) -> bool:
    return abs(a[0] * b[1] / (a[1] * b[0]) - 1) < 0.02

def _size(obj: Mapping[str, Any]) -> Size | None:
    w, h = _int(obj.get("w")), _int(obj.get("h"))
    return (w, h) if w and h and w > 0 and h > 0 else None

def _int(v: Any) -> int | None:
    """An integer from an int, a whole float or a numeric string ("1"), else ``None``."""
    if isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer():
        return int(v)
    if isinstance(v, str) and re.fullmatch(r"\s*-?[0-9]{1,9}\s*", v):
        return int(v)
    return None

def _mime(m: Any) -> str:
    m = str(m).strip().lower()
    return "image/jpeg" if m == "image/jpg" else m  # "image/jpg" is common and not registered

def _sizes(sizes: tuple[Size, ...]) -> str:
    return ", ".join(f"{w}x{h}" for w, h in sizes)
