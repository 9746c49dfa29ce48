"""Score the scene engine on real labelled data: the ExtraSensory sample.

Imports the sample (``allscene.moments.extrasensory``: one phone per user, the events a
phone OS would emit each minute), runs the engine over the scene catalog (``scenes.yaml``), rebuilds each person's scene intervals from the engine's
enter and exit events (and the scenes still active at the end), and compares them, minute by
labelled minute (a label reported 1 or 0), with the self-reported labels they map to:
precision, recall, F1, balanced accuracy and accuracy, beside the majority-class baseline
(the label's more frequent value for every minute: its accuracy, balanced accuracy 0.5).
Labels no scene maps to are listed as not covered, with why.

Clock: the engine reads hours and day types on the platform's clock (Asia/Shanghai, UTC+8);
the ExtraSensory users lived in California. ``--clock local`` (the default) moves every
event and label by the same offset so that the Shanghai wall clock shows the Californian
one (22:00 in San Diego is read as 22:00); ``--clock utc`` keeps the true instants, so
that hour-based scenes read the hour in Shanghai.

Run: ``python bench/bench_extrasensory.py [--data DIR] [--clock local|utc]`` (``--data``
defaults to ``$ALLSCENE_EXTRASENSORY_DIR``, else the shared sample).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from allscene.moments.catalog import load_catalog
from allscene.moments.engine import ENTER, Engine
from allscene.moments.extrasensory import (
    default_folder,
    label_names,
    read_extrasensory,
    resolver_for,
)

# (label, scene, note); a label may be scored against several scenes.
MAPPING = [
    ("FIX_walking", "walking", ""),
    ("STROLLING", "walking", ""),
    ("FIX_running", "running_cadence", ""),
    ("FIX_running", "running", "catalog; needs bpm>=130 or 5k steps/event"),
    ("IN_A_CAR", "in_vehicle", ""),
    ("IN_A_CAR", "in_car", "catalog; needs car BT or taxi app"),
    ("DRIVE_-_I_M_THE_DRIVER", "in_vehicle", ""),
    ("DRIVE_-_I_M_A_PASSENGER", "in_vehicle", ""),
    ("ON_A_BUS", "in_vehicle", ""),
    ("SLEEPING", "still_at_night", "hour-based"),
    ("SLEEPING", "charging_at_night", "hour-based"),
    ("SLEEPING", "sleeping", "catalog; needs place == home"),
    ("PHONE_ON_TABLE", "phone_resting", ""),
    ("OR_outside", "outdoors_gps", ""),
    ("LOC_home", "on_wifi", "proxy: any Wi-Fi"),
    ("LOC_home", "on_home_wifi", "catalog; needs home keys"),
    ("LOC_main_workplace", "at_office", "catalog; needs work keys"),
]
WHY = {
    "WATCHING_TV": "needs TV events (tv_watch); the data has only the phone",
    "AT_THE_GYM": "no gym place or signal",
    "BICYCLING": "no bicycle scene (GPS speed 3-8 m/s without steps would be one)",
    "LYING_DOWN": "posture: the data's phone events do not show it",
    "SITTING": "posture: the data's phone events do not show it",
    "OR_standing": "posture: the data's phone events do not show it",
    "OR_indoors": "not scored: the negation of outdoors_gps, with no fix indoors",
}


def reclock(t: pa.Table, tz: str) -> pa.Table:
    """Move ``ts`` so that the Asia/Shanghai wall clock shows the wall clock of ``tz``."""
    ts = t["ts"].cast(pa.int64()).to_numpy()
    uniq, inv = np.unique(ts, return_inverse=True)
    zone = ZoneInfo(tz)
    # Shanghai shows x + 8 h; tz shows ts + offset: x = ts + offset - 8 h.
    off = np.array([dt.datetime.fromtimestamp(u / 1e6, zone).utcoffset().total_seconds()
                    - 8 * 3600 for u in uniq.tolist()], dtype=np.int64)
    moved = pa.array((uniq + off * 1_000_000)[inv], pa.int64()).cast(t.schema.field("ts").type)
    return t.set_column(t.schema.get_field_index("ts"), "ts", moved)


def intervals(engine: Engine) -> tuple[dict, int]:
    """``(person, scene) -> (starts, ends)`` (half-open, µs) from ``engine.events()``.

    Rows of one person and scene at the same instant are put back in the only order that
    alternates: an active scene first exits, then enters again. Returns the intervals and how
    many such ties there were.
    """
    ev = engine.events()
    who = "person_id" if "person_id" in ev.column_names else "account_id"
    cols = [ev[c].to_pylist() for c in (who, "scene", "kind")]
    ts = ev["ts"].cast(pa.int64()).to_pylist()
    rows: dict[tuple, list] = defaultdict(list)
    for p, s, k, t in zip(*cols, ts, strict=True):
        rows[(p, s)].append((t, k))
    out, ties = {}, 0
    for key, seq in rows.items():
        starts, ends, start = [], [], None
        i = 0
        while i < len(seq):
            j = i
            while j < len(seq) and seq[j][0] == seq[i][0]:
                j += 1
            t = seq[i][0]
            kinds = [k for _, k in seq[i:j]]
            ties += len(kinds) > 1
            n_in = kinds.count(ENTER)
            for _ in range(len(kinds)):
                if start is None and n_in:
                    start, n_in = t, n_in - 1
                elif start is not None:
                    starts.append(start)
                    ends.append(t)
                    start = None
            i = j
        if start is not None:  # still active at the end
            starts.append(start)
            ends.append(1 << 62)
        out[key] = (np.array(starts, np.int64), np.array(ends, np.int64))
    return out, ties


def score(labels: pa.Table, label: str, scene: str, spans: dict) -> dict:
    """Confusion counts and rates of ``scene`` against ``label`` over its labelled minutes."""
    lab = labels.filter(pc.equal(labels["label"], label))
    tp = fp = fn = tn = 0
    people = lab["person_id"].to_numpy(zero_copy_only=False)
    ts_all = lab["ts"].cast(pa.int64()).to_numpy()
    val_all = lab["value"].to_numpy(zero_copy_only=False).astype(bool)
    for p in np.unique(people).tolist():
        m = people == p
        ts, y = ts_all[m], val_all[m]
        starts, ends = spans.get((p, scene), (np.array([], np.int64),) * 2)
        idx = np.searchsorted(starts, ts, side="right") - 1
        pred = (idx >= 0) & (ts < ends[np.maximum(idx, 0)] if len(ends) else False)
        tp += int((pred & y).sum())
        fp += int((pred & ~y).sum())
        fn += int((~pred & y).sum())
        tn += int((~pred & ~y).sum())
    n, pos = tp + fp + fn + tn, tp + fn
    prec = tp / (tp + fp) if tp + fp else float("nan")
    rec = tp / pos if pos else float("nan")
    spec = tn / (n - pos) if n - pos else float("nan")
    f1 = 2 * prec * rec / (prec + rec) if tp else 0.0
    return {"n": n, "pos": pos, "predicted": tp + fp, "precision": prec, "recall": rec,
            "f1": f1, "balanced": (rec + spec) / 2, "accuracy": (tp + tn) / n if n else 0,
            "majority": max(pos, n - pos) / n if n else 0}


def _f(x: float) -> str:
    return "-" if x != x else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_folder())
    ap.add_argument("--clock", choices=("local", "utc"), default="local")
    ap.add_argument("--tz", default="America/Los_Angeles", help="the users' time zone")
    a = ap.parse_args()
    console = Console(width=max(Console().width, 200))
    t0 = time.perf_counter()
    events, labels = read_extrasensory(a.data)
    if a.clock == "local":
        events, labels = reclock(events, a.tz), reclock(labels, a.tz)
    read_s = time.perf_counter() - t0
    catalog = load_catalog()
    people = sorted(set(labels["person_id"].to_pylist()))
    engine = Engine(catalog, resolver_for(people))
    t0 = time.perf_counter()
    engine.run_many(events)
    end = int(pc.max(events["ts"].cast(pa.int64())).as_py()) + 1
    engine.flush(until=end)
    run_s = time.perf_counter() - t0
    spans, ties = intervals(engine)
    console.print(f"{len(people)} people: {events.num_rows:,} events and "
                  f"{labels.num_rows:,} reported labels read in {read_s:.1f}s; engine "
                  f"({len(catalog.scenes)} scenes) {run_s:.1f}s, "
                  f"{engine.events().num_rows:,} scene events ({ties} same-instant ties); "
                  f"clock: {a.clock}")
    tt = Table(title="ExtraSensory: scenes against self-reported labels, per labelled minute")
    for c in ("label", "scene", "minutes", "positive", "predicted", "precision", "recall",
              "F1", "bal. acc", "accuracy", "majority acc", "maj. bal. acc", "note"):
        tt.add_column(c, justify="left" if c in ("label", "scene", "note") else "right")
    for label, scene, note in MAPPING:
        r = score(labels, label, scene, spans)
        tt.add_row(label, scene, f"{r['n']:,}", f"{r['pos']:,}", f"{r['predicted']:,}",
                   _f(r["precision"]), _f(r["recall"]), _f(r["f1"]), _f(r["balanced"]),
                   _f(r["accuracy"]), _f(r["majority"]), "0.500", note)
    console.print(tt)
    console.print("catalog: a scene of scenes.yaml. Place keys (home, work) come from Wi-Fi "
                  "BSSIDs, IPs and cells, which the data does not have, so place is never home "
                  "or work; hour-based scenes read the clock chosen above.")
    mapped = {m[0] for m in MAPPING}
    counts = labels.group_by("label").aggregate([("value", "count"), ("value", "sum")])
    rows = sorted(zip(counts["label"].to_pylist(), counts["value_count"].to_pylist(),
                      counts["value_sum"].to_pylist(), strict=True), key=lambda r: -r[2])
    nc = Table(title="labels not covered (no scene maps to them)")
    for c in ("label", "minutes", "positive", "why"):
        nc.add_column(c, justify="left" if c in ("label", "why") else "right")
    for label, n, pos in rows:
        if label not in mapped:
            nc.add_row(label, f"{n:,}", f"{pos:,}", WHY.get(label, "no phone event in the "
                                                               "data shows it"))
    for label in sorted(set(label_names(a.data)) - {r[0] for r in rows} - mapped):
        nc.add_row(label, "0", "0", "; ".join(["not reported in this sample"]
                                              + ([WHY[label]] if label in WHY else [])))
    console.print(nc)


if __name__ == "__main__":
    main()
