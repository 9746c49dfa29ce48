"""The loops of a report that numpy cannot write without temporaries, compiled (Numba).

Once DuckDB has read the impressions, a few passes over every one of them make most of a
report's time: numbering the people (:func:`number`: a hash table from each person's hash
to ``0 .. P - 1``, checking the second hash as it goes), counting each breakdown's rows,
cost and reach (:func:`cells`: reach as distinct (person, cell) pairs, marked in a bit
matrix an eighth the size of a boolean one, so that it stays in the cache, and counted as
each bit is first set), and picking each impression's breakdown value from the served
files' dictionaries (:func:`pick`, :func:`renumber`). In numpy each would be several
passes through arrays as long as the impressions. Compiled once per machine
(``cache=True``); the loops let go of the GIL, so breakdowns are counted on several threads
at once.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def number(h: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Each row's key ``h`` numbered ``0 .. K - 1`` in order of first appearance, ``K``,
    and whether every row of a number has the same ``h2`` as its first (else two keys
    share ``h``; the numbers are then not to be used).

    An open-addressing table of ``h`` (linear probing from its low bits; ``h`` are hashes),
    doubled when half full."""
    size = 1 << 16
    keys = np.empty(size, np.int64)
    ids = np.full(size, -1, np.int32)
    first2 = np.empty(max(len(h), 1), np.int64)
    out = np.empty(len(h), np.int32)
    k = 0
    agree = True
    for i in range(len(h)):
        x = h[i]
        s = x & (size - 1)
        while ids[s] >= 0 and keys[s] != x:
            s = (s + 1) & (size - 1)
        if ids[s] < 0:
            keys[s] = x
            ids[s] = k
            first2[k] = h2[i]
            k += 1
            if 2 * k > size:  # rehash into twice the slots
                size *= 2
                nkeys = np.empty(size, np.int64)
                nids = np.full(size, -1, np.int32)
                for j in range(len(ids)):
                    if ids[j] >= 0:
                        t = keys[j] & (size - 1)
                        while nids[t] >= 0:
                            t = (t + 1) & (size - 1)
                        nkeys[t] = keys[j]
                        nids[t] = ids[j]
                keys, ids = nkeys, nids
            out[i] = k - 1
        else:
            out[i] = ids[s]
            if first2[ids[s]] != h2[i]:
                agree = False
    return out, k, agree


