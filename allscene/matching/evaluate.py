"""How good is a click model: AUC, log loss, calibration, against a constant-rate baseline;
and the online learner (FTRL) beside an offline one (gradient boosting) on the same log.

:func:`compare` splits a log in time order (the first ``train_share`` of the rows train,
the rest is held out) and scores:

* **constant**: the training CTR for everyone (log loss to beat; its AUC is 0.5);
* **FTRL progressive**: over the training stream, each event predicted just before the
  model learns from it (progressive validation: the online learner's standard metric);
* **FTRL held-out**: the model after the training stream, frozen, on the held-out rows;
* **GBM held-out**: scikit-learn's ``HistGradientBoostingClassifier`` fitted on the
  training rows. It reads the *same columns* as FTRL but not hashed: a numeric column as the
  number, a categorical one as a native categorical feature, coded by frequency in the
  training rows (the 254 most frequent values that occur at least ``min_count`` times; the
  rest pooled into one code; unseen values missing). Trees find interactions themselves, so
  the hashed crosses are not given to it. This keeps the comparison about the learners, not
  the encodings; reducing the 2**20-wide hashed matrix for trees would lose more. It stops
  early on a 10 % validation share of the training rows (without it, it memorizes a
  200-row sample: training AUC 1.0, held-out log loss 1.06 on Criteo).

The real samples (:func:`load_criteo`, :func:`load_avazu`) are a few hundred rows: 25 to 50
clicks held out, so an AUC's 95 % interval is about +-0.15 (:attr:`Scores.auc_se`, Hanley and
McNeil 1982). They show the code paths run on real logs, not which model is better.

Examples
--------
>>> y = np.array([0, 0, 1, 1, 0, 1])
>>> s = score(y, np.array([0.1, 0.2, 0.8, 0.6, 0.3, 0.4]))
>>> s.auc, round(s.logloss, 3), s.ctr
(1.0, 0.389, 0.5)
>>> round(log_loss(y, np.full(6, 0.5)), 4), calibration(y, np.full(6, 0.5))["ratio"]
(0.6931, 1.0)
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss as _sk_log_loss
from sklearn.metrics import roc_auc_score

from allscene.config import shared_data
from allscene.matching.features import DEFAULT_BITS, hash_columns
from allscene.matching.ftrl import FTRL

SAMPLES_ENV = "ALLSCENE_CTR_SAMPLES"
"""Where the DeepCTR samples are when not in ``shared/data/ctr_deepctr_samples``."""


def _check(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    yy, pp = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if yy.ndim != 1 or yy.shape != pp.shape:
        raise ValueError(f"y and p must be 1-D of one length, not {yy.shape} and {pp.shape}")
    if not np.isin(yy, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    if not ((pp >= 0) & (pp <= 1)).all():
        raise ValueError("probabilities must be in [0, 1]")
    return yy, pp


def auc(y: Any, p: Any) -> float:
    """Area under the ROC curve; NaN when the labels are all one class."""
    yy, pp = _check(y, p)
    return float(roc_auc_score(yy, pp)) if 0 < yy.sum() < len(yy) else math.nan


def auc_se(a: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an AUC (Hanley and McNeil 1982).

    >>> round(auc_se(0.75, 50, 150), 3)
    0.043
    """
    if not (n_pos and n_neg) or math.isnan(a):
        return math.nan
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    v = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(v, 0.0))


def log_loss(y: Any, p: Any) -> float:
    """Mean negative log-likelihood (natural log), probabilities clipped to [1e-15, 1-1e-15]."""
    yy, pp = _check(y, p)
    return float(_sk_log_loss(yy, np.clip(pp, 1e-15, 1 - 1e-15), labels=[0, 1]))


def calibration(y: Any, p: Any, bins: int = 10) -> dict[str, Any]:
    """Predicted mean against observed rate, overall (``ratio`` = predicted / observed) and
    per quantile bin of the prediction (``bins``: (mean predicted, observed rate, rows))."""
    yy, pp = _check(y, p)
    order = np.argsort(pp, kind="stable")
    table = [(float(pp[b].mean()), float(yy[b].mean()), len(b))
             for b in np.array_split(order, min(bins, len(pp))) if len(b)]
    obs = float(yy.mean()) if len(yy) else math.nan
    return {"predicted": float(pp.mean()) if len(pp) else math.nan, "observed": obs,
            "ratio": float(pp.mean()) / obs if obs else math.nan, "bins": table}


@dataclass(frozen=True)
class Scores:
    """How one set of predictions did."""

    n: int
    clicks: int
    auc: float
    auc_se: float
    logloss: float
    mean_p: float
    ctr: float

    @property
    def calibration(self) -> float:
        """Mean prediction / observed CTR (1 is calibrated)."""
        return self.mean_p / self.ctr if self.ctr else math.nan


