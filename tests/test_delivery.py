"""The priority list reaches operations whole or not at all (SQLite and PostgreSQL)."""

import csv
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from orchestration.collections.delivery import COLUMNS, export_path, replace_day, write_csv


def _rows(n: int, action="call") -> pd.DataFrame:
    return pd.DataFrame([{
        "as_of_date": date(2025, 3, 31), "priority_rank": i + 1, "loan_id": f"L{i}", "customer_id": f"C{i}",
        "customer_name": "王芳", "phone": "13800000001", "dpd": 10 + i, "bucket": "M1",
        "overdue_amount": Decimal("410.50"), "outstanding_principal": Decimal("1200.00"), "risk_score": 0.5,
        "risk_tier": "medium", "priority_score": 600.0, "recommended_action": action, "strategy": "champion",
        "capacity_limited": False, "suggested_contact_hour": 10 if action == "call" else None,
        "reasons": "risk 50% (medium)",
    } for i in range(n)])


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_rerun_replaces_the_day_and_a_failed_write_keeps_the_old_rows(db, request, tmp_path):
    url = request.getfixturevalue(f"{db}_url")
    other_day = _rows(2).assign(as_of_date=date(2025, 3, 30))
    replace_day(url, date(2025, 3, 30), other_day)
    replace_day(url, date(2025, 3, 31), _rows(5))
    replace_day(url, date(2025, 3, 31), _rows(3, action="sms"))
    engine = sa.create_engine(url)
    with engine.connect() as c:
        got = c.exec_driver_sql("SELECT as_of_date, count(*), max(recommended_action) FROM collection_priority_list "
                                "GROUP BY as_of_date ORDER BY as_of_date").fetchall()
    assert [(str(d), n, a) for d, n, a in got] == [("2025-03-30", 2, "call"), ("2025-03-31", 3, "sms")]

    broken = _rows(4)
    broken.loc[3, "loan_id"] = broken.loc[0, "loan_id"]  # violates the key half-way through the insert
    with pytest.raises(sa.exc.IntegrityError):
        replace_day(url, date(2025, 3, 31), broken)
    with engine.connect() as c:
        n, action = c.exec_driver_sql("SELECT count(*), max(recommended_action) FROM collection_priority_list "
                                      "WHERE as_of_date = '2025-03-31'").fetchone()
    assert (n, action) == (3, "sms")
    engine.dispose()


def test_csv_is_written_whole_or_not_at_all(tmp_path):
    path = export_path(tmp_path, "2025-03-31")
    write_csv(_rows(3), path)
    with path.open(encoding="utf-8") as f:
        lines = list(csv.reader(f))
    assert lines[0] == COLUMNS
    assert lines[1][COLUMNS.index("capacity_limited")] == "false"
    assert lines[1][COLUMNS.index("overdue_amount")] == "410.50"
    assert lines[1][COLUMNS.index("customer_name")] == "王芳"
    sms = _rows(1, action="sms")
    write_csv(sms, path)
    assert path.read_text(encoding="utf-8").splitlines()[1].split(",")[COLUMNS.index("suggested_contact_hour")] == ""

    before = path.read_bytes()
    bad = _rows(3).astype(object)
    bad.loc[2, "reasons"] = _Explodes()
    with pytest.raises(RuntimeError):
        write_csv(bad, path)
    assert path.read_bytes() == before


class _Explodes:
    def __str__(self):
        raise RuntimeError("killed while writing")
