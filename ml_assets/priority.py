"""The collection priority list (business_rules.md section 7), as pure functions on DataFrames.

Order of decisions for each row: rank by expected balance at risk; strategy
(champion/challenger) by a stable hash; action from that strategy's matrix;
then compliance (do-not-contact hold, 7-calls-in-7-days cap) before capacity;
then call and visit capacity in rank order; then the contact hour.
"""

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CALL_ACTIONS = ("call", "call_with_plan_offer")
VISIT_ACTIONS = ("field_visit",)
CONTACT_OUTCOMES = ("contacted", "promise_to_pay", "refused", "dispute")
FIRST_HOUR, LAST_HOUR = 8, 20  # contact window 08:00-21:00


@dataclass(frozen=True)
class PriorityPolicy:
    """Every configurable number of section 7 (loaded from the dbt seeds)."""

    tier_medium_from: float = 0.3
    tier_high_from: float = 0.6
    challenger_share: int = 10  # percent
    calls_per_day: int = 2000
    field_visits_per_day: int = 100
    call_cap_per_7_days: int = 7
    contact_hour_min_actions: int = 5
    # (strategy, segment, tier) -> action
    matrix: dict[tuple[str, str, str], str] = field(default_factory=dict)


def risk_tier(score: pd.Series, policy: PriorityPolicy) -> pd.Series:
    return pd.Series(np.where(score >= policy.tier_high_from, "high",
                              np.where(score >= policy.tier_medium_from, "medium", "low")), index=score.index)


