"""``allscene activity`` end to end: create from a file, figures, codes, and after the end
the draw log and the revealed seed, which ``allscene audit-draws`` replays."""

from __future__ import annotations

import datetime as dt
import json

from typer.testing import CliRunner

from allscene.cli import app
from allscene.config import Settings
from allscene.engagement.service import Engagement, Who, code_key
from allscene.storage.configdb import ConfigStore
from allscene.storage.engagedb import EngagementStore

runner = CliRunner()


def test_activity_commands_and_an_independent_audit(tmp_path):
    data = str(tmp_path / "data")
    (tmp_path / "data").mkdir()
    settings = Settings(data_dir=data)
    ConfigStore(settings.config_db).add_advertiser("qunar", "Qunar")
    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    doc = {"id": "bali", "name": "Bali draw", "entry_points": ["phone_lock_screen"],
           "start": (end - dt.timedelta(days=1)).isoformat(), "end": end.isoformat(),
           "prizes": [{"id": "trip", "name": "Trip", "kind": "goods", "quantity": 3},
                      {"id": "cp", "name": "Coupon", "kind": "coupon", "quantity": 50}],
           "lottery": {"odds": {"trip": 0.05, "cp": 0.3}, "limits": {"per_person": 5}},
           "codes": {"count": 10, "points": 1}}
    f = tmp_path / "bali.json"
    f.write_text(json.dumps(doc))
    r = runner.invoke(app, ["--data", data, "activity", "create", str(f), "-a", "qunar"])
    assert r.exit_code == 0, r.output
    commitment = " ".join(r.output.split()).split("draw commitment")[1].split()[0]
    again = runner.invoke(app, ["--data", data, "activity", "create", str(f), "-a", "qunar"])
    assert again.exit_code == 2 and "exists already" in again.output
    eng = Engagement(EngagementStore(settings.config_db), code_key=code_key(settings))
    now = dt.datetime.now(dt.UTC)
    for i in range(60):
        eng.draw("bali", Who(f"p{i % 12}", f"d{i % 12}"), f"req-{i}", now)
    codes_file = tmp_path / "codes.txt"
    r = runner.invoke(app, ["--data", data, "activity", "codes", "bali", "-a", "qunar",
                            "-o", str(codes_file)])
    assert r.exit_code == 0 and len(codes_file.read_text().split()) == 10
    r = runner.invoke(app, ["--data", data, "activity", "figures", "bali", "-a", "qunar",
                            "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["draws"] == 60
    early = runner.invoke(app, ["--data", data, "activity", "reveal", "bali", "-a", "qunar"])
    assert early.exit_code == 2 and "revealed after the end" in early.output
    import time
    time.sleep(max(0.0, (end - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
    log = tmp_path / "draws.csv"
    r = runner.invoke(app, ["--data", data, "activity", "draws", "bali", "-a", "qunar",
                            "-o", str(log)])
    assert r.exit_code == 0
    r = runner.invoke(app, ["--data", data, "activity", "reveal", "bali", "-a", "qunar"])
    assert r.exit_code == 0
    rev = json.loads(r.output)
    assert rev["commitment"] == commitment
    audit = runner.invoke(app, ["audit-draws", str(log), "--seed", rev["seed"],
                                "--commitment", commitment, "--activity", "bali",
                                "--odds", json.dumps(rev["odds"]),
                                "--inventory", json.dumps(rev["inventory"]), "--json"])
    assert audit.exit_code == 0, audit.output
    other = runner.invoke(app, ["--data", data, "activity", "figures", "bali", "-a", "ctrip"])
    assert other.exit_code == 2 and "no activity" in other.output