@njit(cache=True, nogil=True)
def cells(pid: np.ndarray, key: np.ndarray, cost: np.ndarray, n: int, people: int
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell (``key``, ``0 .. n - 1``; rows with ``key >= n`` are not counted): rows,
    distinct people (``pid``, ``0 .. people - 1``) and the sum of ``cost``. One bit per
    (person, cell) pair, a cell's reach counted as its bit is first set.

    Without a branch: the rows not counted go to a cell ``n`` of their own (a column more
    in the bit matrix), and every row sets its bit and adds whether it was clear (a
    branch on that bit took twice as long)."""
    width = np.int64(n) + 1
    bits = np.zeros((people * width + 7) // 8, np.uint8)
    rows = np.zeros(width, np.int64)
    reach = np.zeros(width, np.int64)
    total = np.zeros(width, np.float64)
    for i in range(len(pid)):
        c = min(np.int64(key[i]), n)
        rows[c] += 1
        total[c] += cost[i]
        j = pid[i] * width + c
        b = bits[j >> 3]
        reach[c] += ((~b) >> (j & 7)) & 1
        bits[j >> 3] = b | np.uint8(1 << (j & 7))
    return rows[:n], reach[:n], total[:n]


@njit(cache=True, nogil=True)
def earliest(pid: np.ndarray, value: np.ndarray, people: int, none: int) -> np.ndarray:
    """Per person (``pid``, ``0 .. people - 1``), the least ``value`` of their rows
    (``none``: no row)."""
    out = np.full(people, none, value.dtype)
    for i in range(len(pid)):
        if value[i] < out[pid[i]]:
            out[pid[i]] = value[i]
    return out


@njit(cache=True, nogil=True)
def pick(codes: np.ndarray, at: np.ndarray, values: int) -> tuple[np.ndarray, np.ndarray]:
    """``codes[at]`` (each ``0 .. values - 1``) and how many times each value was picked."""
    out = np.empty(len(at), np.int32)
    seen = np.zeros(values, np.int64)
    for i in range(len(at)):
        c = codes[at[i]]
        out[i] = c
        seen[c] += 1
    return out, seen


@njit(cache=True, nogil=True)
def renumber(codes: np.ndarray, index: np.ndarray) -> None:
    """``codes[i] = index[codes[i]]``, in place."""
    for i in range(len(codes)):
        codes[i] = index[codes[i]]


@njit(cache=True, nogil=True)
def locate(loc: np.ndarray, starts: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Which ``loc`` (``file << bits | row``) are rows of the files ``starts`` begins
    (``starts[f]``: the first row of file ``f`` among the files read as one; its last entry
    the rows of all), and, for those, their rows among all."""
    files = len(starts) - 1
    mine = np.empty(len(loc), np.bool_)
    at = np.empty(len(loc), np.int64)
    k = 0
    for i in range(len(loc)):
        f = loc[i] >> bits
        mine[i] = f < files
        if f < files:
            at[k] = starts[f] + (loc[i] & ((np.int64(1) << bits) - 1))
            k += 1
    return mine, at[:k]


@njit(cache=True, nogil=True)
def when(lh: np.ndarray, ts: np.ndarray, valid: np.ndarray, start: int, end: int
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's local day and hour (``lh``: local hours since the epoch), and the rows
    not counted: not ``valid``, or ``ts`` (microseconds) outside ``[start, end)``."""
    day = np.empty(len(lh), np.int32)
    hour = np.empty(len(lh), np.int32)
    out = np.empty(len(lh), np.int64)
    k = 0
    for i in range(len(lh)):
        d = lh[i] // 24  # floor, as Python's
        day[i] = d
        hour[i] = lh[i] - d * 24
        if not (valid[i] and start <= ts[i] < end):
            out[k] = i
            k += 1
    return day, hour, out[:k]


@njit(cache=True, nogil=True)
def _bitmap(values: np.ndarray) -> np.ndarray:
    """A bit for each low 24 bits of ``values`` (2 MiB)."""
    bits = np.zeros(1 << 21, np.uint8)
    for v in values:
        b = v & 0xFFFFFF
        bits[b >> 3] |= np.uint8(1 << (b & 7))
    return bits


@njit(cache=True, nogil=True)
def _has(bits: np.ndarray, values: np.ndarray, x: int) -> bool:
    b = x & 0xFFFFFF
    if not bits[b >> 3] & (1 << (b & 7)):
        return False
    j = np.searchsorted(values, x)
    return j < len(values) and values[j] == x


@njit(cache=True, nogil=True)
def rows_in(h: np.ndarray, values: np.ndarray, g: np.ndarray, g_values: np.ndarray
            ) -> np.ndarray:
    """The rows whose ``h`` is one of ``values`` or whose ``g`` is one of ``g_values``
    (both sorted; ``g`` as long as ``h``, or not looked at when ``g_values`` is empty),
    ascending.

    A bitmap of the values' low 24 bits sifts the rows, 256 at a time and without a
    branch, so that many of its lookups are under way at once (a branch per row took
    three times as long); only the rows it lets through are looked up in the values."""
    bits, g_bits = _bitmap(values), _bitmap(g_values)
    either = len(g_values) > 0
    out = np.empty(len(h) // 16 + 16, np.int64)
    maybe = np.empty(256, np.int64)
    k = 0
    for lo in range(0, len(h), 256):
        m = 0
        for i in range(lo, min(len(h), lo + 256)):
            b = h[i] & 0xFFFFFF
            hit = (bits[b >> 3] >> (b & 7)) & 1
            if either:
                c = g[i] & 0xFFFFFF
                hit |= (g_bits[c >> 3] >> (c & 7)) & 1
            maybe[m] = i
            m += hit
        for t in range(m):
            i = maybe[t]
            if _has(bits, values, h[i]) or (either and _has(g_bits, g_values, g[i])):
                if k == len(out):
                    grown = np.empty(2 * len(out), np.int64)
                    grown[:k] = out
                    out = grown
                out[k] = i
                k += 1
    return out[:k]
