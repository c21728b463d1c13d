"""The dbt marts against an independent pandas implementation of the rules, loan by loan.

A random book full of edge cases (partial and exact payments around the 1.00
tolerance, back-dated bookings, reversals booked later, waivers, write-offs,
settlements, prepayments) goes through the real extraction and real dbt for
several business dates; bench/baseline_dpd.py, written separately from the
same text, must agree on every loan and on PAR.
"""

import os
import random
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from bench.baseline_dpd import load_raw, loan_state, par
from orchestration.extract.core_banking import extract_core_banking
from source_book import create_source, customer, insert, product

REPO = Path(__file__).resolve().parent.parent
DBT = Path(sys.executable).parent / "dbt"
DATES = ["2025-02-28", "2025-03-11", "2025-04-15", "2025-05-31"]


def _money(x: float) -> float:
    return round(x, 2)


def _book(seed: int, n: int = 150):
    rng = random.Random(seed)
    loans, schedule, txns = [], [], []
    t = 0
    for i in range(n):
        lid = f"L{i:03d}"
        disbursed = date(2025, 1, 1) + timedelta(days=rng.randint(0, 60))
        k_n = rng.choice([3, 4, 6])
        principal = rng.choice([600, 1200, 3000, 15000])
        dues = []
        for k in range(1, k_n + 1):
            due = disbursed + timedelta(days=30 * k)
            p_due = _money(principal / k_n)
            i_due, f_due = _money(rng.uniform(5, 40)), rng.choice([0.0, 0.0, 5.0])
            schedule.append({"loan_id": lid, "installment_no": k, "due_date": due.isoformat(), "principal_due": p_due,
                             "interest_due": i_due, "fee_due": f_due})
            dues.append((due, p_due + i_due + f_due, p_due))
        status, changed = "active", None
        behaviour = rng.choice(["good", "late", "partial", "tolerance", "reversal", "waiver", "writeoff", "prepay"])
        cum = 0.0
        for k, (due, amount, p_due) in enumerate(dues):
            cum += amount
            if due > date(2025, 6, 15):
                break
            if behaviour == "writeoff" and k >= 1:
                break
            pay_day = due + timedelta(days={"good": rng.choice([-2, 0, 0]), "late": rng.randint(1, 45)}.get(behaviour, rng.randint(-1, 3)))
            pay = amount
            if behaviour == "partial" and k % 2 == 1:
                pay = _money(amount * rng.uniform(0.3, 0.8))
            if behaviour == "tolerance":
                pay = _money(amount - rng.choice([1.00, 1.01, 0.99]))
            lag = rng.choice([0, 0, 0, 1, 4])  # back-dated bookings
            t += 1
            txns.append({"txn_id": f"T{t:05d}", "loan_id": lid, "txn_type": "repayment", "amount": pay,
                         "principal_portion": _money(min(p_due, pay)), "interest_portion": 0.0, "fee_portion": 0.0,
                         "value_date": pay_day.isoformat(),
                         "booked_at": f"{(pay_day + timedelta(days=lag)).isoformat()} {rng.randint(8, 23):02d}:30:00",
                         "reverses_txn_id": None, "payment_id": None})
            if behaviour == "reversal" and k == 0:
                t += 1
                rev_day = pay_day + timedelta(days=rng.randint(0, 20))
                txns.append({**txns[-1], "txn_id": f"T{t:05d}", "txn_type": "reversal", "value_date": rev_day.isoformat(),
                             "booked_at": f"{(rev_day + timedelta(days=rng.choice([0, 2]))).isoformat()} 12:00:00",
                             "reverses_txn_id": txns[-1]["txn_id"]})
        if behaviour == "waiver":
            t += 1
            day = dues[0][0] + timedelta(days=40)
            txns.append({"txn_id": f"T{t:05d}", "loan_id": lid, "txn_type": "waiver", "amount": _money(rng.uniform(1, 60)),
                         "principal_portion": 0.0, "interest_portion": 0.0, "fee_portion": 0.0,
                         "value_date": day.isoformat(), "booked_at": f"{day.isoformat()} 10:00:00",
                         "reverses_txn_id": None, "payment_id": None})
        if behaviour == "writeoff":
            t += 1
            day = dues[1][0] + timedelta(days=rng.randint(30, 70))
            txns.append({"txn_id": f"T{t:05d}", "loan_id": lid, "txn_type": "write_off", "amount": principal,
                         "principal_portion": principal, "interest_portion": 0.0, "fee_portion": 0.0,
                         "value_date": day.isoformat(), "booked_at": f"{(day + timedelta(days=1)).isoformat()} 09:00:00",
                         "reverses_txn_id": None, "payment_id": None})
            status, changed = "written_off", (day + timedelta(days=rng.choice([0, 3]))).isoformat()
        if behaviour == "prepay":
            t += 1
            day = disbursed + timedelta(days=45)
            txns.append({"txn_id": f"T{t:05d}", "loan_id": lid, "txn_type": "repayment", "amount": principal + 50.0,
                         "principal_portion": principal, "interest_portion": 50.0, "fee_portion": 0.0,
                         "value_date": day.isoformat(), "booked_at": f"{day.isoformat()} 11:00:00",
                         "reverses_txn_id": None, "payment_id": None})
            status, changed = "settled", (day + timedelta(days=rng.choice([0, 1]))).isoformat()
        loans.append({"loan_id": lid, "customer_id": "C1", "product_id": "P1", "principal": float(principal),
                      "annual_rate": 0.18, "term_months": k_n, "disbursed_on": disbursed.isoformat(),
                      "channel": rng.choice(["app", "partner", "branch"]), "status": status,
                      "status_changed_on": changed, "updated_at": "2025-06-30 10:00:00"})
    return loans, schedule, txns


