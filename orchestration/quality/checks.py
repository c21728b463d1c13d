"""Data-quality gates as Dagster asset checks.

Blocking checks fail with ERROR on a critical expectation, so the day's marts
and BI publication downstream do not run; warnings are reported and do not
block. Every failed expectation is also recorded in raw.expectation_failures,
which feeds mart_data_quality.
"""

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from ..alerts import send_alert
from ..executor import PRIORITY
from ..extract.assets import run_loaded_at
from ..extract.schema import ALL_TABLES, CORE_BANKING_TABLES, GATEWAY_SETTLEMENTS
from ..resources import ArrearsHome, Warehouse
from ..policy import policy_threshold
from .gx_suites import SuiteOutcome, run_suite, run_suite_on_query, suite_columns

FAILURES_DDL = """CREATE TABLE IF NOT EXISTS raw.expectation_failures (
  as_of_date DATE, source VARCHAR, expectation VARCHAR, severity VARCHAR, rows BIGINT, checked_at TIMESTAMP)"""


def _record(con, business_date: str, source: str, outcome: SuiteOutcome) -> None:
    con.execute(FAILURES_DDL)
    con.execute("DELETE FROM raw.expectation_failures WHERE as_of_date = ? AND source = ?", [business_date, source])
    for severity, failures in (("critical", outcome.critical_failures), ("warning", outcome.warnings)):
        for f in failures:
            rows = f["unexpected"] if isinstance(f["unexpected"], int) else 1
            name = f["expectation"] + (f"({f['column']})" if f.get("column") else "")
            con.execute("INSERT INTO raw.expectation_failures VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP)",
                        [business_date, source, name, severity, rows])


def _result(context, outcome: SuiteOutcome, extra: dict | None = None) -> dg.AssetCheckResult:
    if outcome.blocking:
        send_alert("quality_gate", context.partition_key,
                   f"publication stopped by {outcome.describe()}", {"failures": outcome.critical_failures},
                   logger=context.log)
    meta = {
        "rows_validated": outcome.rows,
        "expectations_evaluated": outcome.evaluated,
        "summary": outcome.describe(),
        "failures": dg.MetadataValue.json(outcome.critical_failures + outcome.warnings),
    }
    if outcome.docs_path:
        meta["gx_data_docs"] = dg.MetadataValue.url("file://" + outcome.docs_path)
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN,
        metadata=meta | (extra or {}),
        description=outcome.describe(),
    )


def gx_root(home: ArrearsHome) -> Path:
    return Path(home.path) / "quality"


def _raw_suite_check(spec) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=dg.AssetKey(["raw", spec.name]), name=f"gx_raw_{spec.name}", blocking=True,
                    description=f"GX suite expectations/raw_{spec.name}.json on the rows this run loaded.")
    def _check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome):
        loaded_at = run_loaded_at(context)
        with warehouse.connect() as con:
            outcome = run_suite_on_query(con, f"SELECT * EXCLUDE (_loaded_at) FROM raw.{spec.name} WHERE _loaded_at = ?",
                                         [loaded_at], f"raw_{spec.name}", gx_root=gx_root(arrears_home))
            _record(con, context.partition_key, f"raw.{spec.name}", outcome)
        return _result(context, outcome)

    return _check


@dg.asset_check(asset=dg.AssetKey(["raw", GATEWAY_SETTLEMENTS.name]), name="quarantine_share_within_limit",
                blocking=True,
                description="Rows newly quarantined by this run, as a share of the rows it extracted as new or "
                            "changed, stay within policy (quarantine_max_share); above it the day is not published.")
