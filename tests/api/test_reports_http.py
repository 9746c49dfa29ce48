"""A campaign served through the real ad server, then reported: over the API (scoped to the
advertiser's key) and by ``allscene report`` (HTML with charts, CSV, Parquet)."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl, urlsplit

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from allscene.cli import app as cli
from tests.ad_helpers import bearer, campaign


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


@pytest.fixture
def served(ad_client, keys):
    """60 people see the splash on their phone and 20 of them again on the TV; every third
    phone impression is clicked 4 s later, half the clicks convert (a lead); one click comes
    0.3 s after its impression (too fast) and one impression link is replayed."""
    doc = campaign("spring", targeting={"placements": ["phone_splash", "tv_boot"]},
                   bid={"type": "cpm", "amount": 400.0})
    doc["creatives"].append({"id": "boot", "format": "video", "w": 1920, "h": 1080,
                             "duration_s": 5, "mime": "video/mp4",
                             "url": "https://cdn.example/b.mp4"})
    assert ad_client.post("/v1/campaigns", json=doc,
                          headers=bearer(keys["acme"])).status_code == 201
    ads = ad_client.app.state.ads
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    shown = []
    for i in range(60):
        for device, placement in [(f"ph{i}", "phone_splash")] + (
                [(f"tv{i}", "tv_boot")] if i < 20 else []):
            d = ads.decide(placement, device, ts=t0)
            assert d.outcome == "ad", d.reasons
            at = t0 + dt.timedelta(seconds=i)
            ads.track("imp", query(d.imp_url), now=at)
            shown.append((device, d, at))
    clicks = 0
    for n, (device, d, at) in enumerate(shown):
        if device.startswith("ph") and n % 3 == 0:
            f = ads.track("click", query(d.click_url),
                          now=at + dt.timedelta(seconds=0.3 if n == 0 else 4))
            clicks += n != 0
            if n % 2 == 0 and n != 0:
                token = ads.conversion_token(f, now=at)
                ads.convert(token, "lead", now=at + dt.timedelta(minutes=5))
    # A replayed impression link reaching the log (as from a server without shared state).
    device, d, at = shown[4]  # ph2's
    ads.adlog.write([{"event_id": "imp-replay", "ts": (at + dt.timedelta(minutes=30)).isoformat(),
                      "kind": "ad_impression", "device_id": device, "device_type": "phone",
                      "request_id": d.request_id, "placement_id": "phone_splash",
                      "campaign_id": "spring", "creative_id": "splash",
                      "advertiser_id": "acme", "cost": 0.06}])
    ads.adlog.flush()
    return {"impressions": len(shown), "clicks": clicks, "people": 60}


def test_the_api_reports_only_to_the_campaigns_advertiser(ad_client, keys, served):
    r = ad_client.get("/v1/reports/spring?by=device_type&by=placement,creative",
                      headers=bearer(keys["acme"]))
    assert r.status_code == 200, r.text
    doc = r.json()
    t = doc["totals"]
    assert t["impressions"] == served["impressions"] == 80
    assert t["reach"] == served["people"]  # phone and TV of one person count once
    assert t["frequency"] == pytest.approx(80 / 60)
    assert t["clicks"] == served["clicks"]
    assert t["conv_lead"] >= 1 and t["cpa"] == pytest.approx(t["cost"] / t["conversions"])
    assert doc["invalid"] == {"clicks: too fast": 1, "impressions: duplicate": 1}
    by_device = {r["device_type"]: r for r in doc["breakdowns"]["device_type"]}
    assert by_device["phone"]["impressions"] == 60
    assert by_device["tv"]["suppressed"]  # 20 people: under the minimum of 50
    assert doc["suppressed_cells"] >= 1
    # Another advertiser, no key, bad input.
    assert ad_client.get("/v1/reports/spring", headers=bearer(keys["globex"])).status_code == 404
    assert ad_client.get("/v1/reports/spring").status_code == 401
    bad = ad_client.get("/v1/reports/spring?by=colour", headers=bearer(keys["acme"]))
    assert bad.status_code == 422 and "unknown dimension 'colour'" in bad.text
    bad = ad_client.get("/v1/reports/spring?start=2026-10-05&end=2026-10-01",
                        headers=bearer(keys["acme"]))
    assert bad.status_code == 422 and "not after the start" in bad.text
    csv = ad_client.get("/v1/reports/spring?by=placement&format=csv",
                        headers=bearer(keys["acme"]))
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("placement,impressions,clicks")


def test_the_cli_writes_an_html_report_with_charts_and_the_same_numbers(ad_settings, served,
                                                                        tmp_path):
    runner = CliRunner()
    out = tmp_path / "rep"
    r = runner.invoke(cli, ["--data", str(ad_settings.data_dir), "report", "spring",
                            "--out", str(out), "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["totals"]["impressions"] == 80
    page = (out / "report.html").read_text()
    assert '<script src="plotly.min.js">' in page and (out / "plotly.min.js").exists()
    assert "Delivery by day" in page and "CTR by placement" in page
    assert pq.read_table(out / "by_placement.parquet").num_rows == 2
    assert (out / "totals.csv").read_text().startswith("impressions,clicks")
    r = runner.invoke(cli, ["--data", str(ad_settings.data_dir), "events", "compact",
                            "--min-files", "1"], catch_exceptions=False)
    assert r.exit_code == 0 and "for 1 of 1" in " ".join(r.output.split()), r.output
    r = runner.invoke(cli, ["--data", str(ad_settings.data_dir), "report", "spring",
                            "--json"], catch_exceptions=False)  # from the served files now
    again = json.loads(r.output)["totals"]  # the same, but for the order costs add up in
    assert again == {k: pytest.approx(v) if isinstance(v, float) else v
                     for k, v in doc["totals"].items()}
    bad = runner.invoke(cli, ["--data", str(ad_settings.data_dir), "report", "autumn"])
    assert bad.exit_code == 2 and "unknown campaign 'autumn'" in bad.output
    bad = runner.invoke(cli, ["--data", str(ad_settings.data_dir), "report", "spring",
                              "--by", "day;colour"])
    assert bad.exit_code == 2 and "unknown dimension 'colour'" in bad.output


def test_a_campaign_with_a_holdout_reports_its_lift(ad_client, keys, ad_settings, tmp_path):
    doc = campaign("lift", holdout=0.5)
    assert ad_client.post("/v1/campaigns", json=doc,
                          headers=bearer(keys["acme"])).status_code == 201
    ads = ad_client.app.state.ads
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    arm = {}
    for i in range(200):
        d = ads.decide("phone_splash", f"ph{i}", ts=t0)
        arm[i] = d.outcome == "ad"
        if arm[i]:
            ads.track("imp", query(d.imp_url), now=t0 + dt.timedelta(seconds=1))
    # The advertiser reports leads from its own app (no token): 30% of the exposed, 10% of
    # the held-out people.
    events = [{"event_id": f"lead{i}", "ts": (t0 + dt.timedelta(hours=1)).isoformat(),
               "kind": "ad_conversion", "device_id": f"ph{i}", "device_type": "phone",
               "advertiser_id": "acme", "conversion_type": "lead"}
              for i in range(200) if ((i % 10 < 3) if arm[i] else (i % 10 == 0))]
    r = ad_client.post("/v1/events", content="\n".join(json.dumps(e) for e in events))
    assert r.status_code == 200, r.text
    ads.adlog.flush()
    assert 60 < sum(arm.values()) < 140  # about half held out
    out = tmp_path / "rep"
    r = CliRunner().invoke(cli, ["--data", str(ad_settings.data_dir), "report", "lift",
                                 "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "lift on conversion" in r.output
    rows = (out / "lift.csv").read_text().splitlines()
    head, row = rows[0].split(","), dict(zip(rows[0].split(","), rows[1].split(","), strict=True))
    assert head[0] == "outcome" and row["outcome"] == "conversion"
    assert float(row["lift_low"]) < 0.2 < float(row["lift_high"])  # 30% - 10%
    assert "Lift against the holdout" in (out / "report.html").read_text()
