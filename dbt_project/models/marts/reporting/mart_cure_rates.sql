{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month_end',
    on_schema_change='append_new_columns',
    contract={'enforced': true},
) }}
{#-
  Cure rate month-end m -> m+1 (business_rules.md section 4): loans in M1 at m that are M0 or
  settled at m+1, over loans in M1 at m. From mart_roll_rates (same loans, same states): one
  row for every month of the roll rates (every m with loans on book, once D >= m+1); a month
  without M1 loans has loans_m1 = 0 and cure_rate NULL.
-#}
with months as (
    select distinct month_end from {{ ref('mart_roll_rates') }}
    where true {{ months_not_built('month_end', 'month_end') }}
),

m1 as (
    select month_end,
           sum(loans) as loans_m1,
           sum(loans) filter (where to_state in ('M0', 'settled')) as cured_loans
    from {{ ref('mart_roll_rates') }}
    where from_bucket = 'M1'
    group by month_end
)

select
    m.month_end,
    cast(coalesce(x.loans_m1, 0) as bigint) as loans_m1,
    cast(coalesce(x.cured_loans, 0) as bigint) as cured_loans,
    cast(coalesce(x.cured_loans, 0) as double) / nullif(cast(coalesce(x.loans_m1, 0) as double), 0) as cure_rate
from months as m
left join m1 as x on x.month_end = m.month_end
