"""Audiences as an advertiser uses them: count, save, sample, export, expand, upload.

Two rules hold for every answer here:

* **Opted out is never in.** People whose latest choice is no personalized ads are removed
  from every audience, whatever its kind, before it is counted or used.
* **Small audiences stay hidden.** An audience with fewer than ``min_size`` people (50 by
  default) is counted as "< 50", and cannot be exported, expanded or targeted: a handful of
  people could be singled out.

Examples
--------
>>> import pyarrow as pa, tempfile
>>> tags = pa.table({"person_id": [f"p{i}" for i in range(120)],
...                  "age": list(range(20, 80)) * 2})
>>> consent = pa.table({"person_id": ["p0"], "personalized_ads": [False]})
>>> aud = Audiences(tags, consent, AudienceStore(tempfile.mkdtemp()), advertiser="acme")
>>> aud.count("age in 20..29"), aud.count("age = 20")  # p0 (age 20) opted out
(Count(people=19, min_size=50), Count(people=1, min_size=50))
>>> str(aud.count("age in 20..29")), str(aud.count("age >= 30"))
('< 50', '100')
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyroaring import BitMap

from allscene.audiences.expr import Ref, parse
from allscene.audiences.index import TagIndex, _refs
from allscene.audiences.store import AudienceError, AudienceStore, check_name

MIN_SIZE = 50


@dataclass(frozen=True)
class Count:
    people: int
    min_size: int

    @property
    def usable(self) -> bool:
        return self.people >= self.min_size

    def __str__(self) -> str:
        return f"{self.people:,}" if self.usable else f"< {self.min_size}"


class Audiences:
    """One advertiser's view of the audiences over a tag table.

    ``tags`` is the wide tag table (``person_id`` and one column per tag), ``consent`` the
    people's latest choices (``person_id, personalized_ads``).
    """

    def __init__(self, tags: pa.Table, consent: pa.Table, store: AudienceStore, *,
                 advertiser: str = "default", min_size: int = MIN_SIZE,
                 index: TagIndex | None = None):
        self.advertiser = check_name(advertiser, "advertiser")
        self.store = store
        self.min_size = min_size
        self.tags = tags
        self.index = index or TagIndex.build(tags)
        self.row = {p: i for i, p in enumerate(self.index.person_ids)}
        out = [self.row[p] for p, ok in zip(consent["person_id"].to_pylist(),
                                            consent["personalized_ads"].to_pylist(), strict=True)
               if ok is False and p in self.row]
        self.opted_out = BitMap(out)
        self.eligible = self.index.everyone - self.opted_out

    # --- evaluating --------------------------------------------------------------------
    def members(self, expr: str) -> BitMap:
        """Rows of the people in expression ``expr`` (``@name``: a saved audience), less the
        people who opted out."""
        node = parse(expr)
        refs = self._resolve({name for name, _ in _refs(node)}, set())
        self.index.check(node, expr, refs)
        return self.index.evaluate(node, refs) & self.eligible

    def _resolve(self, names: Iterable[str], stack: set[str]) -> dict[str, BitMap]:
        out: dict[str, BitMap] = {}
        for name in names:
            if name in stack:
                raise AudienceError(f"audience '@{name}' refers to itself")
            saved = self.store.get(self.advertiser, name)
            if saved is None:
                continue  # reported by the index's check, with its position
            if saved.kind == "expression":
                node = parse(saved.definition)
                refs = self._resolve({n for n, _ in _refs(node)}, stack | {name})
                self.index.check(node, saved.definition, refs)
                out[name] = self.index.evaluate(node, refs)
            else:
                ids = self.store.members(self.advertiser, name)["person_id"].to_pylist()
                out[name] = BitMap([self.row[p] for p in ids if p in self.row])
        return out

    def count(self, expr: str) -> Count:
        return Count(len(self.members(expr)), self.min_size)

    def usable(self, expr: str, purpose: str) -> BitMap:
        """The members, or a clear error when the audience is below the minimum size."""
        m = self.members(expr)
        if len(m) < self.min_size:
            raise AudienceError(f"the audience has fewer than {self.min_size} people: it can "
                                f"be counted but not {purpose}")
        return m

    # --- saving ------------------------------------------------------------------------
    def create(self, name: str, expr: str, *, replace: bool = False) -> Count:
        """Save expression ``expr`` as audience ``name`` (checked before it is saved)."""
        check_name(name)
        node = parse(expr)
        if any(isinstance(n, Ref) and n.name == name for n in _walk(node)):
            raise AudienceError(f"audience '@{name}' refers to itself")
        count = self.count(expr)
        self.store.save(self.advertiser, name, "expression", expr, replace=replace)
        return count

    def save_members(self, name: str, kind: str, rows: np.ndarray, scores: np.ndarray,
                     details: dict, *, replace: bool = False) -> None:
        ids = [self.index.person_ids[i] for i in rows]
        members = pa.table({"person_id": pa.array(ids, pa.string()),
                            "score": pa.array(np.asarray(scores, dtype=float))})
        self.store.save(self.advertiser, check_name(name), kind,
                        json.dumps(details, ensure_ascii=False), members, replace=replace)

    def upload(self, name: str, source, hashes: pa.Table, *, strict: bool = False,
               replace: bool = False):
        """Match a custom audience package (hashed IMEI / OAID, see
        :mod:`allscene.audiences.packages`) and save the people found as audience ``name``.
        Returns the :class:`~allscene.audiences.packages.PackageMatch` (counts, match rate,
        the malformed lines)."""
        from allscene.audiences.packages import match_package, read_package

        check_name(name)
        if not replace and self.store.get(self.advertiser, name) is not None:
            raise AudienceError(f"audience '{name}' exists; choose another name or replace it")
        match = match_package(read_package(source, strict=strict), hashes,
                              person_ids=self.index.person_ids)
        rows = np.array(sorted(match.rows), dtype=np.int64)
        self.save_members(name, "package", rows, np.ones(len(rows)), {
            "lines": match.lines, "valid": match.valid, "invalid": match.invalid,
            "duplicates": match.duplicates, "ids": match.ids,
            "matched_people": match.matched_people, "match_rate": round(match.match_rate, 4)},
            replace=replace)
        return match

    def lookalike(self, seed_expr: str, size: int, *, name: str | None = None,
                  method: str | None = None, replace: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The ``size`` people outside the seed audience most like it (rows and scores, best
        first; see :mod:`allscene.audiences.lookalike`), saved as ``name`` if given. Nobody
        who opted out is returned; a seed below the minimum size is refused."""
        from allscene.audiences.lookalike import DEFAULT_METHOD, expand_lookalike

        if name is not None:
            check_name(name)
            if not replace and self.store.get(self.advertiser, name) is not None:
                raise AudienceError(f"audience '{name}' exists; choose another name or "
                                    "replace it")
        seed = self.usable(seed_expr, "expanded")
        method = method or DEFAULT_METHOD
        rows, scores = expand_lookalike(self.tags, seed, size, exclude=self.opted_out,
                                        method=method)
        if name is not None:
            self.save_members(name, "lookalike", rows, scores,
                              {"seed": seed_expr, "seed_people": len(seed), "size": size,
                               "method": method}, replace=replace)
        return rows, scores

    # --- using -------------------------------------------------------------------------
    def sample(self, expr: str, k: int = 10, seed: int = 0) -> list[str]:
        """Up to ``k`` people of the audience, drawn at random (for a look at who is in)."""
        m = self.usable(expr, "sampled")
        rows = np.frombuffer(m.to_array(), dtype=np.uint32)
        pick = np.random.default_rng(seed).choice(rows, min(k, len(rows)), replace=False)
        return [self.index.person_ids[i] for i in np.sort(pick)]

    def export(self, expr: str, devices: pa.Table,
               device_types: tuple[str, ...] = ("phone",)) -> pa.Table:
        """``device_id, device_type`` (hashed ids) of the audience's devices."""
        m = self.usable(expr, "exported")
        people = pa.array([self.index.person_ids[i] for i in m], pa.string())
        import pyarrow.compute as pc

        keep = pc.and_(pc.is_in(devices["person_id"], people),
                       pc.is_in(devices["device_type"], pa.array(list(device_types))))
        out = devices.filter(keep).select(["device_id", "device_type"])
        return out.take(pc.sort_indices(out, [("device_id", "ascending")]))


def _walk(node):
    yield node
    for child in getattr(node, "items", ()) or ((node.item,) if hasattr(node, "item") else ()):
        yield from _walk(child)
