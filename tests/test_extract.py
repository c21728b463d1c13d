"""Extraction into the raw layer against real SQLite, PostgreSQL and MariaDB sources."""

import os
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from orchestration.extract.core_banking import SourceStructureError, SourceUnreachableError, connect_source, extract_core_banking
from orchestration.extract.gateway import SettlementFileError, extract_settlement_files
from source_book import create_source, customer, insert, loan, product, schedule, txn, write_settlement_file


def _good_book(engine):
    insert(engine, "loan_products", [product()])
    insert(engine, "customers", [customer()])
    insert(engine, "loans", [loan()])
    insert(engine, "repayment_schedule", schedule())
    insert(engine, "loan_transactions", [
        txn("T1", amount=410.0, principal_portion=400.0),
        txn("T2", typ="reversal", amount=410.0, principal_portion=400.0, reverses_txn_id="T1",
            booked_at="2025-02-12 09:00:00", value_date="2025-02-12"),
        txn("T3", amount=2.675, value_date="2025-03-10", booked_at="2025-03-10 10:00:00"),
    ])
    insert(engine, "collection_actions", [
        {"action_id": "A1", "loan_id": "L1", "action_at": "2025-02-13 10:15:00", "channel": "call",
         "agent_id": "AG001", "outcome": "promise_to_pay", "promised_amount": 410.0, "promised_date": "2025-02-15"},
    ])


def _raw(con, sql):
    return con.execute(sql).fetchall()


def test_typed_sources_give_identical_raw_rows(any_source_url, tmp_path):
    engine = create_source(any_source_url)
    _good_book(engine)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    res = extract_core_banking(con, any_source_url, "2025-03-31")
    assert {k: (r.inserted, r.quarantined) for k, r in res.items()} == {
        "loan_products": (1, 0), "customers": (1, 0), "loans": (1, 0), "repayment_schedule": (3, 0),
        "loan_transactions": (3, 0), "collection_actions": (1, 0)}
    assert _raw(con, "SELECT txn_id, amount, value_date::VARCHAR, booked_at::VARCHAR FROM raw.loan_transactions ORDER BY 1") == [
        ("T1", Decimal("410.00"), "2025-02-10", "2025-02-10 12:00:00"),
        ("T2", Decimal("410.00"), "2025-02-12", "2025-02-12 09:00:00"),
        # 2.675 is stored as 2.67499999... in a REAL/NUMERIC(18,2) column: half away from zero on the text
        ("T3", Decimal("2.68"), "2025-03-10", "2025-03-10 10:00:00"),
    ]
    assert _raw(con, "SELECT promised_amount, promised_date::VARCHAR, action_at::VARCHAR FROM raw.collection_actions") == [
        (Decimal("410.00"), "2025-02-15", "2025-02-13 10:15:00")]
    assert _raw(con, "SELECT principal, annual_rate, disbursed_on::VARCHAR, status_changed_on FROM raw.loans") == [
        (Decimal("1200.00"), Decimal("0.180000"), "2025-01-10", None)]


def test_rerun_adds_nothing_and_picks_up_only_new_and_changed_rows(sqlite_url, tmp_path):
    engine = create_source(sqlite_url)
    _good_book(engine)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    extract_core_banking(con, sqlite_url, "2025-03-31")
    again = extract_core_banking(con, sqlite_url, "2025-03-31")
    assert sum(r.inserted + r.updated + r.quarantined for r in again.values()) == 0
    # the ledger read starts at the last booking seen, not at the beginning
    assert again["loan_transactions"].extracted == 1

    insert(engine, "loan_transactions", [txn("T4", amount=410.0, value_date="2025-03-09", booked_at="2025-04-01 08:00:00")])
    with engine.begin() as c:
        c.exec_driver_sql("UPDATE loans SET status='settled', status_changed_on='2025-04-01', "
                          "updated_at='2025-04-01 08:00:00' WHERE loan_id='L1'")
    third = extract_core_banking(con, sqlite_url, "2025-04-01")
    assert (third["loan_transactions"].inserted, third["loans"].updated) == (1, 1)
    assert _raw(con, "SELECT status, status_changed_on::VARCHAR FROM raw.loans") == [("settled", "2025-04-01")]
    assert _raw(con, "SELECT count(*) FROM raw.loan_transactions") == [(4,)]


