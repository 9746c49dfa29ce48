"""The auditable lottery: commit-reveal draws anyone can re-run from the log.

Before the activity starts the operator draws a secret seed (:func:`new_seed`) and publishes
its :func:`commitment` (the SHA-256 of the seed, hex) together with the odds and the prize
inventory. After the activity ends it reveals the seed; anyone checks it against the
commitment (:func:`check_reveal`) and re-runs every draw in the log (:func:`replay`, or the
command ``allscene audit-draws``, :mod:`allscene.engagement.cli_audit`).

The rules an auditor re-runs
----------------------------
1. **The draw's number.** ``u = HMAC-SHA256(key=seed, msg=f"{activity_id}\\n{draw_id}")``,
   its first 8 bytes read big-endian, shifted right by 11: an integer uniform on
   ``[0, 2**53)`` (:func:`draw_u`). The activity id may not contain a newline, so the
   message is unambiguous. Until the seed is revealed no one but the operator can compute a
   draw's number, and the operator cannot change the seed after publishing its commitment.
2. **The odds** (:class:`Odds`) are laid out once as integer thresholds out of ``2**53``:
   prizes in **sorted order of their ids** (so the layout does not depend on how a JSON map
   was ordered), each cumulative probability ``S`` becoming ``round(S * 2**53)`` computed
   on exact fractions (a float is read as the decimal it prints as: ``0.1`` is 1/10). A
   draw wins the prize whose interval ``[lo, hi)`` holds ``u``; ``u`` at or beyond the last
   threshold wins nothing (:func:`pick`). Integers only: no float drift between machines.
3. **Inventory.** Draws are applied in the order the store recorded them (their sequence
   number ``seq``). When the picked prize has none left, the draw wins nothing ("sold
   out"); there is no re-draw. A prize absent from the inventory map is unlimited
   (:func:`award`).

``draw_id`` should be an id the operator does not choose freely (the client's request id,
or the person and their n-th draw); the log's draw ids must be unique (:class:`Audit`
reports repeats).

>>> seed = bytes(32)
>>> odds = Odds.of({"bali_trip": 0.0001, "ticket_coupon": 0.05})
>>> check_reveal(seed, commitment(seed))
True
>>> u = draw_u(seed, "qunar-lockscreen", "req-1")
>>> pick(odds, u) == pick(odds, draw_u(seed, "qunar-lockscreen", "req-1"))
True
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import math
import secrets
from bisect import bisect_right
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

SCALE = 2**53
"""Draw numbers are integers on ``[0, SCALE)``; odds are integer thresholds out of it."""

SEED_BYTES = 32


class DrawLogError(ValueError):
    """A draw log cannot be read; the message names the file, line and column."""


def new_seed() -> bytes:
    """A fresh secret seed: 32 bytes from :mod:`secrets`.

    >>> len(new_seed()), new_seed() != new_seed()
    (32, True)
    """
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    """The published commitment to ``seed``: its SHA-256, lowercase hex.

    >>> commitment(bytes(32))
    '66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925'
    """
    if not isinstance(seed, bytes | bytearray) or not seed:
        raise ValueError("seed: expected non-empty bytes")
    return hashlib.sha256(seed).hexdigest()


def check_reveal(seed: bytes, commitment_hex: str) -> bool:
    """Whether the revealed ``seed`` is the one committed to (hex, any case; constant time).

    >>> check_reveal(bytes(32), commitment(bytes(32)).upper()), check_reveal(b"x", "00")
    (True, False)
    """
    return hmac.compare_digest(commitment(seed), commitment_hex.strip().lower())


def draw_u(seed: bytes, activity_id: str, draw_id: str) -> int:
    """The draw's uniform number: an integer on ``[0, 2**53)`` (rule 1 of the module).

    >>> draw_u(bytes(32), "act", "d1") == draw_u(bytes(32), "act", "d1")
    True
    >>> 0 <= draw_u(bytes(32), "act", "d1") < SCALE
    True
    """
    if "\n" in activity_id:
        raise ValueError("activity_id: may not contain a newline")
    mac = hmac.digest(seed, f"{activity_id}\n{draw_id}".encode(), "sha256")
    return int.from_bytes(mac[:8], "big") >> 11


def _fraction(prize: str, p: Any) -> Fraction:
    if isinstance(p, bool) or not isinstance(p, int | float | str | Decimal | Fraction):
        raise ValueError(f"odds[{prize!r}]: expected a number, got {p!r}")
    try:
        f = Fraction(repr(p) if isinstance(p, float) else p)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"odds[{prize!r}]: {p!r} is not a probability") from None
    if not 0 < f <= 1:
        raise ValueError(f"odds[{prize!r}]: {p} is not in (0, 1]")
    return f


@dataclass(frozen=True)
class Odds:
    """Prizes and their probabilities; the rest of the probability is "no prize".

    Build with :meth:`of`. ``prizes`` are sorted by id; ``thresholds[i]`` is the cumulative
    upper bound (out of :data:`SCALE`) of ``prizes[i]``'s interval (rule 2 of the module).

    >>> o = Odds.of({"ticket_coupon": "0.05", "bali_trip": 0.0001})
    >>> o.prizes, o.probability("bali_trip"), float(o.no_prize)
    (('bali_trip', 'ticket_coupon'), Fraction(1, 10000), 0.9499)
    >>> Odds.of({"a": 0.6, "b": 0.5})
    Traceback (most recent call last):
    ...
    ValueError: odds: probabilities sum to 1.1, more than 1
    """

    prizes: tuple[str, ...]
    probabilities: tuple[Fraction, ...]
    thresholds: tuple[int, ...]

    @classmethod
    def of(cls, odds: Mapping[str, Any]) -> Odds:
        """Validate a map prize id -> probability (a number in (0, 1], or a string such as
        ``"0.0001"`` or ``"1/10000"``); probabilities must sum to at most 1."""
        if not isinstance(odds, Mapping) or not odds:
            raise ValueError("odds: expected a non-empty map of prize id -> probability")
        for prize in odds:
            if not isinstance(prize, str) or not prize.strip():
                raise ValueError(f"odds: prize id {prize!r} must be a non-empty string")
        prizes = tuple(sorted(odds))
        probs = tuple(_fraction(p, odds[p]) for p in prizes)
        total = sum(probs, Fraction(0))
        if total > 1:
            raise ValueError(f"odds: probabilities sum to {float(total):g}, more than 1")
        thresholds, cum = [], Fraction(0)
        for prize, p in zip(prizes, probs, strict=True):
            cum += p
            thresholds.append(round(cum * SCALE))
            if thresholds[-1] == (thresholds[-2] if len(thresholds) > 1 else 0):
                raise ValueError(f"odds[{prize!r}]: {float(p):g} is below 1/2**53")
        return cls(prizes, probs, tuple(thresholds))

    def probability(self, prize: str) -> Fraction:
        """The declared probability of ``prize`` (exact)."""
        return self.probabilities[self.prizes.index(prize)]

    @property
    def no_prize(self) -> Fraction:
        """The probability of winning nothing."""
        return 1 - sum(self.probabilities, Fraction(0))

    def as_dict(self) -> dict[str, str]:
        """The odds as published: prize id -> exact probability as a string.

        >>> Odds.of({"a": 0.25, "b": "1/3"}).as_dict()
        {'a': '1/4', 'b': '1/3'}
        """
        return {p: str(f) for p, f in zip(self.prizes, self.probabilities, strict=True)}


def pick(odds: Odds, u: int) -> str | None:
    """The prize whose cumulative interval holds ``u`` (an integer on ``[0, 2**53)``), or
    None for no prize. Inventory is not looked at (see :func:`award`).

    >>> o = Odds.of({"a": 0.25, "b": 0.25})
    >>> pick(o, 0), pick(o, SCALE // 4 - 1), pick(o, SCALE // 4), pick(o, SCALE // 2)
    ('a', 'a', 'b', None)
    """
    if not 0 <= u < SCALE:
        raise ValueError(f"u: {u} is not in [0, 2**53)")
    i = bisect_right(odds.thresholds, u)
    return odds.prizes[i] if i < len(odds.prizes) else None


def award(odds: Odds, u: int, remaining: MutableMapping[str, int]) -> str | None:
    """The prize draw ``u`` wins given the prizes ``remaining`` (rule 3 of the module),
    taking it from ``remaining``. A sold-out prize wins nothing; a prize not in
    ``remaining`` is unlimited.

    >>> o, left = Odds.of({"a": 0.5}), {"a": 1}
    >>> award(o, 0, left), award(o, 0, left), left
    ('a', None, {'a': 0})
    """
    prize = pick(odds, u)
    if prize is None or prize not in remaining:
        return prize
    if remaining[prize] <= 0:
        return None
    remaining[prize] -= 1
    return prize


def _inventory(odds: Odds, inventory: Mapping[str, int]) -> dict[str, int]:
    out = {}
    for prize, n in inventory.items():
        if prize not in odds.prizes:
            raise ValueError(f"inventory[{prize!r}]: not a prize of the odds")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"inventory[{prize!r}]: {n!r} is not a count >= 0")
        out[prize] = n
    return out


class Mismatch(NamedTuple):
    """A logged draw whose recomputed prize differs (None = no prize)."""

    seq: int
    draw_id: str
    logged: str | None
    recomputed: str | None


@dataclass
class Audit:
    """What :func:`replay` found: ``draws`` re-run; per prize, the draws whose number fell
    in its interval (``picked``, to compare with the declared odds), those that won it
    (``winners``) and what is ``left`` (limited prizes only); ``sold_out`` draws that picked
    a prize with none left. ``ok`` is True when every logged prize equals the recomputed one
    and no draw id repeats."""

    draws: int = 0
    picked: dict[str, int] = field(default_factory=dict)
    winners: dict[str, int] = field(default_factory=dict)
    sold_out: int = 0
    left: dict[str, int] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    duplicate_draw_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.duplicate_draw_ids


def replay(seed: bytes, activity_id: str, odds: Odds, inventory: Mapping[str, int],
           records: Iterable[Mapping[str, Any]]) -> Audit:
    """Re-run every draw of a log: sort the records by ``seq``, recompute each draw with the
    inventory rule and compare with the prize logged (``prize``: a prize id, or None/"" for
    none). What an independent auditor runs once the seed is revealed.

    >>> seed, odds = bytes(32), Odds.of({"a": 0.5})
    >>> left = {"a": 3}
    >>> log = [{"seq": i, "draw_id": f"d{i}", "prize": award(odds, draw_u(seed, "x", f"d{i}"),
    ...         left)} for i in range(10)]
    >>> audit = replay(seed, "x", odds, {"a": 3}, log)
    >>> audit.ok, audit.draws, audit.winners, audit.left
    (True, 10, {'a': 3}, {'a': 0})
    >>> log[0]["prize"] = "a" if log[0]["prize"] is None else None
    >>> replay(seed, "x", odds, {"a": 3}, log).ok
    False
    """
    remaining = _inventory(odds, inventory)
    rows = list(records)
    for r in rows:
        if isinstance(r["seq"], bool) or not isinstance(r["seq"], int):
            raise ValueError(f"seq {r['seq']!r} (draw {r['draw_id']!r}): not an integer")
    rows.sort(key=lambda r: r["seq"])
    audit = Audit(picked=dict.fromkeys(odds.prizes, 0), winners=dict.fromkeys(odds.prizes, 0))
    seen: set[str] = set()
    last_seq = None
    for r in rows:
        seq, draw_id, logged = r["seq"], str(r["draw_id"]), r.get("prize") or None
        if seq == last_seq:
            raise ValueError(f"seq {seq}: recorded twice; the draws' order is undefined")
        last_seq = seq
        if draw_id in seen:
            audit.duplicate_draw_ids.append(draw_id)
        seen.add(draw_id)
        u = draw_u(seed, activity_id, draw_id)
        picked = pick(odds, u)
        got = award(odds, u, remaining)
        if picked is not None:
            audit.picked[picked] += 1
            audit.sold_out += got is None
        if got is not None:
            audit.winners[got] += 1
        if logged != got:
            audit.mismatches.append(Mismatch(seq, draw_id, logged, got))
        audit.draws += 1
    audit.left = remaining
    return audit


def _cell(where: str, column: str, value: Any) -> NoReturn:
    raise DrawLogError(f"{where}: column {column!r}: {value}")


def _record(where: str, row: Mapping[str, Any], from_csv: bool) -> dict[str, Any]:
    for col in ("seq", "draw_id", "prize"):
        if col not in row:
            raise DrawLogError(f"{where}: column {col!r} is missing")
    seq, draw_id, prize = row["seq"], row["draw_id"], row["prize"]
    if from_csv:
        try:
            seq = int(seq.strip())
        except ValueError:
            _cell(where, "seq", f"{seq!r} is not an integer")
    elif isinstance(seq, bool) or not isinstance(seq, int):
        _cell(where, "seq", f"{seq!r} is not an integer")
    if isinstance(draw_id, int) and not isinstance(draw_id, bool):
        draw_id = str(draw_id)
    if not isinstance(draw_id, str) or not draw_id:
        _cell(where, "draw_id", f"{draw_id!r} is not a non-empty string")
    if prize is not None and not isinstance(prize, str):
        _cell(where, "prize", f"{prize!r} is not a prize id (string, or empty for none)")
    return {"seq": seq, "draw_id": draw_id, "prize": prize or None}


def read_draw_log(path: str | Path) -> list[dict[str, Any]]:
    """Read a draw log: CSV with a header (columns ``seq``, ``draw_id``, ``prize``; an empty
    prize is none) or JSON Lines (one object a line with those keys; ``prize`` null or ""
    for none). ``.csv``/``.tsv`` files are CSV, anything else is sniffed: a first character
    ``{`` means JSON Lines. Errors name the file, line and column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DrawLogError(f"{path}: cannot read: {exc}") from None
    is_csv = path.suffix.lower() in (".csv", ".tsv") or not text.lstrip().startswith("{")
    out = []
    if is_csv:
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix == ".tsv"
                                else ",")
        missing = [c for c in ("seq", "draw_id", "prize") if c not in (reader.fieldnames or [])]
        if missing:
            raise DrawLogError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row or None in row.values():
                raise DrawLogError(f"{where}: expected {len(reader.fieldnames or [])} fields")
            out.append(_record(where, row, from_csv=True))
        return out
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DrawLogError(f"{path}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise DrawLogError(f"{path}:{n}: expected a JSON object")
        out.append(_record(f"{path}:{n}", row, from_csv=False))
    return out


def rate_interval(k: int, n: int, confidence: float = 0.99) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval for a rate of ``k`` successes in ``n`` trials;
    the Wilson score interval if scipy is missing.

    >>> lo, hi = rate_interval(100, 1_000_000)
    >>> lo < 0.0001 < hi, round(lo * 1e6, 1), round(hi * 1e6, 1)
    (True, 76.1, 128.8)
    >>> rate_interval(0, 10)[0]
    0.0
    """
    if not 0 <= k <= n or n <= 0:
        raise ValueError(f"rate_interval: need 0 <= k <= n and n > 0, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence} is not in (0, 1)")
    alpha = 1 - confidence
    try:
        from scipy.stats import beta
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        from statistics import NormalDist

        z = NormalDist().inv_cdf(1 - alpha / 2)
        p = k / n
        mid = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, mid - half), min(1.0, mid + half)
    lo = float(beta.ppf(alpha / 2, k, n - k + 1)) if k > 0 else 0.0
    hi = float(beta.ppf(1 - alpha / 2, k + 1, n - k)) if k < n else 1.0
    return lo, hi
