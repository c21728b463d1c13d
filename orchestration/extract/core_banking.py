"""Incremental extraction of the core-banking tables from any SQLAlchemy URL.

Why hand-written rather than dlt: the row rules of business_rules.md section 9
(quarantine with reasons, first delivery wins, reversal checks against the
ledger already loaded) must run inside the same DuckDB transaction as the load
and its watermark, and money must go text -> DECIMAL without a float hop.
dlt would load first and leave all of that to a second pass over the data.

Watermarks (raw._watermarks): the append-only ledger by booked_at, collection
actions by action_at, customers and loans by updated_at, the schedule for
loans touched since the last run; products are small and read whole. Every
read overlaps its watermark (>=) and identical re-deliveries are skipped, so a
re-run adds nothing twice.
"""

import time
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import sqlalchemy as sa

from ..faults import crash_point
from ..memory import LARGE_BATCH_ROWS, release_freed_memory
from .load import LoadResult, load_batch
from .schema import (
    COLLECTION_ACTIONS,
    CUSTOMERS,
    LOAN_PRODUCTS,
    LOAN_TRANSACTIONS,
    LOANS,
    REPAYMENT_SCHEDULE,
    TableSpec,
    create_raw_schema,
)

FETCH_ROWS = 200_000


class SourceStructureError(RuntimeError):
    """The source is not shaped as source_contract.md says (missing table or column)."""


class SourceUnreachableError(RuntimeError):
    pass


@dataclass(frozen=True)
class Incremental:
    watermark_column: str | None  # None: read whole table
    via_loans: bool = False  # schedule: rows of loans updated since the loans watermark


INCREMENTAL = {
    "loan_products": Incremental(None),
    "customers": Incremental("updated_at"),
    "loans": Incremental("updated_at"),
    "repayment_schedule": Incremental(None, via_loans=True),
    "loan_transactions": Incremental("booked_at"),
    "collection_actions": Incremental("action_at"),
}

WATERMARKS_DDL = "CREATE TABLE IF NOT EXISTS raw._watermarks (table_name VARCHAR PRIMARY KEY, value VARCHAR)"


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        return repr(v)  # shortest round-trip text: 2.675 stays 2.675, then DECIMAL rounds it
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ") if hasattr(v, "hour") else v.isoformat()
    return str(v)


