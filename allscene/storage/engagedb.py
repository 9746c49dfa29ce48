"""The engagement store: prize pools, limits, a double-entry ledger, card packs, packaging
codes and contest answers, in SQLite or PostgreSQL (SQLAlchemy Core).

Every claim is **one transaction**, keyed by ``(activity, request_id)``:

1. the request id is looked up first: a request seen before gets its stored result back and
   changes nothing (a retry after a timeout, a replayed claim);
2. the claim's function then runs inside the transaction with a :class:`Tx`: it counts
   limits (:meth:`Tx.limit`), takes from prize pools (:meth:`Tx.take`), posts to the ledger
   (:meth:`Tx.post`) and issues cards (:meth:`Tx.card`);
3. a :class:`Rejected` raised anywhere rolls all of it back (and the rejection is counted by
   reason); otherwise the result is stored with the request and committed.

So a server killed mid-claim leaves either the whole claim or none of it, and two servers
never award one prize twice: pools, limits and balances change only through conditional
``UPDATE ... WHERE taken < size`` / ``n < limit`` / ``balance + amount >= 0`` statements,
which the database serializes per row (PostgreSQL, read committed) or per database (SQLite,
``BEGIN IMMEDIATE``, write-ahead log, so several processes on one machine can share a file).
Deadlocks and serialization failures are retried.

**Ledger.** Balances are integers (cents, or points) in accounts of one unit each; every
posting's amounts sum to zero per unit, so the sum of all balances of a unit is always zero;
an account that may not go negative (a wallet, a budget) refuses a posting that would take it
below zero, and the whole claim is rejected. :meth:`EngagementStore.check_ledger` proves it.

Examples
--------
>>> import tempfile
>>> db = EngagementStore(f"sqlite:///{tempfile.mkdtemp()}/engage.sqlite")
>>> db.create_pool("a1", "envelopes", 2)
>>> fund, wallet = Account("adv:acme", "cents", True), Account("wallet:p1", "cents")
>>> def claim(tx):
...     slot = tx.take("envelopes")
...     if slot is None:
...         raise Rejected("sold_out", "no envelopes left")
...     tx.post([(fund, -150), (wallet, 150)])
...     return {"slot": slot}
>>> db.transact("a1", "r1", claim, person="p1"), db.transact("a1", "r1", claim, person="p1")
(({'seq': 1, 'slot': 0}, False), ({'seq': 1, 'slot': 0}, True))
>>> db.balance("wallet:p1"), db.check_ledger()["balanced"]
(150, True)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


class Rejected(Exception):
    """A claim refused: ``code`` (``limit``, ``sold_out``, ``insufficient``, ...) and why."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


class Account(NamedTuple):
    """A ledger account: its id, its unit (``cents`` or ``points``), whether it may go
    below zero (an advertiser's funding source may; a wallet or a budget may not)."""

    id: str
    unit: str
    may_go_negative: bool = False


