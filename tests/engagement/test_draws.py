"""The auditable lottery: reproducible draws, commit-reveal, replay of a finished log, the
inventory rule, the declared odds over 1,000,000 draws, bad input, and the audit CLI."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from allscene.engagement.cli_audit import main
from allscene.engagement.draws import (
    SCALE,
    DrawLogError,
    Mismatch,
    Odds,
    award,
    check_reveal,
    commitment,
    draw_u,
    new_seed,
    pick,
    rate_interval,
    read_draw_log,
    replay,
)

SEED = hashlib.sha256(b"allscene test lottery").digest()
ACTIVITY = "qunar-lockscreen-2024"
ODDS = {"bali_trip": 0.0001, "ticket_coupon": 0.05, "hotel_voucher": 0.01}
INVENTORY = {"bali_trip": 2, "ticket_coupon": 400}


def run_lottery(seed: bytes, n: int, inventory: dict[str, int]) -> list[dict]:
    """What the live store logs: draws in seq order, inventory taken as it goes."""
    odds, left = Odds.of(ODDS), dict(inventory)
    return [{"seq": i + 1, "draw_id": f"req-{i:05d}",
             "prize": award(odds, draw_u(seed, ACTIVITY, f"req-{i:05d}"), left)}
            for i in range(n)]


def test_same_seed_and_ids_give_the_same_outcomes():
    odds = Odds.of(ODDS)
    a = [pick(odds, draw_u(SEED, ACTIVITY, f"d{i}")) for i in range(2000)]
    b = [pick(Odds.of(dict(reversed(ODDS.items()))), draw_u(SEED, ACTIVITY, f"d{i}"))
         for i in range(2000)]
    assert a == b  # the layout does not depend on the map's order
    assert draw_u(SEED, ACTIVITY, "d1") != draw_u(SEED, ACTIVITY, "d2")
    assert draw_u(SEED, ACTIVITY, "d1") != draw_u(SEED, "other", "d1")
    assert draw_u(SEED, ACTIVITY, "d1") != draw_u(new_seed(), ACTIVITY, "d1")
    assert all(0 <= draw_u(SEED, ACTIVITY, f"d{i}") < SCALE for i in range(100))
    with pytest.raises(ValueError, match="newline"):
        draw_u(SEED, "a\nb", "c")


def test_commitment_and_reveal():
    seed = new_seed()
    assert len(seed) == 32 and new_seed() != seed
    c = commitment(seed)
    assert c == hashlib.sha256(seed).hexdigest() and len(c) == 64
    assert check_reveal(seed, c) and check_reveal(seed, c.upper() + "\n")
    assert not check_reveal(new_seed(), c)
    assert not check_reveal(seed, c[:-1] + ("0" if c[-1] != "0" else "1"))


def test_thresholds_are_exact_integers():
    odds = Odds.of({"a": "1/3", "b": "1/3", "c": "1/3"})
    assert odds.thresholds[-1] == SCALE and odds.no_prize == 0
    assert Odds.of({"a": 0.1, "b": 0.2, "c": 0.7}).no_prize == 0  # floats read as decimals
    odds = Odds.of({"a": 0.5})
    assert odds.thresholds == (SCALE // 2,)
    assert pick(odds, SCALE // 2 - 1) == "a" and pick(odds, SCALE // 2) is None
    with pytest.raises(ValueError):
        pick(odds, SCALE)


@pytest.mark.parametrize(("odds", "message"), [
    ({}, "non-empty map"),
    ({"a": 0}, r"not in \(0, 1\]"),
    ({"a": -0.1}, r"not in \(0, 1\]"),
    ({"a": 1.5}, r"not in \(0, 1\]"),
    ({"a": 0.7, "b": 0.4}, "sum to 1.1, more than 1"),
    ({"a": "lots"}, "not a probability"),
    ({"a": None}, "expected a number"),
    ({"a": True}, "expected a number"),
    ({"a": float("nan")}, "not a probability"),
    ({"": 0.1}, "non-empty string"),
    ({"a": 1e-20}, "below 1/2"),
])
def test_bad_odds_are_refused(odds, message):
    with pytest.raises(ValueError, match=message):
        Odds.of(odds)


def test_inventory_rule_sold_out_wins_nothing_no_redraw():
    odds = Odds.of({"a": 0.5})
    wins = [i for i in range(200) if pick(odds, draw_u(SEED, ACTIVITY, f"x{i}")) == "a"]
    records = [{"seq": i, "draw_id": f"x{i}", "prize": None} for i in range(200)]
    for i in wins[:3]:
        records[i]["prize"] = "a"  # only the first three winners in seq order get one
    audit = replay(SEED, ACTIVITY, odds, {"a": 3}, reversed(records))  # replay sorts by seq
    assert audit.ok, audit.mismatches
    assert audit.winners == {"a": 3} and audit.left == {"a": 0}
    assert audit.sold_out == len(wins) - 3
    # Awarding a later winner instead of an earlier one breaks the rule and is caught.
    records[wins[2]]["prize"], records[wins[3]]["prize"] = None, "a"
    audit = replay(SEED, ACTIVITY, odds, {"a": 3}, records)
    assert audit.mismatches == [Mismatch(wins[2], f"x{wins[2]}", None, "a"),
                                Mismatch(wins[3], f"x{wins[3]}", "a", None)]
    # A prize left out of the inventory is unlimited; one not in the odds is an error.
    assert replay(SEED, ACTIVITY, odds, {}, records).winners == {"a": len(wins)}
    with pytest.raises(ValueError, match="not a prize"):
        replay(SEED, ACTIVITY, odds, {"zz": 1}, records)
    with pytest.raises(ValueError, match="recorded twice"):
        replay(SEED, ACTIVITY, odds, {}, records + [dict(records[0], draw_id="new")])


def test_finished_lottery_replays_ok_and_tampering_is_caught():
    log = run_lottery(SEED, 20_000, INVENTORY)
    audit = replay(SEED, ACTIVITY, Odds.of(ODDS), INVENTORY, log)
    assert audit.ok and audit.draws == 20_000 and not audit.mismatches
    assert audit.winners["bali_trip"] <= 2 and audit.left["ticket_coupon"] == 0
    assert audit.sold_out > 0  # 400 coupons run out before 20,000 draws at 5%
    counted = Counter(r["prize"] for r in log if r["prize"])
    assert audit.winners == {p: counted.get(p, 0) for p in ODDS}

    # The operator hands a prize to a draw that lost.
    tampered = [dict(r) for r in log]
    loser = next(r for r in tampered if r["prize"] is None)
    loser["prize"] = "hotel_voucher"
    bad = replay(SEED, ACTIVITY, Odds.of(ODDS), INVENTORY, tampered)
    assert not bad.ok and bad.mismatches == [
        Mismatch(loser["seq"], loser["draw_id"], "hotel_voucher", None)]
    # A wrong seed, or different odds, does not reproduce the log.
    assert not replay(new_seed(), ACTIVITY, Odds.of(ODDS), INVENTORY, log).ok
    assert not replay(SEED, ACTIVITY, Odds.of({**ODDS, "bali_trip": 0.2}), INVENTORY, log).ok
    # A draw id logged twice is reported.
    dup = log + [dict(log[0], seq=30_000)]
    assert replay(SEED, ACTIVITY, Odds.of(ODDS), {}, dup).duplicate_draw_ids == ["req-00000"]


def test_one_million_draws_match_the_declared_odds():
    odds = Odds.of({"grand": 0.00005, "bali_trip": 0.0001, "hotel_voucher": 0.01,
                    "ticket_coupon": 0.05, "points_10": 0.25})
    n = 1_000_000
    counts = Counter(pick(odds, draw_u(SEED, ACTIVITY, str(i))) for i in range(n))
    assert sum(counts.values()) == n
    for prize, p in zip(odds.prizes, odds.probabilities, strict=True):
        lo, hi = rate_interval(counts[prize], n, 0.99)
        assert lo <= p <= hi, (prize, counts[prize], float(p), lo, hi)
    lo, hi = rate_interval(counts[None], n, 0.99)
    assert lo <= odds.no_prize <= hi
    assert counts["grand"] > 0


def test_rate_interval():
    lo, hi = rate_interval(50, 1000, 0.95)
    assert lo < 0.05 < hi and hi - lo < 0.03
    assert rate_interval(0, 100)[0] == 0.0 and rate_interval(100, 100)[1] == 1.0
    assert rate_interval(10, 100, 0.99)[1] > rate_interval(10, 100, 0.9)[1]
    for k, n in [(-1, 10), (11, 10), (0, 0)]:
        with pytest.raises(ValueError):
            rate_interval(k, n)
    assert Fraction(1, 10) == Odds.of({"a": 0.1}).probability("a")


# --- reading logs ---------------------------------------------------------------------------

def write_csv(path: Path, log: list[dict]) -> Path:
    lines = ["seq,draw_id,prize"] + [f"{r['seq']},{r['draw_id']},{r['prize'] or ''}"
                                     for r in log]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_draw_log_csv_and_jsonl(tmp_path):
    log = run_lottery(SEED, 300, INVENTORY)
    assert read_draw_log(write_csv(tmp_path / "log.csv", log)) == log
    jl = tmp_path / "log.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in log) + "\n\n")
    assert read_draw_log(jl) == log
    noext = tmp_path / "log"
    noext.write_text(jl.read_text())
    assert read_draw_log(noext) == log


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.csv", "seq,draw_id\n1,a\n", r"a\.csv:1: header lacks column\(s\) prize"),
    ("a.csv", "seq,draw_id,prize\n1,a,\nx,b,\n", r"a\.csv:3: column 'seq': 'x' is not"),
    ("a.csv", "seq,draw_id,prize\n1,,\n", r"a\.csv:2: column 'draw_id'"),
    ("a.csv", "seq,draw_id,prize\n1,a\n", r"a\.csv:2: expected 3 fields"),
    ("a.jsonl", '{"seq": 1, "draw_id": "a", "prize": null}\n{"seq": 2,', r"a\.jsonl:2: not JSON"),
    ("a.jsonl", '{"seq": "1", "draw_id": "a", "prize": null}\n', r"a\.jsonl:1: column 'seq'"),
    ("a.jsonl", '{"seq": 1, "draw_id": "a"}\n', r"a\.jsonl:1: column 'prize' is missing"),
    ("a.jsonl", '{"seq": 1, "draw_id": "a", "prize": 3}\n', r"a\.jsonl:1: column 'prize'"),
])
def test_read_draw_log_errors_name_line_and_column(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(DrawLogError, match=message):
        read_draw_log(tmp_path / name)
    with pytest.raises(DrawLogError, match="cannot read"):
        read_draw_log(tmp_path / "missing.csv")


# --- the CLI --------------------------------------------------------------------------------

def cli_args(log: Path, **over: str) -> list[str]:
    opts = {"--seed": SEED.hex(), "--commitment": commitment(SEED), "--activity": ACTIVITY,
            "--odds": json.dumps(ODDS), "--inventory": json.dumps(INVENTORY), **over}
    return [str(log)] + [x for kv in opts.items() for x in kv]


def test_cli_exit_codes(tmp_path, capsys):
    log = run_lottery(SEED, 5000, INVENTORY)
    path = write_csv(tmp_path / "draws.csv", log)
    assert main(cli_args(path)) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "ticket_coupon" in out and "5,000 draws" in out

    (tmp_path / "odds.json").write_text(json.dumps(ODDS))
    assert main(cli_args(path, **{"--odds": f"@{tmp_path / 'odds.json'}"}) + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["draws"] == 5000 and report["mismatches"] == []
    assert report["winners"] == dict(Counter(r["prize"] for r in log if r["prize"])) | {
        p: 0 for p in ODDS if not any(r["prize"] == p for r in log)}

    log[10]["prize"] = "bali_trip"
    tampered = write_csv(tmp_path / "tampered.csv", log)
    assert main(cli_args(tampered)) == 1
    assert "mismatch" in capsys.readouterr().out
    assert main(cli_args(tampered) + ["--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["mismatches"][0]["seq"] == 11

    other = new_seed()  # a revealed seed that is not the committed one
    assert main(cli_args(path, **{"--seed": other.hex()})) == 1
    assert "does not match the commitment" in capsys.readouterr().err


@pytest.mark.parametrize("over", [
    {"--seed": "zz"},
    {"--commitment": "abc"},
    {"--odds": "{not json"},
    {"--odds": "[0.1]"},
    {"--odds": '{"a": 2}'},
    {"--odds": "@/nonexistent/odds.json"},
    {"--inventory": '{"nope": 1}'},
    {"--inventory": '{"bali_trip": -1}'},
])
def test_cli_bad_input_exits_2(tmp_path, capsys, over):
    path = write_csv(tmp_path / "draws.csv", run_lottery(SEED, 10, INVENTORY))
    assert main(cli_args(path, **over)) == 2
    assert "audit-draws:" in capsys.readouterr().err


def test_cli_bad_log_and_usage_exit_2(tmp_path, capsys):
    assert main(cli_args(tmp_path / "missing.csv")) == 2
    (tmp_path / "bad.csv").write_text("seq,draw_id,prize\nx,a,\n")
    assert main(cli_args(tmp_path / "bad.csv")) == 2
    assert "bad.csv:2: column 'seq'" in capsys.readouterr().err
    assert main([]) == 2  # missing arguments


def test_replay_counts_picks_against_the_odds_beside_the_awards():
    log = run_lottery(SEED, 20_000, INVENTORY)
    audit = replay(SEED, ACTIVITY, Odds.of(ODDS), INVENTORY, log)
    assert audit.winners["ticket_coupon"] == 400 < audit.picked["ticket_coupon"]
    assert audit.sold_out == sum(audit.picked.values()) - sum(audit.winners.values())
    lo, hi = rate_interval(audit.picked["ticket_coupon"], audit.draws)
    assert lo <= 0.05 <= hi
