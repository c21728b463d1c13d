"""The embedded simulator writes a source exactly per source_contract.md, deterministically,
and advances day by day like a live system."""

import csv
import os
import re
import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from orchestration.simulator import simulate

BOOK = dict(loans=2000, start=date(2025, 1, 1), end=date(2025, 12, 31), seed=3)
SMALL = dict(loans=600, start=date(2025, 1, 1), end=date(2025, 6, 30), seed=11)

# source_contract.md, section 1 and 2: tables, columns in order, code values
CONTRACT = {
    "customers": ["customer_id", "full_name", "national_id", "phone", "email", "birth_date", "province",
                  "monthly_income", "employment_type", "do_not_contact", "created_at", "updated_at"],
    "loan_products": ["product_id", "product_name", "product_type", "term_months", "annual_rate"],
    "loans": ["loan_id", "customer_id", "product_id", "principal", "annual_rate", "term_months", "disbursed_on",
              "channel", "status", "status_changed_on", "updated_at"],
    "repayment_schedule": ["loan_id", "installment_no", "due_date", "principal_due", "interest_due", "fee_due"],
    "loan_transactions": ["txn_id", "loan_id", "txn_type", "amount", "principal_portion", "interest_portion",
                          "fee_portion", "value_date", "booked_at", "reverses_txn_id", "payment_id"],
    "collection_actions": ["action_id", "loan_id", "action_at", "channel", "agent_id", "outcome",
                           "promised_amount", "promised_date"],
}
FILE_COLUMNS = ["payment_id", "loan_id", "amount", "currency", "status", "channel", "initiated_at", "settled_at",
                "failure_reason"]
CODES = {
    ("customers", "employment_type"): {"salaried", "self_employed", "student", "retired", "unemployed", "other"},
    ("customers", "do_not_contact"): {0, 1},
    ("loan_products", "product_type"): {"cash_loan", "consumer_installment"},
    ("loans", "channel"): {"app", "partner", "branch"},
    ("loans", "status"): {"active", "settled", "written_off"},
    ("loan_transactions", "txn_type"): {"disbursement", "repayment", "reversal", "waiver", "write_off", "recovery"},
    ("collection_actions", "channel"): {"sms", "app_push", "email", "call", "field_visit", "legal_letter", "agency"},
    ("collection_actions", "outcome"): {"delivered", "no_answer", "contacted", "promise_to_pay", "refused",
                                        "wrong_number", "dispute"},
}
FILE_CODES = {
    "currency": {"CNY"}, "status": {"succeeded", "failed", "refunded"},
    "channel": {"bank_card_debit", "alipay", "wechat_pay", "bank_transfer", "counter"},
    "failure_reason": {"", "insufficient_funds", "card_expired", "account_frozen", "limit_exceeded", "other"},
}
MONEY = {"customers": ["monthly_income"], "loans": ["principal"],
         "repayment_schedule": ["principal_due", "interest_due", "fee_due"],
         "loan_transactions": ["amount", "principal_portion", "interest_portion", "fee_portion"],
         "collection_actions": ["promised_amount"]}
DATES = {"customers": ["birth_date"], "loans": ["disbursed_on", "status_changed_on"],
         "repayment_schedule": ["due_date"], "loan_transactions": ["value_date"],
         "collection_actions": ["promised_date"]}
STAMPS = {"customers": ["created_at", "updated_at"], "loans": ["updated_at"], "loan_transactions": ["booked_at"],
          "collection_actions": ["action_at"]}


def _dump(folder: Path) -> dict:
    con = sqlite3.connect(folder / "core_banking.sqlite")
    out = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in CONTRACT}
    con.close()
    out["files"] = {p.name: p.read_bytes() for p in sorted((folder / "payments").glob("*.csv"))}
    return out


def _files(folder: Path) -> dict[str, list[dict]]:
    out = {}
    for p in sorted((folder / "payments").glob("settlement_*.csv")):
        with p.open(encoding="utf-8", newline="") as f:
            out[p.name[11:21]] = list(csv.DictReader(f))
    return out


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book")
    summary = simulate(folder, **BOOK)
    return folder, summary


