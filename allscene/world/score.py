"""Scores of the platform's answers against the world's truth set (only the world, tests and
benchmarks read the truth)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

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
