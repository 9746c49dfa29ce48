"""Scene accuracy against the truth set: precision and recall per scene, per person-hour.

The world writes, per person and local hour, the scenes the person was truly in
(``truth/scenes/*.parquet``). The engine's intervals count for an hour when the scene began
in it or covered at least half of it (:func:`allscene.moments.replay.hours_of`). Only the
hours of the replayed days and the people the platform resolved are scored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from allscene.world.score import _person_of_account

HOUR_US = 3_600_000_000
LOCAL_US = 8 * HOUR_US
WORLD_TO_CATALOG: dict[str, str] = {}
"""World scene names that the catalog calls differently (none today: they share ids)."""


def truth_hours(world: Path, first_hour: int, end_hour: int) -> pa.Table:
    """``person_id`` (world person), ``scene``, ``hour`` (local hours since the epoch)."""
    parts = sorted((world / "truth" / "scenes").glob("*.parquet"))
    t = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else None
    if t is None:
        return pa.table({"person_id": [], "scene": [], "hour": pa.array([], pa.int64())})
    hour = pc.divide(pc.add(t["ts"].cast(pa.int64()), LOCAL_US), HOUR_US)
    t = pa.table({"person_id": t["person_id"], "scene": t["scene"].cast(pa.string()),
                  "hour": hour})
    keep = pc.and_(pc.greater_equal(t["hour"], first_hour), pc.less(t["hour"], end_hour))
    return t.filter(keep)


def score_scenes(predicted_hours: pa.Table, world: Path, *, first_hour: int, end_hour: int,
                 catalog_ids: set[str], families: dict[str, str]) -> list[dict[str, object]]:
    """Per scene the world simulates: family, truth and predicted person-hours, precision,
    recall. ``predicted_hours`` is ``person_id`` (platform), ``scene``, ``hour``."""
    to_world = _person_of_account(world)
    pred = predicted_hours.filter(pc.and_(pc.greater_equal(predicted_hours["hour"], first_hour),
                                          pc.less(predicted_hours["hour"], end_hour)))
    ppl = pred["person_id"].to_pylist()
    pred_keys: dict[str, set[tuple[str, int]]] = {}
    for p, s, h in zip(ppl, pred["scene"].to_pylist(), pred["hour"].to_pylist(), strict=True):
        w = to_world.get(p)
        if w is not None:
            pred_keys.setdefault(s, set()).add((w, h))
    known = set(to_world.values())
    truth = truth_hours(world, first_hour, end_hour)
    truth_keys: dict[str, set[tuple[str, int]]] = {}
    for p, s, h in zip(truth["person_id"].to_pylist(), truth["scene"].to_pylist(),
                       truth["hour"].to_pylist(), strict=True):
        if p in known:
            truth_keys.setdefault(WORLD_TO_CATALOG.get(s, s), set()).add((p, h))
    rows = []
    for scene in sorted(truth_keys):
        if scene not in catalog_ids:
            continue
        tk, pk = truth_keys[scene], pred_keys.get(scene, set())
        hit = len(tk & pk)
        rows.append({"scene": scene, "family": families.get(scene, ""), "world": len(tk),
                     "predicted": len(pk), "precision": hit / len(pk) if pk else np.nan,
                     "recall": hit / len(tk) if tk else np.nan})
    return rows
