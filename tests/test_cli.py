"""The command line as a user runs it: generate, import, inspect, import again."""

import json

from typer.testing import CliRunner

from allscene.cli import app

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_generate_import_stats_and_reimport(tmp_path):
    data = str(tmp_path / "data")
    run("--data", data, "world", "generate", "--people", "300", "--days", "2", "--workers", "1")
    world = json.loads((tmp_path / "data" / "world" / "world.json").read_text())
    total = world["counts"]["events_total"]
    assert total > 300 * 2 * 10
    out = run("--data", data, "events", "import", str(tmp_path / "data" / "world" / "events"))
    assert f"{total:,}" in out
    stats = json.loads(run("--data", data, "events", "stats", "--json"))
    assert stats["summary"]["events"] == total
    assert {r["kind"]: r["events"] for r in stats["by_kind"]} == world["counts"]["events"]
    assert stats["deadletter"] == 0
    again = run("--data", data, "events", "import", str(tmp_path / "data" / "world" / "events"))
    assert json.loads(run("--data", data, "events", "stats", "--json"))["summary"]["events"] == total
    assert again.count(f"{total:,}") >= 2  # received, and every one a duplicate
    out = run("--data", data, "identity", "build")
    assert "300 people in" in out
    out = run("--data", data, "world", "score", "identity")
    assert "device_accuracy" in out and "household_recall" in out


def test_refuses_to_overwrite_a_world_and_explains_bad_input(tmp_path):
    data = str(tmp_path / "data")
    run("--data", data, "world", "generate", "--people", "50", "--days", "1", "--workers", "1")
    r = runner.invoke(app, ["--data", data, "world", "generate", "--people", "50"])
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(app, ["--data", data, "world", "generate", "--start", "05/10/2026",
                            "--force"])
    assert r.exit_code == 2 and "YYYY-MM-DD" in r.output
    r = runner.invoke(app, ["--data", data, "events", "import", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(app, ["--data", data, "events", "schema", "--kind", "telepathy"])
    assert r.exit_code == 2 and "unknown kind" in r.output


def test_schema_and_demo(tmp_path):
    schema = json.loads(run("events", "schema"))
    assert "search" in schema["discriminator"]["mapping"]
    out = run("--data", str(tmp_path / "d"), "demo", "--people", "200", "--days", "2")
    assert "what the platform holds" in out and "by kind" in out
    assert "reusing the world" in run("--data", str(tmp_path / "d"), "demo", "--people", "200",
                                      "--days", "2")


def test_demo_never_clears_a_log_it_did_not_make(tmp_path):
    data = str(tmp_path / "d")
    (tmp_path / "d" / "log").mkdir(parents=True)
    (tmp_path / "d" / "log" / "precious").write_text("x")
    r = runner.invoke(app, ["--data", data, "demo", "--people", "50", "--days", "1"])
    assert r.exit_code == 2 and "another --data" in r.output
    assert (tmp_path / "d" / "log" / "precious").exists()