def score(y: Any, p: Any) -> Scores:
    """:class:`Scores` of predictions ``p`` for labels ``y``."""
    yy, pp = _check(y, p)
    a, k = auc(yy, pp), int(yy.sum())
    return Scores(len(yy), k, a, auc_se(a, k, len(yy) - k), log_loss(yy, pp),
                  float(pp.mean()), float(yy.mean()))


def constant_baseline(y_train: Any) -> float:
    """The constant-rate baseline: the training CTR."""
    yy = np.asarray(y_train, dtype=float)
    if not len(yy):
        raise ValueError("no training labels")
    return float(yy.mean())


# -- data --------------------------------------------------------------------------------------
@dataclass
class Dataset:
    """A click log as columns: ``frame`` (name -> 1-D array), labels ``y`` (0/1), which
    columns are ``numeric``, which pairs to cross in the hashed features."""

    name: str
    frame: dict[str, np.ndarray]
    y: np.ndarray
    numeric: tuple[str, ...] = ()
    crosses: tuple[tuple[str, str], ...] = ()
    source: str = ""

    def __len__(self) -> int:
        return len(self.y)


def _samples(name: str, path: str | Path | None) -> Path:
    p = Path(path) if path else shared_data("ctr_deepctr_samples", SAMPLES_ENV) / "examples" / name
    if not p.is_file():
        raise FileNotFoundError(f"{p}: the DeepCTR sample is not here (shared/data/"
                                f"ctr_deepctr_samples/examples, or set {SAMPLES_ENV})")
    return p