def quarantine_gate(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome):
    loaded_at = run_loaded_at(context)
    with warehouse.connect() as con:
        loaded = sum(con.execute(f"SELECT count(*) FROM raw.{s.name} WHERE _loaded_at = ?", [loaded_at]).fetchone()[0]
                     for s in ALL_TABLES)
        by_reason = con.execute("""SELECT source, reason, count(*) FROM raw.quarantine WHERE first_seen_at = ?
                                   GROUP BY ALL ORDER BY 3 DESC""", [loaded_at]).fetchall()
        quarantined = sum(n for _, _, n in by_reason)
        share = quarantined / (loaded + quarantined) if loaded + quarantined else 0.0
        limit = policy_threshold("quarantine_max_share")
        outcome = run_suite(pd.DataFrame({"quarantined_share": [share]}), "quarantine_share",
                            {"max_share": limit}, gx_root=gx_root(arrears_home))
        _record(con, context.partition_key, "quarantine", outcome)
    if outcome.blocking:
        outcome.critical_failures[0]["why"] = (
            f"{quarantined} of {loaded + quarantined} new or changed rows quarantined "
            f"({share:.2%} > {limit:.2%}); by reason: {by_reason[:10]}")
    return _result(context, outcome, {"rows_new_or_changed": loaded + quarantined, "rows_quarantined": quarantined,
                             "quarantined_share": share, "limit": limit,
                             "by_reason": dg.MetadataValue.json([list(r) for r in by_reason])})


# blocking=True only orders it before the dbt build, so its failures are in the day's
# mart_data_quality: its one expectation is a warning, which never stops the run.
@dg.asset_check(asset=dg.AssetKey(["raw", GATEWAY_SETTLEMENTS.name]), name="gateway_payments_posted",
                blocking=True,
                description="Every payment the gateway settled as succeeded (state on D) 2 to 30 days before D "
                            "is posted to the ledger as a repayment with its payment_id, as known on D.")
def gateway_posting(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome):
    day = context.partition_key
    with warehouse.connect() as con:
        df = con.execute("""
            WITH known AS (
              SELECT payment_id, loan_id, amount, settlement_date, status,
                     row_number() OVER (PARTITION BY payment_id ORDER BY settlement_date DESC) AS latest
              FROM raw.gateway_settlements
              -- a payment whose latest known row settles in the window has it on or after D - 30:
              -- older rows never decide (and the check does not read the whole gateway history)
              WHERE settlement_date BETWEEN CAST(? AS DATE) - 30 AND CAST(? AS DATE)
                AND CAST(initiated_at AS DATE) <= CAST(? AS DATE)
            )
            SELECT k.payment_id, k.loan_id, k.amount::DOUBLE AS amount, k.settlement_date,
                   EXISTS (SELECT 1 FROM raw.loan_transactions t
                           WHERE t.payment_id = k.payment_id AND t.txn_type = 'repayment'
                             AND t.value_date <= CAST(? AS DATE) AND CAST(t.booked_at AS DATE) <= CAST(? AS DATE)) AS posted
            FROM known k
            WHERE k.latest = 1 AND k.status = 'succeeded'
              AND k.settlement_date BETWEEN CAST(? AS DATE) - 30 AND CAST(? AS DATE) - 2
            ORDER BY k.settlement_date, k.payment_id
        """, [day, day, day, day, day, day, day]).df()
        outcome = run_suite(df, "recon_gateway_posting", gx_root=gx_root(arrears_home))
        _record(con, day, "gateway_posting", outcome)
    unposted = df[~df["posted"]].head(50)
    return _result(context, outcome, {"unposted_payments": dg.MetadataValue.json(
        json.loads(unposted.to_json(orient="records", date_format="iso")))})


def _band(con, day: str) -> dict:
    """Expected fct volume: 0.8x..1.25x of the mean over the last 7 processed dates (none: no band)."""
    mean = con.execute("""SELECT avg(n) FROM (SELECT count(*) AS n FROM marts.fct_loan_delinquency_daily
                          WHERE as_of_date BETWEEN CAST(? AS DATE) - 7 AND CAST(? AS DATE) - 1 GROUP BY as_of_date)""",
                       [day, day]).fetchone()[0]
    if not mean:
        return {"min_rows": 0, "max_rows": 10**12}
    return {"min_rows": int(mean * 0.8), "max_rows": int(mean * 1.25) + 1}


