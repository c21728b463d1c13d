"""The one Definitions object of the Arrears code location."""

import dagster as dg

from . import settings

settings.apply_defaults()

from .collections.assets import collection_priority_list, priority_list_history  # noqa: E402
from .dbt import ArrearsDbtCli, arrears_dbt_models, arrears_dbt_project  # noqa: E402
from .extract.assets import core_banking_raw, gateway_settlements_raw  # noqa: E402
from .maintenance import loan_ordered_tables, maintenance_schedule, warehouse_maintenance_weekly  # noqa: E402
from .ml import ml_asset_defs, ml_checks, ml_jobs, ml_schedules  # noqa: E402
from .publish.assets import bi_marts  # noqa: E402
from .quality.assets import gx_data_docs  # noqa: E402
from .quality.checks import quality_checks  # noqa: E402
from .reporting import reporting_assets, reporting_checks  # noqa: E402
from .resources import ArrearsHome, CoreBankingSource, OpsDatabase, SettlementLanding, Warehouse  # noqa: E402
from .schedules import arrears_daily, daily_schedule  # noqa: E402

defs = dg.Definitions(
    assets=[core_banking_raw, gateway_settlements_raw, arrears_dbt_models, bi_marts, collection_priority_list,
            priority_list_history, gx_data_docs,
            *reporting_assets, *ml_asset_defs, loan_ordered_tables],
    asset_checks=[*quality_checks, *reporting_checks, *ml_checks],
    jobs=[arrears_daily, *ml_jobs, warehouse_maintenance_weekly],
    schedules=[daily_schedule, *ml_schedules, maintenance_schedule],
    resources={
        "warehouse": Warehouse(path=dg.EnvVar("ARREARS_WAREHOUSE")),
        "core_banking": CoreBankingSource(url=dg.EnvVar("ARREARS_SOURCE_URL")),
        "settlement_landing": SettlementLanding(path=dg.EnvVar("ARREARS_PAYMENTS_DIR")),
        "arrears_home": ArrearsHome(path=dg.EnvVar("ARREARS_HOME")),
        "ops_database": OpsDatabase(url=dg.EnvVar("ARREARS_OPS_URL")),
        "dbt": ArrearsDbtCli(project_dir=arrears_dbt_project(), profiles_dir=str(settings.DBT_PROJECT_DIR)),
    },
)
