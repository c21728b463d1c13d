"""Section 7 of business_rules.md pinned on hand-made loans."""

import hashlib

import pandas as pd
import pytest

from ml_assets.priority import PriorityPolicy, best_hour, build_priority_list, strategy_for
from orchestration.policy import strategy_matrix

MATRIX = strategy_matrix()


def _policy(**kw) -> PriorityPolicy:
    return PriorityPolicy(matrix=MATRIX, **kw)


def _champion_ids(n: int, challenger=False) -> list[str]:
    """Loan ids that hash to the champion (or challenger) group at share 10."""
    out, i = [], 0
    while len(out) < n:
        lid = f"L{i:06d}"
        if (strategy_for(lid, 10) == "challenger") == challenger:
            out.append(lid)
        i += 1
    return out


def _loans(rows: list[dict]) -> pd.DataFrame:
    base = {"customer_id": "C1", "dpd": 10, "bucket": "M1", "outstanding_principal": 1000.0, "risk_score": 0.5,
            "do_not_contact": 0, "calls_last_7_days": 0, "top_features": "2 missed installments"}
    return pd.DataFrame([base | r for r in rows])


NO_HOURS = pd.DataFrame({"customer_id": pd.Series([], dtype=object), "hour": [], "actions": [], "contacts": []})


def test_rank_by_balance_at_risk_then_dpd_then_loan_id():
    a, b, c, d = _champion_ids(4)
    df = build_priority_list(_loans([
        {"loan_id": d, "risk_score": 0.5, "outstanding_principal": 1000.0, "dpd": 5},
        {"loan_id": c, "risk_score": 0.25, "outstanding_principal": 2000.0, "dpd": 40},  # same score 500, more dpd
        {"loan_id": b, "risk_score": 0.5, "outstanding_principal": 1000.0, "dpd": 5},    # full tie with d: loan_id
        {"loan_id": a, "risk_score": 0.9, "outstanding_principal": 1000.0, "dpd": 1},
    ]), NO_HOURS, _policy())
    assert list(df["loan_id"]) == [a, c, b, d]
    assert list(df["priority_rank"]) == [1, 2, 3, 4]
    assert list(df["priority_score"]) == [900.0, 500.0, 500.0, 500.0]


def test_loan_id_ties_break_in_byte_order():
    ids = ["L_b", "L_B", "L_a"]  # byte order: 'L_B' < 'L_a' < 'L_b'
    df = build_priority_list(_loans([{"loan_id": i} for i in ids]), NO_HOURS, _policy(challenger_share=0))
    assert list(df["loan_id"]) == ["L_B", "L_a", "L_b"]


@pytest.mark.parametrize("strategy", ["champion", "challenger"])
def test_every_cell_of_the_strategy_matrix(strategy):
    cases = {"M0_due_soon": ("M0", 0), "M1": ("M1", 10), "M2-M3": ("M3", 70), "M4-M6": ("M5", 130),
             "M6+": ("M6+", 300)}
    tiers = {"low": 0.1, "medium": 0.45, "high": 0.8}
    rows, expected = [], {}
    ids = iter(_champion_ids(len(cases) * len(tiers), challenger=strategy == "challenger"))
    for seg, (bucket, dpd) in cases.items():
        for tier, score in tiers.items():
            lid = next(ids)
            rows.append({"loan_id": lid, "bucket": bucket, "dpd": dpd, "risk_score": score})
            expected[lid] = MATRIX[(strategy, seg, tier)]
    df = build_priority_list(_loans(rows), NO_HOURS, _policy())
    assert set(df["strategy"]) == {strategy}
    assert dict(zip(df["loan_id"], df["recommended_action"])) == expected
    assert not df["capacity_limited"].any()


def test_champion_default_matrix_is_the_policy_table():
    assert [MATRIX[("champion", s, t)] for s in ("M0_due_soon", "M1", "M2-M3", "M4-M6", "M6+")
            for t in ("low", "medium", "high")] == [
        "none", "app_push", "sms", "sms", "call", "call", "call", "call_with_plan_offer", "field_visit",
        "field_visit", "legal_letter", "legal_letter", "agency", "agency", "agency"]


