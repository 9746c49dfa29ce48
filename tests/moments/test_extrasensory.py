"""The ExtraSensory importer on one user file: contract, labels, determinism, scenes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest

from allscene.events.schema import ARROW_SCHEMA, parse_event
from allscene.moments.catalog import load_catalog
from allscene.moments.engine import Engine
from allscene.moments.extrasensory import (
    LABEL_SCHEMA,
    cadence,
    default_folder,
    device_id,
    read_extrasensory,
    resolver_for,
    user_files,
)


@pytest.fixture(scope="module")
def user():
    try:
        files = user_files(default_folder())
    except FileNotFoundError as e:
        pytest.skip(f"ExtraSensory sample not found: {e}")
    f = min(files, key=lambda p: p.stat().st_size)  # the smallest user file
    return f, read_extrasensory(f)


def test_events_have_the_event_log_schema(user):
    _, (events, _) = user
    assert events.schema.equals(ARROW_SCHEMA)
    assert events.num_rows > 0
    assert set(events["device_type"].to_pylist()) == {"phone"}
    assert set(events["kind"].to_pylist()) <= {"app_open", "device_state", "steps", "location"}


def test_a_sample_of_every_kind_validates(user):
    _, (events, _) = user
    rows = []
    for kind in pc.unique(events["kind"]).to_pylist():
        sub = events.filter(pc.equal(events["kind"], kind))
        rows += sub.take(np.linspace(0, sub.num_rows - 1, 40).astype(int)).to_pylist()
    for r in rows:
        e = parse_event({k: v for k, v in r.items() if v is not None})
        assert e.ts.utcoffset().total_seconds() == 0


def test_every_minute_has_a_steps_event(user):
    f, (events, _) = user
    raw = pcsv.read_csv(f)
    steps = events.filter(pc.equal(events["kind"], "steps"))
    assert steps.num_rows == raw.num_rows
    assert set(steps["interval_s"].to_pylist()) == {60}
    assert min(steps["steps"].to_pylist()) >= 0 and max(steps["steps"].to_pylist()) <= 200
    sec = raw["timestamp"].cast(pa.int64()).to_numpy()
    assert sorted(steps["ts"].cast(pa.int64()).to_pylist()) == sorted((sec * 10**6).tolist())


def test_labels_are_the_reported_cells(user):
    f, (_, labels) = user
    raw = pcsv.read_csv(f)
    cols = [c for c in raw.column_names if c.startswith("label:")]
    missing = sum(raw[c].null_count for c in cols)
    assert labels.schema.equals(LABEL_SCHEMA)
    assert labels.num_rows == raw.num_rows * len(cols) - missing
    assert set(labels["label"].to_pylist()) <= {c[len("label:"):] for c in cols}
    assert set(labels["person_id"].to_pylist()) == {f.name.split(".")[0]}
    assert labels["value"].null_count == 0


def test_ids_are_deterministic_and_unique(user):
    f, (events, labels) = user
    again, labels2 = read_extrasensory(f)
    assert events["event_id"].to_pylist() == again["event_id"].to_pylist()
    assert events.equals(again) and labels.equals(labels2)
    assert pc.count_distinct(events["event_id"]).as_py() == events.num_rows
    uuid = f.name.split(".")[0]
    assert all(i.startswith(device_id(uuid) + "-") for i in events["event_id"].to_pylist()[:50])


def test_cadence_rule():
    std = np.array([0.001, 0.05, 0.2, 0.3, 0.55])
    period = np.array([0.5, 0.5, 0.5, 1.1, 0.36])
    assert cadence(std, period).round().tolist() == [0, 0, 120, 109, 167]


def test_the_catalog_scenes_fire_on_the_imported_events(user):
    f, (events, labels) = user
    engine = Engine(load_catalog(), resolver_for(labels["person_id"].unique().to_pylist()))
    assert engine.run_many(events) == events.num_rows
    entered = set(engine.events()["scene"].to_pylist())
    assert {"walking", "phone_resting"} <= entered


def test_the_folder_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv("ALLSCENE_EXTRASENSORY_DIR", str(tmp_path))
    assert default_folder() == tmp_path
    with pytest.raises(FileNotFoundError):
        user_files(tmp_path)
