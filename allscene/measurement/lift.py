"""Lift of a randomized experiment: each treatment against control, with intervals.

The estimator takes arrays (:func:`lift`), so the platform's holdouts and an analyst's own
experiment (:func:`read_experiment` reads a CSV or Parquet table, :func:`lift_table` gives
one result per treatment and outcome) share it. Pre-period covariates reduce variance by
regression adjustment (Lin 2013: interacted OLS, HC2 standard errors) or CUPED (Deng et
al. 2013: one pooled coefficient).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from allscene.storage.duck import connect

METHODS = ("regression", "cuped")
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


class LiftError(ValueError):
    """The experiment or its arrays cannot give a lift; the message says what is wrong."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and ``1 - alpha`` interval."""

    value: float
    se: float
    low: float
    high: float

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class Lift:
    """One treatment against control (see :func:`lift`)."""

    n_treated: int
    n_control: int
    mean_treated: float
    mean_control: float
    absolute: Estimate
    relative: Estimate | None
    p_value: float
    alpha: float
    relative_note: str | None = None
    method: str | None = None
    adjusted: Estimate | None = None
    adjusted_relative: Estimate | None = None
    adjusted_p_value: float | None = None
    narrowed: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def lift(y: np.ndarray, treated: np.ndarray, covariates: np.ndarray | None = None, *,
         alpha: float = 0.05, method: str = "regression") -> Lift:
    """Lift of the treated rows over the control rows of a randomized experiment.

    Parameters
    ----------
    y : array of float, shape (n,)
        The outcome per unit (0/1 outcomes are fine: the mean is a rate).
    treated : array of bool, shape (n,)
        True for treatment, False for control.
    covariates : array, shape (n,) or (n, k), optional
        Pre-period covariates (numeric; one-hot encode categories first). With them the
        result also holds the adjusted lift.
    alpha : float
        1 - confidence level of the intervals.
    method : {"regression", "cuped"}
        ``"regression"``: OLS of y on treatment, centred covariates and their interactions
        with treatment (Lin 2013), HC2 robust standard errors, t with n - p degrees of
        freedom. ``"cuped"``: y minus the centred covariates times the pooled OLS
        coefficient, then the difference in means as below.

    Returns
    -------
    Lift
        ``absolute``: difference in means, Welch standard error, t interval with
        Welch-Satterthwaite degrees of freedom; ``p_value``: two-sided Welch test.
        ``relative``: absolute / control mean, with a delta-method standard error and the
        same critical value (None, with ``relative_note`` saying why, when the control
        mean is 0). With covariates: ``adjusted`` and ``adjusted_relative`` (adjusted lift
        over the adjusted control mean, delta method), ``adjusted_p_value`` and
        ``narrowed`` = 1 - adjusted width / unadjusted width.

    Raises
    ------
    LiftError
        Mismatched shapes, non-finite values, an arm with fewer than 2 rows, zero variance
        in both arms, constant or collinear covariates.

    Examples
    --------
    >>> r = lift(np.array([1.0, 2, 3, 4, 5, 6]), np.array([0, 0, 0, 1, 1, 1], dtype=bool))
    >>> r.absolute.value, round(r.relative.value, 2), round(r.p_value, 3)
    (3.0, 1.5, 0.021)
    """
    y = np.asarray(y, dtype=float)
    t = np.asarray(treated)
    if y.ndim != 1 or t.shape != y.shape:
        raise LiftError(f"y and treated must be 1-D of one length; got {y.shape} and {t.shape}")
    if t.dtype != bool:
        if not np.isin(t, (0, 1)).all():
            raise LiftError("treated must be boolean (or 0/1)")
        t = t.astype(bool)
    if not np.isfinite(y).all():
        raise LiftError(f"y has {int((~np.isfinite(y)).sum())} missing or infinite values")
    if not 0 < alpha < 1:
        raise LiftError(f"alpha must be between 0 and 1; got {alpha}")
    if method not in METHODS:
        raise LiftError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    n1, n0 = int(t.sum()), int((~t).sum())
    if min(n1, n0) < 2:
        raise LiftError(f"each arm needs at least 2 rows; treated has {n1}, control {n0}")
    m1, m0 = float(y[t].mean()), float(y[~t].mean())
    absolute, relative, p, note = _difference(y, t, alpha)
    if absolute is None:
        raise LiftError("the outcome has zero variance in both arms (every treated row "
                        f"{m1:g}, every control row {m0:g}): the interval is undefined")
    base = dict(n_treated=n1, n_control=n0, mean_treated=m1, mean_control=m0,
                absolute=absolute, relative=relative, p_value=p, alpha=alpha,
                relative_note=note)
    if covariates is None:
        return Lift(**base)
    x = np.asarray(covariates, dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise LiftError(f"covariates must have {y.shape[0]} rows; got shape {x.shape}")
    if not np.isfinite(x).all():
        raise LiftError("covariates have missing or infinite values")
    xc = x - x.mean(axis=0)
    constant = np.flatnonzero(np.ptp(x, axis=0) == 0)
    if constant.size:
        raise LiftError(f"covariate column(s) {constant.tolist()} are constant: they cannot "
                        "adjust anything")
    if method == "cuped":
        theta = np.linalg.lstsq(xc, y - y.mean(), rcond=None)[0]
        adjusted, adj_rel, adj_p, _ = _difference(y - xc @ theta, t, alpha)
    else:
        adjusted, adj_rel, adj_p = _lin(y, t, xc, alpha)
    if adjusted is None:
        raise LiftError("the covariates explain the outcome exactly: the adjusted interval "
                        "is undefined")
    return Lift(**base, method=method, adjusted=adjusted, adjusted_relative=adj_rel,
                adjusted_p_value=adj_p, narrowed=1.0 - adjusted.width / absolute.width)


def _difference(y: np.ndarray, t: np.ndarray, alpha: float):
    """Welch difference in means, its relative form, p-value, and why relative is None."""
    y1, y0 = y[t], y[~t]
    n1, n0 = y1.size, y0.size
    m1, m0 = y1.mean(), y0.mean()
    a, b = y1.var(ddof=1) / n1, y0.var(ddof=1) / n0
    se = math.sqrt(a + b)
    if se == 0.0 or not math.isfinite(se):
        return None, None, math.nan, None
    df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n0 - 1))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    diff = float(m1 - m0)
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    absolute = Estimate(diff, se, diff - q * se, diff + q * se)
    if m0 == 0:
        return absolute, None, p, "control mean is 0: relative lift is undefined"
    # r = m1/m0 - 1; gradient (1/m0, -m1/m0^2), arms independent.
    se_r = math.sqrt(a / m0**2 + b * m1**2 / m0**4)
    r = diff / float(m0)
    return absolute, Estimate(r, se_r, r - q * se_r, r + q * se_r), p, None


