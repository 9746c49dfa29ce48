"""Campaign report over a large ad event log, beside a plain DuckDB aggregation of it.

Builds (once; cached in ``--dir``) a synthetic ad event log of ``--events`` events (default
100,000,000) as Parquet files laid out as the event log lays them out after compaction: one
file per UTC date, ``events/date=YYYY-MM-DD/part-0.parquet``, every column of
:data:`allscene.events.schema.ARROW_SCHEMA` (the ones ad events do not use are null), rows
sorted by (kind, device_id, ts), zstd, row groups of 256 Ki rows. The events are generated
with numpy and pyarrow directly, fully determined by ``--seed``, never pushed through
``Ingestor``: this benchmark measures the report over the log's files, not ingest.

The traffic: ``--people`` people (default ``min(2,000,000, events / 50)``), each with a phone
and maybe a TV, band or speaker (the identity graph knows every phone and 80% of the other
devices; it is the ``people`` table of the report, and a decision names its person when the
graph knows the device), 6 advertisers with 50 campaigns (2-4 creatives each), 14 days from
2026-03-02 UTC with a daily rhythm in local time. Each ad request makes an ``ad_decision``
(85% ``ad``, priced at the placement's floor CPM and more, else ``no_ad``); 92% of ads are
shown (``ad_impression``, same ``request_id`` and cost, tens of ms to seconds later); 0.3-3%
of impressions are clicked (by placement, 1.5% mostly) 1.5 s to 30 min later; 6% of clicks
convert (lead, activation, purchase; minutes to 20 days later, with the click's
``request_id``); one impression in 2,000 earns a view-through conversion (posted without a
``request_id`` from the person's phone, up to 6 days later); half of the attributed
activations bring a ``retention`` conversion the next day; a few organic conversions come
from devices that saw no ad. Planted invalid traffic, so that every counting rule has work:
0.3% of requests from 500 known bot devices (passed as ``Rules.bot_devices``; they click
15%), 0.1% of shown ads whose decision never reached the log, 0.2% of impressions and 2% of
clicks replayed (a second event, new ``event_id``, later), 3% of clicks sooner than 1 s after
the impression, and click farms (one device, 35 clicks in one hour on one campaign). The
generator keeps its own counts of what it planted (``meta.json``).

Measured, interleaved (baseline, report, baseline, report, ... ``--runs`` times), in one
process, each on a fresh DuckDB connection, over the same files:

* **baseline**: one DuckDB query, impressions, clicks and cost by campaign and local day of
  the advertiser (``read_parquet`` of the same files, ``kind IN ('ad_impression',
  'ad_click') AND advertiser_id = ...``, ``GROUP BY ALL``);
* **report**: :func:`allscene.measurement.metrics.measure` for the same advertiser and all
  of its campaigns, with the default breakdowns of the report page
  (:data:`~allscene.measurement.report.DEFAULT_BREAKDOWNS`), the people table, the media of
  the placement catalog and the bot list: the figures ``allscene report`` computes (without
  the holdout lift: no campaign here holds people out), given a log object whose
  ``files()`` lists the generated files and whose ``served()`` lists their served files:
  each day's impressions joined to their decisions, as the event log's compaction writes
  them (:mod:`allscene.storage.served`; written once, after generating, by the same
  function, and timed);
* with ``--own-join``, also **report, joining itself**: the same report over a log without
  served files (as over days whose served files are stale), which joins every impression
  to its decision as it reads the events.

Which advertiser: a report counts one advertiser's campaigns at a time, so the measured one,
``acme``, owns 70% of the traffic (20 of the 50 campaigns) and both queries count the same
~70% of the events while reading the same files. ``--every-advertiser`` also times the
reports of all 6 advertisers one after another (summed) against the baseline over every
advertiser at once.

Every report is checked against the generator's counts (impressions, clicks, each invalid
traffic rule, conversions, view-through, cost, impressions and clicks per local day) and
every baseline against the raw counts; any difference stops the benchmark. Printed: each
run, the best, events of the log per second, peak RSS and DuckDB spill during each, and the
report's time over the baseline's (goal, issue 7: <= 3x). DuckDB spills into ``.tmp`` under
the current directory, so the benchmark works from ``--dir``; it stops (exit code 3) when the
machine has less than ``--guard-gib`` of memory left rather than let the OOM killer strike.
After generating, it measures in a fresh process (``exec``), without the generator's memory.

Run: ``python bench/bench_report.py [--events 100000000] [--runs 2] [--every-advertiser]
[--own-join]``
(100M events on 2 cores: 4-6 min to generate, 3.2 GiB of Parquet, 1.5-2.5 min to write the
served files, then about 15 s per baseline + report round; the report peaks near 7 GiB RSS
and does not spill; before the one-read rewrite of issue 7 it took far longer, peaked near
15-20 GiB and could spill). The first report of a process is slower than the next ones
(Numba's compiled loops loaded, the arrays' memory first touched): compare the best.
The CPU columns are the process's CPU time (all threads): on a shared machine the wall
times swing with the other load, the CPU ratio much less.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from allscene.audiences.service import MIN_SIZE
from allscene.delivery.decide import PRIOR_CTR
from allscene.events.schema import ARROW_SCHEMA
from allscene.measurement.metrics import Rules, measure
from allscene.measurement.report import DEFAULT_BREAKDOWNS, media_of
from allscene.media.placements import load_placements
from allscene.storage import served
from allscene.storage.duck import connect
from allscene.storage.served import write_partition

console = Console()
GEN_VERSION = 1

START = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
DAYS = 14
US = 1_000_000
DAY_US = 86_400 * US
LOCAL_US = 8 * 3600 * US  # local time is UTC+8, as the decision engine's
START_US = int(START.timestamp()) * US
LOCAL_DAY0 = (START_US + LOCAL_US) // DAY_US
N_LOCAL_DAYS = DAYS + 2

KINDS = ("ad_click", "ad_conversion", "ad_decision", "ad_impression")  # sorted, as compacted
K_CLICK, K_CONV, K_DEC, K_IMP = range(4)
SLOTS = ("phone", "tv", "band", "speaker")  # device slot of a person: what kind of device
SLOT_HAS = (1.0, 0.5, 0.2, 0.15)  # share of people with one
SLOT_W = (1.0, 0.4, 0.1, 0.06)  # how much of a person's ad traffic each device makes
KNOWN = 0.8  # share of non-phone devices the identity graph knows
ADVERTISERS = (("acme", 20, 0.70), ("globex", 6, 0.06), ("initech", 6, 0.06),
               ("umbrella", 6, 0.06), ("hooli", 6, 0.06), ("stark", 6, 0.06))
MEASURED = "acme"
CONV_TYPES = ("lead", "activation", "purchase", "retention")
OUTCOMES = ("ad", "no_ad")
HOUR_W = np.array([0.6, 0.3, 0.2, 0.15, 0.15, 0.3, 0.8, 1.5, 2.0, 1.8, 1.6, 1.7, 2.0, 1.8,
                   1.6, 1.6, 1.7, 1.9, 2.2, 2.6, 2.8, 2.6, 2.0, 1.2])  # by local hour
HOUR_P = HOUR_W / HOUR_W.sum()

P_AD, P_SHOW, CTR = 0.85, 0.92, 0.015
P_DROP, P_DUP_IMP = 0.001, 0.002  # decision lost; impression replayed
BOT_SHARE, N_BOTS, BOT_CTR = 0.003, 500, 0.15
P_FAST, P_DUP_CLK = 0.03, 0.02  # click < 1 s after the impression; click replayed
P_CONV, P_VT, P_RET, P_ORGANIC = 0.06, 0.0005, 0.5, 0.0002
FARM_CLICKS, FARM_EVERY = 35, 250_000  # one farm device-hour per this many decisions
EPD_GUESS = 1.8  # events per decision, refined as days are generated

# Event id variants: prefix + 22 hex digits (the request id, or a conversion's own) + suffix.
VARIANTS = (("dec-", ""), ("imp-", ""), ("imp-", "-r"), ("clk-", ""), ("clk-", "-r"),
            ("conv-", "-lead"), ("conv-", "-activation"), ("conv-", "-purchase"), ("cnv-", ""))
V_DEC, V_IMP, V_IMP_R, V_CLK, V_CLK_R, V_CONV, _, _, V_CNV = range(9)  # V_CONV + conv type
HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
DIGITS = np.frombuffer(b"0123456789", np.uint8)

# What the generator counts per advertiser; "imp: x" / "clk: x" are the report's invalid keys.
IMP_REASONS = ("known bot device", "no matching decision", "duplicate")
CLK_REASONS = ("known bot device", "no counted impression", "duplicate", "too fast",
               "too many clicks from one device in an hour")
COUNTS = ("imp_raw", "imp_valid", *(f"imp: {r}" for r in IMP_REASONS), "clk_raw",
          "clk_valid", *(f"clk: {r}" for r in CLK_REASONS), "conv_ct", "conv_vt")


# --- the synthetic world ---------------------------------------------------------------------

def splitmix64(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hex_digits(v: np.ndarray, width: int) -> np.ndarray:
    """``width`` lowercase hex digits of each (unsigned) value, as an (n, width) byte matrix."""
    v = v.astype(np.uint64)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    return HEX[((v[:, None] >> shifts) & np.uint64(15)).astype(np.intp)]


def dec_digits(v: np.ndarray, width: int) -> np.ndarray:
    p = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return DIGITS[(v.astype(np.int64)[:, None] // p) % 10]


def strings(parts: list[tuple[np.ndarray, np.ndarray | None]], valid: np.ndarray | None = None
            ) -> pa.Array:
    """A string array from byte matrices laid side by side, each with its used length per row
    (``None``: all of it); ``valid`` False rows are null."""
    n = parts[0][0].shape[0]
    mat = np.concatenate([m for m, _ in parts], axis=1)
    masks, length = [], np.zeros(n, np.int64)
    for m, used in parts:
        if used is None:
            masks.append(np.ones(m.shape, bool))
            length += m.shape[1]
        else:
            masks.append(np.arange(m.shape[1])[None, :] < used[:, None])
            length += used
    mask = np.concatenate(masks, axis=1)
    if valid is not None:
        mask &= valid[:, None]
        length = np.where(valid, length, 0)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(length, out=offsets[1:])
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(mat[mask]))])


def padded(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(t) for t in texts) or 1
    mat = np.zeros((len(texts), width), np.uint8)
    for i, t in enumerate(texts):
        mat[i, :len(t)] = np.frombuffer(t.encode(), np.uint8)
    return mat, np.array([len(t) for t in texts])


def coded(names: list[str], codes: np.ndarray) -> pa.Array:
    """``names[code]`` per row, null where the code is negative."""
    return pa.array(names, pa.string()).take(pa.array(codes, mask=codes < 0))


class World:
    """People, devices, placements and campaigns: everything fixed before the first event."""

    def __init__(self, seed: int, people: int):
        rng = np.random.default_rng([seed, 0])
        self.seed, self.people = seed, people
        act = rng.lognormal(0.0, 1.0, people)
        self.person_cdf = np.cumsum(act) / act.sum()
        self.has = np.stack([rng.random(people) < p for p in SLOT_HAS], axis=1)
        self.known = self.has & np.concatenate(
            [np.ones((people, 1), bool), rng.random((people, 3)) < KNOWN], axis=1)
        self.bot_base = 4 * people
        self.farm_base = self.bot_base + N_BOTS
        self.organic_base = self.farm_base + 10_000 * DAYS
        self.salt = np.uint64(splitmix64(np.array([seed]))[0])
        self.servers = np.stack([hex_digits(splitmix64(np.array([seed * 8 + s]))
                                            & np.uint64(2**48 - 1), 12)[0] for s in range(5)])
        self.placements = list(load_placements())
        self.pl_names = [p.id for p in self.placements]
        self.floor = np.array([p.floor_cny for p in self.placements])
        self.ctr = np.array([PRIOR_CTR.get(p.id, CTR) for p in self.placements])
        self.pl_of: list[tuple[np.ndarray, np.ndarray]] = []  # per slot: placements, their cdf
        for slot in SLOTS:
            idx = np.array([i for i, p in enumerate(self.placements) if p.device_type == slot])
            w = np.array([self.placements[i].daily_impressions for i in idx], float)
            self.pl_of.append((idx, np.cumsum(w) / w.sum()))
        self.advertisers = [a for a, _, _ in ADVERTISERS]
        self.campaigns, camp_adv, camp_w = [], [], []
        for a, (name, n, share) in enumerate(ADVERTISERS):
            w = rng.dirichlet(np.full(n, 2.0)) * share
            for k in range(n):
                self.campaigns.append(f"{name}-c{k + 1:02d}")
                camp_adv.append(a)
                camp_w.append(w[k])
        self.camp_adv = np.array(camp_adv)
        self.camp_cdf = np.cumsum(camp_w) / np.sum(camp_w)
        n_cr = rng.integers(2, 5, len(self.campaigns))
        self.cr_first = np.concatenate([[0], np.cumsum(n_cr)[:-1]])
        self.cr_n = n_cr
        self.creatives = [f"{c}-cr{j + 1}" for c, n in zip(self.campaigns, n_cr, strict=True)
                          for j in range(n)]
        self.bot_ids = np.arange(self.bot_base, self.bot_base + N_BOTS)

    def device_hash(self, dev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = dev.astype(np.uint64) ^ self.salt
        return splitmix64(d * np.uint64(2)), splitmix64(d * np.uint64(2) + np.uint64(1))

    def device_ids(self, dev: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
        h1, h2 = self.device_hash(dev)
        return strings([(hex_digits(h1, 16), None), (hex_digits(h2, 16), None)], valid)

    def person_ids(self, person: np.ndarray) -> pa.Array:
        ok = person >= 0
        p = np.where(ok, person, 0)
        return strings([(np.full((len(p), 1), ord("p"), np.uint8), None),
                        (dec_digits(p, 11), None)], ok)

    def people_table(self) -> pa.Table:
        person, slot = np.nonzero(self.known)
        return pa.table({"device_id": self.device_ids(person * 4 + slot),
                         "person_id": self.person_ids(person)})


FIELDS = {"ts": np.int64, "kind": np.int8, "dev": np.int64, "slot": np.int8, "srv": np.int8,
          "ctr": np.int64, "has_rid": bool, "variant": np.int8, "pl": np.int16,
          "camp": np.int16, "cre": np.int16, "outcome": np.int8, "acct": np.int64,
          "cost": np.float64, "ctype": np.int8, "value": np.float64, "adv": np.int8}
DEFAULTS = {"has_rid": True, "pl": -1, "camp": -1, "cre": -1, "outcome": -1, "acct": -1,
            "cost": np.nan, "ctype": -1, "value": np.nan, "slot": 0}


def rows(n: int, **cols) -> dict[str, np.ndarray]:
    """Events as columns of codes (see :func:`to_arrow`), defaults for the columns not given."""
    out = {}
    for k, t in FIELDS.items():
        v = cols.get(k, DEFAULTS.get(k))
        out[k] = np.broadcast_to(np.asarray(v, t), (n,)).copy() if np.ndim(v) == 0 \
            else np.asarray(v, t)
    return out


def cat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in FIELDS}


def take(ev: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in ev.items()}


class Counts:
    """What the generator made, per advertiser: raw and valid events, what each rule must
    remove, conversions, cost, and impressions and clicks per local day."""

    def __init__(self, n_adv: int):
        self.n = {k: np.zeros(n_adv, np.int64) for k in COUNTS}
        self.cost = np.zeros(n_adv)
        self.imp_day = np.zeros((n_adv, N_LOCAL_DAYS), np.int64)
        self.clk_day = np.zeros((n_adv, N_LOCAL_DAYS), np.int64)

    def add(self, key: str, adv: np.ndarray) -> None:
        self.n[key] += np.bincount(adv, minlength=len(self.cost))

    def add_days(self, m: np.ndarray, adv: np.ndarray, ts: np.ndarray) -> None:
        day = (ts + LOCAL_US) // DAY_US - LOCAL_DAY0
        np.add.at(m, (adv, day), 1)

    def as_json(self, names: list[str]) -> dict:
        return {a: {**{k: int(v[i]) for k, v in self.n.items()}, "cost": float(self.cost[i]),
                    "imp_day": self.imp_day[i].tolist(), "clk_day": self.clk_day[i].tolist()}
                for i, a in enumerate(names)}


def gen_day(w: World, day: int, n: int, ctr0: int, cnt: Counts
            ) -> tuple[dict[str, np.ndarray], int]:
    """The ad events of ``n`` requests of UTC day ``day`` (and what follows from them, also on
    later days), id counters from ``ctr0``; and how many counters were used."""
    rng = np.random.default_rng([w.seed, 1, day])
    t0 = START_US + day * DAY_US
    hour = rng.choice(24, n, p=HOUR_P)
    ts = t0 + ((hour - 8) % 24) * 3600 * US + rng.integers(0, 3600 * US, n)
    bot = rng.random(n) < BOT_SHARE
    person = np.minimum(np.searchsorted(w.person_cdf, rng.random(n)), w.people - 1)
    sw = w.has[person] * np.array(SLOT_W)
    cw = np.cumsum(sw, axis=1)
    u = rng.random(n) * cw[:, -1]
    slot = (u[:, None] >= cw[:, :-1]).sum(axis=1)
    dev = person * 4 + slot
    slot[bot], person[bot] = 0, -1
    dev[bot] = rng.choice(w.bot_ids, bot.sum())
    pl = np.zeros(n, np.int64)
    for s, (idx, cdf) in enumerate(w.pl_of):
        m = slot == s
        pl[m] = idx[np.minimum(np.searchsorted(cdf, rng.random(m.sum())), len(idx) - 1)]
    ad = rng.random(n) < P_AD
    camp = np.where(ad, np.searchsorted(w.camp_cdf, rng.random(n)), -1)
    cre = np.where(ad, w.cr_first[np.maximum(camp, 0)]
                   + rng.integers(0, 1 << 30, n) % w.cr_n[np.maximum(camp, 0)], -1)
    adv = np.where(ad, w.camp_adv[np.maximum(camp, 0)], -1)
    price = np.round(w.floor[pl] / 1000 * rng.lognormal(0.3, 0.35, n), 6)
    acct = np.where(bot, -1, np.where(w.known[np.maximum(person, 0), slot], person, -1))
    srv = rng.integers(0, 4, n)
    ctr = ctr0 + np.arange(n)
    base = dict(dev=dev, slot=slot, srv=srv, ctr=ctr, pl=pl)

    # impressions: shown ads; some decisions never reached the log; some replayed
    shown = ad & (rng.random(n) < P_SHOW)
    drop = shown & (rng.random(n) < P_DROP)
    its = ts + 50_000 + rng.exponential(400_000, n).astype(np.int64)
    dup_imp = shown & (rng.random(n) < P_DUP_IMP)
    # clicks: too fast, normal; some replayed
    clicked = shown & (rng.random(n) < np.where(bot, BOT_CTR, w.ctr[pl]))
    fast = clicked & ~bot & (rng.random(n) < P_FAST)
    delay = np.where(fast, rng.uniform(0.05, 0.9, n),
                     1.5 + np.minimum(rng.lognormal(math.log(8), 1.2, n), 1800))
    cts = its + (delay * US).astype(np.int64)
    dup_clk = clicked & ~fast & (rng.random(n) < P_DUP_CLK)
    valid_imp = shown & ~bot & ~drop
    valid_clk = clicked & ~bot & ~drop & ~fast

    parts = [rows(int((~drop).sum()), ts=ts[~drop], kind=K_DEC, variant=V_DEC,
                  outcome=np.where(ad, 0, 1)[~drop], camp=camp[~drop], cre=cre[~drop],
                  adv=adv[~drop], acct=acct[~drop], cost=np.where(ad, price, np.nan)[~drop],
                  **{k: v[~drop] for k, v in base.items()})]

    def ad_rows(m, kind, variant, t, cost=True):
        return rows(int(m.sum()), ts=t[m], kind=kind, variant=variant, camp=camp[m],
                    cre=cre[m], adv=adv[m], cost=price[m] if cost else np.nan,
                    **{k: v[m] for k, v in base.items()})

    rep_its = its + rng.integers(1 * US, 600 * US, n)
    rep_cts = cts + rng.integers(1 * US, 120 * US, n)
    parts += [ad_rows(shown, K_IMP, V_IMP, its), ad_rows(dup_imp, K_IMP, V_IMP_R, rep_its),
              ad_rows(clicked, K_CLICK, V_CLK, cts, False),
              ad_rows(dup_clk, K_CLICK, V_CLK_R, rep_cts, False)]
    for m in (shown, dup_imp):
        cnt.add("imp_raw", adv[m])
    cnt.add("imp: known bot device", adv[shown & bot])
    cnt.add("imp: known bot device", adv[dup_imp & bot])
    cnt.add("imp: no matching decision", adv[shown & drop & ~bot])
    cnt.add("imp: no matching decision", adv[dup_imp & drop & ~bot])
    cnt.add("imp: duplicate", adv[dup_imp & ~drop & ~bot])
    cnt.add("imp_valid", adv[valid_imp])
    cnt.add_days(cnt.imp_day, adv[valid_imp], its[valid_imp])
    np.add.at(cnt.cost, adv[valid_imp], price[valid_imp])
    for m in (clicked, dup_clk):
        cnt.add("clk_raw", adv[m])
    cnt.add("clk: known bot device", adv[clicked & bot])
    cnt.add("clk: known bot device", adv[dup_clk & bot])
    cnt.add("clk: no counted impression", adv[clicked & drop & ~bot])
    cnt.add("clk: no counted impression", adv[dup_clk & drop & ~bot])
    cnt.add("clk: duplicate", adv[dup_clk & ~drop & ~bot])
    cnt.add("clk: too fast", adv[fast & ~drop])
    cnt.add("clk_valid", adv[valid_clk])
    cnt.add_days(cnt.clk_day, adv[valid_clk], its[valid_clk])

    # conversions: click-through (with the click's request id), view-through, retention
    conv = valid_clk & (rng.random(n) < P_CONV)
    ctype = rng.choice(3, n, p=[0.5, 0.35, 0.15])
    cvts = cts + (np.minimum(rng.lognormal(math.log(3600), 1.5, n), 20 * 86_400) * US
                  ).astype(np.int64)
    value = np.where(ctype == 2, np.round(rng.lognormal(5, 1, n), 2), np.nan)
    parts.append(rows(int(conv.sum()), ts=cvts[conv], kind=K_CONV,
                      variant=V_CONV + ctype[conv], camp=camp[conv], adv=adv[conv],
                      ctype=ctype[conv], value=value[conv],
                      **{k: v[conv] for k, v in base.items() if k != "pl"}))
    cnt.add("conv_ct", adv[conv])
    vt = valid_imp & (acct >= 0) & (rng.random(n) < P_VT)
    vts = its + rng.integers(600 * US, 6 * DAY_US, n)
    n_vt = int(vt.sum())
    parts.append(rows(n_vt, ts=vts[vt], kind=K_CONV, variant=V_CNV, dev=person[vt] * 4,
                      srv=4, ctr=ctr[vt], has_rid=False, adv=adv[vt], ctype=ctype[vt],
                      value=value[vt]))
    cnt.add("conv_vt", adv[vt])
    # retention: half the activations of people the graph knows, the next day
    act = np.concatenate([np.flatnonzero(conv & (ctype == 1) & (acct >= 0)),
                          np.flatnonzero(vt & (ctype == 1))])
    act_ts = np.concatenate([cvts[conv & (ctype == 1) & (acct >= 0)], vts[vt & (ctype == 1)]])
    keep = rng.random(len(act)) < P_RET
    act, act_ts = act[keep], act_ts[keep]
    parts.append(rows(len(act), ts=act_ts + rng.integers(20 * 3600 * US, 28 * 3600 * US,
                                                         len(act)),
                      kind=K_CONV, variant=V_CNV, dev=person[act] * 4, srv=4,
                      ctr=ctr0 + n + np.arange(len(act)), has_rid=False, adv=adv[act],
                      ctype=3))
    # organic conversions: devices that saw no ad
    n_org = rng.binomial(n, P_ORGANIC)
    org_camp = np.searchsorted(w.camp_cdf, rng.random(n_org))
    parts.append(rows(n_org, ts=t0 + rng.integers(0, DAY_US, n_org), kind=K_CONV,
                      variant=V_CNV, dev=w.organic_base + rng.integers(0, 1 << 40, n_org),
                      srv=4, ctr=ctr0 + n + len(act) + np.arange(n_org), has_rid=False,
                      adv=w.camp_adv[org_camp], ctype=rng.integers(0, 3, n_org)))

    # click farms: one device, FARM_CLICKS clicks on one campaign within one UTC hour
    farms = max(1, round(n / FARM_EVERY))
    k = farms * FARM_CLICKS
    f_dev = w.farm_base + day * 10_000 + np.repeat(np.arange(farms), FARM_CLICKS)
    f_camp = np.repeat(np.searchsorted(w.camp_cdf, rng.random(farms)), FARM_CLICKS)
    f_hour = np.repeat(rng.integers(0, 24, farms), FARM_CLICKS)
    f_its = t0 + f_hour * 3600 * US + rng.integers(0, 3400 * US, k)
    phone_pl = w.pl_of[0][0]
    f_pl = phone_pl[rng.integers(0, len(phone_pl), k)]
    f_price = np.round(w.floor[f_pl] / 1000 * rng.lognormal(0.3, 0.35, k), 6)
    f_adv = w.camp_adv[f_camp]
    f_cre = w.cr_first[f_camp]
    f_ctr = ctr0 + n + len(act) + n_org + np.arange(k)
    fb = dict(dev=f_dev, srv=rng.integers(0, 4, k), ctr=f_ctr, pl=f_pl, camp=f_camp,
              cre=f_cre, adv=f_adv)
    parts += [rows(k, ts=f_its - 200_000, kind=K_DEC, variant=V_DEC, outcome=0,
                   cost=f_price, **fb),
              rows(k, ts=f_its, kind=K_IMP, variant=V_IMP, cost=f_price, **fb),
              rows(k, ts=f_its + rng.integers(5 * US, 60 * US, k), kind=K_CLICK,
                   variant=V_CLK, **fb)]
    for key in ("imp_raw", "imp_valid", "clk_raw",
                "clk: too many clicks from one device in an hour"):
        cnt.add(key, f_adv)
    cnt.add_days(cnt.imp_day, f_adv, f_its)
    np.add.at(cnt.cost, f_adv, f_price)
    return cat(parts), n + len(act) + n_org + k


def to_arrow(w: World, ev: dict[str, np.ndarray]) -> pa.Table:
    """Event columns of codes as a table of :data:`ARROW_SCHEMA`, sorted by (kind, device_id,
    ts) as compaction sorts a partition."""
    h1, h2 = w.device_hash(ev["dev"])
    order = np.lexsort((ev["ts"], h2, h1, ev["kind"]))
    ev = take(ev, order)
    h1, h2 = h1[order], h2[order]
    n = len(order)
    pre, pre_len = padded([p for p, _ in VARIANTS])
    suf, suf_len = padded([s for _, s in VARIANTS])
    v = ev["variant"]
    mid = np.where((ev["srv"] < 4)[:, None], w.servers[np.minimum(ev["srv"], 3)],
                   w.servers[4])
    rid = np.concatenate([mid, hex_digits(ev["ctr"], 10)], axis=1)
    kind = ev["kind"]
    acct = np.where(kind == K_DEC, ev["acct"], -1)
    cols = {
        "event_id": strings([(pre[v], pre_len[v]), (rid, None), (suf[v], suf_len[v])]),
        "ts": pa.array(ev["ts"], pa.timestamp("us", tz="UTC")),
        "kind": coded(list(KINDS), kind.astype(np.int64)),
        "device_id": strings([(hex_digits(h1, 16), None), (hex_digits(h2, 16), None)]),
        "device_type": coded(list(SLOTS), ev["slot"].astype(np.int64)),
        "schema_version": pa.array(np.ones(n, np.int64)),
        "account_id": w.person_ids(acct),
        "request_id": strings([(rid, None)], ev["has_rid"]),
        "placement_id": coded(w.pl_names, ev["pl"].astype(np.int64)),
        "outcome": coded(list(OUTCOMES), ev["outcome"].astype(np.int64)),
        "campaign_id": coded(w.campaigns, ev["camp"].astype(np.int64)),
        "creative_id": coded(w.creatives, ev["cre"].astype(np.int64)),
        "advertiser_id": coded(w.advertisers, ev["adv"].astype(np.int64)),
        "cost": pa.array(ev["cost"], pa.float64(), mask=np.isnan(ev["cost"])),
        "conversion_type": coded(list(CONV_TYPES), ev["ctype"].astype(np.int64)),
        "value": pa.array(ev["value"], pa.float64(), mask=np.isnan(ev["value"])),
    }
    return pa.table([cols[f.name] if f.name in cols else pa.nulls(n, f.type)
                     for f in ARROW_SCHEMA], schema=ARROW_SCHEMA)


def generate(w: World, out: Path, events: int) -> dict:
    """Write the log under ``out``; returns what ``meta.json`` keeps."""
    cnt = Counts(len(w.advertisers))
    pending: dict[int, list[dict[str, np.ndarray]]] = {}
    files: dict[str, list[str]] = {}
    produced = requests = counter = 0
    epd = EPD_GUESS
    by_kind = np.zeros(len(KINDS), np.int64)
    t = time.perf_counter()

    def flush(day: int) -> None:
        ev = cat(pending.pop(day))
        date = (START + dt.timedelta(days=day)).date().isoformat()
        rel = f"events/date={date}/part-0.parquet"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(to_arrow(w, ev), out / rel, compression="zstd",
                       row_group_size=256 * 1024)
        files[date] = [rel]

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[events]:,} events"), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task(f"generating {events:,} ad events", total=DAYS, events=0)
        for day in range(DAYS):
            n = max(1_000, round((events - produced) / (DAYS - day) / epd))
            ev, used = gen_day(w, day, n, counter, cnt)
            counter += used  # request and conversion counters stay unique
            requests += n
            produced += len(ev["ts"])
            epd = produced / requests
            by_kind += np.bincount(ev["kind"], minlength=len(KINDS))
            eday = (ev["ts"] - START_US) // DAY_US
            for d in np.unique(eday):
                pending.setdefault(int(d), []).append(take(ev, np.flatnonzero(eday == d)))
            del ev, eday
            for d in sorted(k for k in pending if k <= day):
                flush(d)
            bar.update(task, advance=1, events=produced)
        for d in sorted(pending):
            flush(d)
    people = w.people_table()
    pq.write_table(people, out / "people.parquet", compression="zstd")
    return {"version": GEN_VERSION, "events": produced, "people": w.people,
            "devices": int(w.has.sum()), "identity_rows": people.num_rows,
            "by_kind": dict(zip(KINDS, by_kind.tolist(), strict=True)),
            "files": files, "seconds": time.perf_counter() - t,
            "advertisers": w.advertisers,
            "campaigns": {a: [c for c, i in zip(w.campaigns, w.camp_adv, strict=True)
                              if w.advertisers[i] == a] for a in w.advertisers},
            "bots": w.device_ids(w.bot_ids).to_pylist(),
            "expected": cnt.as_json(w.advertisers)}


def load_or_generate(args) -> dict:
    meta_path = args.dir / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (meta.get("version"), meta.get("requested"), meta.get("seed"),
                meta.get("people_arg")) == (GEN_VERSION, args.events, args.seed, args.people):
            console.print(f"using the ad event log in {args.dir} ({meta['events']:,} events, "
                          f"generated earlier in {meta['seconds']:.0f} s)")
            meta["generated_now"] = False
            return meta
    if args.dir.exists():
        if any(args.dir.iterdir()) and not (meta_path.exists() or (args.dir / "events").exists()):
            raise SystemExit(f"{args.dir}: not empty and not a benchmark data directory; "
                             "give another --dir")
        shutil.rmtree(args.dir)
    args.dir.mkdir(parents=True)
    w = World(args.seed, args.people or min(2_000_000, max(10_000, args.events // 50)))
    meta = generate(w, args.dir, args.events)
    meta["requested"], meta["seed"], meta["people_arg"] = args.events, args.seed, args.people
    meta_path.write_text(json.dumps(meta))
    meta["generated_now"] = True
    return meta


# --- measuring -------------------------------------------------------------------------------

class JoinLog:
    """The files of a :class:`FilesLog` without its served files: the report joins every
    impression to its decision itself."""

    def __init__(self, log: FilesLog):
        self.files = log.files


class FilesLog:
    """The generated files as :meth:`ParquetEventLog.files` lists a log's files, and their
    served files (:meth:`ParquetEventLog.served`; all up to date) once :meth:`serve` wrote
    them."""

    def __init__(self, root: Path, by_date: dict[str, list[str]]):
        self.root, self.by_date = root, by_date

    def files(self, dataset: str = "events", start: dt.date | None = None,
              end: dt.date | None = None) -> list[str]:
        if dataset not in ("events", "served"):
            return []
        return [str(self.root / (p if dataset == "events" else self._served(d)))
                for d, ps in sorted(self.by_date.items()) for p in ps
                if (start is None or d >= start.isoformat())
                and (end is None or d <= end.isoformat())]

    def served(self, start: dt.date | None = None, end: dt.date | None = None
               ) -> tuple[list[str], list[str]]:
        return self.files("served", start, end), []

    @staticmethod
    def _served(date: str) -> str:
        return f"served/date={date}/part-0.parquet"

    def serve(self) -> float:
        """Write the served file of each day (as :meth:`ParquetEventLog.build_served` does
        after compaction) unless it is there; returns the seconds it took."""
        t0 = time.perf_counter()
        mark = self.root / "served" / "layout"
        if (mark.read_text() if mark.exists() else None) != served.layout():
            shutil.rmtree(self.root / "served", ignore_errors=True)
        con = connect()
        for d in sorted(self.by_date):
            out = self.root / self._served(d)
            if out.exists():
                continue
            prev = (dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat()
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            write_partition(con, d, self.files("events", dt.date.fromisoformat(prev),
                                               dt.date.fromisoformat(d)), str(tmp))
            tmp.rename(out)
        mark.write_text(served.layout())
        con.close()
        return time.perf_counter() - t0


def tree_size(path: Path) -> int:
    total = 0
    try:
        with os.scandir(path) as it:
            for e in it:
                try:
                    total += tree_size(Path(e.path)) if e.is_dir(follow_symlinks=False) \
                        else e.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    pass
    except (FileNotFoundError, NotADirectoryError):
        pass
    return total


def mem_available() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


class Watch:
    """Peak RSS of this process and peak size of DuckDB's spill directory while a block
    runs (sampled every 50 ms), its wall time, and the CPU time the process spent in it
    (every thread; on a shared machine, the steadier measure of work). When the machine is
    about to run out of
    memory (less than ``guard`` bytes available), says so and ends the process (exit code
    3) before the kernel's OOM killer picks a victim."""

    def __init__(self, spill: Path, label: str, guard: int):
        self.spill, self.label, self.guard = spill, label, guard
        self.rss, self.spilled, self.seconds, self.cpu = 0, 0, 0.0, 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            with open("/proc/self/statm") as fh:
                self.rss = max(self.rss, int(fh.read().split()[1]) * page)
            self.spilled = max(self.spilled, tree_size(self.spill))
            if mem_available() < self.guard:
                console.print(f"[bold red]{self.label}: out of memory after "
                              f"{time.perf_counter() - self._t:.0f} s (peak RSS "
                              f"{fmt_bytes(self.rss)}, DuckDB spill {fmt_bytes(self.spilled)}, "
                              f"less than {fmt_bytes(self.guard)} left): stopped[/bold red]")
                os._exit(3)
            if self._stop.wait(0.05):
                return

    def __enter__(self) -> Watch:
        self._t, self._cpu = time.perf_counter(), time.process_time()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._t
        self.cpu = time.process_time() - self._cpu
        self._stop.set()
        self._thread.join()


