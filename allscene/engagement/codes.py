"""Codes printed on packaging (offline to online): generate, normalize, check, hash.

A code is 17 characters of Crockford base32 (alphabet ``0123456789ABCDEFGHJKMNPQRSTVWXYZ``,
no I, L, O, U): a **body** of 16 characters, the base32 encoding of 80 random bits from the
operating system's CSPRNG (``os.urandom``), then one **check character**. It is printed as
``ABCD-EFGH-JKMN-PQRS-T`` (:func:`display`); what people type back is read leniently by
:func:`normalize` (any case, hyphens and spaces ignored, I and L read as 1, O as 0).

Check character
---------------
Symbols are taken as elements of the field GF(32) = GF(2)[x] / (x^5 + x^2 + 1), in which
``a = x`` (the symbol ``2``) is primitive: its powers ``a^0 .. a^30`` are all distinct and
non-zero. The check symbol ``c`` of body ``b_0 .. b_15`` makes the weighted sum vanish::

    a^16 b_0 + a^15 b_1 + ... + a^1 b_15 + a^0 c = 0        (in GF(32); "+" is XOR)

i.e. ``c = sum(a^(16 - i) b_i)``, computed by Horner's rule ``acc = (acc XOR b_i) * a``.

* A **single substitution** at position ``p`` changes the sum by ``a^w_p (s XOR s')``, a
  product of non-zero field elements: never zero, so always caught.
* A **transposition** of the symbols at positions ``p`` and ``q`` changes it by
  ``(a^w_p + a^w_q)(s XOR s')``; the 17 weights are distinct powers of ``a`` (17 < 31), so
  this is non-zero: every adjacent transposition, and in fact every swap of any two
  positions, including the check character itself, is caught. So are twin errors
  (``ss`` to ``tt``). ``tests/engagement/test_codes.py`` verifies the first two claims by
  brute force.

This is a field version of the ISO 7064 idea (a weighted sum with distinct non-zero weights
over a field), chosen because 32 is not a prime: Luhn mod 32 misses the transposition of
``0`` and ``Z``, and ISO 7064 MOD 37-2 needs check symbols outside the alphabet.

Unguessability
--------------
With 80 random bits and ``N`` live codes, one guess finds a live code with probability
``N / 2^80``. For Yili's 28 million boxes that is about 2.3e-17 per guess (see
:func:`guess_chance`): a billion guesses win with odds of about 1 in 43 million. The check
character is public, so it does not slow a guesser down; what it does is tell a **mistyped**
code (check fails: "mistyped?", 31 in 32 random strings) from a **guessed or forged** one
(check passes, no such code in the store): the latter are the attempts to count and rate-limit.

Duplicates
----------
Two of ``n`` codes collide with probability about ``n^2 / 2^81`` (4e-10 for 28 million).
:func:`generate` still checks its batch (a sort of the first 64 bits, then an exact check if
needed) and draws replacements for any duplicate. Across batches the store's unique index
on :func:`code_hash` is the guard.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

import numpy as np

__all__ = [
    "ALPHABET", "BODY_LENGTH", "CODE_LENGTH", "CodeError", "check", "check_char", "code_hash",
    "display", "generate", "guess_chance", "normalize",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 16  # characters, 80 random bits
CODE_LENGTH = BODY_LENGTH + 1
RANDOM_BYTES = BODY_LENGTH * 5 // 8

_POLY = 0b100101  # x^5 + x^2 + 1, primitive over GF(2)
#: multiplication by a = x in GF(32)
_TIMES_A = np.array([(v << 1) ^ (_POLY if v & 0x10 else 0) for v in range(32)], dtype=np.uint8)
_TIMES_A_LIST = _TIMES_A.tolist()
_ASCII = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_LENIENT = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})


class CodeError(ValueError):
    """A code that cannot be valid, with the reason (wrong length, bad character, check)."""


def _check_values(values: np.ndarray) -> np.ndarray:
    """Check symbols (0..31) of bodies given as an ``(n, 16)`` array of symbol values."""
    acc = np.zeros(values.shape[0], dtype=np.uint8)
    for j in range(values.shape[1]):
        acc = _TIMES_A[acc ^ values[:, j]]
    return acc


def check_char(body: str) -> str:
    """The check character of a 16-character canonical body (see the module docstring).

    Raises
    ------
    CodeError
        If ``body`` is not 16 characters of the alphabet.

    Examples
    --------
    >>> check_char("0000000000000000")
    '0'
    >>> check_char("0000000000000001")
    '2'
    """
    if len(body) != BODY_LENGTH:
        raise CodeError(f"wrong length: a body has {BODY_LENGTH} characters, got {len(body)}")
    acc = 0
    for ch in body:
        value = _VALUE.get(ch)
        if value is None:
            raise CodeError(f"character {ch!r} is not in the code alphabet")
        acc = _TIMES_A_LIST[acc ^ value]
    return ALPHABET[acc]


def _symbols(raw: np.ndarray) -> np.ndarray:
    """Base32 symbol values (0..31) of ``(n, 10)`` bytes: the 80 bits, 5 at a time, MSB first."""
    bits = np.unpackbits(raw, axis=1).reshape(raw.shape[0], BODY_LENGTH, 5)
    return ((bits[..., 0] << 4) | (bits[..., 1] << 3) | (bits[..., 2] << 2)
            | (bits[..., 3] << 1) | bits[..., 4])


def _byte_tables() -> np.ndarray:
    """``T[k, v]``: the check symbol of a body whose bytes are all 0 except byte ``k == v``.

    The check is linear over GF(2) in the 80 bits, so the check of any body is the XOR of
    ``T[k, byte_k]`` over its 10 bytes: 10 table look-ups per code instead of 16 steps.
    """
    raw = np.zeros((RANDOM_BYTES, 256, RANDOM_BYTES), dtype=np.uint8)
    for k in range(RANDOM_BYTES):
        raw[k, :, k] = np.arange(256)
    raw = raw.reshape(-1, RANDOM_BYTES)
    return _check_values(_symbols(raw)).reshape(RANDOM_BYTES, 256)


_BYTE_TABLES = _byte_tables()


def _encode(raw: np.ndarray) -> np.ndarray:
    """Codes as an ``(n, 17)`` ASCII array from ``(n, 10)`` random bytes (base32 + check)."""
    out = np.empty((raw.shape[0], CODE_LENGTH), dtype=np.uint8)
    out[:, :BODY_LENGTH] = _ASCII[_symbols(raw)]
    check = np.zeros(raw.shape[0], dtype=np.uint8)
    for k in range(RANDOM_BYTES):
        check ^= _BYTE_TABLES[k][raw[:, k]]
    out[:, BODY_LENGTH] = _ASCII[check]
    return out


def _unique_rows(raw: np.ndarray) -> np.ndarray:
    """Boolean mask keeping the first of each distinct row of ``raw`` (n, 10 bytes)."""
    keep = np.ones(raw.shape[0], dtype=bool)
    head = raw[:, :8].copy().view(">u8").ravel()
    ordered = np.sort(head)
    if not (ordered[1:] == ordered[:-1]).any():  # fast path: not even 64 bits in common
        return keep
    order = np.argsort(head, kind="stable")
    dup = np.flatnonzero(head[order][1:] == head[order][:-1])
    seen: set[bytes] = set()
    for i in sorted(set(order[dup].tolist()) | set(order[dup + 1].tolist())):
        row = raw[i].tobytes()
        if row in seen:
            keep[i] = False
        seen.add(row)
    return keep


def generate(n: int, *, rng: Callable[[int], bytes] | None = None) -> list[str]:
    """Generate ``n`` distinct random codes (canonical form, no hyphens).

    Parameters
    ----------
    n : int
        How many codes. 1,000,000 take well under a second (``bench/bench_codes.py``).
    rng : callable, optional
        ``rng(k)`` returns ``k`` random bytes; default :func:`os.urandom`, the CSPRNG that
        production must use. Tests may pass e.g. ``random.Random(1).randbytes``.

    Returns
    -------
    list of str
        ``n`` codes of 17 characters, all distinct (duplicates in the batch are dropped and
        drawn again).

    Examples
    --------
    >>> codes = generate(3)
    >>> len(codes), {len(c) for c in codes}, len(set(codes))
    (3, {17}, 3)
    >>> all(check(c) == c for c in codes)
    True
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    draw = os.urandom if rng is None else rng
    raw = np.frombuffer(draw(n * RANDOM_BYTES), dtype=np.uint8).reshape(n, RANDOM_BYTES)
    for _ in range(100):
        keep = _unique_rows(raw)
        missing = n - int(keep.sum())
        if missing == 0:
            break
        more = np.frombuffer(draw(missing * RANDOM_BYTES), dtype=np.uint8)
        raw = np.concatenate([raw[keep], more.reshape(missing, RANDOM_BYTES)])
    else:
        raise RuntimeError("the random source keeps repeating itself: is it random?")
    return _encode(raw).view(f"S{CODE_LENGTH}").ravel().astype(f"U{CODE_LENGTH}").tolist()


