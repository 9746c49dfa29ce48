"""Read the ExtraSensory dataset as the device events a phone would send, with its labels.

ExtraSensory (Vaizman, Ellis and Lanckriet, UCSD 2015-16; cite IEEE Pervasive Computing
16(4), 2017) holds, per user, one row a minute: ``timestamp`` (Unix seconds), 225 features
of a 20-second sensor recording made at the start of that minute, and 51 self-reported
``label:*`` columns (1, 0, or empty when not reported). One file is one person; their phone
is one device, ``es-`` + the first eight characters of the user's uuid.

Each minute becomes the events a phone OS would emit in it, by fixed rules from the physics
of the sensors (no threshold is fitted on the labels). All events of a minute share its
timestamp; their ids (``es-DEVICE-SECONDS-N<kind>``) are deterministic and order them:

=============  ==========================================================================
app_open       ``app="extrasensory"`` when the app is in the foreground
               (``discrete:app_state:is_active``): the person is using the phone.
device_state   battery, every minute with a battery reading: ``state`` ``"charging"``
               when plugged into AC, USB or wireless power or the OS reports charging or
               full (iOS reports full only on the charger), else ``"battery_low"`` at or
               below :data:`LOW_BATTERY` (Android's low-battery broadcast level), else
               ``"on_battery"``; ``metric="battery_pct"``, ``value`` the level in %.
device_state   ``state="ambient_light"``, ``metric="light_lux"``: the light sensor
               (``lf_measurements:light`` is the natural log of lux), when present.
device_state   ``state`` ``"ringer_normal"``, ``"ringer_vibrate"`` or ``"ringer_silent"``
               when the ringer mode differs from the previous minute (as the OS
               broadcasts a ringer-mode change).
device_state   ``state="stationary"`` when the accelerometer magnitude's standard
               deviation is below :data:`STILL_STD_G` (0.005 g, a few times the sensor's
               own noise floor of 0.001-0.002 g): the phone lies still on a surface, as
               the OS's stationary detector reports.
steps          ``interval_s=60`` and the step count of the minute (see below).
location       when the GPS reports a ground speed (``location:max_speed``, negative
               means invalid): ``speed_mps``, ``accuracy_m``
               (``location:best_horizontal_accuracy``) and ``network`` (``"wifi"`` when
               reachable over Wi-Fi, ``"cellular"`` over WWAN). A minute with no speed has
               no location event: the data holds no IP, cell or coordinates, one of which
               the contract requires.
=============  ==========================================================================

Steps: the pedometer rule, from the accelerometer magnitude ``|a|`` (in g). Below
:data:`GAIT_STD_G` (0.1 g) of standard deviation there is no gait: sensor noise, handling and
vehicle vibration stay under it, while each step swings ``|a|`` by roughly 0.3-0.5 g. With
gait, the period of the autocorrelation peak of ``|a|`` gives the cadence: a period of
0.3-0.85 s is one step (60 / period steps a minute), 0.85-1.5 s a stride of two steps
(120 / period); when the signal is this strong, at or above :data:`RUN_STD_G` (0.5 g: foot
strikes of 2-3 g and flight phases near 0 g, far beyond walking's 1 +/- 0.3 g), it is
running and periods from 0.6 s are strides. With no period in range the cadence is the
typical one, :data:`WALK_CADENCE` (100 a minute) walking or :data:`RUN_CADENCE` (160)
running. Cadence is capped at 200 and is assumed to hold for the whole minute.

The events are cast to the event log's schema (:data:`allscene.events.schema.ARROW_SCHEMA`),
timestamps in UTC. The labels come back long: ``person_id, ts, label, value`` for each
reported label (``label`` without its ``label:`` prefix, ``value`` true or false).

The data is read in place, never copied: :func:`default_folder` is the shared sample unless
the environment variable ``ALLSCENE_EXTRASENSORY_DIR`` names another folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from allscene.config import shared_data
from allscene.events.schema import ARROW_SCHEMA
from allscene.moments.resolve import Resolver

SUFFIX = ".features_labels.csv.gz"
APP = "extrasensory"
GAIT_STD_G = 0.1
RUN_STD_G = 0.5
STILL_STD_G = 0.005
STEP_PERIOD_S = (0.3, 0.85)
STRIDE_MAX_S = 1.5
RUN_STRIDE_MIN_S = 0.6
WALK_CADENCE, RUN_CADENCE, MAX_CADENCE = 100.0, 160.0, 200.0
LOW_BATTERY = 0.15
LABEL_SCHEMA = pa.schema([("person_id", pa.string()), ("ts", pa.timestamp("us", tz="UTC")),
                          ("label", pa.string()), ("value", pa.bool_())])
_RINGER = (("discrete:ringer_mode:is_normal", "ringer_normal"),
           ("discrete:ringer_mode:is_silent_with_vibrate", "ringer_vibrate"),
           ("discrete:ringer_mode:is_silent_no_vibrate", "ringer_silent"))


def default_folder() -> Path:
    """``$ALLSCENE_EXTRASENSORY_DIR`` when set, else the shared sample."""
    return shared_data("context_extrasensory_sample", "ALLSCENE_EXTRASENSORY_DIR")


def device_id(uuid: str) -> str:
    """The phone's device id: ``es-`` and the first eight characters of the uuid, lower case.

    Examples
    --------
    >>> device_id("ABCDEF12-0000-4000-8000-000000000000")
    'es-abcdef12'
    """
    return "es-" + uuid[:8].lower()


def user_files(folder: str | Path) -> list[Path]:
    """The user files under ``folder`` (or in its ``data/``), sorted; a file is itself."""
    p = Path(folder)
    if p.is_file():
        return [p]
    files = sorted(p.glob("*" + SUFFIX)) or sorted((p / "data").glob("*" + SUFFIX))
    if not files:
        raise FileNotFoundError(f"no *{SUFFIX} files in {p} or {p / 'data'}")
    return files


def label_names(folder: str | Path) -> list[str]:
    """Every label of the files' headers (without ``label:``), reported or not."""
    names: dict[str, None] = {}
    for f in user_files(folder):
        with pcsv.open_csv(f) as r:
            names.update((n[len("label:"):], None) for n in r.schema.names
                         if n.startswith("label:"))
    return list(names)


