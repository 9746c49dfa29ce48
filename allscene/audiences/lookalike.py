"""Lookalike audiences: the people most like a seed audience, from the wide tag table.

Method
------
**Positive-unlabeled (PU) learning** (Elkan & Noto, "Learning classifiers from only positive
and unlabeled data", KDD 2008; survey: Bekker & Davis, Machine Learning 2020): the seed are
the positives, a random sample of everyone else is "unlabeled" and treated as negatives, a
class-balanced logistic regression learns seed against population, and everyone outside the
seed is ranked by its score. If the seed is a random draw of the people with the trait
("selected completely at random"), the seed-against-population probability is the
probability of the trait times a constant, so its *ranking*, all a top-N needs, is the one a
classifier fitted on everyone's labels would give. This is LinkedIn's "campaign-aware"
expansion (Liu et al., "Audience Expansion for Online Social Network Advertising", KDD 2016).
A seed far from random (say, last week's converters only) bends the ranking towards them.

``method="centroid"`` is the similarity family (LinkedIn's "campaign-agnostic" kind): the
cosine to the seed's centroid, both centred on the population. No training, but every
feature weighs alike, so a tag the seed shares by chance counts as much as one that sets it
apart. ``method="boosting"`` is PU with gradient-boosted trees, for interactions of tags.

Measured by ``python bench/bench_lookalike.py --method all`` (10M people, 37 tags, seed
10k, 1M returned, 2 cores; precision@1M against the generator's hidden intent): logistic
26.5% in 9.3 s, boosting 26.9% in 83 s, centroid 21.3% in 9.0 s; random 3.8%, the best
single-tag rule 15.0%, and logistic fitted on the hidden labels themselves 26.5%. Hence the
default: logistic matches the fully-labelled model within the 60 s goal; boosting's extra
0.4 points cost 9x the time.

Examples
--------
>>> import numpy as np, pyarrow as pa
>>> rng = np.random.default_rng(0)
>>> keen = rng.random(2000) < 0.1                   # a hidden trait
>>> tags = pa.table({"person_id": [f"p{i}" for i in range(2000)],
...                  "interest.car@90d": rng.poisson(np.where(keen, 4.0, 0.5)),
...                  "gender": rng.choice(["male", "female"], 2000)})
>>> seed = np.flatnonzero(keen)[:50]
>>> rows, scores = expand_lookalike(tags, seed, 100)
>>> len(rows), bool(np.all(np.diff(scores) <= 0)), bool(np.isin(rows, seed).any())
(100, True, False)
>>> bool(keen[rows].mean() > 3 * keen.mean())       # well above random
True
"""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y
from threadpoolctl import threadpool_limits

METHODS = ("logistic", "boosting", "centroid")
DEFAULT_METHOD = "logistic"
# Rows per class to fit on. At 10M people (seed 10k, 1M returned) 30k, 100k and 300k
# population rows gave precision@N 27.11%, 27.12%, 27.13% and fits of 1.5, 2.1, 5.6 s.
MAX_PER_CLASS = 100_000


