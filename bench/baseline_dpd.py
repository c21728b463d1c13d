"""A straightforward pandas implementation of DPD and buckets for one business date.

What a team without Arrears would write, straight from business_rules.md
sections 1-3. The benchmark times it against the dbt step; the tests use it as
an independent second implementation to compare the marts with, loan by loan.
"""

from datetime import date
from decimal import Decimal

import pandas as pd

TOLERANCE = Decimal("1.00")
BUCKETS = [  # dpd_from, dpd_to, bucket, severity, five_category
    (0, 0, "M0", "current", "normal"),
    (1, 30, "M1", "mild", "special_mention"),
    (31, 60, "M2", "moderate", "special_mention"),
    (61, 90, "M3", "moderate", "special_mention"),
    (91, 120, "M4", "severe", "substandard"),
    (121, 150, "M5", "severe", "substandard"),
    (151, 180, "M6", "severe", "substandard"),
    (181, 270, "M6+", "severe", "substandard"),
    (271, 360, "M6+", "severe", "doubtful"),
    (361, None, "M6+", "severe", "loss"),
]


def load_raw(con) -> dict[str, pd.DataFrame]:
    """The raw tables the rules need, from a DuckDB warehouse (money stays Decimal)."""
    q = lambda sql: con.execute(sql).df()  # noqa: E731
    return {
        "loans": q("SELECT loan_id, principal, disbursed_on, status, status_changed_on FROM raw.loans"),
        "schedule": q("SELECT loan_id, installment_no, due_date, principal_due + interest_due + fee_due AS due "
                      "FROM raw.repayment_schedule"),
        "txns": q("SELECT txn_id, loan_id, txn_type, amount, principal_portion, value_date, booked_at, "
                  "reverses_txn_id FROM raw.loan_transactions"),
    }


def _bucket(dpd: int):
    for lo, hi, b, sev, five in BUCKETS:
        if dpd >= lo and (hi is None or dpd <= hi):
            return b, sev, five
    raise ValueError(dpd)


def _dec(s: pd.Series) -> pd.Series:
    return s.map(lambda v: Decimal(str(v)) if not isinstance(v, Decimal) else v)


def loan_state(raw: dict[str, pd.DataFrame], d: date) -> pd.DataFrame:
    D = pd.Timestamp(d)
    loans = raw["loans"].copy()
    txns = raw["txns"].copy()
    txns["amount"] = _dec(txns["amount"])
    txns["principal_portion"] = _dec(txns["principal_portion"].fillna(0))
    known = txns[(pd.to_datetime(txns["value_date"]) <= D) & (pd.to_datetime(txns["booked_at"]).dt.normalize() <= D)]
    repay_ids = set(known.loc[known["txn_type"] == "repayment", "txn_id"])
    counted = known[(known["txn_type"] != "reversal") | known["reverses_txn_id"].isin(repay_ids)]

    def total(kind, col):
        rows = counted[counted["txn_type"].isin(kind)]
        return rows.groupby("loan_id")[col].apply(lambda s: sum(s, Decimal("0")))

    paid = total(["repayment", "waiver"], "amount").sub(total(["reversal"], "amount"), fill_value=Decimal("0"))
    principal_out = total(["repayment", "waiver", "write_off"], "principal_portion").sub(
        total(["reversal"], "principal_portion"), fill_value=Decimal("0"))
    written_off = set(counted.loc[counted["txn_type"] == "write_off", "loan_id"])

    disbursed = pd.to_datetime(loans["disbursed_on"])
    changed = pd.to_datetime(loans["status_changed_on"])
    left = loans["status"].isin(["settled", "written_off"]) & (changed <= D)
    on_book = loans[(disbursed <= D) & ~left & ~loans["loan_id"].isin(written_off)].copy()

    sched = raw["schedule"].sort_values(["loan_id", "installment_no"]).copy()
    sched["due"] = _dec(sched["due"])
    sched = sched[sched["loan_id"].isin(on_book["loan_id"])]
    sched["cum_due"] = sched.groupby("loan_id")["due"].transform(lambda s: s.cumsum())
    sched["paid"] = sched["loan_id"].map(paid).map(lambda v: v if isinstance(v, Decimal) else Decimal("0"))
    sched["past_due"] = pd.to_datetime(sched["due_date"]) < D
    sched["unpaid"] = (sched["cum_due"] - sched["paid"]) > TOLERANCE
    late = sched[sched["past_due"] & sched["unpaid"]]
    first_late = pd.to_datetime(late.groupby("loan_id")["due_date"].min())
    missed = late.groupby("loan_id").size()
    due_past = sched[sched["past_due"]].groupby("loan_id")["due"].apply(lambda s: sum(s, Decimal("0")))

    rows = []
    for lid, principal in zip(on_book["loan_id"], on_book["principal"]):
        principal = Decimal(str(principal))
        p = paid.get(lid, Decimal("0"))
        dpd = int((D - first_late[lid]).days) if lid in first_late.index else 0
        overdue = max(Decimal("0"), due_past.get(lid, Decimal("0")) - p)
        overdue = overdue if overdue > TOLERANCE else Decimal("0")
        b, sev, five = _bucket(dpd)
        rows.append({
            "loan_id": lid, "dpd": dpd, "missed_installments": int(missed.get(lid, 0)),
            "overdue_amount": overdue.quantize(Decimal("0.01")),
            "outstanding_principal": (principal - principal_out.get(lid, Decimal("0"))).quantize(Decimal("0.01")),
            "bucket": b, "severity": sev, "five_category": five,
        })
    return pd.DataFrame(rows).sort_values("loan_id").reset_index(drop=True)


def par(state: pd.DataFrame, x: int) -> float | None:
    total = sum(state["outstanding_principal"], Decimal("0"))
    if total == 0:
        return None
    return float(sum(state.loc[state["dpd"] > x, "outstanding_principal"], Decimal("0"))) / float(total)
