"""Evaluation: metrics, and the real Criteo and Avazu samples trained end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from allscene.matching.evaluate import (
    Dataset,
    auc,
    calibration,
    compare,
    constant_baseline,
    gbm_matrix,
    load_avazu,
    load_criteo,
    log_loss,
    score,
    split,
)
from allscene.matching.ftrl import FTRL


def load_or_skip(loader):
    try:
        return loader()
    except FileNotFoundError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("loader, rows, ctr", [(load_criteo, 200, 0.245),
                                               (load_avazu, 100, 0.20)])
def test_real_samples_load_and_train_end_to_end(loader, rows, ctr):
    ds = load_or_skip(loader)
    assert len(ds) == rows and ds.y.mean() == pytest.approx(ctr, abs=0.005)
    assert all(len(c) == rows for c in ds.frame.values())
    comp = compare(ds, ftrl=FTRL(alpha=0.1), bits=18)
    scored = [(f"held-out {k}", s) for k, s in comp.held_out.items()]
    for name, s in scored + [(f"train {k}", s) for k, s in comp.train.items()]:
        # a few hundred rows: the interval is wide (+-1.96 se), so no claim on who is better
        print(f"{ds.name:6s} {name:24s} AUC {s.auc:.3f} +- {1.96 * s.auc_se:.3f}  "
              f"log loss {s.logloss:.4f}  mean p {s.mean_p:.3f} CTR {s.ctr:.3f}")
        assert 0 <= s.auc <= 1 and math.isfinite(s.logloss) and 0 < s.mean_p < 1
    p = comp.ftrl.predict_proba(comp.ftrl._csr([[1, 2]]))[:, 1]
    assert 0 < p[0] < 1
    # on the data it learned from, the model is at least as good as the training rate
    assert comp.train["FTRL"].logloss <= comp.train["constant"].logloss
    assert comp.train["GBM"].logloss <= comp.train["constant"].logloss
    assert comp.held_out["constant"].auc == 0.5


def test_criteo_columns():
    ds = load_or_skip(load_criteo)
    assert ds.numeric == tuple(f"I{i}" for i in range(1, 14))
    assert np.isnan(ds.frame["I1"][0]) and ds.frame["I3"][0] == 260.0
    assert ds.frame["C1"][0] == "05db9164" and ds.frame["C20"][0] == ""


def test_avazu_columns():
    ds = load_or_skip(load_avazu)
    assert "id" not in ds.frame and "click" not in ds.frame
    assert set(ds.frame["hour_of_day"]) == {0} and set(ds.frame["weekday"]) == {2}  # 2014-10-21


def test_a_missing_sample_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="ALLSCENE_CTR_SAMPLES"):
        load_criteo(tmp_path / "nope.txt")


def test_metrics():
    y = np.array([0, 1, 0, 1])
    assert auc(y, [0.1, 0.9, 0.2, 0.8]) == 1.0
    assert math.isnan(auc([0, 0], [0.1, 0.2]))
    assert log_loss(y, np.full(4, 0.5)) == pytest.approx(math.log(2))
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))  # clipped, not inf
    c = calibration(np.r_[np.zeros(90), np.ones(10)], np.full(100, 0.2), bins=4)
    assert c["observed"] == 0.1 and c["ratio"] == pytest.approx(2.0) and len(c["bins"]) == 4
    assert constant_baseline([0, 0, 1, 0]) == 0.25
    s = score(y, [0.2, 0.6, 0.3, 0.7])
    assert (s.n, s.clicks, s.ctr, s.calibration) == (4, 2, 0.5, pytest.approx(0.9))


@pytest.mark.parametrize("y, p, message", [
    ([0, 2], [0.1, 0.2], "0 or 1"), ([0, 1], [0.1], "one length"),
    ([0, 1], [0.1, 1.5], r"\[0, 1\]"), ([[0, 1]], [[0.1, 0.2]], "1-D"),
])
def test_metric_inputs_are_checked(y, p, message):
    with pytest.raises(ValueError, match=message):
        score(y, p)


def test_split_is_in_time_order_and_checked():
    ds = Dataset("d", {"a": np.arange(8)}, np.array([0, 1] * 4))
    tr, te = split(ds, 0.75)
    assert tr.frame["a"].tolist() == list(range(6)) and te.frame["a"].tolist() == [6, 7]
    with pytest.raises(ValueError, match="train_share"):
        split(ds, 1.0)
    with pytest.raises(ValueError, match="cannot be split"):
        split(Dataset("d", {"a": np.arange(1)}, np.array([1])), 0.5)
    constant = compare(Dataset("d", {"a": np.arange(8)}, np.zeros(8, int)), bits=8)
    assert constant.gbm is None and constant.held_out["GBM held-out"].mean_p == 0


def test_gbm_codes_pool_rare_values_and_leave_unseen_missing():
    tr = {"c": np.array(["a"] * 5 + ["b"] * 3 + ["rare", ""]), "n": np.arange(10.0)}
    te = {"c": np.array(["b", "rare", "new", ""]), "n": np.array([1.0, np.nan, 3, 4])}
    a, b, cat = gbm_matrix(tr, te, ["n"])
    assert cat.tolist() == [True, False]
    assert a[:, 0].tolist()[:9] == [0] * 5 + [1] * 3 + [2] and np.isnan(a[9, 0])
    assert b[:, 0].tolist()[:2] == [1, 2] and np.isnan(b[2:, 0]).all()
    assert np.isnan(b[1, 1])
