"""The five core tags: declared where people said it, inferred from behaviour where not.

**Declared** data comes from ``profile`` events: a real-name check (gender and birth year
from the ID card: confidence 0.99), the account profile (0.9: a few people give a false
birth year) and member surveys (education, income: 0.9). For each field the most reliable
source wins, then the latest statement.

**Inferred** values come from models trained on the people who declared (semi-supervised,
as DMPs do with their logged-in, real-name users): multinomial logistic regression
(scikit-learn, trained on at most 20,000 of them) over behaviour features — what people
read and buy, which apps they use at which hours, what their band measures (calories per
step differ by build), the car they drive, their city, and the declared age and gender of
the others in their household (couples are of an age). The confidence of an inferred value
is the model's probability. Checked on declared people it was not trained on, a value is
kept when the predictions around its confidence are right at least 40% of the time
(:data:`TARGET_PRECISION`; over twice chance for six age bands) and the tag as a whole,
declared and inferred, stays at an estimated 85% precision (:data:`TAG_PRECISION`).
"""

from __future__ import annotations

import datetime as dt
import math

import ibis
import numpy as np
import pyarrow as pa
from ibis import _

from allscene.profiles.base import TagRows, local, personal

SOURCE_CONFIDENCE = {"real_name": 0.99, "account": 0.9, "survey": 0.9}
SOURCE_PRIORITY = {"real_name": 0, "account": 1, "survey": 2}
AGE_BANDS = ((18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55-64"),
             (65, "65+"))
INCOME_BANDS = ((0, "<3k"), (3000, "3-6k"), (6000, "6-10k"), (10000, "10-20k"),
                (20000, "20k+"))
TARGET_PRECISION = 0.4
TAG_PRECISION = 0.85
"""The precision each core tag is published at, as estimated on held-out declared people."""
MAX_TRAIN = 20_000
MIN_TRAIN = 200
"""Fewer declared people than this and nothing is inferred: too few to learn from, and to
check what was learnt on."""
FAMILIES = ("app", "hour", "cv", "buy", "fin", "tv")


def age_band(age: float) -> str:
    return [b for lo, b in AGE_BANDS if age >= lo][-1] if age >= AGE_BANDS[0][0] else "18-24"


def income_band(income: float) -> str:
    return [b for lo, b in INCOME_BANDS if income >= lo][-1]


def declared(events: ibis.Table, devices: ibis.Table) -> ibis.Table:
    """``person_id, field, value, source``: each person's most reliable, latest statement
    of each field (gender, birth_year, education, income_monthly)."""
    pr = personal(events, devices, ["profile"])
    parts = []
    for field in ("gender", "birth_year", "education", "income_monthly"):
        col = pr[field]
        value = col.cast("int64").cast("string") if field != "gender" and field != "education" \
            else col
        parts.append(pr.filter(col.notnull()).select(
            "person_id", "source", "ts", field=ibis.literal(field), value=value))
    rows = parts[0]
    for p in parts[1:]:
        rows = rows.union(p, distinct=False)
    prio = rows.source.cases(*SOURCE_PRIORITY.items(), else_=9)
    w = ibis.window(group_by=[rows.person_id, rows.field],
                    order_by=[prio, ibis.desc(rows.ts), rows.value])
    best = rows.mutate(r=ibis.row_number().over(w)).filter(_.r == 0)
    return best.select("person_id", "field", "value", "source")


def feature_counts(events: ibis.Table, devices: ibis.Table) -> ibis.Table:
    """``person_id, feature, n``: integer behaviour features per person (counts and sums)."""
    apps = personal(events, devices, ["app_open"])
    hour = local(apps.ts).hour()
    block = (hour / 4).floor().cast("int64").cast("string")
    parts = [
        apps.select("person_id", feature="app:" + apps.app),
        apps.select("person_id", feature="hour:" + block),
    ]
    cv = personal(events, devices, ["content_view"]).filter(_.iab_category.notnull())
    parts.append(cv.select("person_id", feature="cv:" + cv.iab_category))
    buy = personal(events, devices, ["purchase"])
    parts.append(buy.select("person_id", feature="buy:" + buy.item_category.fill_null("other")))
    fin = personal(events, devices, ["finance_activity"])
    parts.append(fin.select("person_id", feature="fin:" + fin.action))
    counts = parts[0]
    for p in parts[1:]:
        counts = counts.union(p, distinct=False)
    counts = counts.group_by(["person_id", "feature"]).agg(n=_.count())
    # Sums of integers only (cents, tenths of a kcal): exact and equal on every engine.
    sums = [
        buy.group_by("person_id").agg(n=(buy.amount * 100).round().cast("int64").sum())
        .mutate(feature=ibis.literal("buy_cents")),
        fin.filter(fin.amount.notnull()).group_by("person_id").agg(
            n=(_.amount * 100).round().cast("int64").sum()).mutate(
            feature=ibis.literal("fin_cents")),
        fin.filter(fin.amount.notnull()).group_by("person_id").agg(n=_.count()).mutate(
            feature=ibis.literal("fin_n")),
    ]
    steps = personal(events, devices, ["steps"])
    sums += [steps.group_by("person_id").agg(n=_.steps.sum()).mutate(
                 feature=ibis.literal("steps")),
             steps.group_by("person_id").agg(n=(_.calories * 10).round().cast("int64").sum())
             .mutate(feature=ibis.literal("kcal10"))]
    hr = personal(events, devices, ["heart_rate"]).filter(_.bpm < 110)
    sums += [hr.group_by("person_id").agg(n=_.bpm.sum()).mutate(feature=ibis.literal("hr_sum")),
             hr.group_by("person_id").agg(n=_.count()).mutate(feature=ibis.literal("hr_n"))]
    # The household's TV: genres watched on the TV of the person's home.
    appl = devices.filter(_.person_id.isnull()).select(adev=_.device_id, hh=_.household_id)
    tv = events.filter(_.kind == "tv_watch")
    tv = tv.join(appl, tv.device_id == appl.adev).group_by(["hh", "genre"]).agg(n=_.count())
    mem = devices.filter(_.person_id.notnull() & (_.device_type == "phone")).select(
        person_id=_.person_id, mhh=_.household_id)
    tvp = tv.join(mem, tv.hh == mem.mhh).select("person_id", feature="tv:" + tv.genre, n=tv.n)
    out = counts.select("person_id", "feature", "n")
    for s in [*sums, tvp]:
        out = out.union(s.select("person_id", "feature", n=s.n.cast("int64")), distinct=False)
    return out


def feature_matrix(people: list[str], counts: pa.Table, extra: dict[str, np.ndarray]
                   ) -> tuple[np.ndarray, list[str]]:
    """Rows of ``people`` (in that order): shares within each feature family, log totals,
    per-unit ratios, and the ``extra`` columns as given (NaN for unknown)."""
    row = {p: i for i, p in enumerate(people)}
    names = sorted(set(counts["feature"].to_pylist()))
    col = {f: j for j, f in enumerate(names)}
    raw = np.zeros((len(people), len(names)))
    r = np.array([row.get(p, -1) for p in counts["person_id"].to_pylist()])
    c = np.array([col[f] for f in counts["feature"].to_pylist()])
    n = counts["n"].to_numpy().astype(float)
    keep = r >= 0
    raw[r[keep], c[keep]] = n[keep]
    cols, out = [], []
    for fam in FAMILIES:
        idx = [col[f] for f in names if f.startswith(fam + ":")]
        if not idx:
            continue
        block = raw[:, idx]
        total = block.sum(axis=1, keepdims=True)
        out.append(np.where(total > 0, block / np.maximum(total, 1), np.nan))
        out.append(np.log1p(total))
        cols += [names[i] for i in idx] + [f"{fam}_total"]

    def get(f):
        return raw[:, col[f]] if f in col else np.zeros(len(people))

    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = {
            "kcal_per_step": np.where(get("steps") > 0, get("kcal10") / 10 / get("steps"), np.nan),
            "rest_bpm": np.where(get("hr_n") > 0, get("hr_sum") / get("hr_n"), np.nan),
            "log_spend": np.where(get("buy_cents") > 0, np.log(get("buy_cents") / 100 /
                                  np.maximum(raw[:, [col[f] for f in names if f.startswith(
                                      "buy:")]].sum(axis=1), 1)), np.nan)
            if any(f.startswith("buy:") for f in names) else np.full(len(people), np.nan),
            "log_finance": np.where(get("fin_n") > 0, np.log(np.maximum(get("fin_cents"), 1)
                                    / 100 / np.maximum(get("fin_n"), 1)), np.nan),
        }
    for k, v in {**ratios, **extra}.items():
        out.append(np.asarray(v, dtype=float)[:, None])
        cols.append(k)
    return np.hstack(out), cols


def household_extras(people: pa.Table, stated: dict[str, dict[str, str]], year: int
                     ) -> dict[str, np.ndarray]:
    """Per person: how many others share the household, the others' declared birth years
    (youngest, oldest; also as age bands, one flag each) and genders (how many men, women)."""
    ids = people["person_id"].to_pylist()
    hh = people["household_id"].to_pylist()
    members: dict[str, list[str]] = {}
    for p, h in zip(ids, hh, strict=True):
        members.setdefault(h, []).append(p)
    n = len(ids)
    size, lo, hi, men, women = (np.zeros(n), np.full(n, np.nan), np.full(n, np.nan),
                                np.zeros(n), np.zeros(n))
    for i, (p, h) in enumerate(zip(ids, hh, strict=True)):
        others = [q for q in members[h] if q != p]
        size[i] = len(others)
        years = [int(stated[q]["birth_year"]) for q in others if "birth_year" in stated.get(q, {})]
        if years:
            lo[i], hi[i] = min(years), max(years)
        men[i] = sum(stated.get(q, {}).get("gender") == "male" for q in others)
        women[i] = sum(stated.get(q, {}).get("gender") == "female" for q in others)
    out = {"hh_others": size, "hh_birth_min": lo, "hh_birth_max": hi, "hh_men": men,
           "hh_women": women}
    for name, born in (("oldest", lo), ("youngest", hi)):
        band = np.array([age_band(year - b) if not np.isnan(b) else "" for b in born])
        for _lo, b in AGE_BANDS:
            out[f"hh_{name}_{b}"] = (band == b).astype(float)
    return out


def _threshold(proba: np.ndarray, right: np.ndarray, declared: int, declared_precision: float,
               undeclared: int) -> float:
    """The lowest confidence at which an inferred value is kept, from held-out declared
    people only. Two conditions, both estimated on them:

    * the predictions around that confidence (a window of a tenth of them, at least 100)
      are right at least :data:`TARGET_PRECISION` of the time: good predictions at the top
      do not carry poor ones below them;
    * the tag as a whole (declared values at their source's confidence, plus the inferred
      values kept) stays at or above :data:`TAG_PRECISION`.

    ``inf`` keeps none.
    """
    order = np.argsort(-proba, kind="stable")
    n = len(order)
    if n == 0 or undeclared == 0:
        return np.inf
    w = min(max(n // 10, 100), n)
    hits = np.concatenate([[0], np.cumsum(right[order])])
    rolling = (hits[w:] - hits[:-w]) / w  # precision of order[i:i + w]
    bad = np.flatnonzero(rolling < TARGET_PRECISION)
    if len(bad) and bad[0] == 0:
        return np.inf
    last = n - 1 if not len(bad) else min(bad[0] + w // 2, n - 1)
    k = np.arange(1, n + 1)
    kept = k / n * undeclared  # undeclared people kept at the k-th confidence
    overall = (declared * declared_precision + kept * hits[1:] / k) / (declared + kept)
    ok = np.flatnonzero(overall[:last + 1] >= TAG_PRECISION)
    return float(proba[order][ok[-1]]) if len(ok) else np.inf


def _model(kind: str):
    """Missing values imputed (with a flag), features scaled, then a linear model: fast at
    millions of rows, with calibrated probabilities. (Gradient-boosted trees were about as
    accurate here once the household's ages come as bands, and 100 times slower.)"""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    last = LogisticRegression(C=0.1, max_iter=1000) if kind == "classify" else Ridge(alpha=1.0)
    return make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                       keep_empty_features=True), StandardScaler(), last)


def _sample(rows: np.ndarray, seed: int) -> np.ndarray:
    """At most :data:`MAX_TRAIN` of ``rows`` (training time stays flat as people grow)."""
    if len(rows) <= MAX_TRAIN:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, MAX_TRAIN, replace=False))


