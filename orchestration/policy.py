"""Configurable policy, read from the dbt seeds (the one place thresholds live)."""

import csv
from functools import cache

from ml_assets.priority import PriorityPolicy

from .settings import DBT_PROJECT_DIR

SEEDS = DBT_PROJECT_DIR / "seeds"


def policy_threshold(name: str) -> float:
    """A threshold from seeds/policy_thresholds.csv (columns name, value)."""
    with (SEEDS / "policy_thresholds.csv").open() as f:
        for row in csv.DictReader(f):
            if row["name"] == name:
                return float(row["value"])
    raise KeyError(f"threshold {name} missing from dbt_project/seeds/policy_thresholds.csv")


@cache
def strategy_matrix() -> dict[tuple[str, str, str], str]:
    with (SEEDS / "strategy_matrix.csv").open() as f:
        return {(r["strategy"], r["segment"], r["risk_tier"]): r["action"] for r in csv.DictReader(f)}


def priority_policy() -> PriorityPolicy:
    t = policy_threshold
    return PriorityPolicy(
        tier_medium_from=t("risk_tier_medium_from"),
        tier_high_from=t("risk_tier_high_from"),
        challenger_share=int(t("challenger_share_percent")),
        calls_per_day=int(t("capacity_calls_per_day")),
        field_visits_per_day=int(t("capacity_field_visits_per_day")),
        call_cap_per_7_days=int(t("call_cap_per_7_days")),
        contact_hour_min_actions=int(t("contact_hour_min_actions")),
        matrix=strategy_matrix(),
    )
