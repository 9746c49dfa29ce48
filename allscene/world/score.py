"""Scores of the platform's answers against the world's truth set (only the world, tests and
benchmarks read the truth)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def _bcubed(pred: dict[str, str], true: dict[str, str]) -> tuple[float, float]:
    """B-cubed precision and recall of a clustering ``pred`` (item → cluster) against ``true``."""
    items = [i for i in true if i in pred]
    if not items:
        return 0.0, 0.0
    by_pred: dict[str, list[str]] = defaultdict(list)
    by_true: dict[str, list[str]] = defaultdict(list)
    for i in items:
        by_pred[pred[i]].append(i)
        by_true[true[i]].append(i)
    pair = Counter((pred[i], true[i]) for i in items)
    precision = sum(pair[(pred[i], true[i])] / len(by_pred[pred[i]]) for i in items) / len(items)
    recall = sum(pair[(pred[i], true[i])] / len(by_true[true[i]]) for i in items) / len(items)
    return precision, recall


def score_identity(devices: pa.Table, people: pa.Table, world: Path) -> dict[str, float]:
    """How well an identity graph matches the truth.

    * ``device_coverage`` / ``device_accuracy``: share of true phones, bands and cars given a
      person, and share of those given the right one (a predicted person is the true person
      whose phone signs in to that account);
    * ``household_precision`` / ``household_recall``: B-cubed scores of people grouped into
      households;
    * ``appliance_coverage`` / ``appliance_accuracy``: the same for appliances, an appliance's
      household being right when it is the household most of its predicted members are in.
    """
    truth = pq.read_table(world / "truth" / "devices.parquet").to_pylist()
    true_household = {d["device_id"]: d["household_id"] for d in truth}
    person_of_account = {d["account_id"]: d["person_id"] for d in truth
                         if d["device_type"] == "phone"}
    person_household = {d["person_id"]: d["household_id"] for d in truth}
    pred = {d["device_id"]: d for d in devices.to_pylist()}

    personal = [d for d in truth if d["device_type"] in ("phone", "band", "car")]
    given = [d for d in personal if (pred.get(d["device_id"]) or {}).get("person_id")]
    right = [d for d in given
             if person_of_account.get(pred[d["device_id"]]["person_id"]) == d["person_id"]]

    pred_household = {person_of_account.get(p["person_id"], p["person_id"]): p["household_id"]
                      for p in people.to_pylist()}
    precision, recall = _bcubed(pred_household, person_household)

    members: dict[str, Counter[str]] = defaultdict(Counter)
    for person, hh in pred_household.items():
        if person in person_household:
            members[hh][person_household[person]] += 1
    appliances = [d for d in truth if d["device_type"] not in ("phone", "band", "car")]
    placed = [d for d in appliances if d["device_id"] in pred]
    correct = [d for d in placed
               if members[pred[d["device_id"]]["household_id"]].most_common(1)
               and members[pred[d["device_id"]]["household_id"]].most_common(1)[0][0]
               == true_household[d["device_id"]]]
    return {
        "device_coverage": len(given) / max(len(personal), 1),
        "device_accuracy": len(right) / max(len(given), 1),
        "household_precision": precision,
        "household_recall": recall,
        "appliance_coverage": len(placed) / max(len(appliances), 1),
        "appliance_accuracy": len(correct) / max(len(placed), 1),
    }


def _person_of_account(world: Path) -> dict[str, str]:
    """The world's person behind each platform person id (the account their phone signs in
    to)."""
    phones = pq.read_table(world / "truth" / "devices.parquet",
                           columns=["account_id", "person_id", "device_type"]).to_pylist()
    return {d["account_id"]: d["person_id"] for d in phones if d["device_type"] == "phone"}


# --- tags ---------------------------------------------------------------------------------

_AGE_EDGES = (25, 35, 45, 55, 65)
_AGE_NAMES = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
_INCOME_EDGES = (3000, 6000, 10000, 20000)
_INCOME_NAMES = ("<3k", "3-6k", "6-10k", "10-20k", "20k+")
_INTEREST = {"automotive": "cars", "sports": "sports", "travel": "travel", "food": "food",
             "comics": "comics", "music": "music", "news": "news", "games": "games",
             "fitness": "fitness", "parenting": "kids", "finance": "finance",
             "beauty": "beauty", "tech": "tech"}


def _band(x: float, edges: tuple, names: tuple) -> str:
    return names[sum(x >= e for e in edges)]


def _truth_values(p: dict, hh: dict) -> dict[str, object]:
    """What each tag should say of person ``p`` (None: nothing to say)."""
    age_band = _band(p["age"], _AGE_EDGES, _AGE_NAMES)
    inc_band = _band(p["income_monthly_cny"], _INCOME_EDGES, _INCOME_NAMES)
    v: dict[str, object] = {
        "gender": p["gender"], "age_band": age_band, "age": age_band,
        "education": p["education"], "income_band": inc_band, "income": inc_band,
        "province": p["province_code"], "city": p["city_code"], "county": p["home_county_code"],
        "city_tier": str(p["city_tier"]), "home_county": p["home_county_code"],
        "home_county_ip": p["home_county_code"], "work_county": p["work_county_code"],
        "owns_car": "true" if p["owns_car"] else "false", "car.make": p["car_make"],
        "car.model": p["car_model"], "car.year": None if p["car_year"] is None
        else str(p["car_year"]), "owns.band": "true" if p["has_band"] else "false",
        "lifestyle.commute": p["commute_mode"] if p["commute_mode"] != "none" else None,
        "intent.car.price_band": p["car_intent_price_band"],
        "household.size": str(hh.get("adults", "")) or None,
    }
    flags = {
        "lifestyle.runner": p["exercise"] == "runner",
        "lifestyle.night_owl": p["sleep_hour"] >= 24,
        "household.kids": p["has_kids"],
        "intent.first_car": bool(p["car_intent_first_car"]),
        "intent.car.compact@90d": p["intent_car_compact"] > 0,
        "intent.car.suv@90d": p["intent_car_suv"] > 0,
        "intent.car.sedan@90d": p["intent_car_sedan"] > 0,
        "intent.car.nev@90d": p["intent_car_nev"] > 0,
        "intent.car.mpv@90d": p["intent_car_mpv"] > 0,
        "intent.phone_upgrade@90d": p["intent_phone_upgrade"] > 0,
        "intent.travel_booking@90d": p["intent_travel_booking"] > 0,
    }
    for ours, theirs in _INTEREST.items():
        flags[f"interest.{ours}@90d"] = p[f"interest_{theirs}"] > 0
    return {**v, **{k: ("true" if f else None) for k, f in flags.items()}}


def _predicted(tag: str, value: str) -> str | None:
    """The platform's value of ``tag`` in the terms of :func:`_truth_values`."""
    if tag == "age":
        return _band(int(value), _AGE_EDGES, _AGE_NAMES)
    if tag == "income":
        return _band(int(value), _INCOME_EDGES, _INCOME_NAMES)
    if tag.endswith("@90d"):
        return "true" if int(value) >= COUNT_AT_LEAST else None
    return value


