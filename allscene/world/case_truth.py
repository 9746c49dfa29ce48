"""Claims only the world can score: whom a campaign truly reached.

Some seed effects are about *who* an ad reached, which the platform can only estimate: the
Intel case says that targeting a county's residents (where phones sleep, from GPS, cell
towers and IP) reaches more of the people who really live there than IP geolocation alone;
the Budweiser case, that household targeting puts TV ads in the homes of the right adults.
The world knows where everyone lives and what they like (its truth set), so it scores them.

A case file declares these beside its ``claims``::

    world_claims:
      - claim: "resident targeting reaches more of the intended counties' residents"
        metric: fit_reached            # reached | fit_reached | fit_share
        order: [intel_residents, intel_ip]
        unit: person                   # or household
        fit: 'home_county_code in {"410303", "410329"}'
        article: "IP-only marks Mr. A invalid; the combined method marks him a resident"

* **reached**: the people (``unit: person``) or households (``unit: household``) with at
  least one counted impression of the campaign: an ``ad_impression`` in the log with the
  ``ad`` decision of the same request and campaign behind it. The device of the decision
  is mapped to its true owner (a TV to its household; as a person, to the household's
  head, whom the simulated days play for it).
* **fit_reached**: how many of them fit ``fit``, an audience expression
  (:mod:`allscene.audiences.expr`) over the columns of the world's ``people.parquet``
  (``age``, ``home_county_code``, ``interest_sports``...); a household fits when one of
  its members does.
* **fit_share**: ``fit_reached / reached``.

A campaign that reached fewer than ``min_units`` (the minimum audience size) has no
figures, and the claim is unanswered, never true (as :mod:`allscene.measurement.casebook`
rules). :func:`world_claims` returns :class:`~allscene.measurement.casebook.ClaimResult`
objects, so the index page and the console table show them beside the other claims.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from allscene.measurement.casebook import ClaimResult

METRICS = ("reached", "fit_reached", "fit_share")
UNITS = ("person", "household")
MIN_UNITS = 50
"""Fewer people (or households) reached than this: too few to tell (the audiences' minimum)."""


@dataclass(frozen=True)
class Score:
    """Whom one campaign reached, against the world's people."""

    reached: int
    fit_reached: int

    @property
    def fit_share(self) -> float | None:
        """The share of those reached who fit (None when nobody was reached)."""
        return self.fit_reached / self.reached if self.reached else None

    def figure(self, metric: str, min_units: int = MIN_UNITS) -> float | None:
        """``metric`` (one of :data:`METRICS`), or None when too few were reached."""
        if metric not in METRICS:
            raise ValueError(f"unknown world metric {metric!r}; one of {', '.join(METRICS)}")
        if self.reached < min_units:
            return None
        return float(getattr(self, metric))


def counted_impressions(files: Sequence[str | Path], campaigns: Iterable[str]
                        ) -> dict[str, list[str]]:
    """``campaign -> device ids`` of each counted impression of ``campaigns`` in the log.

    An impression counts once per request, when the ``ad`` decision of the same request
    and campaign is in the log (the device is the decision's).

    Parameters
    ----------
    files
        The event log's files (``ParquetEventLog.files("events")``).
    campaigns
        Campaign ids.

    Returns
    -------
    dict
        Every campaign asked for, with one device id per counted impression (none: []).
    """
    from allscene.events.schema import ARROW_SCHEMA

    wanted = sorted(set(campaigns))
    out: dict[str, list[str]] = {c: [] for c in wanted}
    if not files or not wanted:
        return out
    f = pc.field("kind").isin(["ad_decision", "ad_impression"]) & \
        pc.field("campaign_id").isin(wanted)
    t = ds.dataset([str(p) for p in files], format="parquet", schema=ARROW_SCHEMA).to_table(
        columns=["kind", "request_id", "campaign_id", "device_id", "outcome"], filter=f)
    kind, req = t["kind"].to_pylist(), t["request_id"].to_pylist()
    camp, dev, outcome = (t[c].to_pylist() for c in ("campaign_id", "device_id", "outcome"))
    decided = {(r, c): d for k, r, c, d, o in zip(kind, req, camp, dev, outcome, strict=True)
               if k == "ad_decision" and o == "ad"}
    seen = {(r, c) for k, r, c in zip(kind, req, camp, strict=True) if k == "ad_impression"}
    for r, c in sorted(seen):
        device = decided.get((r, c))
        if device is not None:
            out[c].append(device)
    return out


class WorldPeople:
    """The world's people, devices and households, to score whom ads reached.

    Parameters
    ----------
    world_dir
        A generated world (its ``truth`` folder).
    """

    def __init__(self, world_dir: str | Path):
        truth = Path(world_dir) / "truth"
        self.people = pq.read_table(truth / "people.parquet")
        dev = pq.read_table(truth / "devices.parquet",
                            columns=["device_id", "person_id", "household_id"])
        ids = (dev[c].to_pylist() for c in ("device_id", "person_id", "household_id"))
        self.owner: dict[str, tuple[str, str]] = {d: (p, h) for d, p, h in zip(*ids,
                                                                              strict=True)}
        self._fit: dict[tuple[str, str], set[str]] = {}

    def fitting(self, fit: str, unit: str) -> set[str]:
        """The people (or households with a member) for whom expression ``fit`` holds."""
        from allscene.audiences.expr import parse
        from allscene.audiences.index import evaluate_row

        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r}; one of {', '.join(UNITS)}")
        if (fit, unit) not in self._fit:
            node = parse(fit)
            key = "person_id" if unit == "person" else "household_id"
            self._fit[(fit, unit)] = {r[key] for r in self.people.to_pylist()
                                      if evaluate_row(node, r)}
        return self._fit[(fit, unit)]

    def units(self, devices: Iterable[str], unit: str) -> set[str]:
        """The distinct people (or households) owning ``devices`` (unknown ones skipped)."""
        k = 0 if unit == "person" else 1
        return {self.owner[d][k] for d in devices if d in self.owner}

    def score(self, devices: Iterable[str], *, fit: str, unit: str = "person") -> Score:
        """Whom impressions on ``devices`` reached, and how many of them fit ``fit``."""
        reached = self.units(devices, unit)
        return Score(len(reached), len(reached & self.fitting(fit, unit)))