def test_every_bad_row_is_quarantined_with_its_reason(sqlite_url, tmp_path):
    engine = create_source(sqlite_url, loose=True)
    _good_book(engine)
    insert(engine, "customers", [customer("C2", employment_type="astronaut"), customer(None),
                                 customer("C1", full_name="Other Person")])
    insert(engine, "loans", [loan("L2", customer_id="C404"), loan("L3", product_id="P9"),
                             loan("L4", disbursed_on="2025-02-30"), loan("L5", principal=0),
                             loan("L6", channel="telegram")])
    insert(engine, "repayment_schedule", schedule("L404"))
    insert(engine, "loan_transactions", [
        txn("T1", amount=999.0),                                   # same key, other content
        txn("T10", lid="L404"),                                    # unknown loan
        txn("T11", amount=0),                                      # amount <= 0
        txn("T12", value_date="2025/03/01"),                       # not YYYY-MM-DD
        txn("T13", value_date="2025-01-05"),                       # before disbursement 2025-01-10
        txn("T14", typ="reversal", reverses_txn_id="T999"),        # reversal of an unknown repayment
        txn("T15", typ="reversal", amount=2.0, reverses_txn_id="T3"),  # amount differs from its repayment's
        txn("T16", typ="reversal", amount=410.0, reverses_txn_id="T1"),  # second reversal of T1
        txn("T17", typ="refund"),                                  # unknown code
        txn(None),                                                 # missing key
        txn("T18", booked_at="yesterday"),                         # invalid timestamp
    ])
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    res = extract_core_banking(con, sqlite_url, "2025-03-31")
    got = sorted(_raw(con, "SELECT source, record_key, reason FROM raw.quarantine"))
    assert got == sorted([
        ("customers", "C2", "unknown_code"),
        ("customers", "", "missing_key"),
        ("customers", "C1", "duplicate_key"),
        ("loans", "L2", "unknown_customer"),
        ("loans", "L3", "unknown_product"),
        ("loans", "L4", "invalid_date"),
        ("loans", "L5", "non_positive_amount"),
        ("loans", "L6", "unknown_code"),
        ("repayment_schedule", "L404|1", "unknown_loan"),
        ("repayment_schedule", "L404|2", "unknown_loan"),
        ("repayment_schedule", "L404|3", "unknown_loan"),
        ("loan_transactions", "T1", "duplicate_key"),
        ("loan_transactions", "T10", "unknown_loan"),
        ("loan_transactions", "T11", "non_positive_amount"),
        ("loan_transactions", "T12", "invalid_date"),
        ("loan_transactions", "T13", "value_date_before_disbursement"),
        ("loan_transactions", "T14", "reversal_of_unknown_repayment"),
        ("loan_transactions", "T15", "reversal_amount_mismatch"),
        ("loan_transactions", "T16", "duplicate_reversal"),
        ("loan_transactions", "T17", "unknown_code"),
        ("loan_transactions", "", "missing_key"),
        ("loan_transactions", "T18", "invalid_timestamp"),
    ])
    # the first delivery of a key is the one kept
    assert _raw(con, "SELECT full_name FROM raw.customers") == [("Wang Fang",)]
    assert _raw(con, "SELECT amount FROM raw.loan_transactions WHERE txn_id = 'T1'") == [(Decimal("410.00"),)]
    # every extracted row is either loaded or quarantined
    for r in res.values():
        assert r.extracted == r.inserted + r.quarantined, r
    # quarantine keeps the raw row, and a re-run neither re-quarantines nor loads it
    raw_row = _raw(con, "SELECT raw_row FROM raw.quarantine WHERE record_key = 'T12'")[0][0]
    assert '"value_date":"2025/03/01"' in raw_row
    again = extract_core_banking(con, sqlite_url, "2025-04-01")
    assert sum(r.quarantined for r in again.values()) == 0
    assert _raw(con, "SELECT DISTINCT first_seen_date::VARCHAR FROM raw.quarantine") == [("2025-03-31",)]