def normalize(text: str) -> str:
    """Canonical form of typed text: upper case, no hyphens or spaces, I/L to 1, O to 0.

    It does not validate (that is :func:`check`).

    Examples
    --------
    >>> normalize(" abcd-efgh ijkl-mnop-q ")
    'ABCDEFGH1JK1MN0PQ'
    """
    if not isinstance(text, str):
        raise CodeError(f"a code must be text, got {type(text).__name__}")
    return text.strip().upper().translate(_LENIENT)


def check(text: str) -> str:
    """Validate a typed code and return its canonical form, before any lookup.

    Raises
    ------
    CodeError
        ``wrong length`` (after normalizing), ``character 'U' is not in the code alphabet``,
        or ``check character does not match: mistyped?``.

    Examples
    --------
    >>> check("oooo-oooo-oooo-ooo1-2")
    '00000000000000012'
    >>> check("00000000000000021")
    Traceback (most recent call last):
    ...
    allscene.engagement.codes.CodeError: check character does not match: mistyped?
    >>> check("0000-U000")
    Traceback (most recent call last):
    ...
    allscene.engagement.codes.CodeError: wrong length: a code has 17 characters, got 8
    >>> check("0000-U000-0000-0001-2")
    Traceback (most recent call last):
    ...
    allscene.engagement.codes.CodeError: character 'U' is not in the code alphabet
    """
    code = normalize(text)
    if len(code) != CODE_LENGTH:
        raise CodeError(f"wrong length: a code has {CODE_LENGTH} characters, got {len(code)}")
    bad = next((ch for ch in code if ch not in _VALUE), None)
    if bad is not None:
        raise CodeError(f"character {bad!r} is not in the code alphabet")
    if check_char(code[:BODY_LENGTH]) != code[BODY_LENGTH]:
        raise CodeError("check character does not match: mistyped?")
    return code