@pytest.fixture
def q(book):
    con = sqlite3.connect(book[0] / "core_banking.sqlite")
    yield lambda sql: con.execute(sql).fetchone()[0]
    con.close()


def test_schema_codes_and_formats_are_the_contract(book):
    folder, summary = book
    con = sqlite3.connect(folder / "core_banking.sqlite")
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == set(CONTRACT) | {"_simulator_meta"}
    for table, cols in CONTRACT.items():
        assert [r[1] for r in con.execute(f"PRAGMA table_info({table})")] == cols, table
        assert not any(r[5] for r in con.execute(f"PRAGMA table_info({table})")), f"{table} has a primary key"
    assert not [r for r in con.execute("SELECT sql FROM sqlite_master WHERE type = 'index'") if "UNIQUE" in (r[0] or "")]
    indexed = {(r[0], r[1]) for r in con.execute(
        "SELECT m.tbl_name, i.name FROM sqlite_master m, pragma_index_info(m.name) i WHERE m.type = 'index'")}
    for need in [("customers", "customer_id"), ("customers", "updated_at"), ("loans", "loan_id"),
                 ("loans", "updated_at"), ("repayment_schedule", "loan_id"), ("loan_transactions", "txn_id"),
                 ("loan_transactions", "booked_at"), ("collection_actions", "action_id"),
                 ("collection_actions", "action_at")]:
        assert need in indexed, need
    for (table, col), allowed in CODES.items():
        got = {r[0] for r in con.execute(f"SELECT DISTINCT {col} FROM {table}")}
        assert got == allowed or got <= allowed, (table, col, got - allowed)
    for table, cols in MONEY.items():
        for col in cols:
            bad = con.execute(f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL AND "
                              f"(typeof({col}) NOT IN ('real', 'integer') OR round({col}, 2) != {col})").fetchone()[0]
            assert bad == 0, (table, col)
    for table, cols in DATES.items():
        for col in cols:
            for (v,) in con.execute(f"SELECT DISTINCT {col} FROM {table} WHERE {col} IS NOT NULL"):
                assert re.fullmatch(r"\d{4}-\d\d-\d\d", v) and date.fromisoformat(v), (table, col, v)
    for table, cols in STAMPS.items():
        for col in cols:
            for (v,) in con.execute(f"SELECT DISTINCT {col} FROM {table}"):
                datetime.strptime(v, "%Y-%m-%d %H:%M:%S")
    # identifiers and PII formats
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert q("SELECT count(*) FROM customers WHERE length(national_id) != 18 OR length(phone) != 11 "
             "OR substr(phone, 1, 1) != '1' OR customer_id NOT GLOB 'C[0-9]*'") == 0
    assert q("SELECT count(*) FROM loans WHERE loan_id NOT GLOB 'L[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'") == 0
    assert q("SELECT count(*) FROM loan_transactions WHERE length(txn_id) != 10") == 0
    assert q("SELECT count(*) FROM loan_transactions WHERE amount <= 0") == 0
    assert q("SELECT count(*) FROM loans WHERE (status = 'active') != (status_changed_on IS NULL)") == 0
    assert q("SELECT count(*) FROM collection_actions WHERE channel IN ('sms', 'app_push', 'email') "
             "AND agent_id IS NOT NULL") == 0
    assert q("SELECT count(DISTINCT agent_id) FROM collection_actions WHERE channel = 'call'") == 40
    # settlement files: header, codes, 2-decimal amounts, UTF-8
    files = list((folder / "payments").glob("*.csv"))
    assert len(files) == 365 and summary["settlement_files_written"] == 365
    for p in files:
        text = p.read_bytes().decode("utf-8")
        assert text.splitlines()[0].split(",") == FILE_COLUMNS, p.name
    for rows in _files(folder).values():
        for r in rows:
            assert re.fullmatch(r"\d+\.\d\d", r["amount"])
            for col, allowed in FILE_CODES.items():
                assert r[col] in allowed, (col, r[col])
            datetime.strptime(r["initiated_at"], "%Y-%m-%d %H:%M:%S")
            assert (r["settled_at"] != "") == (r["status"] != "failed")
            assert (r["failure_reason"] != "") == (r["status"] == "failed")
    assert summary["loans"] == 2000 and summary["until"] == "2025-12-31"


