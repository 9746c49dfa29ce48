"""Audiences over the world's tags: opted-out people are never members, small audiences are
counted but not used, advertisers see only their own audiences."""

import pyarrow.parquet as pq
import pytest

from allscene.audiences.expr import ExprError
from allscene.audiences.service import Audiences
from allscene.audiences.store import AudienceError, AudienceStore

CHEVROLET = ("age in 22..39 and income in 6000..19999 and not owns_car "
             "and intent.car.compact >= 3 in 90d")


@pytest.fixture()
def store(tmp_path):
    return AudienceStore(tmp_path)


@pytest.fixture()
def acme(tag_table, consent, store):
    return Audiences(tag_table, consent, store, advertiser="acme")


def test_opted_out_people_are_never_members(acme, world, consent):
    people = pq.read_table(world[0] / "truth" / "people.parquet").to_pylist()
    accounts = {d["person_id"]: d["account_id"] for d in
                pq.read_table(world[0] / "truth" / "devices.parquet").to_pylist()
                if d["device_type"] == "phone"}
    days = 14
    out = {accounts[p["person_id"]] for p in people
           if p["opt_out"] and not (0 <= p["opt_in_day"] < days)}
    assert len(out) > 30
    everyone = acme.members("age >= 0 or not (age >= 0)")
    got = {acme.index.person_ids[i] for i in everyone}
    assert not (got & out)
    assert len(got) == len(acme.index.person_ids) - len(out)
    acme.create("all_women", 'gender = "female"')
    got = {acme.index.person_ids[i] for i in acme.members("@all_women or age >= 18")}
    assert not (got & out)


def test_small_audiences_are_counted_but_not_used(acme, tag_table):
    small = 'car.model = "Cavalier" and gender = "female" and age in 20..25'
    c = acme.count(small)
    assert c.people < 50 and str(c) == "< 50" and not c.usable
    with pytest.raises(AudienceError, match="fewer than 50"):
        acme.sample(small)
    big = acme.count('gender = "female"')
    assert big.usable and str(big) == f"{big.people:,}"
    assert len(acme.sample('gender = "female"', k=5)) == 5


def test_export_gives_hashed_phone_ids_of_members(acme, identity):
    devices = identity[0]
    out = acme.export('gender = "male" and owns_car', devices)
    assert out.num_rows == acme.count('gender = "male" and owns_car').people
    assert set(out["device_type"].to_pylist()) == {"phone"}
    assert all(len(d) == 32 for d in out["device_id"].to_pylist())
    with pytest.raises(AudienceError, match="not exported"):
        acme.export('car.model = "Cavalier" and age = 19', devices)


def test_saved_audiences_are_per_advertiser(tag_table, consent, store):
    acme = Audiences(tag_table, consent, store, advertiser="acme")
    globex = Audiences(tag_table, consent, store, advertiser="globex")
    acme.create("first_car_buyers", CHEVROLET)
    assert acme.count("@first_car_buyers").people > 0
    with pytest.raises(ExprError, match="unknown audience '@first_car_buyers'"):
        globex.count("@first_car_buyers")
    assert [a.name for a in store.list("globex")] == []


def test_saving_checks_the_expression_first(acme, store):
    with pytest.raises(ExprError, match="unknown tag 'incme'"):
        acme.create("bad", "incme > 3")
    with pytest.raises(AudienceError, match="refers to itself"):
        acme.create("loop", "@loop and age > 3")
    with pytest.raises(AudienceError, match="name 'Bad Name'"):
        acme.create("Bad Name", "age > 3")
    acme.create("adults", "age >= 18")
    with pytest.raises(AudienceError, match="exists"):
        acme.create("adults", "age >= 21")
    assert store.list("acme")[0].definition == "age >= 18"


def test_an_uploaded_package_drops_opted_out_people(tag_table, consent, store, world):
    import hashlib

    import pyarrow as pa

    phones = [d for d in pq.read_table(world[0] / "truth" / "devices.parquet").to_pylist()
              if d["device_type"] == "phone"]
    opted = {r["person_id"] for r in consent.to_pylist() if r["personalized_ads"] is False}
    table = {"hash": [], "id_type": [], "algo": [], "person_id": []}
    for d in phones:
        table["hash"].append(hashlib.md5(d["imei"].encode()).hexdigest())
        table["id_type"].append("imei")
        table["algo"].append("md5")
        table["person_id"].append(d["account_id"])
    hashes = pa.table(table)
    chosen = [d for d in phones if d["account_id"] in opted][:5] + \
        [d for d in phones if d["account_id"] not in opted][:95]
    lines = [hashlib.md5(d["imei"].encode()).hexdigest() for d in chosen] + ["oops"]
    acme = Audiences(tag_table, consent, store, advertiser="acme")
    m = acme.upload("crm", lines, hashes)
    assert m.matched_people == 100 and m.invalid == 1 and m.match_rate == 1.0
    assert str(m.errors[0]).startswith("line 101:")
    assert acme.count("@crm").people == 95  # the five who opted out are not in it
    globex = Audiences(tag_table, consent, store, advertiser="globex")
    with pytest.raises(ExprError, match="unknown audience '@crm'"):
        globex.count("@crm")


def test_lookalike_leaves_out_the_seed_and_opted_out_people(acme, consent):
    acme.create("compact", "intent.car.compact >= 1 in 90d")
    seed = {acme.index.person_ids[i] for i in acme.members("@compact")}
    rows, scores = acme.lookalike("@compact", 300, name="compact_lal")
    got = [acme.index.person_ids[i] for i in rows]
    opted = {r["person_id"] for r in consent.to_pylist() if r["personalized_ads"] is False}
    assert len(got) == 300 and not (set(got) & seed) and not (set(got) & opted)
    assert list(scores) == sorted(scores, reverse=True)
    assert acme.count("@compact_lal").people == 300
    with pytest.raises(AudienceError, match="not expanded"):
        acme.lookalike('car.model = "Cavalier" and age = 19', 100)


def test_lookalike_finds_hidden_intent_holders(tag_table, consent, world):
    """Scored against the world's hidden intents: well above random, and about level with
    the best one-tag rule or above it when the intent's own searches are not among the tags."""
    import numpy as np

    from allscene.world.score import score_lookalike

    out = {r["person_id"] for r in consent.to_pylist() if r["personalized_ads"] is False}
    opted = np.array([p in out for p in tag_table["person_id"].to_pylist()])
    for intent in ("car_compact", "travel_booking", "phone_upgrade"):
        used = score_lookalike(tag_table, opted, world[0], intent=intent)
        hidden = score_lookalike(tag_table, opted, world[0], intent=intent, hide=("intent.",))
        assert used["lookalike"] >= 3 * used["random"]
        assert hidden["lookalike"] >= 3 * hidden["random"]
        if intent == "travel_booking":
            # Only this intent has a seed of 100+ among 3,000 people; on 100,000 the
            # lookalike beats the rule for every intent (allscene world score lookalike).
            assert hidden["lookalike"] >= 0.9 * hidden["rule_precision"], hidden
