{{ config(materialized='view', contract={'enforced': true}) }}
{#-
  Flow rates (business_rules.md section 4): the roll_rate_balance from each bucket to the next
  one (M0->M1, ..., M5->M6, M6->M6+), per month-end m of mart_roll_rates. A view: always in
  step with the roll rates. A bucket that held loans at m but sent none to the next bucket has
  flow rate 0; NULL when the bucket's balance at m is 0. M6+ has no next bucket: no row.
-#}
with buckets as (
    select distinct bucket, bucket_order from {{ ref('delinquency_buckets') }}
),

ladder as (
    select f.bucket as from_bucket, t.bucket as to_bucket, f.bucket_order
    from buckets as f
    inner join buckets as t on t.bucket_order = f.bucket_order + 1
),

totals as (
    select month_end, from_bucket, sum(loans) as bucket_loans, sum(balance) as bucket_balance
    from {{ ref('mart_roll_rates') }}
    group by month_end, from_bucket
)

select
    t.month_end,
    t.from_bucket,
    l.to_bucket,
    cast(t.bucket_loans as bigint) as bucket_loans,
    cast(t.bucket_balance as decimal(18, 2)) as bucket_balance,
    cast(coalesce(r.balance, 0) as decimal(18, 2)) as balance_to_next,
    cast(coalesce(r.balance, 0) as double) / nullif(cast(t.bucket_balance as double), 0) as flow_rate
from totals as t
inner join ladder as l on l.from_bucket = t.from_bucket
left join {{ ref('mart_roll_rates') }} as r
    on r.month_end = t.month_end and r.from_bucket = t.from_bucket and r.to_state = l.to_bucket