def test_money_is_consistent(q):
    # annuity schedules: principal repaid exactly, due dates increase, interest falls
    assert q("""SELECT count(*) FROM (SELECT l.loan_id FROM loans l JOIN repayment_schedule s USING (loan_id)
                GROUP BY l.loan_id, l.principal, l.term_months
                HAVING abs(sum(s.principal_due) - l.principal) > 0.001 OR count(*) != l.term_months)""") == 0
    assert q("""SELECT count(*) FROM repayment_schedule a JOIN repayment_schedule b
                ON a.loan_id = b.loan_id AND b.installment_no = a.installment_no + 1
                WHERE b.due_date <= a.due_date OR b.interest_due > a.interest_due + 0.01""") == 0
    # month-end clamping: a loan disbursed on the 31st falls due at the end of shorter months
    assert q("""SELECT count(*) FROM loans l JOIN repayment_schedule s USING (loan_id)
                WHERE substr(l.disbursed_on, 9, 2) = '31' AND s.installment_no = 1
                AND s.due_date != date(l.disbursed_on, 'start of month', '+2 months', '-1 day')""") == 0
    assert q("""SELECT count(*) FROM loan_transactions
                WHERE abs(amount - principal_portion - interest_portion - fee_portion) > 0.001
                   OR principal_portion < 0 OR interest_portion < 0 OR fee_portion < 0""") == 0
    assert q("SELECT count(*) FROM loan_transactions WHERE txn_type = 'repayment' AND fee_portion > 0") > 100
    # outstanding principal never negative, at any point of the ledger in booking order
    assert q("""SELECT count(*) FROM (
                  SELECT l.principal - sum(CASE WHEN t.txn_type IN ('repayment', 'waiver', 'write_off')
                    THEN t.principal_portion WHEN t.txn_type = 'reversal' THEN -t.principal_portion ELSE 0 END)
                    OVER (PARTITION BY t.loan_id ORDER BY t.booked_at, t.txn_id) AS outstanding
                  FROM loans l JOIN loan_transactions t USING (loan_id))
                WHERE outstanding < -0.001""") == 0
    # a settled loan has nothing outstanding; a write-off takes exactly the outstanding principal
    assert q("""SELECT count(*) FROM loans l WHERE status IN ('settled', 'written_off') AND abs(l.principal -
                (SELECT sum(CASE WHEN txn_type IN ('repayment', 'waiver', 'write_off') THEN principal_portion
                 WHEN txn_type = 'reversal' THEN -principal_portion ELSE 0 END)
                 FROM loan_transactions t WHERE t.loan_id = l.loan_id)) > 0.001""") == 0
    # one disbursement per loan, for its principal, on its disbursement day
    assert q("""SELECT count(*) FROM loans l WHERE 1 != (SELECT count(*) FROM loan_transactions t
                WHERE t.loan_id = l.loan_id AND txn_type = 'disbursement' AND t.amount = l.principal
                AND t.value_date = l.disbursed_on)""") == 0
    # a reversal undoes a repayment of the same loan with the same amount and portions, booked later
    assert q("""SELECT count(*) FROM loan_transactions v LEFT JOIN loan_transactions r ON r.txn_id = v.reverses_txn_id
                WHERE v.txn_type = 'reversal' AND (r.txn_type IS NOT 'repayment' OR r.loan_id != v.loan_id
                OR r.amount != v.amount OR r.principal_portion != v.principal_portion OR r.booked_at > v.booked_at)""") == 0