COUNT_AT_LEAST = 3
"""A count tag says "yes" at this many events in 90 days (the Chevrolet case's "viewed
compact cars at least 3 times in 90 days")."""
POSITIVE_ONLY = ("lifestyle.", "household.kids", "household.tv_prime_time", "intent.",
                 "interest.")


def score_tags(tags: pa.Table, world: Path) -> list[dict[str, object]]:
    """Coverage and precision of each tag against the truth, overall and by source.

    * ``coverage``: share of people given a value (for yes/no and count tags that only say
      "yes": the share of the people for whom it is true who are tagged, i.e. recall);
    * ``precision``: share of the values given that are right (age and income: the band;
      counts: at least :data:`COUNT_AT_LEAST` in 90 days, against the hidden interest or
      intent);
    * ``precision_<source>``: the same per source (declared, inferred, observed).
    Tags with no hidden counterpart (e.g. ``devices.count``) are left out.
    """
    people = pq.read_table(world / "truth" / "people.parquet").to_pylist()
    households = {h["household_id"]: h for h in
                  pq.read_table(world / "truth" / "households.parquet").to_pylist()}
    person_of_account = _person_of_account(world)
    prime = {p["household_id"] for p in people if p["tv_prime_time"]}
    truth = {p["person_id"]: _truth_values(p, households.get(p["household_id"], {}))
             | {"household.tv_prime_time": "true" if p["household_id"] in prime
                and households[p["household_id"]]["has_tv"] else None}
             for p in people}
    given: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)
    cols = ("person_id", "tag", "value", "source")
    for pid, tag, value, source in zip(*(tags[c].to_pylist() for c in cols), strict=True):
        person = person_of_account.get(pid)
        if person is None or tag not in next(iter(truth.values())):
            continue
        pred = _predicted(tag, value)
        if pred is not None:
            given[tag][person] = (pred, source.split(":")[0])
    rows = []
    for tag in next(iter(truth.values())):
        positive_only = tag.startswith(POSITIVE_ONLY) and tag != "intent.car.price_band"
        base = [p for p in truth if truth[p][tag] is not None]
        if not base:
            continue
        denom = base if positive_only else list(truth)
        if tag == "work_county":
            denom = base
        tagged = {p: v for p, v in given[tag].items() if p in truth}
        scored = {p: v for p, v in tagged.items() if truth[p][tag] is not None or positive_only}
        right = {p for p, (v, _) in scored.items() if truth[p][tag] == v}
        row: dict[str, object] = {
            "tag": tag, "people": len(tagged),
            "coverage": sum(p in tagged for p in denom) / len(denom),
            "precision": len(right) / len(scored) if scored else float("nan"),
        }
        for src in ("declared", "inferred", "observed"):
            s = [p for p, (_, so) in scored.items() if so == src]
            if s:
                row[f"precision_{src}"] = sum(p in right for p in s) / len(s)
                row[f"people_{src}"] = len(s)
        rows.append(row)
    return rows


