"""The command line as a user runs it: generate, import, inspect, import again."""

import json
import re

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


def test_tags_and_audiences_from_the_command_line(tmp_path):
    """A small world through import, tags and every audience command, errors included."""
    import hashlib

    import pyarrow.parquet as pq

    data = str(tmp_path / "data")
    run("--data", data, "world", "generate", "--people", "400", "--days", "3", "--workers", "1")
    run("--data", data, "events", "import", str(tmp_path / "data" / "world" / "events"))
    assert "tags of 400 people" in run("--data", data, "tags", "build")
    assert "intent.car.compact" in run("tags", "catalog", "--json")
    assert "resident county" in run("--data", data, "world", "score", "tags")
    assert "people" in run("--data", data, "audience", "count", 'gender = "female"')
    assert "< 50 people" in run("--data", data, "audience", "count",
                                'gender = "female" and age = 30')
    bad = runner.invoke(app, ["--data", data, "audience", "count", "age in 22.."])
    assert bad.exit_code == 2 and "column 12" in bad.output
    run("--data", data, "audience", "create", "men", 'gender = "male"', "-a", "acme")
    other = runner.invoke(app, ["--data", data, "audience", "count", "@men", "-a", "globex"])
    assert other.exit_code == 2 and "unknown audience '@men'" in other.output
    phones = [d for d in pq.read_table(tmp_path / "data" / "world" / "truth" / "devices.parquet")
              .to_pylist() if d["device_type"] == "phone"][:120]
    lines = [hashlib.sha256(d["oaid"].encode()).hexdigest() for d in phones] + ["not-a-hash"]
    (tmp_path / "pkg.txt").write_text("oaid_sha256\n" + "\n".join(lines) + "\n")
    out = run("--data", data, "audience", "upload", "crm", str(tmp_path / "pkg.txt"), "-a", "acme")
    assert "matched 120 ids of 120 people" in out and "line 122" in out
    out = run("--data", data, "audience", "export", "@crm and @men", "-a", "acme",
              "--out", str(tmp_path / "out.csv"))
    assert (tmp_path / "out.csv").read_text().count("phone") >= 0
    listing = run("--data", data, "audience", "list", "-a", "acme")
    assert "crm" in listing and "men" in listing


def test_scenes_from_the_command_line(tmp_path):
    data = str(tmp_path / "d")
    out = run("--data", data, "demo", "--people", "300", "--days", "3")
    assert "people per scene per hour" in out and (tmp_path / "d" / "reports").exists()
    scenes = json.loads(run("scenes", "list", "--json"))
    assert len(scenes) >= 100 and {"id", "family", "name", "when", "lasts"} <= set(scenes[0])
    again = run("--data", data, "scenes", "run")
    # Same catalog, same days: nothing new.
    assert re.search(r"[^0-9,]0 new to the log", " ".join(again.split()))
    import pyarrow.parquet as pq

    person = pq.read_table(tmp_path / "d" / "derived" / "identity_people.parquet")[
        "person_id"][0].as_py()
    out = run("--data", data, "scenes", "timeline", person, "--day", "2026-10-06")
    assert person in out and "from" in out
    out = run("--data", data, "world", "score", "scenes")
    assert "precision" in " ".join(out.split()) and "tv_prime" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenes:\n  - {id: ab, family: home, name: {zh: a, en: a}, description: d, "
                   "when: 'tv_wach', lasts: 1h}\n")
    r = runner.invoke(app, ["scenes", "list", "--catalog", str(bad)])
    assert r.exit_code == 2 and "scene 'ab': when: unknown name 'tv_wach'" in r.output