BASELINE_SQL = (
    "SELECT campaign_id, CAST(ts + INTERVAL 8 HOUR AS DATE) AS day,"
    " count(*) FILTER (WHERE kind = 'ad_impression') AS impressions,"
    " count(*) FILTER (WHERE kind = 'ad_click') AS clicks,"
    " sum(cost) FILTER (WHERE kind = 'ad_impression') AS cost"
    " FROM read_parquet($paths, union_by_name=true, hive_partitioning=false)"
    " WHERE kind IN ('ad_impression', 'ad_click'){adv} GROUP BY ALL")


def baseline(paths: list[str], adv: str | None) -> list[tuple]:
    """Impressions, clicks and cost by campaign and local day, of one advertiser or all."""
    con = connect()
    try:
        sql = BASELINE_SQL.format(adv=" AND advertiser_id = $adv" if adv else "")
        return con.execute(sql, {"paths": paths} | ({"adv": adv} if adv else {})).fetchall()
    finally:
        con.close()


def check_baseline(rows: list[tuple], exp: list[dict]) -> list[str]:
    got = (sum(r[2] for r in rows), sum(r[3] for r in rows))
    want = (sum(e["imp_raw"] for e in exp), sum(e["clk_raw"] for e in exp))
    return [] if got == want else [f"baseline: impressions, clicks {got} != generated {want}"]