def score_resident_place(tags: pa.Table, world: Path) -> dict[str, float]:
    """Home county accuracy of the combined method and of IP alone, for everyone and for
    cross-district commuters (who live in one district and work in another)."""
    people = pq.read_table(world / "truth" / "people.parquet").to_pylist()
    person_of_account = _person_of_account(world)
    got: dict[str, dict[str, str]] = defaultdict(dict)
    for pid, tag, value in zip(*(tags[c].to_pylist() for c in ("person_id", "tag", "value")),
                               strict=True):
        if tag in ("home_county", "home_county_ip") and pid in person_of_account:
            got[tag][person_of_account[pid]] = value
    out = {}
    for group, members in (("everyone", people),
                           ("cross_district", [p for p in people if p["cross_district_commuter"]])):
        for tag, name in (("home_county", "combined"), ("home_county_ip", "ip_only")):
            ok = sum(got[tag].get(p["person_id"]) == p["home_county_code"] for p in members)
            out[f"{group}_{name}"] = ok / max(len(members), 1)
        out[f"{group}_people"] = len(members)
    return out


# --- lookalike -----------------------------------------------------------------------------

def intent_positives(person_ids: list[str], world: Path, intent: str = "car_compact"
                     ) -> np.ndarray:
    """A mask over ``person_ids`` (the platform's, in tag-table order) of the people who
    truly hold ``intent`` (a hidden purchase intent of the world)."""
    person_of_account = _person_of_account(world)
    holders = {p["person_id"] for p in pq.read_table(world / "truth" / "people.parquet")
               .select(["person_id", f"intent_{intent}"]).to_pylist()
               if p[f"intent_{intent}"] > 0}
    return np.array([person_of_account.get(p) in holders for p in person_ids])


def score_lookalike(tags: pa.Table, opted_out: np.ndarray, world: Path, *,
                    intent: str = "car_compact", seed_share: float = 0.3, seed: int = 0,
                    method: str | None = None, hide: tuple[str, ...] = ()
                    ) -> dict[str, object]:
    """Precision@N of a lookalike expansion from a seed of hidden-intent holders.

    A random ``seed_share`` of the people who truly hold ``intent`` (and did not opt out) is
    the seed; N is the number of holders left outside it. The expansion's precision@N is
    set beside random selection (the holders' share among the candidates) and beside the
    best single-tag rule's expected precision@N over the same candidates.

    ``hide``: tag-column prefixes neither the lookalike nor the rule may use, e.g. the
    intent's own search counts, to judge them on a seed whose defining behaviour the
    platform does not see (people who bought at the advertiser's, say).
    """
    from allscene.audiences.lookalike import DEFAULT_METHOD, expand_lookalike
    from allscene.audiences.quality import best_single_tag_rule, precision_at_n

    ids = tags["person_id"].to_pylist()
    hidden = tuple(c for c in tags.column_names if c.startswith(hide)) if hide else ()
    positives = intent_positives(ids, world, intent)
    eligible = ~np.asarray(opted_out, dtype=bool)
    holders = np.flatnonzero(positives & eligible)
    rng = np.random.default_rng(seed)
    seed_rows = np.sort(rng.choice(holders, max(1, int(seed_share * len(holders))),
                                   replace=False))
    candidates = eligible.copy()
    candidates[seed_rows] = False
    n = int((positives & candidates).sum())
    from pyroaring import BitMap

    rows, _ = expand_lookalike(tags, seed_rows, n, exclude=BitMap(np.flatnonzero(~eligible)),
                               method=method or DEFAULT_METHOD, exclude_columns=hidden)
    rule = best_single_tag_rule(tags, positives, n, candidates=candidates,
                                exclude_columns=("person_id", *hidden))
    return {"intent": intent, "hidden": ",".join(hide), "seed": len(seed_rows), "n": n,
            "candidates": int(candidates.sum()), "method": method or DEFAULT_METHOD,
            "lookalike": precision_at_n(rows, positives),
            "random": float(positives[candidates].mean()),
            "rule": str(rule), "rule_precision": rule.expected_precision}
