"""The scene engine's inner loop, compiled to machine code with Numba.

This module is the fixed half of a compiled catalog: :mod:`allscene.moments.program` appends
the catalog's conditions (``cond_when``, ``cond_until``: one branch per scene) to this
source, writes the result to a cache file named by the catalog's digest and imports it, so
Numba compiles it once per catalog and machine (``cache=True``).

State is held in arrays, one row per person:

* ``S[p, F_...]``: place, place changed, network, city, home city, away, day type when the
  trip began, usual hour of leaving work, local hour, earliest hold to expire (strings are
  codes of the catalog's string table, -1 unknown);
* ``last[p, c]``: when each signal that ``seen()`` reads last matched (-1 never);
* ``act[p, k]``: until when scene ``k`` holds, -1 when the person is not in it;
* windows of values for aggregates: ``slot[p, s]`` is the row of the pool (``rt`` times,
  ``rv`` values, NaN unknown) holding person ``p``'s last :data:`RING` values of series
  ``s``, -1 none; a ring from ``rhead`` of ``rlen`` entries.

The step is the one described in :mod:`allscene.moments.engine`; :func:`run` applies it to
events ``lo..hi`` and returns where it stopped (early when the output or the pool is full:
the caller drains or grows them and calls again).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from allscene.moments.names import (
    CITY,
    F_AWAY,
    F_CITY,
    F_HOME,
    F_HOUR,
    F_MOVED,
    F_NET,
    F_NEXT,
    F_PLACE,
    F_TRIP,
    NETWORK,
    PLACE,
    TIME,
)

RING = 64  # values kept per person and series
NEVER_EXP = 1 << 62
HOUR_US = 3_600_000_000
LOCAL_US = 8 * HOUR_US
ENTER, EXIT = 0, 1


# --- windows of values ------------------------------------------------------------------------

@njit(cache=True)
def _count(q, rt, rv, rhead, rlen, t, w):
    if q < 0:
        return 0
    lo, c, h = t - w, 0, rhead[q]
    for j in range(rlen[q]):
        if rt[q, (h + j) % RING] >= lo:
            c += 1
    return c


@njit(cache=True)
def _sum(q, rt, rv, rhead, rlen, t, w):
    if q < 0:
        return 0.0
    lo, c, h = t - w, 0.0, rhead[q]
    for j in range(rlen[q]):
        i = (h + j) % RING
        if rt[q, i] >= lo and not np.isnan(rv[q, i]):
            c += rv[q, i]
    return c


@njit(cache=True)
def _max(q, rt, rv, rhead, rlen, t, w):
    out = np.nan
    if q < 0:
        return out
    lo, h = t - w, rhead[q]
    for j in range(rlen[q]):
        i = (h + j) % RING
        if rt[q, i] >= lo and not np.isnan(rv[q, i]) and (np.isnan(out) or rv[q, i] > out):
            out = rv[q, i]
    return out


@njit(cache=True)
def _min(q, rt, rv, rhead, rlen, t, w):
    out = np.nan
    if q < 0:
        return out
    lo, h = t - w, rhead[q]
    for j in range(rlen[q]):
        i = (h + j) % RING
        if rt[q, i] >= lo and not np.isnan(rv[q, i]) and (np.isnan(out) or rv[q, i] < out):
            out = rv[q, i]
    return out


@njit(cache=True)
def _last(q, rt, rv, rhead, rlen, t, w):
    if q < 0 or rlen[q] == 0:
        return np.nan
    i = (rhead[q] + rlen[q] - 1) % RING
    return rv[q, i] if w == 0 or rt[q, i] >= t - w else np.nan


@njit(cache=True)
def _append(q, rt, rv, rhead, rlen, t, v, w):
    """Add ``(t, v)`` to ring ``q``, then drop what is older than ``t - w``."""
    if rlen[q] == RING:
        rhead[q] = (rhead[q] + 1) % RING
        rlen[q] -= 1
    i = (rhead[q] + rlen[q]) % RING
    rt[q, i] = t
    rv[q, i] = v
    rlen[q] += 1
    lo = t - w
    while rt[q, rhead[q]] < lo:
        rhead[q] = (rhead[q] + 1) % RING
        rlen[q] -= 1


# --- the conditions (replaced by the catalog's own in a compiled program) ----------------------

@njit(cache=True)
def cond_when(k, r, p, t, hi, M, S, last, act, cal, W, slot, rt, rv, rhead, rlen):
    return False


@njit(cache=True)
def cond_until(k, r, p, t, hi, M, S, last, act, cal, W, slot, rt, rv, rhead, rlen):
    return False


# --- the step --------------------------------------------------------------------------------

@njit(cache=True)
def _emit(ctr, o_t, o_p, o_k, o_kind, o_trig, t, p, k, kind, trig):
    j = ctr[1]
    o_t[j], o_p[j], o_k[j], o_kind[j], o_trig[j] = t, p, k, kind, trig
    ctr[1] = j + 1


@njit(cache=True)
def _next_exp(act, p):
    m = NEVER_EXP
    for k in range(act.shape[1]):
        if act[p, k] >= 0 and act[p, k] < m:
            m = act[p, k]
    return m


@njit(cache=True)
def expire(p, t, S, act, ctr, o_t, o_p, o_k, o_kind, o_trig, ended):
    """End person ``p``'s scenes whose hold ran out before ``t``, at the moment it ran out,
    in order of that moment; they go to ``ended`` (returns how many)."""
    n = 0
    for k in range(act.shape[1]):
        if act[p, k] >= 0 and act[p, k] < t:
            j = n  # insertion by (until, k)
            while j > 0 and act[p, ended[j - 1]] > act[p, k]:
                ended[j] = ended[j - 1]
                j -= 1
            ended[j] = k
            n += 1
    for j in range(n):
        k = ended[j]
        _emit(ctr, o_t, o_p, o_k, o_kind, o_trig, act[p, k], p, k, EXIT, -1)
        act[p, k] = -1
    S[p, F_NEXT] = _next_exp(act, p)
    return n


@njit(cache=True)
def flush(until, S, act, ctr, o_t, o_p, o_k, o_kind, o_trig):
    """End, for everyone, the scenes whose hold ran out by ``until``; returns the first
    person not done (all when the output had room)."""
    ended = np.empty(act.shape[1], np.int64)
    for p in range(S.shape[0]):
        if S[p, F_NEXT] < until:
            if ctr[1] + act.shape[1] > o_t.shape[0]:
                return p
            expire(p, until, S, act, ctr, o_t, o_p, o_k, o_kind, o_trig, ended)
    return S.shape[0]


@njit(cache=True)
def run(lo, hi, e_p, e_t, e_r, e_place, e_city, e_net, sp_ptr, sp_idx, M, vals, h0, cal,
        wtab, S, last, act, slot, rt, rv, rhead, rlen, ctr, o_t, o_p, o_k, o_kind, o_trig,
        bs_ptr, bs_idx, w_ptr, w_idx, u_ptr, u_idx, cf_ptr, cf_idx, clock, nd_ptr, nd_col,
        nd_win, in_ptr, in_idx, bits, free, lasts, has_until, seen_col, ss_ptr, ss_sid,
        window, rest_code):
    """Events ``lo..hi`` (person ``e_p``, time ``e_t``, row ``e_r`` of ``M``/``vals``/the
    matched signals ``sp_*``, resolved place, city and network codes or -1) through the
    step. Returns the index of the first event not processed."""
    nk = act.shape[1]
    nseries = window.shape[0]
    queued = np.zeros(nk, np.bool_)
    cand = np.zeros(nk, np.bool_)
    cl = np.empty(nk, np.int64)  # the candidates, each once
    ended = np.empty(nk, np.int64)
    nan_w = np.full(6, np.nan)
    for i in range(lo, hi):
        if ctr[1] + 3 * nk > o_t.shape[0] or ctr[0] + nseries > rt.shape[0]:
            return i
        p, t, r = e_p[i], e_t[i], e_r[i]
        kmin, kmax = nk, -1
        ncand = 0
        if t > S[p, F_NEXT]:
            n = expire(p, t, S, act, ctr, o_t, o_p, o_k, o_kind, o_trig, ended)
            for j in range(n):  # its hold ran out: it may still (again) hold now
                k = ended[j]
                queued[k] = True
                kmin, kmax = min(kmin, k), max(kmax, k)
                for x in u_idx[u_ptr[k]:u_ptr[k + 1]]:
                    queued[x] = True
                    kmax = max(kmax, x)
        hour = (t + LOCAL_US) // HOUR_US
        hi_ = hour - h0
        sl = cal[hi_, 0] + (24 if cal[hi_, 4] == rest_code else 0)
        for j in range(sp_ptr[r], sp_ptr[r + 1]):
            sig = sp_idx[j]
            c = seen_col[sig]
            if c >= 0:
                last[p, c] = t
            b = sig * 48 + sl
            for k in bs_idx[bs_ptr[b]:bs_ptr[b + 1]]:
                if not cand[k]:
                    cand[k] = True
                    cl[ncand] = k
                    ncand += 1
            for k in w_idx[w_ptr[sig]:w_ptr[sig + 1]]:
                if act[p, k] >= 0:
                    queued[k] = True
                    kmin, kmax = min(kmin, k), max(kmax, k)
            for jj in range(ss_ptr[sig], ss_ptr[sig + 1]):
                sid = ss_sid[jj]
                q = slot[p, sid]
                if q < 0:
                    q = ctr[0]
                    ctr[0] = q + 1
                    slot[p, sid] = q
                    rhead[q] = 0
                    rlen[q] = 0
                _append(q, rt, rv, rhead, rlen, t, vals[r, sid], window[sid])
        changed = 0
        if hour != S[p, F_HOUR]:
            S[p, F_HOUR] = hour
            changed = TIME
        S[p, F_MOVED] = 0
        if e_place[i] >= 0 and e_place[i] != S[p, F_PLACE]:
            S[p, F_PLACE] = e_place[i]
            S[p, F_MOVED] = 1
            changed |= PLACE
        if e_net[i] >= 0 and e_net[i] != S[p, F_NET]:
            S[p, F_NET] = e_net[i]
            changed |= NETWORK
        city = e_city[i]
        if city >= 0 and city != S[p, F_CITY]:
            S[p, F_CITY] = city
            away = S[p, F_HOME] >= 0 and city != S[p, F_HOME]
            if away and S[p, F_AWAY] == 0:
                S[p, F_TRIP] = cal[hi_, 4]
            S[p, F_AWAY] = 1 if away else 0
            changed |= CITY
        if changed:
            b = changed * 48 + sl
            for k in cf_idx[cf_ptr[b]:cf_ptr[b + 1]]:
                if not cand[k]:
                    cand[k] = True
                    cl[ncand] = k
                    ncand += 1
            # Active scenes: re-checked when what they read changed; otherwise a scene that
            # needs no event to hold is still true, and its hold is extended.
            for k in range(nk):
                if act[p, k] >= 0:
                    if bits[k] & changed:
                        queued[k] = True
                        kmin, kmax = min(kmin, k), max(kmax, k)
                    elif free[k]:
                        act[p, k] = t + lasts[k]
            # S[p, F_NEXT] stays a lower bound of the holds (extending one only raises it);
            # expire() makes it exact when it is passed.
        for k in clock:
            if act[p, k] >= 0 or (in_ptr[k] < in_ptr[k + 1] and act[p, in_idx[in_ptr[k]]] >= 0):
                queued[k] = True
                kmin, kmax = min(kmin, k), max(kmax, k)
        for j in range(ncand):
            k = cl[j]
            cand[k] = False
            if act[p, k] >= 0:
                continue
            ok = True
            for x in in_idx[in_ptr[k]:in_ptr[k + 1]]:
                if act[p, x] < 0:
                    ok = False
                    break
            if ok:
                for jj in range(nd_ptr[k], nd_ptr[k + 1]):
                    if t - last[p, nd_col[jj]] > nd_win[jj]:
                        ok = False
                        break
            if ok:
                queued[k] = True
                kmin, kmax = min(kmin, k), max(kmax, k)
        if kmax < 0:
            continue
        wc = S[p, F_CITY] if S[p, F_CITY] >= 0 else S[p, F_HOME]
        W = wtab[wc, hi_] if 0 <= wc < wtab.shape[0] else nan_w
        k = kmin - 1
        while k < kmax:  # scenes come after those they read: one pass
            k += 1
            if not queued[k]:
                continue
            queued[k] = False
            flip = False
            if act[p, k] >= 0:
                if has_until[k] and cond_until(k, r, p, t, hi_, M, S, last, act, cal, W, slot,
                                               rt, rv, rhead, rlen):
                    act[p, k] = -1
                    _emit(ctr, o_t, o_p, o_k, o_kind, o_trig, t, p, k, EXIT, r)
                    flip = True
                elif cond_when(k, r, p, t, hi_, M, S, last, act, cal, W, slot, rt, rv, rhead,
                               rlen):
                    act[p, k] = t + lasts[k]  # a later hold: F_NEXT stays a lower bound
            elif cond_when(k, r, p, t, hi_, M, S, last, act, cal, W, slot, rt, rv, rhead, rlen):
                act[p, k] = t + lasts[k]
                _emit(ctr, o_t, o_p, o_k, o_kind, o_trig, t, p, k, ENTER, r)
                flip = True
                if t + lasts[k] < S[p, F_NEXT]:
                    S[p, F_NEXT] = t + lasts[k]
            if flip:
                for x in u_idx[u_ptr[k]:u_ptr[k + 1]]:
                    queued[x] = True
                    kmax = max(kmax, x)
    return hi
