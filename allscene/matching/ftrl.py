"""FTRL-Proximal logistic regression over hashed sparse features.

The online learner of McMahan et al., "Ad Click Prediction: a View from the Trenches" (KDD
2013), Algorithm 1: per coordinate ``i`` it keeps ``z_i`` (the sum of gradients, adjusted)
and ``n_i`` (the sum of squared gradients); the weight is never stored but read off them,

    w_i = 0                                               if |z_i| <= l1
    w_i = -(z_i - sign(z_i) l1) / ((beta + sqrt(n_i)) / alpha + l2)   otherwise

so L1 leaves most coordinates exactly zero, and each coordinate's learning rate
``alpha / (beta + sqrt(n_i))`` falls as it is seen more often. ``z`` and ``n`` are numpy
arrays of ``2**bits + 1`` entries (the last one is the intercept, always on); the per-event
loop is compiled with Numba (``cache=True``: compiled once per machine), the batch
prediction is one sparse matrix-vector product with the weights, vectorized.

Input is a CSR matrix of ``n_samples x 2**bits`` (:mod:`allscene.matching.features` makes
one), any other scipy sparse or dense 2-D array, or a list of index arrays (binary rows).

Examples
--------
>>> rng = np.random.default_rng(0)
>>> rows = [rng.choice(64, 3, replace=False) for _ in range(4000)]
>>> y = np.array([int(rng.random() < (0.6 if 7 in r else 0.05)) for r in rows])
>>> m = FTRL(alpha=0.5, l1=0.5, bits=6).fit(rows, y)
>>> p = m.predict_proba([[7, 1, 2], [3, 4, 5]])[:, 1]
>>> bool(p[0] > 0.3 > 0.1 > p[1]), bool(m.coef_[7] > 2)
(True, True)
>>> bool(abs(m.predict_one([7, 1, 2]) - p[0]) < 1e-12)
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numba import njit
from sklearn.base import BaseEstimator, ClassifierMixin

_CLIP = 35.0  # |w.x| beyond this is p = 0 or 1 in float64 anyway


@njit(cache=True, inline="always")
def _weight(z: float, n: float, alpha: float, beta: float, l1: float, l2: float) -> float:
    if abs(z) <= l1:
        return 0.0
    s = 1.0 if z > 0 else -1.0
    return -(z - s * l1) / ((beta + math.sqrt(n)) / alpha + l2)


@njit(cache=True)
def _train(indptr, indices, data, y, z, n, alpha, beta, l1, l2, out):
    """One pass over the rows in order: predict (into ``out``), then update."""
    bias = z.shape[0] - 1
    for r in range(y.shape[0]):
        lo, hi = indptr[r], indptr[r + 1]
        wb = _weight(z[bias], n[bias], alpha, beta, l1, l2)
        wx = wb
        for k in range(lo, hi):
            i = indices[k]
            wx += _weight(z[i], n[i], alpha, beta, l1, l2) * data[k]
        wx = min(max(wx, -_CLIP), _CLIP)
        p = 1.0 / (1.0 + math.exp(-wx))
        out[r] = p
        g = p - y[r]
        sigma = (math.sqrt(n[bias] + g * g) - math.sqrt(n[bias])) / alpha
        z[bias] += g - sigma * wb
        n[bias] += g * g
        for k in range(lo, hi):
            i = indices[k]
            gi = g * data[k]
            w = _weight(z[i], n[i], alpha, beta, l1, l2)
            sigma = (math.sqrt(n[i] + gi * gi) - math.sqrt(n[i])) / alpha
            z[i] += gi - sigma * w
            n[i] += gi * gi


@njit(cache=True)
def _predict_idx(idx, z, n, alpha, beta, l1, l2):
    """p of one binary row given by its indices, read straight off ``z`` and ``n``."""
    bias = z.shape[0] - 1
    wx = _weight(z[bias], n[bias], alpha, beta, l1, l2)
    for i in idx:
        wx += _weight(z[i], n[i], alpha, beta, l1, l2)
    wx = min(max(wx, -_CLIP), _CLIP)
    return 1.0 / (1.0 + math.exp(-wx))


def _labels(y: Any, n_rows: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"y must be one-dimensional, not of shape {arr.shape}")
    if len(arr) != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {len(arr)} labels")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"labels must be 0 or 1, not of type {arr.dtype}")
    out = arr.astype(np.float64)
    bad = (out != 0) & (out != 1)
    if bad.any():
        raise ValueError(f"labels must be 0 or 1; found {arr[bad][0]!r} at row "
                         f"{int(np.flatnonzero(bad)[0])}")
    return out


class FTRL(ClassifierMixin, BaseEstimator):
    """FTRL-Proximal logistic regression on hashed binary (or real-valued) features.

    Parameters
    ----------
    alpha, beta
        Per-coordinate learning rate ``alpha / (beta + sqrt(n_i))``.
    l1, l2
        L1 (sparsity) and L2 strength.
    bits
        The model has ``2**bits`` weights plus an intercept.
    epochs
        Passes over the data in :meth:`fit` (online learning is one pass).

    Attributes
    ----------
    z_, n_ : numpy.ndarray
        The FTRL state, ``2**bits + 1`` float64 each (the intercept last).
    n_seen_ : int
        Events learned from.
    """

    def __init__(self, alpha: float = 0.1, beta: float = 1.0, l1: float = 1.0,
                 l2: float = 1.0, bits: int = 20, epochs: int = 1):
        self.alpha, self.beta, self.l1, self.l2 = alpha, beta, l1, l2
        self.bits, self.epochs = bits, epochs

    # -- state ---------------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return 1 << self.bits

    def _check_params(self) -> None:
        if not (self.alpha > 0 and self.beta >= 0 and self.l1 >= 0 and self.l2 >= 0):
            raise ValueError("alpha must be > 0, and beta, l1 and l2 >= 0")
        if not 1 <= self.bits <= 30 or int(self.bits) != self.bits:
            raise ValueError(f"bits must be an integer in 1..30, not {self.bits}")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, not {self.epochs}")

    def _init_state(self) -> None:
        self._check_params()
        self.z_ = np.zeros(self.n_features + 1)
        self.n_ = np.zeros(self.n_features + 1)
        self.n_seen_ = 0
        self.classes_ = np.array([0, 1])
        self._w: np.ndarray | None = None

    def _hyper(self) -> tuple[float, float, float, float]:
        return float(self.alpha), float(self.beta), float(self.l1), float(self.l2)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "z_")

    def _fitted(self) -> None:
        if not self.is_fitted:
            raise ValueError("this FTRL model is not fitted yet: call fit or partial_fit")

    # -- input ---------------------------------------------------------------------------------
    def _csr(self, X: Any) -> sp.csr_matrix:
        """X as CSR with int32 indices and float64 data, its width checked."""
        if isinstance(X, list | tuple) and (not X or not np.isscalar(X[0])):
            rows = [np.asarray(r, dtype=np.int64).reshape(-1) for r in X]
            for r in rows:
                if len(r) and (r.min() < 0 or r.max() >= self.n_features):
                    raise ValueError(f"feature index out of range 0..{self.n_features - 1}")
            indptr = np.zeros(len(rows) + 1, np.int64)
            np.cumsum([len(r) for r in rows], out=indptr[1:])
            idx = np.concatenate(rows) if rows else np.zeros(0, np.int64)
            M = sp.csr_matrix((np.ones(len(idx)), idx.astype(np.int32), indptr),
                              shape=(len(rows), self.n_features))
        elif sp.issparse(X):
            if X.ndim != 2:
                raise ValueError(f"X must be two-dimensional, not of shape {X.shape}")
            M = sp.csr_matrix(X, dtype=np.float64)
        else:
            arr = np.asarray(X, dtype=np.float64)
            if arr.ndim != 2:
                raise ValueError(f"X must be two-dimensional (or a list of index arrays), "
                                 f"not of shape {arr.shape}")
            M = sp.csr_matrix(arr)
        if M.shape[1] > self.n_features:
            raise ValueError(f"X has {M.shape[1]} features; this model has "
                             f"2**{self.bits} = {self.n_features}")
        if M.shape[1] < self.n_features:  # narrower: the other columns are zero
            M = sp.csr_matrix((M.data, M.indices, M.indptr), shape=(M.shape[0], self.n_features))
        if not np.isfinite(M.data).all():
            raise ValueError("X holds NaN or infinite values")
        if not M.has_canonical_format:
            M.sum_duplicates()
        return M

    # -- learning ------------------------------------------------------------------------------
    def partial_fit_predict(self, X: Any, y: Any) -> np.ndarray:
        """Learn from the rows in order and return, for each, the click probability predicted
        just before learning from it: progressive validation, the standard online metric
        (every prediction is on an event the model has not yet seen)."""
        if not self.is_fitted:
            self._init_state()
        M = self._csr(X)
        yy = _labels(y, M.shape[0])
        out = np.empty(M.shape[0])
        _train(M.indptr.astype(np.int64), M.indices.astype(np.int32), M.data, yy, self.z_,
               self.n_, *self._hyper(), out)
        self.n_seen_ += M.shape[0]
        self._w = None
        return out

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> FTRL:
        """Learn from more rows (one pass, in order); ``classes`` is ignored (always 0, 1)."""
        self.partial_fit_predict(X, y)
        return self

    def fit(self, X: Any, y: Any) -> FTRL:
        """Start afresh and learn from the rows, ``epochs`` passes in order."""
        self._init_state()
        for _ in range(int(self.epochs)):
            self.partial_fit_predict(X, y)
        return self

    def update(self, features: Sequence[int] | np.ndarray, y: int) -> float:
        """Learn from one event (its feature indices, its label); returns the probability
        predicted before the update."""
        return float(self.partial_fit_predict([features], [y])[0])

    # -- prediction ----------------------------------------------------------------------------
    @property
    def coef_(self) -> np.ndarray:
        """The weights, ``2**bits`` (computed from ``z`` and ``n``; cached until an update)."""
        return self._weights()[:-1]

    @property
    def intercept_(self) -> float:
        return float(self._weights()[-1])

    def _weights(self) -> np.ndarray:
        self._fitted()
        if self._w is None:
            alpha, beta, l1, l2 = self._hyper()
            z, n = self.z_, self.n_
            w = -(z - np.sign(z) * l1) / ((beta + np.sqrt(n)) / alpha + l2)
            w[np.abs(z) <= l1] = 0.0
            self._w = w
        return self._w

    def decision_function(self, X: Any) -> np.ndarray:
        """``w . x + b`` per row."""
        w = self._weights()
        return self._csr(X) @ w[:-1] + w[-1]

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n_samples, 2)``: probabilities of no click and of a click."""
        p = 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(X), -_CLIP, _CLIP)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        """1 where a click is more likely than not."""
        return (self.decision_function(X) > 0).astype(int)

    def predict_one(self, features: Sequence[int] | np.ndarray) -> float:
        """The click probability of one binary row given by its feature indices: the request
        path (no matrix is built)."""
        self._fitted()
        idx = np.asarray(features, dtype=np.int64)
        if idx.ndim != 1:
            raise ValueError(f"features must be one list of indices, not of shape {idx.shape}")
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n_features):
            raise ValueError(f"feature index out of range 0..{self.n_features - 1}")
        return self._proba_unchecked(idx)

    def _proba_unchecked(self, idx: np.ndarray) -> float:
        """:meth:`predict_one` for indices known to be in range: a gather from the weights
        when they are materialized (after a batch prediction or :attr:`coef_`; about 1.5 us),
        else read off ``z`` and ``n`` (compiled; about 2.5 us), so online updates in between
        never recompute all ``2**bits`` weights."""
        w = self._w
        if w is None:
            return float(_predict_idx(idx, self.z_, self.n_, *self._hyper()))
        s = float(w.take(idx).sum() + w[-1])
        return 1.0 / (1.0 + math.exp(-min(max(s, -_CLIP), _CLIP)))

    def sparsity(self) -> float:
        """The share of weights that are exactly zero."""
        return float(np.mean(self.coef_ == 0.0))

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the parameters and state to a compressed ``.npz``."""
        self._fitted()
        np.savez_compressed(path, z=self.z_, n=self.n_, n_seen=np.int64(self.n_seen_),
                            params=np.array(json.dumps(self.get_params())))

    @classmethod
    def load(cls, path: str | Path) -> FTRL:
        """A model written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            m = cls(**json.loads(str(f["params"])))
            m._init_state()
            if f["z"].shape != m.z_.shape:
                raise ValueError(f"{path}: state of shape {f['z'].shape} does not fit "
                                 f"2**{m.bits} features")
            m.z_, m.n_, m.n_seen_ = f["z"].copy(), f["n"].copy(), int(f["n_seen"])
        return m
