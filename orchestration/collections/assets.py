"""The daily collection priority list: a thin asset around ml_assets.priority."""

from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd

from ml_assets.priority import build_priority_list

from ..executor import PRIORITY
from ..extract.schema import create_raw_schema
from ..partitions import business_dates
from ..policy import policy_threshold, priority_policy
from ..resources import ArrearsHome, OpsDatabase, Warehouse
from .delivery import COLUMNS, export_path, replace_day, write_csv


def candidates_sql() -> str:
    """Loans on book with dpd >= 1, plus current loans with an unpaid installment due in D+1..D+3
    scored at or above the high tier (early reminders). $1 = D, $2 = high-tier bound."""
    return """
    WITH due_soon AS (
      SELECT DISTINCT s.loan_id
      FROM intermediate.int_installments_cumulated s
      JOIN intermediate.int_loan_state_on_date st ON st.loan_id = s.loan_id
      WHERE s.due_date BETWEEN CAST($1 AS DATE) + 1 AND CAST($1 AS DATE) + 3
        AND s.cum_due - st.paid_amount > (SELECT value FROM staging.policy_thresholds WHERE name = 'paid_tolerance')
    ),
    calls AS (
      SELECT loan_id, count(*) AS calls_last_7_days
      FROM staging.stg_core_banking__collection_actions
      WHERE channel = 'call' AND CAST(action_at AS DATE) BETWEEN CAST($1 AS DATE) - 6 AND CAST($1 AS DATE)
      GROUP BY loan_id
    )
    SELECT f.as_of_date, f.loan_id, l.customer_id, c.full_name AS customer_name, c.phone, c.do_not_contact,
           f.dpd, f.bucket, f.overdue_amount, f.outstanding_principal, r.risk_score, r.reasons AS top_features,
           coalesce(k.calls_last_7_days, 0) AS calls_last_7_days
    FROM marts.fct_loan_delinquency_daily f
    JOIN marts.risk_scores r ON r.loan_id = f.loan_id AND r.as_of_date = f.as_of_date
    JOIN staging.stg_core_banking__loans l ON l.loan_id = f.loan_id
    LEFT JOIN staging.stg_core_banking__customers c ON c.customer_id = l.customer_id
    LEFT JOIN calls k ON k.loan_id = f.loan_id
    WHERE f.as_of_date = CAST($1 AS DATE)
      AND (f.dpd >= 1 OR (f.loan_id IN (SELECT loan_id FROM due_soon) AND r.risk_score >= $2))
    """


# Contact rate by hour over call and field_visit actions known on D: for the whole portfolio, and
# for each customer on the day's list (the only customers whose own best hour is needed).
HOUR_STATS_SQL = """
    WITH actions AS (
      SELECT l.customer_id, hour(a.action_at) AS hour,
             a.outcome IN ('contacted', 'promise_to_pay', 'refused', 'dispute') AS contacted
      FROM staging.stg_core_banking__collection_actions a
      JOIN staging.stg_core_banking__loans l ON l.loan_id = a.loan_id
      WHERE a.channel IN ('call', 'field_visit') AND CAST(a.action_at AS DATE) <= CAST($1 AS DATE)
    )
    SELECT NULL AS customer_id, hour, count(*) AS actions, count(*) FILTER (WHERE contacted) AS contacts
    FROM actions GROUP BY hour
    UNION ALL
    SELECT customer_id, hour, count(*), count(*) FILTER (WHERE contacted)
    FROM actions WHERE customer_id IN (SELECT customer_id FROM __listed)
    GROUP BY customer_id, hour
"""


# Written by collection_priority_list below and read by dbt (mart_collection_effectiveness) for
# the lists of days before D. Declared as a spec, not an output of the list asset: the list of D
# depends on D's marts, so making it an upstream of a dbt model would close a cycle.
priority_list_history = dg.AssetSpec(
    key=["raw", "collection_priority_list_history"],
    group_name="collections",
    kinds={"duckdb"},
    description="Every day's collection list without contact data (warehouse table raw.collection_priority_list_history), "
                "written by collection_priority_list; the effectiveness mart credits each action to the strategy of "
                "the list of the day before it.",
)


@dg.asset(
    key=["collection_priority_list"],
    group_name="collections",
    kinds={"duckdb", "csv"},
    partitions_def=business_dates,
    deps=[dg.AssetKey("fct_loan_delinquency_daily"), dg.AssetKey("risk_scores")],
    op_tags={PRIORITY: "1"},
    description="The day's ranked, capacity-aware, compliant collection list: CSV under exports/ and table "
                "collection_priority_list in the operational database (the only output with contact data).",
)
def collection_priority_list(context: dg.AssetExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome,
                             ops_database: OpsDatabase) -> dg.MaterializeResult:
    day = context.partition_key
    policy = priority_policy()
    with warehouse.connect() as con:
        loans = con.execute(candidates_sql(), [day, policy.tier_high_from]).df()
        con.register("__listed", loans[["customer_id"]])
        hours = con.execute(HOUR_STATS_SQL, [day]).df()
        con.unregister("__listed")
        ranked = build_priority_list(loans, hours, policy)
        ranked["as_of_date"] = date.fromisoformat(day)
        create_raw_schema(con)
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM raw.collection_priority_list_history WHERE as_of_date = ?", [day])
        hist = ranked[["as_of_date", "priority_rank", "loan_id", "dpd", "bucket", "risk_score", "risk_tier",
                       "priority_score", "recommended_action", "strategy", "capacity_limited"]]
        con.register("__list", hist)
        con.execute("INSERT INTO raw.collection_priority_list_history SELECT * FROM __list")
        con.unregister("__list")
        con.execute("COMMIT")
    path = export_path(Path(arrears_home.path), day)
    write_csv(ranked[COLUMNS], path)
    replace_day(ops_database.url, date.fromisoformat(day), ranked[COLUMNS])
    actions = Counter(ranked["recommended_action"])
    tiers = Counter(ranked["risk_tier"])
    calls_used = int(ranked["recommended_action"].isin(["call", "call_with_plan_offer"]).sum())
    visits_used = int((ranked["recommended_action"] == "field_visit").sum())
    return dg.MaterializeResult(metadata={
        "rows": len(ranked),
        "rows_by_action": dg.MetadataValue.json(dict(actions)),
        "rows_by_tier": dg.MetadataValue.json(dict(tiers)),
        "calls_used": f"{calls_used} / {policy.calls_per_day}",
        "field_visits_used": f"{visits_used} / {policy.field_visits_per_day}",
        "capacity_limited": int(ranked["capacity_limited"].sum()),
        "holds_do_not_contact": int(actions.get("hold", 0)),
        "call_cap_sms": int(ranked["reasons"].astype(str).str.contains("call cap").sum()),
        "challenger_rows": int((ranked["strategy"] == "challenger").sum()),
        "export": dg.MetadataValue.path(str(path)),
        "paid_tolerance": policy_threshold("paid_tolerance"),
    })
