"""Handing the priority list to operations: a CSV file and the ops database table.

The CSV is written to a temporary file and renamed, so a reader sees the
previous file or the new one, whole. The table's rows for the day are replaced
in one transaction. This is the only output that carries contact data.
"""

import csv
import os
from decimal import Decimal
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

COLUMNS = [
    "as_of_date", "priority_rank", "loan_id", "customer_id", "customer_name", "phone", "dpd", "bucket",
    "overdue_amount", "outstanding_principal", "risk_score", "risk_tier", "priority_score", "recommended_action",
    "strategy", "capacity_limited", "suggested_contact_hour", "reasons",
]

MONEY = ("overdue_amount", "outstanding_principal")

metadata = sa.MetaData()
collection_priority_list = sa.Table(
    "collection_priority_list", metadata,
    sa.Column("as_of_date", sa.Date, nullable=False, index=True),
    sa.Column("priority_rank", sa.Integer, nullable=False),
    sa.Column("loan_id", sa.String(64), nullable=False),
    sa.Column("customer_id", sa.String(64)),
    sa.Column("customer_name", sa.String(200)),
    sa.Column("phone", sa.String(64)),
    sa.Column("dpd", sa.Integer),
    sa.Column("bucket", sa.String(8)),
    sa.Column("overdue_amount", sa.Numeric(18, 2)),
    sa.Column("outstanding_principal", sa.Numeric(18, 2)),
    sa.Column("risk_score", sa.Float),
    sa.Column("risk_tier", sa.String(8)),
    sa.Column("priority_score", sa.Float),
    sa.Column("recommended_action", sa.String(32)),
    sa.Column("strategy", sa.String(16)),
    sa.Column("capacity_limited", sa.Boolean),
    sa.Column("suggested_contact_hour", sa.Integer),
    sa.Column("reasons", sa.Text),
    sa.PrimaryKeyConstraint("as_of_date", "loan_id"),
)


def _csv_value(v):
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Decimal):
        return f"{v:.2f}"
    return str(v)


def _cents(v) -> Decimal | None:
    """DECIMAL(18,2) money that may have travelled as float: back to exact cents."""
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    return Decimal(f"{float(v):.2f}") if not isinstance(v, Decimal) else v.quantize(Decimal("0.01"))


def _python_values(rows: pd.DataFrame, column: str) -> list:
    """One column as Python values (what iterating the frame row by row gives), None where missing."""
    series = rows[column]
    values = series.tolist()
    missing = series.isna()
    if missing.any():
        values = [None if m else v for v, m in zip(values, missing.tolist())]
    return values


def write_csv(rows: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # column by column, not row by row: the list of a 1M-loan book has ~100k rows
    columns = []
    for c in COLUMNS:
        values = _python_values(rows, c)
        if c in MONEY:
            values = [_cents(v) for v in values]
        # str and int (most cells) need no conversion rules
        columns.append([v if type(v) is str else str(v) if type(v) is int else _csv_value(v) for v in values])
    try:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            w.writerows(zip(*columns))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _columns(rows: pd.DataFrame) -> list[list]:
    """The rows as one list of Python values per column of COLUMNS (money as exact cents)."""
    columns = []
    for c in COLUMNS:
        values = _python_values(rows, c)
        if c in MONEY:
            values = [_cents(v) for v in values]
        elif c in ("priority_rank", "dpd", "suggested_contact_hour"):
            values = [None if v is None else int(v) for v in values]
        elif c == "capacity_limited":
            values = [bool(v) for v in values]
        columns.append(values)
    return columns


def _insert(c: sa.Connection, columns: list[list]) -> None:
    """SQLite (the default ops database): each column through its SQLAlchemy type once, then one
    driver executemany; SQLAlchemy's per-row parameter handling took ~3 s of 100k rows. Other
    databases keep SQLAlchemy's batched multi-row INSERTs, which their drivers need."""
    if c.dialect.name != "sqlite":
        c.execute(collection_priority_list.insert(), [dict(zip(COLUMNS, values)) for values in zip(*columns)])
        return
    processed = []
    for name, values in zip(COLUMNS, columns):
        bind = collection_priority_list.c[name].type.bind_processor(c.dialect)
        processed.append(values if bind is None else [None if v is None else bind(v) for v in values])
    c.exec_driver_sql(f"INSERT INTO {collection_priority_list.name} ({', '.join(COLUMNS)}) "
                      f"VALUES ({', '.join('?' for _ in COLUMNS)})", list(zip(*processed)))


def replace_day(ops_url: str, as_of_date, rows: pd.DataFrame) -> int:
    engine = sa.create_engine(ops_url)
    try:
        metadata.create_all(engine)
        with engine.begin() as c:  # one transaction: the day's old rows or the new ones, never a mix
            c.execute(collection_priority_list.delete().where(collection_priority_list.c.as_of_date == as_of_date))
            if len(rows):
                _insert(c, _columns(rows))
        return len(rows)
    finally:
        engine.dispose()


def export_path(home: Path, as_of_date: str) -> Path:
    return home / "exports" / "collection_priority" / f"collection_priority_{as_of_date}.csv"
