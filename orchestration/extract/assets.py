"""Extraction assets: the raw layer, one asset per source table or file set."""

from datetime import datetime

import dagster as dg

from ..partitions import business_dates
from ..resources import CoreBankingSource, SettlementLanding, Warehouse
from .core_banking import extract_core_banking
from .gateway import extract_settlement_files
from .load import LoadResult
from .schema import CORE_BANKING_TABLES, GATEWAY_SETTLEMENTS


def run_loaded_at(context) -> datetime:
    """One load time per run (its creation time), shared by every extraction step of the run."""
    record = context.instance.get_run_record_by_id(context.run.run_id)
    return record.create_timestamp.replace(tzinfo=None) if record else datetime.now()


def _metadata(r: LoadResult) -> dict:
    return {
        "rows_extracted": r.extracted,
        "rows_inserted": r.inserted,
        "rows_updated": r.updated,
        "rows_unchanged": r.unchanged,
        "rows_quarantined": r.quarantined,
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(["raw", s.name], group_name="extract", kinds={"duckdb", "sql"},
                     description=f"Core-banking `{s.name}`: new and changed rows since the last run, "
                                 "typed; rows breaking the row rules are in raw.quarantine.")
        for s in CORE_BANKING_TABLES
    ],
    partitions_def=business_dates,
)
def core_banking_raw(context: dg.AssetExecutionContext, warehouse: Warehouse, core_banking: CoreBankingSource):
    with warehouse.connect() as con:
        results = extract_core_banking(con, core_banking.url, context.partition_key, run_loaded_at(context))
    for name, r in results.items():
        yield dg.MaterializeResult(asset_key=["raw", name], metadata=_metadata(r))


@dg.asset(
    key=["raw", GATEWAY_SETTLEMENTS.name],
    group_name="extract",
    kinds={"duckdb", "csv"},
    partitions_def=business_dates,
    # After core banking: a settlement line's loan_id is checked against raw.loans.
    deps=[dg.AssetKey(["raw", s.name]) for s in CORE_BANKING_TABLES],
    description="Gateway settlement files: the latest delivery of each day, typed; bad lines quarantined.",
)
def gateway_settlements_raw(context: dg.AssetExecutionContext, warehouse: Warehouse,
                            settlement_landing: SettlementLanding) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        r = extract_settlement_files(con, settlement_landing.path, context.partition_key,
                                     run_loaded_at(context))[GATEWAY_SETTLEMENTS.name]
    return dg.MaterializeResult(metadata=_metadata(r) | {"files_loaded": len(r.files)})