def test_tier_bounds_are_inclusive_at_the_lower_end():
    ids = _champion_ids(4)
    df = build_priority_list(_loans([{"loan_id": i, "risk_score": s} for i, s in zip(ids, (0.2999, 0.3, 0.5999, 0.6))]),
                             NO_HOURS, _policy())
    assert dict(zip(df["loan_id"], df["risk_tier"])) == dict(zip(ids, ("low", "medium", "medium", "high")))


def test_capacity_overflows_to_sms_in_rank_order():
    ids = _champion_ids(5)
    rows = [{"loan_id": i, "bucket": "M1", "risk_score": 0.9 - k * 0.05} for k, i in enumerate(ids[:3])]
    rows += [{"loan_id": i, "bucket": "M3", "dpd": 70, "risk_score": 0.8 - k * 0.05} for k, i in enumerate(ids[3:])]
    df = build_priority_list(_loans(rows), NO_HOURS, _policy(calls_per_day=2, field_visits_per_day=1))
    got = df.set_index("loan_id")[["recommended_action", "capacity_limited"]].to_dict("index")
    assert got[ids[0]] == {"recommended_action": "call", "capacity_limited": False}
    assert got[ids[1]] == {"recommended_action": "call", "capacity_limited": False}
    assert got[ids[2]] == {"recommended_action": "sms", "capacity_limited": True}
    assert got[ids[3]] == {"recommended_action": "field_visit", "capacity_limited": False}
    assert got[ids[4]] == {"recommended_action": "sms", "capacity_limited": True}
    assert "capacity" in df.set_index("loan_id").loc[ids[2], "reasons"]


def test_do_not_contact_holds_and_call_cap_before_capacity():
    ids = _champion_ids(4)
    df = build_priority_list(_loans([
        {"loan_id": ids[0], "risk_score": 0.9, "do_not_contact": 1},
        {"loan_id": ids[1], "risk_score": 0.8, "do_not_contact": None},          # unknown counts as a hold
        {"loan_id": ids[2], "risk_score": 0.7, "calls_last_7_days": 7},          # call cap
        {"loan_id": ids[3], "risk_score": 0.6, "calls_last_7_days": 6},
    ]), NO_HOURS, _policy(calls_per_day=1))
    got = df.set_index("loan_id")
    assert list(got["recommended_action"]) == ["hold", "hold", "sms", "call"]
    assert list(got["capacity_limited"]) == [False, False, False, False]  # holds and capped rows use no slot
    assert "call cap" in got.loc[ids[2], "reasons"]
    assert got["suggested_contact_hour"].isna().tolist() == [True, True, True, False]


def test_contact_hour_from_customer_history_or_portfolio():
    ids = _champion_ids(2)
    stats = pd.DataFrame([
        {"customer_id": None, "hour": 19, "actions": 100, "contacts": 60},
        {"customer_id": None, "hour": 10, "actions": 100, "contacts": 40},
        {"customer_id": None, "hour": 22, "actions": 100, "contacts": 99},   # outside 08-21: ignored
        {"customer_id": "C1", "hour": 9, "actions": 3, "contacts": 2},
        {"customer_id": "C1", "hour": 14, "actions": 3, "contacts": 2},        # tie with 9: earlier hour
        {"customer_id": "C2", "hour": 12, "actions": 4, "contacts": 4},        # only 4 actions: portfolio hour
    ])
    df = build_priority_list(_loans([{"loan_id": ids[0], "customer_id": "C1", "risk_score": 0.9},
                                     {"loan_id": ids[1], "customer_id": "C2", "risk_score": 0.8}]), stats, _policy())
    assert dict(zip(df["customer_id"], df["suggested_contact_hour"])) == {"C1": 9, "C2": 19}
    assert best_hour(stats[stats["customer_id"].isna()]) == 19


def test_challenger_assignment_is_stable_and_near_the_share():
    ids = [f"L{i:08d}" for i in range(20000)]
    first = [strategy_for(i, 10) for i in ids]
    assert first == [strategy_for(i, 10) for i in ids]  # same on every day and run
    share = first.count("challenger") / len(ids)
    assert 0.09 < share < 0.11
    lid = "L00000042"
    assert (strategy_for(lid, 10) == "challenger") == (int(hashlib.sha256(lid.encode()).hexdigest()[:8], 16) % 100 < 10)


def test_no_candidates_gives_an_empty_list():
    df = build_priority_list(_loans([]).iloc[0:0], NO_HOURS, _policy())
    assert len(df) == 0 and {"priority_rank", "recommended_action", "reasons"} <= set(df.columns)