def check_report(m, e: dict, adv: str) -> list[str]:
    """Differences between a report and the generator's counts (empty: none)."""
    bad = []
    t = m.totals

    def eq(what: str, got, want) -> None:
        if got != want:
            bad.append(f"{adv}: {what}: report {got!r} != generated {want!r}")

    eq("impressions", t["impressions"], e["imp_valid"])
    eq("clicks", t["clicks"], e["clk_valid"])
    eq("conversions", t["conversions"], e["conv_ct"] + e["conv_vt"])
    eq("view-through conversions", t["view_through"], e["conv_vt"])
    if not math.isclose(t["cost"], e["cost"], rel_tol=1e-9, abs_tol=1e-4):
        bad.append(f"{adv}: cost: report {t['cost']} != generated {e['cost']}")
    want_invalid = {f"{'impressions' if k.startswith('imp') else 'clicks'}: {k[5:]}": v
                    for k, v in e.items() if k[:5] in ("imp: ", "clk: ") and v}
    eq("invalid traffic", dict(sorted(m.invalid.items())), dict(sorted(want_invalid.items())))
    day0 = dt.date.fromordinal(dt.date(1970, 1, 1).toordinal() + LOCAL_DAY0)
    want_days = {(day0 + dt.timedelta(days=i)).isoformat(): (ni, nc)
                 for i, (ni, nc) in enumerate(zip(e["imp_day"], e["clk_day"], strict=True))
                 if ni}
    got_days = {r["day"]: (r["impressions"], r["clicks"])
                for r in m.breakdowns["day"].to_pylist() if not r["suppressed"]}
    eq("impressions, clicks by local day", got_days,
       {d: v for d, v in want_days.items() if d in got_days})
    if set(want_days) - set(got_days):
        bad.append(f"{adv}: days missing or suppressed: {sorted(set(want_days) - set(got_days))}")
    for name, tab in m.breakdowns.items():
        cells = tab.to_pylist()
        if not any(c["suppressed"] for c in cells):
            eq(f"impressions over the {name} breakdown", sum(c["impressions"] for c in cells),
               t["impressions"])
    return bad


