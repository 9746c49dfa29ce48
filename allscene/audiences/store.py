"""Saved audiences per advertiser: their definitions in SQLite, their members in Parquet.

An audience is one of

* ``expression``: a tag expression, evaluated afresh against the current tags each time;
* ``package``: an uploaded custom audience package (hashed IMEI / OAID), matched once;
* ``lookalike``: an expansion of another audience, computed once.

Packages and lookalikes keep their members (``person_id, score``) in
``<root>/members/<advertiser>/<name>.parquet``. Each advertiser sees only its own audiences:
every read and write is keyed by advertiser, so one advertiser's names never resolve to
another's.

(The configuration store of the delivery engine, with PostgreSQL as the scale-out backend,
will take these definitions over; the interface stays.)

Examples
--------
>>> import tempfile
>>> store = AudienceStore(tempfile.mkdtemp())
>>> store.save("acme", "young_drivers", "expression", "age in 22..39 and owns_car")
>>> [(a.name, a.kind) for a in store.list("acme")], store.list("globex")
([('young_drivers', 'expression')], [])
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
KINDS = ("expression", "package", "lookalike")


class AudienceError(ValueError):
    """A request about audiences that cannot be met, saying why."""


@dataclass(frozen=True)
class Audience:
    advertiser: str
    name: str
    kind: str
    definition: str
    """The expression; for packages and lookalikes, a JSON object of how it was made."""
    created_at: str

    @property
    def details(self) -> dict:
        return {} if self.kind == "expression" else json.loads(self.definition)


def check_name(name: str, what: str = "audience") -> str:
    if not NAME.match(name):
        raise AudienceError(f"{what} name {name!r}: use lower-case letters, digits and '_', "
                            "starting with a letter (at most 64)")
    return name


class AudienceStore:
    """Audience definitions and members under ``root``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = self.root / "audiences.sqlite"
        with self._connect() as con:
            con.execute("""CREATE TABLE IF NOT EXISTS audiences (
                advertiser TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
                definition TEXT NOT NULL, created_at TEXT NOT NULL,
                PRIMARY KEY (advertiser, name))""")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self._db, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def save(self, advertiser: str, name: str, kind: str, definition: str,
             members: pa.Table | None = None, *, replace: bool = False) -> None:
        """Save an audience (and its members, for packages and lookalikes)."""
        check_name(advertiser, "advertiser")
        check_name(name)
        if kind not in KINDS:
            raise AudienceError(f"unknown audience kind {kind!r}; kinds: {', '.join(KINDS)}")
        if (kind == "expression") != (members is None):
            raise AudienceError("expression audiences have no stored members; packages and "
                                "lookalikes must have them")
        if not replace and self.get(advertiser, name) is not None:
            raise AudienceError(f"audience '{name}' exists; choose another name or replace it")
        if members is not None:
            path = self.members_path(advertiser, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            pq.write_table(members, tmp)
            os.replace(tmp, path)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO audiences VALUES (?, ?, ?, ?, ?)",
                        (advertiser, name, kind, definition, now))

    def get(self, advertiser: str, name: str) -> Audience | None:
        with self._connect() as con:
            row = con.execute("SELECT advertiser, name, kind, definition, created_at FROM "
                              "audiences WHERE advertiser = ? AND name = ?",
                              (advertiser, name)).fetchone()
        return Audience(*row) if row else None

    def list(self, advertiser: str) -> list[Audience]:
        with self._connect() as con:
            rows = con.execute("SELECT advertiser, name, kind, definition, created_at FROM "
                               "audiences WHERE advertiser = ? ORDER BY name",
                               (advertiser,)).fetchall()
        return [Audience(*r) for r in rows]

    def delete(self, advertiser: str, name: str) -> bool:
        with self._connect() as con:
            n = con.execute("DELETE FROM audiences WHERE advertiser = ? AND name = ?",
                            (advertiser, name)).rowcount
        self.members_path(advertiser, name).unlink(missing_ok=True)
        return n > 0

    def members_path(self, advertiser: str, name: str) -> Path:
        return self.root / "members" / check_name(advertiser, "advertiser") / f"{name}.parquet"

    def members(self, advertiser: str, name: str) -> pa.Table:
        """``person_id, score`` of a package or lookalike."""
        path = self.members_path(advertiser, name)
        if not path.exists():
            raise AudienceError(f"audience '{name}' has no stored members")
        return pq.read_table(path)
