"""The engagement engine: runs activities (:mod:`~.activity`) over the transactional store.

Every way of taking part — play, draw, envelope, coupon, code, badge, answer — is one claim
of :class:`~allscene.storage.engagedb.EngagementStore`: idempotent by request id, all or
nothing, limits counted in the same transaction, money and points moved as balanced
postings. What this module adds is the rules of each mechanic, who may take part, and the
events that let measurement count participation like any campaign.

Accounts (cents or points):

* ``adv:<advertiser>:funding`` (may go negative) funds ``act:<id>:budget`` when an activity
  is created (cash prizes and envelopes); a claim moves cash from the budget to
  ``wallet:<person>``. The budget cannot go negative, so cash is never overpaid.
* ``act:<id>:points_issued`` (may go negative) credits ``pts:<id>:<person>``; a draw that
  costs points moves them to ``act:<id>:points_spent``. A person's points never go negative.

Draws: the outcome is :func:`~.draws.draw_u` of the activity's secret seed and the request
id, committed to (SHA-256) when the activity is created and revealed after it ends; draws
are numbered under a lock on the activity's draw counter, so the number order is the order
in which prizes were taken, which is the order :func:`~.draws.replay` re-runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from allscene.engagement import accounts, codes, draws, envelopes
from allscene.engagement.activity import Activity, Limits, Prize
from allscene.engagement.mixins import Challenges, Reading
from allscene.storage.engagedb import EngagementStore, Rejected, Tx

LOCAL = dt.timezone(dt.timedelta(hours=8))
_STATUS = {"sold_out": 409, "used": 409, "conflict": 409, "limit": 429, "unknown": 404}
"""The HTTP status of a refused claim, by reason (else 422)."""


class EngagementError(ValueError):
    """Bad input (unknown activity, an ended one, a malformed code...): a 4xx with reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Who:
    """Who takes part: the person (or ``device-<id>`` when the graph does not know the
    device), the device and the address the request came from."""

    person: str
    device_id: str
    device_type: str = "phone"
    ip: str | None = None
    known: bool = True
    opted_out: bool = False
    audiences: Any = frozenset()
    scenes: frozenset[str] = frozenset()