def test_the_book_has_every_behaviour(book, q):
    folder, _ = book
    assert q("SELECT count(*) FROM loans WHERE status = 'written_off'") > 10
    assert q("""SELECT count(*) FROM loans l WHERE status = 'written_off' AND EXISTS (SELECT 1 FROM loan_transactions t
                WHERE t.loan_id = l.loan_id AND t.txn_type = 'recovery' AND t.value_date > l.status_changed_on)""") > 0
    # written off at about 180 days past due, on the day of the write_off row
    assert q("""SELECT count(*) FROM loans l JOIN loan_transactions t ON t.loan_id = l.loan_id
                AND t.txn_type = 'write_off' WHERE t.value_date != l.status_changed_on""") == 0
    assert q("SELECT count(*) FROM loan_transactions WHERE txn_type = 'reversal'") > 0
    assert q("""SELECT count(*) FROM loan_transactions WHERE txn_type = 'waiver'
                AND principal_portion = 0""") > 0
    backdated = q("SELECT count(*) FROM loan_transactions WHERE date(booked_at) > value_date")
    repayments = q("SELECT count(*) FROM loan_transactions WHERE txn_type = 'repayment'")
    assert 0.01 < backdated / repayments < 0.08
    assert q("SELECT count(*) FROM loans WHERE status = 'settled'") > 50
    prepaid = q("""SELECT count(*) FROM loans l WHERE status = 'settled' AND status_changed_on <
                   (SELECT max(due_date) FROM repayment_schedule s WHERE s.loan_id = l.loan_id)""")
    assert prepaid > 5
    # settled on the day the last money arrived
    assert q("""SELECT count(*) FROM loans l WHERE status = 'settled' AND status_changed_on !=
                (SELECT max(value_date) FROM loan_transactions t WHERE t.loan_id = l.loan_id
                 AND txn_type = 'repayment')""") == 0
    # one payment covering two installments after a missed month
    assert q("""SELECT count(*) FROM loan_transactions t JOIN repayment_schedule s ON s.loan_id = t.loan_id
                AND s.installment_no = 1 WHERE t.txn_type = 'repayment'
                AND t.amount > 1.9 * (s.principal_due + s.interest_due + s.fee_due)
                AND t.value_date > s.due_date""") > 5
    assert q("SELECT count(*) FROM customers WHERE do_not_contact = 1") > 10
    assert q("SELECT count(*) FROM customers WHERE updated_at > created_at") > 0  # a do-not-contact hold later
    assert q("SELECT count(*) FROM (SELECT customer_id FROM loans GROUP BY 1 HAVING count(*) > 1)") > 50
    assert q("SELECT count(DISTINCT province) FROM customers") >= 10
    assert q("SELECT count(*) FROM customers WHERE province IS NULL") > 0
    assert q("SELECT count(DISTINCT product_id) FROM loans") == 3
    # collection: reminders, calls, visits, letters, agencies; promises kept and broken
    assert q("SELECT count(DISTINCT channel) FROM collection_actions") == 7
    assert q("""SELECT count(*) FROM collection_actions a JOIN loans l USING (loan_id)
                JOIN customers c USING (customer_id)
                WHERE c.do_not_contact = 1 AND a.channel IN ('call', 'field_visit')
                AND a.action_at >= c.updated_at""") == 0
    ptp = """SELECT count(*) FROM collection_actions a WHERE outcome = 'promise_to_pay'
             AND promised_amount > 0 AND promised_date > date(action_at)
             AND promised_date <= date(action_at, '+7 days') AND {} (
               SELECT coalesce(sum(CASE WHEN t.txn_type = 'repayment' THEN t.amount ELSE -t.amount END), 0)
               FROM loan_transactions t WHERE t.loan_id = a.loan_id AND t.txn_type IN ('repayment', 'reversal')
               AND t.value_date BETWEEN date(a.action_at) AND a.promised_date) >= a.promised_amount - 1"""
    kept, broken = q(ptp.format("")), q(ptp.format("NOT"))
    assert kept > 20 and broken > 20
    assert q("SELECT count(*) FROM collection_actions WHERE outcome = 'promise_to_pay' AND promised_date IS NULL") == 0
    # the gateway: failed debits precede delinquency, refunds, late and header-only files
    files = _files(folder)
    failed = [(d, r) for d, rows in files.items() for r in rows if r["status"] == "failed"]
    succeeded = {r["payment_id"]: (d, r) for d, rows in files.items() for r in rows if r["status"] == "succeeded"}
    assert len(failed) > 100 and len(failed) < len(succeeded)
    assert sum(r["failure_reason"] == "insufficient_funds" for _, r in failed) > 0.6 * len(failed)
    refunds = [(d, r) for d, rows in files.items() for r in rows if r["status"] == "refunded"]
    assert refunds and all(r["payment_id"] in succeeded and succeeded[r["payment_id"]][0] < d for d, r in refunds)
    for _, r in refunds:  # a refund is reversed in the ledger
        assert q(f"""SELECT count(*) FROM loan_transactions v JOIN loan_transactions p ON p.txn_id = v.reverses_txn_id
                     WHERE p.payment_id = '{r["payment_id"]}'""") == 1
    assert any(not rows for rows in files.values())  # a day without payments still has a file
    # every gateway repayment settled on its value date, and was booked within two days
    con = sqlite3.connect(folder / "core_banking.sqlite")
    for pid, value_date, booked in con.execute(
            "SELECT payment_id, value_date, booked_at FROM loan_transactions WHERE payment_id IS NOT NULL"):
        assert succeeded[pid][0] == value_date
        assert date.fromisoformat(booked[:10]) - date.fromisoformat(value_date) <= timedelta(days=2)
    assert q("SELECT count(*) FROM loan_transactions WHERE txn_type = 'repayment' AND payment_id IS NULL") > 0
    # failed debits come before the loan is 30 days past due: the first failure of a written-off loan
    first_fail = {}
    for d, r in failed:
        first_fail[r["loan_id"]] = min(first_fail.get(r["loan_id"], d), d)
    wo = con.execute("SELECT loan_id, status_changed_on FROM loans WHERE status = 'written_off'").fetchall()
    assert sum(lid in first_fail and first_fail[lid] < (date.fromisoformat(d) - timedelta(days=150)).isoformat()
               for lid, d in wo) > 0.8 * len(wo)
    con.close()