def validation_batch(con, table: str, columns: list[str], where: str, params: list) -> pd.DataFrame:
    """The rows to validate, as the pandas frame GX checks fastest, with the values DuckDB's own
    pandas conversion gives: DECIMAL as float64 (as .df() does), integers as int64 (GX compares an
    int32 column value by value in Python: 1 s per column at 1M loans), read through Arrow (half
    the time of .df() for the string columns)."""
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())

    def select(c: str) -> str:
        t = types[c]
        if t.startswith("DECIMAL"):
            return f"CAST({c} AS DOUBLE) AS {c}"
        if t in ("TINYINT", "SMALLINT", "INTEGER"):
            return f"CAST({c} AS BIGINT) AS {c}"
        return c

    sql = f"SELECT {', '.join(select(c) for c in columns)} FROM {table} WHERE {where}"
    # one chunk per column: GX runs pandas string methods, several times slower on a chunked column
    return con.sql(sql, params=params).to_arrow_table().combine_chunks().to_pandas()


@dg.asset_check(asset=dg.AssetKey("fct_loan_delinquency_daily"), name="gx_fct_loan_delinquency_daily",
                blocking=True, op_tags={PRIORITY: "1"},  # the list waits for it
                description="GX suite on the business date's loan rows, with its volume band.")
def fct_suite(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome):
    day = context.partition_key
    with warehouse.connect() as con:
        # the suite's columns only: a 1M-loan day is ~730k rows, the fact has twice as many columns
        df = validation_batch(con, "marts.fct_loan_delinquency_daily", suite_columns("fct_loan_delinquency_daily"),
                              "as_of_date = ?", [day])
        band = _band(con, day)
        outcome = run_suite(df, "fct_loan_delinquency_daily", band, gx_root=gx_root(arrears_home))
        _record(con, day, "fct_loan_delinquency_daily", outcome)
    return _result(context, outcome, {"volume_band": dg.MetadataValue.json(band)})


@dg.asset_check(asset=dg.AssetKey("mart_portfolio_daily"), name="gx_mart_portfolio_daily", blocking=True,
                description="GX suite on the business date's portfolio rows.")
def portfolio_suite(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome):
    day = context.partition_key
    with warehouse.connect() as con:
        df = con.execute("SELECT * FROM marts.mart_portfolio_daily WHERE as_of_date = ?", [day]).df()
        outcome = run_suite(df, "mart_portfolio_daily", gx_root=gx_root(arrears_home))
        _record(con, day, "mart_portfolio_daily", outcome)
    return _result(context, outcome)


@dg.asset_check(asset=dg.AssetKey("mart_portfolio_daily"), name="bucket_balances_reconcile", blocking=True,
                additional_deps=[dg.AssetKey("fct_loan_delinquency_daily")],
                description="Bucket balances of fct_loan_delinquency_daily sum exactly to the portfolio's "
                            "outstanding principal, and fct holds one row per loan on book.")
def bucket_balances(context: dg.AssetCheckExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome):
    day = context.partition_key
    with warehouse.connect() as con:
        df = con.execute("""
            WITH b AS (SELECT bucket, sum(outstanding_principal) AS balance, count(*) AS loans,
                              count(DISTINCT loan_id) AS distinct_loans
                       FROM marts.fct_loan_delinquency_daily WHERE as_of_date = ? GROUP BY bucket),
                 p AS (SELECT outstanding_principal, loans_on_book FROM marts.mart_portfolio_daily
                       WHERE as_of_date = ? AND segment_type = 'all')
            SELECT (coalesce((SELECT sum(balance) FROM b), 0) - coalesce((SELECT outstanding_principal FROM p), 0))::DOUBLE
                     AS difference,
                   (coalesce((SELECT sum(distinct_loans) FROM b), 0) - coalesce((SELECT loans_on_book FROM p), 0))
                     + (coalesce((SELECT sum(loans) FROM b), 0) - coalesce((SELECT sum(distinct_loans) FROM b), 0))
                     AS loan_count_difference
        """, [day, day]).df()
        outcome = run_suite(df, "recon_bucket_balances", gx_root=gx_root(arrears_home))
        _record(con, day, "bucket_balances", outcome)
    return _result(context, outcome)


quality_checks = [_raw_suite_check(s) for s in CORE_BANKING_TABLES + (GATEWAY_SETTLEMENTS,)] + [
    quarantine_gate, gateway_posting, fct_suite, portfolio_suite, bucket_balances]
