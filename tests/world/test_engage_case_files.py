"""Engagement case files: the shipped ones load, and a bad one is refused with an error
naming the file and what is wrong."""

from __future__ import annotations

import pytest
import yaml

from allscene.world.replay import CASES_DIR, Case

GOOD = yaml.safe_load((CASES_DIR / "yili.yaml").read_text(encoding="utf-8"))


def _load(tmp_path, doc):
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return Case.load(path)


def test_the_engagement_cases_load_with_their_activities():
    for name, activity in (("kfc", "kfc_envelopes"), ("buick", "buick_badges"),
                           ("qunar", "qunar_theme"), ("yili", "yili_venue")):
        case = Case.load(CASES_DIR / f"{name}.yaml")
        assert [a["id"] for a in case.activities] == [activity]
        assert any(c["metric"] == "ledger" for c in case.doc["claims"])


@pytest.mark.parametrize(("change", "why"), [
    (lambda d: d["activities"][0]["codes"].update(count=0),
     r"activities\[0\] \(yili_venue\): codes.count: Input should be greater than or equal"),
    (lambda d: d["activities"][0]["lottery"]["odds"].update(jackpot=0.1),
     r"lottery.odds: no prize 'jackpot' in prizes"),
    (lambda d: d["activities"][0].update(advertiser="mengniu"),
     r"an activity is a mapping of the case's advertiser"),
    (lambda d: d.update(packaging={"nope": {"item": "牛奶"}}),
     r"packaging: 'nope' is not an activity of this case with packaging codes"),
    (lambda d: d.update(packaging={"yili_venue": "牛奶"}),
     r"packaging.yili_venue: expected \{item: <product name>\}"),
    (lambda d: d["claims"].append({"claim": "x", "metric": "ledger", "activities": ["x"]}),
     r"claims\[1\]: activities: \['x'\] not in this case"),
    (lambda d: d["claims"].append({"claim": "x", "metric": "lead_rate",
                                   "order": ["yili_venue/draw", "nowhere"]}),
     r"claims\[1\]: order: 'nowhere' is not a campaign or activity of this case"),
    (lambda d: d["claims"].append({"claim": "x", "metric": "ctr", "order": ["yili_venue"]}),
     r"claims\[1\]: order: list two or more"),
    (lambda d: d["claims"].append({"metric": "ctr"}), r"claims\[1\]: a claim is"),
])
def test_a_bad_case_file_names_what_is_wrong(tmp_path, change, why):
    doc = yaml.safe_load(yaml.safe_dump(GOOD, allow_unicode=True))
    change(doc)
    with pytest.raises(ValueError, match=why) as exc:
        _load(tmp_path, doc)
    assert str(tmp_path / "case.yaml") in str(exc.value)