class Engagement(Challenges, Reading):
    """Creates and runs activities.

    Parameters
    ----------
    store
        The transactional store.
    code_key
        Key of the packaging codes' hashes (the store never holds a code itself).
    emit
        Receives the ``engagement`` events of every claim (the event log's journal).
    velocity
        Online state with ``hit(key, limit, window_s, now)``, shared by server processes
        (Redis), for per-address limits per minute; counted in the store when None.
    reload_s
        How long :meth:`show` trusts its list of activities before reading the store again
        (activities do not change once created; one another process creates shows within
        ``reload_s``, one this engine creates at once).
    """

    def __init__(self, store: EngagementStore, *, code_key: bytes,
                 emit: Callable[[list[dict[str, Any]]], None] | None = None, velocity=None,
                 reload_s: float = 2.0):
        self.store, self.code_key, self.velocity = store, code_key, velocity
        self.emit = emit or (lambda events: None)
        self.reload_s = reload_s
        self._known: dict[str, tuple[str, Activity]] = {}
        self._listed: tuple[float, list[tuple[Activity, dict[str, Any]]]] | None = None

    # --- activities --------------------------------------------------------------------------

    def create(self, advertiser: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Validate and keep an activity, set up its prize pools, fund its budget, draw its
        secret seed; returns the public document with the seed's ``commitment``."""
        doc = dict(doc)
        if doc.setdefault("advertiser", advertiser) != advertiser:
            raise EngagementError(422, "advertiser: an activity is created by its advertiser")
        try:
            a = Activity.model_validate(doc)
        except ValidationError as exc:
            raise EngagementError(422, _why(exc)) from None
        if a.lottery:
            try:
                draws.Odds.of(a.lottery.odds)
            except ValueError as exc:
                raise EngagementError(422, f"lottery.odds: {exc}") from None
            others = set(a.coupons.prizes if a.coupons else ())
            others |= set(a.badges.rewards.values() if a.badges else ())
            others |= {a.contest.prize} if a.contest else set()
            shared = set(a.lottery.odds) & others
            if shared:
                raise EngagementError(422, f"prizes {sorted(shared)} are in the lottery and "
                                           "another mechanic: a draw's prizes are its own")
        if not self.store.add_activity(advertiser, a.id, a.model_dump(mode="json")):
            raise EngagementError(409, f"activity {a.id!r} exists already")
        self._listed = None
        for p in a.prizes:
            self.store.create_pool(a.id, f"prize:{p.id}", p.quantity)
        if a.envelopes:
            self.store.create_pool(a.id, "envelopes", a.envelopes.count)
        seed = self.store.put_secret(a.id, "seed", draws.new_seed().hex())
        cash = a.budget_cents + (a.envelopes.budget_cents if a.envelopes else 0)
        if cash:
            self.store.transact(a.id, "setup:funding", lambda tx: tx.post(
                [(accounts.funding(advertiser), -cash), (accounts.budget(a.id), cash)], memo="budget") or {})
        return a.public() | {"commitment": draws.commitment(bytes.fromhex(seed))}

    def activity(self, activity_id: str, *, advertiser: str | None = None) -> Activity:
        """An activity; 404 when unknown (or another advertiser's, when ``advertiser``)."""
        got = self._known.get(activity_id)
        if got is None:
            row = self.store.activity(activity_id)
            if row is not None:  # an activity does not change once created
                got = self._known[activity_id] = (row[0], _parse(row[1]))
        if got is None or (advertiser is not None and got[0] != advertiser):
            raise EngagementError(404, f"no activity {activity_id!r}")
        return got[1]

    def show(self, placement: str, who: Who, now: dt.datetime) -> list[dict[str, Any]]:
        """The live activities this person may join at an entry point (and a ``show`` event
        for each)."""
        out = []
        for a, public in self._listing():
            if placement in a.entry_points and a.live(now) and _eligible(a, who):
                out.append(dict(public))
                self._event(a, who, now, "show")
        return out

    def _listing(self) -> list[tuple[Activity, dict[str, Any]]]:
        """Every activity and its public document, read again after ``reload_s``."""
        t = time.monotonic()
        if self._listed is None or t - self._listed[0] >= self.reload_s:
            acts = [_parse(doc) for _, doc in self.store.activities_of()]
            self._listed = (t, [(a, a.public()) for a in acts])
        return self._listed[1]

    # --- mechanics ---------------------------------------------------------------------------

    def play(self, activity_id: str, who: Who, action: str, request_id: str,
             now: dt.datetime) -> dict[str, Any]:
        """Points for an action in the activity's game or app."""
        a = self._open(activity_id, who, now)
        if not a.points or action not in a.points.actions:
            raise EngagementError(422, f"action: {action!r} earns no points here (known: "
                                       f"{', '.join(a.points.actions) if a.points else 'none'})")
        pts = a.points.actions[action]

        def claim(tx: Tx) -> dict[str, Any]:
            self._limits(tx, a, "play", a.points.limits, who, now)
            tx.post([(accounts.issued(a.id), -pts), (accounts.points(a.id, who.person), pts)], memo=action)
            return {"action": "play", "points": pts,
                    "points_balance": tx.balance(accounts.points(a.id, who.person).id)}
        return self._claim(a, who, request_id, now, claim, "play")

    def draw(self, activity_id: str, who: Who, request_id: str, now: dt.datetime
             ) -> dict[str, Any]:
        """One lottery draw (paid with points when it costs any)."""
        a = self._open(activity_id, who, now)
        if not a.lottery:
            raise EngagementError(422, f"activity {a.id!r} has no lottery")
        picked = draws.pick(self._odds(a.id), draws.draw_u(self._seed(a.id), a.id, request_id))
        cost = a.lottery.cost_points

        def claim(tx: Tx) -> dict[str, Any]:
            number = tx.limit(f"{a.id}:draws", 2**62, what="draws")  # numbered under a lock
            self._limits(tx, a, "draw", a.lottery.limits, who, now)
            if cost:
                tx.post([(accounts.points(a.id, who.person), -cost), (accounts.spent(a.id), cost)], memo="draw")
            got = picked if picked and tx.take(f"prize:{picked}") is not None else None
            out = {"action": "draw", "draw": number, "prize": got, "points": -cost,
                   "sold_out": picked is not None and got is None}
            return out | (self._award(tx, a, a.prize(got), who, now) if got else {})
        return self._claim(a, who, request_id, now, claim, "draw")

    def envelope(self, activity_id: str, who: Who, request_id: str, now: dt.datetime
                 ) -> dict[str, Any]:
        """Open the next red envelope: its cash goes to the wallet."""
        a = self._open(activity_id, who, now)
        if not a.envelopes:
            raise EngagementError(422, f"activity {a.id!r} has no red envelopes")
        amounts = self._amounts(a.id)

        def claim(tx: Tx) -> dict[str, Any]:
            self._limits(tx, a, "envelope", a.envelopes.limits, who, now)
            slot = tx.take("envelopes")
            if slot is None:
                raise Rejected("sold_out", "every envelope has been opened")
            cents = amounts[slot]
            tx.post([(accounts.budget(a.id), -cents), (accounts.wallet(who.person), cents)], memo="envelope")
            return {"action": "envelope", "envelope": slot, "amount_cents": cents}
        return self._claim(a, who, request_id, now, claim, "envelope")

    def coupon(self, activity_id: str, who: Who, prize_id: str, request_id: str,
               now: dt.datetime) -> dict[str, Any]:
        """Claim a coupon into the card pack."""
        a = self._open(activity_id, who, now)
        if not a.coupons or prize_id not in a.coupons.prizes:
            raise EngagementError(422, f"prize: {prize_id!r} is not a coupon one can claim here")

        def claim(tx: Tx) -> dict[str, Any]:
            self._limits(tx, a, "coupon", a.coupons.limits, who, now)
            if tx.take(f"prize:{prize_id}") is None:
                raise Rejected("sold_out", f"no {prize_id} coupons left")
            return {"action": "coupon", "prize": prize_id} | self._award(
                tx, a, a.prize(prize_id), who, now)
        return self._claim(a, who, request_id, now, claim, "coupon")

    def redeem_card(self, who: Who, card_id: str, now: dt.datetime) -> dict[str, Any]:
        """Use a coupon of one's card pack, once, before it expires."""
        try:
            card = self.store.redeem_card(card_id, who.person, now=now)
        except Rejected as r:
            raise EngagementError(404 if r.code == "unknown" else 409, r.reason) from None
        a = self.activity(card["activity"])
        self._event(a, who, now, "redeem", prize_id=card["prize"])
        return card

    def code(self, activity_id: str, who: Who, text: str, request_id: str,
             now: dt.datetime) -> dict[str, Any]:
        """Redeem a packaging code for points: once per code; unknown codes count as
        guesses, and too many in a day stop the person until the next."""
        a = self._open(activity_id, who, now)
        if not a.codes:
            raise EngagementError(422, f"activity {a.id!r} has no packaging codes")
        try:
            h = codes.code_hash(codes.check(text), self.code_key)
        except codes.CodeError as exc:
            raise EngagementError(422, f"code: {exc}") from None
        guesses = f"{a.id}:guesses:{who.person}:{_day(now)}"
        if self.store.count(guesses) >= a.codes.guesses_per_day:
            raise EngagementError(429, "too many unknown codes today: try again tomorrow")
        pts = a.codes.points

        def claim(tx: Tx) -> dict[str, Any]:
            state = tx.use_code(h, who.person)
            if state != "ok":
                raise Rejected(state, "this code was redeemed already" if state == "used"
                               else "no such code")
            tx.post([(accounts.issued(a.id), -pts), (accounts.points(a.id, who.person), pts)], memo="code")
            return {"action": "code", "points": pts,
                    "points_balance": tx.balance(accounts.points(a.id, who.person).id)}
        try:
            return self._claim(a, who, request_id, now, claim, "code")
        except EngagementError as exc:
            if exc.reason == "no such code":
                self.store.bump(guesses)
                self.store.bump(f"{a.id}:guesses")
            raise

    def generate_codes(self, advertiser: str, activity_id: str, n: int | None = None
                       ) -> list[str]:
        """Make the activity's packaging codes (for the printer; only their hashes are
        kept). Returns the codes."""
        a = self.activity(activity_id, advertiser=advertiser)
        if not a.codes:
            raise EngagementError(422, f"activity {a.id!r} has no packaging codes")
        made = codes.generate(n or a.codes.count)
        self.store.add_codes(a.id, (codes.code_hash(c, self.code_key) for c in made))
        return made

    # --- the claim ---------------------------------------------------------------------------

    def _claim(self, a: Activity, who: Who, request_id: str, now: dt.datetime,
               fn: Callable[[Tx], dict[str, Any]], action: str) -> dict[str, Any]:
        if not request_id or len(request_id) > 100:
            raise EngagementError(422, "request_id: 1 to 100 characters")
        try:
            result, replayed = self.store.transact(a.id, request_id, fn, person=who.person,
                                                   now=now)
        except Rejected as r:
            self._event(a, who, now, action, reason=f"{r.code}: {r.reason}"[:512],
                        request_id=request_id)
            raise EngagementError(_STATUS.get(r.code, 422), r.reason) from None
        if not replayed:
            self._event(a, who, now, result["action"], request_id=request_id,
                        prize_id=result.get("prize"),
                        amount=result.get("amount_cents", 0) / 100 or None,
                        points=result.get("points") or None)
        return result | {"replayed": replayed}

    def _open(self, activity_id: str, who: Who, now: dt.datetime) -> Activity:
        a = self.activity(activity_id)
        if now < a.start:
            raise EngagementError(409, f"activity {a.id!r} starts at {a.start.isoformat()}")
        if now >= a.end:
            raise EngagementError(410, f"activity {a.id!r} ended at {a.end.isoformat()}")
        if not _eligible(a, who):
            raise EngagementError(403, f"activity {a.id!r} is not open to this person")
        return a

    def _limits(self, tx: Tx, a: Activity, what: str, lim: Limits, who: Who,
                now: dt.datetime) -> None:
        day, k = _day(now), f"{a.id}:{what}"
        if lim.per_person:
            tx.limit(f"{k}:p:{who.person}", lim.per_person,
                     what=f"at most {lim.per_person} per person")
        if lim.per_person_per_day:
            tx.limit(f"{k}:p:{who.person}:{day}", lim.per_person_per_day,
                     what=f"at most {lim.per_person_per_day} per person a day")
        if lim.per_device_per_day:
            tx.limit(f"{k}:d:{who.device_id}:{day}", lim.per_device_per_day,
                     what=f"at most {lim.per_device_per_day} per device a day")
        if who.ip and lim.per_ip_per_day:
            tx.limit(f"{k}:ip:{who.ip}:{day}", lim.per_ip_per_day,
                     what=f"at most {lim.per_ip_per_day} per address a day")
        if who.ip and lim.per_ip_per_minute:
            why = f"at most {lim.per_ip_per_minute} per address a minute"
            if self.velocity is not None:
                if not self.velocity.hit(f"{k}:ip:{who.ip}", lim.per_ip_per_minute, 60,
                                         now.timestamp()):
                    raise Rejected("limit", why)
            else:
                tx.limit(f"{k}:ip:{who.ip}:{int(now.timestamp() // 60)}",
                         lim.per_ip_per_minute, what=why)

    def _award(self, tx: Tx, a: Activity, p: Prize, who: Who, now: dt.datetime
               ) -> dict[str, Any]:
        if p.kind == "cash":
            tx.post([(accounts.budget(a.id), -p.amount_cents), (accounts.wallet(who.person), p.amount_cents)],
                    memo=p.id)
            return {"amount_cents": p.amount_cents}
        if p.kind == "points":
            tx.post([(accounts.issued(a.id), -p.points), (accounts.points(a.id, who.person), p.points)],
                    memo=p.id)
            return {"points_won": p.points}
        expires = now + dt.timedelta(days=p.valid_days) if p.valid_days else None
        return {"card": tx.card(who.person, p.id, p.kind, expires_at=expires)}

    def _event(self, a: Activity, who: Who, now: dt.datetime, action: str,
               **fields: Any) -> None:
        e = {"event_id": f"eng-{a.id}-{action}-{fields.get('request_id') or now.timestamp()}"
                         f"-{who.device_id}", "ts": now.isoformat(), "kind": "engagement",
             "device_id": who.device_id, "device_type": who.device_type,
             "activity_id": a.id, "advertiser_id": a.advertiser, "action": action}
        if who.known:
            e["account_id"] = who.person
        e |= {k: v for k, v in fields.items() if v is not None}
        self.emit([e])

    # --- per-activity constants --------------------------------------------------------------

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - the service lives as long as the app
    def _seed(self, activity_id: str) -> bytes:
        return bytes.fromhex(self.store.put_secret(activity_id, "seed", draws.new_seed().hex()))

    @functools.lru_cache(maxsize=1024)  # noqa: B019
    def _odds(self, activity_id: str) -> draws.Odds:
        return draws.Odds.of(self.activity(activity_id).lottery.odds)

    @functools.lru_cache(maxsize=64)  # noqa: B019
    def _amounts(self, activity_id: str) -> list[int]:
        e = self.activity(activity_id).envelopes
        return envelopes.split(e.budget_cents, e.count, self._seed(activity_id) + b"envelopes",
                               min_cents=e.min_cents)


def build_engagement(settings, ads) -> Engagement:
    """The engine for ``settings``: its tables beside the configuration (SQLite, or
    ``config_url``), per-address velocity in Redis when ``redis_url`` is set, the codes'
    hash key derived from the tracking secret, events into the ad server's journal."""
    from allscene.storage.online import RedisState

    velocity = RedisState(settings.redis_url, prefix=settings.redis_prefix) \
        if settings.redis_url else None
    return Engagement(EngagementStore(settings.config_db), code_key=code_key(settings),
                      emit=ads.adlog.write if ads is not None else None, velocity=velocity)


def code_key(settings) -> bytes:
    """The key of the packaging codes' hashes, derived from the tracking secret."""
    import hashlib

    return hashlib.sha256(b"allscene codes\n" + settings.tracking_secret()).digest()


@functools.lru_cache(maxsize=1024)
def _parse_json(doc: str) -> Activity:
    return Activity.model_validate_json(doc)


def _parse(doc: Mapping[str, Any]) -> Activity:
    import json
    return _parse_json(json.dumps(doc, sort_keys=True))


def _why(exc: ValidationError) -> str:
    """A validation error as one line naming each field: ``envelopes.count: ...``."""
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'activity'}: "
                     f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())


def _eligible(a: Activity, who: Who) -> bool:
    if a.who == "everyone":
        return True
    if who.opted_out or not who.known:
        return False
    kind, _, name = a.who.partition(":")
    if kind == "audience":
        return (a.advertiser, name) in who.audiences
    return name in who.scenes


def _day(now: dt.datetime) -> str:
    return now.astimezone(LOCAL).date().isoformat()
