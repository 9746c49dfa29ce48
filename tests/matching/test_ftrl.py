"""FTRL-Proximal: learns a known logistic model, L1 sparsity, save/load, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from allscene.matching.evaluate import auc, score
from allscene.matching.features import hash_columns
from allscene.matching.ftrl import FTRL


def known_model(n: int, seed: int = 0, fields: int = 12, values: int = 8):
    """Rows of ``fields`` categorical fields; the true logit is a sum of one weight per
    (field, value) plus an intercept: exactly a logistic model over one-hot features."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, values, (n, fields))
    w = rng.normal(0, 0.6, (fields, values))
    logit = -3.2 + w[np.arange(fields), codes].sum(axis=1)
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(int)
    X = hash_columns({f"f{j}": codes[:, j] for j in range(fields)}, bits=16)
    return X, y, p


def test_ftrl_recovers_a_known_logistic_model():
    X, y, p = known_model(120_000)
    k = 90_000
    m = FTRL(alpha=0.1, l1=1.0, l2=1.0, bits=16).fit(X[:k], y[:k])
    q = m.predict_proba(X[k:])[:, 1]
    true_auc, got = auc(y[k:], p[k:]), auc(y[k:], q)
    print(f"true model AUC {true_auc:.4f}, FTRL {got:.4f}; CTR {y[k:].mean():.4f}, "
          f"mean p {q.mean():.4f}")
    assert got > true_auc - 0.01
    assert q.mean() == pytest.approx(y[k:].mean(), rel=0.10)
    s_true, s = score(y[k:], p[k:]), score(y[k:], q)
    assert s.logloss < s_true.logloss * 1.01
    # one pass in order is progressive validation: its predictions never saw their label
    prog = FTRL(bits=16).partial_fit_predict(X[:k], y[:k])
    assert auc(y[:k], prog) > 0.5 + 0.8 * (true_auc - 0.5)


def test_l1_gives_sparsity():
    """Noise features (a column of 4,000 values unrelated to clicks) are dropped by L1; the
    informative ones stay."""
    X, y, _ = known_model(20_000, seed=1)
    noise = np.random.default_rng(9).integers(0, 4_000, len(y))
    N = hash_columns({"noise": noise}, bits=16)
    XN = (X + N).tocsr()
    informative, junk = np.unique(X.indices), np.setdiff1d(np.unique(N.indices), X.indices)
    dense = FTRL(l1=0.0, bits=16).fit(XN, y)
    sparse = FTRL(l1=3.0, bits=16).fit(XN, y)
    assert np.count_nonzero(dense.coef_[junk]) == len(junk)
    assert np.count_nonzero(sparse.coef_[junk]) < 0.05 * len(junk)
    assert np.count_nonzero(sparse.coef_[informative]) > 0.8 * len(informative)
    assert sparse.sparsity() > dense.sparsity()
    assert auc(y, sparse.predict_proba(XN)[:, 1]) > auc(y, dense.predict_proba(XN)[:, 1]) - 0.02


def test_update_one_event_equals_the_batch_pass():
    X, y, _ = known_model(300, seed=2)
    batch = FTRL(bits=16).fit(X, y)
    one = FTRL(bits=16)
    one._init_state()
    for i in range(X.shape[0]):
        one.update(X[i].indices, y[i])
    assert np.allclose(one.z_, batch.z_) and np.allclose(one.n_, batch.n_)
    assert one.n_seen_ == batch.n_seen_ == 300
    assert one.predict_one(X[0].indices) == pytest.approx(batch.predict_proba(X[:1])[0, 1])


def test_inputs_lists_dense_and_sparse_agree():
    rows = [[1, 5], [2], [5, 7, 9]]
    y = [1, 0, 1]
    D = np.zeros((3, 16))
    for i, r in enumerate(rows):
        D[i, r] = 1
    a = FTRL(bits=4, l1=0).fit(rows, y).predict_proba(rows)
    b = FTRL(bits=4, l1=0).fit(D, y).predict_proba(sp.csc_matrix(D))
    assert np.allclose(a, b)
    assert np.allclose(a.sum(axis=1), 1)


def test_save_load_round_trip(tmp_path):
    X, y, _ = known_model(5_000, seed=3)
    m = FTRL(alpha=0.2, beta=0.5, l1=0.3, l2=2.0, bits=16).fit(X, y)
    m.save(tmp_path / "m.npz")
    back = FTRL.load(tmp_path / "m.npz")
    assert back.get_params() == m.get_params()
    assert back.n_seen_ == 5_000
    assert np.array_equal(back.predict_proba(X), m.predict_proba(X))
    back.partial_fit(X[:10], y[:10])  # and keeps learning
    assert back.n_seen_ == 5_010


def test_sklearn_conventions():
    m = FTRL(alpha=0.3, bits=8)
    assert m.get_params()["alpha"] == 0.3
    c = clone(m)
    assert c.get_params() == m.get_params() and not c.is_fitted
    m.fit([[1], [2]], [1, 0])
    assert m.predict([[1], [2]]).tolist() in ([1, 0], [0, 0], [1, 1])
    assert list(m.classes_) == [0, 1]


@pytest.mark.parametrize("X, y, message", [
    ([[1], [2]], [1], "2 rows but y has 1"),
    ([[1], [2]], [0, 2], "labels must be 0 or 1"),
    ([[1], [2]], [0.5, 1], "labels must be 0 or 1"),
    ([[1], [2]], ["0", "1"], "labels must be 0 or 1"),
    ([[1], [2]], [[0], [1]], "one-dimensional"),
    ([[1], [300]], [0, 1], "out of range"),
    (np.zeros(5), [0, 1, 0, 1, 0], "two-dimensional"),
    (np.zeros((2, 300)), [0, 1], "2**8 = 256"),
    (np.full((2, 4), np.nan), [0, 1], "NaN"),
])
def test_bad_input_is_a_clear_value_error(X, y, message):
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        FTRL(bits=8).fit(X, y)


def test_bad_parameters_and_unfitted_use_are_value_errors():
    with pytest.raises(ValueError, match="alpha"):
        FTRL(alpha=0).fit([[1]], [1])
    with pytest.raises(ValueError, match="bits"):
        FTRL(bits=40).fit([[1]], [1])
    with pytest.raises(ValueError, match="not fitted"):
        FTRL().predict_proba([[1]])
    m = FTRL(bits=4).fit([[1]], [1])
    with pytest.raises(ValueError, match="out of range"):
        m.predict_one([16])
    with pytest.raises(ValueError, match="one list"):
        m.predict_one([[1, 2]])
