"""The daily job end to end through Dagster on a small simulated book."""

from datetime import date
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from orchestration import settings
from orchestration.simulator import simulate

BOOK = {"loans": 600, "start": date(2025, 1, 1), "end": date(2025, 6, 30), "seed": 11}


def _simulate(home: Path, until: str):
    simulate(home / "source", until=date.fromisoformat(until), **BOOK)


def _run(dates):
    from orchestration.cli import run_dates

    run_dates(dates)


def _bi_rows(home: Path, sql: str, params=()):
    with duckdb.connect(str(home / "bi" / "arrears.duckdb"), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


# flag_failed_debits is left out on purpose: business_rules.md counts a gateway payment on D when its
# file's day <= D, so a settlement file for a day <= D that arrives late, or is re-delivered corrected,
# after D changes D's flag by the rule's own definition.
FCT_ROWS = """SELECT loan_id, customer_key, dpd, bucket, missed_installments, overdue_amount, outstanding_principal,
                     severity, five_category, flag_missed_2plus, flag_large_overdue, flag_first_payment_default
              FROM marts.fct_loan_delinquency_daily WHERE as_of_date = ? ORDER BY loan_id"""
PORTFOLIO_ROWS = """SELECT * FROM marts.mart_portfolio_daily WHERE as_of_date = ?
                    ORDER BY segment_type, segment_value"""


def test_daily_runs_publish_every_date_and_later_data_changes_nothing(arrears_home, monkeypatch):
    # one month-end per dbt pass: the dbt asset must loop until every matured month-end is in
    monkeypatch.setenv("ARREARS_TRAINING_ROWS_PER_RUN", "1")
    # and snapshot dates in passes of about 1,000 loan rows before the day's build
    monkeypatch.setenv("ARREARS_SNAPSHOT_ROWS_PER_RUN", "1000")
    _simulate(arrears_home, until="2025-05-20")
    _run(["2025-05-19", "2025-05-20"])
    before = _bi_rows(arrears_home, FCT_ROWS, ["2025-05-20"])
    portfolio_before = _bi_rows(arrears_home, PORTFOLIO_ROWS, ["2025-05-20"])
    assert len(before) > 200
    assert {r[3] for r in before} >= {"M0", "M1"}

    # Six more weeks arrive in the source (back-dated bookings, late files, settlements, write-offs) ...
    _simulate(arrears_home, until="2025-06-30")
    _run(["2025-06-30", "2025-05-20"])
    # ... and re-processing 2025-05-20 gives exactly the rows it gave before.
    assert _bi_rows(arrears_home, FCT_ROWS, ["2025-05-20"]) == before
    assert _bi_rows(arrears_home, PORTFOLIO_ROWS, ["2025-05-20"]) == portfolio_before
    assert _bi_rows(arrears_home, "SELECT DISTINCT as_of_date::VARCHAR FROM marts.fct_loan_delinquency_daily ORDER BY 1") == [
        ("2025-05-19",), ("2025-05-20",), ("2025-06-30",)]
    _assert_no_personal_data(arrears_home)
    with duckdb.connect(str(arrears_home / "warehouse" / "arrears.duckdb"), read_only=True) as wh:
        per_month_end = wh.execute("SELECT as_of_date::VARCHAR, count(*) FROM intermediate.int_ml_training_snapshots "
                                   "GROUP BY 1 ORDER BY 1").fetchall()
        on_book = wh.execute("SELECT as_of_date::VARCHAR, count(*) FROM intermediate.int_loan_state_snapshots "
                             "WHERE is_month_end AND is_on_book AND as_of_date <= '2025-05-31' GROUP BY 1 ORDER BY 1").fetchall()
    assert [d for d, _ in per_month_end] == ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31"]
    assert per_month_end == on_book
    with duckdb.connect(str(arrears_home / "warehouse" / "arrears.duckdb"), read_only=True) as wh:
        snapshot_dates = [r[0] for r in wh.execute("SELECT DISTINCT as_of_date::VARCHAR FROM "
                                                   "intermediate.int_loan_state_snapshots ORDER BY 1").fetchall()]
    month_ends = ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30"]
    plus_30 = ["2025-03-02", "2025-03-30", "2025-04-30", "2025-05-30", "2025-06-30"]  # m + 30 <= 06-30
    assert snapshot_dates == sorted(set(month_ends + plus_30))
    # every suite stored its GX result and the runs rendered their Data Docs pages (asset gx_data_docs)
    from orchestration.quality.gx_suites import render_data_docs

    quality = arrears_home / "quality"
    assert len(list((quality / "gx" / "uncommitted" / "validations").rglob("*.json"))) >= 4 * 12
    assert render_data_docs(quality) == 0
    # runs are recorded in the persistent Dagster instance under ARREARS_HOME
    runs = list((arrears_home / "dagster").rglob("runs.db")) or list((arrears_home / "dagster").rglob("*.db"))
    assert runs, "no Dagster run storage under ARREARS_HOME"


def test_structural_source_problem_fails_and_keeps_published_marts(arrears_home, capsys):
    _simulate(arrears_home, until="2025-03-10")
    _run(["2025-03-10"])
    published = _bi_rows(arrears_home, "SELECT count(*) FROM marts.fct_loan_delinquency_daily")
    engine = sa.create_engine(f"sqlite:///{arrears_home / 'source' / 'core_banking.sqlite'}")
    with engine.begin() as c:
        c.exec_driver_sql("ALTER TABLE loan_transactions DROP COLUMN value_date")
    with pytest.raises(SystemExit):
        _run(["2025-03-11"])
    assert "core-banking table 'loan_transactions' is missing column(s) value_date" in capsys.readouterr().err
    assert _bi_rows(arrears_home, "SELECT count(*) FROM marts.fct_loan_delinquency_daily") == published
    assert settings.bi_path().exists()


def _assert_no_personal_data(home: Path):
    """No value in any column of bi/arrears.duckdb looks like a phone, national ID, email or a source name."""
    import re
    import sqlite3

    src = sqlite3.connect(home / "source" / "core_banking.sqlite")
    names = {r[0] for r in src.execute("SELECT full_name FROM customers")}
    ids = {r[0] for r in src.execute("SELECT customer_id FROM customers")}
    src.close()
    patterns = [re.compile(r"^1[3-9]\d{9}$"), re.compile(r"^\d{17}[\dX]$"), re.compile(r"@")]
    with duckdb.connect(str(home / "bi" / "arrears.duckdb"), read_only=True) as con:
        columns = con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                              "WHERE table_schema = 'marts'").fetchall()
        assert len(columns) > 20
        for schema, table, column in columns:
            values = {str(r[0]) for r in con.execute(f"SELECT DISTINCT {column} FROM {schema}.{table}").fetchall()
                      if r[0] is not None}
            assert not values & names, (table, column)
            assert not values & ids, (table, column)
            for p in patterns:
                assert not any(p.search(v) for v in values), (table, column, p.pattern)
