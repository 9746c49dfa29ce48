"""The main job replays the seed cases through the ad server and ends with their reports."""

import re

import duckdb
from typer.testing import CliRunner

from allscene.cli import app
from allscene.world.replay import load_cases


def test_the_demo_replays_every_case_and_links_a_report_per_campaign(tmp_path):
    data = tmp_path / "d"
    r = CliRunner().invoke(app, ["--data", str(data), "demo", "--people", "3000",
                                 "--days", "14"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "seed effects in the replay" in out
    assert len(re.findall(r"2026-10-1\d: [\d,]+ opportunities", out)) == 7
    index = (data / "reports" / "cases" / "index.html").read_text()
    cases = load_cases()
    for case in cases:
        assert case.title in index
        for c in case.campaigns:
            page = data / "reports" / "cases" / case.id / c["id"] / "report.html"
            assert page.exists() and f"{case.id}/{c['id']}/report.html" in index
    log = f"read_parquet('{data}/log/**/*.parquet', union_by_name=true)"
    rows = dict(duckdb.sql(f"SELECT campaign_id, count(*) FILTER (kind = 'ad_impression') "
                           f"FROM {log} WHERE campaign_id IS NOT NULL GROUP BY 1").fetchall())
    # Every campaign served (the people met the decision engine), and clicks and
    # token-attributed conversions came back through tracking. A campaign with a plan serves
    # when its stage's audience reaches the minimum size; its records say when it did not.
    from allscene.matching.plans import read_records

    for case in cases:
        for c in case.campaigns:
            if "plan" not in c:
                assert rows.get(c["id"], 0) > 100, (c["id"], rows)
                continue
            records = read_records(data, case.doc["advertiser"]["id"], c["id"])
            assert records, c["id"]
            small = all(r.people < 50 for r in records)
            assert small or rows.get(c["id"], 0) > 0, (c["id"], records)
            assert not small or all("too few to target" in (r.note or "") for r in records)
    assert rows.get("cavalier_staged", 0) > 100  # its seed stage at least
    kinds = dict(duckdb.sql(f"SELECT kind, count(*) FROM {log} WHERE kind LIKE 'ad_%' "
                            "GROUP BY 1").fetchall())
    assert kinds["ad_click"] > 50 and kinds["ad_conversion"] > 5
    # Opted-out people saw no targeted ad (packages, seed audiences, plan stages).
    aimed = [c["id"] for case in cases for c in case.campaigns
             if "plan" in c or (c.get("targeting") or {}).get("audiences")]
    assert {"dongman_package", "cavalier_staged", "dongman_retarget_broad"} <= set(aimed)
    targeted = duckdb.sql(f"""
        SELECT count(*) FROM {log} d JOIN read_parquet('{data}/derived/consent.parquet') c
          ON d.account_id = c.person_id
        WHERE d.kind = 'ad_decision' AND d.outcome = 'ad' AND NOT c.personalized_ads
          AND d.campaign_id IN ({", ".join(f"'{c}'" for c in aimed)})""").fetchone()[0]
    assert targeted == 0
