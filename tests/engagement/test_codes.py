"""Packaging codes: format, check character by brute force, normalizing, errors, hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest

from allscene.engagement.codes import (
    ALPHABET,
    BODY_LENGTH,
    CODE_LENGTH,
    CodeError,
    check,
    check_char,
    code_hash,
    display,
    generate,
    guess_chance,
    normalize,
)

RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
TO_CROCKFORD = str.maketrans(RFC4648, ALPHABET)


def seeded(seed: int):
    """A reproducible byte source for tests (production uses os.urandom)."""
    return random.Random(seed).randbytes


def valid(code: str) -> bool:
    try:
        check(code)
    except CodeError:
        return False
    return True


def test_alphabet_is_crockford() -> None:
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set("ILOU") & set(ALPHABET)
    assert (BODY_LENGTH, CODE_LENGTH) == (16, 17)


def test_format_body_is_base32_of_the_random_bytes() -> None:
    raw = seeded(1)(50 * 10)
    codes = generate(50, rng=seeded(1))
    for i, code in enumerate(codes):
        assert len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
        body = base64.b32encode(raw[10 * i : 10 * i + 10]).decode().translate(TO_CROCKFORD)
        assert code[:BODY_LENGTH] == body
        assert code[BODY_LENGTH] == check_char(body)
        assert check(code) == code


def test_check_char_catches_every_single_substitution() -> None:
    codes = generate(200, rng=seeded(2))
    for code in codes:
        for pos in range(CODE_LENGTH):
            for ch in ALPHABET:
                if ch == code[pos]:
                    continue
                typo = code[:pos] + ch + code[pos + 1 :]
                with pytest.raises(CodeError, match="check character does not match"):
                    check(typo)


def test_check_char_catches_every_adjacent_transposition() -> None:
    codes = generate(500, rng=seeded(3))
    tried = 0
    for code in codes:
        for pos in range(CODE_LENGTH - 1):
            a, b = code[pos], code[pos + 1]
            if a == b:
                continue
            assert not valid(code[:pos] + b + a + code[pos + 2 :])
            tried += 1
    assert tried > 7000


def test_adjacent_transpositions_exhaustively_for_every_symbol_pair() -> None:
    # Every position pair (including body/check) and every pair of distinct symbols.
    rng = random.Random(4)
    for _ in range(3):
        base = [rng.choice(ALPHABET) for _ in range(BODY_LENGTH)]
        for pos in range(BODY_LENGTH - 1):
            for a in ALPHABET:
                for b in ALPHABET:
                    if a == b:
                        continue
                    body = base[:pos] + [a, b] + base[pos + 2 :]
                    code = "".join(body) + check_char("".join(body))
                    swapped = code[:pos] + b + a + code[pos + 2 :]
                    assert not valid(swapped), (code, swapped)
        # the last body character swapped with the check character
        for a in ALPHABET:
            body = "".join(base[:-1]) + a
            c = check_char(body)
            if c != a:
                assert not valid(body[:-1] + c + a)


def test_luhn_mod_32_would_miss_a_transposition() -> None:
    # Why we did not use Luhn mod 32: it cannot tell "0Z" from "Z0".
    def luhn(values: list[int]) -> int:
        total = 0
        for i, v in enumerate(reversed(values)):
            if i % 2 == 0:
                v = 2 * v
                v = v // 32 + v % 32
            total += v
        return total % 32

    assert luhn([0, 31]) == luhn([31, 0])


def test_normalize_rules() -> None:
    assert normalize("  abcd-efgh ") == "ABCDEFGH"
    assert normalize("i l I L") == "1111"
    assert normalize("o O") == "00"
    assert normalize("a-b c") == "ABC"
    code = generate(1, rng=seeded(5))[0]
    assert check(display(code).lower()) == code
    assert check(" ".join(display(code).split("-"))) == code
    assert display(code).count("-") == 4 and display(code).split("-")[-1] == code[-1]


def test_lenient_reading_of_confusable_letters() -> None:
    body = "01" + "0" * 14
    code = body + check_char(body)
    assert check("OI" + "o" * 14 + code[-1]) == code
    assert check("ol" + "0" * 14 + code[-1]) == code


def test_errors_name_the_reason() -> None:
    code = generate(1, rng=seeded(6))[0]
    with pytest.raises(CodeError, match="wrong length: a code has 17 characters, got 16"):
        check(code[:-1])
    with pytest.raises(CodeError, match="wrong length"):
        check(code + "0")
    with pytest.raises(CodeError, match="wrong length"):
        check("")
    with pytest.raises(CodeError, match="character 'U' is not in the code alphabet"):
        check("U" + code[1:])
    with pytest.raises(CodeError, match=r"character '\*' is not in the code alphabet"):
        check(code[:-1] + "*")
    with pytest.raises(CodeError, match="must be text"):
        check(12345)  # type: ignore[arg-type]
    with pytest.raises(CodeError, match="not in the code alphabet"):
        check_char("U" * 16)
    assert issubclass(CodeError, ValueError)
    with pytest.raises(ValueError, match="non-negative int"):
        generate(-1)


def test_a_million_codes_are_distinct_and_valid() -> None:
    codes = generate(1_000_000)
    assert len(codes) == 1_000_000
    assert len(set(codes)) == 1_000_000
    assert all(len(c) == CODE_LENGTH for c in codes[:1000])
    assert all(valid(c) for c in codes[:: 997])
    assert generate(0) == []


def test_duplicates_are_drawn_again() -> None:
    calls: list[int] = []
    fresh = seeded(7)

    def stuck_then_random(k: int) -> bytes:
        calls.append(k)
        return bytes(k) if len(calls) == 1 else fresh(k)

    codes = generate(5, rng=stuck_then_random)
    assert len(set(codes)) == 5
    assert codes[0] == "0" * 16 + check_char("0" * 16)
    assert calls == [50, 40]
    with pytest.raises(RuntimeError, match="repeating"):
        generate(3, rng=lambda k: bytes(k))


def test_same_random_bytes_same_codes() -> None:
    assert generate(100, rng=seeded(8)) == generate(100, rng=seeded(8))


def test_code_hash_is_stable_and_keyed() -> None:
    code = "0000-0000-0000-0001-2"
    h = code_hash(code, b"test-key")
    assert h == "3f0d2d71253f6ed51c29cc63e7d475ec"
    want = hmac.new(b"test-key", b"00000000000000012", hashlib.sha256).hexdigest()[:32]
    assert h == want
    assert code_hash("oooo oooo oooo ooo1 2", b"test-key") == h
    assert code_hash(code, b"other-key") != h
    with pytest.raises(CodeError, match="check character"):
        code_hash("0000-0000-0000-0001-3", b"test-key")


def test_guess_chance_for_28_million_boxes() -> None:
    assert guess_chance(28_000_000) == pytest.approx(28e6 / 2**80)
    assert 2.3e-17 < guess_chance(28_000_000) < 2.4e-17
    assert guess_chance(2**80, 2) == 1.0