def fail(bad: list[str]) -> None:
    console.print("[bold red]the numbers are wrong; a benchmark of wrong numbers is "
                  "worthless:[/bold red]")
    for b in bad:
        console.print(f"  [red]{b}[/red]")
    raise SystemExit(1)


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit in ("B", "KiB") else f"{n:,.1f} {unit}"
        n /= 1024
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=100_000_000, help="ad events to generate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--people", type=int, default=None,
                    help="default: min(2,000,000, events / 50)")
    ap.add_argument("--dir", type=Path, default=None, help="data directory (cache); default: "
                    "/work/scratch/bench_report/data-<events>-<seed>")
    ap.add_argument("--runs", type=int, default=2, help="interleaved runs of each")
    ap.add_argument("--every-advertiser", action="store_true",
                    help="also: the report of every advertiser in turn vs the baseline of all")
    ap.add_argument("--own-join", action="store_true",
                    help="also: the report joining impressions to decisions itself (as over a"
                         " log whose served files are stale)")
    ap.add_argument("--guard-gib", type=int, default=1,
                    help="stop when the machine has less memory than this available")
    args = ap.parse_args()
    args.dir = (args.dir or Path(f"/work/scratch/bench_report/data-{args.events}-{args.seed}")
                ).resolve()

    meta = load_or_generate(args)
    if meta["generated_now"]:  # measure in a fresh process, without the generator's memory
        console.print("measuring in a fresh process")
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.argv])
    os.chdir(args.dir)  # DuckDB spills into ./.tmp
    spill = args.dir / ".tmp"
    shutil.rmtree(spill, ignore_errors=True)  # left by a run that was killed
    log = FilesLog(args.dir, meta["files"])
    paths = log.files()
    people = pq.read_table(args.dir / "people.parquet")
    media = media_of(load_placements())
    rules = Rules(bot_devices=frozenset(meta["bots"]))
    exp = meta["expected"]
    n_events = meta["events"]

    served_s = log.serve()
    console.print(f"impressions joined to their decisions ahead (served files, as compaction"
                  f" writes them): {served_s:.1f} s" if served_s > 1 else
                  "served files: written by an earlier run")
    joining = JoinLog(log)

    def report(adv: str, own_join: bool = False):
        return measure(joining if own_join else log, adv, meta["campaigns"][adv],
                       by=[list(b) for b in DEFAULT_BREAKDOWNS], people=people, media=media,
                       rules=rules, min_cell=MIN_SIZE)

    plan = [("baseline", MEASURED), ("report", MEASURED)] * args.runs
    if args.own_join:
        plan += [("report, joining", MEASURED)] * args.runs
    if args.every_advertiser:
        plan += [("baseline", None), ("report", None)] * args.runs
    runs: dict[tuple[str, str | None], list[Watch]] = {}
    last = None
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("baseline and report runs", total=len(plan))
        for what, adv in plan:
            label = (f"{what} ({adv or 'every advertiser'}) run "
                     f"{len(runs.get((what, adv), [])) + 1}")
            with Watch(spill, label, args.guard_gib << 30) as w:
                if what == "baseline":
                    rows = baseline(paths, adv)
                else:
                    ms = [(a, report(a, what != "report"))
                          for a in ([adv] if adv else meta["advertisers"])]
            if what == "baseline":
                bad = check_baseline(rows, [exp[a] for a in ([adv] if adv else exp)])
            else:
                bad = [b for a, m in ms for b in check_report(m, exp[a], a)]
                if adv:
                    last = ms[0][1]
            if bad:
                fail(bad)
            runs.setdefault((what, adv), []).append(w)
            bar.console.print(f"{label}: {w.seconds:.2f} s ({w.cpu:.2f} s CPU, load "
                              f"{os.getloadavg()[0]:.1f}), peak RSS {fmt_bytes(w.rss)}, "
                              f"DuckDB spill {fmt_bytes(w.spilled)}; numbers checked")
            bar.advance(task)

    size = sum(tree_size(args.dir / p) for p in ("events", "people.parquet"))
    tab = Table(title=f"campaign report vs plain DuckDB: {n_events:,} ad events, "
                      f"{len(paths)} files ({fmt_bytes(size)}), {os.cpu_count()} cores",
                caption=f"report: measure() of {MEASURED}'s {len(meta['campaigns'][MEASURED])}"
                        f" campaigns, {len(DEFAULT_BREAKDOWNS)} breakdowns; baseline: one "
                        "DuckDB GROUP BY campaign, local day of the same impressions and clicks"
                        "; events/s: events of the log over the best time; CPU: of the"
                        " process (all threads), least of the runs")
    for col in ("what", "runs s", "best s", "events/s", "CPU s", "peak RSS", "spill", "ratio",
                "CPU ratio", "goal"):
        tab.add_column(col, justify="left" if col == "what" else "right")
    labels = {("baseline", MEASURED): f"baseline ({MEASURED})",
              ("report", MEASURED): f"report ({MEASURED})",
              ("report, joining", MEASURED): "report, joining itself",
              ("baseline", None): "baseline (all at once)",
              ("report", None): f"{len(meta['advertisers'])} reports in turn"}
    for adv in ([MEASURED, None] if args.every_advertiser else [MEASURED]):
        base = min(w.seconds for w in runs[("baseline", adv)])
        base_cpu = min(w.cpu for w in runs[("baseline", adv)])
        for what in ("baseline", "report", "report, joining"):
            if (what, adv) not in runs:
                continue
            ws = runs[(what, adv)]
            best, cpu = min(w.seconds for w in ws), min(w.cpu for w in ws)
            tab.add_row(labels[(what, adv)], " ".join(f"{w.seconds:.2f}" for w in ws),
                        f"{best:.2f}", f"{n_events / best / 1e6:,.1f} M", f"{cpu:.2f}",
                        fmt_bytes(max(w.rss for w in ws)), fmt_bytes(max(w.spilled for w in ws)),
                        f"{best / base:.2f}x", f"{cpu / base_cpu:.2f}x",
                        "<= 3x" if what == "report" else "")
    console.print(tab)

    e = exp[MEASURED]
    t = last.totals
    share = (e["imp_raw"] + e["clk_raw"]) / max(1, sum(x["imp_raw"] + x["clk_raw"]
                                                        for x in exp.values()))
    console.print(
        f"data: {', '.join(f'{k} {v:,}' for k, v in meta['by_kind'].items())}; "
        f"{meta['people']:,} people, {meta['devices']:,} devices ({meta['identity_rows']:,} "
        f"in the identity graph); {MEASURED} has {share:.0%} of the impressions and clicks; "
        f"generated in {meta['seconds']:.0f} s")
    console.print(
        f"{MEASURED}: {t['impressions']:,} impressions, {t['clicks']:,} clicks, reach "
        f"{t['reach']:,}, {t['conversions']:,} conversions ({t['view_through']:,} "
        f"view-through), invalid: " + ", ".join(f"{k} {v:,}" for k, v in last.invalid.items())
        + " [green]= the generator's counts, every run[/green]")
    worst = max(min(w.seconds for w in runs[("report", a)])
                / min(w.seconds for w in runs[("baseline", a)])
                for a in ([MEASURED, None] if args.every_advertiser else [MEASURED]))
    if worst > 3:
        console.print(f"[yellow]the report takes {worst:.1f}x the baseline: above the goal "
                      "(<= 3x)[/yellow]")


if __name__ == "__main__":
    main()
