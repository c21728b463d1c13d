"""The roll-forward model's feature list and how a feature frame is prepared for it.

The frame itself is built in dbt (macro ml_features: int_ml_features_on_date for scoring,
int_ml_training_snapshots for training) from what is known on D only; these functions
never see a date after D.
"""

import numpy as np
import pandas as pd

NUMERIC = [
    "dpd", "missed_installments", "overdue_ratio", "outstanding_ratio", "principal", "months_on_book",
    "remaining_installments", "days_to_next_due", "due_next_30d_ratio", "unpaid_due_next_30d_ratio",
    "monthly_income", "age", "payments_30d", "payments_90d", "payments_180d",
    "paid_to_due_30d", "paid_to_due_90d", "paid_to_due_180d", "days_since_last_payment", "max_days_late_180d",
    "late_installments_180d", "failed_debits_7d", "failed_debits_30d", "calls_30d", "contacts_30d", "refusals_30d",
    "promises_90d", "promises_broken_90d", "days_since_last_action",
]
# do_not_contact is not a feature: the source keeps no history of it (it is "as now", it can change
# after D), so a score using it could not be reproduced for a past date.
CATEGORICAL = ["bucket", "product_type", "channel", "province", "employment_type"]
FEATURES = NUMERIC + CATEGORICAL

# How a collector reads a feature when it pushes the risk up.
PHRASES = {
    "dpd": "{v:.0f} days past due",
    "missed_installments": "{v:.0f} missed installment(s)",
    "overdue_ratio": "overdue is {v:.0%} of principal",
    "outstanding_ratio": "{v:.0%} of principal still outstanding",
    "principal": "loan of {v:,.0f}",
    "months_on_book": "{v:.0f} months on book",
    "remaining_installments": "{v:.0f} installments to go",
    "days_to_next_due": "next installment due in {v:.0f} days",
    "due_next_30d_ratio": "{v:.0%} of principal falls due within 30 days",
    "unpaid_due_next_30d_ratio": "{v:.0%} of principal must be paid within 30 days to stay current",
    "monthly_income": "declared income {v:,.0f}",
    "age": "borrower aged {v:.0f}",
    "payments_30d": "{v:.0f} payment(s) in 30 days",
    "payments_90d": "{v:.0f} payment(s) in 90 days",
    "payments_180d": "{v:.0f} payment(s) in 180 days",
    "paid_to_due_30d": "paid {v:.0%} of what fell due in 30 days",
    "paid_to_due_90d": "paid {v:.0%} of what fell due in 90 days",
    "paid_to_due_180d": "paid {v:.0%} of what fell due in 180 days",
    "days_since_last_payment": "{v:.0f} days since the last payment",
    "max_days_late_180d": "up to {v:.0f} days late in 180 days",
    "late_installments_180d": "{v:.0f} late installment(s) in 180 days",
    "failed_debits_7d": "{v:.0f} failed debit(s) in 7 days",
    "failed_debits_30d": "{v:.0f} failed debit(s) in 30 days",
    "calls_30d": "{v:.0f} call(s) in 30 days",
    "contacts_30d": "reached {v:.0f} time(s) in 30 days",
    "refusals_30d": "{v:.0f} refusal(s) or dispute(s) in 30 days",
    "days_since_last_action": "{v:.0f} days since the last collection action",
    "promises_90d": "{v:.0f} promise(s) to pay in 90 days",
    "promises_broken_90d": "{v:.0f} broken promise(s) in 90 days",
    "do_not_contact": "do-not-contact flag",
    "bucket": "in bucket {v}",
    "product_type": "product {v}",
    "channel": "channel {v}",
    "province": "province {v}",
    "employment_type": "employment {v}",
}


def prepare(frame: pd.DataFrame, numeric: list[str] | None = None, categorical: list[str] | None = None) -> pd.DataFrame:
    """Model input: numeric as float (NaN where unknown), categoricals as strings ('unknown' for NULL).

    numeric/categorical default to this module's lists; a stored model passes its own, so a
    version trained on an older feature list still scores after the list changes.
    """
    numeric = NUMERIC if numeric is None else numeric
    categorical = CATEGORICAL if categorical is None else categorical
    out = pd.DataFrame(index=frame.index)
    for c in numeric:
        out[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    for c in categorical:
        out[c] = frame[c].astype(object).where(frame[c].notna(), "unknown").astype(str)
    return out


def phrase(feature: str, value) -> str:
    if isinstance(value, float) and np.isnan(value):
        return f"{feature.replace('_', ' ')} unknown"
    try:
        return PHRASES[feature].format(v=value)
    except (ValueError, TypeError):
        return f"{feature.replace('_', ' ')} {value}"