class TagEncoder(TransformerMixin, BaseEstimator):
    """Encode a wide tag table as a dense float32 matrix, one row per person.

    * numeric tags are standardized; count-in-window tags (``name@90d``) are ``log1p``-ed
      first, because a 40th view says little more than a 10th;
    * yes/no tags become 0/1;
    * text tags become one-hot columns for their ``top_k`` most frequent values (others: 0);
    * every tag with missing values in ``fit`` gets a 0/1 "missing" column as well, and a
      missing value is otherwise encoded as the mean (numeric) or 0 (others).

    Parameters
    ----------
    top_k : int
        One-hot columns kept per text tag.
    exclude_columns : sequence of str
        Columns not to use (``person_id`` never is; all-null columns are skipped too).

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"person_id": ["a", "b", "c"], "age": [20, 40, None],
    ...               "owns_car": [True, False, None], "gender": ["f", "m", "f"]})
    >>> enc = TagEncoder().fit(t)
    >>> enc.get_feature_names_out().tolist()
    ['age', 'age:missing', 'owns_car', 'owns_car:missing', 'gender=f', 'gender=m']
    >>> enc.transform(t).round(2).tolist()[0]
    [-1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    """

    def __init__(self, top_k: int = 16, exclude_columns: Sequence[str] = ()):
        self.top_k = top_k
        self.exclude_columns = exclude_columns

    def fit(self, X: pa.Table, y: Any = None) -> TagEncoder:
        specs: list[tuple[str, str, bool, Any]] = []
        for name in X.column_names:
            col, t = X[name], X[name].type
            if name == "person_id" or name in set(self.exclude_columns) or pa.types.is_null(t):
                continue
            missing = col.null_count > 0
            if pa.types.is_dictionary(t):
                col, t = col.cast(t.value_type), t.value_type
            if pa.types.is_boolean(t):
                specs.append((name, "bool", missing, None))
            elif pa.types.is_integer(t) or pa.types.is_floating(t):
                log = "@" in name
                v = _numbers(col, log)
                ok = v[~np.isnan(v)]
                mean = float(ok.mean()) if len(ok) else 0.0
                std = float(ok.std()) if len(ok) else 0.0
                specs.append((name, "num", missing, (log, mean, 1.0 / std if std > 0 else 0.0)))
            elif pa.types.is_string(t) or pa.types.is_large_string(t):
                counts = pc.value_counts(col.drop_null()).to_pylist()
                # Ties broken by value so that the same table always gives the same columns.
                top = sorted(counts, key=lambda c: (-c["counts"], c["values"]))[: self.top_k]
                specs.append((name, "cat", missing, [c["values"] for c in top]))
            else:
                raise ValueError(f"tag {name!r} has type {t}, which the encoder cannot use; "
                                 "pass it in exclude_columns")
        names = []
        for name, kind, missing, arg in specs:
            names += [f"{name}={v}" for v in arg] if kind == "cat" else [name]
            names += [f"{name}:missing"] if missing else []
        self.specs_ = specs
        self.feature_names_out_ = np.array(names, dtype=object)
        self.n_features_out_ = len(names)
        return self

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        return self.feature_names_out_

    def transform(self, X: pa.Table) -> np.ndarray:
        """The (people, features) float32 matrix, Fortran-ordered (filled a column at a time)."""
        check_is_fitted(self)
        absent = [s[0] for s in self.specs_ if s[0] not in X.column_names]
        if absent:
            raise ValueError(f"tags missing from the table: {absent}")
        out = np.zeros((self.n_features_out_, X.num_rows), dtype=np.float32).T
        j = 0
        for name, kind, missing, arg in self.specs_:
            col = X[name]
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            if kind == "bool":
                out[:, j] = pc.fill_null(col, False).to_numpy(zero_copy_only=False)
                j += 1
            elif kind == "num":
                log, mean, inv = arg
                v = _numbers(col, log)
                v -= mean
                v *= inv
                out[:, j] = np.nan_to_num(v, nan=0.0)
                j += 1
            else:
                at = pc.index_in(col, value_set=pa.array(arg, type=col.type))
                code = pc.fill_null(at, -1).to_numpy(zero_copy_only=False)
                hit = np.flatnonzero(code >= 0)
                out[hit, j + code[hit]] = 1.0
                j += len(arg)
            if missing:
                out[:, j] = col.is_null().to_numpy(zero_copy_only=False)
                j += 1
        return out


def _numbers(col: pa.ChunkedArray, log: bool) -> np.ndarray:
    """A numeric tag as float32 with NaN where missing (log1p of counts, clipped at 0)."""
    # Unsafe: rounding a large integer to float32 is intended (Arrow would refuse it).
    v = pc.cast(col, pa.float32(), safe=False).to_numpy(zero_copy_only=False)
    v = np.array(v, dtype=np.float32)  # writable, NaN for nulls
    if log:
        np.log1p(np.maximum(v, 0, out=v), out=v)
    return v