def strategy_for(loan_id: str, challenger_share: int) -> str:
    """Stable across days and runs: first 8 hex digits of SHA-256(loan_id) mod 100."""
    bucket = int(hashlib.sha256(loan_id.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "challenger" if bucket < challenger_share else "champion"


def segment_of(bucket: str) -> str:
    if bucket == "M0":
        return "M0_due_soon"
    if bucket == "M1":
        return "M1"
    if bucket in ("M2", "M3"):
        return "M2-M3"
    if bucket in ("M4", "M5", "M6"):
        return "M4-M6"
    return "M6+"


def best_hour(stats: pd.DataFrame) -> int | None:
    """Hour 8..20 with the highest contact rate; ties to the earlier hour. stats: hour, actions, contacts."""
    hours = best_hours(stats.assign(customer_id="portfolio"))
    return int(hours.iloc[0]) if len(hours) else None


def best_hours(stats: pd.DataFrame) -> pd.Series:
    """best_hour for every customer at once: customer_id -> hour (customers with no action in the
    window are absent). stats: customer_id, hour, actions, contacts."""
    s = stats[(stats["hour"] >= FIRST_HOUR) & (stats["hour"] <= LAST_HOUR) & (stats["actions"] > 0)]
    s = s.assign(rate=s["contacts"] / s["actions"])
    s = s.sort_values(["customer_id", "rate", "hour"], ascending=[True, False, True], kind="mergesort")
    first = s.drop_duplicates("customer_id")
    return pd.Series(first["hour"].astype(int).to_numpy(), index=first["customer_id"].to_numpy())


def build_priority_list(loans: pd.DataFrame, hour_stats: pd.DataFrame, policy: PriorityPolicy,
                        default_hour: int = 10) -> pd.DataFrame:
    """Rank and assign actions.

    loans: one row per candidate loan (dpd >= 1, or current with an unpaid
    installment due in D+1..D+3 and a high-tier score): loan_id, customer_id,
    dpd, bucket, outstanding_principal, risk_score, do_not_contact (NULL = unknown),
    calls_last_7_days, top_features (text).
    hour_stats: customer_id (NULL row = whole portfolio), hour, actions, contacts,
    over call and field_visit actions known on D.
    """
    df = loans.copy()
    if df.empty:  # no loan in arrears and no early reminder (or no scores yet): an empty list
        return df.assign(priority_score=[], priority_rank=[], risk_tier=[], strategy=[], recommended_action=[],
                         capacity_limited=[], suggested_contact_hour=[], reasons=[])
    df["priority_score"] = df["risk_score"].astype(float) * df["outstanding_principal"].astype(float)
    # rank 1 = highest expected balance at risk; ties: dpd desc, then loan_id in byte order
    df["_loan_bytes"] = [s.encode("utf-8") for s in df["loan_id"].tolist()]
    df = df.sort_values(["priority_score", "dpd", "_loan_bytes"], ascending=[False, False, True], kind="mergesort")
    df = df.drop(columns="_loan_bytes").reset_index(drop=True)
    df["priority_rank"] = np.arange(1, len(df) + 1)
    df["risk_tier"] = risk_tier(df["risk_score"].astype(float), policy)
    # (Python loops run over .tolist(): iterating an Arrow-backed column value by value is several
    # times slower, and the list of a 1M-loan book has ~100k rows)
    strategies = [strategy_for(x, policy.challenger_share) for x in df["loan_id"].tolist()]
    df["strategy"] = strategies
    cells = list(zip(strategies, df["bucket"].map(segment_of).tolist(), df["risk_tier"].tolist()))
    df["recommended_action"] = [policy.matrix[cell] for cell in cells]
    rule = [f"{st} matrix: {seg} x {tier} risk" for st, seg, tier in cells]

    hold = df["do_not_contact"].isna() | (df["do_not_contact"].astype("Float64").fillna(1) == 1)
    capped = ~hold & df["recommended_action"].isin(CALL_ACTIONS) & (df["calls_last_7_days"] >= policy.call_cap_per_7_days)
    df.loc[hold, "recommended_action"] = "hold"
    df.loc[capped, "recommended_action"] = "sms"
    for i in np.flatnonzero(hold):
        rule[i] = "hold: customer is do-not-contact (legal hold, dispute or complaint)"
    for i in np.flatnonzero(capped):
        rule[i] = f"sms instead of a call: call cap ({policy.call_cap_per_7_days} calls in the last 7 days)"

    actions = df["recommended_action"].to_numpy(copy=True)
    limited = np.zeros(len(df), dtype=bool)
    calls_left, visits_left = policy.calls_per_day, policy.field_visits_per_day
    for i, action in enumerate(actions):  # rank order
        if action in CALL_ACTIONS:
            if calls_left > 0:
                calls_left -= 1
                continue
        elif action in VISIT_ACTIONS:
            if visits_left > 0:
                visits_left -= 1
                continue
        else:
            continue
        rule[i] = f"sms: {action} capacity for the day is used by higher-priority loans"
        actions[i] = "sms"
        limited[i] = True
    df["recommended_action"] = actions
    df["capacity_limited"] = limited

    portfolio = hour_stats[hour_stats["customer_id"].isna()]
    portfolio_hour = best_hour(portfolio) or default_hour
    per_customer = hour_stats[hour_stats["customer_id"].notna()]
    enough = per_customer.groupby("customer_id")["actions"].transform("sum") >= policy.contact_hour_min_actions
    own_hour = best_hours(per_customer[enough]).to_dict()
    needs_hour = df["recommended_action"].isin(CALL_ACTIONS + VISIT_ACTIONS)
    hours = [(own_hour.get(c) or portfolio_hour) if n else None
             for c, n in zip(df["customer_id"].tolist(), needs_hour.tolist())]
    df["suggested_contact_hour"] = pd.array(hours, dtype="Int64")

    top = df["top_features"] if "top_features" in df else pd.Series([""] * len(df))
    df["reasons"] = [
        f"risk {score:.0%} ({tier}), {dpd} dpd, balance at risk {ps:,.2f}; {feat}; action: {r}".replace("; ;", ";")
        for score, tier, dpd, ps, feat, r in zip(df["risk_score"].tolist(), df["risk_tier"].tolist(), df["dpd"].tolist(),
                                                 df["priority_score"].tolist(), top.tolist(), rule)
    ]
    return df
