"""The configuration store on SQLite and on the real local PostgreSQL server: one suite."""

from __future__ import annotations

import threading
import uuid

import pytest

from allscene.storage.configdb import ConfigStore, ConflictError


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield ConfigStore(f"sqlite:///{tmp_path}/config.sqlite")
        return
    dsn = request.getfixturevalue("postgres_dsn")
    db = ConfigStore(dsn, schema=f"t_{uuid.uuid4().hex[:12]}")
    yield db
    db.drop()


def test_api_keys_name_their_advertiser_and_only_it(store):
    a = store.add_advertiser("acme", "Acme Cars")
    b = store.add_advertiser("globex", "Globex Phones")
    assert a != b
    assert store.advertiser_for_key(a) == "acme"
    assert store.advertiser_for_key(b) == "globex"
    assert store.advertiser_for_key(a + "x") is None
    new = store.rotate_key("acme")
    assert store.advertiser_for_key(a) is None and store.advertiser_for_key(new) == "acme"
    with pytest.raises(ConflictError):
        store.add_advertiser("acme", "again")
    assert store.list_advertisers() == [("acme", "Acme Cars"), ("globex", "Globex Phones")]


def test_campaign_versions_refuse_a_stale_write(store):
    store.add_advertiser("acme", "Acme")
    assert store.put_campaign("acme", "c1", {"name": "a", "bid": 1.5}) == 1
    with pytest.raises(ConflictError):
        store.put_campaign("acme", "c1", {"name": "again"})
    assert store.put_campaign("acme", "c1", {"name": "b"}, expect_version=1) == 2
    with pytest.raises(ConflictError, match="version 2"):
        store.put_campaign("acme", "c1", {"name": "stale"}, expect_version=1)
    assert store.get_campaign("acme", "c1") == ({"name": "b"}, 2)
    with pytest.raises(KeyError):
        store.put_campaign("acme", "nope", {"name": "x"}, expect_version=1)


def test_advertisers_never_see_each_others_campaigns(store):
    store.add_advertiser("acme", "Acme")
    store.add_advertiser("globex", "Globex")
    store.put_campaign("acme", "c1", {"name": "acme's"})
    store.put_campaign("globex", "g1", {"name": "globex's"})
    assert store.get_campaign("globex", "c1") is None
    assert [c[0] for c in store.list_campaigns("globex")] == ["g1"]
    with pytest.raises(KeyError):
        store.put_campaign("globex", "c1", {"name": "taken over"}, expect_version=1)
    assert store.delete_campaign("globex", "c1") is False
    assert store.get_campaign("acme", "c1") == ({"name": "acme's"}, 1)
    # The same id under two advertisers is two campaigns.
    store.put_campaign("globex", "c1", {"name": "globex's own c1"})
    assert store.get_campaign("acme", "c1")[0] == {"name": "acme's"}
    assert sorted((a, i) for a, i, _, _ in store.all_campaigns()) == [
        ("acme", "c1"), ("globex", "c1"), ("globex", "g1")]
    assert store.delete_campaign("acme", "c1") and store.get_campaign("acme", "c1") is None


def test_a_campaign_of_an_unknown_advertiser_is_refused(store):
    with pytest.raises(ConflictError, match="unknown"):
        store.put_campaign("ghost", "c1", {"name": "x"})


def test_concurrent_editors_each_version_has_one_winner(store):
    store.add_advertiser("acme", "Acme")
    store.put_campaign("acme", "c1", {"n": 0})
    wins: list[int] = []
    lost: list[int] = []

    def edit(i: int) -> None:
        for _ in range(10):
            doc, v = store.get_campaign("acme", "c1")
            try:
                store.put_campaign("acme", "c1", {"n": doc["n"] + 1}, expect_version=v)
                wins.append(i)
            except ConflictError:
                lost.append(i)

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc, v = store.get_campaign("acme", "c1")
    # Every accepted edit saw the latest state: no increment is lost.
    assert doc["n"] == len(wins) == v - 1
    assert len(wins) + len(lost) == 40


def test_the_stamp_changes_with_every_campaign_write(store):
    store.add_advertiser("acme", "Acme")
    stamps = [store.campaigns_stamp()]
    store.put_campaign("acme", "c1", {"name": "a"})
    stamps.append(store.campaigns_stamp())
    store.put_campaign("acme", "c1", {"name": "b"}, expect_version=1)
    stamps.append(store.campaigns_stamp())
    store.delete_campaign("acme", "c1")
    stamps.append(store.campaigns_stamp())
    store.put_campaign("acme", "c2", {"name": "c"})  # one out, another in: still a change
    stamps.append(store.campaigns_stamp())
    assert all(a != b for a, b in zip(stamps, stamps[1:], strict=False))
