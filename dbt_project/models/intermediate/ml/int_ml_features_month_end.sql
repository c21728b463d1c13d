{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where as_of_date = {{ business_date() }}{% endif %}",
) }}
{#-
  The risk features of a month-end business date, kept as daily scoring computed them (as known on
  that day), so the training snapshot of that month-end does not compute them again 30 days later
  (int_ml_training_snapshots: at 1M loans about 20 s on the m + 30 business date). Appended on
  month-end dates only; re-running a month-end replaces its rows.
-#}
select *
from {{ ref('int_ml_features_on_date') }}
where as_of_date = last_day(as_of_date)
