"""Multi-stage optimization plans: a campaign's audience, recomputed from what it learnt.

A campaign may carry a ``plan``: stages run one after another, each for some days, each with
an audience **recipe**. Case 6 (Chevrolet): the DMP seed for two days, a lookalike of its
clickers, then the people who clicked in both waves and their lookalike. Case 7 (Dongman):
every day, yesterday's clickers of another campaign.

:func:`run_plans` runs once a day (between simulated days, or from a cron): it moves each
live campaign with a plan to the stage of the day, its audience ``plan_<campaign>_<stage>``
recomputed when due, and records it in ``DATA/plans/<advertiser>/<campaign>.jsonl``
(:func:`read_records`). Ad servers poll the campaigns' versions; their reload reads the
audience afresh.

Recipes (:mod:`allscene.matching.recipes`): an audience expression (``"@stage1_seed"``), the
clickers of campaigns and stages in the last days, a lookalike of a recipe, an intersection
or union of recipes. Nobody who opted out of personalized ads is in a plan audience: every
step keeps only the eligible people of :class:`~allscene.audiences.service.Audiences`.

Days are local days (``tz``: the platform's UTC+8 unless given, as flights and simulated days
are written); day 0 of a plan is the local date its first flight starts.

Examples
--------
>>> plan = Plan.model_validate({"stages": [
...     {"id": "seed", "days": 2, "audience": "@stage1_seed"},
...     {"id": "wave2", "audience": {"lookalike": {"clickers": {"stages": ["seed"]}},
...                                  "size": 3000}}]})
>>> [stage_at(plan, k).id for k in range(4)], summary(plan.stages[1].audience)
(['seed', 'seed', 'wave2', 'wave2'], 'lookalike(clickers(stages=seed), 3000)')
>>> check_recipe({"lookalike": {"clickers": {"day": 1}}, "size": 10})
Traceback (most recent call last):
...
ValueError: lookalike.clickers: unknown key 'day' (campaigns, stages, days)
"""


from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from allscene.matching.recipes import ID, Recipes, _walk, check_recipe, summary

__all__ = ["LOCAL", "Plan", "Recipes", "Stage", "StageRecord", "audience_name", "check_recipe",
           "current_stage", "read_records", "records_path", "run_plans", "stage_at", "summary"]

LOCAL = dt.timezone(dt.timedelta(hours=8))  # the platform's local time (delivery.decide.LOCAL)


# --- the plan as declared --------------------------------------------------------------------

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Model):
    """One stage: its id (recorded with each decision), how many days it runs, its recipe."""

    id: Annotated[str, Field(pattern=ID)]
    days: Annotated[int, Field(ge=1, le=366)] | None = None
    """Days the stage runs; the last stage may omit it (it runs to the end)."""
    audience: Any
    refresh: Literal["once", "daily"] = "once"
    """``once``: computed on the stage's first day; ``daily``: recomputed every day."""

    @field_validator("audience")
    @classmethod
    def _recipe(cls, v: Any) -> Any:
        return check_recipe(v)


class Plan(_Model):
    """A campaign's multi-stage optimization plan (the ``plan`` field of a campaign)."""

    stages: Annotated[list[Stage], Field(min_length=1, max_length=32)]

    @model_validator(mode="after")
    def _stages(self) -> Plan:
        ids = [s.id for s in self.stages]
        if len(set(ids)) != len(ids):
            raise ValueError("stages: stage ids repeat")
        for i, s in enumerate(self.stages[:-1]):
            if s.days is None:
                raise ValueError(f"stages.{i}.days: only the last stage may run without days")
        for i, s in enumerate(self.stages):
            for r in _walk(s.audience):
                spec = r.get("clickers") if isinstance(r, dict) else None
                if spec is None or "campaigns" in spec:
                    continue  # other campaigns' stages are theirs to name
                bad = [x for x in spec.get("stages", ()) if x not in ids[:i + 1]]
                if bad:
                    raise ValueError(f"stages.{i}.audience: clickers.stages: {bad[0]!r} is not "
                                     f"this stage or an earlier one ({', '.join(ids[:i + 1])})")
        return self


