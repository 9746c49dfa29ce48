"""The tag catalog (``catalog.yaml``) and the IAB taxonomies it refers to.

The catalog is data: a tag's name, meaning, source events, windows, and its IAB Audience
Taxonomy 1.1 id where one fits. Loading it checks every entry, so a broken catalog fails with
the tag and the field named.

Examples
--------
>>> cat = load_catalog()
>>> cat["intent.car.compact"].windows, cat["gender"].iab
((7, 30, 90), {'female': 49, 'male': 50})
>>> audience_taxonomy()[50]
'Demographic | Gender | Male |'
>>> sorted(content_interests()["641"])  # Animation & Anime counts as comics
['interest.comics']
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from allscene.config import shared_data

GROUPS = ("core", "place", "interest", "intent", "car", "device", "household", "lifestyle")
TYPES = ("str", "int", "bool")


class CatalogError(ValueError):
    """A catalog entry that cannot be used, naming the tag and the field."""


@dataclass(frozen=True)
class Tag:
    name: str
    group: str
    type: str
    meaning: str
    sources: tuple[str, ...]
    windows: tuple[int, ...] = ()
    iab: int | Mapping[str, int] | None = None
    content: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    def columns(self) -> list[str]:
        """The tag table columns of this tag: ``name`` or one ``name@<d>d`` per window."""
        return [f"{self.name}@{d}d" for d in self.windows] or [self.name]


class Catalog(Mapping[str, Tag]):
    """Tags by name, in catalog order."""

    def __init__(self, tags: list[Tag]):
        self._tags = {t.name: t for t in tags}

    def __getitem__(self, name: str) -> Tag:
        return self._tags[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tags)

    def __len__(self) -> int:
        return len(self._tags)

    def group(self, group: str) -> list[Tag]:
        return [t for t in self._tags.values() if t.group == group]

    def columns(self) -> dict[str, Tag]:
        """Every tag table column and the tag it belongs to."""
        return {c: t for t in self._tags.values() for c in t.columns()}


def _read(name: str) -> str:
    return resources.files("allscene.profiles").joinpath(name).read_text(encoding="utf-8")


IAB_ENV = "ALLSCENE_IAB_DIR"


def iab_dir() -> Path:
    """The IAB taxonomies: ``$ALLSCENE_IAB_DIR``, else ``shared/data/iab_taxonomies`` beside
    the repository (third-party data is read where it is kept, not copied in)."""
    found = shared_data("iab_taxonomies", IAB_ENV)
    if not (found / "Audience Taxonomies").is_dir():
        raise FileNotFoundError(
            f"IAB taxonomies not found (looked for shared/data/iab_taxonomies beside the "
            f"repository); set {IAB_ENV} to the folder holding 'Audience Taxonomies' and "
            "'Content Taxonomies'")
    return found


def _read_iab(*parts: str) -> str:
    return iab_dir().joinpath(*parts).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def audience_taxonomy() -> dict[int, str]:
    """IAB Audience Taxonomy 1.1: unique id → condensed name."""
    rows = csv.reader(_read_iab("Audience Taxonomies", "Audience Taxonomy 1.1.tsv")
                      .splitlines(), delimiter="\t")
    next(rows)
    return {int(r[1]): r[3].strip() for r in rows if len(r) > 3 and r[1].strip().isdigit()}


@functools.lru_cache(maxsize=1)
def content_taxonomy() -> dict[str, tuple[str, str]]:
    """IAB Content Taxonomy 3.1: unique id → (parent id or '', name)."""
    rows = list(csv.reader(_read_iab("Content Taxonomies", "Content Taxonomy 3.1.tsv")
                           .splitlines(), delimiter="\t"))
    return {r[0].strip(): (r[1].strip(), r[2].strip()) for r in rows[2:] if r and r[0].strip()}


def _check(entry: dict[str, Any], i: int) -> Tag:
    name = entry.get("name")
    where = f"catalog tag {i + 1} ({name!r})"
    if not isinstance(name, str) or not name:
        raise CatalogError(f"{where}: 'name' is required")
    for key in ("group", "type", "meaning", "sources"):
        if key not in entry:
            raise CatalogError(f"{where}: '{key}' is required")
    unknown = set(entry) - {"name", "group", "type", "meaning", "sources", "windows", "iab",
                            "content", "keywords"}
    if unknown:
        raise CatalogError(f"{where}: unknown fields {sorted(unknown)}")
    if entry["group"] not in GROUPS:
        raise CatalogError(f"{where}: group {entry['group']!r} is not one of {GROUPS}")
    if entry["type"] not in TYPES:
        raise CatalogError(f"{where}: type {entry['type']!r} is not one of {TYPES}")
    from allscene.events.schema import KINDS

    bad = [s for s in entry["sources"] if s not in KINDS]
    if bad:
        raise CatalogError(f"{where}: unknown source event kinds {bad}")
    taxonomy = audience_taxonomy()
    iab = entry.get("iab")
    ids = list(iab.values()) if isinstance(iab, dict) else ([] if iab is None else [iab])
    missing = [x for x in ids if x not in taxonomy]
    if missing:
        raise CatalogError(f"{where}: IAB Audience Taxonomy 1.1 has no id {missing}")
    content = tuple(str(c) for c in entry.get("content", ()))
    unknown_content = [c for c in content if c not in content_taxonomy()]
    if unknown_content:
        raise CatalogError(f"{where}: IAB Content Taxonomy 3.1 has no id {unknown_content}")
    windows = tuple(int(d) for d in entry.get("windows", ()))
    if any(d <= 0 for d in windows):
        raise CatalogError(f"{where}: windows must be positive numbers of days")
    return Tag(name=name, group=entry["group"], type=entry["type"],
               meaning=" ".join(str(entry["meaning"]).split()),
               sources=tuple(entry["sources"]), windows=windows,
               iab={str(k): int(v) for k, v in iab.items()} if isinstance(iab, dict) else iab,
               content=content, keywords=tuple(str(k) for k in entry.get("keywords", ())))


def parse_catalog(text: str) -> Catalog:
    """A catalog from YAML text; raises :class:`CatalogError` naming the bad entry."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"the catalog is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tags"), list):
        raise CatalogError("the catalog needs a top-level 'tags' list")
    tags = [_check(e, i) for i, e in enumerate(doc["tags"])]
    seen: set[str] = set()
    for t in tags:
        if t.name in seen:
            raise CatalogError(f"catalog tag {t.name!r} is defined twice")
        seen.add(t.name)
    return Catalog(tags)


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The platform's tag catalog."""
    return parse_catalog(_read("catalog.yaml"))


def content_interests(catalog: Catalog | None = None) -> dict[str, list[str]]:
    """Content Taxonomy id → the interest tags its content counts for (a category counts for
    an interest when it or one of its ancestors is among the interest's ``content`` ids)."""
    catalog = catalog or load_catalog()
    tax = content_taxonomy()
    wanted = {c: t.name for t in catalog.group("interest") for c in t.content}
    out: dict[str, list[str]] = {}
    for cid in tax:
        node, hits, seen = cid, [], set()
        while node and node not in seen:
            seen.add(node)
            if node in wanted and wanted[node] not in hits:
                hits.append(wanted[node])
            node = tax.get(node, ("", ""))[0]
        if hits:
            out[cid] = hits
    return out
