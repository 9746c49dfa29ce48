"""Badge challenges: the default ladder, a workout lights every badge it beats, rewards by
number of badges, impossible workouts rejected and short ones ignored, challenge validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from allscene.engagement.badges import (
    Challenge,
    Workout,
    earned,
    evaluate,
    format_pace,
    impossible,
    lit_by,
    pace_s_per_km,
    parse_pace,
    rewards,
)

T = datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
LADDER = ["tortoise", "rabbit", "deer", "cheetah", "wolf"]


def run(person: str, km: float, pace: str, ts: datetime = T) -> Workout:
    """A run of ``km`` at ``pace`` (m:ss per km)."""
    return Workout(person, km * 1000, parse_pace(pace) * km, ts)


def test_default_ladder_and_rewards():
    c = Challenge()
    assert list(c.names) == LADDER
    assert [format_pace(b.max_pace_s_per_km) for b in c.badges] == [
        "10:00", "7:30", "6:00", "5:00", "4:15"]
    assert c.min_distance_m == 1000
    assert c.rewards == {1: "coupon_10", 3: "test_drive_gift", 5: "grand_draw_entry"}


@pytest.mark.parametrize(("pace", "lit"), [
    ("10:01", []),
    ("10:00", LADDER[:1]),  # a pace equal to the limit beats it
    ("7:30", LADDER[:2]),
    ("6:30", LADDER[:2]),
    ("5:59", LADDER[:3]),
    ("5:00", LADDER[:4]),
    ("4:16", LADDER[:4]),
    ("4:15", LADDER),
    ("3:05", LADDER),
])
def test_a_workout_lights_every_badge_it_beats(pace, lit):
    assert lit_by(Challenge(), run("p", 5, pace)) == set(lit)


def test_exact_limits_without_float_drift():
    w = Workout("p", 5000, 1500, T)  # 5 km in 25:00 = exactly 5:00/km
    assert pace_s_per_km(w) == 300 and "cheetah" in lit_by(Challenge(), w)
    w = Workout("p", 4200, 0.1 + 0.2 + 1070.7, T)  # 4.2 km in ~1071 s = 4:15/km
    assert "wolf" in lit_by(Challenge(), w)


def test_badges_accumulate_over_workouts_and_rewards_follow():
    workouts = [
        run("ann", 3, "9:00"),
        run("ann", 5, "5:40", T + timedelta(days=1)),
        run("ann", 10, "4:10", T + timedelta(days=2)),
        run("bob", 2, "7:00"),
        run("bob", 1, "11:00"),
        run("cy", 1.5, "4:50"),
        run("dee", 0.5, "4:00"),  # too short: ignored, dee earns nothing
    ]
    ev = evaluate(Challenge(), workouts)
    assert ev.badges == {"ann": set(LADDER), "bob": {"tortoise", "rabbit"},
                         "cy": {"tortoise", "rabbit", "deer", "cheetah"}}
    assert earned(Challenge(), workouts) == ev.badges
    assert ev.best_pace["ann"] == pytest.approx(250) and ev.best_pace["bob"] == 420
    assert [x.workout.person for x in ev.ignored] == ["dee"] and ev.rejected == []
    assert rewards(Challenge(), ev.badges) == {
        "ann": ["coupon_10", "test_drive_gift", "grand_draw_entry"],
        "bob": ["coupon_10"],
        "cy": ["coupon_10", "test_drive_gift"],
    }
    assert rewards(Challenge(), {"dee": set()}) == {"dee": []}
    with pytest.raises(ValueError, match="unknown badge"):
        rewards(Challenge(), {"x": {"unicorn"}})


@pytest.mark.parametrize(("workout", "reason"), [
    (Workout("p", 0, 600, T), "distance_m: 0 is not a positive number"),
    (Workout("p", -5000, 600, T), "distance_m: -5000"),
    (Workout("p", 5000, 0, T), "duration_s: 0 is not a positive number"),
    (Workout("p", 5000, -1, T), "duration_s: -1"),
    (Workout("p", float("nan"), 600, T), "distance_m: nan"),
    (Workout("p", float("inf"), 600, T), "distance_m: inf"),
    (Workout("p", 5000, 500, T), "1:40/km is faster than 2:00/km: not a human run"),
    (Workout("p", 42195, 3600, T), "faster than 2:00/km"),  # a marathon in an hour
    (Workout("p", 5000, 1500, datetime(2024, 5, 1)), "time zone"),
    (Workout("", 5000, 1500, T), "person"),
])
def test_impossible_workouts_are_rejected_not_counted(workout, reason):
    assert reason in (impossible(workout) or "")
    ev = evaluate(Challenge(), [workout, run("p", 2, "9:00")])
    assert [x.workout for x in ev.rejected] == [workout] and reason in ev.rejected[0].reason
    assert ev.badges.get("p", set()) <= {"tortoise"}  # only the valid run counted


def test_two_minutes_per_km_is_the_limit():
    assert impossible(Workout("p", 1000, 120, T)) is None
    assert impossible(Workout("p", 1000, 119.9, T)) is not None


def test_window_and_minimum_distance():
    c = Challenge(starts=T, ends=T + timedelta(days=7), min_distance_m=3000)
    ev = evaluate(c, [run("a", 5, "4:00", T - timedelta(seconds=1)),
                      run("a", 5, "4:00", T + timedelta(days=7)),
                      run("a", 2.999, "4:00", T + timedelta(days=1)),
                      run("a", 3, "5:30", T + timedelta(days=1))])
    assert ev.badges == {"a": {"tortoise", "rabbit", "deer"}}
    assert [x.reason.split()[-1] for x in ev.ignored] == ["challenge", "challenge", "count"]


def test_custom_challenge_and_pace_strings():
    c = Challenge(badges=[{"name": "walker", "max_pace_s_per_km": "12:00"},
                          {"name": "runner", "max_pace_s_per_km": 360}],
                  min_distance_m=500, rewards={2: "both"})
    assert earned(c, [run("p", 0.6, "6:00")]) == {"p": {"walker", "runner"}}
    assert rewards(c, {"p": {"walker"}, "q": {"walker", "runner"}}) == {"p": [],
                                                                         "q": ["both"]}
    assert parse_pace("4:15") == 255 and format_pace(255) == "4:15"
    with pytest.raises(ValueError, match="m:ss"):
        parse_pace("4:75")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"badges": []}, "at least 1"),
    ({"badges": [{"name": "a", "max_pace_s_per_km": 300},
                 {"name": "b", "max_pace_s_per_km": 300}]}, "not harder than"),
    ({"badges": [{"name": "a", "max_pace_s_per_km": 300},
                 {"name": "a", "max_pace_s_per_km": 200}]}, "names repeat"),
    ({"badges": [{"name": "a", "max_pace_s_per_km": "fast"}]}, "m:ss"),
    ({"badges": [{"name": "a", "max_pace_s_per_km": 0}]}, "greater than 0"),
    ({"rewards": {6: "x"}}, "expected 1 to 5"),
    ({"rewards": {0: "x"}}, "expected 1 to 5"),
    ({"min_distance_m": -1}, "greater than or equal to 0"),
    ({"starts": T, "ends": T}, "ends before it starts"),
    ({"starts": datetime(2024, 5, 1)}, "timezone"),
    ({"colour": "red"}, "Extra inputs"),
])
def test_bad_challenges_are_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        Challenge(**kwargs)
