{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='month_end',
    on_schema_change='append_new_columns',
    contract={'enforced': true},
) }}
{#-
  Roll rates month-end m -> m+1 (business_rules.md section 4). A month m is built once the
  business date reaches m+1 (the next month-end); its rows never change afterwards, so an
  incremental run builds only the months not yet in the table.
-#}
{%- set D = business_date() -%}

-- month-ends from the first month not built yet (and the month-end after each)
with states as (
    select * from {{ ref('int_month_end_loan_states') }}
    where month_end > {{ latest_month_built('month_end') }}
),

pairs as (
    select a.month_end,
           a.loan_id,
           a.bucket as from_bucket,
           a.bucket_order as from_order,
           a.outstanding_principal,
           case when b.is_on_book then b.bucket else b.left_book_as end as to_state,
           case when b.is_on_book then b.bucket_order
                when b.left_book_as = 'settled' then 100 else 101 end as to_order
    from states as a
    inner join states as b
        on b.loan_id = a.loan_id
       and b.month_end = last_day(a.month_end + interval 1 day)
    where a.is_on_book
      and last_day(a.month_end + interval 1 day) <= {{ D }}
      {{ months_not_built('a.month_end', 'month_end') }}
),

moved as (
    select month_end, from_bucket, to_state,
           count(*) as loans,
           sum(outstanding_principal) as balance
    from pairs
    group by month_end, from_bucket, to_state
),

totals as (
    select month_end, from_bucket, sum(loans) as bucket_loans, sum(balance) as bucket_balance
    from moved
    group by month_end, from_bucket
)

select
    m.month_end,
    m.from_bucket,
    m.to_state,
    cast(m.loans as bigint) as loans,
    cast(m.balance as decimal(18, 2)) as balance,
    cast(m.loans as double) / nullif(cast(t.bucket_loans as double), 0) as roll_rate_count,
    cast(m.balance as double) / nullif(cast(t.bucket_balance as double), 0) as roll_rate_balance
from moved as m
inner join totals as t on t.month_end = m.month_end and t.from_bucket = m.from_bucket
