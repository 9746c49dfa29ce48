"""Households from the identity graph: who lives together, and which screens they share.

The graph (:func:`allscene.identity.graph.device_graph`) gives every personal device a
person and a household, and every appliance (TV, speaker, router...) a household but no
person: a TV is watched by whoever is in the room. These functions read its ``devices``
table (``device_id, device_type, person_id, household_id``) and answer:

* :func:`household_members`: the people of each household (those with a personal device
  linked to it);
* :func:`shared_screens`: for each appliance, the people of its household, i.e. everyone
  who may be in front of it.

Examples
--------
>>> import pyarrow as pa
>>> devices = pa.table({
...     "device_id": ["ph1", "ph2", "ph3", "tv1", "tv9", "spk1"],
...     "device_type": ["phone", "phone", "phone", "tv", "tv", "speaker"],
...     "person_id": ["alice", "bob", "carol", None, None, None],
...     "household_id": ["h:1", "h:1", "h:2", "h:1", "h:9", "h:2"]})
>>> household_members(devices)
{'h:1': ('alice', 'bob'), 'h:2': ('carol',)}
>>> shared_screens(devices)  # tv9's household has nobody the graph knows
{'spk1': ('carol',), 'tv1': ('alice', 'bob')}
>>> shared_screens(devices, device_types=("tv",))
{'tv1': ('alice', 'bob')}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import pyarrow as pa


def household_members(devices: pa.Table) -> dict[str, tuple[str, ...]]:
    """``household_id -> person ids`` (sorted) of every household with a known member.

    Parameters
    ----------
    devices
        The identity graph's devices: ``person_id`` and ``household_id`` columns at least.

    Returns
    -------
    dict
        Each household's members, from the personal devices linked to it.
    """
    members: dict[str, set[str]] = defaultdict(set)
    for person, household in zip(devices["person_id"].to_pylist(),
                                 devices["household_id"].to_pylist(), strict=True):
        if person is not None and household is not None:
            members[household].add(person)
    return {h: tuple(sorted(p)) for h, p in sorted(members.items())}


def shared_screens(devices: pa.Table, device_types: Iterable[str] | None = None
                   ) -> dict[str, tuple[str, ...]]:
    """``device_id -> person ids``: the members of the household of each appliance.

    Parameters
    ----------
    devices
        The identity graph's devices (``device_id, device_type, person_id, household_id``).
    device_types
        Only appliances of these types (default: every device without a person of its own).

    Returns
    -------
    dict
        Appliances whose household has at least one known member, sorted by device id.
    """
    members = household_members(devices)
    kinds = None if device_types is None else set(device_types)
    out: dict[str, tuple[str, ...]] = {}
    for device, kind, person, household in zip(
            devices["device_id"].to_pylist(), devices["device_type"].to_pylist(),
            devices["person_id"].to_pylist(), devices["household_id"].to_pylist(),
            strict=True):
        if person is not None or (kinds is not None and kind not in kinds):
            continue
        who = members.get(household)
        if who:
            out[device] = who
    return dict(sorted(out.items()))