def read_extrasensory(folder: str | Path) -> tuple[pa.Table, pa.Table]:
    """Events (in :data:`ARROW_SCHEMA`, sorted by ``ts, event_id``) and labels of every user.

    Parameters
    ----------
    folder
        A folder of ``<uuid>.features_labels.csv.gz`` files (or holding them in ``data/``),
        or one such file.

    Returns
    -------
    events, labels
        The phone events of every minute, and ``person_id, ts, label, value`` for every
        reported label of every minute.
    """
    events, labels = [], []
    for f in user_files(folder):
        uuid = f.name[: -len(SUFFIX)]
        t = pcsv.read_csv(f)
        events.append(minute_events(uuid, t))
        labels.append(_labels(uuid, t))
    ev = pa.concat_tables(events).sort_by([("ts", "ascending"), ("event_id", "ascending")])
    return ev, pa.concat_tables(labels)


def _col(t: pa.Table, name: str) -> np.ndarray:
    """A column as float64 with NaN for missing values (all NaN when absent)."""
    if name not in t.column_names:
        return np.full(t.num_rows, np.nan)
    return pc.cast(t[name], pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _flag(t: pa.Table, *names: str) -> np.ndarray:
    out = np.zeros(t.num_rows, dtype=bool)
    for n in names:
        out |= _col(t, n) == 1
    return out


def cadence(std_g: np.ndarray, period_s: np.ndarray) -> np.ndarray:
    """Steps a minute from the std (g) and autocorrelation period (s) of ``|a|``.

    Parameters
    ----------
    std_g, period_s
        ``raw_acc:magnitude_stats:std`` and ``raw_acc:magnitude_autocorrelation:period``
        (NaN when missing: no gait).

    Examples
    --------
    >>> c = cadence(np.array([0.002, 0.2, 0.2, 0.2, 0.6, 0.6]),
    ...             np.array([0.5, 0.5, 1.2, 4.0, 0.7, 4.0]))
    >>> np.round(c, 1).tolist()
    [0.0, 120.0, 100.0, 100.0, 171.4, 160.0]
    """
    std = np.nan_to_num(std_g, nan=0.0)
    p = np.nan_to_num(period_s, nan=0.0)
    run = std >= RUN_STD_G
    stride = (p <= STRIDE_MAX_S) & ((p >= STEP_PERIOD_S[1]) | (run & (p >= RUN_STRIDE_MIN_S)))
    step = (p >= STEP_PERIOD_S[0]) & ~stride & (p < STEP_PERIOD_S[1])
    typical = np.where(run, RUN_CADENCE, WALK_CADENCE)
    with np.errstate(divide="ignore"):
        c = np.where(stride, 120.0 / np.maximum(p, 1e-9),
                     np.where(step, 60.0 / np.maximum(p, 1e-9), typical))
    return np.where(std >= GAIT_STD_G, np.minimum(c, MAX_CADENCE), 0.0)


def minute_events(uuid: str, t: pa.Table) -> pa.Table:
    """The phone events of one user's minutes, in :data:`ARROW_SCHEMA`.

    Parameters
    ----------
    uuid
        The user (the file name up to ``.features_labels``).
    t
        Their file, as read by :func:`pyarrow.csv.read_csv`.
    """
    dev = device_id(uuid)
    sec = _col(t, "timestamp").astype(np.int64)
    parts: list[pa.Table] = []

    def add(tag: str, kind: str, mask: np.ndarray, **cols) -> None:
        idx = np.flatnonzero(mask)
        data = {"event_id": [f"{dev}-{s}-{tag}" for s in sec[idx].tolist()],
                "ts": sec[idx] * 1_000_000, "kind": kind, "device_id": dev,
                "device_type": "phone", "schema_version": 1}
        data.update({k: v[idx] if isinstance(v, np.ndarray) else v for k, v in cols.items()})
        parts.append(_table(len(idx), data))

    add("1app", "app_open", _flag(t, "discrete:app_state:is_active"), app=APP)
    level = _col(t, "lf_measurements:battery_level")
    charging = _flag(t, "discrete:battery_plugged:is_ac", "discrete:battery_plugged:is_usb",
                     "discrete:battery_plugged:is_wireless", "discrete:battery_state:is_charging",
                     "discrete:battery_state:is_full")
    state = np.where(charging, "charging", np.where(level <= LOW_BATTERY, "battery_low",
                                                    "on_battery")).astype(object)
    add("2bat", "device_state", ~np.isnan(level), state=state, metric="battery_pct",
        value=np.round(level * 100, 1))
    light = _col(t, "lf_measurements:light")
    lux = np.round(np.minimum(np.exp(np.nan_to_num(light, nan=0.0)), 1e6), 2)
    add("3lux", "device_state", ~np.isnan(light), state="ambient_light", metric="light_lux",
        value=lux)
    ringer = np.full(t.num_rows, None, dtype=object)
    for name, mode in _RINGER:
        ringer[_flag(t, name)] = mode
    changed = np.array([m is not None and (i == 0 or m != ringer[i - 1])
                        for i, m in enumerate(ringer)], dtype=bool)
    add("4ring", "device_state", changed, state=ringer)
    std = _col(t, "raw_acc:magnitude_stats:std")
    add("5still", "device_state", std < STILL_STD_G, state="stationary")
    steps = np.round(cadence(std, _col(t, "raw_acc:magnitude_autocorrelation:period")))
    add("6steps", "steps", ~np.isnan(std), steps=steps.astype(np.int64), interval_s=60)
    speed = _col(t, "location:max_speed")
    acc = _col(t, "location:best_horizontal_accuracy")
    net = np.where(_flag(t, "discrete:wifi_status:is_reachable_via_wifi"), "wifi",
                   np.where(_flag(t, "discrete:wifi_status:is_reachable_via_wwan"),
                            "cellular", None)).astype(object)
    add("7loc", "location", speed >= 0, speed_mps=np.minimum(speed, 350.0), network=net,
        accuracy_m=np.where((acc >= 0) & (acc <= 100_000), acc, np.nan))
    return pa.concat_tables(parts)


def _table(n: int, data: dict) -> pa.Table:
    arrays = []
    for f in ARROW_SCHEMA:
        v = data.get(f.name)
        if v is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(v, np.ndarray | list):
            arrays.append(pa.array(v, type=f.type, from_pandas=True))
        else:
            arrays.append(pa.array([v] * n, type=f.type))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def _labels(uuid: str, t: pa.Table) -> pa.Table:
    ts = _col(t, "timestamp").astype(np.int64) * 1_000_000
    names, tss, vals = [], [], []
    for c in t.column_names:
        if not c.startswith("label:"):
            continue
        v = _col(t, c)
        known = ~np.isnan(v)
        names.extend([c[len("label:"):]] * int(known.sum()))
        tss.append(ts[known])
        vals.append(v[known] == 1)
    n = len(names)
    return pa.Table.from_arrays(
        [pa.array([uuid] * n, pa.string()),
         pa.array(np.concatenate(tss) if tss else [], LABEL_SCHEMA.field("ts").type),
         pa.array(names, pa.string()),
         pa.array(np.concatenate(vals) if vals else [], pa.bool_())], schema=LABEL_SCHEMA)


def resolver_for(person_ids: list[str]) -> Resolver:
    """A resolver for ExtraSensory people: each phone to its person, each person their own
    household, and no Wi-Fi, IP or cell keys, towers, geo-IP or regions (the data has none)."""
    people = sorted(set(person_ids))
    s = pa.string()
    empty = {"keys": ("person_id", "key", "place"), "towers": ("cell_id", "county_code"),
             "geoip": ("prefix", "city_code", "connection"),
             "regions": ("county_code", "city_code")}
    tables = {k: pa.table({c: pa.array([], s) for c in cols}) for k, cols in empty.items()}
    devices = pa.table({"device_id": pa.array([device_id(p) for p in people], s),
                        "person_id": pa.array(people, s), "household_id": pa.array(people, s)})
    households = pa.table({"person_id": pa.array(people, s),
                           "household_id": pa.array(people, s)})
    return Resolver(devices, households, tables["keys"], tables["towers"], tables["geoip"],
                    tables["regions"])
