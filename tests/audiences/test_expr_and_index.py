"""The expression language: parsing, errors that point at the problem, and the bitmap
compiler agreeing with the row-by-row reference evaluator."""

import random

import pyarrow as pa
import pytest

from allscene.audiences.expr import ExprError, parse
from allscene.audiences.index import MAX_VALUE_BITMAPS, TagIndex, evaluate_row

EXPRESSIONS = [
    "age in 22..39 and income in 6000..19999 and not owns_car "
    "and intent.car.compact >= 3 in 90d",
    "gender = \"female\" or city_tier in {1, 2}",
    "not (age >= 50 or gender != \"male\")",
    "owns_car and intent.car.compact > 0 in 90d and income < 8000",
    "city_tier in {3, 4, 5} and not (income >= 12000 and age <= 30)",
    "income = 7000 or income != 7000",
    "@seed and age in 18..29",
    "not @seed or owns_car",
    "gender in {\"male\", \"female\"} and intent.car.compact <= 1 in 90d",
    "age in 30.5..40",
]


def random_tags(n: int, seed: int) -> pa.Table:
    rng = random.Random(seed)
    maybe = lambda v: None if rng.random() < 0.1 else v  # noqa: E731
    return pa.table({
        "person_id": [f"p{i}" for i in range(n)],
        "age": pa.array([maybe(rng.randint(18, 70)) for _ in range(n)], pa.int64()),
        # more distinct values than the bitmap-per-value limit: the bit-sliced index
        "income": pa.array([maybe(rng.randint(2000, 2000 + 3 * MAX_VALUE_BITMAPS))
                            for _ in range(n)], pa.int64()),
        "gender": pa.array([maybe(rng.choice(["male", "female"])) for _ in range(n)]),
        "city_tier": pa.array([maybe(rng.randint(1, 5)) for _ in range(n)], pa.int64()),
        "owns_car": pa.array([maybe(rng.random() < 0.3) for _ in range(n)], pa.bool_()),
        "intent.car.compact@90d": pa.array([maybe(rng.choice([0, 0, 1, 2, 3, 5]))
                                              for _ in range(n)], pa.int64()),
    })


@pytest.mark.parametrize("late", [0.0, 1.0], ids=["bitmaps only", "late filtering"])
@pytest.mark.parametrize("text", EXPRESSIONS)
def test_bitmaps_agree_with_the_reference_evaluator(text, late):
    table = random_tags(20_000, seed=5)
    index = TagIndex.build(table, late_fraction=late)
    seed = set(random.Random(1).sample(index.person_ids, 3000))
    refs = {"seed": __import__("pyroaring").BitMap(
        [i for i, p in enumerate(index.person_ids) if p in seed])}
    got = set(index.people(index.select(text, refs)))
    node = parse(text)
    want = {r["person_id"] for r in table.to_pylist() if evaluate_row(node, r, {"seed": seed})}
    assert got == want
    assert 0 < len(want) < table.num_rows or text.startswith("income = 7000 or")


@pytest.mark.parametrize("text, column, message", [
    ("age in 22..", 12, "expected a number"),
    ("age in 22..39 and", 18, "expected '(' or '@' or 'not' or a tag name"),
    ("age >> 3", 6, "expected a number or a quoted string or a tag name, got '>'"),
    ("(age > 3", 9, "expected ')'"),
    ("age > 3 in 90", 12, "a window such as 90d"),
    ("age # 3", 5, "unexpected '#'"),
    ("intent.car.compact >= 2.5 in 90d", 23, "must be a whole number"),
])
def test_syntax_errors_point_at_the_column(text, column, message):
    with pytest.raises(ExprError) as err:
        parse(text)
    assert err.value.column == column, str(err.value)
    assert message in str(err.value)
    assert str(err.value).splitlines()[-1] == "  " + " " * (column - 1) + "^"


def test_unknown_tags_and_audiences_are_named_with_a_suggestion():
    index = TagIndex.build(random_tags(100, seed=2))
    with pytest.raises(ExprError, match=r"unknown tag 'agee' at column 20 \(did you mean 'age'\?\)"):
        index.select("gender = \"male\" or agee > 3")
    with pytest.raises(ExprError, match=r"unknown tag 'intent.car.compact@30d' at column 1"):
        index.select("intent.car.compact >= 1 in 30d")
    with pytest.raises(ExprError, match=r"unknown audience '@nobody' at column 13"):
        index.select("age > 3 and @nobody")