@pytest.mark.parametrize("seed", [1])
def test_marts_agree_with_independent_implementation(seed, sqlite_url, tmp_path):
    engine = create_source(sqlite_url)
    loans, schedule, txns = _book(seed)
    insert(engine, "loan_products", [product()])
    insert(engine, "customers", [customer()])
    insert(engine, "loans", loans)
    insert(engine, "repayment_schedule", schedule)
    insert(engine, "loan_transactions", txns)
    insert(engine, "collection_actions", [])
    wh = tmp_path / "wh.duckdb"
    with duckdb.connect(str(wh)) as con:
        res = extract_core_banking(con, sqlite_url, "2025-06-30")
        assert sum(r.quarantined for r in res.values()) == 0
        raw = load_raw(con)
    env = {**os.environ, "ARREARS_WAREHOUSE": str(wh), "ARREARS_PII_KEY": "k"}
    common = ["--project-dir", str(REPO / "dbt_project"), "--profiles-dir", str(REPO / "dbt_project"),
              "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
    for d in DATES:
        r = subprocess.run([str(DBT), "build", "--exclude", "test_type:unit", "--vars", f"{{business_date: '{d}'}}",
                            *common], cwd=REPO / "dbt_project", env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-3000:]
    cols = ["loan_id", "dpd", "missed_installments", "overdue_amount", "outstanding_principal", "bucket", "severity",
            "five_category"]
    with duckdb.connect(str(wh), read_only=True) as con:
        for d in DATES:
            got = con.execute(f"SELECT {', '.join(cols)} FROM marts.fct_loan_delinquency_daily WHERE as_of_date = ? "
                              "ORDER BY loan_id", [d]).fetchall()
            expected = loan_state(raw, date.fromisoformat(d))
            want = [tuple(r) for r in expected[cols].itertuples(index=False, name=None)]
            assert got == want, f"{d}: first difference " + str(next(
                ((a, b) for a, b in zip(got, want) if a != b), (len(got), len(want))))
            portfolio = con.execute("SELECT par_0, par_30, par_60, par_90 FROM marts.mart_portfolio_daily "
                                    "WHERE as_of_date = ? AND segment_type = 'all'", [d]).fetchone()
            assert portfolio == tuple(par(expected, x) for x in (0, 30, 60, 90))
    # the book really exercised the rules
    states = loan_state(raw, date(2025, 4, 15))
    assert states["dpd"].gt(30).any() and states["dpd"].eq(0).any()
    assert any(t["txn_type"] == "reversal" for t in txns) and any(t["txn_type"] == "write_off" for t in txns)
    assert Decimal("0") in set(states["overdue_amount"])