def _to_arrow(names: list[str], rows: list[tuple], first_ord: int) -> pa.Table:
    """Columns as text. Fast path lets Arrow type a clean column (DuckDB then
    casts it to VARCHAR exactly); a column of mixed types goes through Python."""
    cols = list(zip(*rows)) if rows else [() for _ in names]
    arrays = []
    for values in cols:
        try:
            arr = pa.array(values)
            if pa.types.is_floating(arr.type) or pa.types.is_timestamp(arr.type):
                raise pa.ArrowInvalid("format in Python")
            if not (pa.types.is_string(arr.type) or pa.types.is_null(arr.type)):
                arr = pa.array([_text(v) for v in values], pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            arr = pa.array([_text(v) for v in values], pa.string())
        arrays.append(arr.cast(pa.string()))
    arrays.append(pa.array(range(first_ord, first_ord + len(rows)), pa.int64()))
    return pa.Table.from_arrays(arrays, names=names + ["_ord"])


def check_structure(engine: sa.Engine, spec: TableSpec) -> None:
    insp = sa.inspect(engine)
    if not insp.has_table(spec.name):
        raise SourceStructureError(
            f"core-banking table '{spec.name}' is missing from the source {engine.url.render_as_string(hide_password=True)}"
        )
    have = {c["name"].lower() for c in insp.get_columns(spec.name)}
    missing = [c for c in spec.columns if c not in have]
    if missing:
        raise SourceStructureError(
            f"core-banking table '{spec.name}' is missing column(s) {', '.join(missing)}"
        )


def connect_source(url: str, attempts: int = 4, backoff_s: float = 1.0) -> sa.Engine:
    """Engine for the source, after retrying a refused connection with backoff."""
    engine = sa.create_engine(url)
    last = None
    for i in range(attempts):
        try:
            with engine.connect() as c:
                c.exec_driver_sql("SELECT 1")
            return engine
        except sa.exc.OperationalError as e:  # refused, unknown host, locked
            last = e
            if i < attempts - 1:
                time.sleep(backoff_s * 2**i)
    safe = engine.url.render_as_string(hide_password=True)
    raise SourceUnreachableError(f"core-banking source {safe} unreachable after {attempts} attempts: {last.orig if last else ''}")


def _source_query(spec: TableSpec, inc: Incremental, wm: dict[str, str | None]) -> tuple[str, dict]:
    cols = ", ".join(spec.columns)
    if inc.via_loans and wm.get("loans"):
        return (f"SELECT {cols} FROM {spec.name} WHERE loan_id IN "
                "(SELECT loan_id FROM loans WHERE updated_at >= :wm)", {"wm": wm["loans"]})
    if inc.watermark_column and wm.get(spec.name):
        return f"SELECT {cols} FROM {spec.name} WHERE {inc.watermark_column} >= :wm", {"wm": wm[spec.name]}
    return f"SELECT {cols} FROM {spec.name}", {}


def _stage_batch(con, engine: sa.Engine, spec: TableSpec, sql: str, params: dict) -> str:
    batch = f"__batch_{spec.name}"
    names = list(spec.columns)
    ddl = ", ".join(f"{c} VARCHAR" for c in names)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {batch} ({ddl}, _ord BIGINT)")
    n = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(sa.text(sql), params)
        while rows := result.fetchmany(FETCH_ROWS):
            chunk = _to_arrow(names, [tuple(r) for r in rows], n)
            con.register("__chunk", chunk)
            con.execute(f"INSERT INTO {batch} SELECT * FROM __chunk")
            con.unregister("__chunk")
            n += len(rows)
    return batch


def _extra_rules(spec: TableSpec) -> list[tuple[str, str]]:
    loan_exists = "EXISTS (SELECT 1 FROM raw.loans l WHERE l.loan_id = t.loan_id)"
    if spec is LOANS:
        return [
            ("NOT EXISTS (SELECT 1 FROM raw.customers c WHERE c.customer_id = t.customer_id)", "unknown_customer"),
            ("NOT EXISTS (SELECT 1 FROM raw.loan_products p WHERE p.product_id = t.product_id)", "unknown_product"),
            ("t.principal <= 0", "non_positive_amount"),
        ]
    if spec is REPAYMENT_SCHEDULE:
        return [(f"NOT {loan_exists}", "unknown_loan")]
    if spec is COLLECTION_ACTIONS:
        return [(f"NOT {loan_exists}", "unknown_loan"), ("t.promised_amount <= 0", "non_positive_amount")]
    if spec is LOAN_TRANSACTIONS:
        # (only the repayments the batch's reversals name: the ledger holds every repayment ever loaded)
        repayment = """(SELECT txn_id, amount FROM raw.loan_transactions WHERE txn_type = 'repayment'
                          AND txn_id IN (SELECT reverses_txn_id FROM __typed WHERE txn_type = 'reversal')
                        UNION ALL
                        SELECT txn_id, amount FROM (SELECT DISTINCT ON (txn_id) txn_id, amount FROM __typed
                        WHERE txn_type = 'repayment' ORDER BY txn_id, _ord))"""
        return [
            (f"NOT {loan_exists}", "unknown_loan"),
            ("t.amount <= 0", "non_positive_amount"),
            ("t.value_date < (SELECT l.disbursed_on FROM raw.loans l WHERE l.loan_id = t.loan_id)",
             "value_date_before_disbursement"),
            (f"t.txn_type = 'reversal' AND NOT EXISTS (SELECT 1 FROM {repayment} r WHERE r.txn_id = t.reverses_txn_id)",
             "reversal_of_unknown_repayment"),
            (f"t.txn_type = 'reversal' AND NOT EXISTS (SELECT 1 FROM {repayment} r "
             "WHERE r.txn_id = t.reverses_txn_id AND r.amount = t.amount)", "reversal_amount_mismatch"),
            ("t.txn_type = 'reversal' AND (EXISTS (SELECT 1 FROM raw.loan_transactions x WHERE x.txn_type = 'reversal' "
             "AND x.reverses_txn_id = t.reverses_txn_id AND x.txn_id <> t.txn_id) OR EXISTS (SELECT 1 FROM __typed y "
             "WHERE y.txn_type = 'reversal' AND y.reverses_txn_id = t.reverses_txn_id AND y.txn_id <> t.txn_id "
             "AND y._ord < t._ord))", "duplicate_reversal"),
        ]
    return []


def _new_watermark(con, spec: TableSpec, inc: Incremental) -> str | None:
    if not inc.watermark_column:
        return None
    v = con.execute(f"SELECT max({inc.watermark_column}) FROM raw.{spec.name}").fetchone()[0]
    return None if v is None else v.isoformat(sep=" ")


def extract_core_banking(con, source_url: str, business_date: str,
                         loaded_at: datetime | None = None) -> dict[str, LoadResult]:
    """Bring every core-banking table's new and changed rows into raw (one transaction per table)."""
    create_raw_schema(con)
    con.execute(WATERMARKS_DDL)
    engine = connect_source(source_url)
    try:
        specs = (LOAN_PRODUCTS, CUSTOMERS, LOANS, REPAYMENT_SCHEDULE, LOAN_TRANSACTIONS, COLLECTION_ACTIONS)
        for spec in specs:  # all structural problems before loading anything
            check_structure(engine, spec)
        wm = dict(con.execute("SELECT table_name, value FROM raw._watermarks").fetchall())
        results = {}
        for spec in specs:
            inc = INCREMENTAL[spec.name]
            sql, params = _source_query(spec, inc, wm)
            con.execute("BEGIN TRANSACTION")
            try:
                batch = _stage_batch(con, engine, spec, sql, params)
                results[spec.name] = load_batch(
                    con, spec, batch, source_label=spec.name, business_date=business_date,
                    extra_rules=_extra_rules(spec), loaded_at=loaded_at,
                )
                con.execute(f"DROP TABLE {batch}")
                new_wm = _new_watermark(con, spec, inc)
                if new_wm:
                    con.execute("INSERT OR REPLACE INTO raw._watermarks VALUES (?, ?)", [spec.name, new_wm])
                con.execute("COMMIT")
                if spec is LOANS:
                    crash_point("after_loans_loaded")
                if results[spec.name].extracted >= LARGE_BATCH_ROWS:
                    release_freed_memory()
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return results
    finally:
        engine.dispose()