def score_claims(specs: Sequence[Mapping[str, Any]], served: Mapping[str, Sequence[str]],
                 world: WorldPeople, *, min_units: int = MIN_UNITS) -> list[ClaimResult]:
    """Check declared world claims against the devices each campaign served.

    Parameters
    ----------
    specs
        The ``world_claims`` of a case file (``claim, metric, order, unit, fit, article``).
    served
        ``campaign -> device ids`` of its counted impressions (:func:`counted_impressions`).
    world
        The world's people.
    min_units
        Below this many reached, a campaign's figures are None.

    Returns
    -------
    list of ClaimResult
        ``holds`` is whether the figures fall in the declared (strictly decreasing) order;
        None when a figure is missing.
    """
    out = []
    for spec in specs:
        unit = spec.get("unit", "person")
        figs = []
        for cid in spec["order"]:
            s = world.score(served.get(cid, ()), fit=spec["fit"], unit=unit)
            figs.append((cid, s.figure(spec["metric"], min_units)))
        values = [v for _, v in figs]
        holds = None if any(v is None for v in values) else all(
            a > b for a, b in zip(values, values[1:], strict=False))
        out.append(ClaimResult(spec["claim"], spec["metric"], figs, holds,
                               spec.get("article", "")))
    return out


def world_claims(settings, doc: Mapping[str, Any], *, min_units: int = MIN_UNITS
                 ) -> list[ClaimResult]:
    """The ``world_claims`` of case file ``doc``, scored on the replay in ``settings``
    (its event log and its world); [] when the case declares none.

    This is the hook the case replay calls beside the casebook's claims::

        claims += world_claims(settings, case.doc)
    """
    specs = list(doc.get("world_claims") or [])
    if not specs:
        return []
    from allscene.storage import ParquetEventLog

    files = ParquetEventLog(settings.log_dir).files("events")
    campaigns = {c for s in specs for c in s["order"]}
    served = counted_impressions(files, campaigns)
    return score_claims(specs, served, WorldPeople(settings.world_dir), min_units=min_units)
