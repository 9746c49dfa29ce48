"""The compiled loops of a report against what numpy computes the slow way."""

import numpy as np
import pytest

from allscene.measurement import kernels


@pytest.mark.parametrize("distinct", [1, 300, 100_000])  # 100,000: the table doubles often
def test_numbering_follows_first_appearance(distinct):
    rng = np.random.default_rng(distinct)
    keys = rng.integers(-(2**62), 2**62, distinct)
    h = keys[rng.integers(0, distinct, 250_000)]
    idx, n, agree = kernels.number(h, h * 3 + 1)
    first = np.unique(h, return_index=True)[1]
    order = h[np.sort(first)]  # the keys by first appearance
    assert agree and n == len(order) and idx.dtype == np.int32
    np.testing.assert_array_equal(order[idx], h)


def test_numbering_sees_two_keys_behind_one_hash():
    h = np.array([5, 5, 9, 5], np.int64)
    assert kernels.number(h, np.array([1, 1, 2, 1]))[2]
    assert not kernels.number(h, np.array([1, 1, 2, 7]))[2]  # row 3 is someone else
    assert kernels.number(np.zeros(0, np.int64), np.zeros(0, np.int64))[1] == 0


@pytest.mark.parametrize("n", [1, 3, 60])
def test_cells_count_rows_people_and_cost(n):
    rng = np.random.default_rng(n)
    people, rows = 5_000, 80_000
    pid = rng.integers(0, people, rows).astype(np.int32)
    key = rng.integers(0, n + 1, rows).astype(np.int32)  # n: rows not counted
    cost = rng.random(rows)
    got = kernels.cells(pid, key, cost, n, people)
    ok = key < n
    want_rows = np.bincount(key[ok], minlength=n)
    pairs = np.unique(key[ok].astype(np.int64) * people + pid[ok])
    np.testing.assert_array_equal(got[0], want_rows)
    np.testing.assert_array_equal(got[1], np.bincount(pairs // people, minlength=n))
    np.testing.assert_allclose(got[2], np.bincount(key[ok], weights=cost[ok], minlength=n))


def test_earliest_value_per_person():
    pid = np.array([2, 0, 2, 2, 0], np.int32)
    day = np.array([5, 9, 3, 7, 1], np.int32)
    assert kernels.earliest(pid, day, 4, 99).tolist() == [1, 99, 3, 99]


def test_pick_and_renumber():
    codes = np.array([2, 0, 1, 2], np.int32)
    out, seen = kernels.pick(codes, np.array([3, 3, 1], np.int64), 3)
    assert out.tolist() == [2, 2, 0] and seen.tolist() == [1, 0, 2]
    kernels.renumber(out, np.array([7, 8, 9], np.int32))
    assert out.tolist() == [9, 9, 7]


def test_locate_rows_of_served_files():
    loc = np.array([(1 << 40) | 5, 2, (2 << 40) | 1, (7 << 40)], np.int64)  # file 2: not one
    mine, at = kernels.locate(loc, np.array([0, 10, 30], np.int64), 40)
    assert mine.tolist() == [True, True, False, False] and at.tolist() == [15, 2]


def test_local_days_hours_and_the_rows_not_counted():
    lh = np.array([-1, 0, 23, 24, 49], np.int32)  # local hours since the epoch
    ts = np.array([5, 10, 20, 30, 40], np.int64)
    day, hour, out = kernels.when(lh, ts, np.array([1, 1, 0, 1, 1], bool), 10, 40)
    assert day.tolist() == [-1, 0, 0, 1, 2] and hour.tolist() == [23, 0, 23, 0, 1]
    assert out.tolist() == [0, 2, 4]  # before the window, invalid, at its end


def test_rows_whose_hashes_are_among_a_few():
    rng = np.random.default_rng(3)
    h = rng.integers(0, 2**62, 200_000)
    h[::7] = h[5]  # many rows of one value
    values = np.unique(np.r_[h[rng.integers(0, len(h), 500)], rng.integers(0, 2**62, 50)])
    none = np.zeros(0, np.int64)
    np.testing.assert_array_equal(kernels.rows_in(h, values, h, none),
                                  np.flatnonzero(np.isin(h, values)))
    assert kernels.rows_in(h, none, h, none).tolist() == []
    g = rng.integers(0, 2**62, len(h))
    g_values = np.sort(g[rng.integers(0, len(g), 300)])
    np.testing.assert_array_equal(kernels.rows_in(h, values, g, g_values),
                                  np.flatnonzero(np.isin(h, values) | np.isin(g, g_values)))
    np.testing.assert_array_equal(kernels.rows_in(h, none, g, g_values),
                                  np.flatnonzero(np.isin(g, g_values)))
