"""The fast paths of the tag index held to the row-by-row reference evaluator: the range
indexes (binned and bit-sliced), counting without the final bitmap, late filtering on dense
values, on random data with nulls, NaN, negative and out-of-range values."""

import random

import numpy as np
import pyarrow as pa
import pytest

from allscene.audiences import ranges
from allscene.audiences.expr import ExprError, parse
from allscene.audiences.index import MAX_VALUE_BITMAPS, TagIndex, evaluate_row
from allscene.audiences.ranges import BinnedIndex, BitSlicedIndex

N = 6000
OPS = ["=", "!=", ">=", "<=", ">", "<"]


def random_tags(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)

    def nulls(values, share=0.1):
        return np.where(rng.random(n) < share, None, values).tolist()

    score = np.round(rng.normal(0, 30, n), 1)
    score[rng.random(n) < 0.05] = np.nan
    return pa.table({
        "person_id": [f"p{i}" for i in range(n)],
        "age": pa.array(nulls(rng.integers(18, 71, n)), pa.int64()),
        # more values than MAX_VALUE_BITMAPS: the bit-sliced index, three digits
        "income": pa.array(nulls(rng.integers(2000, 2000 + 3 * MAX_VALUE_BITMAPS, n)),
                           pa.int64()),
        # float32 with NaN and negatives; a few hundred values, many bins
        "score": pa.array(nulls(score), pa.float32()),
        # skewed, no nulls at all
        "visits": pa.array(rng.geometric(0.3, n) - 1, pa.int64()),
        "owns_car": pa.array(nulls(rng.random(n) < 0.3), pa.bool_()),
        "gender": pa.array(nulls(rng.choice(["male", "female"], n))),
        "interest.car.compact@90d": pa.array(nulls(rng.poisson(0.8, n)), pa.int64()),
    })


def random_condition(rng: random.Random) -> str:
    kind = rng.choice(["range", "compare", "set", "flag", "freq", "other"])
    tag, lo, hi, step = rng.choice([("age", 10, 80, 1), ("income", 1000, 15_000, 1),
                                    ("score", -120, 120, 0.1), ("visits", -1, 30, 1)])

    def value():
        v = rng.uniform(lo, hi) if step < 1 else rng.randint(lo, hi)
        return round(v, 1) if step < 1 else v

    if kind == "range":
        return f"{tag} in {value()}..{value()}"
    if kind == "compare":
        return f"{tag} {rng.choice(OPS)} {value()}"
    if kind == "set":
        return f"{tag} in {{{', '.join(str(value()) for _ in range(rng.randint(1, 4)))}}}"
    if kind == "flag":
        return rng.choice([tag, "owns_car"])
    if kind == "freq":
        return f"interest.car.compact {rng.choice(OPS)} {rng.randint(-1, 5)} in 90d"
    return rng.choice(['gender = "female"', 'gender != "male"', 'gender in {"male", "x"}',
                       'gender >= "g"', 'age = "x"', 'age != "x"', 'score < "x"',
                       "owns_car = 0", "owns_car != 1", "owns_car >= 1", "owns_car in 0..0",
                       "income > 100000000000000000000", "score in 0.5..0.5"])


def random_expression(rng: random.Random, depth: int = 0) -> str:
    if depth >= 2 or rng.random() < 0.3:
        return random_condition(rng)
    shape = rng.choice(["and", "and", "or", "not"])
    if shape == "not":
        return f"not ({random_expression(rng, depth + 1)})"
    parts = [random_expression(rng, depth + 1) for _ in range(rng.randint(2, 4))]
    return f" {shape} ".join(f"({p})" for p in parts)


@pytest.fixture(scope="module")
def table():
    return random_tags(N, seed=11)


@pytest.fixture(scope="module")
def rows(table):
    return table.to_pylist()


def test_the_random_table_exercises_both_range_indexes(table):
    index = TagIndex.build(table)
    assert isinstance(index.columns["income"].ranges, BitSlicedIndex)
    assert len(index.columns["income"].ranges.slices) == 3
    score = index.columns["score"].ranges
    assert isinstance(score, BinnedIndex) and len(score.edges) > 20 and score.below


