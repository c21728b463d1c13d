{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month',
    on_schema_change='append_new_columns',
    contract={'enforced': true},
) }}
{#-
  Recovery by severity (business_rules.md section 4). Month m (first day) is built once D
  reaches its last day; p is the previous month-end. Over loans on book with dpd > 0 at p,
  per loan: collected = min(max(0, repayments - reversals with value_date in m, known at the
  end of m), overdue_amount at p). Waivers and recovery rows are not collected money. Grouped
  by the loan's severity at p. A month's rows never change afterwards: only new months are built.
-#}
{%- set D = business_date() -%}

with start_states as (
    select cast(s.month_end + interval 1 day as date) as month,
           last_day(s.month_end + interval 1 day) as month_last_day,
           s.loan_id, s.severity, s.overdue_amount
    from {{ ref('int_month_end_loan_states') }} as s
    where s.is_on_book
      and s.dpd > 0
      and last_day(s.month_end + interval 1 day) <= {{ D }}
      and s.month_end > {{ latest_month_built('month') }}  -- p of the first month not built is after it
      {{ months_not_built('cast(s.month_end + interval 1 day as date)', 'month') }}
),

-- repayments and reversals with value_date in m, as known at the end of m
windows as (
    select month, loan_id, month as value_from, month_last_day as value_to, month_last_day as known_on
    from start_states
),

money as (
{{ net_repayments('windows', ['month', 'loan_id']) }}
),

per_loan as (
    select s.month, s.severity, s.overdue_amount,
           least(greatest(coalesce(m.net_paid, 0), 0), s.overdue_amount) as collected
    from start_states as s
    left join money as m on m.month = s.month and m.loan_id = s.loan_id
)

select
    month,
    severity,
    cast(count(*) as bigint) as loans,
    cast(sum(overdue_amount) as decimal(18, 2)) as overdue_amount_at_start,
    cast(sum(collected) as decimal(18, 2)) as collected,
    cast(sum(collected) as double) / nullif(cast(sum(overdue_amount) as double), 0) as recovery_rate
from per_loan
group by month, severity