def test_deterministic(tmp_path):
    simulate(tmp_path / "a", **SMALL)
    simulate(tmp_path / "b", **SMALL)
    assert _dump(tmp_path / "a") == _dump(tmp_path / "b")
    simulate(tmp_path / "c", **dict(SMALL, seed=12))
    assert _dump(tmp_path / "a")["loans"] != _dump(tmp_path / "c")["loans"]


def test_advancing_equals_direct_and_touches_only_changes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    simulate(a, **SMALL, until=date(2025, 4, 10))
    con = sqlite3.connect(a / "core_banking.sqlite")
    before_loans = dict(con.execute("SELECT loan_id, updated_at FROM loans").fetchall())
    before_customers = dict(con.execute("SELECT customer_id, updated_at FROM customers").fetchall())
    n_txn = con.execute("SELECT count(*) FROM loan_transactions").fetchone()[0]
    con.close()
    mtimes = {p.name: os.stat(p).st_mtime_ns for p in (a / "payments").glob("*.csv")}
    summary = simulate(a, **SMALL, until=date(2025, 4, 11))
    assert summary["loans"] < 20 and summary["loan_transactions"] > 0  # only the day's new rows
    assert summary["settlement_files_written"] <= 3
    simulate(a, **SMALL, until=date(2025, 5, 20))
    simulate(b, **SMALL, until=date(2025, 5, 20))
    assert _dump(a) == _dump(b)
    con = sqlite3.connect(a / "core_banking.sqlite")
    after_loans = dict(con.execute("SELECT loan_id, updated_at FROM loans").fetchall())
    after_customers = dict(con.execute("SELECT customer_id, updated_at FROM customers").fetchall())
    changed = [k for k in before_loans if after_loans[k] != before_loans[k]]
    assert changed and len(changed) < 0.5 * len(before_loans)  # loans that settled or were written off
    assert all(after_loans[k] > before_loans[k] and after_loans[k][:10] > "2025-04-10" for k in changed)
    assert all(after_customers[k] >= before_customers[k] for k in before_customers)
    # rows already delivered are not rewritten: the ledger grew by appending
    old = con.execute(f"SELECT count(*) FROM loan_transactions WHERE rowid <= {n_txn} "
                      "AND date(booked_at) <= '2025-04-10'").fetchone()[0]
    assert old == n_txn
    meta = dict(con.execute("SELECT key, value FROM _simulator_meta").fetchall())
    assert meta["until"] == "2025-05-20"
    con.close()
    # settlement files delivered earlier and unchanged are not touched
    untouched = [n for n, t in mtimes.items() if os.stat(a / "payments" / n).st_mtime_ns == t]
    assert len(untouched) >= len(mtimes) - 3


