"""Red envelopes: exact sums to the cent, minimums, determinism from the seed, errors."""

from __future__ import annotations

import hashlib
import statistics
from decimal import Decimal

import numpy as np
import pytest

from allscene.engagement.envelopes import DOMAIN, split, summary

SEEDS = [b"kfc-weather-2026", b"\x00", b"seed-3", bytes(range(32)), b"another"]


def reference(total: int, n: int, seed: bytes, least: int = 1) -> list[int]:
    """The algorithm re-written from the module docstring alone, in plain Python."""
    stream = hashlib.shake_256(DOMAIN + seed).digest(8 * (2 * n - 1))
    words = [int.from_bytes(stream[8 * i : 8 * i + 8], "little") for i in range(2 * n - 1)]
    out, left = [], total
    for i in range(n - 1):
        k = n - i
        hi = min(2 * left // k, left - (k - 1) * least)
        amount = least + (words[i] * (hi - least + 1) >> 64)
        out.append(amount)
        left -= amount
    out.append(left)
    keys = words[n - 1 :]
    order = sorted(range(n), key=lambda j: (keys[j], j))
    return [out[j] for j in order]


@pytest.mark.parametrize("seed", SEEDS)
def test_ten_thousand_yuan_into_5000_envelopes_sums_to_the_cent(seed: bytes) -> None:
    amounts = split(1_000_000, 5_000, seed)
    assert len(amounts) == 5_000
    assert sum(amounts) == 1_000_000
    assert min(amounts) >= 1
    assert all(type(a) is int for a in amounts)
    # double mean: no envelope before the remainder exceeds twice the mean of what was left
    assert max(amounts) < 1_000_000 // 2


def test_same_seed_same_amounts_other_seed_other_amounts() -> None:
    a = split(1_000_000, 5_000, b"revealed")
    assert a == split(1_000_000, 5_000, b"revealed")
    assert a == split(1_000_000, 5_000, bytearray(b"revealed"))
    assert a != split(1_000_000, 5_000, b"revealed!")
    assert sorted(a) != sorted(split(1_000_000, 5_000, b"other"))


@pytest.mark.parametrize(("total", "n", "least"), [(1_000, 7, 1), (12_345, 50, 3), (10, 10, 1),
                                                   (999_999, 2, 1), (5, 1, 1), (0, 3, 0)])
def test_anyone_can_rederive_the_amounts_from_the_docstring(total: int, n: int,
                                                            least: int) -> None:
    for seed in SEEDS:
        assert split(total, n, seed, min_cents=least) == reference(total, n, seed, least)


def test_edge_cases() -> None:
    assert split(1, 1, b"s") == [1]
    assert split(123_456, 1, b"s") == [123_456]
    assert split(5_000, 5_000, b"s") == [1] * 5_000
    assert split(5_000, 50, b"s", min_cents=100) == [100] * 50
    assert split(0, 4, b"s", min_cents=0) == [0, 0, 0, 0]
    many = split(5_001, 5_000, b"s")
    assert sorted(many) == [1] * 4_999 + [2]
    big = split(10**20 + 7, 3, b"s")
    assert sum(big) == 10**20 + 7 and min(big) >= 1
    assert split(np.int64(1_000), np.int64(4), b"s") == split(1_000, 4, b"s")


@pytest.mark.parametrize("least", [1, 50, 199])
def test_minimum_is_kept_near_the_limit(least: int) -> None:
    for i in range(30):
        amounts = split(200 * least + 17, 200, f"s{i}".encode(), min_cents=least)
        assert sum(amounts) == 200 * least + 17
        assert min(amounts) >= least


def test_a_million_envelopes_sum_exactly() -> None:
    amounts = split(100_000_000, 1_000_000, b"big")
    assert len(amounts) == 1_000_000
    assert sum(amounts) == 100_000_000
    assert min(amounts) >= 1


def test_shuffle_makes_every_position_alike() -> None:
    # Unshuffled, position 0 would be uniform in [1, 200] (variance ~3,300) and the last
    # envelope far wider; shuffled, every position has the same distribution.
    rows = [split(1_000, 10, f"pos-{i}".encode()) for i in range(4_000)]
    cols = list(zip(*rows, strict=True))
    variances = [statistics.pvariance(c) for c in cols]
    means = [statistics.fmean(c) for c in cols]
    assert max(variances) / min(variances) < 1.3
    assert max(means) - min(means) < 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(total_cents=100, n=0), "n must be at least 1"),
        (dict(total_cents=100, n=-3), "n must be at least 1"),
        (dict(total_cents=-100, n=2), "total_cents must not be negative"),
        (dict(total_cents=100, n=2, min_cents=-1), "min_cents must not be negative"),
        (dict(total_cents=4, n=5), "cannot give 5 envelopes at least 1 cent each"),
        (dict(total_cents=499, n=5, min_cents=100), r"at least 100 cents each \(needs 500\)"),
        (dict(total_cents=100.0, n=2), "total_cents must be an integer number of cents"),
        (dict(total_cents=Decimal("100"), n=2), "total_cents must be an integer"),
        (dict(total_cents="100", n=2), "total_cents must be an integer"),
        (dict(total_cents=True, n=1), "total_cents must be an integer"),
        (dict(total_cents=100, n=2, min_cents=0.5), "min_cents must be an integer"),
        (dict(total_cents=100, n=2.0), "n must be an integer"),
    ],
)
def test_errors_name_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split(seed=b"s", **kwargs)


def test_seed_must_be_bytes() -> None:
    with pytest.raises(ValueError, match="seed must be bytes"):
        split(100, 2, "text")  # type: ignore[arg-type]


def test_summary() -> None:
    amounts = split(1_000_000, 5_000, b"report")
    s = summary(amounts)
    assert s["count"] == 5_000 and s["total"] == 1_000_000
    assert s["min"] == min(amounts) and s["max"] == max(amounts)
    assert s["mean"] == 200.0
    assert summary([]) == {"count": 0, "total": 0, "min": None, "max": None, "mean": None}
    with pytest.raises(ValueError, match="amount must be an integer"):
        summary([1, 2.5])