def display(code: str) -> str:
    """Printed form: hyphens every 4 characters, the check character last on its own.

    Examples
    --------
    >>> display("00000000000000012")
    '0000-0000-0000-0001-2'
    """
    code = normalize(code)
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def code_hash(code: str, key: bytes) -> str:
    """Keyed hash of a code to store instead of the code: HMAC-SHA256, first 32 hex digits.

    The code is checked and canonicalized first, so every way of typing it hashes alike;
    a leaked table of hashes cannot be redeemed without ``key``.

    Examples
    --------
    >>> h = code_hash("0000-0000-0000-0001-2", b"secret")
    >>> len(h), h == code_hash("00000000000000012", b"secret")
    (32, True)
    >>> h == code_hash("00000000000000012", b"another key")
    False
    """
    canonical = check(code)
    return hmac.new(bytes(key), canonical.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def guess_chance(live: int, guesses: int = 1) -> float:
    """Chance that ``guesses`` random guesses hit at least one of ``live`` codes (union bound).

    Examples
    --------
    >>> f"{guess_chance(28_000_000):.2e}"
    '2.32e-17'
    >>> f"{guess_chance(28_000_000, 10**9):.2e}"
    '2.32e-08'
    """
    return min(1.0, guesses * live / 2 ** (8 * RANDOM_BYTES))
