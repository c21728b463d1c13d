"""The collection list from a real run: every rule holds on every row; a re-run replaces the day exactly;
the effectiveness mart credits each action to the strategy of the list that drove it."""

import csv
import hashlib
import sqlite3
from collections import defaultdict
from datetime import date

import duckdb

from orchestration.policy import priority_policy
from orchestration.simulator import simulate

BOOK = {"loans": 1500, "start": date(2025, 1, 1), "end": date(2025, 6, 30), "seed": 4}
DAY = "2025-06-30"
PREVIOUS_DAY = "2025-06-29"


def test_list_rules_hold_on_every_row_rerun_replaces_the_day_and_strategies_are_compared(arrears_home):
    from orchestration.cli import run_dates

    simulate(arrears_home / "source", **BOOK)
    run_dates([PREVIOUS_DAY, DAY])
    path = arrears_home / "exports" / "collection_priority" / f"collection_priority_{DAY}.csv"
    first_bytes = path.read_bytes()
    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) > 50
    policy = priority_policy()

    src = sqlite3.connect(arrears_home / "source" / "core_banking.sqlite")
    dnc = {c: v for c, v in src.execute("SELECT customer_id, do_not_contact FROM customers")}
    calls = {lid: n for lid, n in src.execute(
        "SELECT loan_id, count(*) FROM collection_actions WHERE channel = 'call' "
        "AND date(action_at) BETWEEN date(?, '-6 days') AND ? GROUP BY loan_id", [DAY, DAY])}
    with duckdb.connect(str(arrears_home / "bi" / "arrears.duckdb"), read_only=True) as bi:
        overdue = {r[0] for r in bi.execute(
            "SELECT loan_id FROM marts.fct_loan_delinquency_daily WHERE as_of_date = ? AND dpd >= 1", [DAY]).fetchall()}
    listed = {r["loan_id"] for r in rows}
    assert overdue <= listed  # every loan with dpd >= 1 is on the list

    assert [int(r["priority_rank"]) for r in rows] == list(range(1, len(rows) + 1))
    keys = [(-float(r["priority_score"]), -int(r["dpd"]), r["loan_id"].encode()) for r in rows]
    assert keys == sorted(keys)
    calls_used = visits_used = 0
    for r in rows:
        score, principal = float(r["risk_score"]), float(r["outstanding_principal"])
        assert abs(float(r["priority_score"]) - score * principal) < 1e-6 * max(1.0, score * principal)
        tier = "high" if score >= policy.tier_high_from else "medium" if score >= policy.tier_medium_from else "low"
        assert r["risk_tier"] == tier
        bucket = int(hashlib.sha256(r["loan_id"].encode()).hexdigest()[:8], 16) % 100
        assert r["strategy"] == ("challenger" if bucket < policy.challenger_share else "champion")
        action = r["recommended_action"]
        if dnc.get(r["customer_id"]) in (1, None):
            assert action == "hold", r
        else:
            assert action != "hold"
        if calls.get(r["loan_id"], 0) >= policy.call_cap_per_7_days:
            assert action not in ("call", "call_with_plan_offer"), r
        calls_used += action in ("call", "call_with_plan_offer")
        visits_used += action == "field_visit"
        if action in ("call", "call_with_plan_offer", "field_visit"):
            assert 8 <= int(r["suggested_contact_hour"]) <= 20
        else:
            assert r["suggested_contact_hour"] == ""
        assert r["capacity_limited"] in ("true", "false")
        if r["capacity_limited"] == "true":
            assert action == "sms"
        if int(r["dpd"]) == 0:  # early reminder: unpaid installment due within 3 days and a high score
            assert tier == "high"
        assert r["overdue_amount"].count(".") == 1 and len(r["overdue_amount"].split(".")[1]) == 2
        assert r["reasons"]
    assert calls_used <= policy.calls_per_day and visits_used <= policy.field_visits_per_day

    ops = sqlite3.connect(arrears_home / "ops" / "operations.sqlite")
    in_ops = ops.execute("SELECT loan_id, priority_rank, recommended_action FROM collection_priority_list "
                         "WHERE as_of_date = ? ORDER BY priority_rank", [DAY]).fetchall()
    assert in_ops == [(r["loan_id"], int(r["priority_rank"]), r["recommended_action"]) for r in rows]
    ops.close()

    run_dates([DAY])  # re-running the day replaces its list exactly
    assert path.read_bytes() == first_bytes
    ops = sqlite3.connect(arrears_home / "ops" / "operations.sqlite")
    assert ops.execute("SELECT count(*) FROM collection_priority_list WHERE as_of_date = ?", [DAY]).fetchone()[0] == len(rows)
    _assert_effectiveness_credits_the_list_that_drove_each_action(arrears_home)


def _read_list(arrears_home, day):
    path = arrears_home / "exports" / "collection_priority" / f"collection_priority_{day}.csv"
    with path.open(encoding="utf-8") as f:
        return {r["loan_id"]: r["strategy"] for r in csv.DictReader(f)}


def _assert_effectiveness_credits_the_list_that_drove_each_action(arrears_home):
    """Only the lists of 06-29 and 06-30 exist: June's champion and challenger rows are exactly the
    actions of 06-30 on loans of the 06-29 list, and June (closed on 06-30) has their outcomes."""
    worked = _read_list(arrears_home, PREVIOUS_DAY)
    assert {"champion", "challenger"} <= set(worked.values())

    src = sqlite3.connect(arrears_home / "source" / "core_banking.sqlite")
    expected = defaultdict(lambda: [0, set()])  # (channel, agent, strategy) -> [call/visit actions, loans]
    for loan_id, channel, agent in src.execute(
            "SELECT loan_id, channel, coalesce(agent_id, 'system') FROM collection_actions "
            "WHERE date(action_at) = ?", [DAY]):
        if loan_id in worked:
            cell = expected[(channel, agent, worked[loan_id])]
            cell[0] += channel in ("call", "field_visit")
            cell[1].add(loan_id)
    assert expected, "the simulator should act on some listed loans on 06-30"

    with duckdb.connect(str(arrears_home / "bi" / "arrears.duckdb"), read_only=True) as bi:
        rows = bi.execute(
            "SELECT channel, agent_id, strategy, actions, loans_handled, loans_on_book_at_start, "
            "loans_rolled_forward, loans_m1_at_start, loans_cured, overdue_at_start, collected, recovery_rate "
            "FROM marts.mart_collection_effectiveness WHERE month = DATE '2025-06-01' "
            "AND strategy <> 'none'").fetchall()
    got = {(c, a, s): (n, h) for c, a, s, n, h, *_ in rows}
    assert got == {k: (n, len(loans)) for k, (n, loans) in expected.items()}
    for *_, handled, on_book, rolled, m1, cured, overdue, collected, recovery in rows:
        assert on_book is not None and 0 <= rolled <= on_book <= handled  # June has ended on 06-30
        assert 0 <= cured <= m1 <= on_book
        assert 0 <= collected <= overdue
        assert recovery is None if overdue == 0 else recovery == float(collected) / float(overdue)
