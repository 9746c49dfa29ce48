"""``allscene lift`` as a user runs it: the Hillstrom e-mail experiment, JSON, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from allscene import cli_lift
from allscene.cli_lift import lift_cmd
from allscene.config import shared_data

HILLSTROM = ("data/hillstrom/"
             "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv")
COVARIATES = "recency,history,mens,womens,newbie,zip_code,channel"

app = typer.Typer()


@app.callback()
def _root() -> None:
    """A stand-in for allscene's root app, which registers the command the same way."""


app.command("lift")(lift_cmd)
runner = CliRunner()


@pytest.fixture
def csv() -> str:
    f = shared_data("uplift_hillstrom", "ALLSCENE_HILLSTROM_DIR") / HILLSTROM
    if not f.is_file():
        pytest.skip("Hillstrom e-mail experiment not found: set ALLSCENE_HILLSTROM_DIR")
    return str(f)


@pytest.fixture(autouse=True)
def wide(monkeypatch):
    monkeypatch.setattr(cli_lift, "console", Console(width=250))


def lift(*args: str, code: int = 0):
    result = runner.invoke(app, ["lift", *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_hillstrom_table_shows_the_published_means_and_intervals(csv):
    out = lift(csv, "--group", "segment", "--control", "No E-Mail",
               "--outcome", "visit,conversion,spend").stdout
    for title in ("visit: lift over No E-Mail", "conversion: lift over No E-Mail",
                  "spend: lift over No E-Mail"):
        assert title in out
    for mean in ("0.1828", "0.1514", "0.1062", "0.01253", "0.008837", "0.005726", "1.423",
                 "1.077", "0.6528"):
        assert mean in out
    assert "+0.07659 [+0.06995, +0.08323]" in out  # men's e-mail, visit
    assert "+72.1% [+63.8%, +80.4%]" in out
    assert "64,000 rows" in out and "interval narrowed" not in out


def test_hillstrom_with_covariates_says_how_much_the_interval_narrowed(csv):
    out = lift(csv, "--group", "segment", "--control", "No E-Mail", "--outcome", "visit",
               "--covariates", COVARIATES).stdout
    assert "adjusted lift [95%]" in out and "interval narrowed by" in out
    assert "1.5%" in out  # men's e-mail, visit: covariates predict little
    assert "zip_code=Urban" in out and "Lin 2013" in out


def test_json_output_holds_every_treatment_and_outcome(csv):
    out = lift(csv, "--group", "segment", "--control", "No E-Mail", "--outcome",
               "visit,conversion,spend", "--covariates", COVARIATES, "--method", "cuped",
               "--alpha", "0.1", "--json").stdout
    rows = {(r["outcome"], r["treatment"]): r for r in json.loads(out)}
    assert set(rows) == {(o, t) for o in ("visit", "conversion", "spend")
                         for t in ("Mens E-Mail", "Womens E-Mail")}
    spend = rows[("spend", "Womens E-Mail")]
    assert round(spend["mean_treated"], 2) == 1.08 and round(spend["mean_control"], 2) == 0.65
    assert spend["alpha"] == 0.1 and spend["method"] == "cuped"
    a = spend["absolute"]
    assert a["low"] < a["value"] < a["high"] and 0 < spend["narrowed"] < 0.1


def test_relative_lift_with_a_zero_control_mean_is_explained(tmp_path: Path):
    f = tmp_path / "e.csv"
    f.write_text("arm,y\nA,0\nA,0\nB,1\nB,0\n")
    out = lift(str(f), "--group", "arm", "--control", "A", "--outcome", "y").stdout
    assert "control mean is 0" in out
    data = json.loads(lift(str(f), "--group", "arm", "--control", "A", "--outcome", "y",
                           "--json").stdout)
    assert data[0]["relative"] is None and data[0]["absolute"]["value"] == 0.5


@pytest.mark.parametrize("args, message", [
    (["--control", "No Email", "--outcome", "visit"],
     "control value 'No Email' is not in group column 'segment'"),
    (["--control", "No E-Mail", "--outcome", "visits"], "outcome column 'visits' is not in"),
    (["--control", "No E-Mail", "--outcome", "channel"], "outcome 'channel' is not numeric"),
    (["--control", "No E-Mail", "--outcome", "visit", "--method", "ols"], "--method 'ols'"),
    (["--control", "No E-Mail", "--outcome", "visit", "--alpha", "1.5"], "--alpha 1.5"),
])
def test_bad_input_exits_2_with_the_reason_on_stderr(csv, args, message):
    result = lift(csv, "--group", "segment", *args, code=2)
    assert message in result.stderr
    assert result.stdout == ""


def test_missing_file_exits_2(tmp_path):
    result = lift(str(tmp_path / "none.parquet"), "--group", "g", "--control", "a",
                  "--outcome", "y", code=2)
    assert "no such file" in result.stderr
