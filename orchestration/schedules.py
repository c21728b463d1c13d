"""The daily job and its schedule: both `arrears run` and the schedule launch `arrears_daily`."""

import dagster as dg

from .executor import threaded_in_process_executor
from .partitions import business_dates

arrears_daily = dg.define_asset_job(
    "arrears_daily",
    # Retraining and warehouse maintenance have their own weekly jobs; the daily run only scores.
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups("ml_training", "maintenance"),
    partitions_def=business_dates,
    # One DuckDB warehouse file, so one process: independent steps side by side in its threads
    # (one per core), the dbt build alone (orchestration/executor.py).
    executor_def=threaded_in_process_executor,
    description="Extract, build marts, check, publish for one business date.",
)

# 06:00 Asia/Shanghai, for the business date that just ended.
daily_schedule = dg.build_schedule_from_partitioned_job(arrears_daily, hour_of_day=6, minute_of_hour=0)