class LookalikeClassifier(ClassifierMixin, BaseEstimator):
    """Seed (the larger label) against a population sample, on encoded tags.

    ``score_samples`` is the lookalike score in [0, 1]: the balanced-class probability of
    looking like the seed (``logistic``, ``boosting``), or ``(1 + cosine) / 2`` to the seed's
    centroid after centring on the population sample (``centroid``).

    Parameters
    ----------
    method : {"logistic", "boosting", "centroid"}
    C : float
        Inverse L2 regularization strength (``logistic``).
    max_iter : int
        Solver iterations (``logistic``) or trees (``boosting``).
    random_state : int
        Seed for ``boosting``'s subsampling; the other methods are deterministic.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.2]])
    >>> model = LookalikeClassifier().fit(X, [1, 1, 0, 0])
    >>> model.predict(X).tolist(), bool(model.score_samples(X).max() <= 1)
    ([1, 1, 0, 0], True)
    """

    def __init__(self, method: str = DEFAULT_METHOD, C: float = 1.0, max_iter: int = 100,
                 random_state: int | None = 0):
        self.method, self.C, self.max_iter, self.random_state = method, C, max_iter, random_state

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Any, y: Any) -> LookalikeClassifier:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {METHODS}")
        X, y = check_X_y(X, y, dtype=(np.float32, np.float64))
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) > 2:
            raise ValueError("Only binary classification is supported (seed against "
                             f"population); got {len(self.classes_)} classes")
        if len(self.classes_) < 2:
            raise ValueError("need the seed and the population: got 1 class")
        self.n_features_in_, pos = X.shape[1], y == self.classes_[1]
        if self.method == "logistic":
            # Balanced weights: the seed is a small share of the sample; reweighting mostly
            # moves the intercept, and only the ranking matters.
            self.model_ = LogisticRegression(C=self.C, class_weight="balanced",
                                             max_iter=self.max_iter).fit(X, y)
        elif self.method == "boosting":
            self.model_ = HistGradientBoostingClassifier(
                max_iter=self.max_iter, class_weight="balanced", early_stopping=False,
                random_state=self.random_state).fit(X, y)
        else:
            self.center_ = X[~pos].mean(axis=0).astype(np.float32)
            d = X[pos].mean(axis=0) - self.center_
            norm = float(np.linalg.norm(d))
            self.direction_ = (d / norm if norm > 0 else d).astype(np.float32)
        # Iterations run (one pass for the centroid), as scikit-learn reports for max_iter.
        n_iter = getattr(getattr(self, "model_", None), "n_iter_", 1)
        self.n_iter_ = int(np.max(n_iter))
        self.threshold_ = 0.5
        if self.method == "centroid":
            # Cosine scores are not probabilities: predict() cuts halfway between the
            # classes' mean scores instead of at 0.5.
            s = self.score_samples(X)
            self.threshold_ = float((s[pos].mean() + s[~pos].mean()) / 2)
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        """The lookalike score of each row, float64 in [0, 1] (higher: more like the seed)."""
        check_is_fitted(self, "classes_")
        X = check_array(X, dtype=(np.float32, np.float64))
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        if self.method == "logistic":
            w = self.model_.coef_[0].astype(X.dtype)
            return expit((X @ w).astype(np.float64) + self.model_.intercept_[0])
        if self.method == "boosting":
            return self.model_.predict_proba(X)[:, 1]
        Z = X - self.center_
        norms = np.sqrt(np.einsum("ij,ij->i", Z, Z, dtype=np.float64))
        cos = (Z @ self.direction_) / np.maximum(norms, 1e-12)
        return np.clip((1 + cos) / 2, 0.0, 1.0)

    def predict_proba(self, X: Any) -> np.ndarray:
        s = self.score_samples(X)
        return np.column_stack([1 - s, s])

    def predict(self, X: Any) -> np.ndarray:
        s = self.score_samples(X)  # first: it raises NotFittedError before classes_ exists
        return self.classes_[(s >= self.threshold_).astype(int)]


