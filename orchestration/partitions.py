"""Business dates: one partition per day, in the bank's time zone."""

import os

import dagster as dg

# The first business date the UI offers; backfills before it are refused.
PARTITION_START = os.environ.get("ARREARS_PARTITION_START", "2024-01-01")

business_dates = dg.DailyPartitionsDefinition(start_date=PARTITION_START, timezone="Asia/Shanghai")
