"""The four engagement cases (KFC red envelopes, Buick badges, Qunar lottery, Yili codes)
replayed end to end on a small world: the platform's own steps (ingest, identity, tags, the
case replay through the ad server and the engagement engine), then checked from the event
log, the engine's books and the index page."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from allscene.config import Settings
from allscene.engagement.service import build_engagement
from allscene.measurement.activities import activity_metrics, conversion_rates, reconcile
from allscene.storage import ParquetEventLog
from allscene.storage.tables import TableStore
from allscene.world.replay import CASES_DIR, load_cases
from tests.world.small_replay import log_source, replay_small_world

ACTIVITIES = {"kfc": ("kfc_envelopes", {"envelope", "draw"}),
              "buick": ("buick_badges", {"badge"}),
              "qunar": ("qunar_theme", {"play", "draw"}),
              "yili": ("yili_venue", {"code", "play", "draw"})}
"""Each case's activity and the actions its players must have taken."""
CASES = [CASES_DIR / f"{c}.yaml" for c in ACTIVITIES]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> Settings:
    """2,000 people from 8 October: the activities' week (12-18 October) and days before."""
    return replay_small_world(tmp_path_factory.mktemp("engage"), CASES, people=2000,
                              seed=3)


def _people(settings: Settings):
    return TableStore(settings.data_dir / "derived").read("identity_devices").select(
        ["device_id", "person_id"])


_log = log_source


def test_every_activity_had_players_who_did_what_it_offers(replayed):
    log, people = ParquetEventLog(replayed.log_dir), _people(replayed)
    for case, (activity, actions) in ACTIVITIES.items():
        m = activity_metrics(log, case, activity, people=people, min_cell=1)
        done = {r["action"]: r["people"] for r in m.by_action}
        assert m.totals["shown"] > m.totals["participants"] > 0, (activity, m.totals)
        assert all(done.get(a, 0) > 0 for a in actions), (activity, done)
        assert m.prizes, activity  # prizes reached wallets and card packs
    kfc = activity_metrics(log, "kfc", "kfc_envelopes", people=people, min_cell=1)
    assert kfc.totals["cash_paid"] > 0


def test_every_ledger_balances_and_the_index_says_so(replayed):
    log, people = ParquetEventLog(replayed.log_dir), _people(replayed)
    engine = build_engagement(replayed, None)
    assert engine.store.check_ledger()["balanced"]
    after = dt.datetime(2026, 10, 19, tzinfo=dt.UTC)
    for case, (activity, _) in ACTIVITIES.items():
        m = activity_metrics(log, case, activity, people=people, min_cell=1)
        books = reconcile(engine, case, activity, m, now=after)
        assert books.balanced and books.problems == 0, books.checks
        # the draws were audited from the revealed seed, not skipped
        assert all(ok is not None for _, ok, _ in books.checks), books.checks
    index = (replayed.data_dir / "reports" / "cases" / "index.html").read_text()
    assert index.count("every engagement ledger balances at the end of the replay") == 4
    assert "FAILED" not in index and "failed checks 0" in index


def test_players_become_leads_and_the_claims_are_answered(replayed):
    log, people = ParquetEventLog(replayed.log_dir), _people(replayed)
    for case, item, plain in (("buick", "buick_badges/badge", "buick_plain"),
                              ("qunar", "qunar_theme/draw", "qunar_plain")):
        rates = conversion_rates(log, case, [item, plain], activities=[item.split("/")[0]],
                                 people=people, min_cell=1)
        assert rates[item]["people"] > 0 and rates[item]["converted"] > 0, rates
        assert rates[plain]["people"] > 0, rates  # the plain ad served people who never played
        assert rates[item]["rate"] > rates[plain]["rate"], rates  # the cases' claim
    # The leads of players came back as the advertiser's own conversions (no campaign).
    leads = dict(duckdb.sql(
        f"SELECT advertiser_id, count(*) FROM {_log(replayed)} WHERE kind = 'ad_conversion'"
        " AND conversion_type = 'lead' AND campaign_id IS NULL GROUP BY 1").fetchall())
    assert leads.get("buick", 0) > 0 and leads.get("qunar", 0) > 0, leads
    index = (replayed.data_dir / "reports" / "cases" / "index.html").read_text()
    for claim in (c for case in load_cases(CASES) for c in case.doc["claims"]
                  if c["metric"] == "lead_rate"):
        assert claim["claim"] in index


def test_no_opted_out_person_was_targeted(replayed):
    aimed = [c["id"] for case in load_cases(CASES) for c in case.campaigns
             if (c.get("targeting") or {}).get("audiences")]
    assert aimed == ["buick_plain"]
    ids = ", ".join(f"'{c}'" for c in aimed)
    served = duckdb.sql(f"SELECT count(*) FROM {_log(replayed)} WHERE kind = 'ad_decision'"
                        f" AND outcome = 'ad' AND campaign_id IN ({ids})").fetchone()[0]
    targeted, met = duckdb.sql(f"""
        SELECT count(*) FILTER (WHERE d.outcome = 'ad' AND d.campaign_id IN ({ids})),
               count(*) FILTER (WHERE d.reason LIKE '%opted out%')
        FROM {_log(replayed)} d
        JOIN read_parquet('{replayed.data_dir}/derived/consent.parquet') c
          ON d.account_id = c.person_id
        WHERE d.kind = 'ad_decision' AND NOT c.personalized_ads""").fetchone()
    # the targeted ad served, opted-out people met the ad server and were never targeted
    assert served > 100 and met > 0 and targeted == 0, (served, met, targeted)
