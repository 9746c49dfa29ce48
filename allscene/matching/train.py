"""Train the click model from what the platform logged: every shown ad (``ad_impression``,
the first per decision), clicked or not (an ``ad_click`` with its ``request_id``), with the
person the decision named (else the identity graph's), the scene it was chosen in, the local
hour and weekday, and the person's tags, as the decision engine will see them.

People who opted out of personalized ads are learnt from without their tags, as they are
scored (:class:`~allscene.matching.model.PCtr`). The split is by time: the model learns from
the earlier ``1 - holdout`` of the impressions, is scored on the later ones beside the
constant training rate, then goes on learning from those too (it is an online learner).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from allscene.matching.evaluate import constant_baseline, score
from allscene.matching.features import ImpressionHasher
from allscene.matching.ftrl import FTRL
from allscene.storage.duck import connect

MODEL_FILE = Path("models") / "pctr.npz"
"""Where the server looks for the model, under the data directory."""


def tag_columns(tags: pa.Table | None) -> list[str]:
    """The tag table's scalar columns (strings, numbers, booleans) but ``person_id``."""
    if tags is None:
        return []
    return [f.name for f in tags.schema if f.name != "person_id" and (
        pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        or pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
        or pa.types.is_boolean(f.type))]


def impressions(log, *, tags: pa.Table | None = None, people: pa.Table | None = None,
                opted_out: Iterable[str] = (), start: dt.datetime | None = None,
                end: dt.datetime | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(columns, clicked)`` of every logged impression in time order, the columns as
    :meth:`~allscene.matching.features.ImpressionHasher.transform_frame` reads them."""
    paths = log.files("events", start.astimezone(dt.UTC).date() if start else None,
                      end.astimezone(dt.UTC).date() if end else None)
    if not paths:
        raise ValueError("the event log holds no events to learn from")
    con = connect()
    empty = pa.table({"device_id": pa.array([], pa.string()),
                      "person_id": pa.array([], pa.string())})
    con.register("people_in", people.select(["device_id", "person_id"])
                 if people is not None else empty)
    cols = tag_columns(tags)
    con.register("tags_in", tags.select(["person_id", *cols]) if tags is not None
                 else pa.table({"person_id": pa.array([], pa.string())}))
    con.register("out_in", pa.table({"person_id": pa.array(sorted(set(opted_out)),
                                                            pa.string())}))
    files = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    src = f"read_parquet([{files}], union_by_name=true, hive_partitioning=false)"
    have = {r[0] for r in con.execute(f"SELECT name FROM parquet_schema([{files}])").fetchall()}
    scene = "scene" if "scene" in have else "NULL::VARCHAR AS scene"
    lo = start or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    hi = end or dt.datetime(9999, 1, 1, tzinfo=dt.UTC)
    local = "make_timestamp(epoch_us(i.ts) + 28800000000)"
    tag_sel = "".join(f', CASE WHEN o.person_id IS NULL THEN t."{c}" END AS "tag.{c}"'
                      for c in cols)
    q = con.execute(
        "WITH ad AS (SELECT kind, ts, request_id, device_id, device_type, placement_id,"
        f" campaign_id, creative_id, advertiser_id, account_id, outcome, {scene}"
        f" FROM {src} WHERE kind IN ('ad_impression', 'ad_click', 'ad_decision')),"
        " imp AS (SELECT request_id, arg_min(ts, ts) ts, arg_min(device_id, ts) device_id,"
        "  arg_min(device_type, ts) device_type, arg_min(placement_id, ts) placement,"
        "  arg_min(campaign_id, ts) campaign_id, arg_min(creative_id, ts) creative_id,"
        "  arg_min(advertiser_id, ts) advertiser FROM ad WHERE kind = 'ad_impression'"
        "  AND ts >= $lo AND ts < $hi GROUP BY request_id),"
        " dec AS (SELECT request_id, arg_min(account_id, ts) account_id,"
        "  arg_min(scene, ts) scene FROM ad WHERE kind = 'ad_decision' AND outcome = 'ad'"
        "  GROUP BY request_id),"
        " clk AS (SELECT DISTINCT request_id FROM ad WHERE kind = 'ad_click')"
        " SELECT i.placement, i.advertiser || '/' || i.campaign_id || '/' || i.creative_id"
        "  AS creative, i.advertiser || '/' || i.campaign_id AS campaign, i.advertiser,"
        f"  i.device_type, d.scene, hour({local}) AS hour, isodow({local}) AS weekday"
        f"  {tag_sel}, (k.request_id IS NOT NULL)::INT AS clicked"
        " FROM imp i LEFT JOIN dec d ON d.request_id = i.request_id"
        " LEFT JOIN clk k ON k.request_id = i.request_id"
        " LEFT JOIN people_in pe ON pe.device_id = i.device_id"
        " LEFT JOIN tags_in t ON t.person_id = coalesce(d.account_id, pe.person_id)"
        " LEFT JOIN out_in o ON o.person_id = coalesce(d.account_id, pe.person_id)"
        " ORDER BY i.ts, i.request_id", {"lo": lo, "hi": hi}).fetch_arrow_table()
    if not q.num_rows:
        raise ValueError("no ad impressions in the event log to learn from")
    frame = {name: q.column(name).to_numpy(zero_copy_only=False)
             for name in q.column_names if name != "clicked"}
    return frame, q.column("clicked").to_numpy(zero_copy_only=False).astype(np.int8)


def train(frame: dict[str, np.ndarray], clicked: np.ndarray, *, bits: int = 20,
          holdout: float = 0.2, model: FTRL | None = None) -> tuple[FTRL, dict[str, Any]]:
    """Fit FTRL on the earlier impressions, score the later ones (held out) beside the
    constant rate, then learn those too; returns the model and the scores."""
    if not 0 <= holdout < 1:
        raise ValueError("holdout: a share in [0, 1)")
    X = ImpressionHasher(bits).transform_frame(frame)
    n = len(clicked)
    cut = int(round(n * (1 - holdout)))
    m = model or FTRL(bits=bits)
    m.partial_fit(X[:cut], clicked[:cut])
    out: dict[str, Any] = {"impressions": n, "clicks": int(clicked.sum()), "trained_on": cut}
    test = clicked[cut:]
    if 0 < test.sum() < len(test):
        p = m.predict_proba(X[cut:])[:, 1]
        rate = constant_baseline(clicked[:cut])
        out["model"] = score(test, p)
        out["constant"] = score(test, np.full(len(test), rate))
    if cut < n:
        m.partial_fit(X[cut:], test)
    return m, out
