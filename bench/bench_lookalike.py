"""Lookalike expansion: seconds per phase and precision@N against a hidden intent.

Builds a synthetic wide tag table of ``--people`` people (37 tags: demographics, devices,
a car, counts of interests and actions in 30- and 90-day windows; nulls where a person lacks
a tag) in which a hidden first-car purchase intent drives a few tags through noise: more
car views, loan searches, dealer-app opens and auto-mall visits, while car owners and heavy
users view cars too. The seed is ``--seed-size`` intent holders; 3% of people have opted
out of personalized ads and are excluded. The expansion to ``--size`` people is timed by
phase, beside a baseline from the same run: one matrix-vector product over an
in-memory people x features float32 matrix (the least any scoring of everyone must do).

Quality: precision@N (the share of intent holders among the N people returned) of the
expansion, of N random candidates, and of the best single-tag rule, chosen with the hidden
intent itself (so an optimistic baseline; see ``best_single_tag_rule`` for the exact
definition: any one-tag condition, its matches padded at random up to N).

Goals (issue 4): 10M people, seed 10k, size 1M in < 60 s and < ~8 GiB; precision@N
>= 3x random and above the best single-tag rule.

Run: ``python bench/bench_lookalike.py [--people 10000000] [--method all]``
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap
from rich.console import Console
from rich.table import Table

from allscene.audiences.lookalike import (
    DEFAULT_METHOD,
    METHODS,
    LookalikeClassifier,
    TagEncoder,
    expand_lookalike,
)
from allscene.audiences.quality import best_single_tag_rule, precision_at_n

MAKES = ["byd", "volkswagen", "toyota", "honda", "geely", "changan", "nissan", "buick",
         "chevrolet", "tesla", "bmw", "mercedes", "audi", "haval", "chery", "wuling",
         "hyundai", "kia", "ford", "nio"]


def _strings(values: list[str], codes: np.ndarray, missing: np.ndarray | None = None):
    """A string column from codes into ``values`` (a dictionary take: fast at 10M rows)."""
    idx = pa.array(codes.astype(np.int32), mask=missing)
    return pa.array(values).take(idx)


def synthetic_tags(n: int, seed: int = 7) -> tuple[pa.Table, np.ndarray]:
    """A wide tag table and the hidden first-car intent (a boolean mask over its rows)."""
    rng = np.random.default_rng(seed)
    r = lambda: rng.random(n, dtype=np.float32)  # noqa: E731
    age = rng.integers(18, 71, n)
    male = r() < 0.5
    tier = rng.choice(5, n, p=[0.1, 0.2, 0.3, 0.25, 0.15]) + 1
    income = np.round(np.exp(rng.normal(8.6 + 0.15 * (5 - tier) + 0.01 * np.minimum(age - 18, 25),
                                        0.5)) / 100) * 100
    married = r() < np.clip((age - 20) / 20, 0.05, 0.8)
    kids = np.where(married, rng.poisson(1.0, n), 0).clip(0, 3)
    owns_car = r() < np.clip(0.1 + income / 40_000 + 0.1 * married, 0, 0.85)
    logit = (-4.3 + 1.1 * ((age >= 23) & (age <= 38)) + 0.8 * ((income >= 6000) & (income <= 20000))
             - 2.2 * owns_car + 0.5 * married + 0.3 * (tier <= 3))
    intent = r() < 1 / (1 + np.exp(-logit))
    # How loudly an intent holder shows it (some hardly at all), and how active a user is:
    # heavy users view everything more, which is what fools a single-tag rule.
    loud = np.where(intent, rng.gamma(1.5, 1 / 1.5, n), 0.0)
    active = rng.lognormal(0.0, 0.6, n)
    band = r() < 0.35
    young = age < 30

    def count(base, *, by_activity=True):
        lam = np.asarray(base, dtype=float) * (active if by_activity else 1.0)
        return rng.poisson(lam)

    off30, off90 = r() < 0.05, r() < 0.04  # no events in the window: counts missing
    counts = {
        "interest.automotive@90d": (count(1.0 + 2.5 * loud + 2.0 * owns_car), off90),
        "intent.car.compact@90d": (count(0.3 + 1.5 * loud + 0.3 * owns_car), off90),
        "intent.car.suv@90d": (count(0.3 + 0.4 * loud + 0.6 * owns_car), off90),
        "interest.finance@90d": (count(1.0 + 0.4 * loud + income / 20_000), off90),
        "interest.travel@90d": (count(1.2 + income / 20_000), off90),
        "interest.sports@90d": (count(0.6 + 0.8 * male), off90),
        "interest.beauty@90d": (count(0.2 + 1.2 * ~male), off90),
        "interest.gaming@90d": (count(0.3 + 1.5 * young), off90),
        "interest.parenting@90d": (count(0.1 + 0.8 * kids), off90),
        "interest.food@90d": (count(1.5), off90),
        "interest.tech@90d": (count(1.0 + 0.5 * male), off90),
        "interest.fashion@90d": (count(0.5 + 0.8 * ~male * young), off90),
        "search.car_loan@30d": (count(0.04 + 0.35 * loud), off30),
        "app_open.car_dealer@30d": (count(0.1 + 0.6 * loud * (r() < 0.5)), off30),
        "content_view.car_review@30d": (count(0.4 + 1.0 * loud + 1.0 * owns_car), off30),
        "location.auto_mall@30d": (count(0.02 + 0.2 * loud, by_activity=False), off30),
        "purchase.orders@90d": (count(2.0), off90),
    }
    null = lambda p: r() < p  # noqa: E731
    age_null, car_null = null(0.06), null(0.12)
    band_of_age = np.searchsorted([25, 35, 45, 55], age, "right")
    county_codes = np.minimum(rng.zipf(1.3, n), 300) - 1
    cols = {
        "person_id": pc.cast(pa.array(np.arange(n)), pa.string()),
        "gender": _strings(["female", "male"], male, null(0.03)),
        "age": pa.array(age, mask=age_null),
        "age_band": _strings(["18-24", "25-34", "35-44", "45-54", "55+"], band_of_age, age_null),
        "income": pa.array(income.astype(np.int64), mask=null(0.25)),
        "education": _strings(["high_school", "college", "bachelor", "master", "phd"],
                              rng.choice(5, n, p=[0.3, 0.25, 0.3, 0.12, 0.03]), null(0.1)),
        "married": pa.array(married, mask=null(0.2)),
        "kids": pa.array(kids, mask=null(0.25)),
        "city_tier": pa.array(tier),
        "province": _strings([f"p{i:02d}" for i in range(31)],
                             np.minimum(rng.zipf(1.6, n), 31) - 1),
        "county": _strings([f"{110101 + 37 * i}" for i in range(300)], county_codes, null(0.02)),
        "owns_car": pa.array(owns_car, mask=car_null),
        "car_make": _strings(MAKES, rng.integers(0, len(MAKES), n), ~owns_car),
        "car_year": pa.array(rng.integers(2008, 2025, n), mask=~owns_car),
        "has_band": pa.array(band),
        "has_tv": pa.array(r() < 0.6),
        "has_speaker": pa.array(r() < 0.3),
        "steps.daily": pa.array(rng.gamma(4, 2000, n), mask=~band),
        "commute": _strings(["taxi_app", "public_transport", "car", "walk"],
                            np.where(owns_car & (r() < 0.7), 2,
                                     rng.choice([0, 1, 3], n, p=[0.3, 0.55, 0.15]))),
        "device.phone_price": pa.array(np.round(rng.lognormal(7.8, 0.5, n)).astype(np.int64),
                                       mask=null(0.02)),
        "tv_watch.hours@30d": pa.array(rng.gamma(2, 20, n), mask=off30),
    }
    for name, (v, off) in counts.items():
        cols[name] = pa.array(v.astype(np.int64), mask=off)
    return pa.table(cols), intent


class PeakRSS:
    """The largest resident set size seen while active (sampled every 20 ms)."""

    def __enter__(self) -> PeakRSS:
        self.peak, self._stop = _rss(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=10_000_000)
    ap.add_argument("--seed-size", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--method", choices=[*METHODS, "all"], default=DEFAULT_METHOD)
    a = ap.parse_args()
    console = Console()
    gib = 2 ** 30
    with console.status(f"making tags for {a.people:,} people"):
        t = time.perf_counter()
        tags, intent = synthetic_tags(a.people)
        gen_s = time.perf_counter() - t
    rng = np.random.default_rng(11)
    seed = np.sort(rng.choice(np.flatnonzero(intent), a.seed_size, replace=False))
    opted_out = np.flatnonzero(rng.random(a.people) < 0.03)
    exclude = BitMap(opted_out.astype(np.uint32))
    cand = np.ones(a.people, bool)
    cand[seed] = cand[opted_out] = False
    size = min(a.size, int(cand.sum()))
    console.print(f"{a.people:,} people, {tags.num_columns - 1} tags, {tags.nbytes / gib:.2f} GiB "
                  f"in memory, made in {gen_s:.0f}s; intent holders {intent.mean():.1%}; "
                  f"seed {len(seed):,}; excluded (opted out) {len(opted_out):,}")

    methods = list(METHODS) if a.method == "all" else [a.method]
    runs = {}
    for m in methods:
        timings: dict[str, float] = {}
        with console.status(f"expanding with {m}"), PeakRSS() as rss:
            t = time.perf_counter()
            rows, scores = expand_lookalike(tags, seed, size, exclude=exclude, method=m,
                                            timings=timings)
            total = time.perf_counter() - t
        assert not np.isin(rows, seed).any() and not np.isin(rows, opted_out).any()
        runs[m] = (timings, total, rss.peak, precision_at_n(rows, intent))

    with console.status("baseline: one matrix-vector product over the feature matrix"):
        d = TagEncoder().fit(tags.slice(0, 200_000)).n_features_out_
        base_s = matvec_seconds(a.people, d)
    with console.status("quality baselines: random selection and the best single-tag rule"):
        random_p = precision_at_n(rng.choice(np.flatnonzero(cand), size, replace=False), intent)
        rule = best_single_tag_rule(tags, intent, size, candidates=cand)
    with console.status("reference: the model trained on the hidden intent itself"):
        supervised_p = supervised_precision(tags, intent, cand, size)
    ceiling = min(1.0, (intent & cand).sum() / size)

    tt = Table(title=f"Lookalike: seed {len(seed):,} -> {size:,} of {a.people:,} people "
                     f"(seconds)")
    tt.add_column("phase")
    for m in methods:
        tt.add_column(m, justify="right")
    tt.add_column("goal", justify="right")
    for phase in ("encode", "fit", "score", "top-N"):
        tt.add_row(phase, *(f"{runs[m][0].get(phase, 0):.2f}" for m in methods), "")
    tt.add_row("total", *(f"{runs[m][1]:.1f}" for m in methods), "< 60 s", style="bold")
    tt.add_row(f"baseline: X @ w, X {a.people / 1e6:g}M x {d} f32", *(
        f"{base_s:.2f}" for _ in methods), "")
    tt.add_row("total / baseline", *(f"{runs[m][1] / base_s:.0f}x" for m in methods), "")
    tt.add_row("peak RSS in expansion (GiB)", *(f"{runs[m][2] / gib:.2f}" for m in methods),
               "< ~8")
    console.print(tt)

    qt = Table(title=f"precision@{size:,} against the hidden intent")
    for col in ("audience", "precision@N", "x random", "goal"):
        qt.add_column(col, justify="left" if col == "audience" else "right")
    qt.add_row("random candidates", f"{random_p:.1%}", "1.0x", "")
    qt.add_row("best single-tag rule (1)", f"{rule.expected_precision:.1%}",
               f"{rule.expected_precision / random_p:.1f}x", "")
    for m in methods:
        p = runs[m][3]
        ok = p >= 3 * random_p and p > rule.expected_precision
        qt.add_row(f"lookalike, {m}", f"{p:.1%}", f"{p / random_p:.1f}x",
                   f">= 3x, > rule: {'yes' if ok else 'NO'}")
    qt.add_row("logistic on hidden labels (2)", f"{supervised_p:.1%}",
               f"{supervised_p / random_p:.1f}x", "")
    qt.add_row("ceiling (3)", f"{ceiling:.1%}", f"{ceiling / random_p:.1f}x", "")
    console.print(qt)
    console.print(f"(1) {rule}: matches {rule.matched:,} candidates, {rule.precision:.1%} of "
                  f"them intent holders{'; padded at random to N' if rule.matched < size else ''}"
                  "\n(2) the same encoder and model fitted on 200,000 people's hidden labels "
                  "(impossible in practice): what the seed-against-population ranking "
                  "stands in for\n(3) every intent holder outside the seed, up to N")
    console.print(f"process peak RSS (incl. generation and baseline): "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB")


def supervised_precision(tags: pa.Table, labels: np.ndarray, cand: np.ndarray,
                         size: int) -> float:
    """Precision@N of the logistic model fitted on the hidden labels of a random sample."""
    rng = np.random.default_rng(5)
    sample = np.sort(rng.choice(tags.num_rows, min(200_000, tags.num_rows), replace=False))
    train = tags.take(sample)
    encoder = TagEncoder().fit(train)
    model = LookalikeClassifier().fit(encoder.transform(train), labels[sample])
    step = 1 << 17
    scores = np.concatenate([model.score_samples(encoder.transform(tags.slice(s, step)))
                             for s in range(0, tags.num_rows, step)])
    scores[~cand] = -1.0
    return precision_at_n(np.argpartition(-scores, size - 1)[:size], labels)


def matvec_seconds(n: int, d: int) -> float:
    """Best of three X @ w over an n x d float32 matrix in memory (read once per product)."""
    X = np.ones((n, d), dtype=np.float32)  # filled, so every page is really there
    w = np.full(d, 0.5, dtype=np.float32)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        X @ w
        times.append(time.perf_counter() - t)
    return min(times)


if __name__ == "__main__":
    main()