def _read_csv(p: Path) -> tuple[list[str], list[list[str]]]:
    with open(p, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def load_criteo(path: str | Path | None = None) -> Dataset:
    """The DeepCTR Criteo sample (200 rows): ``label``, numeric ``I1``..``I13`` (empty is
    NaN), categorical hashes ``C1``..``C26`` (empty is missing)."""
    p = _samples("criteo_sample.txt", path)
    head, rows = _read_csv(p)
    cols = list(zip(*rows, strict=True))
    frame: dict[str, np.ndarray] = {}
    numeric = []
    for name, col in zip(head, cols, strict=True):
        if name == "label":
            continue
        if name.startswith("I"):
            frame[name] = np.array([float(v) if v else np.nan for v in col])
            numeric.append(name)
        else:
            frame[name] = np.array(col, dtype=str)
    y = np.array([int(float(v)) for v in cols[head.index("label")]])
    return Dataset("criteo", frame, y, tuple(numeric), source=str(p))


def load_avazu(path: str | Path | None = None) -> Dataset:
    """The DeepCTR Avazu sample (100 rows): ``click``; ``hour`` (YYMMDDHH) becomes the hour
    of day and weekday; ``id`` (unique per row) is dropped; every other column is a category.
    Crossed: banner position x site category, hour x app category."""
    p = _samples("avazu_sample.txt", path)
    head, rows = _read_csv(p)
    cols = dict(zip(head, zip(*rows, strict=True), strict=True))
    y = np.array([int(v) for v in cols.pop("click")])
    cols.pop("id")
    stamps = [dt.datetime.strptime(v, "%y%m%d%H") for v in cols.pop("hour")]
    frame = {"hour_of_day": np.array([t.hour for t in stamps]),
             "weekday": np.array([t.isoweekday() for t in stamps])}
    frame.update({k: np.array(v, dtype=str) for k, v in cols.items()})
    return Dataset("avazu", frame, y, (), (("banner_pos", "site_category"),
                                           ("hour_of_day", "app_category")), str(p))


def split(ds: Dataset, train_share: float = 0.75) -> tuple[Dataset, Dataset]:
    """The first ``train_share`` of the rows (time order) and the rest."""
    if not 0 < train_share < 1:
        raise ValueError(f"train_share must be in (0, 1), not {train_share}")
    k = int(round(len(ds) * train_share))
    if not 0 < k < len(ds):
        raise ValueError(f"{len(ds)} rows cannot be split {train_share:.0%} / rest")

    def part(s: slice) -> Dataset:
        return Dataset(ds.name, {c: v[s] for c, v in ds.frame.items()}, ds.y[s], ds.numeric,
                       ds.crosses, ds.source)
    return part(slice(0, k)), part(slice(k, None))


# -- the offline model's encoding --------------------------------------------------------------
def gbm_matrix(train: Mapping[str, np.ndarray], test: Mapping[str, np.ndarray],
               numeric: Sequence[str] = (), *, max_categories: int = 254, min_count: int = 2
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense float matrices for ``HistGradientBoostingClassifier`` and its categorical mask.

    >>> tr, te, cat = gbm_matrix({"c": np.array(["a", "a", "b", "z"]), "n": np.arange(4.0)},
    ...                          {"c": np.array(["b", "q"]), "n": np.array([1.0, 9.0])}, ["n"])
    >>> tr[:, 0].tolist(), te.tolist(), cat.tolist()
    ([0.0, 0.0, 1.0, 1.0], [[1.0, 1.0], [nan, 9.0]], [True, False])
    """
    numeric = set(numeric)
    a, b, cat = [], [], []
    for name, col in train.items():
        if name in numeric:
            a.append(np.asarray(col, dtype=float))
            b.append(np.asarray(test[name], dtype=float))
            cat.append(False)
            continue
        uniq, counts = np.unique(np.asarray(col).astype(str), return_counts=True)
        keep = [(-c, u) for u, c in zip(uniq.tolist(), counts.tolist(), strict=True)
                if c >= min_count and u not in ("", "nan", "None")]
        top = [u for _, u in sorted(keep)[:max_categories]]
        code = {u: float(i) for i, u in enumerate(top)}
        other = float(len(top))  # seen in training but rare: one pooled code

        def enc(vals: Any, seen: set[str], code: dict = code, other: float = other) -> np.ndarray:
            s = np.asarray(vals).astype(str).tolist()
            return np.array([code.get(v, other if v in seen else np.nan) for v in s])
        seen = set(uniq.tolist()) - {"", "nan", "None"}
        a.append(enc(col, seen))
        b.append(enc(test[name], seen))
        cat.append(True)
    return np.column_stack(a), np.column_stack(b), np.array(cat)


# -- side by side ------------------------------------------------------------------------------
@dataclass
class Comparison:
    """Scores of each model on the held-out rows (and on the training rows), and timings."""

    held_out: dict[str, Scores]
    train: dict[str, Scores]
    seconds: dict[str, float] = field(default_factory=dict)
    ftrl: FTRL | None = None
    gbm: HistGradientBoostingClassifier | None = None


def compare(ds: Dataset, *, train_share: float = 0.75, bits: int = DEFAULT_BITS,
            ftrl: FTRL | None = None, gbm: HistGradientBoostingClassifier | None = None,
            hasher: Callable[[Mapping[str, np.ndarray]], sp.csr_matrix] | None = None
            ) -> Comparison:
    """Train FTRL (one online pass) and gradient boosting on the first ``train_share`` of
    ``ds`` and score both, and the constant baseline, on the rest.

    ``hasher`` turns a frame into the hashed matrix (default :func:`hash_columns` with the
    dataset's numeric columns and crosses, into ``2**bits`` buckets; ``ftrl``'s own
    ``bits`` when a model is given). ``ftrl`` starts afresh.
    """
    tr, te = split(ds, train_share)
    model = ftrl if ftrl is not None else FTRL(bits=bits)
    bits = model.bits
    hasher = hasher or (lambda f: hash_columns(f, bits=bits, numeric=ds.numeric,
                                               crosses=ds.crosses))
    t = time.perf_counter()
    Xtr, Xte = hasher(tr.frame), hasher(te.frame)
    sec = {"hash": time.perf_counter() - t}
    t = time.perf_counter()
    model._init_state()
    prog = model.partial_fit_predict(Xtr, tr.y)
    sec["ftrl_fit"] = time.perf_counter() - t
    t = time.perf_counter()
    p_ftrl = model.predict_proba(Xte)[:, 1]
    sec["ftrl_predict"] = time.perf_counter() - t
    t = time.perf_counter()
    Gtr, Gte, cat = gbm_matrix(tr.frame, te.frame, ds.numeric)
    sec["gbm_encode"] = time.perf_counter() - t
    g = gbm if gbm is not None else HistGradientBoostingClassifier(
        categorical_features=cat, max_iter=300, early_stopping=True, validation_fraction=0.1,
        n_iter_no_change=10, scoring="loss", random_state=0)
    if gbm is not None:
        g.set_params(categorical_features=cat)
    t = time.perf_counter()
    if 0 < tr.y.sum() < len(tr.y):
        g.fit(Gtr, tr.y)
        sec["gbm_fit"] = time.perf_counter() - t
        t = time.perf_counter()
        p_gbm, p_gbm_tr = g.predict_proba(Gte)[:, 1], g.predict_proba(Gtr)[:, 1]
        sec["gbm_predict"] = time.perf_counter() - t
    else:  # one class only: nothing to learn
        p_gbm, p_gbm_tr, g = np.full(len(te), tr.y.mean()), np.full(len(tr), tr.y.mean()), None
    c = constant_baseline(tr.y)
    held = {"constant": score(te.y, np.full(len(te), c)),
            "FTRL held-out": score(te.y, p_ftrl), "GBM held-out": score(te.y, p_gbm)}
    train = {"constant": score(tr.y, np.full(len(tr), c)),
             "FTRL progressive": score(tr.y, prog),
             "FTRL": score(tr.y, model.predict_proba(Xtr)[:, 1]), "GBM": score(tr.y, p_gbm_tr)}
    return Comparison(held, train, sec, model, g)