def infer(x: np.ndarray, labels: np.ndarray, known: np.ndarray, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Train on the rows with ``known`` labels, predict every row.

    Returns the predicted label and its probability for every row, and the probabilities
    and rightness of the predictions on a held-out half of the known rows.
    """
    rows = _sample(np.flatnonzero(known), seed)
    rng = np.random.default_rng(seed)
    half = rng.random(len(rows)) < 0.5
    check = _model("classify").fit(x[rows[half]], labels[rows[half]])
    p = check.predict_proba(x[rows[~half]])
    pred = check.classes_[p.argmax(axis=1)]
    held = (p.max(axis=1), pred == labels[rows[~half]])
    full = _model("classify").fit(x[rows], labels[rows])
    p = full.predict_proba(x)
    return full.classes_[p.argmax(axis=1)], p.max(axis=1), held


def regress(x: np.ndarray, y: np.ndarray, known: np.ndarray) -> np.ndarray:
    """A number per row from a model trained on the rows where ``y`` is known."""
    rows = _sample(np.flatnonzero(known), 1)
    return _model("regress").fit(x[rows], y[rows]).predict(x)


def infer_income(x: np.ndarray, log_income: np.ndarray, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, tuple, np.ndarray]:
    """Income band from a regression of log income (gradient-boosted trees: income shows
    in spending and finance amounts in ways a line misses).

    Returns the band of each row, the probability that it is right (the mass of the band
    under a normal error with the spread seen on held-out declared people), the confidence
    held-out probabilities and rightness, and the income estimate.
    """
    from scipy.stats import norm
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    def fit(rows):
        # One thread: the same answer on every machine, and no fight for a busy core.
        with threadpool_limits(1):
            return HistGradientBoostingRegressor(max_iter=100, early_stopping=False,
                                                 random_state=seed).fit(x[rows], log_income[rows])

    edges = np.log([lo for lo, _ in INCOME_BANDS[1:]])
    names = np.array([b for _, b in INCOME_BANDS])

    def band_and_conf(pred, sd):
        k = np.digitize(pred, edges)
        lo, hi = np.r_[-np.inf, edges][k], np.r_[edges, np.inf][k]
        return k, norm.cdf((hi - pred) / sd) - norm.cdf((lo - pred) / sd)

    rows = _sample(np.flatnonzero(~np.isnan(log_income)), seed)
    half = np.random.default_rng(seed).random(len(rows)) < 0.5
    held = rows[~half]
    pred = fit(rows[half]).predict(x[held])
    sd = float(np.std(log_income[held] - pred))
    k, conf = band_and_conf(pred, sd)
    held_out = (conf, k == np.digitize(log_income[held], edges))
    with threadpool_limits(1):
        estimate = fit(rows).predict(x)
    k, conf = band_and_conf(estimate, sd)
    return names[k], conf, held_out, estimate


def demographic_tags(people: pa.Table, stated_rows: pa.Table, counts: pa.Table,
                     extra: dict[str, np.ndarray], as_of: dt.datetime) -> pa.Table:
    """Long tag rows of gender, age, age band, education, income and income band."""
    ids = people["person_id"].to_pylist()
    stated: dict[str, dict[str, str]] = {}
    source: dict[tuple[str, str], str] = {}
    for r in stated_rows.to_pylist():
        stated.setdefault(r["person_id"], {})[r["field"]] = r["value"]
        source[(r["person_id"], r["field"])] = r["source"]
    extra = {**extra, **household_extras(people, stated, as_of.year)}
    x, _cols = feature_matrix(ids, counts, extra)
    rows = TagRows()
    add = rows.add

    year = as_of.year
    label = {
        "gender": lambda s: s.get("gender"),
        "age_band": lambda s: age_band(year - int(s["birth_year"])) if "birth_year" in s else None,
        "education": lambda s: s.get("education"),
        "income_band": lambda s: income_band(float(s["income_monthly"]))
        if "income_monthly" in s else None,
    }
    field_of = {"gender": "gender", "age_band": "birth_year", "education": "education",
                "income_band": "income_monthly"}
    results = {}
    for tag, fn in label.items():
        if tag == "income_band":
            continue
        y = np.array([fn(stated.get(p, {})) or "" for p in ids], dtype=object)
        known = y != ""
        if known.sum() < MIN_TRAIN or len(set(y[known])) < 2:
            results[tag] = None
            continue
        results[tag] = infer(x, y.astype(str), known)
    age_y = np.array([year - int(stated[p]["birth_year"]) if "birth_year" in stated.get(p, {})
                      else np.nan for p in ids])
    inc_y = np.array([math.log(max(float(stated[p]["income_monthly"]), 1))
                      if "income_monthly" in stated.get(p, {}) else np.nan for p in ids])
    age_hat = regress(x, age_y, ~np.isnan(age_y)) if (~np.isnan(age_y)).sum() >= MIN_TRAIN else None
    inc_hat = None
    results["income_band"] = None
    if (~np.isnan(inc_y)).sum() >= MIN_TRAIN:
        *results["income_band"], inc_hat = infer_income(x, inc_y)
    for tag, res in results.items():
        if res is None:
            continue
        srcs = [source[(p, field_of[tag])] for p in ids if (p, field_of[tag]) in source]
        declared_precision = float(np.mean([SOURCE_CONFIDENCE[s] for s in srcs])) if srcs else 1.0
        threshold = _threshold(*res[2], len(srcs), declared_precision, len(ids) - len(srcs))
        results[tag] = (res[0], res[1], threshold)
    bounds = {b: (lo, AGE_BANDS[i + 1][0] - 1 if i + 1 < len(AGE_BANDS) else 120)
              for i, (lo, b) in enumerate(AGE_BANDS)}
    ibounds = {b: (lo, INCOME_BANDS[i + 1][0] - 100 if i + 1 < len(INCOME_BANDS) else 10**7)
               for i, (lo, b) in enumerate(INCOME_BANDS)}
    for i, p in enumerate(ids):
        s = stated.get(p, {})
        for tag in label:
            field = field_of[tag]
            if field in s:
                src = source[(p, field)]
                conf = SOURCE_CONFIDENCE[src]
                value = label[tag](s)
                add(p, tag, value, conf, f"declared:{src}")
                if tag == "age_band":
                    add(p, "age", year - int(s["birth_year"]), conf, f"declared:{src}")
                if tag == "income_band":
                    add(p, "income", int(float(s["income_monthly"])), conf, f"declared:{src}")
                continue
            res = results[tag]
            if res is None or res[1][i] < res[2]:
                continue
            value, conf = res[0][i], res[1][i]
            add(p, tag, value, conf, "inferred")
            if tag == "age_band" and age_hat is not None:
                lo, hi = bounds[value]
                add(p, "age", int(np.clip(round(age_hat[i]), lo, hi)), conf, "inferred")
            if tag == "income_band" and inc_hat is not None:
                lo, hi = ibounds[value]
                v = int(np.clip(round(math.exp(inc_hat[i]) / 100) * 100, lo, hi))
                add(p, "income", v, conf, "inferred")
    return rows.table()
