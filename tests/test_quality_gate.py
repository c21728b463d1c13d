"""A delivery with too many bad rows is not published; the data engineers are told why."""

import sqlite3
from datetime import date

import duckdb
import pytest

from orchestration.simulator import simulate

BOOK = {"loans": 300, "start": date(2025, 1, 1), "end": date(2025, 4, 30), "seed": 9}


def _published_dates(home):
    with duckdb.connect(str(home / "bi" / "arrears.duckdb"), read_only=True) as con:
        return [r[0] for r in con.execute(
            "SELECT DISTINCT as_of_date::VARCHAR FROM marts.fct_loan_delinquency_daily ORDER BY 1").fetchall()]


def test_quarantine_share_above_limit_blocks_publication(arrears_home, capsys):
    from orchestration.cli import run_dates

    simulate(arrears_home / "source", **BOOK, until=date(2025, 4, 29))
    run_dates(["2025-04-29"])
    simulate(arrears_home / "source", **BOOK, until=date(2025, 4, 30))
    con = sqlite3.connect(arrears_home / "source" / "core_banking.sqlite")
    new_rows = con.execute("SELECT count(*) FROM loan_transactions WHERE date(booked_at) = '2025-04-30'").fetchone()[0]
    # a bad delivery: repayments of loans that do not exist, 5% of the day's new rows and more
    bad = max(20, new_rows // 5)
    con.executemany("INSERT INTO loan_transactions VALUES (?, 'L_NOPE', 'repayment', 10.0, 10.0, 0, 0, "
                    "'2025-04-30', '2025-04-30 12:00:00', NULL, NULL)", [(f"TBAD{i}",) for i in range(bad)])
    con.commit()
    con.close()
    with pytest.raises(SystemExit):
        run_dates(["2025-04-30"])
    err = capsys.readouterr()
    assert "quarantine_share_within_limit" in err.err + err.out
    assert "ALERT [quality_gate] 2025-04-30" in err.err + err.out
    assert _published_dates(arrears_home) == ["2025-04-29"]  # the day was not published
    with duckdb.connect(str(arrears_home / "warehouse" / "arrears.duckdb"), read_only=True) as wh:
        assert wh.execute("SELECT count(*) FROM raw.quarantine WHERE reason = 'unknown_loan' AND source = "
                          "'loan_transactions'").fetchone()[0] == bad
