{{ config(materialized='table') }}
{#-
  Failed direct debits per loan on D (business_rules.md sections 1 and 5). A payment counts
  when its file's settlement_date <= D and initiated_on <= D; its state on D is its latest
  such appearance. Counted: distinct payment_ids whose state on D is failed with
  initiated_on in [D - (window - 1), D]. Only loans with at least one such payment appear.
-#}
{%- set D = business_date() -%}

with params as (
    select
        cast({{ policy('flag_failed_debits_window_days') }} as integer) as window_days,
        {{ policy('flag_failed_debits_count') }} as min_count
),

visible as (
    select payment_id, loan_id, settlement_date, status, initiated_on
    from {{ ref('stg_gateway__settlements') }}
    where settlement_date <= {{ D }}
      and initiated_on <= {{ D }}
),

-- only payments with some visible appearance initiated in the window can qualify
candidates as (
    select distinct v.payment_id
    from visible as v
    cross join params as p
    where v.initiated_on > {{ D }} - p.window_days
),

latest as (
    select
        payment_id,
        arg_max(loan_id, settlement_date) as loan_id,
        arg_max(status, settlement_date) as status,
        arg_max(initiated_on, settlement_date) as initiated_on
    from visible
    where payment_id in (select payment_id from candidates)
    group by payment_id
)

select
    {{ D }} as as_of_date,
    l.loan_id,
    cast(count(distinct l.payment_id) as integer) as failed_payments,
    count(distinct l.payment_id) >= max(p.min_count) as flag_failed_debits
from latest as l
cross join params as p
where l.status = 'failed'
  and l.initiated_on > {{ D }} - p.window_days
group by l.loan_id