class Tx:
    """What one claim may do inside its transaction (see the module docstring)."""

    def __init__(self, store: EngagementStore, conn, activity: str, seq: int,
                 request_id: str, now: dt.datetime):
        self._s, self._c, self.activity, self.seq = store, conn, activity, seq
        self.request_id, self.now = request_id, now
        self._posts = 0

    def limit(self, key: str, limit: int, *, what: str) -> int:
        """Count one more against ``key`` (e.g. ``a1:person:p1:2026-03-02``), at most
        ``limit``; returns the new count, or raises ``Rejected("limit", what)``."""
        q = self._s._q
        self._c.execute(q["counter_new"], {"key": key, "n": 0})
        got = self._c.execute(q["counter_up"], {"k_": key, "lim_": limit}).scalar()
        if got is None:
            raise Rejected("limit", what)
        return got

    def take(self, pool: str) -> int | None:
        """One item of the activity's ``pool``: its slot (0, 1, ... in the order taken),
        or None when the pool is empty."""
        got = self._c.execute(self._s._q["take"], {"a_": self.activity, "p_": pool}).scalar()
        return None if got is None else got - 1

    def post(self, entries: Iterable[tuple[Account, int]], *, memo: str = "") -> None:
        """One balanced posting (amounts sum to zero per unit); ``Rejected("insufficient")``
        when an account that may not go negative would."""
        entries = [(a, int(x)) for a, x in entries if x]
        per_unit: dict[str, int] = {}
        for a, x in entries:
            per_unit[a.unit] = per_unit.get(a.unit, 0) + x
        if any(per_unit.values()):
            raise ValueError(f"unbalanced posting {entries!r}")
        self._posts += 1
        txn = f"{self.activity}/{self.request_id}/{self._posts}"
        q = self._s._q
        for a, x in sorted(entries):  # one order everywhere: no deadlock between claims
            if x < 0 and not a.may_go_negative:  # the account must have it already
                got = self._c.execute(q["debit"], {"id_": a.id, "u_": a.unit, "x_": x}).first()
            else:  # created on first use; one statement
                got = self._c.execute(q["credit"], {
                    "id": a.id, "unit": a.unit, "balance": x,
                    "may_go_negative": a.may_go_negative, "x_": x, "u_": a.unit}).first()
            if got is None:
                raise Rejected("insufficient", f"not enough in {a.id} for {-x} {a.unit}")
        self._c.execute(sa.insert(self._s.postings), [
            {"txn": txn, "account": a.id, "amount": x, "memo": memo[:200], "at": self.now}
            for a, x in entries])

    def balance(self, account: str) -> int:
        """An account's balance as this transaction sees it."""
        a = self._s.accounts
        return self._c.execute(sa.select(a.c.balance).where(a.c.id == account)).scalar() or 0

    def card(self, person: str, prize: str, kind: str, *,
             expires_at: dt.datetime | None = None) -> str:
        """A coupon or goods card in the person's card pack; returns its id."""
        cid = f"cd_{secrets.token_hex(8)}"
        self._c.execute(sa.insert(self._s.cards).values(
            id=cid, activity=self.activity, person=person, prize=prize, kind=kind,
            issued_at=self.now, expires_at=expires_at, request_id=self.request_id))
        return cid

    def use_code(self, code_hash: str, person: str) -> str:
        """Mark a packaging code redeemed: ``"ok"``, ``"used"`` or ``"unknown"``."""
        t = self._s.codes
        n = self._c.execute(sa.update(t).where(
            t.c.activity == self.activity, t.c.hash == code_hash, t.c.redeemed_by.is_(None))
            .values(redeemed_by=person, redeemed_at=self.now)).rowcount
        if n == 1:
            return "ok"
        seen = self._c.execute(sa.select(t.c.hash).where(
            t.c.activity == self.activity, t.c.hash == code_hash)).first()
        return "used" if seen else "unknown"