# --- which stage, which day --------------------------------------------------------------------

def stage_at(plan: Plan, offset: int) -> Stage | None:
    """The stage on day ``offset`` of the plan (0: its first day); past the declared days the
    last stage goes on; ``None`` before the plan starts."""
    if offset < 0:
        return None
    for s in plan.stages:
        if s.days is None or offset < s.days:
            return s
        offset -= s.days
    return plan.stages[-1]


def current_stage(campaign, day: dt.date, *, tz: dt.tzinfo | None = None) -> Stage | None:
    """The stage an active campaign with a plan is in on local ``day``, counted from the local
    date its first flight starts; ``None`` when it has no plan, is paused, or no flight
    covers any of the day."""
    plan, tz = getattr(campaign, "plan", None), tz or LOCAL
    lo = dt.datetime.combine(day, dt.time(), tz)
    if plan is None or campaign.status != "active" or not any(
            f.start < lo + dt.timedelta(days=1) and f.end > lo for f in campaign.flights):
        return None
    first = min(f.start for f in campaign.flights).astimezone(tz).date()
    return stage_at(plan, (day - first).days)


def audience_name(campaign_id: str, stage_id: str) -> str:
    """``plan_<campaign>_<stage>``, made a valid audience name (``-`` and length) if need be.

    >>> audience_name("cavalier", "stage1"), audience_name("spring-suv", "s1")
    ('plan_cavalier_stage1', 'plan_spring_suv_s1_51c0f2c8')
    """
    name = f"plan_{campaign_id}_{stage_id}"
    if re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", name):
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^a-z0-9_]', '_', name)[:55]}_{digest}"


# --- running the plans -------------------------------------------------------------------------

@dataclass(frozen=True)
class StageRecord:
    """What a plan did for one campaign on one day: the audience the campaign now targets
    (``None``: the recipe failed, see ``note``), its people, and how many people the recipe's
    lookalikes were grown from (``None``: it has none)."""

    advertiser: str
    campaign: str
    day: dt.date
    stage: str
    audience: str | None
    recipe: str
    people: int
    seed_people: int | None = None
    note: str | None = None


def records_path(data_dir: str | Path, advertiser: str, campaign: str) -> Path:
    return Path(data_dir) / "plans" / advertiser / f"{campaign}.jsonl"


def read_records(data_dir: str | Path, advertiser: str, campaign: str) -> list[StageRecord]:
    """A campaign's recorded stage computations by day (a day's latest for each stage)."""
    path = records_path(data_dir, advertiser, campaign)
    out = {}
    for d in (json.loads(x) for x in (path.read_text(encoding="utf-8").splitlines()
                                      if path.exists() else ()) if x.strip()):
        out[(d["day"], d["stage"])] = StageRecord(
            advertiser, campaign, dt.date.fromisoformat(d["day"]), d["stage"], d.get("audience"),
            d.get("recipe", ""), int(d.get("people", 0)), d.get("seed_people"), d.get("note"))
    return sorted(out.values(), key=lambda r: (r.day, r.stage))


def _record(data_dir: Path, rec: StageRecord) -> None:
    path = records_path(data_dir, rec.advertiser, rec.campaign)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {k: v for k, v in asdict(rec).items() if k not in ("advertiser", "campaign")}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line | {"day": rec.day.isoformat()}, ensure_ascii=False) + "\n")


