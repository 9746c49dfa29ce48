"""The parts of :class:`~allscene.engagement.service.Engagement` that read more than they
claim: contests and badge challenges (which rank or count before they award), and the
figures, wallets, draw logs and reveals."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from allscene.engagement import accounts, badges, draws
from allscene.storage.engagedb import Rejected, Tx

if TYPE_CHECKING:
    from allscene.engagement.service import Who


class Challenges:
    """Contests and badge challenges (mixed into ``Engagement``)."""

    def answer(self, activity_id: str, who: Who, text: str, request_id: str,
               now: dt.datetime) -> dict[str, Any]:
        """A contest answer, received now (the server's clock): one per person. Answers
        after the close are kept, marked late, and never win."""
        a = self._open(activity_id, who, now)
        if not a.contest:
            raise _err(422, f"activity {a.id!r} has no contest")
        text = " ".join(str(text).split())
        if not text or len(text) > 200:
            raise _err(422, "answer: 1 to 200 characters")
        correct = text.casefold() == " ".join(a.contest.answer.split()).casefold()
        late = now >= a.contest.closes_at

        def claim(tx: Tx) -> dict[str, Any]:
            tx.limit(f"{a.id}:answer:p:{who.person}", 1, what="one answer per person")
            return {"action": "answer", "received_at": now.isoformat(), "late": late,
                    "correct": correct}
        out = self._claim(a, who, request_id, now, claim, "answer")
        return {k: v for k, v in out.items() if k != "correct"}  # told when the contest closes

    def close_contest(self, activity_id: str, now: dt.datetime, *,
                      advertiser: str | None = None) -> list[dict[str, Any]]:
        """After the close: the first ``winners`` correct answers by server receive time
        (ties in the same microsecond by the order the store took them) win the prize.
        Running it again awards nothing more."""
        a = self.activity(activity_id, advertiser=advertiser)
        if not a.contest:
            raise _err(422, f"activity {a.id!r} has no contest")
        if now < a.contest.closes_at:
            raise _err(409, f"the contest closes at {a.contest.closes_at}")
        answers = [r for r in self.store.requests_of(a.id)
                   if r.get("action") == "answer" and r["correct"] and not r["late"]]
        answers.sort(key=lambda r: (dt.datetime.fromisoformat(r["received_at"]), r["seq"]))
        out = []
        for rank, r in enumerate(answers[:a.contest.winners], 1):
            who = _who(r["person"], device_id=r["person"], known=True)
            prize = a.prize(a.contest.prize)

            def claim(tx: Tx, r=r, rank=rank, who=who, prize=prize) -> dict[str, Any]:
                if tx.take(f"prize:{prize.id}") is None:
                    raise Rejected("sold_out", f"no {prize.id} left for rank {rank}")
                return {"action": "win", "rank": rank, "prize": prize.id,
                        "answer_seq": r["seq"]} | self._award(tx, a, prize, who, now)
            out.append(self._claim(a, who, f"win:{r['seq']}", now, claim, "win")
                       | {"person": r["person"], "received_at": r["received_at"]})
        return out

    def workouts(self, activity_id: str, who: Who, runs: list[badges.Workout],
                 now: dt.datetime) -> dict[str, Any]:
        """Light the badges a person's workouts beat; each badge counts once, and holding
        the number of badges a reward names awards its prize (while any is left)."""
        a = self._open(activity_id, who, now)
        if not a.badges:
            raise _err(422, f"activity {a.id!r} has no badge challenge")
        ev = badges.evaluate(a.badges, [badges.Workout(who.person, w.distance_m, w.duration_s,
                                                       w.ts) for w in runs])
        lit = []
        for badge in a.badges.names:  # easiest first, so rewards come in order
            if badge not in ev.badges.get(who.person, ()):
                continue

            def claim(tx: Tx, badge=badge) -> dict[str, Any]:
                n = tx.limit(f"{a.id}:badges:{who.person}", len(a.badges.badges),
                             what="every badge is lit")
                out = {"action": "badge", "badge": badge, "badges_held": n}
                reward = a.badges.rewards.get(n)
                if reward and tx.take(f"prize:{reward}") is not None:
                    out |= {"prize": reward} | self._award(tx, a, a.prize(reward), who, now)
                return out
            lit.append(self._claim(a, who, f"badge:{badge}:{who.person}", now, claim, "badge"))
        return {"lit": [r for r in lit if not r["replayed"]],
                "held": [r["badge"] for r in lit],
                "not_counted": [{"distance_m": x.workout.distance_m,
                                 "duration_s": x.workout.duration_s, "reason": x.reason}
                                for x in ev.rejected + ev.ignored]}



class Reading:
    """What participants and advertisers read (mixed into ``Engagement``)."""

    def wallet(self, who: Who) -> dict[str, Any]:
        """A person's cash (cents), points per activity, and card pack."""
        points = {}
        for _, doc in self.store.activities_of():
            n = self.store.balance(accounts.points(doc["id"], who.person).id)
            if n:
                points[doc["id"]] = n
        return {"person": who.person if who.known else None,
                "cash_cents": self.store.balance(accounts.wallet(who.person).id),
                "points": points, "cards": self.store.cards_of(who.person)}

    def figures(self, advertiser: str, activity_id: str) -> dict[str, Any]:
        """An activity's live figures for its advertiser."""
        a = self.activity(activity_id, advertiser=advertiser)
        reqs = [r for r in self.store.requests_of(a.id) if not r["request_id"].startswith(
            "setup:")]
        by_action: dict[str, int] = {}
        for r in reqs:
            by_action[r["action"]] = by_action.get(r["action"], 0) + 1
        pools = self.store.pools_of(a.id)
        funded = a.budget_cents + (a.envelopes.budget_cents if a.envelopes else 0)
        paid = funded - self.store.balance(accounts.budget(a.id).id)
        won = {p.id: pools.get(f"prize:{p.id}", (0, 0))[1] for p in a.prizes}
        return {"activity": a.id, "live": a.live(dt.datetime.now(dt.UTC)),
                "participants": len({r["person"] for r in reqs}), "by_action": by_action,
                "draws": by_action.get("draw", 0),
                "prizes": {p.id: {"quantity": p.quantity, "awarded": won[p.id],
                                  "left": p.quantity - won[p.id]} for p in a.prizes},
                "envelopes": None if not a.envelopes else {
                    "count": a.envelopes.count, "opened": pools["envelopes"][1]},
                "cash_paid_cents": paid, "cash_left_cents": funded - paid,
                "coupon_face_cents": sum(won[p.id] * p.face_cents for p in a.prizes),
                "points_issued": -self.store.balance(accounts.issued(a.id).id),
                "points_spent": self.store.balance(accounts.spent(a.id).id),
                "guessed_codes": self.store.count(f"{a.id}:guesses"),
                "rejections": self.store.rejections_of(a.id)}

    def draw_log(self, advertiser: str, activity_id: str) -> list[dict[str, Any]]:
        """Every draw in the order prizes were taken: ``seq`` (the draw number),
        ``draw_id`` (the request id the outcome was drawn for) and ``prize``."""
        a = self.activity(activity_id, advertiser=advertiser)
        return [{"seq": r["draw"], "draw_id": r["request_id"], "prize": r["prize"]}
                for r in sorted((r for r in self.store.requests_of(a.id)
                                 if r.get("action") == "draw"), key=lambda r: r["draw"])]

    def reveal(self, advertiser: str, activity_id: str, now: dt.datetime) -> dict[str, Any]:
        """The lottery's seed, once the activity has ended (never before)."""
        a = self.activity(activity_id, advertiser=advertiser)
        if now < a.end:
            raise _err(409, f"the seed is revealed after the end, {a.end}")
        seed = self._seed(a.id)
        return {"activity": a.id, "seed": seed.hex(), "commitment": draws.commitment(seed),
                "odds": a.lottery.odds if a.lottery else None,
                "inventory": {p: a.prize(p).quantity for p in a.lottery.odds}
                if a.lottery else None}



def _err(status: int, reason: str) -> Exception:
    from allscene.engagement.service import EngagementError
    return EngagementError(status, reason)


def _who(person: str, **kw: Any) -> Who:
    from allscene.engagement.service import Who
    return Who(person, **kw)