def _lin(y: np.ndarray, t: np.ndarray, xc: np.ndarray, alpha: float):
    """Lin's interacted regression with HC2 covariance: (lift, relative lift, p-value)."""
    n = y.size
    tf = t.astype(float)
    d = np.column_stack([np.ones(n), tf, xc, xc * tf[:, None]])
    k = d.shape[1]
    beta, _, rank, _ = np.linalg.lstsq(d, y, rcond=None)
    if rank < k or n - k < 1:
        raise LiftError(f"regression adjustment needs {k} independent columns and more rows "
                        f"(rank {rank}, {n} rows): covariates are collinear or constant within "
                        "an arm; use fewer covariates or method='cuped'")
    bread = np.linalg.inv(d.T @ d)
    h = np.einsum("ij,jk,ik->i", d, bread, d)
    if (h > 1 - 1e-9).any():
        raise LiftError("a row has leverage 1 (a covariate value only one row of an arm "
                        "has): merge rare categories or use method='cuped'")
    e = y - d @ beta
    w = e**2 / (1 - h)
    cov = bread @ ((d * w[:, None]).T @ d) @ bread
    tau, c0 = float(beta[1]), float(beta[0])
    se = math.sqrt(cov[1, 1])
    if se == 0.0:
        return None, None, math.nan
    q = float(stats.t.ppf(1 - alpha / 2, n - k))
    p = float(2 * stats.t.sf(abs(tau) / se, n - k))
    adjusted = Estimate(tau, se, tau - q * se, tau + q * se)
    if c0 == 0:
        return adjusted, None, p
    g = np.array([-tau / c0**2, 1 / c0])  # d(tau/c0) / d(c0, tau)
    se_r = math.sqrt(float(g @ cov[:2, :2] @ g))
    r = tau / c0
    return adjusted, Estimate(r, se_r, r - q * se_r, r + q * se_r), p


