"""The lift estimator: the published Hillstrom group means, intervals against independent
computations, coverage on simulated experiments with a known effect, and clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from allscene.config import shared_data
from allscene.measurement.lift import LiftError, _lin, lift, lift_table, read_experiment

HILLSTROM = ("data/hillstrom/"
             "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv")
COVARIATES = "recency,history,mens,womens,newbie,zip_code,channel"


def hillstrom_csv() -> Path:
    f = shared_data("uplift_hillstrom", "ALLSCENE_HILLSTROM_DIR") / HILLSTROM
    if not f.is_file():
        pytest.skip("Hillstrom e-mail experiment not found: set ALLSCENE_HILLSTROM_DIR")
    return f


@pytest.fixture(scope="module")
def hillstrom():
    return read_experiment(hillstrom_csv(), "segment", "No E-Mail",
                           ["visit", "conversion", "spend"], COVARIATES)


# --- Hillstrom (MineThatData, 2008) -----------------------------------------------------------

def test_reproduces_the_published_group_means(hillstrom):
    rows = {(r.outcome, r.treatment): r.lift for r in lift_table(hillstrom)}
    assert len(rows) == 6
    published = {  # visit and conversion in %, spend in $
        "visit": {"Mens E-Mail": 18.28, "Womens E-Mail": 15.14, "No E-Mail": 10.62},
        "conversion": {"Mens E-Mail": 1.25, "Womens E-Mail": 0.88, "No E-Mail": 0.57},
        "spend": {"Mens E-Mail": 1.42, "Womens E-Mail": 1.08, "No E-Mail": 0.65},
    }
    for outcome, means in published.items():
        scale = 1 if outcome == "spend" else 100
        for arm in ("Mens E-Mail", "Womens E-Mail"):
            r = rows[(outcome, arm)]
            assert round(scale * r.mean_treated, 2) == means[arm], (outcome, arm)
            assert round(scale * r.mean_control, 2) == means["No E-Mail"], outcome
            assert r.absolute.value == pytest.approx(r.mean_treated - r.mean_control)
            assert r.absolute.low < r.absolute.value < r.absolute.high
            assert r.absolute.low > 0 and r.p_value < 0.01  # every e-mail lifts every outcome
    assert (rows[("visit", "Mens E-Mail")].n_treated, rows[("visit", "Womens E-Mail")].n_treated,
            rows[("visit", "Mens E-Mail")].n_control) == (21307, 21387, 21306)
    overall = {k: round(float(v.mean()), 6) for k, v in hillstrom.outcomes.items()}
    assert overall == {"visit": 0.146781, "conversion": 0.009031, "spend": 1.050908}


def test_hillstrom_interval_is_the_closed_form_welch_interval(hillstrom):
    y, g = hillstrom.outcomes["visit"], hillstrom.groups
    y1, y0 = y[g == "Mens E-Mail"], y[g == "No E-Mail"]
    # Closed form, by hand: binary outcome, p(1-p)/n with the n-1 correction; z = 1.959964.
    p1, p0, n1, n0 = y1.mean(), y0.mean(), y1.size, y0.size
    se = math.sqrt(p1 * (1 - p1) / (n1 - 1) + p0 * (1 - p0) / (n0 - 1))
    r = lift(y[(g == "Mens E-Mail") | (g == "No E-Mail")],
             g[(g == "Mens E-Mail") | (g == "No E-Mail")] == "Mens E-Mail")
    assert r.absolute.se == pytest.approx(se, rel=1e-9)
    assert r.absolute.low == pytest.approx(p1 - p0 - 1.959964 * se, abs=2e-6)
    assert r.absolute.high == pytest.approx(p1 - p0 + 1.959964 * se, abs=2e-6)
    assert r.relative.value == pytest.approx(p1 / p0 - 1)


def test_hillstrom_covariates_adjust_without_moving_the_estimate_much(hillstrom):
    for method in ("regression", "cuped"):
        for row in lift_table(hillstrom, method=method):
            x = row.lift
            assert abs(x.adjusted.value - x.absolute.value) < 0.5 * x.absolute.se, row
            assert 0 < x.narrowed < 0.1  # pre-period behaviour predicts little here
            assert x.narrowed == pytest.approx(1 - x.adjusted.width / x.absolute.width)
    plain = lift_table(hillstrom, adjust=False)
    assert all(r.lift.adjusted is None and r.lift.narrowed is None for r in plain)


# --- intervals against independent computations ---------------------------------------------

def test_small_sample_interval_and_p_value_match_scipy_welch():
    rng = np.random.default_rng(3)
    y1, y0 = rng.normal(1.0, 2.0, 7), rng.normal(0.0, 0.5, 11)
    r = lift(np.r_[y1, y0], np.r_[np.ones(7, bool), np.zeros(11, bool)])
    ref = stats.ttest_ind(y1, y0, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert (r.absolute.low, r.absolute.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    wide = lift(np.r_[y1, y0], np.r_[np.ones(7, bool), np.zeros(11, bool)], alpha=0.01)
    assert wide.absolute.width > r.absolute.width


def test_hc2_regression_equals_the_neyman_and_post_stratified_estimators():
    rng = np.random.default_rng(1)
    n = 300
    t = rng.random(n) < 0.4
    s = rng.integers(0, 3, n)
    y = rng.normal(size=n) + s + t * (0.3 + 0.2 * s)
    plain, _, _ = _lin(y, t, np.empty((n, 0)), 0.05)
    assert plain.se == pytest.approx(lift(y, t).absolute.se, rel=1e-10)  # HC2 = Neyman
    x = np.column_stack([s == 1, s == 2]).astype(float)
    w = np.bincount(s) / n
    arm = [(t & (s == k), ~t & (s == k)) for k in range(3)]
    tau = np.array([y[a].mean() - y[b].mean() for a, b in arm])
    var = np.array([y[a].var(ddof=1) / a.sum() + y[b].var(ddof=1) / b.sum() for a, b in arm])
    r = lift(y, t, x)
    assert r.adjusted.value == pytest.approx(w @ tau, rel=1e-10)
    assert r.adjusted.se == pytest.approx(math.sqrt(w**2 @ var), rel=1e-10)


@pytest.mark.parametrize("method", ["regression", "cuped"])
def test_intervals_cover_a_known_effect_95_percent_of_the_time(method):
    rng = np.random.default_rng(20260501)
    n, effect, base = 400, 1.0, 2.0
    covered = {"absolute": 0, "relative": 0, "adjusted": 0, "adjusted_relative": 0}
    narrowed = []
    for _ in range(400):
        x = rng.normal(size=n)
        t = rng.permutation(np.arange(n) < n // 2)
        y = base + 2 * x + rng.standard_exponential(n) - 1 + effect * t
        r = lift(y, t, x, method=method)
        for k, truth in (("absolute", effect), ("relative", effect / base),
                         ("adjusted", effect), ("adjusted_relative", effect / base)):
            e = getattr(r, k)
            covered[k] += e.low <= truth <= e.high
        narrowed.append(r.narrowed)
    for k, c in covered.items():
        assert 0.93 <= c / 400 <= 0.975, (k, c)
    assert np.mean(narrowed) > 0.5  # x explains 80% of the variance: half as wide or better


def test_binary_outcome_interval_covers_a_known_effect():
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(400):
        t = rng.random(3000) < 0.5
        y = (rng.random(3000) < np.where(t, 0.06, 0.04)).astype(float)
        r = lift(y, t)
        covered += r.absolute.low <= 0.02 <= r.absolute.high
    assert 0.93 <= covered / 400 <= 0.975


# --- the array API's errors -------------------------------------------------------------------

def test_relative_lift_is_none_with_a_reason_when_control_mean_is_zero():
    r = lift(np.array([0.0, 0, 0, 1, 0, 1]), np.array([0, 0, 0, 1, 1, 1], bool))
    assert r.relative is None and "control mean is 0" in r.relative_note
    assert r.absolute.value == pytest.approx(2 / 3)


@pytest.mark.parametrize("y, t, x, kw, message", [
    ([1.0, 2, 3], [True, False, False], None, {}, "at least 2 rows"),
    ([1.0, 1, 2, 2], [True, True, False, False], None, {}, "zero variance"),
    ([1.0, 2, 3], [True, False], None, {}, "one length"),
    ([1.0, np.nan, 3, 4], [True, True, False, False], None, {}, "missing"),
    ([1.0, 2, 3, 4], [1, 2, 0, 0], None, {}, "boolean"),
    ([1.0, 2, 3, 4], [True, True, False, False], None, {"method": "ols"}, "unknown method"),
    ([1.0, 2, 3, 4], [True, True, False, False], None, {"alpha": 5}, "alpha"),
    ([1.0, 2, 3, 5], [True, True, False, False], [7, 7, 7, 7], {}, "constant"),
    ([1.0, 2, 3, 5, 4, 1], [True, True, True, False, False, False],
     [[1, 2], [2, 4], [3, 6], [1, 2], [5, 10], [0, 0]], {}, "collinear"),
])
def test_bad_arrays_are_refused_with_the_reason(y, t, x, kw, message):
    with pytest.raises(LiftError, match=message):
        lift(np.array(y), np.array(t), None if x is None else np.array(x, float), **kw)


# --- reading tables ----------------------------------------------------------------------------

def test_reads_parquet_with_booleans_numeric_groups_and_categories(tmp_path):
    f = tmp_path / "exp.parquet"
    rng = np.random.default_rng(5)
    n = 200
    arm = rng.integers(0, 2, n)
    city = rng.choice(["a", "b", "c"], n)
    pq.write_table(pa.table({"arm": arm, "bought": rng.random(n) < 0.3 + 0.2 * arm,
                             "city": city, "pre": rng.normal(size=n)}), f)
    e = read_experiment(f, "arm", "0", "bought", ["city", "pre"])
    assert e.treatments == ["1"] and e.covariate_names == ("city=b", "city=c", "pre")
    np.testing.assert_array_equal(e.covariates[:, 1], (city == "c").astype(float))
    (row,) = lift_table(e, method="cuped")
    assert row.outcome == "bought" and row.lift.adjusted is not None


def _csv(tmp_path, text: str, name: str = "e.csv") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


GOOD = "arm,y,pre,city,note\nA,1,0.5,x,\nA,0,1.5,y,\nB,1,2.5,x,z\nB,3,0.1,y,\n"


@pytest.mark.parametrize("args, message", [
    (("arm", "A", "y", "nope"), "covariate column 'nope' is not in e.csv; columns: arm, y"),
    (("arm", "A", "ys", None), "outcome column 'ys' is not in"),
    (("group", "A", "y", None), "group column 'group' is not in"),
    (("arm", "C", "y", None), "control value 'C' is not in group column 'arm'; values: 'A', 'B'"),
    (("arm", "A", "city", None), "outcome 'city' is not numeric"),
    (("arm", "A", "y", "note"), "covariate 'note' has 3 empty values"),
    (("arm", "A", "y", "arm"), "also the group or an outcome"),
    (("arm", "A", "", None), "no outcome"),
])
def test_bad_tables_are_refused_naming_what_is_wrong(tmp_path, args, message):
    with pytest.raises(LiftError, match=message):
        read_experiment(_csv(tmp_path, GOOD), *args)


def test_bad_files_and_tiny_groups_are_refused(tmp_path):
    with pytest.raises(LiftError, match="no such file"):
        read_experiment(tmp_path / "missing.csv", "arm", "A", "y")
    with pytest.raises(LiftError, match="unknown file type"):
        read_experiment(_csv(tmp_path, GOOD, "e.xlsx"), "arm", "A", "y")
    with pytest.raises(LiftError, match="cannot be read as Parquet"):
        read_experiment(_csv(tmp_path, GOOD, "e.parquet"), "arm", "A", "y")
    tiny = _csv(tmp_path, GOOD + "C,1,1,x,\n", "tiny.csv")
    with pytest.raises(LiftError, match=r"at least 2 rows; 'C' \(1\)"):
        read_experiment(tiny, "arm", "A", "y")
    const = _csv(tmp_path, GOOD.replace(",x,", ",y,"), "const.csv")
    with pytest.raises(LiftError, match="covariate 'city' has one value in every row"):
        read_experiment(const, "arm", "A", "y", "city")
    flat = _csv(tmp_path, "arm,y\nA,1\nA,1\nB,2\nB,2\n", "flat.csv")
    with pytest.raises(LiftError, match="y, 'B' against 'A': .*zero variance"):
        lift_table(read_experiment(flat, "arm", "A", "y"))