def run_plans(settings, advertiser: str, day: dt.date, *, log=None,
              tz: dt.tzinfo | None = None) -> list[StageRecord]:
    """Move ``advertiser``'s campaigns with plans to their stage of local ``day``.

    For each active campaign whose flights cover the day and whose stage is due (its first
    day, every day with ``refresh: daily``, or whenever the campaign does not target the
    stage's audience yet): compute the recipe on the log up to the start of the day, save the
    people as audience ``plan_<campaign>_<stage>``, update the campaign's
    ``targeting.audiences`` and ``stage``, append to its record.

    Parameters
    ----------
    settings
        :class:`allscene.config.Settings`: its configuration store, ``DATA/derived`` tags
        and consent, audiences, and ``DATA/plans`` for the records.
    log
        The event log to read clicks from (default: ``settings.log_dir``'s).
    tz
        The time zone of days (default :data:`LOCAL`, UTC+8).

    Returns
    -------
    list of StageRecord
        One per stage computed (a failed recipe too, its ``note`` saying why).
    """
    from allscene.audiences.service import Audiences
    from allscene.audiences.store import AudienceStore
    from allscene.delivery.campaigns import CampaignService
    from allscene.storage import ParquetEventLog
    from allscene.storage.configdb import ConfigStore, ConflictError
    from allscene.storage.tables import TableStore

    tz = tz or LOCAL
    store = AudienceStore(settings.data_dir / "audiences")
    service = CampaignService(ConfigStore(settings.config_db),
                              audiences=lambda adv: {a.name for a in store.list(adv)})
    mine = service.list(advertiser)
    due = []
    for c, _ in mine:
        stage = current_stage(c, day, tz=tz)
        name = audience_name(c.id, stage.id) if stage else ""
        if stage and (stage.refresh == "daily" or c.stage != stage.id or list(
                c.targeting.audiences) != [name] or store.get(advertiser, name) is None):
            due.append((c.id, stage, name))
    if not due:
        return []
    tables = TableStore(settings.data_dir / "derived")
    consent = tables.read("consent") if "consent" in tables.names() else pa.table(
        {"person_id": pa.array([], pa.string()), "personalized_ads": pa.array([], pa.bool_())})
    aud = Audiences(tables.read("tag_table"), consent, store, advertiser=advertiser)
    log = log if log is not None else ParquetEventLog(settings.log_dir)
    start, out = dt.datetime.combine(day, dt.time(), tz), []
    for cid, stage, name in due:
        recipes = Recipes(aud, log, cid, start, own_campaigns={c.id for c, _ in mine})
        try:
            rec = _apply(service, aud, recipes, day, stage, name)
        except (ValueError, ConflictError) as exc:  # the next run tries again
            rec = StageRecord(advertiser, cid, day, stage.id, None, summary(stage.audience), 0,
                              note=f"not run: {exc}")
        _record(settings.data_dir, rec)
        out.append(rec)
    return out


def _apply(service, aud, recipes: Recipes, day: dt.date, stage: Stage, name: str) -> StageRecord:
    """Compute a stage's people, save them as audience ``name``, point the campaign at it."""
    adv, cid = aud.advertiser, recipes.campaign_id
    rows = recipes.people(stage.audience) & aud.eligible
    if len(rows) < aud.min_size:
        recipes.notes.append(f"fewer than {aud.min_size} people: too few to target, the "
                             "campaign reaches no one in this stage")
    seeds = None if recipes.seeds is None else len(recipes.seeds)
    aud.save_members(name, "package" if seeds is None else "lookalike",
                     np.array(rows.to_array(), dtype=np.int64), np.ones(len(rows)),
                     {"plan": {"campaign": cid, "stage": stage.id, "day": day.isoformat(),
                               "recipe": stage.audience}, "seed_people": seeds}, replace=True)
    got = service.get(adv, cid)  # afresh: the recipe took a while
    if got is not None:
        doc = got[0].model_dump(mode="json")
        doc["targeting"]["audiences"], doc["stage"] = [name], stage.id
        service.update(adv, doc, got[1])
    return StageRecord(adv, cid, day, stage.id, name, summary(stage.audience), len(rows),
                       seeds, "; ".join(recipes.notes) or None)