@pytest.mark.parametrize("drop,expected", [
    ("DROP TABLE collection_actions", "core-banking table 'collection_actions' is missing"),
    ("ALTER TABLE loans DROP COLUMN disbursed_on", "core-banking table 'loans' is missing column(s) disbursed_on"),
])
def test_structural_problem_fails_naming_table_and_column(sqlite_url, tmp_path, drop, expected):
    engine = create_source(sqlite_url)
    _good_book(engine)
    with engine.begin() as c:
        c.exec_driver_sql(drop)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    with pytest.raises(SourceStructureError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        extract_core_banking(con, sqlite_url, "2025-03-31")
    assert _raw(con, "SELECT count(*) FROM raw.loans") == [(0,)]  # nothing half-loaded


def test_unreachable_source_retries_then_names_it():
    url = "postgresql+psycopg2://postgres@127.0.0.1:1/test"  # nothing listens on port 1
    with pytest.raises(SourceUnreachableError, match=r"127\.0\.0\.1:1/test unreachable after 4 attempts"):
        connect_source(url, backoff_s=0.01)


def _pay(pid, amount="410.00", status="succeeded", **kw):
    return {"payment_id": pid, "loan_id": "L1", "amount": amount, "currency": "CNY", "status": status,
            "channel": "alipay", "initiated_at": "2025-02-10 08:00:00",
            "settled_at": "2025-02-10 09:00:00" if status != "failed" else None,
            "failure_reason": "insufficient_funds" if status == "failed" else None} | kw


def test_settlement_files_redelivery_duplicates_and_bad_headers(sqlite_url, tmp_path):
    engine = create_source(sqlite_url)
    _good_book(engine)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    extract_core_banking(con, sqlite_url, "2025-02-11")
    landing = tmp_path / "payments"
    write_settlement_file(landing, "2025-02-10", [_pay("P1"), _pay("P2", status="failed"), _pay("P1", amount="1.00")])
    first = extract_settlement_files(con, str(landing), "2025-02-10")["gateway_settlements"]
    assert (first.extracted, first.inserted, first.quarantined) == (3, 2, 1)
    assert _raw(con, "SELECT record_key, reason FROM raw.quarantine") == [("2025-02-10|P1", "duplicate_key")]
    # unchanged file: not read again
    assert extract_settlement_files(con, str(landing), "2025-02-11")["gateway_settlements"].extracted == 0
    # a corrected delivery of the same day replaces the earlier one
    write_settlement_file(landing, "2025-02-10", [_pay("P1"), _pay("P3", amount="12.50")])
    extract_settlement_files(con, str(landing), "2025-02-11")
    assert _raw(con, "SELECT payment_id, amount FROM raw.gateway_settlements ORDER BY 1") == [
        ("P1", Decimal("410.00")), ("P3", Decimal("12.50"))]
    # a refund of P1 the next day is its own row, keyed by that day
    write_settlement_file(landing, "2025-02-11", [_pay("P1", status="refunded")])
    extract_settlement_files(con, str(landing), "2025-02-11")
    assert _raw(con, "SELECT settlement_date::VARCHAR, status FROM raw.gateway_settlements WHERE payment_id='P1' ORDER BY 1") == [
        ("2025-02-10", "succeeded"), ("2025-02-11", "refunded")]

    (landing / "settlement_2025-02-12.csv").write_text("payment_id,loan_id,amount\nP9,L1,3.00\n")
    with pytest.raises(SettlementFileError, match=r"settlement file settlement_2025-02-12\.csv has a wrong header"):
        extract_settlement_files(con, str(landing), "2025-02-12")
    (landing / "settlement_2025-02-12.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SettlementFileError, match=r"settlement file settlement_2025-02-12\.csv is unreadable"):
        extract_settlement_files(con, str(landing), "2025-02-12")
    assert _raw(con, "SELECT count(*) FROM raw.gateway_settlements") == [(3,)]


def test_settlement_files_unchanged_since_read_are_not_read_again(sqlite_url, tmp_path, monkeypatch):
    engine = create_source(sqlite_url)
    _good_book(engine)
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    extract_core_banking(con, sqlite_url, "2025-02-11")
    landing = tmp_path / "payments"
    write_settlement_file(landing, "2025-02-10", [_pay("P1", amount="10.00")])
    write_settlement_file(landing, "2025-02-11", [_pay("P2", amount="20.00")])
    assert extract_settlement_files(con, str(landing), "2025-02-11")["gateway_settlements"].inserted == 2
    read = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self.name) or real_read_bytes(self))
    extract_settlement_files(con, str(landing), "2025-02-12")
    assert read == []  # nothing delivered since: no file read
    # the same bytes touched: read once, not loaded, then known by its new stat
    os.utime(landing / "settlement_2025-02-11.csv")
    assert extract_settlement_files(con, str(landing), "2025-02-12")["gateway_settlements"].extracted == 0
    assert read == ["settlement_2025-02-11.csv"]
    extract_settlement_files(con, str(landing), "2025-02-12")
    assert read == ["settlement_2025-02-11.csv"]
    # a corrected delivery of the same size with its old mtime set back is still a new delivery
    path = landing / "settlement_2025-02-10.csv"
    before = path.stat()
    time.sleep(0.05)  # file times advance by the kernel's clock tick
    write_settlement_file(landing, "2025-02-10", [_pay("P1", amount="90.00")])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    extract_settlement_files(con, str(landing), "2025-02-12")
    assert _raw(con, "SELECT payment_id, amount FROM raw.gateway_settlements ORDER BY 1") == [
        ("P1", Decimal("90.00")), ("P2", Decimal("20.00"))]


def test_list_history_of_an_older_warehouse_moves_to_raw_without_loss(tmp_path):
    from orchestration.extract.schema import create_raw_schema

    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute("CREATE TABLE marts.collection_priority_list_history (as_of_date DATE, priority_rank INTEGER, "
                    "loan_id VARCHAR, dpd INTEGER, bucket VARCHAR, risk_score DOUBLE, risk_tier VARCHAR, "
                    "priority_score DOUBLE, recommended_action VARCHAR, strategy VARCHAR, capacity_limited BOOLEAN)")
        con.execute("INSERT INTO marts.collection_priority_list_history VALUES "
                    "('2025-06-29', 1, 'L1', 12, 'M1', 0.7, 'high', 700.0, 'call', 'champion', false)")
        create_raw_schema(con)
        create_raw_schema(con)  # idempotent
        assert con.execute("SELECT loan_id, strategy FROM raw.collection_priority_list_history").fetchall() == [
            ("L1", "champion")]
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'marts'").fetchone()[0] == 0