@dataclass(frozen=True)
class Experiment:
    """A randomized experiment read from a table: arms, outcomes and encoded covariates."""

    source: str
    group: str
    control: str
    groups: np.ndarray  # the group label of each row, as text
    outcomes: dict[str, np.ndarray]
    covariates: np.ndarray | None  # (n, k) float, categories one-hot (first level dropped)
    covariate_names: tuple[str, ...] = ()

    @property
    def treatments(self) -> list[str]:
        return sorted(set(np.unique(self.groups).tolist()) - {self.control})


@dataclass(frozen=True)
class LiftRow:
    """One treatment's lift on one outcome."""

    treatment: str
    outcome: str
    lift: Lift


def _split(cols: str | list[str] | tuple[str, ...] | None) -> list[str]:
    if cols is None:
        return []
    if isinstance(cols, str):
        cols = cols.split(",")
    return [c.strip() for c in cols if c.strip()]


def read_experiment(path: str | Path, group: str, control: str,
                    outcomes: str | list[str], covariates: str | list[str] | None = None
                    ) -> Experiment:
    """Read a randomized experiment from a CSV or Parquet file (through DuckDB).

    ``group`` is the column naming each row's arm and ``control`` its control value (compared
    as text). ``outcomes`` and ``covariates`` are column names (a list or comma-separated).
    Outcomes must be numeric or boolean; numeric and boolean covariates are used as they
    are, text covariates are one-hot encoded with their first level (sorted) dropped.

    Raises
    ------
    LiftError
        A missing or unreadable file, an unknown extension or column (the message lists the
        columns), a control value absent from the group column (it lists the values), a
        non-numeric outcome, nulls, an arm with fewer than 2 rows, a constant covariate.

    Examples
    --------
    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "x.csv")
    >>> _ = open(f, "w").write("arm,y,pre\\nA,1,0\\nA,0,1\\nB,1,1\\nB,1,0\\n")
    >>> e = read_experiment(f, "arm", "A", "y", "pre")
    >>> e.treatments, e.outcomes["y"].tolist(), e.covariate_names
    (['B'], [1.0, 0.0, 1.0, 1.0], ('pre',))
    """
    path = Path(path)
    outs, covs = _split(outcomes), _split(covariates)
    if not outs:
        raise LiftError("no outcome column given")
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        reader, kind = "read_csv_auto", "CSV"
    elif name.endswith(PARQUET_SUFFIXES):
        reader, kind = "read_parquet", "Parquet"
    else:
        raise LiftError(f"{path}: unknown file type; expected "
                        f"{', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}")
    if not path.is_file():
        raise LiftError(f"{path}: no such file")
    con = connect()
    try:
        types = {r[0]: r[1] for r in con.execute(
            f"DESCRIBE SELECT * FROM {reader}($p)", {"p": str(path)}).fetchall()}
    except Exception as exc:  # noqa: BLE001 - any engine error: the file is unreadable
        raise LiftError(f"{path}: cannot be read as {kind} ({exc})") from exc
    for role, col in [("group", group), *(("outcome", o) for o in outs),
                      *(("covariate", c) for c in covs)]:
        if col not in types:
            raise LiftError(f"{role} column {col!r} is not in {path.name}; columns: "
                            f"{', '.join(types)}")
    for c in covs:
        if c == group or c in outs:
            raise LiftError(f"covariate {c!r} is also the group or an outcome")
    cols = list(dict.fromkeys([*outs, *covs]))
    sql = ", ".join([f"CAST({_q(group)} AS VARCHAR) AS __group",
                     *(_q(c) for c in cols)])
    try:
        table = con.execute(f"SELECT {sql} FROM {reader}($p)",
                            {"p": str(path)}).to_arrow_table()
    except Exception as exc:  # noqa: BLE001 - e.g. a CSV row that breaks the sniffed types
        raise LiftError(f"{path}: cannot be read as {kind} ({exc})") from exc
    g = table.column("__group")
    if g.null_count:
        raise LiftError(f"group column {group!r} has {g.null_count} empty values")
    groups = np.asarray(g.to_pylist(), dtype=object)
    values, counts = np.unique(groups, return_counts=True)
    if control not in values:
        raise LiftError(f"control value {control!r} is not in group column {group!r}; "
                        f"values: {', '.join(map(repr, values.tolist()))}")
    small = [f"{v!r} ({c})" for v, c in zip(values, counts, strict=True) if c < 2]
    if small:
        raise LiftError(f"every group needs at least 2 rows; {', '.join(small)}")
    if len(values) < 2:
        raise LiftError(f"group column {group!r} holds only the control {control!r}: "
                        "no treatment to compare")
    outcome_arrays = {o: _numeric(table.column(o), "outcome", o, types[o]) for o in outs}
    x, names = _encode(table, covs, types)
    return Experiment(str(path), group, control, groups, outcome_arrays, x, tuple(names))


