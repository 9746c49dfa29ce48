"""The ledger accounts of activities (see :mod:`allscene.engagement.service`): cash in
cents, points as points; which may go negative (funding sources) and which may not.

>>> wallet("p1"), issued("a1").may_go_negative
(Account(id='wallet:p1', unit='cents', may_go_negative=False), True)
"""

from __future__ import annotations

from allscene.storage.engagedb import Account

__all__ = ["Account", "budget", "funding", "issued", "points", "spent", "wallet"]


def funding(advertiser: str) -> Account:
    return Account(f"adv:{advertiser}:funding", "cents", True)


def budget(activity: str) -> Account:
    return Account(f"act:{activity}:budget", "cents")


def wallet(person: str) -> Account:
    return Account(f"wallet:{person}", "cents")


def points(activity: str, person: str) -> Account:
    return Account(f"pts:{activity}:{person}", "points")


def issued(activity: str) -> Account:
    return Account(f"act:{activity}:points_issued", "points", True)


def spent(activity: str) -> Account:
    return Account(f"act:{activity}:points_spent", "points")
