"""The embedded simulator writes a source exactly per source_contract.md, deterministically."""

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from orchestration.extract.schema import CORE_BANKING_TABLES, SETTLEMENT_FILE_COLUMNS
from orchestration.simulator import simulate

BOOK = dict(loans=2000, start=date(2025, 1, 1), end=date(2025, 12, 31), seed=3)


def _dump(folder: Path) -> dict:
    con = sqlite3.connect(folder / "core_banking.sqlite")
    out = {s.name: sorted(con.execute(f"SELECT * FROM {s.name}").fetchall(), key=repr) for s in CORE_BANKING_TABLES}
    con.close()
    out["files"] = {p.name: p.read_bytes() for p in sorted((folder / "payments").glob("*.csv"))}
    return out


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    folder = tmp_path_factory.mktemp("book")
    simulate(folder, **BOOK)
    return folder


def test_schema_is_the_contract(book):
    con = sqlite3.connect(book / "core_banking.sqlite")
    for spec in CORE_BANKING_TABLES:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({spec.name})")]
        assert cols == list(spec.columns), spec.name
        for col, allowed in spec.codes.items():
            got = {r[0] for r in con.execute(f"SELECT DISTINCT {col} FROM {spec.name} WHERE {col} IS NOT NULL")}
            assert got <= set(allowed), (spec.name, col, got - set(allowed))
    assert con.execute("SELECT count(*) FROM loan_transactions WHERE amount <= 0").fetchone()[0] == 0
    assert con.execute("""SELECT count(*) FROM loan_transactions
                          WHERE abs(amount - principal_portion - interest_portion - fee_portion) > 0.001""").fetchone()[0] == 0
    assert con.execute("""SELECT count(*) FROM (SELECT l.loan_id FROM loans l JOIN repayment_schedule s USING (loan_id)
                          GROUP BY l.loan_id, l.principal HAVING abs(sum(s.principal_due) - l.principal) > 0.001)""").fetchone()[0] == 0
    # outstanding principal never negative
    assert con.execute("""SELECT count(*) FROM (SELECT l.loan_id, l.principal - coalesce(sum(CASE
                            WHEN t.txn_type IN ('repayment','waiver','write_off') THEN t.principal_portion
                            WHEN t.txn_type = 'reversal' THEN -t.principal_portion END), 0) AS outstanding
                          FROM loans l LEFT JOIN loan_transactions t USING (loan_id) GROUP BY l.loan_id, l.principal)
                          WHERE outstanding < -0.001""").fetchone()[0] == 0
    header = (book / "payments" / "settlement_2025-03-01.csv").read_text().splitlines()[0]
    assert header.split(",") == list(SETTLEMENT_FILE_COLUMNS)


def test_the_book_has_every_behaviour(book):
    con = sqlite3.connect(book / "core_banking.sqlite")
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    assert q("SELECT count(*) FROM loans WHERE status = 'written_off'") > 10
    assert q("SELECT count(*) FROM loan_transactions WHERE txn_type = 'recovery'") > 0
    assert q("SELECT count(*) FROM loan_transactions WHERE txn_type = 'reversal'") > 0
    assert q("SELECT count(*) FROM loan_transactions WHERE txn_type = 'waiver'") > 0
    assert q("SELECT count(*) FROM loan_transactions WHERE date(booked_at) > value_date") > 10  # back-dated
    assert q("SELECT count(*) FROM loans WHERE status = 'settled'") > 50
    assert q("""SELECT count(*) FROM loans l WHERE status = 'settled' AND status_changed_on <
                (SELECT max(due_date) FROM repayment_schedule s WHERE s.loan_id = l.loan_id)""") > 5  # prepaid
    assert q("SELECT count(*) FROM collection_actions WHERE outcome = 'promise_to_pay'") > 10
    assert q("SELECT count(DISTINCT province) FROM customers") >= 10
    assert q("SELECT count(*) FROM customers WHERE province IS NULL") > 0
    failed = sum(p.read_text().count(",failed,") for p in (book / "payments").glob("*.csv"))
    assert failed > 100


def test_deterministic_and_advancing_equals_direct(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    simulate(a, **BOOK, until=date(2025, 6, 1))
    con = sqlite3.connect(a / "core_banking.sqlite")
    untouched = dict(con.execute("SELECT loan_id, updated_at FROM loans WHERE status = 'active'").fetchall())
    con.close()
    first_late = (a / "payments" / "settlement_2025-02-10.csv").exists()
    simulate(a, **BOOK, until=date(2025, 6, 2))
    simulate(a, **BOOK, until=date(2025, 7, 15))
    simulate(b, **BOOK, until=date(2025, 7, 15))
    simulate(c, **BOOK, until=date(2025, 7, 15))
    assert _dump(a) == _dump(b) == _dump(c)
    con = sqlite3.connect(a / "core_banking.sqlite")
    still = dict(con.execute("SELECT loan_id, updated_at FROM loans WHERE status = 'active'").fetchall())
    both = [k for k in untouched if k in still]
    assert len(both) > 100 and all(still[k] == untouched[k] for k in both)  # unchanged rows keep their stamp
    assert con.execute("SELECT max(date(booked_at)) FROM loan_transactions").fetchone()[0] <= "2025-07-15"
    assert con.execute("SELECT max(date(action_at)) FROM collection_actions").fetchone()[0] <= "2025-07-15"
    assert con.execute("SELECT max(disbursed_on) FROM loans").fetchone()[0] <= "2025-07-15"
    assert max(p.name for p in (a / "payments").glob("*.csv")) <= "settlement_2025-07-15.csv"
    assert first_late is True


def test_late_and_redelivered_files(tmp_path):
    late = "settlement_2025-02-10.csv"  # start + 40 days arrives 3 days late
    redelivered = "settlement_2025-02-25.csv"  # start + 55 days is corrected the next day
    simulate(tmp_path, **BOOK, until=date(2025, 2, 11))
    assert not (tmp_path / "payments" / late).exists()
    simulate(tmp_path, **BOOK, until=date(2025, 2, 25))
    assert (tmp_path / "payments" / late).exists()
    first = (tmp_path / "payments" / redelivered).read_bytes()
    simulate(tmp_path, **BOOK, until=date(2025, 2, 26))
    second = (tmp_path / "payments" / redelivered).read_bytes()
    assert second != first and second.startswith(first)