def _q(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def _numeric(col: pa.ChunkedArray, role: str, name: str, sqltype: str) -> np.ndarray:
    kind = col.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind) or pa.types.is_decimal(kind)):
        raise LiftError(f"{role} {name!r} is not numeric (it is {sqltype})")
    if col.null_count:
        raise LiftError(f"{role} {name!r} has {col.null_count} empty values")
    arr = np.asarray(pc.cast(col, pa.float64()).to_numpy(), dtype=float)
    if not np.isfinite(arr).all():
        raise LiftError(f"{role} {name!r} has NaN or infinite values")
    return arr


def _encode(table: pa.Table, covs: list[str], types: dict[str, str]):
    parts, names = [], []
    for c in covs:
        col = table.column(c)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            if col.null_count:
                raise LiftError(f"covariate {c!r} has {col.null_count} empty values")
            text = np.asarray(col.to_pylist(), dtype=object)
            levels = np.unique(text)
            if levels.size < 2:
                raise LiftError(f"covariate {c!r} has one value in every row ({levels[0]!r}): "
                                "it cannot adjust anything")
            for level in levels[1:]:
                parts.append((text == level).astype(float))
                names.append(f"{c}={level}")
            continue
        try:
            arr = _numeric(col, "covariate", c, types[c])
        except LiftError as exc:
            raise LiftError(f"{exc}; covariates must be numbers, booleans or text") from None
        if np.ptp(arr) == 0:
            raise LiftError(f"covariate {c!r} has one value in every row ({arr[0]:g}): "
                            "it cannot adjust anything")
        parts.append(arr)
        names.append(c)
    return (np.column_stack(parts) if parts else None), names


def lift_table(experiment: Experiment, *, alpha: float = 0.05, method: str = "regression",
               adjust: bool = True) -> list[LiftRow]:
    """The lift of every treatment over control on every outcome (outcome by outcome,
    treatments in sorted order); adjusted for the experiment's covariates when it has
    some and ``adjust`` is true. Each treatment is compared with control alone (rows of
    other treatments are left out, covariates centred on the two arms compared)."""
    rows = []
    for outcome, y in experiment.outcomes.items():
        for treatment in experiment.treatments:
            keep = (experiment.groups == treatment) | (experiment.groups == experiment.control)
            x = experiment.covariates
            x = x[keep] if (adjust and x is not None) else None
            try:
                r = lift(y[keep], experiment.groups[keep] == treatment, x, alpha=alpha,
                         method=method)
            except LiftError as exc:
                raise LiftError(f"{outcome}, {treatment!r} against {experiment.control!r}: "
                                f"{exc}") from None
            rows.append(LiftRow(treatment, outcome, r))
    return rows