@pytest.mark.parametrize("late", [0.0, None, 1.0], ids=["bitmaps only", "default", "late"])
def test_select_and_count_agree_with_the_reference_evaluator(table, rows, late):
    index = TagIndex.build(table) if late is None else TagIndex.build(table, late_fraction=late)
    rng = random.Random(7)
    for _ in range(150):
        text = random_expression(rng)
        node = parse(text)
        want = {r["person_id"] for r in rows if evaluate_row(node, r)}
        assert set(index.people(index.select(text))) == want, text
        assert index.count(text) == len(want), text


@pytest.mark.parametrize("text", [
    "age in 22..39 and income in 6000..9999 and not owns_car "
    "and interest.car.compact >= 2 in 90d",
    "visits and age in 30..40",  # a numeric tag as a flag, no nulls: late filtering
    "not (score >= 0) and not owns_car",
    "owns_car or visits > 3",
    "income >= 3000",
    "not income >= 3000",
    'gender = "female"',
])
def test_count_equals_the_size_of_select(table, rows, text):
    for late in (0.0, 1.0):
        index = TagIndex.build(table, late_fraction=late)
        node = parse(text)
        want = sum(evaluate_row(node, r) for r in rows)
        assert index.count(text) == len(index.select(text)) == want


def test_count_checks_tags_like_select(table):
    index = TagIndex.build(table)
    with pytest.raises(ExprError, match="unknown tag 'agee'"):
        index.count("agee > 3")


def test_select_returns_a_bitmap_of_the_callers_own(table):
    index = TagIndex.build(table)
    for text in ("owns_car", "visits >= 0", 'gender = "male"', "age in 10..100"):
        first = index.select(text)
        size = len(first)
        first.clear()
        assert len(index.select(text)) == size == index.count(text)


@pytest.mark.parametrize("n_values", [0, 1, 2, 63, 64, 65, 300, 5000])
@pytest.mark.parametrize("layout", [BinnedIndex, BitSlicedIndex])
def test_every_rank_interval(n_values, layout):
    rng = np.random.default_rng(n_values)
    # Skewed: a few heavy values (bins of one value) and a long sparse tail (wide bins).
    values = (rng.zipf(1.3, 20_000) % max(n_values, 1)).astype(np.int64) * 3 - 50
    values = values if n_values else values[:0]
    index = layout.build(np.arange(len(values), dtype=np.uint32), values)
    d = index.n_values
    rank = np.searchsorted(np.unique(values), values)  # the obvious way
    pairs = [(a, b) for a in range(-1, d + 2) for b in range(-1, d + 2)] if d <= 70 else [
        tuple(sorted(rng.integers(0, d + 1, 2).tolist())) for _ in range(300)]
    for a, b in pairs:
        want = np.flatnonzero((rank >= a) & (rank < b))
        assert np.array_equal(np.frombuffer(index.members(a, b).to_array(), np.uint32),
                              want), (a, b)
        assert index.count(a, b) == len(want)


def test_binned_index_moves_bounds_to_the_nearer_edge(monkeypatch):
    monkeypatch.setattr(ranges, "MAX_BINS", 4)
    values = np.repeat(np.arange(40), 10)  # 400 people, 40 values: bins of 10 values
    index = BinnedIndex.build(np.arange(400, dtype=np.uint32), values)
    assert index.edges == [0, 10, 20, 30, 40]
    assert index._nearest_edge(12) == 1 and index._nearest_edge(18) == 2
    for op, v in [(">=", 12), (">=", 18), ("<", 27), ("=", 5), (">", 39), ("<=", -1)]:
        want = np.flatnonzero({">=": values >= v, "<": values < v, "=": values == v,
                               ">": values > v, "<=": values <= v}[op]).tolist()
        assert list(index.members(*index.interval(op, v))) == want
    lo, hi = index.interval_between(12, 27)
    assert list(index.members(lo, hi)) == list(range(120, 280))
