"""The configuration store: advertisers and their campaigns, in SQLite or PostgreSQL.

One code path, two backends (SQLAlchemy Core): ``sqlite:///path`` by default,
``postgresql+psycopg://user@host/db`` when configured. A campaign is kept as a JSON document
with a version number: an update names the version it read and fails if someone changed it
since (optimistic concurrency), so two servers editing one campaign never lose a change.

Every read and write of a campaign is keyed by its advertiser: a campaign id of another
advertiser is simply not found. API keys are stored as SHA-256 hashes.

Examples
--------
>>> import tempfile
>>> db = ConfigStore(f"sqlite:///{tempfile.mkdtemp()}/config.sqlite")
>>> key = db.add_advertiser("acme", "Acme Cars")
>>> db.advertiser_for_key(key), db.advertiser_for_key("forged")
('acme', None)
>>> db.put_campaign("acme", "c1", {"name": "spring"})
1
>>> db.put_campaign("acme", "c1", {"name": "summer"}, expect_version=1)
2
>>> db.get_campaign("acme", "c1"), db.get_campaign("globex", "c1")
(({'name': 'summer'}, 2), None)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import Any

import sqlalchemy as sa


class ConflictError(RuntimeError):
    """The campaign changed since the version the writer read (or already exists)."""


class ConfigStore:
    """Advertisers and campaigns in a SQL database.

    Parameters
    ----------
    url
        A SQLAlchemy URL; ``postgresql://`` is read as ``postgresql+psycopg://``.
    schema
        A PostgreSQL schema to keep the tables in (created if missing); tests use one each.
    """

    def __init__(self, url: str, *, schema: str | None = None):
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.schema = schema
        md = sa.MetaData(schema=schema)
        self.advertisers = sa.Table(
            "advertisers", md,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
        self.campaigns = sa.Table(
            "campaigns", md,
            sa.Column("advertiser", sa.String(64), sa.ForeignKey(self.advertisers.c.id),
                      primary_key=True),
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("doc", sa.Text, nullable=False),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False))
        with self.engine.begin() as conn:
            if schema:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            md.create_all(conn)

    def drop(self) -> None:
        """Drop the tables (and the schema, if one was given). For tests."""
        with self.engine.begin() as conn:
            self.campaigns.drop(conn, checkfirst=True)
            self.advertisers.drop(conn, checkfirst=True)
            if self.schema:
                conn.execute(sa.schema.DropSchema(self.schema, cascade=True, if_exists=True))

    # --- advertisers -------------------------------------------------------------------------

    def add_advertiser(self, advertiser: str, name: str) -> str:
        """Register an advertiser; returns its new API key (only its hash is kept)."""
        key = "ak_" + secrets.token_urlsafe(24)
        try:
            with self.engine.begin() as conn:
                conn.execute(self.advertisers.insert().values(
                    id=advertiser, name=name, key_hash=_hash(key), created_at=_now()))
        except sa.exc.IntegrityError:
            raise ConflictError(f"advertiser {advertiser!r} already exists") from None
        return key

    def rotate_key(self, advertiser: str) -> str:
        """A new API key for the advertiser; the old one stops working."""
        key = "ak_" + secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            n = conn.execute(self.advertisers.update().where(
                self.advertisers.c.id == advertiser).values(key_hash=_hash(key))).rowcount
        if not n:
            raise KeyError(advertiser)
        return key

    def advertiser_for_key(self, key: str) -> str | None:
        """The advertiser an API key belongs to, or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(self.advertisers.c.id).where(
                self.advertisers.c.key_hash == _hash(key))).scalar_one_or_none()

    def list_advertisers(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.advertisers.c.id, self.advertisers.c.name)
                                .order_by(self.advertisers.c.id)).all()
        return [(r[0], r[1]) for r in rows]

    # --- campaigns ---------------------------------------------------------------------------

    def put_campaign(self, advertiser: str, campaign_id: str, doc: dict[str, Any], *,
                     expect_version: int | None = None) -> int:
        """Create (``expect_version=None``) or update a campaign; returns its new version.

        Raises :class:`ConflictError` when creating an id that exists, or when the stored
        version is not ``expect_version``; :class:`KeyError` when updating a campaign the
        advertiser does not have.
        """
        c = self.campaigns.c
        text = json.dumps(doc, sort_keys=True, ensure_ascii=False)
        with self.engine.begin() as conn:
            if expect_version is None:
                try:
                    conn.execute(self.campaigns.insert().values(
                        advertiser=advertiser, id=campaign_id, doc=text, version=1,
                        updated_at=_now()))
                except sa.exc.IntegrityError:
                    raise ConflictError(f"campaign {campaign_id!r} already exists, or "
                                        f"advertiser {advertiser!r} is unknown") from None
                return 1
            n = conn.execute(self.campaigns.update().where(
                (c.advertiser == advertiser) & (c.id == campaign_id)
                & (c.version == expect_version)).values(
                doc=text, version=expect_version + 1, updated_at=_now())).rowcount
            if n:
                return expect_version + 1
            found = conn.execute(sa.select(c.version).where(
                (c.advertiser == advertiser) & (c.id == campaign_id))).scalar_one_or_none()
        if found is None:
            raise KeyError(campaign_id)
        raise ConflictError(f"campaign {campaign_id!r} is at version {found}, not "
                            f"{expect_version}: read it again")

    def get_campaign(self, advertiser: str, campaign_id: str) -> tuple[dict, int] | None:
        c = self.campaigns.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(c.doc, c.version).where(
                (c.advertiser == advertiser) & (c.id == campaign_id))).one_or_none()
        return None if row is None else (json.loads(row[0]), row[1])

    def list_campaigns(self, advertiser: str) -> list[tuple[str, dict, int]]:
        """``(id, doc, version)`` of the advertiser's campaigns, by id."""
        c = self.campaigns.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.id, c.doc, c.version).where(
                c.advertiser == advertiser).order_by(c.id)).all()
        return [(r[0], json.loads(r[1]), r[2]) for r in rows]

    def all_campaigns(self) -> list[tuple[str, str, dict, int]]:
        """``(advertiser, id, doc, version)`` of every campaign: for the decision engine."""
        c = self.campaigns.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.advertiser, c.id, c.doc, c.version)
                                .order_by(c.advertiser, c.id)).all()
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def campaigns_stamp(self) -> tuple[int, int, str]:
        """Changes whenever any campaign is created, updated or deleted (count, sum of
        versions, latest update): servers poll it to reload."""
        c = self.campaigns.c
        with self.engine.connect() as conn:
            n, versions, latest = conn.execute(sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(c.version), 0),
                sa.func.max(c.updated_at))).one()
        return int(n), int(versions), str(latest)

    def delete_campaign(self, advertiser: str, campaign_id: str) -> bool:
        c = self.campaigns.c
        with self.engine.begin() as conn:
            return bool(conn.execute(self.campaigns.delete().where(
                (c.advertiser == advertiser) & (c.id == campaign_id))).rowcount)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(conn, _record) -> None:
    cur = conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