def expand_lookalike(tags: pa.Table, seed_rows: np.ndarray | BitMap, size: int, *,
                     exclude: BitMap | None = None, method: str = DEFAULT_METHOD,
                     random_state: int = 0, top_k: int = 16,
                     exclude_columns: Sequence[str] = (), chunk_rows: int = 1 << 17,
                     n_threads: int | None = 1,
                     timings: MutableMapping[str, float] | None = None,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The ``size`` people outside the seed who look most like it, best first.

    Parameters
    ----------
    tags : pyarrow.Table
        The wide tag table; people are numbered by row (as in :class:`TagIndex`).
    seed_rows : array of row numbers, boolean mask over the rows, or BitMap
    size : int
        How many people to return (all candidates if fewer).
    exclude : BitMap, optional
        Rows never returned nor sampled as population (e.g. opted out of personalized ads).
    method : {"logistic", "boosting", "centroid"}
    random_state : int
        Seed for sampling the population (and ``boosting``); same seed, same answer.
    top_k, exclude_columns
        Passed to :class:`TagEncoder`.
    chunk_rows : int
        People encoded and scored at a time: bounds memory to about
        ``chunk_rows x features x 4`` bytes beyond the table.
    n_threads : int or None
        BLAS and OpenMP threads while fitting and scoring (``None``: the libraries' default).
        One, as the fits are small and threads waiting for a busy core made them 3-5x slower.
    timings : dict, optional
        Filled with seconds per phase: ``encode``, ``fit``, ``score``, ``top-N``.

    Returns
    -------
    rows : int64 array
        Row numbers, by decreasing score (ties: lower row first).
    scores : float64 array
        Their lookalike scores, in [0, 1].
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    n = tags.num_rows
    seed = _rows(seed_rows, n, "seed_rows")
    if len(seed) == 0:
        raise ValueError("the seed is empty")
    blocked = np.zeros(n, dtype=bool)
    blocked[seed] = True
    if exclude is not None:
        blocked[_rows(exclude, n, "exclude")] = True
    candidates = np.flatnonzero(~blocked)
    if len(candidates) == 0:
        raise ValueError("the seed (with exclude) covers everyone: no one is left to add")
    timings = {} if timings is None else timings
    rng = np.random.default_rng(random_state)
    with _clock(timings, "encode"):
        pos = seed if len(seed) <= MAX_PER_CLASS else np.sort(
            rng.choice(seed, MAX_PER_CLASS, replace=False))
        k = min(len(candidates), MAX_PER_CLASS)
        unl = np.sort(rng.choice(candidates, k, replace=False))
        del candidates
        train = tags.take(np.concatenate([pos, unl]))
        encoder = TagEncoder(top_k=top_k, exclude_columns=tuple(exclude_columns)).fit(train)
        X = encoder.transform(train)
        y = np.r_[np.ones(len(pos), np.int8), np.zeros(k, np.int8)]
    with threadpool_limits(n_threads):
        with _clock(timings, "fit"):
            model = LookalikeClassifier(method=method, random_state=random_state).fit(X, y)
        del X, train
        scores = np.empty(n, dtype=np.float64)
        for start in range(0, n, chunk_rows):
            with _clock(timings, "encode"):
                Xc = encoder.transform(tags.slice(start, chunk_rows))
            with _clock(timings, "score"):
                scores[start:start + len(Xc)] = model.score_samples(Xc)
    with _clock(timings, "top-N"):
        scores[blocked] = -1.0  # below every real score, so never picked
        top = _top(scores, min(size, int(n - blocked.sum())))
    return top, scores[top]


def _rows(rows: Any, n: int, what: str) -> np.ndarray:
    """Sorted unique int64 row numbers from a BitMap, a boolean mask or row numbers."""
    if isinstance(rows, BitMap):
        out = np.frombuffer(rows.to_array(), dtype=np.uint32).astype(np.int64)
    else:
        arr = np.asarray(rows)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise ValueError(f"{what}: a boolean mask needs one value per row ({n})")
            return np.flatnonzero(arr)
        if arr.size == 0:
            return np.empty(0, dtype=np.int64)
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{what}: expected row numbers, got dtype {arr.dtype}")
        out = np.unique(arr.astype(np.int64))
    if len(out) and (out[0] < 0 or out[-1] >= n):
        raise ValueError(f"{what}: row numbers must be in 0..{n - 1}")
    return out


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k highest scores, best first; ties go to the lower row (deterministic)."""
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    above = np.flatnonzero(scores > kth)
    ties = np.flatnonzero(scores == kth)[: k - len(above)]
    rows = np.concatenate([above, ties])
    return rows[np.lexsort((rows, -scores[rows]))]


@contextmanager
def _clock(into: MutableMapping[str, float], phase: str) -> Iterator[None]:
    """Add the seconds spent in ``phase`` to ``into`` (phases recur once per chunk)."""
    t = time.perf_counter()
    yield
    into[phase] = into.get(phase, 0.0) + time.perf_counter() - t
