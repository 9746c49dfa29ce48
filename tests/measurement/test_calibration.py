"""Calibration against the simulated world's truth: over 30 seeds, the 95% interval of the
holdout lift holds the true effect in at least 27 runs, and the search lift among exposed
non-clickers recovers the true extra searches."""

import orjson
import pyarrow as pa
import pytest

from allscene.events.ingest import Ingestor
from allscene.measurement.incrementality import holdout_lift, search_did
from allscene.measurement.metrics import MeasureError
from allscene.storage import ParquetEventLog
from allscene.world.adsim import AdSim, simulate
from tests.factories import NOW

TERMS = ["科鲁泽", "chevrolet", "雪佛兰"]
SIM = AdSim(people=3000)
PEOPLE = pa.table({"device_id": [f"ph{i}" for i in range(SIM.people)],
                   "person_id": [f"p{i}" for i in range(SIM.people)]})


def _log(path, events):
    log = ParquetEventLog(path)
    body = b"\n".join(orjson.dumps(e) for e in events)
    report = Ingestor(log, now=NOW.replace(year=2027)).ingest_body(body, "sim")
    assert report.accepted == len(events), report.as_dict()
    return log


def test_lift_intervals_are_calibrated_and_search_lift_recovers_the_truth(tmp_path):
    covered = covered_search = 0
    estimates, truths = [], []
    for seed in range(30):
        events, truth = simulate(SIM, seed)
        log = _log(tmp_path / f"log{seed}", events)
        inc = holdout_lift(log, SIM.advertiser, [SIM.campaign], people=PEOPLE,
                           search_terms=TERMS)
        assert (inc.exposed, inc.held_out) == (truth["exposed"], truth["held_out"])
        c = inc.lifts["conversion"].absolute
        covered += c.low <= truth["conversion_ate"] <= c.high
        did = search_did(log, SIM.advertiser, [SIM.campaign], TERMS, people=PEOPLE)
        assert did.comparison == "held-out people"
        d = did.did.absolute
        covered_search += d.low <= truth["searches_per_exposed_non_clicker"] <= d.high
        estimates.append(d.value)
        truths.append(truth["searches_per_exposed_non_clicker"])
    assert covered >= 27, covered
    assert covered_search >= 27, covered_search
    mean_est, mean_truth = sum(estimates) / 30, sum(truths) / 30
    assert mean_est == pytest.approx(mean_truth, rel=0.1)


def test_the_held_out_arm_is_needed_and_search_terms_too(tmp_path):
    events, _ = simulate(AdSim(people=200, holdout=0.0), 1)
    log = _log(tmp_path / "log", events)
    inc = holdout_lift(log, "chevrolet", ["cavalier"], people=PEOPLE)
    assert inc.held_out == 0 and "holdout share" in inc.problems["all"]
    with pytest.raises(MeasureError, match="search_terms"):
        search_did(log, "chevrolet", ["cavalier"], [], people=PEOPLE)
    # Without a holdout the comparison is the people never exposed (none here: too few).
    with pytest.raises(MeasureError, match="too few people"):
        search_did(log, "chevrolet", ["cavalier"], TERMS, people=PEOPLE.slice(0, 200))
