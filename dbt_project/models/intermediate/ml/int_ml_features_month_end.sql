{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where as_of_date = {{ business_date() }}{% endif %}",
) }}
{#-
  The risk features of a month-end business date, kept as daily scoring computed them (as known on
  that day), so the training snapshot of that month-end does not compute them again 30 days later
  (int_ml_training_snapshots: at 1M loans about 10 s on the m + 30 business date). Appended on
  month-end dates; re-running a month-end replaces its rows.
  A month-end m before D whose 30-day window is still open (m + 30 > D) and that never ran as a
  business date (a first load after it, or a pause across it) is added from its snapshot (as known
  on m, the same macro): its 30-day mark then costs what it costs after a month-end that ran.
-#}
{%- set D = business_date() -%}
{%- set missed_month_ends -%}
(
    select * from {{ ref('int_loan_state_snapshots') }}
    where is_month_end
      and as_of_date < {{ D }}
      and as_of_date + 30 > {{ D }}
    {% if is_incremental() %}
      and as_of_date not in (select distinct as_of_date from {{ this }})
    {% endif %}
)
{%- endset %}

select *
from {{ ref('int_ml_features_on_date') }}
where as_of_date = last_day(as_of_date)
union all by name
select * from ({{ ml_features(missed_month_ends) }})