class EngagementStore:
    """The transactional store of activities' money and prizes.

    Parameters
    ----------
    url
        A SQLAlchemy URL; ``postgresql://`` is read as ``postgresql+psycopg://``.
    schema
        A PostgreSQL schema for the tables (created if missing); tests use one each.
    """

    def __init__(self, url: str, *, schema: str | None = None):
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        self.sqlite = url.startswith("sqlite")
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=True,
                                       **({} if self.sqlite else {"pool_size": 10}))
        if self.sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_connect)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        self._insert = sqlite_insert if self.sqlite else pg_insert
        # SQLite admits one writer; threads of one process queue on a lock rather than
        # poll the database's busy handler (which sleeps in steps of milliseconds).
        self._lock = threading.Lock() if self.sqlite else None
        self.schema = schema
        md = sa.MetaData(schema=schema)
        ts = sa.DateTime(timezone=True)
        self.requests = sa.Table(
            "eng_requests", md,
            sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                      primary_key=True, autoincrement=True),
            sa.Column("activity", sa.String(64), nullable=False),
            sa.Column("request_id", sa.String(100), nullable=False),
            sa.Column("person", sa.String(100)),
            sa.Column("result", sa.Text),
            sa.Column("at", ts, nullable=False),
            sa.UniqueConstraint("activity", "request_id"))
        self.counters = sa.Table(
            "eng_counters", md, sa.Column("key", sa.String(300), primary_key=True),
            sa.Column("n", sa.BigInteger, nullable=False))
        self.pools = sa.Table(
            "eng_pools", md, sa.Column("activity", sa.String(64), primary_key=True),
            sa.Column("pool", sa.String(100), primary_key=True),
            sa.Column("size", sa.BigInteger, nullable=False),
            sa.Column("taken", sa.BigInteger, nullable=False))
        self.accounts = sa.Table(
            "eng_accounts", md, sa.Column("id", sa.String(200), primary_key=True),
            sa.Column("unit", sa.String(16), nullable=False),
            sa.Column("balance", sa.BigInteger, nullable=False),
            sa.Column("may_go_negative", sa.Boolean, nullable=False))
        self.postings = sa.Table(
            "eng_postings", md,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                      primary_key=True, autoincrement=True),
            sa.Column("txn", sa.String(200), nullable=False, index=True),
            sa.Column("account", sa.String(200), nullable=False, index=True),
            sa.Column("amount", sa.BigInteger, nullable=False),
            sa.Column("memo", sa.String(200)), sa.Column("at", ts, nullable=False))
        self.cards = sa.Table(
            "eng_cards", md, sa.Column("id", sa.String(40), primary_key=True),
            sa.Column("activity", sa.String(64), nullable=False),
            sa.Column("person", sa.String(100), nullable=False, index=True),
            sa.Column("prize", sa.String(100), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("issued_at", ts, nullable=False), sa.Column("expires_at", ts),
            sa.Column("redeemed_at", ts), sa.Column("request_id", sa.String(100)))
        self.codes = sa.Table(
            "eng_codes", md, sa.Column("activity", sa.String(64), primary_key=True),
            sa.Column("hash", sa.String(64), primary_key=True),
            sa.Column("redeemed_by", sa.String(100)), sa.Column("redeemed_at", ts))
        self.rejections = sa.Table(
            "eng_rejections", md, sa.Column("activity", sa.String(64), primary_key=True),
            sa.Column("code", sa.String(32), primary_key=True),
            sa.Column("n", sa.BigInteger, nullable=False))
        self.activities = sa.Table(
            "eng_activities", md, sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("advertiser", sa.String(64), nullable=False, index=True),
            sa.Column("doc", sa.Text, nullable=False), sa.Column("at", ts, nullable=False))
        self.secrets = sa.Table(
            "eng_secrets", md, sa.Column("activity", sa.String(64), primary_key=True),
            sa.Column("name", sa.String(32), primary_key=True),
            sa.Column("value", sa.String(200), nullable=False))
        self._q = self._statements()
        with self._begin() as conn:
            if schema:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            md.create_all(conn)

    def _statements(self) -> dict[str, Any]:
        """The claim path's statements, built once (with bound parameters) rather than per
        claim: building a statement costs more than running it on SQLite."""
        t, cnt, pools, acc = self.requests, self.counters, self.pools, self.accounts
        p = sa.bindparam
        return {
            "seen": sa.select(t.c.result, t.c.person).where(
                t.c.activity == p("a_"), t.c.request_id == p("r_")),
            "request": sa.insert(t).returning(t.c.seq),
            "result": sa.update(t).where(t.c.seq == p("s_")).values(result=p("res_")),
            "counter_new": self._insert(cnt).on_conflict_do_nothing(index_elements=["key"]),
            "counter_up": sa.update(cnt).where(cnt.c.key == p("k_"), cnt.c.n < p("lim_"))
            .values(n=cnt.c.n + 1).returning(cnt.c.n),
            "take": sa.update(pools).where(pools.c.activity == p("a_"), pools.c.pool == p("p_"),
                                           pools.c.taken < pools.c.size)
            .values(taken=pools.c.taken + 1).returning(pools.c.taken),
            "debit": sa.update(acc).where(acc.c.id == p("id_"), acc.c.unit == p("u_"),
                                          acc.c.balance + p("x_") >= 0)
            .values(balance=acc.c.balance + p("x_")).returning(acc.c.balance),
            "credit": self._insert(acc).on_conflict_do_update(
                index_elements=["id"], set_={"balance": acc.c.balance + p("x_")},
                where=acc.c.unit == p("u_")).returning(acc.c.balance),
        }

    @contextlib.contextmanager
    def _begin(self):
        if self._lock is None:
            with self.engine.begin() as c:
                yield c
            return
        with self._lock, self.engine.begin() as c:
            yield c

    def drop(self) -> None:
        """Drop the tables (and the schema, if one was given). For tests."""
        with self._begin() as conn:
            for t in reversed(self.requests.metadata.sorted_tables):
                t.drop(conn, checkfirst=True)
            if self.schema:
                conn.execute(sa.schema.DropSchema(self.schema, cascade=True, if_exists=True))
        self.engine.dispose()

    # --- set-up ------------------------------------------------------------------------------

    def create_pool(self, activity: str, pool: str, size: int) -> None:
        """A prize pool of ``size`` items (kept as it is when it exists already)."""
        with self._begin() as c:
            c.execute(self._insert(self.pools).values(activity=activity, pool=pool, size=size,
                                                      taken=0).on_conflict_do_nothing())

    def add_activity(self, advertiser: str, activity: str, doc: dict[str, Any]) -> bool:
        """Keep an activity's document; False when the id is taken (by anyone)."""
        with self._begin() as c:
            return c.execute(self._insert(self.activities).values(
                id=activity, advertiser=advertiser, doc=json.dumps(doc),
                at=dt.datetime.now(dt.UTC)).on_conflict_do_nothing()
                .returning(self.activities.c.id)).first() is not None

    def activity(self, activity: str) -> tuple[str, dict[str, Any]] | None:
        """``(advertiser, document)`` of an activity, or None."""
        t = self.activities
        with self.engine.connect() as c:
            row = c.execute(sa.select(t.c.advertiser, t.c.doc).where(t.c.id == activity)).first()
        return None if row is None else (row.advertiser, json.loads(row.doc))

    def activities_of(self, advertiser: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        t = self.activities
        q = sa.select(t.c.advertiser, t.c.doc).order_by(t.c.id)
        if advertiser is not None:
            q = q.where(t.c.advertiser == advertiser)
        with self.engine.connect() as c:
            return [(r.advertiser, json.loads(r.doc)) for r in c.execute(q)]

    def bump(self, key: str) -> int:
        """Count one more under ``key`` outside any claim (e.g. a guessed code); the count."""
        t = self.counters
        with self._begin() as c:
            c.execute(self._insert(t).values(key=key, n=0)
                      .on_conflict_do_nothing(index_elements=["key"]))
            return c.execute(sa.update(t).where(t.c.key == key).values(n=t.c.n + 1)
                             .returning(t.c.n)).scalar_one()

    def count(self, key: str) -> int:
        with self.engine.connect() as c:
            return c.execute(sa.select(self.counters.c.n)
                             .where(self.counters.c.key == key)).scalar() or 0

    def put_secret(self, activity: str, name: str, value: str) -> str:
        """Keep ``value`` under ``name`` unless one is kept already; returns the kept one."""
        t = self.secrets
        with self._begin() as c:
            c.execute(self._insert(t).values(activity=activity, name=name, value=value)
                      .on_conflict_do_nothing())
            return c.execute(sa.select(t.c.value).where(t.c.activity == activity,
                                                        t.c.name == name)).scalar_one()

    def add_codes(self, activity: str, hashes: Iterable[str], *, batch: int = 50_000) -> int:
        """Register packaging codes (their keyed hashes); returns how many were new."""
        t, rows = self.codes, []
        count = sa.select(sa.func.count()).select_from(t).where(t.c.activity == activity)
        with self._begin() as c:
            before = c.execute(count).scalar()
            for h in hashes:
                rows.append({"activity": activity, "hash": h})
                if len(rows) >= batch:
                    c.execute(self._insert(t).on_conflict_do_nothing(), rows)
                    rows = []
            if rows:
                c.execute(self._insert(t).on_conflict_do_nothing(), rows)
            return c.execute(count).scalar() - before

    # --- claims ------------------------------------------------------------------------------

    def transact(self, activity: str, request_id: str, fn: Callable[[Tx], dict[str, Any]], *,
                 person: str | None = None, now: dt.datetime | None = None,
                 attempts: int = 8) -> tuple[dict[str, Any], bool]:
        """Run a claim once per ``(activity, request_id)``: ``(result, replayed)``.
        ``Rejected`` propagates after the rollback (and is counted)."""
        now = now or dt.datetime.now(dt.UTC)
        for attempt in range(attempts):
            try:
                with self._begin() as c:
                    old = c.execute(self._q["seen"], {"a_": activity, "r_": request_id}).first()
                    if old is not None:
                        if old.person != person:
                            raise Rejected("conflict", "this request id belongs to another "
                                                       "claim: use a new one")
                        return json.loads(old.result), True
                    seq = c.execute(self._q["request"], {
                        "activity": activity, "request_id": request_id, "person": person,
                        "result": "", "at": now}).scalar_one()
                    result = {"seq": seq, **fn(Tx(self, c, activity, seq, request_id, now))}
                    c.execute(self._q["result"], {"s_": seq, "res_": json.dumps(result)})
                    return result, False
            except Rejected as r:
                self._count_rejection(activity, r.code)
                raise
            except sa.exc.IntegrityError:
                continue  # the same request id committed meanwhile: read its result
            except sa.exc.OperationalError as exc:
                if not _retryable(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.002 * (attempt + 1))
        raise RuntimeError(f"claim {activity}/{request_id} did not settle")

    def _count_rejection(self, activity: str, code: str) -> None:
        t = self.rejections
        with self._begin() as c:
            c.execute(self._insert(t).values(activity=activity, code=code, n=0)
                      .on_conflict_do_nothing())
            c.execute(sa.update(t).where(t.c.activity == activity, t.c.code == code)
                      .values(n=t.c.n + 1))

    def redeem_card(self, card_id: str, person: str, *, now: dt.datetime | None = None
                    ) -> dict[str, Any]:
        """Use a coupon once: the card, or ``Rejected`` (unknown, used, expired)."""
        now = now or dt.datetime.now(dt.UTC)
        t = self.cards
        with self._begin() as c:
            row = c.execute(sa.select(t).where(t.c.id == card_id, t.c.person == person)
                            ).mappings().first()
            if row is None:
                raise Rejected("unknown", f"no card {card_id!r} in this card pack")
            if row["redeemed_at"] is not None:
                raise Rejected("used", "this coupon was used already")
            exp = _aware(row["expires_at"])
            if exp is not None and exp <= now:
                raise Rejected("expired", f"this coupon expired at {exp.isoformat()}")
            if c.execute(sa.update(t).where(t.c.id == card_id, t.c.redeemed_at.is_(None))
                         .values(redeemed_at=now)).rowcount != 1:
                raise Rejected("used", "this coupon was used already")
            return _card(dict(row) | {"redeemed_at": now})

    # --- reads -------------------------------------------------------------------------------

    def balance(self, account: str) -> int:
        with self.engine.connect() as c:
            return c.execute(sa.select(self.accounts.c.balance)
                             .where(self.accounts.c.id == account)).scalar() or 0

    def cards_of(self, person: str) -> list[dict[str, Any]]:
        t = self.cards
        with self.engine.connect() as c:
            rows = c.execute(sa.select(t).where(t.c.person == person)
                             .order_by(t.c.issued_at, t.c.id)).mappings().all()
        return [_card(dict(r)) for r in rows]

    def pools_of(self, activity: str) -> dict[str, tuple[int, int]]:
        """``{pool: (size, taken)}``."""
        t = self.pools
        with self.engine.connect() as c:
            return {r.pool: (r.size, r.taken) for r in c.execute(
                sa.select(t).where(t.c.activity == activity))}

    def requests_of(self, activity: str) -> list[dict[str, Any]]:
        """Every settled claim of an activity in sequence order: ``seq``, ``request_id``,
        ``person``, ``at`` and the stored result."""
        t = self.requests
        with self.engine.connect() as c:
            rows = c.execute(sa.select(t).where(t.c.activity == activity, t.c.result != "")
                             .order_by(t.c.seq)).all()
        return [{"seq": r.seq, "request_id": r.request_id, "person": r.person,
                 "at": _aware(r.at), **json.loads(r.result)} for r in rows]

    def rejections_of(self, activity: str) -> dict[str, int]:
        t = self.rejections
        with self.engine.connect() as c:
            return {r.code: r.n for r in c.execute(sa.select(t).where(t.c.activity == activity))}

    def postings_total(self, account: str) -> int:
        """The sum of an account's postings (its balance, recomputed)."""
        p = self.postings
        with self.engine.connect() as c:
            return int(c.execute(sa.select(sa.func.coalesce(sa.func.sum(p.c.amount), 0))
                                 .where(p.c.account == account)).scalar())

    def check_ledger(self) -> dict[str, Any]:
        """Whether the books balance: per unit, all balances sum to zero; every balance
        equals the sum of its postings; every posting sums to zero; no account that may not
        go negative is."""
        a, p = self.accounts, self.postings
        with self.engine.connect() as c:
            units = {r.unit: int(r.total) for r in c.execute(
                sa.select(a.c.unit, sa.func.sum(a.c.balance).label("total")).group_by(a.c.unit))}
            sums = sa.select(p.c.account, sa.func.sum(p.c.amount).label("s")) \
                .group_by(p.c.account).subquery()
            drift = c.execute(sa.select(sa.func.count()).select_from(
                a.outerjoin(sums, sums.c.account == a.c.id)).where(
                a.c.balance != sa.func.coalesce(sums.c.s, 0))).scalar()
            # Per transaction and unit (a posting may move cents and points together).
            per_txn = sa.select(p.c.txn, a.c.unit, sa.func.sum(p.c.amount).label("s")) \
                .select_from(p.join(a, a.c.id == p.c.account)) \
                .group_by(p.c.txn, a.c.unit).subquery()
            open_txns = c.execute(sa.select(sa.func.count()).select_from(per_txn)
                                  .where(per_txn.c.s != 0)).scalar()
            negative = c.execute(sa.select(sa.func.count()).select_from(a).where(
                ~a.c.may_go_negative, a.c.balance < 0)).scalar()
        ok = not any(units.values()) and not drift and not open_txns and not negative
        return {"balanced": ok, "unit_totals": units, "accounts_off_their_postings": drift,
                "unbalanced_postings": open_txns, "negative_accounts": negative}


def _card(row: dict[str, Any]) -> dict[str, Any]:
    return {str(k): (_aware(v).isoformat() if isinstance(v, dt.datetime) else v)
            for k, v in row.items()}  # str(): SQLAlchemy's keys are a str subclass


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; they were stored as UTC."""
    return t.replace(tzinfo=dt.UTC) if t is not None and t.tzinfo is None else t


def _retryable(exc: sa.exc.OperationalError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "database is locked" in str(exc.orig)


def _sqlite_connect(conn, _record) -> None:
    conn.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN IMMEDIATE
    cur = conn.cursor()
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
