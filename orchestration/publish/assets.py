"""The publishing asset: a business date's marts, handed to BI in one atomic step."""

import dagster as dg

from ..partitions import business_dates
from ..resources import ArrearsHome, Warehouse
from .bi import PublishedMart, publish

# What BI reads (outputs.md). Date-keyed marts publish the day's rows; the rest whole.
BI_MARTS = [
    PublishedMart("fct_loan_delinquency_daily", "as_of_date"),
    PublishedMart("mart_portfolio_daily", "as_of_date"),
    PublishedMart("risk_scores", "as_of_date"),
    # Month-grained marts: published whole (a month's rows change when it is built; small).
    PublishedMart("mart_roll_rates", None),
    PublishedMart("mart_flow_rates", None),
    PublishedMart("mart_vintage", None),
    PublishedMart("mart_cure_rates", None),
    PublishedMart("mart_recovery_monthly", None),
    PublishedMart("mart_collection_effectiveness", None),
    PublishedMart("mart_early_warnings", "as_of_date"),
    PublishedMart("mart_data_quality", None),
]


@dg.asset(
    key=["bi", "arrears_duckdb"],
    group_name="publish",
    kinds={"duckdb", "parquet"},
    partitions_def=business_dates,
    deps=[dg.AssetKey(m.name) for m in BI_MARTS],
    description="bi/arrears.duckdb, schema marts: the last fully published business date, replaced atomically.",
)
def bi_marts(context: dg.AssetExecutionContext, warehouse: Warehouse, arrears_home: ArrearsHome) -> dg.MaterializeResult:
    day = context.partition_key
    with warehouse.connect() as con:
        rows = publish(con, arrears_home.bi_db, day, BI_MARTS)
        overall = con.execute(
            """SELECT loans_on_book, outstanding_principal, overdue_rate_count, par_0, par_30, par_60, par_90
               FROM marts.mart_portfolio_daily WHERE as_of_date = ? AND segment_type = 'all'""", [day]).fetchone()
    meta = {f"rows_{k}": v for k, v in rows.items()} | {"bi_database": dg.MetadataValue.path(str(arrears_home.bi_db))}
    if overall:
        names = ("loans_on_book", "outstanding_principal", "overdue_rate_count", "par_0", "par_30", "par_60", "par_90")
        for k, v in zip(names, overall):
            meta[k] = float(v) if v is not None else None
    context.log.info(f"Published {day}: " + ", ".join(f"{k}={v}" for k, v in meta.items() if k != "bi_database"))
    return dg.MaterializeResult(metadata=meta)