def test_nothing_later_than_until(tmp_path):
    until = date(2025, 3, 17)
    simulate(tmp_path, **SMALL, until=until)
    con = sqlite3.connect(tmp_path / "core_banking.sqlite")
    u = until.isoformat()
    for sql in ["SELECT max(disbursed_on) FROM loans", "SELECT max(date(updated_at)) FROM loans",
                "SELECT max(status_changed_on) FROM loans", "SELECT max(date(updated_at)) FROM customers",
                "SELECT max(date(created_at)) FROM customers", "SELECT max(date(booked_at)) FROM loan_transactions",
                "SELECT max(value_date) FROM loan_transactions", "SELECT max(date(action_at)) FROM collection_actions"]:
        assert (con.execute(sql).fetchone()[0] or "") <= u, sql
    assert con.execute("SELECT count(*) FROM repayment_schedule s WHERE loan_id NOT IN "
                       "(SELECT loan_id FROM loans)").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM loans WHERE customer_id NOT IN "
                       "(SELECT customer_id FROM customers)").fetchone()[0] == 0
    con.close()
    files = _files(tmp_path)
    assert max(files) <= u
    for day, rows in files.items():
        for r in rows:
            assert r["initiated_at"][:10] <= day and (r["settled_at"] or day)[:10] <= day
    # going backwards (or changing the book) rebuilds from scratch
    simulate(tmp_path, **SMALL, until=date(2025, 2, 1))
    simulate(tmp_path / "direct", **SMALL, until=date(2025, 2, 1))
    assert _dump(tmp_path) == _dump(tmp_path / "direct")


def test_late_and_redelivered_files(tmp_path):
    late = "settlement_2025-02-10.csv"  # start + 40 days arrives 3 days late
    redelivered = "settlement_2025-02-25.csv"  # start + 55 days is corrected the next day
    pay = tmp_path / "payments"
    simulate(tmp_path, **BOOK, until=date(2025, 2, 12))
    assert not (pay / late).exists() and (pay / "settlement_2025-02-09.csv").exists()
    simulate(tmp_path, **BOOK, until=date(2025, 2, 13))
    assert (pay / late).exists()
    simulate(tmp_path, **BOOK, until=date(2025, 2, 25))
    first = (pay / redelivered).read_bytes()
    simulate(tmp_path, **BOOK, until=date(2025, 2, 26))
    second = (pay / redelivered).read_bytes()
    assert second != first and second.startswith(first)  # the first delivery missed a line
    assert second.count(b"\n") == first.count(b"\n") + 1
    # the next cycle's re-delivery had a wrong amount at first
    simulate(tmp_path, **BOOK, until=date(2025, 6, 2))  # start + 97 + 55
    wrong = (pay / "settlement_2025-06-02.csv").read_bytes()
    simulate(tmp_path, **BOOK, until=date(2025, 6, 3))
    right = (pay / "settlement_2025-06-02.csv").read_bytes()
    assert wrong != right and wrong.count(b"\n") == right.count(b"\n")
