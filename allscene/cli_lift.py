"""``allscene lift``: each treatment's lift over control in an experiment table (CSV or
Parquet), with intervals, optionally adjusted for pre-period covariates. Thin: the work is in
:mod:`allscene.measurement.lift`."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from allscene.measurement.lift import METHODS, Estimate, LiftError, LiftRow

console = Console()
err = Console(stderr=True)


def lift_cmd(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The experiment: a CSV or Parquet table, one "
                                              "row per unit.")],
    group: Annotated[str, typer.Option("--group", help="Column naming each row's arm.")],
    control: Annotated[str, typer.Option("--control", help="The control arm's value in "
                                                           "--group.")],
    outcome: Annotated[str, typer.Option("--outcome", help="Outcome column(s), "
                                                           "comma-separated.")],
    covariates: Annotated[str | None, typer.Option(
        "--covariates", help="Pre-period covariate columns, comma-separated (text columns "
                             "are one-hot encoded).")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="1 - confidence level.")] = 0.05,
    method: Annotated[str, typer.Option("--method", help="Covariate adjustment: regression "
                                                         "(Lin 2013, HC2) or cuped.")]
        = "regression",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Each treatment's absolute and relative lift over control, with intervals and
    p-values; with --covariates also the adjusted lift and by how much its interval is
    narrower."""
    from allscene.measurement.lift import lift_table, read_experiment

    try:
        if method not in METHODS:
            raise LiftError(f"--method {method!r}: expected one of {', '.join(METHODS)}")
        if not 0 < alpha < 1:
            raise LiftError(f"--alpha {alpha}: expected a number between 0 and 1")
        exp = read_experiment(file, group, control, outcome, covariates)
        rows = lift_table(exp, alpha=alpha, method=method)
    except LiftError as exc:
        err.print(f"lift: {exc}", style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        out = [{"treatment": r.treatment, "outcome": r.outcome, "control": exp.control,
                **_finite(r.lift.to_dict())} for r in rows]
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    level = f"{100 * (1 - alpha):g}%"
    adjusted = exp.covariates is not None
    for name in exp.outcomes:
        _print_outcome(name, [r for r in rows if r.outcome == name], exp.control, level,
                       adjusted)
    note = (f"{len(exp.groups):,} rows of {file.name}; lift = treatment mean - control mean, "
            f"Welch t interval; relative = lift / control mean, delta-method interval")
    if adjusted:
        how = ("regression adjustment (Lin 2013, HC2)" if method == "regression"
               else "CUPED (pooled coefficient)")
        note += f"; adjusted: {how} on {', '.join(exp.covariate_names)}"
    console.print(note, style="dim", highlight=False)


def _print_outcome(name: str, rows: list[LiftRow], control: str, level: str,
                   adjusted: bool) -> None:
    first = rows[0].lift
    t = Table(title=f"{name}: lift over {control} (n {first.n_control:,}, "
                    f"mean {_num(first.mean_control)})", title_justify="left")
    cols = ["treatment", "n", "mean", "control mean", f"lift [{level}]",
            f"relative [{level}]", "p-value"]
    if adjusted:
        cols += [f"adjusted lift [{level}]", f"adjusted relative [{level}]",
                 "interval narrowed by"]
    for c in cols:
        t.add_column(c, justify="left" if c == "treatment" else "right")
    for r in rows:
        x = r.lift
        cells = [r.treatment, f"{x.n_treated:,}", _num(x.mean_treated), _num(x.mean_control),
                 _interval(x.absolute), _interval(x.relative, pct=True) if x.relative
                 else (x.relative_note or "-"), _p(x.p_value)]
        if adjusted:
            cells += [_interval(x.adjusted),
                      _interval(x.adjusted_relative, pct=True) if x.adjusted_relative else "-",
                      f"{100 * x.narrowed:.1f}%"]
        t.add_row(*cells)
    console.print(t)


def _num(v: float, sign: str = "") -> str:
    return f"{v:{sign}#.4g}"


def _interval(e: Estimate | None, pct: bool = False) -> str:
    if e is None:
        return "-"
    if pct:
        return f"{100 * e.value:+.1f}% [{100 * e.low:+.1f}%, {100 * e.high:+.1f}%]"
    return f"{_num(e.value, '+')} [{_num(e.low, '+')}, {_num(e.high, '+')}]"


def _p(p: float) -> str:
    return "<1e-300" if p == 0 else f"{p:.2g}"


def _finite(v):
    """NaN and infinities as null (JSON has neither)."""
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
