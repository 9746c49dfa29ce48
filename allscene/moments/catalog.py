"""The scene catalog: a YAML file of scenes, checked and compiled at load.

Each scene has ``id``, ``family`` (``home``, ``personal`` or ``smart_life``), ``name``
(``zh`` and ``en``), ``description``, ``when`` (the condition that puts a person in it),
optionally ``until`` (the condition that takes them out), and ``lasts``: how long the scene
holds after the last moment ``when`` was true, unless ``until`` ends it sooner. Conditions
are written in :mod:`allscene.moments.lang`; a scene may depend on another with ``in(id)``.

A broken catalog is refused with a message naming the scene and the problem.

Examples
--------
>>> cat = load_catalog()
>>> len(cat.scenes) >= 100, sorted({s.family for s in cat.scenes})
(True, ['home', 'personal', 'smart_life'])
>>> bad = '''
... scenes:
...   - {id: ab, family: home, name: {zh: 甲, en: A}, description: d, when: "tv_wach", lasts: 1h}
... '''
>>> load_catalog(text=bad)
Traceback (most recent call last):
...
allscene.moments.catalog.CatalogError: scene 'ab': when: unknown name 'tv_wach' (did you mean 'tv_watch'?) (column 1)
  tv_wach
  ^
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from allscene.moments.compile import Compiled, Compiler, Signal
from allscene.moments.lang import UNIT_US, LangError

FAMILIES = ("home", "personal", "smart_life")
_KEYS = {"id", "family", "name", "description", "when", "until", "lasts"}
_REQUIRED = ("id", "family", "name", "description", "when", "lasts")
_ID = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
_DUR = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(s|m|h|d)$")


class CatalogError(ValueError):
    """A catalog that cannot be used; the message names the scene and what is wrong."""


@dataclass
class Scene:
    id: str
    family: str
    name_zh: str
    name_en: str
    description: str
    when: str
    until: str | None
    lasts: str
    lasts_us: int
    index: int = -1


@dataclass
class Catalog:
    """Scenes in evaluation order (a scene after every scene it depends on) and their code."""

    scenes: list[Scene]
    signals: list[Signal]
    series: list[tuple[int, str | None]]
    windows: dict[int, int]
    when: list[Compiled]
    until: list[Compiled | None]
    digest: str = ""  # of the catalog's text: names the generation of scene events it made
    strings: dict[str, int] = field(default_factory=dict)  # text values -> codes in the code
    seen_cols: dict[int, int] = field(default_factory=dict)  # signal -> seen() column
    text_series: frozenset[int] = frozenset()  # series whose values are text (kept as codes)

    def by_id(self, scene_id: str) -> Scene:
        for s in self.scenes:
            if s.id == scene_id:
                return s
        raise KeyError(scene_id)


def default_path() -> Path:
    return Path(str(resources.files("allscene.moments").joinpath("scenes.yaml")))


def load_catalog(path: str | Path | None = None, *, text: str | None = None) -> Catalog:
    """Read, check and compile a catalog (the packaged one by default)."""
    where = "catalog"
    if text is None:
        p = Path(path) if path else default_path()
        where = str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise CatalogError(f"{where}: cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogError(f"{where}: not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("scenes"), list):
        raise CatalogError(f"{where}: expected a mapping with a list under 'scenes'")
    scenes = [_scene(i, raw) for i, raw in enumerate(data["scenes"])]
    seen: dict[str, int] = {}
    for i, s in enumerate(scenes):
        if s.id in seen:
            raise CatalogError(f"scene {s.id!r}: duplicate id (entries {seen[s.id] + 1} and "
                               f"{i + 1})")
        seen[s.id] = i
    comp = Compiler([s.id for s in scenes])
    when, until = [], []
    for s in scenes:
        when.append(_compile(comp, s, "when", s.when))
        until.append(_compile(comp, s, "until", s.until) if s.until else None)
    order = _order(scenes, when, until)
    for k, i in enumerate(order):
        scenes[i].index = k
    # Recompile in evaluation order so that scene indices in the code are positions.
    scenes = [scenes[i] for i in order]
    comp = Compiler([s.id for s in scenes])
    when = [_compile(comp, s, "when", s.when) for s in scenes]
    until = [_compile(comp, s, "until", s.until) if s.until else None for s in scenes]
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return Catalog(scenes, comp.signals, comp.series, comp.windows, when, until, digest,
                   comp.strings, comp.seen_cols, frozenset(comp.text_series))


def _compile(comp: Compiler, s: Scene, what: str, text: str) -> Compiled:
    try:
        return comp.compile(text)
    except LangError as e:
        raise CatalogError(f"scene {s.id!r}: {what}: {e}") from None


def _scene(i: int, raw: Any) -> Scene:
    label = f"entry {i + 1}"
    if not isinstance(raw, dict):
        raise CatalogError(f"{label}: expected a mapping of scene fields")
    if isinstance(raw.get("id"), str):
        label = f"scene {raw['id']!r}"
    extra = set(raw) - _KEYS
    if extra:
        raise CatalogError(f"{label}: unknown field {sorted(extra)[0]!r}; "
                           f"fields are {', '.join(sorted(_KEYS))}")
    for key in _REQUIRED:
        if key not in raw or raw[key] in (None, ""):
            raise CatalogError(f"{label}: missing {key!r}")
    if not isinstance(raw["id"], str) or not _ID.match(raw["id"]):
        raise CatalogError(f"{label}: id must be lower_snake_case, 2-48 characters")
    if raw["family"] not in FAMILIES:
        raise CatalogError(f"{label}: family {raw['family']!r} is not one of "
                           f"{', '.join(FAMILIES)}")
    name = raw["name"]
    if not (isinstance(name, dict) and set(name) == {"zh", "en"}
            and all(isinstance(v, str) and v for v in name.values())):
        raise CatalogError(f"{label}: name must have exactly 'zh' and 'en'")
    for key in ("description", "when"):
        if not isinstance(raw[key], str):
            raise CatalogError(f"{label}: {key} must be text")
    until = raw.get("until")
    if until is not None and not isinstance(until, str):
        raise CatalogError(f"{label}: until must be text")
    m = _DUR.match(str(raw["lasts"]).strip())
    if not m:
        raise CatalogError(f"{label}: lasts {raw['lasts']!r} is not a duration like 30m or 2h")
    lasts = int(round(float(m.group(1)) * UNIT_US[m.group(2)]))
    if lasts <= 0:
        raise CatalogError(f"{label}: lasts must be positive")
    return Scene(raw["id"], raw["family"], name["zh"], name["en"], raw["description"].strip(),
                 raw["when"].strip(), until.strip() if until else None, str(raw["lasts"]), lasts)


def _order(scenes: list[Scene], when: list[Compiled], until: list[Compiled | None]) -> list[int]:
    """Topological order over ``in()``; a cycle is refused, naming its scenes."""
    idx = {s.id: i for i, s in enumerate(scenes)}
    deps = [{idx[d] for d in when[i].scenes | (until[i].scenes if until[i] else set())}
            for i in range(len(scenes))]
    users: list[list[int]] = [[] for _ in scenes]
    for i, ds in enumerate(deps):
        if i in ds:
            raise CatalogError(f"scene {scenes[i].id!r}: depends on itself")
        for d in ds:
            users[d].append(i)
    left = [len(d) for d in deps]
    ready = deque(i for i, n in enumerate(left) if n == 0)
    out = []
    while ready:
        i = ready.popleft()
        out.append(i)
        for u in users[i]:
            left[u] -= 1
            if left[u] == 0:
                ready.append(u)
    if len(out) < len(scenes):
        cyc = sorted(scenes[i].id for i, n in enumerate(left) if n)
        raise CatalogError(f"scene {cyc[0]!r}: depends on itself through in(): "
                           f"{', '.join(cyc)}")
    return out
