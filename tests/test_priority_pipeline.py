"""The collection list from a real run: every rule holds on every row; a re-run replaces the day exactly."""

import csv
import hashlib
import sqlite3
from datetime import date

import duckdb

from orchestration.policy import priority_policy
from orchestration.simulator import simulate

BOOK = {"loans": 1500, "start": date(2025, 1, 1), "end": date(2025, 6, 30), "seed": 4}
DAY = "2025-06-30"


def test_list_rules_hold_on_every_row_and_rerun_replaces_the_day(arrears_home):
    from orchestration.cli import run_dates

    simulate(arrears_home / "source", **BOOK)
    run_dates([DAY])
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
