"""A hand-made core-banking source in any SQLAlchemy database, for tests.

Tables follow source_contract.md with loose types and no key constraints,
as real upstream systems may deliver duplicates and garbage.
"""

import csv
from pathlib import Path

import sqlalchemy as sa

from orchestration.extract.schema import CORE_BANKING_TABLES, SETTLEMENT_FILE_COLUMNS

# Loose source types: text for everything that may hold garbage in tests.
_TYPES = {
    "DECIMAL(18,2)": "NUMERIC(18,2)",
    "DECIMAL(9,6)": "NUMERIC(9,6)",
    "INTEGER": "INTEGER",
}


def create_source(url: str, loose: bool = False) -> sa.Engine:
    """Drop and create the six core-banking tables. loose=True makes every column TEXT-like."""
    engine = sa.create_engine(url)
    with engine.begin() as c:
        for spec in reversed(CORE_BANKING_TABLES):
            c.exec_driver_sql(f"DROP TABLE IF EXISTS {spec.name}")
        for spec in CORE_BANKING_TABLES:
            cols = []
            for name, typ in spec.columns.items():
                t = "VARCHAR(200)" if loose else _TYPES.get(typ, "VARCHAR(200)")
                if not loose and typ == "DATE":
                    t = "DATE"
                if not loose and typ == "TIMESTAMP":
                    t = "TIMESTAMP" if engine.dialect.name != "mysql" else "DATETIME"
                cols.append(f"{name} {t}")
            c.exec_driver_sql(f"CREATE TABLE {spec.name} ({', '.join(cols)})")
    return engine


def insert(engine: sa.Engine, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"
    with engine.begin() as c:
        c.execute(sa.text(sql), rows)


def write_settlement_file(folder: Path, day: str, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"settlement_{day}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=SETTLEMENT_FILE_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in SETTLEMENT_FILE_COLUMNS})
    return path


def product(pid="P1", **kw):
    return {"product_id": pid, "product_name": "Cash 12", "product_type": "cash_loan",
            "term_months": 12, "annual_rate": 0.18} | kw


def customer(cid="C1", **kw):
    return {"customer_id": cid, "full_name": "Wang Fang", "national_id": "110101199001011234",
            "phone": "13800000001", "email": None, "birth_date": "1990-01-01", "province": "Beijing",
            "monthly_income": 9000.0, "employment_type": "salaried", "do_not_contact": 0,
            "created_at": "2025-01-01 09:00:00", "updated_at": "2025-01-01 09:00:00"} | kw


def loan(lid="L1", **kw):
    return {"loan_id": lid, "customer_id": "C1", "product_id": "P1", "principal": 1200.0,
            "annual_rate": 0.18, "term_months": 3, "disbursed_on": "2025-01-10", "channel": "app",
            "status": "active", "status_changed_on": None, "updated_at": "2025-01-10 10:00:00"} | kw


def schedule(lid="L1", n=3, first_due=("2025-02-10", "2025-03-10", "2025-04-10"), principal=400.0,
             interest=10.0, fee=0.0):
    return [{"loan_id": lid, "installment_no": k + 1, "due_date": first_due[k], "principal_due": principal,
             "interest_due": interest, "fee_due": fee} for k in range(n)]


def txn(tid, lid="L1", typ="repayment", amount=410.0, value_date="2025-02-10",
        booked_at="2025-02-10 12:00:00", principal_portion=None, **kw):
    return {"txn_id": tid, "loan_id": lid, "txn_type": typ, "amount": amount,
            "principal_portion": principal_portion if principal_portion is not None else 0.0,
            "interest_portion": 0.0, "fee_portion": 0.0, "value_date": value_date, "booked_at": booked_at,
            "reverses_txn_id": None, "payment_id": None} | kw
