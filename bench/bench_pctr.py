"""pCTR quality and speed: FTRL-Proximal beside gradient boosting and a constant rate.

A synthetic click log (default 1,000,000 impressions; CTR about 2 %) comes from a hidden
logistic model over person tags (gender, age band, income, city tier, car interest) x
creative, placement x hour, scene x creative, temperature x creative; the first 75 % train
(in time order), the rest is held out. There is no weekday column: the hidden model has
no weekday effect, and in a time-ordered split of one week the held-out weekday would be one
the model never saw. Both models read the same columns
(:meth:`~allscene.matching.features.ImpressionHasher.transform_frame` hashes them for FTRL,
:func:`~allscene.matching.evaluate.gbm_matrix` codes them for the trees). Then the real
Criteo (200 rows) and Avazu (100 rows) samples: far too small to rank models (the AUC
interval is printed), there to show the path runs on real logs.

Printed: AUC (+- 1.96 se) and log loss of FTRL (progressive over the training stream, and
held out), GBM (held out), the constant training CTR, and the true model (synthetic only);
training throughput (events/s) beside scikit-learn's SGDClassifier (one epoch) and
LogisticRegression(saga) fitted on the same hashed matrix; scoring throughput (predictions/s)
in batch beside a numpy gather-and-sum and a dense matmul of the same width, and one at a
time (:class:`~allscene.matching.model.PCtr` as the decision engine calls it) beside
sklearn's one-row predict_proba and the engine's prior.

Run: ``.venv/bin/python bench/bench_pctr.py [--events 1000000] [--seed 7]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import warnings

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.linear_model import LogisticRegression, SGDClassifier

from allscene.delivery.campaigns import Campaign
from allscene.delivery.decide import Viewer, prior_pctr
from allscene.matching.evaluate import (
    Dataset,
    compare,
    load_avazu,
    load_criteo,
    score,
    split,
)
from allscene.matching.features import ImpressionHasher
from allscene.matching.ftrl import FTRL
from allscene.matching.model import LOCAL, PCtr
from allscene.media.placements import load_placements

PLACEMENTS = ["phone_splash", "phone_feed", "tv_boot", "lock_screen", "browser_feed",
              "music_banner", "weather_card", "app_store"]
SCENES = ["", "commute_drive", "commute_transit", "tv_prime_time", "running", "at_office",
          "late_work", "cold_snap", "weekend_home"]
CONDITIONS = ["sunny", "cloudy", "rain", "snow", "haze"]


def synthetic(n: int, seed: int) -> tuple[Dataset, np.ndarray]:
    """A click log and the true click probability of each row."""
    rng = np.random.default_rng(seed)
    people = max(1000, n // 20)
    gender = rng.integers(0, 2, people)
    age = rng.integers(18, 71, people)
    income = np.round(np.exp(rng.normal(9, 0.6, people)), -2)
    tier = rng.integers(1, 6, people)
    car = rng.poisson(0.8, people)
    n_cr, n_adv = 40, 8
    cr_adv = np.arange(n_cr) % n_adv
    who = rng.integers(0, people, n)
    pl = rng.choice(len(PLACEMENTS), n, p=[.08, .3, .07, .15, .15, .08, .07, .1])
    cr = rng.integers(0, n_cr, n)
    hour = rng.choice(24, n, p=np.r_[np.full(7, .01), np.full(17, .93 / 17)])
    scene = np.where(rng.random(n) < 0.5, 0, rng.integers(1, len(SCENES), n))
    temp = np.round(rng.normal(12, 9, n), 1)
    cond = rng.integers(0, len(CONDITIONS), n)
    band = np.digitize(age, [25, 35, 45, 55, 65])
    r = np.random.default_rng(seed + 1)
    logit = (-3.9 + r.normal(0, .5, len(PLACEMENTS))[pl] + r.normal(0, .3, n_cr)[cr]
             + r.normal(0, .4, (2, n_cr))[gender[who], cr]
             + r.normal(0, .4, (6, n_cr))[band[who], cr]
             + r.normal(0, .3, (24, len(PLACEMENTS)))[hour, pl]
             + r.normal(0, .5, (len(SCENES), n_cr))[scene, cr]
             + 0.35 * np.minimum(car[who], 4) * (cr_adv[cr] == 0)
             + 0.15 * (tier[who] <= 2) * (cr_adv[cr] == 1)
             + 0.6 * (temp < 5) * (cr % 5 == 0) - 0.3 * (temp < 5) * (cr % 5 == 1))
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.int8)
    adv = np.array([f"adv{a}" for a in range(n_adv)])
    frame = {"placement": np.array(PLACEMENTS)[pl], "creative":
             np.array([f"adv{cr_adv[c]}/camp{c // 4}/c{c}" for c in range(n_cr)])[cr],
             "campaign": np.array([f"adv{cr_adv[c]}/camp{c // 4}" for c in range(n_cr)])[cr],
             "advertiser": adv[cr_adv[cr]], "hour": hour, "scene": np.array(SCENES)[scene],
             "temp_c": temp, "condition": np.array(CONDITIONS)[cond],
             "tag.gender": np.array(["m", "f"])[gender[who]], "tag.age": age[who],
             "tag.income": income[who], "tag.city_tier": tier[who],
             "tag.interest_car": car[who]}
    return Dataset("synthetic", frame, y, tuple(k for k in frame if k.startswith("tag.")
                                                and k != "tag.gender")), p


def rate(n: float, sec: float) -> str:
    return f"{n / sec:,.0f}/s"


def quality(console: Console, title: str, comp, truth=None) -> None:
    t = Table(title=title)
    for c in ("model", "rows", "clicks", "AUC", "+-", "log loss", "mean p / CTR"):
        t.add_column(c, justify="left" if c == "model" else "right")
    rows = [("constant (train CTR)", comp.held_out["constant"]),
            ("FTRL progressive (train stream)", comp.train["FTRL progressive"]),
            ("FTRL held-out", comp.held_out["FTRL held-out"]),
            ("GBM held-out", comp.held_out["GBM held-out"])]
    rows += [(k, v) for k, v in (truth or {}).items()]
    rows += [("train: constant", comp.train["constant"]), ("train: FTRL", comp.train["FTRL"]),
             ("train: GBM", comp.train["GBM"])]
    for name, s in rows:
        t.add_row(name, f"{s.n:,}", f"{s.clicks:,}", f"{s.auc:.4f}", f"{1.96 * s.auc_se:.4f}",
                  f"{s.logloss:.5f}", f"{s.calibration:.3f}")
    console.print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    console = Console(width=150)
    hasher = ImpressionHasher(20)
    t = time.perf_counter()
    ds, p_true = synthetic(a.events, a.seed)
    console.print(f"synthetic log: {len(ds):,} impressions, CTR {ds.y.mean():.4f} "
                  f"({time.perf_counter() - t:.1f} s to generate)")
    ftrl = FTRL(alpha=0.1, beta=1.0, l1=1.0, l2=1.0, bits=20)
    comp = compare(ds, ftrl=ftrl, hasher=hasher.transform_frame)
    tr, te = split(ds)
    k = len(tr)
    quality(console, f"pCTR quality, synthetic ({k:,} train / {len(te):,} held out)", comp,
            {"true model (held-out)": score(te.y, p_true[k:])})
    console.print(f"FTRL: {ftrl.sparsity():.1%} of 2**20 weights zero; fit "
                  f"{comp.seconds['ftrl_fit']:.2f} s, GBM fit {comp.seconds['gbm_fit']:.1f} s "
                  f"({comp.gbm.n_iter_} trees), hashing {comp.seconds['hash']:.2f} s")

    # -- training throughput, same hashed matrix -------------------------------------------------
    Xtr, Xte = hasher.transform_frame(tr.frame), hasher.transform_frame(te.frame)
    speed = Table(title="throughput (same run, same hashed features)")
    for c in ("what", "model", "time", "rate", "held-out AUC", "log loss"):
        speed.add_column(c, justify="left" if c in ("what", "model") else "right")
    m = FTRL(alpha=0.1, bits=20)
    t = time.perf_counter()
    m.fit(Xtr, tr.y)
    sec = time.perf_counter() - t
    s = score(te.y, m.predict_proba(Xte)[:, 1])
    speed.add_row("train (1 pass)", "FTRL (numba)", f"{sec:.2f} s", rate(k, sec),
                  f"{s.auc:.4f}", f"{s.logloss:.5f}")
    sgd = SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)
    t = time.perf_counter()
    sgd.partial_fit(Xtr, tr.y, classes=[0, 1])
    sec = time.perf_counter() - t
    s = score(te.y, sgd.predict_proba(Xte)[:, 1])
    speed.add_row("train (1 pass)", "sklearn SGDClassifier", f"{sec:.2f} s", rate(k, sec),
                  f"{s.auc:.4f}", f"{s.logloss:.5f}")
    lr = LogisticRegression(solver="saga", C=1.0, max_iter=10, tol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        lr.fit(Xtr, tr.y)
        sec = time.perf_counter() - t
    s = score(te.y, lr.predict_proba(Xte)[:, 1])
    speed.add_row(f"train ({lr.n_iter_[0]} epochs)", "sklearn LogisticRegression(saga)",
                  f"{sec:.2f} s", rate(k * lr.n_iter_[0], sec), f"{s.auc:.4f}", f"{s.logloss:.5f}")

    # -- scoring: batch --------------------------------------------------------------------------
    nte = Xte.shape[0]
    t = time.perf_counter()
    m.predict_proba(Xte)
    sec = time.perf_counter() - t
    speed.add_row("score batch", "FTRL predict_proba (CSR)", f"{sec:.3f} s", rate(nte, sec),
                  "", "")
    t = time.perf_counter()
    lr.predict_proba(Xte)
    sec = time.perf_counter() - t
    speed.add_row("score batch", "sklearn LR predict_proba (CSR)", f"{sec:.3f} s",
                  rate(nte, sec), "", "")
    width = int(np.diff(Xte.indptr).max())
    idx = np.zeros((nte, width), np.int64)
    for j in range(width):  # rows padded to one width with index 0 (weight ignored here)
        idx[:, j] = Xte.indices[np.minimum(Xte.indptr[:-1] + j, Xte.indptr[1:] - 1)]
    w = m.coef_
    t = time.perf_counter()
    w[idx].sum(axis=1)
    sec = time.perf_counter() - t
    speed.add_row("score batch", f"numpy gather + sum ({width} per row)", f"{sec:.3f} s",
                  rate(nte, sec), "", "")
    dense = np.random.default_rng(0).random((nte, width))
    t = time.perf_counter()
    dense @ w[:width]
    sec = time.perf_counter() - t
    speed.add_row("score batch", f"numpy dense matmul ({nte:,} x {width})", f"{sec:.3f} s",
                  rate(nte, sec), "", "")

    # -- scoring: one at a time, as the decision engine asks ------------------------------------
    placements = load_placements()
    feed = placements.by_id("phone_feed")
    camp = Campaign.model_validate({
        "id": "camp0", "name": "c", "flights": [{"start": "2026-10-01T00:00:00Z",
                                                 "end": "2026-10-15T00:00:00Z"}],
        "budget": {"total": 1000}, "bid": {"type": "cpc", "amount": 1},
        "creatives": [{"id": "c0", "format": "text", "text": "hi"}]})
    tags = {f"p{i}": {"gender": "f", "age": 20 + i % 40, "income": 8000 + 100 * i,
                      "city_tier": 1 + i % 5, "interest_car": i % 4} for i in range(1000)}
    noon = dt.datetime(2026, 10, 12, 12, tzinfo=LOCAL).timestamp()
    pctr = PCtr(m, hasher=hasher, tags_of=tags.get, advertiser_of=lambda c: "adv0",
                clock=lambda: noon, weather=lambda: {"temp_c": 3.0, "condition": "snow"})
    cold = PCtr(m, hasher=hasher, tags_of=tags.get, advertiser_of=lambda c: "adv0",
                clock=lambda: noon, weather=lambda: {"temp_c": 3.0, "condition": "snow"},
                max_cached=1)  # nothing kept: every part hashed on every call
    viewers = [Viewer(f"p{i}", scenes=frozenset({SCENES[i % len(SCENES)]} - {""}))
               for i in range(1000)]
    reps = 100_000
    for v in viewers:  # warm the per-person cache, as a running server has it
        pctr(v, camp, feed)
    for name, fn in (("PCtr(viewer, campaign, placement)", lambda v: pctr(v, camp, feed)),
                     ("PCtr, no caches (all hashed per call)",
                      lambda v: cold(v, camp, feed)),
                     ("prior_pctr (the engine's default)",
                      lambda v: prior_pctr(v, camp, feed))):
        t = time.perf_counter()
        for i in range(reps):
            fn(viewers[i % 1000])
        sec = time.perf_counter() - t
        speed.add_row("score one", name, f"{sec / reps * 1e6:.2f} us", rate(reps, sec), "", "")
    one = [Xte[i] for i in range(1000)]
    ids = [r.indices for r in one]
    for name, fn in (("FTRL.predict_one(indices)", lambda i: m.predict_one(ids[i])),
                     ("sklearn LR predict_proba (1 row)", lambda i: lr.predict_proba(one[i]))):
        n1 = reps if "FTRL" in name else 5000
        t = time.perf_counter()
        for i in range(n1):
            fn(i % 1000)
        sec = time.perf_counter() - t
        speed.add_row("score one", name, f"{sec / n1 * 1e6:.2f} us", rate(n1, sec), "", "")
    console.print(speed)

    # -- the real samples ----------------------------------------------------------------------
    for load in (load_criteo, load_avazu):
        try:
            real = load()
        except FileNotFoundError as e:
            console.print(f"[yellow]skipped: {e}")
            continue
        c = compare(real, ftrl=FTRL(alpha=0.1))
        quality(console, f"{real.name} sample ({len(real)} rows, CTR {real.y.mean():.3f}; "
                         f"tiny: the intervals are wide)", c)


if __name__ == "__main__":
    main()
